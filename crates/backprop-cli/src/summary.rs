//! Test metrics in the target's own units, and the tables that show them.

use backprop::data::prep::Target;
pub use backprop::metrics::RegressionMetrics;
use backprop::{Matrix, Network};

/// Predictions of `net` for `x`, mapped back to the target's units (regression), or
/// class probabilities (classification).
pub fn predict_units(net: &Network, target: &Target, x: &Matrix) -> Matrix {
    let mut out = Matrix::zeros(0, 0);
    let mut trace = backprop::Trace::default();
    let k = net.outputs();
    let mut data = Vec::with_capacity(x.rows() * k);
    let idx: Vec<usize> = (0..x.rows()).collect();
    for chunk in idx.chunks(backprop::train::eval_rows(net)) {
        out.gather_rows(x, chunk);
        net.forward_train(&out, &mut trace);
        let o = trace.output().as_slice();
        match target {
            Target::Regression { .. } => {
                data.extend(o.iter().map(|&z| target.inverse(z as f64) as f32))
            }
            Target::Classification { .. } => {
                for row in o.chunks_exact(k) {
                    let mut p = vec![0.0; k];
                    backprop::activation::softmax_row(row, &mut p);
                    data.extend(p);
                }
            }
        }
    }
    Matrix::from_vec(x.rows(), k, data).expect("k outputs per row")
}

/// Targets of a standardised target matrix back in their units.
pub fn target_units(target: &Target, y: &Matrix) -> Vec<f32> {
    y.as_slice()
        .iter()
        .map(|&z| target.inverse(z as f64) as f32)
        .collect()
}

/// Formats a regression comparison table: the network next to the baseline.
pub fn regression_table(
    target: &str,
    dollars: Option<f64>,
    rows: &[(&str, RegressionMetrics)],
) -> String {
    let mut s = String::new();
    let dollar_head = if dollars.is_some() {
        format!("  {:>12} {:>12}", "RMSE ($)", "MAE ($)")
    } else {
        String::new()
    };
    s.push_str(&format!(
        "{:<34} {:>10} {:>10} {:>8}{dollar_head}\n",
        format!("test set ({target})"),
        "RMSE",
        "MAE",
        "R²"
    ));
    for (name, m) in rows {
        let d = match dollars {
            Some(f) => format!(
                "  {:>12} {:>12}",
                dollars_fmt(m.rmse * f),
                dollars_fmt(m.mae * f)
            ),
            None => String::new(),
        };
        s.push_str(&format!(
            "{name:<34} {:>10.4} {:>10.4} {:>8.4}{d}\n",
            m.rmse, m.mae, m.r2
        ));
    }
    s
}

fn dollars_fmt(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}${out}", if n < 0 { "-" } else { "" })
}

/// Test (or validation) metrics as JSON: RMSE/MAE/R² in target units, or accuracy,
/// log-loss, per-class precision/recall/F1 and the confusion matrix.
pub fn evaluate(net: &Network, target: &Target, d: &backprop::Dataset) -> serde_json::Value {
    metrics_of(target, &predict_units(net, target, &d.x), &d.y)
}

/// Metrics of predictions `pred` (target units) against encoded targets `y`.
pub fn metrics_of(target: &Target, pred: &Matrix, y: &Matrix) -> serde_json::Value {
    match target {
        Target::Regression { .. } => {
            let actual = target_units(target, y);
            serde_json::to_value(RegressionMetrics::compute(&actual, pred.as_slice()))
                .unwrap_or_default()
        }
        Target::Classification { classes, .. } => {
            let actual = backprop::metrics::argmax_rows(y);
            let m = backprop::metrics::ClassificationMetrics::compute(&actual, pred)
                .with_class_names(classes);
            serde_json::to_value(m).unwrap_or_default()
        }
    }
}

/// Regression metrics read back from their JSON.
pub fn regression(v: &serde_json::Value) -> Option<RegressionMetrics> {
    Some(RegressionMetrics {
        rmse: v.get("rmse")?.as_f64()?,
        mae: v.get("mae")?.as_f64()?,
        r2: v.get("r2")?.as_f64()?,
    })
}

/// `8-256-256-128-1`; for a stack of layers (`--layers`), their kinds and output
/// sizes: `784 -> conv2d 32x28x28 -> maxpool2d 32x14x14 -> ... -> dense 10`.
pub fn shape(c: &backprop::NetworkConfig) -> String {
    if !c.stack.is_empty() {
        let mut parts = vec![c.inputs.to_string()];
        for s in &c.stack {
            let l = s.layer();
            let out = match s {
                backprop::layer::LayerSpec::Conv2d(c) => c.output().to_string(),
                backprop::layer::LayerSpec::MaxPool2d(p) => p.0.output().to_string(),
                backprop::layer::LayerSpec::AvgPool2d(p) => p.0.output().to_string(),
                _ => l.outputs().to_string(),
            };
            parts.push(format!("{} {out}", l.kind()));
        }
        return parts.join(" -> ");
    }
    let mut parts = vec![c.inputs.to_string()];
    parts.extend(c.hidden.iter().map(|h| h.to_string()));
    parts.push(c.outputs.to_string());
    parts.join("-")
}

/// `1 epoch`, `2 epochs`.
pub fn epochs(n: usize) -> String {
    format!("{n} epoch{}", if n == 1 { "" } else { "s" })
}

/// A compact human number: 3 significant digits, scientific when very large or small.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_grouped_by_thousands() {
        assert_eq!(dollars_fmt(49_876.4), "$49,876");
        assert_eq!(dollars_fmt(1_234_567.0), "$1,234,567");
    }
}
