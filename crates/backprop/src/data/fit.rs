//! Fitting the preprocessing on the training rows: the task a target column makes,
//! each numeric feature's median and scaler, each text feature's categories, and the
//! target's encoding. All of it works on rows split between processes too (a
//! [`Collective`]), so a sharded MPI run fits what one process would.

use super::collective::{order_statistics, total, union, Alone, Collective};
use super::csv::{Column, Numbers, Table};
use super::prep::{
    cell_text, Feature, PrepOptions, PrepReport, Preprocessor, Target, TargetTransform, Task,
    MISSING_CATEGORY,
};
use super::scale::{ScaleKind, Scaler};
use crate::error::{Error, Result};

/// Guesses the task from a target column: text, or a few distinct integers, is
/// classification.
pub fn detect_task(col: &Column) -> Task {
    detect_task_with(col, &mut Alone)
}

/// [`detect_task`] for a column whose rows are split between processes (`c`).
pub fn detect_task_with(col: &Column, c: &mut dyn Collective) -> Task {
    match col {
        Column::Text(_) => Task::Classify,
        Column::Numeric(v) => {
            let mut fractional = false;
            let mut distinct: Vec<i64> = Vec::new();
            for x in v.iter().filter(|x| !x.is_nan()) {
                if x.fract() != 0.0 {
                    fractional = true;
                    break;
                }
                let k = x as i64;
                if !distinct.contains(&k) {
                    distinct.push(k);
                    if distinct.len() > 20 {
                        break;
                    }
                }
            }
            if total(c, usize::from(fractional)) > 0 {
                return Task::Regress;
            }
            let local: Vec<String> = distinct.iter().map(i64::to_string).collect();
            match union(c, &local).len() {
                2..=20 => Task::Classify,
                _ => Task::Regress,
            }
        }
    }
}

/// A numeric feature fitted on `rows` of its column (`n_rows` over all processes):
/// missing cells take the training median, then the scaler is fitted on the filled
/// values. Also says whether the column is constant in the training rows.
fn fit_numeric(
    name: String,
    v: &Numbers,
    rows: &[usize],
    n_rows: usize,
    scale: ScaleKind,
    c: &mut dyn Collective,
) -> (Feature, bool) {
    // Sized for the filled column below, so it is never reallocated.
    let mut present = Vec::with_capacity(rows.len());
    present.extend(rows.iter().map(|&i| v.get(i)).filter(|x| !x.is_nan()));
    present.sort_by(f64::total_cmp);
    let n_present = total(c, present.len());
    let (median, constant) = if n_present == 0 {
        (0.0, true)
    } else {
        let m = n_present / 2;
        // [min, max, middle (and the one below it for an even count)]
        let mut ks = vec![0, n_present - 1, m];
        if n_present % 2 != 1 {
            ks.push(m - 1);
        }
        let o = order_statistics(c, &present, &ks);
        let median = if n_present % 2 == 1 {
            o[2]
        } else {
            0.5 * (o[3] + o[2])
        };
        (median, o[0] == o[1])
    };
    let mut filled = present;
    filled.resize(rows.len(), median);
    let scaler = Scaler::fit_with(scale, &mut filled, n_rows, c);
    let feature = Feature::Numeric {
        name,
        median,
        scaler,
        constant,
    };
    (feature, constant)
}

/// A text column with more categories than this in its training rows keeps an input for
/// at most this many, its most frequent ones with at least [`MIN_CATEGORY_ROWS`] rows
/// each (ties broken by name); the others share one `other` input (scikit-learn's
/// `OneHotEncoder(max_categories=..., min_frequency=...)`). A category a handful of rows
/// carry cannot be learned, and one input per value of a 2,000-value column makes a
/// network of millions of weights.
pub const MAX_CATEGORIES: usize = 100;

/// Rows a category needs in training to keep its own input when its column has more than
/// [`MAX_CATEGORIES`] categories.
pub const MIN_CATEGORY_ROWS: u64 = 5;

/// A text feature fitted on `rows` of its column: the categories of every process,
/// sorted (missing cells are [`MISSING_CATEGORY`]), or only the frequent ones and an
/// `other` input when there are more than [`MAX_CATEGORIES`]. Also says whether there is
/// only one input.
fn fit_categorical(
    name: String,
    v: &[String],
    rows: &[usize],
    c: &mut dyn Collective,
) -> (Feature, bool) {
    let text = |i: usize| -> &str {
        if v[i].is_empty() {
            MISSING_CATEGORY
        } else {
            &v[i]
        }
    };
    let mut cats: Vec<String> = rows.iter().map(|&i| text(i).to_string()).collect();
    cats.sort();
    cats.dedup();
    let mut categories = union(c, &cats);
    let other = categories.len() > MAX_CATEGORIES;
    if other {
        // Counted over every process, so each keeps the same categories.
        let mut counts = vec![0u64; categories.len()];
        for &i in rows {
            if let Ok(k) = categories.binary_search_by(|x| x.as_str().cmp(text(i))) {
                counts[k] += 1;
            }
        }
        c.sum_u64(&mut counts);
        let mut keep: Vec<usize> = (0..categories.len())
            .filter(|&k| counts[k] >= MIN_CATEGORY_ROWS)
            .collect();
        keep.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        keep.truncate(MAX_CATEGORIES);
        keep.sort_unstable();
        categories = keep.into_iter().map(|k| categories[k].clone()).collect();
    }
    let constant = categories.len() + usize::from(other) == 1;
    (
        Feature::Categorical {
            name,
            categories,
            other,
        },
        constant,
    )
}

/// The target column of a table and the training rows to fit its encoding on.
struct TargetFit<'a> {
    table: &'a Table,
    target: usize,
    rows: &'a [usize],
    /// Training rows over all processes.
    n_rows: usize,
}

impl TargetFit<'_> {
    fn error(&self, line: u64, reason: String) -> Error {
        Error::Csv {
            path: self.table.source.clone(),
            line,
            column: self.target + 1,
            reason,
        }
    }

    /// The target's encoding for `opts.task`; a target missing in any training row is
    /// an error naming the first such line.
    fn target(&self, opts: &PrepOptions, c: &mut dyn Collective) -> Result<Target> {
        let (table, rows) = (self.table, self.rows);
        let tname = &table.headers[self.target];
        let tcol = &table.columns[self.target];
        let missing: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&i| tcol.is_missing(i))
            .collect();
        let n_missing = total(c, missing.len());
        if n_missing > 0 {
            let line = missing.first().map_or(1, |&i| table.lines.get(i));
            return Err(self.error(line, format!("the target `{tname}` is missing in {n_missing} row(s); remove those rows or fill them in")));
        }
        match (opts.task, tcol) {
            (Task::Regress, Column::Numeric(v)) => self.regression(v, opts.target_transform, c),
            (Task::Regress, Column::Text(_)) => Err(self.error(1, format!("the target `{tname}` holds text, so it cannot be regressed; use --task classify"))),
            (Task::Classify, _) => self.classification(c),
        }
    }

    /// A regression target: transformed, then standardised by the training mean and
    /// deviation. A constant target is an error (nothing to learn).
    fn regression(
        &self,
        v: &Numbers,
        transform: TargetTransform,
        c: &mut dyn Collective,
    ) -> Result<Target> {
        let tname = &self.table.headers[self.target];
        let mut t = Vec::with_capacity(self.rows.len());
        for &i in self.rows {
            let y = v.get(i);
            t.push(match transform {
                TargetTransform::None => y,
                TargetTransform::Log if y > 0.0 => y.ln(),
                TargetTransform::Log => {
                    return Err(self.error(
                        self.table.lines.get(i),
                        format!("--target-transform log needs positive targets, found {y}"),
                    ))
                }
            });
        }
        let Scaler::Standard { mean, std } =
            Scaler::fit_with(ScaleKind::Standard, &mut t, self.n_rows, c)
        else {
            unreachable!("standard scaler")
        };
        t.sort_by(f64::total_cmp);
        let ends = match self.n_rows {
            0 => vec![0.0, 0.0],
            n => order_statistics(c, &t, &[0, n - 1]),
        };
        if ends[0] == ends[1] {
            return Err(self.error(1, format!("the target `{tname}` has the same value ({}) in every training row; there is nothing to learn", ends[0])));
        }
        Ok(Target::Regression {
            name: tname.clone(),
            transform,
            mean,
            std,
        })
    }

    /// A classification target: the classes of every process's training rows,
    /// numbers in numeric order and text in text order. Fewer than two is an error.
    fn classification(&self, c: &mut dyn Collective) -> Result<Target> {
        let tname = &self.table.headers[self.target];
        let tcol = &self.table.columns[self.target];
        let sorted = |mut classes: Vec<String>| {
            match tcol {
                Column::Numeric(_) => classes.sort_by(|a, b| {
                    a.parse::<f64>()
                        .unwrap_or(0.0)
                        .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
                }),
                Column::Text(_) => classes.sort(),
            }
            classes.dedup();
            classes
        };
        let local = sorted(self.rows.iter().map(|&i| cell_text(tcol, i)).collect());
        let classes = sorted(c.gather_strings(&local));
        if classes.len() < 2 {
            return Err(self.error(1, format!("the target `{tname}` has a single class in the training rows; a classifier needs at least two")));
        }
        Ok(Target::Classification {
            name: tname.clone(),
            classes,
        })
    }
}

impl Preprocessor {
    /// Fits on `rows` of `table`, using `features` (column indices) as inputs and
    /// column `target` as the target.
    pub fn fit(
        table: &Table,
        features: &[usize],
        target: usize,
        rows: &[usize],
        opts: &PrepOptions,
    ) -> Result<(Preprocessor, PrepReport)> {
        Preprocessor::fit_with(table, features, target, rows, opts, &mut Alone)
    }

    /// [`Preprocessor::fit`] on data split between processes: each passes its own
    /// shard of the table and of the training rows, and all of them get the
    /// preprocessor fitted on all training rows. Medians, quantiles, minima and maxima
    /// are exact order statistics of the union ([`order_statistics`]), categories and
    /// classes are unions, counts are sums; means and standard deviations are sums
    /// over the shards, so they can differ from the one-process values in the last
    /// bits (floating-point summation order).
    pub fn fit_with(
        table: &Table,
        features: &[usize],
        target: usize,
        rows: &[usize],
        opts: &PrepOptions,
        c: &mut dyn Collective,
    ) -> Result<(Preprocessor, PrepReport)> {
        let n_rows = total(c, rows.len());
        let mut report = PrepReport::default();
        let mut feats = Vec::with_capacity(features.len());
        for &j in features {
            let name = table.headers[j].clone();
            let (feature, constant) = match &table.columns[j] {
                Column::Numeric(v) => fit_numeric(name, v, rows, n_rows, opts.scale, c),
                Column::Text(v) => fit_categorical(name, v, rows, c),
            };
            if constant {
                report.constant.push(feature.name().to_string());
            }
            feats.push(feature);
        }
        let fit = TargetFit {
            table,
            target,
            rows,
            n_rows,
        };
        let target_spec = fit.target(opts, c)?;
        Ok((
            Preprocessor {
                features: feats,
                target: target_spec,
            },
            report,
        ))
    }
}
