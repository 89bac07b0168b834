//! `backprop evaluate`'s run: a saved model's metrics on labelled data, read, encoded
//! and scored a chunk at a time.

use std::path::Path;

use anyhow::Result;
use backprop::data::csv::{Survey, Table};
use backprop::data::prep::Target;
use backprop::metrics::{argmax_rows, ClassificationSums, RegressionSums};
use backprop::model::Model;

use crate::input;
use crate::summary::{predict_units, target_units};

/// The row count and metrics (as `metrics.json` has them) of `model` on the labelled
/// data at `path`: a CSV file, a folder of MNIST IDX files (its t10k test set), or a
/// folder of PNG/JPEG images with one sub-folder per class.
pub fn metrics(
    model: &Model,
    path: &Path,
    delimiter: Option<&str>,
    chunk_rows: usize,
) -> Result<(usize, serde_json::Value)> {
    if crate::images::is_image_source(path) {
        let prep = &model.meta.preprocessor;
        let d = crate::images::labelled_dataset(prep, path)?;
        let metrics = crate::summary::evaluate(&model.network, &prep.target, &d);
        return Ok((d.len(), metrics));
    }
    if crate::image_folder::is_folder(path) {
        let prep = &model.meta.preprocessor;
        let d = crate::image_folder::labelled_dataset(prep, path)?;
        let metrics = crate::summary::evaluate(&model.network, &prep.target, &d);
        return Ok((d.len(), metrics));
    }
    csv_metrics(model, path, delimiter, chunk_rows)
}

/// The row count and metrics of a labelled CSV file, read, encoded and scored a chunk
/// at a time (as `predict` reads it), with the sums behind the metrics carried from
/// chunk to chunk ([`RegressionSums`], [`ClassificationSums`]).
fn csv_metrics(
    model: &Model,
    path: &Path,
    delimiter: Option<&str>,
    chunk_rows: usize,
) -> Result<(usize, serde_json::Value)> {
    let opts = input::csv_options(delimiter)?;
    let data = input::CsvInput::open(path)?;
    let src = data.source();
    let survey = Table::survey(src, opts)?;
    let prep = &model.meta.preprocessor;
    let cols = prep.locate_in_survey(&survey)?;
    let tname = prep.target.name();
    let target = survey
        .headers
        .iter()
        .position(|h| h == tname)
        .map_or_else(|| missing_target(&survey, tname), Ok)?;
    let mut chunks = survey.chunks(src, opts, chunk_rows)?;
    let mut regression = RegressionSums::default();
    let mut classification = ClassificationSums::new(model.network.outputs());
    let mut unseen: Vec<(String, usize)> = Vec::new();
    let mut rows = 0;
    while let Some(table) = chunks.next_chunk()? {
        let all: Vec<usize> = (0..table.rows()).collect();
        let (x, report) = prep.transform_features(&table, &cols, &all)?;
        super::predict::add_counts(&mut unseen, &report.unseen);
        let y = prep.transform_target(&table, target, &all)?;
        let pred = predict_units(&model.network, &prep.target, &x);
        match &prep.target {
            Target::Regression { .. } => {
                regression.update(&target_units(&prep.target, &y), pred.as_slice())
            }
            Target::Classification { .. } => classification.update(&argmax_rows(&y), &pred),
        }
        rows += table.rows();
    }
    unseen.sort_by_key(|(n, _)| prep.features.iter().position(|f| f.name() == n));
    for (name, n) in &unseen {
        eprintln!("warning: {n} row(s) have a category of `{name}` not seen in training; encoded as all zeros");
    }
    let metrics = match &prep.target {
        Target::Regression { .. } => serde_json::to_value(regression.finish())?,
        Target::Classification { classes, .. } => {
            serde_json::to_value(classification.finish().with_class_names(classes))?
        }
    };
    Ok((rows, metrics))
}

/// The error a whole-file read gives for a missing target column (with its hint).
fn missing_target(survey: &Survey, name: &str) -> Result<usize> {
    let hint = match backprop::data::csv::closest(name, &survey.headers) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("the columns are: {}", survey.headers.join(", ")),
    };
    Err(backprop::Error::Csv {
        path: survey.source.clone(),
        line: 1,
        column: 0,
        reason: format!("no target column `{name}` in the header; {hint}"),
    }
    .into())
}
