//! `backprop evaluate`: a saved model's metrics on new labelled data.

use anyhow::Result;
use backprop::data::prep::Target;
use backprop::model::Model;
use backprop::Dataset;

use crate::args::EvaluateArgs;
use crate::input;
use crate::summary::{regression_table, RegressionMetrics};

/// Runs `backprop evaluate`.
pub fn run(a: EvaluateArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let prep = &model.meta.preprocessor;
    let d = if crate::images::is_image_source(&a.data) {
        crate::images::labelled_dataset(prep, &a.data)?
    } else {
        csv_dataset(&a, &model)?
    };
    let metrics = super::train::evaluate(&model.network, &prep.target, &d);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "rows": d.len(), "test": metrics }))?
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
                    &[(&format!("{} ({} rows)", a.data.display(), d.len()), m)]
                )
            );
        }
        Target::Classification { .. } => {
            let m: backprop::metrics::ClassificationMetrics = serde_json::from_value(metrics)?;
            print!(
                "{}",
                crate::classify::table(&a.data.display().to_string(), &m)
            );
        }
    }
    Ok(())
}

/// The labelled rows of a CSV file, encoded as the model was trained.
fn csv_dataset(a: &EvaluateArgs, model: &Model) -> Result<Dataset> {
    let table = input::read_table(&a.data, input::csv_options(a.delimiter.as_deref())?)?;
    let prep = &model.meta.preprocessor;
    let cols = prep.locate_features(&table)?;
    let target = table.require_column(prep.target.name(), "target")?;
    let rows: Vec<usize> = (0..table.rows()).collect();
    let (x, report) = prep.transform_features(&table, &cols, &rows)?;
    for (name, n) in &report.unseen {
        eprintln!("warning: {n} row(s) have a category of `{name}` not seen in training; encoded as all zeros");
    }
    let y = prep.transform_target(&table, target, &rows)?;
    Ok(Dataset::new(x, y)?)
}
