//! What `backprop train` prints and writes as plain text: the summary table and the
//! per-epoch history.

use std::fmt::Write;

use backprop::data::prep::Target;
use backprop::History;

use crate::summary::{regression, regression_table, RegressionMetrics};

/// The summary `backprop train` prints: the test metrics of the network (of `shape`)
/// beside those of the no-hidden-layer baseline (`base`).
pub fn train_summary(
    test: &serde_json::Value,
    base: Option<&serde_json::Value>,
    target: &Target,
    dollars: Option<f64>,
    shape: &str,
) -> String {
    if test.is_null() {
        return "no test rows (--test-fraction 0): the validation metrics are in metrics.json\n"
            .to_string();
    }
    if let (Some(t), Target::Regression { name, .. }) = (regression(test), target) {
        let mut rows = vec![(format!("network {shape}"), t)];
        if let Some(b) = base.and_then(regression) {
            rows.push(("no hidden layer (linear regression)".to_string(), b));
        }
        let rows: Vec<(&str, RegressionMetrics)> =
            rows.iter().map(|(n, m)| (n.as_str(), *m)).collect();
        return regression_table(name, dollars, &rows);
    }
    let mut s = String::new();
    if let Ok(m) = serde_json::from_value::<backprop::metrics::ClassificationMetrics>(test.clone())
    {
        s.push_str(&super::classify::table(
            &format!("test set ({})", target.name()),
            &m,
        ));
    }
    if let Some(b) = base {
        let _ = writeln!(
            s,
            "no hidden layer (softmax regression): accuracy {:.4}, log-loss {:.4}",
            b["accuracy"].as_f64().unwrap_or(f64::NAN),
            b["log_loss"].as_f64().unwrap_or(f64::NAN)
        );
    }
    s
}

/// Per epoch: losses, learning rate, seconds, and per layer gradient norm and
/// update-to-weight ratio.
pub fn history_csv(h: &History) -> String {
    let layers = h.epochs.first().map_or(0, |e| e.grad_norms.len());
    let mut s = String::from("epoch,train_loss,valid_loss,lr,seconds");
    for l in 0..layers {
        s.push_str(&format!(",grad_norm_{l},update_ratio_{l}"));
    }
    s.push('\n');
    for e in &h.epochs {
        s.push_str(&format!(
            "{},{},{},{},{:.6}",
            e.epoch,
            e.train_loss,
            e.valid_loss.map_or(String::new(), |v| v.to_string()),
            e.lr,
            e.seconds
        ));
        for (g, r) in e.grad_norms.iter().zip(&e.update_ratios) {
            s.push_str(&format!(",{g},{r}"));
        }
        s.push('\n');
    }
    s
}
