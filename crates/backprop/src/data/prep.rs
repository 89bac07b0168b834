//! Preprocessing fitted on the training rows only: feature scaling, one-hot encoding of
//! text columns, imputation of missing cells, and target scaling. Saved with the model
//! so predictions see the data exactly as training did.
//!
//! The types and the transforms live here; fitting them on the training rows
//! ([`Preprocessor::fit`], [`detect_task`]) is in `fit.rs`.

use serde::{Deserialize, Serialize};

use std::path::Path;

pub use super::fit::{detect_task, detect_task_with, MAX_CATEGORIES, MIN_CATEGORY_ROWS};

use super::blocks::blocks_to_rows;
use super::csv::{Column, Kind, Survey, Table};
pub use super::scale::{inverse_normal_cdf, ScaleKind, Scaler, QUANTILES};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// What kind of learning problem the target makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Predict a number.
    Regress,
    /// Predict one of a set of classes.
    Classify,
}

/// Transformation of a regression target before scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum TargetTransform {
    /// Use the target as it is.
    #[default]
    None,
    /// Learn `ln(y)` (targets must be positive): for prices spanning orders of magnitude.
    Log,
}

/// A fitted input feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// A numeric column: missing cells take the training median, then it is scaled.
    Numeric {
        /// Column name.
        name: String,
        /// Training median, used for missing cells.
        median: f64,
        /// The scaling.
        scaler: Scaler,
        /// Whether the column was constant in the training rows.
        constant: bool,
    },
    /// A text column, one-hot encoded over the training categories (missing cells are
    /// the category `"missing"`; unseen categories encode as all zeros, or as `other`).
    Categorical {
        /// Column name.
        name: String,
        /// Categories seen in training, sorted: all of them, or with `other` the
        /// frequent ones (see [`MAX_CATEGORIES`]).
        categories: Vec<String>,
        /// One more input, last, for every category not in `categories`: the rare ones
        /// of a column with more than [`MAX_CATEGORIES`] categories in training, and
        /// those never seen.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        other: bool,
    },
}

/// The name of the input that the rare and unseen categories share.
pub const OTHER_CATEGORY: &str = "(other)";

/// The category that missing text cells become.
pub const MISSING_CATEGORY: &str = "missing";

impl Feature {
    /// Column name.
    pub fn name(&self) -> &str {
        match self {
            Feature::Numeric { name, .. } | Feature::Categorical { name, .. } => name,
        }
    }

    /// Inputs of the network this feature produces.
    pub fn width(&self) -> usize {
        match self {
            Feature::Numeric { .. } => 1,
            Feature::Categorical {
                categories, other, ..
            } => categories.len() + usize::from(*other),
        }
    }
}

/// The fitted target encoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A number, transformed then standardised for training.
    Regression {
        /// Column name.
        name: String,
        /// Transformation applied first.
        transform: TargetTransform,
        /// Mean of the transformed training target.
        mean: f64,
        /// Standard deviation of the transformed training target.
        std: f64,
    },
    /// Classes, one output each (softmax).
    Classification {
        /// Column name.
        name: String,
        /// Class labels in output order.
        classes: Vec<String>,
    },
}

impl Target {
    /// Column name.
    pub fn name(&self) -> &str {
        match self {
            Target::Regression { name, .. } | Target::Classification { name, .. } => name,
        }
    }

    /// Network outputs needed.
    pub fn width(&self) -> usize {
        match self {
            Target::Regression { .. } => 1,
            Target::Classification { classes, .. } => classes.len(),
        }
    }

    /// Maps a network output back to the target's own units (regression).
    pub fn inverse(&self, z: f64) -> f64 {
        match self {
            Target::Regression {
                transform,
                mean,
                std,
                ..
            } => {
                let t = z * std + mean;
                match transform {
                    TargetTransform::None => t,
                    TargetTransform::Log => t.exp(),
                }
            }
            Target::Classification { .. } => z,
        }
    }
}

/// Everything fitted on the training rows that turns table rows into network inputs
/// and targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// Input features in order.
    pub features: Vec<Feature>,
    /// The target.
    pub target: Target,
}

/// What fitting or transforming noticed, for the summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrepReport {
    /// Missing cells filled per column (name, count).
    pub imputed: Vec<(String, usize)>,
    /// Categories not seen in training, per column (name, count of cells).
    pub unseen: Vec<(String, usize)>,
    /// Columns constant in the training rows.
    pub constant: Vec<String>,
}

/// Options for fitting a preprocessor.
#[derive(Clone, Debug)]
pub struct PrepOptions {
    /// Feature scaling.
    pub scale: ScaleKind,
    /// Target transformation (regression).
    pub target_transform: TargetTransform,
    /// Regression or classification.
    pub task: Task,
}

/// Writes feature `f` (table column `j`) of `rows` into `data`, a row-major matrix
/// `width` wide, at column `offset`; counts imputed and unseen cells into `report`.
#[allow(clippy::too_many_arguments)]
fn encode_feature(
    f: &Feature,
    table: &Table,
    j: usize,
    rows: &[usize],
    data: &mut [f32],
    width: usize,
    offset: usize,
    report: &mut PrepReport,
) -> Result<()> {
    let col = &table.columns[j];
    match f {
        Feature::Numeric {
            name,
            median,
            scaler,
            ..
        } => {
            let Column::Numeric(v) = col else {
                let i = rows
                    .iter()
                    .copied()
                    .find(|&i| !col.is_missing(i))
                    .unwrap_or(0);
                let line = if i < table.lines.len() {
                    table.lines.get(i)
                } else {
                    1
                };
                let text = if col.is_empty() {
                    String::new()
                } else {
                    cell_text(col, i)
                };
                return Err(numeric_holds_text(&table.source, line, j, name, &text));
            };
            let mut imputed = 0;
            for (r, &i) in rows.iter().enumerate() {
                let mut x = v.get(i);
                if x.is_nan() {
                    imputed += 1;
                    x = *median;
                }
                data[r * width + offset] = scaler.apply(x) as f32;
            }
            if imputed > 0 {
                report.imputed.push((name.clone(), imputed));
            }
        }
        Feature::Categorical {
            name,
            categories,
            other,
        } => {
            let (mut imputed, mut unseen) = (0, 0);
            for (r, &i) in rows.iter().enumerate() {
                let mut text = cell_text(col, i);
                if col.is_missing(i) {
                    imputed += 1;
                    text = MISSING_CATEGORY.to_string();
                }
                match categories.binary_search(&text) {
                    Ok(k) => data[r * width + offset + k] = 1.0,
                    Err(_) if *other => data[r * width + offset + categories.len()] = 1.0,
                    Err(_) => unseen += 1,
                }
            }
            if imputed > 0 {
                report.imputed.push((name.clone(), imputed));
            }
            if unseen > 0 {
                report.unseen.push((name.clone(), unseen));
            }
        }
    }
    Ok(())
}

fn numeric_holds_text(source: &Path, line: u64, j: usize, name: &str, text: &str) -> Error {
    Error::Csv {
        path: source.into(),
        line,
        column: j + 1,
        reason: format!(
            "column `{name}` was numeric in training but holds text such as `{text}` here"
        ),
    }
}

pub(crate) fn cell_text(col: &Column, i: usize) -> String {
    match col {
        Column::Numeric(v) => format_number(v.get(i)),
        Column::Text(v) => v[i].clone(),
    }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Preprocessor {
    /// Network inputs per row.
    pub fn input_width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// Names of the network inputs (one-hot columns as `name=category`).
    pub fn input_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.features {
            match f {
                Feature::Numeric { name, .. } => out.push(name.clone()),
                Feature::Categorical {
                    name,
                    categories,
                    other,
                } => {
                    out.extend(categories.iter().map(|c| format!("{name}={c}")));
                    if *other {
                        out.push(format!("{name}={OTHER_CATEGORY}"));
                    }
                }
            }
        }
        out
    }

    /// Finds this preprocessor's feature columns in `table` by name; an error names the
    /// columns that are missing.
    pub fn locate_features(&self, table: &Table) -> Result<Vec<usize>> {
        self.locate_in(&table.source, &table.headers)
    }

    /// [`Preprocessor::locate_features`] in a surveyed file, before any row is read;
    /// also checks that every numeric feature is a numeric column there, with the error
    /// [`Preprocessor::transform_features`] would give on the whole file.
    pub fn locate_in_survey(&self, survey: &Survey) -> Result<Vec<usize>> {
        let cols = self.locate_in(&survey.source, &survey.headers)?;
        for (f, &j) in self.features.iter().zip(&cols) {
            if let (Feature::Numeric { name, .. }, Kind::Text) = (f, survey.columns[j].kind) {
                let (line, text) = survey.columns[j].first_present.clone().unwrap_or_default();
                return Err(numeric_holds_text(
                    &survey.source,
                    line.max(1),
                    j,
                    name,
                    &text,
                ));
            }
        }
        Ok(cols)
    }

    fn locate_in(&self, source: &Path, headers: &[String]) -> Result<Vec<usize>> {
        let mut idx = Vec::new();
        let mut missing = Vec::new();
        for f in &self.features {
            match headers.iter().position(|h| h == f.name()) {
                Some(j) => idx.push(j),
                None => missing.push(f.name().to_string()),
            }
        }
        if !missing.is_empty() {
            let target = self.target.name();
            let unknown: Vec<&str> = headers
                .iter()
                .map(String::as_str)
                .filter(|h| *h != target && !self.features.iter().any(|f| f.name() == *h))
                .collect();
            let unknown = if unknown.is_empty() {
                String::new()
            } else {
                format!(
                    " (and with column(s) {} the model does not know)",
                    unknown.join(", ")
                )
            };
            return Err(Error::IncompatibleModel {
                found: format!(
                    "{} without column(s) {}{unknown}",
                    source.display(),
                    missing.join(", ")
                ),
                expected: format!(
                    "the model's feature columns: {}",
                    self.features
                        .iter()
                        .map(Feature::name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(idx)
    }

    /// The network inputs for `rows` of `table` (`cols` from [`Preprocessor::locate_features`]).
    pub fn transform_features(
        &self,
        table: &Table,
        cols: &[usize],
        rows: &[usize],
    ) -> Result<(Matrix, PrepReport)> {
        let width = self.input_width();
        let mut data = vec![0.0f32; rows.len() * width];
        let mut report = PrepReport::default();
        let mut offset = 0;
        for (f, &j) in self.features.iter().zip(cols) {
            encode_feature(f, table, j, rows, &mut data, width, offset, &mut report)?;
            offset += f.width();
        }
        Ok((
            Matrix::from_vec(rows.len(), width, data).expect("sized above"),
            report,
        ))
    }

    /// The inputs and targets of every row list in `splits`, as
    /// [`Preprocessor::transform_features`] and [`Preprocessor::transform_target`]
    /// give them, built from a table this consumes, so that the table and the matrices
    /// never both exist in full (issue 19). Each split's inputs are first encoded a
    /// feature at a time into a block of their matrix's buffer (a row-major matrix's
    /// pages would all be touched by its first column), each table column freed once
    /// encoded; then the blocks are rearranged into rows in place ([`blocks_to_rows`]).
    pub fn transform_splits(
        &self,
        mut table: Table,
        cols: &[usize],
        target: usize,
        splits: &[&[usize]],
    ) -> Result<Vec<(Matrix, Matrix, PrepReport)>> {
        let widths: Vec<usize> = self.features.iter().map(Feature::width).collect();
        let width = self.input_width();
        let mut reports = vec![PrepReport::default(); splits.len()];
        // Zeroed lazily by the system: a page takes memory once a block writes to it.
        let mut data: Vec<Vec<f32>> = splits
            .iter()
            .map(|rows| vec![0.0f32; rows.len() * width])
            .collect();
        let mut offset = 0;
        for (k, (f, &j)) in self.features.iter().zip(cols).enumerate() {
            let w = f.width();
            for ((rows, buf), report) in splits.iter().zip(&mut data).zip(&mut reports) {
                let block = &mut buf[offset * rows.len()..(offset + w) * rows.len()];
                encode_feature(f, &table, j, rows, block, w, 0, report)?;
            }
            offset += w;
            if j != target && !cols[k + 1..].contains(&j) {
                table.columns[j] = Column::Numeric(Vec::new().into());
            }
        }
        let targets = splits
            .iter()
            .map(|rows| self.transform_target(&table, target, rows))
            .collect::<Result<Vec<_>>>()?;
        drop(table);
        let mut out = Vec::with_capacity(splits.len());
        for ((rows, mut buf), (y, report)) in splits
            .iter()
            .zip(data)
            .zip(targets.into_iter().zip(reports))
        {
            blocks_to_rows(&mut buf, rows.len(), &widths);
            let x = Matrix::from_vec(rows.len(), width, buf).expect("sized above");
            out.push((x, y, report));
        }
        Ok(out)
    }

    /// The training targets for `rows` of `table` (column `target`): standardised
    /// values for regression, one-hot rows for classification. Classification rows
    /// whose class was not seen in training are an error naming the line.
    pub fn transform_target(&self, table: &Table, target: usize, rows: &[usize]) -> Result<Matrix> {
        let col = &table.columns[target];
        let err = |i: usize, reason: String| Error::Csv {
            path: table.source.clone(),
            line: table.lines.get(i),
            column: target + 1,
            reason,
        };
        match &self.target {
            Target::Regression {
                name,
                transform,
                mean,
                std,
            } => {
                let Column::Numeric(v) = col else {
                    return Err(err(
                        rows.first().copied().unwrap_or(0),
                        format!("the target `{name}` must be numeric"),
                    ));
                };
                let mut out = Vec::with_capacity(rows.len());
                for &i in rows {
                    if v.get(i).is_nan() {
                        return Err(err(
                            i,
                            format!("the target `{name}` is missing; remove the row or fill it in"),
                        ));
                    }
                    let t = match transform {
                        TargetTransform::None => v.get(i),
                        TargetTransform::Log if v.get(i) > 0.0 => v.get(i).ln(),
                        TargetTransform::Log => {
                            return Err(err(
                                i,
                                format!(
                                    "--target-transform log needs positive targets, found {}",
                                    v.get(i)
                                ),
                            ))
                        }
                    };
                    out.push(((t - mean) / std) as f32);
                }
                Ok(Matrix::from_vec(rows.len(), 1, out).expect("one column"))
            }
            Target::Classification { name, classes } => {
                let k = classes.len();
                let mut out = vec![0.0f32; rows.len() * k];
                for (r, &i) in rows.iter().enumerate() {
                    let text = cell_text(col, i);
                    match classes.iter().position(|c| *c == text) {
                        Some(c) => out[r * k + c] = 1.0,
                        None => return Err(err(i, format!("the target `{name}` has class `{text}`, which the model does not know (classes: {})", classes.join(", ")))),
                    }
                }
                Ok(Matrix::from_vec(rows.len(), k, out).expect("sized above"))
            }
        }
    }
}

impl Preprocessor {
    /// Checks a preprocessor read from a file against what transforming rows needs:
    /// finite medians and scalers that divide by positive numbers
    /// ([`Scaler::check`]), categories sorted and distinct (they are binary-searched),
    /// a regression target standardised by a finite mean and a positive deviation, and
    /// at least two distinct classes. The widths are checked against the network by
    /// the model loader. Says which feature is wrong and how.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.features.is_empty() {
            return Err("it has no input features".into());
        }
        for f in &self.features {
            let name = f.name();
            match f {
                Feature::Numeric { median, scaler, .. } => {
                    if !median.is_finite() {
                        return Err(format!("feature `{name}` has a median of {median}"));
                    }
                    scaler
                        .check()
                        .map_err(|e| format!("the scaler of feature `{name}` is unusable: {e}"))?;
                }
                Feature::Categorical {
                    categories, other, ..
                } => {
                    if categories.is_empty() && !other {
                        return Err(format!("categorical feature `{name}` has no categories"));
                    }
                    if let Some(w) = categories.windows(2).find(|w| w[0] >= w[1]) {
                        return Err(format!(
                            "the categories of feature `{name}` are not sorted and distinct (`{}` before `{}`)",
                            w[0], w[1]
                        ));
                    }
                }
            }
        }
        match &self.target {
            Target::Regression {
                name, mean, std, ..
            } => {
                if !mean.is_finite() || !std.is_finite() || *std <= 0.0 {
                    return Err(format!("the target `{name}` is standardised with mean {mean} and standard deviation {std}; both must be finite and the deviation positive"));
                }
            }
            Target::Classification { name, classes } => {
                if classes.len() < 2 {
                    return Err(format!(
                        "the target `{name}` has {} class(es); a classifier needs at least two",
                        classes.len()
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(c) = classes.iter().find(|c| !seen.insert(c.as_str())) {
                    return Err(format!("the target `{name}` lists class `{c}` twice"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::data::csv::CsvOptions;

    /// A column of 170 categories: `f000`-`f119` with 6 training rows each (more
    /// frequent ones than [`MAX_CATEGORIES`]: `f000`-`f099` keep an input, the ties
    /// broken by name) and `r000`-`r049` with 1 row each (rare): the rest share `other`,
    /// as does a category never seen.
    #[test]
    fn a_column_with_many_categories_keeps_the_frequent_ones_and_an_other_input() {
        let mut csv = String::from("c,y\n");
        for k in 0..120 {
            for _ in 0..6 {
                csv.push_str(&format!("f{k:03},{k}\n"));
            }
        }
        for k in 0..50 {
            csv.push_str(&format!("r{k:03},2\n"));
        }
        csv.push_str("never,3\nf007,4\n");
        let t = Table::parse(Path::new("t.csv"), csv.as_bytes(), CsvOptions::default()).unwrap();
        let opts = PrepOptions {
            scale: ScaleKind::Standard,
            target_transform: TargetTransform::None,
            task: Task::Regress,
        };
        let train: Vec<usize> = (0..770).collect();
        let (p, _) = Preprocessor::fit(&t, &[0], 1, &train, &opts).unwrap();
        let Feature::Categorical {
            categories, other, ..
        } = &p.features[0]
        else {
            panic!("a text feature")
        };
        assert!(*other);
        let expected: Vec<String> = (0..MAX_CATEGORIES).map(|k| format!("f{k:03}")).collect();
        assert_eq!(categories, &expected);
        assert_eq!(p.input_width(), MAX_CATEGORIES + 1);
        assert_eq!(p.input_names().last().unwrap(), "c=(other)");
        let (x, report) = p
            .transform_features(&t, &[0], &[0, 719, 720, 770, 771])
            .unwrap();
        let hot =
            |r: usize| -> Vec<usize> { (0..x.cols()).filter(|&j| x.get(r, j) == 1.0).collect() };
        assert_eq!(hot(0), [0], "f000");
        assert_eq!(
            hot(1),
            [MAX_CATEGORIES],
            "f119: frequent, but past the first 100"
        );
        assert_eq!(hot(2), [MAX_CATEGORIES], "r000: rare");
        assert_eq!(hot(3), [MAX_CATEGORIES], "never seen");
        assert_eq!(hot(4), [7], "f007");
        assert!(
            report.unseen.is_empty(),
            "other takes the unseen: {:?}",
            report.unseen
        );
        p.check().unwrap();
        // A column with few categories keeps them all, without `other`.
        let (small, _) =
            Preprocessor::fit(&t, &[0], 1, &(0..60).collect::<Vec<_>>(), &opts).unwrap();
        assert!(
            matches!(&small.features[0], Feature::Categorical { other: false, categories, .. } if categories.len() == 10)
        );
    }

    #[test]
    fn fits_on_training_rows_only_and_encodes_text() {
        let t = Table::parse(
            Path::new("t.csv"),
            b"x,c,y\n1,a,10\n3,b,20\n,a,30\n100,z,40\n",
            CsvOptions::default(),
        )
        .unwrap();
        let opts = PrepOptions {
            scale: ScaleKind::Standard,
            target_transform: TargetTransform::None,
            task: Task::Regress,
        };
        let (p, _) = Preprocessor::fit(&t, &[0, 1], 2, &[0, 1, 2], &opts).unwrap();
        assert_eq!(p.input_names(), ["x", "c=a", "c=b"]);
        let (x, report) = p.transform_features(&t, &[0, 1], &[0, 1, 2, 3]).unwrap();
        // median of training x (1, 3) is 2, mean of filled (1, 3, 2) is 2, std sqrt(2/3)
        assert_eq!(x.row(2), &[0.0, 1.0, 0.0]);
        assert!((x.get(0, 0) + 1.2247449).abs() < 1e-6);
        assert_eq!(x.row(3)[1..], [0.0, 0.0], "unseen category is all zeros");
        assert_eq!(report.unseen, vec![("c".to_string(), 1)]);
        assert_eq!(report.imputed, vec![("x".to_string(), 1)]);
        let y = p.transform_target(&t, 2, &[0, 1, 2]).unwrap();
        assert!((p.target.inverse(y.get(1, 0) as f64) - 20.0).abs() < 1e-5);
    }

    /// A table of 300 rows: a skewed numeric column with missing cells and ties, a
    /// text column, an integer class and a numeric target.
    fn wide_table() -> Table {
        let mut csv = String::from("x,c,k,y\n");
        for i in 0..300u64 {
            let x = if i % 17 == 0 {
                String::new()
            } else {
                format!(
                    "{}",
                    ((i * 7919) % 101) as f64 * 0.25 - if i % 3 == 0 { 9.0 } else { 0.0 }
                )
            };
            let c = ["red", "green", "blue", "teal"][(i % 4) as usize];
            csv.push_str(&format!(
                "{x},{c},{},{}\n",
                i % 3,
                (i * 31 % 97) as f64 / 7.0
            ));
        }
        Table::parse(Path::new("w.csv"), csv.as_bytes(), CsvOptions::default()).unwrap()
    }

    /// Encoding the splits from a consumed table gives, split by split, the matrices
    /// and reports of transforming each split from the whole table (numeric, text and
    /// a repeated feature column, missing cells, an empty split, both tasks).
    #[test]
    fn encoding_splits_from_a_consumed_table_matches_transforming_each() {
        let t = wide_table();
        let train: Vec<usize> = (0..200).rev().filter(|i| i % 7 != 0).collect();
        let valid: Vec<usize> = (200..300).filter(|i| i % 2 == 0).collect();
        let test: Vec<usize> = (0..300)
            .filter(|i| i % 7 == 0 || (*i >= 200 && i % 2 == 1))
            .collect();
        let empty: Vec<usize> = Vec::new();
        for (scale, task, target, cols) in [
            (ScaleKind::Quantile, Task::Regress, 3, vec![0, 1, 2]),
            (ScaleKind::Standard, Task::Classify, 2, vec![1, 0, 3, 0]),
        ] {
            let opts = PrepOptions {
                scale,
                target_transform: TargetTransform::None,
                task,
            };
            let (p, _) = Preprocessor::fit(&t, &cols, target, &train, &opts).unwrap();
            let lists: [&[usize]; 4] = [&train, &valid, &test, &empty];
            let got = p
                .transform_splits(t.clone(), &cols, target, &lists)
                .unwrap();
            assert_eq!(got.len(), 4);
            for (rows, (x, y, report)) in lists.iter().zip(got) {
                let (want_x, want_report) = p.transform_features(&t, &cols, rows).unwrap();
                assert_eq!(x, want_x);
                assert_eq!(y, p.transform_target(&t, target, rows).unwrap());
                assert_eq!(report, want_report);
            }
        }
    }

    /// Fitting on three shards of the training rows gives the one-process fit: order
    /// statistics (medians, quantiles, min/max), categories and classes exactly, means
    /// and standard deviations to summation order.
    #[test]
    fn fitting_on_shards_matches_one_process() {
        use crate::data::collective::tests::run_sharded;
        let t = wide_table();
        let train: Vec<usize> = (0..300).filter(|i| i % 5 != 0).rev().collect();
        for (scale, task, target) in [
            (ScaleKind::Quantile, Task::Regress, 3),
            (ScaleKind::Minmax, Task::Classify, 2),
            (ScaleKind::Standard, Task::Regress, 3),
        ] {
            let opts = PrepOptions {
                scale,
                target_transform: TargetTransform::None,
                task,
            };
            let (alone, _) = Preprocessor::fit(&t, &[0, 1], target, &train, &opts).unwrap();
            let sharded = run_sharded(3, |rank, c| {
                let mine: Vec<usize> = train.iter().skip(rank).step_by(3).copied().collect();
                Preprocessor::fit_with(&t, &[0, 1], target, &mine, &opts, c)
                    .unwrap()
                    .0
            });
            for p in sharded {
                if scale == ScaleKind::Standard {
                    let (
                        Feature::Numeric {
                            scaler: Scaler::Standard { mean: m1, std: s1 },
                            median: d1,
                            ..
                        },
                        Feature::Numeric {
                            scaler: Scaler::Standard { mean: m2, std: s2 },
                            median: d2,
                            ..
                        },
                    ) = (&p.features[0], &alone.features[0])
                    else {
                        panic!("standard scaler expected")
                    };
                    assert_eq!(d1, d2, "median");
                    assert!(
                        (m1 - m2).abs() < 1e-12 * m2.abs().max(1.0) && (s1 - s2).abs() < 1e-12 * s2,
                        "{m1} {s1} vs {m2} {s2}"
                    );
                    assert_eq!(p.features[1], alone.features[1]);
                    let (
                        Target::Regression {
                            mean: a, std: b, ..
                        },
                        Target::Regression {
                            mean: c, std: d, ..
                        },
                    ) = (&p.target, &alone.target)
                    else {
                        panic!("regression")
                    };
                    assert!((a - c).abs() < 1e-12 * c.abs() && (b - d).abs() < 1e-12 * d);
                } else {
                    assert_eq!(p.features, alone.features, "{scale:?}");
                    if task == Task::Classify {
                        assert_eq!(p.target, alone.target);
                    }
                }
            }
        }
    }

    #[test]
    fn detecting_the_task_over_shards_sees_every_shard() {
        use crate::data::collective::tests::run_sharded;
        // Shard 0 holds whole numbers only, shard 1 one fraction: regression overall.
        let got = run_sharded(2, |rank, c| {
            let v = if rank == 0 {
                vec![1.0, 2.0, 1.0]
            } else {
                vec![2.0, 2.5]
            };
            detect_task_with(&Column::Numeric(v.into()), c)
        });
        assert_eq!(got, [Task::Regress, Task::Regress]);
        // Three classes, but no shard sees more than two.
        let got = run_sharded(2, |rank, c| {
            let v = if rank == 0 {
                vec![1.0, 2.0]
            } else {
                vec![2.0, 3.0]
            };
            detect_task_with(&Column::Numeric(v.into()), c)
        });
        assert_eq!(got, [Task::Classify, Task::Classify]);
        // Each shard sees one class; together they are two.
        let got = run_sharded(2, |rank, c| {
            detect_task_with(&Column::Numeric(vec![rank as f64].into()), c)
        });
        assert_eq!(got, [Task::Classify, Task::Classify]);
    }
}
