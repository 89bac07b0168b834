//! The last section of `report.html`: the test predictions, for regression (predicted
//! against actual, residuals) or classification (confusion matrix, per-class recall).

use backprop::metrics::{argmax_rows, ClassificationMetrics};

use super::html::{figure, table};
use super::run_report::{RunReport, MAX_POINTS};
use super::svg::{self, Axis, Corner, Plot, Scale, PALETTE};
use crate::summary::target_units;

fn units(r: &RunReport, name: &str) -> String {
    match r.dollars {
        Some(d) if (d - 1.0).abs() > f64::EPSILON => format!("{name} (×${})", thousands(d)),
        Some(_) => format!("{name} ($)"),
        None => format!("{name} (target units)"),
    }
}

pub(super) fn regression_section(r: &RunReport) -> String {
    let name = r.target.name();
    let pred = r.test_pred;
    let actual = target_units(r.target, r.test_y);
    let pairs: Vec<(f64, f64)> = actual
        .iter()
        .zip(pred.as_slice())
        .map(|(&a, &p)| (a as f64, p as f64))
        .collect();
    let every = pairs.len().div_ceil(MAX_POINTS).max(1);
    let shown: Vec<(f64, f64)> = pairs.iter().step_by(every).copied().collect();
    let vals = shown.iter().flat_map(|p| [p.0, p.1]);
    let (lo, hi) = Axis::fit("", vals, Scale::Linear, 0.03).range();
    let mut a = Plot::new(
        "Predicted vs actual (test rows)",
        Axis::new(&units(r, &format!("actual {name}")), lo, hi, Scale::Linear),
        Axis::new(
            &units(r, &format!("predicted {name}")),
            lo,
            hi,
            Scale::Linear,
        ),
    )
    .size(640.0, 520.0)
    .legend_at(Corner::TopLeft);
    a.points(
        &shown,
        PALETTE[0],
        2.2,
        0.3,
        Some(&format!("test row ({} of {})", shown.len(), pairs.len())),
    );
    a.line(
        &[(lo, lo), (hi, hi)],
        PALETTE[1],
        1.5,
        true,
        Some("perfect prediction"),
    );
    let resid: Vec<(f64, f64)> = shown.iter().map(|&(a, p)| (p, p - a)).collect();
    let mut b = Plot::new(
        "Residuals (test rows)",
        Axis::fit(
            &units(r, &format!("predicted {name}")),
            resid.iter().map(|q| q.0),
            Scale::Linear,
            0.03,
        ),
        Axis::fit(
            &units(r, "residual: predicted − actual"),
            resid.iter().map(|q| q.1),
            Scale::Linear,
            0.05,
        ),
    )
    .size(640.0, 520.0);
    b.points(&resid, PALETTE[0], 2.2, 0.3, Some("test row"));
    b.line(
        &[(-1e12, 0.0), (1e12, 0.0)],
        "#333",
        1.2,
        false,
        Some("zero error"),
    );
    format!(
        "<h2>Predictions on the test rows</h2><p>Rows the network never saw during training. Points on the diagonal are exact; a pattern in the residuals (rather than an even band around zero) is structure the network has not learned.</p><div class=\"grid\">{}{}</div>\n",
        figure(&a.finish(), "Each dot is one test row: actual value across, prediction up."),
        figure(&b.finish(), "Prediction error of each test row against its prediction.")
    )
}

/// `100000` as `100,000`.
pub(super) fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn classification_section(r: &RunReport, classes: &[String]) -> String {
    let probs = r.test_pred;
    let actual = argmax_rows(r.test_y);
    let m = ClassificationMetrics::compute(&actual, probs).with_class_names(classes);
    let ticks: Vec<(f64, String)> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (i as f64, c.clone()))
        .collect();
    let rows: Vec<Vec<String>> = m
        .per_class
        .iter()
        .map(|c| {
            vec![
                c.class.clone(),
                format!("{:.3}", c.precision),
                format!("{:.3}", c.recall),
                format!("{:.3}", c.f1),
                c.support.to_string(),
            ]
        })
        .collect();
    format!(
        "<h2>Predictions on the test rows</h2><div class=\"grid\">{}{}</div>{}\n",
        figure(&confusion_chart(&m, &ticks), "Rows: actual class; columns: predicted class; colour: share of the actual class's rows, numbers: counts. A perfect classifier fills only the diagonal."),
        figure(&recall_chart(&m, ticks), "Share of each class's test rows that the network classified correctly."),
        table(&["class", "precision", "recall", "F1", "rows"], &rows)
    )
}

/// Counts of actual against predicted classes, coloured by share of the actual class.
fn confusion_chart(m: &ClassificationMetrics, ticks: &[(f64, String)]) -> String {
    let k = ticks.len();
    let x = Axis::new("predicted class", -0.5, k as f64 - 0.5, Scale::Linear);
    let y = Axis::new("actual class", -0.5, k as f64 - 0.5, Scale::Linear);
    let side = (360.0 + 34.0 * k as f64).min(760.0);
    let mut p = Plot::new("Confusion matrix (test rows)", x, y)
        .size(side + 120.0, side)
        .x_ticks(ticks.to_vec())
        .y_ticks(
            ticks
                .iter()
                .map(|(v, c)| (k as f64 - 1.0 - v, c.clone()))
                .collect(),
        );
    let row_max: Vec<f64> = m
        .confusion
        .iter()
        .map(|r| r.iter().sum::<u64>().max(1) as f64)
        .collect();
    let xs: Vec<f64> = (0..k).map(|i| i as f64).collect();
    let ys: Vec<f64> = (0..k).map(|i| (k - 1 - i) as f64).collect();
    let shares: Vec<Vec<f64>> = m
        .confusion
        .iter()
        .enumerate()
        .map(|(a, row)| row.iter().map(|&c| c as f64 / row_max[a]).collect())
        .collect();
    let edges: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    p.heat(
        &xs,
        &ys,
        &shares,
        svg::ColorBar {
            label: "share of the actual class's rows".into(),
            edges,
            log: false,
        },
    );
    if k <= 20 {
        for (a, row) in m.confusion.iter().enumerate() {
            for (q, &c) in row.iter().enumerate() {
                let color = if shares[a][q] > 0.6 { "#222" } else { "#fff" };
                p.text(
                    q as f64,
                    (k - 1 - a) as f64,
                    &c.to_string(),
                    color,
                    if k > 12 { 9.0 } else { 12.0 },
                );
            }
        }
    }
    p.finish()
}

/// Per-class recall as bars, with the overall accuracy.
fn recall_chart(m: &ClassificationMetrics, ticks: Vec<(f64, String)>) -> String {
    let k = ticks.len();
    let bars_x = Axis::new("class", -0.5, k as f64 - 0.5, Scale::Linear);
    let mut bars = Plot::new(
        "Per-class accuracy (recall, test rows)",
        bars_x,
        Axis::new(
            "rows of the class predicted correctly (share)",
            0.0,
            1.25,
            Scale::Linear,
        ),
    )
    .x_ticks(ticks);
    for (i, c) in m.per_class.iter().enumerate() {
        bars.rect(
            (i as f64 - 0.35, 0.0),
            (i as f64 + 0.35, c.recall),
            PALETTE[0],
            (i == 0).then_some("recall"),
        );
    }
    bars.line(
        &[(-1.0, m.accuracy), (k as f64, m.accuracy)],
        PALETTE[1],
        1.5,
        true,
        Some(&format!("overall accuracy {:.3}", m.accuracy)),
    );
    bars.finish()
}
