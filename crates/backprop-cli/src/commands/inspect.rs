//! `backprop inspect`: what a saved model is.

use anyhow::Result;
use backprop::data::prep::{Feature, Scaler, Target};
use backprop::model::Model;

use crate::args::InspectArgs;

/// Runs `backprop inspect`.
pub fn run(a: InspectArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let m = &model.meta;
    println!(
        "model {} (format version {})",
        a.model.display(),
        m.format_version
    );
    println!("\nlayers:");
    for (i, spec) in m.layers.iter().enumerate() {
        match spec {
            backprop::layer::LayerSpec::Dense(l) => println!(
                "  layers.{i}: {} -> {} {:<10} {} parameters",
                l.inputs,
                l.outputs,
                l.activation.name(),
                l.num_params()
            ),
            other => println!(
                "  layers.{i}: {}, {} parameters",
                other.describe(),
                other.layer().num_params()
            ),
        }
    }
    println!("  total: {} parameters", model.network.num_params());
    println!(
        "\ntarget: {}",
        match &m.preprocessor.target {
            Target::Regression {
                name,
                transform,
                mean,
                std,
            } => format!(
                "{name} (regression; transform {}, standardised with mean {mean:.4}, std {std:.4})",
                crate::settings::flag_value(transform)
            ),
            Target::Classification { name, classes } => format!(
                "{name} (classification over {} classes: {})",
                classes.len(),
                classes.join(", ")
            ),
        }
    );
    println!(
        "\nfeatures ({} columns -> {} inputs):",
        m.preprocessor.features.len(),
        m.preprocessor.input_width()
    );
    print_features(&m.preprocessor.features);
    print_onnx(&model);
    let t = &m.training;
    println!(
        "\ntraining: loss {}, optimizer {}, lr {}, schedule {}, batch {}, {}, seed {}",
        t.loss,
        t.optimizer.name(),
        t.lr,
        t.schedule,
        t.batch_size,
        crate::summary::epochs(t.epochs),
        t.seed
    );
    if let Ok(text) = std::fs::read_to_string(a.model.join("metrics.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            println!("\nmetrics: test {}", v["test"]);
            if !v["baseline"]["test"].is_null() {
                println!(
                    "         no-hidden-layer baseline test {}",
                    v["baseline"]["test"]
                );
            }
        }
    }
    Ok(())
}

/// One line per feature: its scaling or categories.
fn print_features(features: &[Feature]) {
    // Image models have a feature per pixel: show the first few and count the rest.
    const SHOWN: usize = 20;
    if features.len() > SHOWN {
        println!(
            "  (first {SHOWN} of {}; all are listed in model.json)",
            features.len()
        );
    }
    for f in features.iter().take(SHOWN) {
        match f {
            Feature::Numeric {
                name,
                median,
                scaler,
                constant,
            } => {
                let how = match scaler {
                    Scaler::Standard { mean, std } => {
                        format!("standard (mean {mean:.4}, std {std:.4})")
                    }
                    Scaler::Minmax { min, range } => {
                        format!("min-max (min {min:.4}, range {range:.4})")
                    }
                    Scaler::Quantile { references } => {
                        format!("quantile -> normal ({} quantiles)", references.len())
                    }
                    Scaler::None => "unscaled".into(),
                };
                println!(
                    "  {name:<20} numeric, {how}, missing -> {median:.4}{}",
                    if *constant {
                        ", constant in training"
                    } else {
                        ""
                    }
                );
            }
            Feature::Categorical {
                name,
                categories,
                other,
            } => println!(
                "  {name:<20} one-hot over {} categories: {}{}",
                categories.len(),
                categories.join(", "),
                if *other {
                    ", and one input for every other category (rare in training, or unseen)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// The inputs and outputs `backprop export` would give the model.
fn print_onnx(model: &Model) {
    const SHOWN: usize = 20;
    match backprop::onnx::signature(model, backprop::onnx::InputMode::Auto) {
        Ok(sig) => {
            let list = |ports: &[backprop::onnx::Port]| {
                let mut s: Vec<String> = ports.iter().take(SHOWN).map(|p| p.to_string()).collect();
                if ports.len() > SHOWN {
                    s.push(format!("... ({} in all)", ports.len()));
                }
                s.join(", ")
            };
            println!("\nonnx (backprop export): inputs {}", list(&sig.inputs));
            println!("                        outputs {}", list(&sig.outputs));
        }
        Err(e) => println!("\nonnx (backprop export): {e}"),
    }
}
