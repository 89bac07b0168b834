//! `backprop evaluate`: a saved model's metrics on new labelled data.

use anyhow::Result;
use backprop::data::csv::{Survey, Table};
use backprop::data::prep::Target;
use backprop::metrics::{argmax_rows, ClassificationSums, RegressionSums};
use backprop::model::Model;

use crate::args::EvaluateArgs;
use crate::input;
use crate::summary::{predict_units, regression_table, target_units, RegressionMetrics};

/// Runs `backprop evaluate`.
pub fn run(a: EvaluateArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let prep = &model.meta.preprocessor;
    let (rows, metrics) = if crate::images::is_image_source(&a.data) {
        let d = crate::images::labelled_dataset(prep, &a.data)?;
        let metrics = crate::summary::evaluate(&model.network, &prep.target, &d);
        (d.len(), metrics)
    } else {
        csv_metrics(&a, &model)?
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "rows": rows, "test": metrics }))?
        );
        return Ok(());
    }
    match &prep.target {
        Target::Regression { name, .. } => {
            let m: RegressionMetrics = RegressionMetrics {
                rmse: metrics["rmse"].as_f64().unwrap_or(f64::NAN),
                mae: metrics["mae"].as_f64().unwrap_or(f64::NAN),
                r2: metrics["r2"].as_f64().unwrap_or(f64::NAN),
            };
            print!(
                "{}",
                regression_table(
                    name,
                    None,
                    &[(&format!("{} ({} rows)", a.data.display(), rows), m)]
                )
            );
        }
        Target::Classification { .. } => {
            let m: backprop::metrics::ClassificationMetrics = serde_json::from_value(metrics)?;
            print!(
                "{}",
                crate::report::classify::table(&a.data.display().to_string(), &m)
            );
        }
    }
    Ok(())
}

/// The row count and metrics of a labelled CSV file, read, encoded and scored a chunk
/// at a time (as `predict` reads it), with the sums behind the metrics carried from
/// chunk to chunk ([`RegressionSums`], [`ClassificationSums`]).
fn csv_metrics(a: &EvaluateArgs, model: &Model) -> Result<(usize, serde_json::Value)> {
    let opts = input::csv_options(a.delimiter.as_deref())?;
    let data = input::CsvInput::open(&a.data)?;
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
    let mut chunks = survey.chunks(src, opts, a.chunk_rows)?;
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
