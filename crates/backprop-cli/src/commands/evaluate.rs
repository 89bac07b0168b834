//! `backprop evaluate`: a saved model's metrics on new labelled data.

use anyhow::Result;
use backprop::data::prep::Target;
use backprop::model::Model;

use crate::args::EvaluateArgs;
use crate::summary::{regression_table, RegressionMetrics};

/// Runs `backprop evaluate`.
pub fn run(a: EvaluateArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let prep = &model.meta.preprocessor;
    let (rows, metrics) =
        crate::run::evaluate::metrics(&model, &a.data, a.delimiter.as_deref(), a.chunk_rows)?;
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
