//! `backprop explain lr` rendered: the range test's numbers as text, JSON, an SVG chart
//! and an HTML page; and the note `train --lr auto` prints.

use std::fmt::Write;

use backprop::explain::LrRange;
use backprop::TrainConfig;
use serde_json::json;

use super::Rendered;
use crate::report::html::{figure, page, table};
use crate::report::svg::{fmt_num, Axis, Corner, Plot, Scale, PALETTE};

/// `train --lr auto`: how the rate was found.
pub fn auto_note(lo: f32, hi: f32, r: &LrRange) -> String {
    format!("--lr auto: a range test over {} to {} in {} steps found the lowest smoothed cost at lr {}; using a tenth of it, {}", fmt_num(lo as f64), fmt_num(hi as f64), r.lrs.len(), fmt_num(r.lrs[r.min_index] as f64), fmt_num(r.suggestion as f64))
}

/// A range test and what it was run on.
pub struct LrView<'a> {
    /// The test's numbers.
    pub range: &'a LrRange,
    /// The training configuration tested.
    pub config: &'a TrainConfig,
    /// The network's shape, `8-64-1`.
    pub shape: String,
    /// Rows per mini-batch.
    pub batch: usize,
    /// Smallest and largest rate asked for, and the steps.
    pub lr_min: f32,
    pub lr_max: f32,
    pub steps: usize,
}

/// The text, SVG, JSON and HTML of a range test.
pub fn render(v: &LrView) -> serde_json::Result<Rendered> {
    let svg = chart(v.range, v.config);
    let html = page("backprop explain lr", &html_body(v, &svg));
    Ok(Rendered {
        text: text(v),
        files: vec![
            ("lr_range.svg", svg),
            ("index.html", html),
            ("lr.json", serde_json::to_string_pretty(&numbers(v))?),
        ],
    })
}

/// What `backprop explain lr` prints.
fn text(v: &LrView) -> String {
    let (r, config) = (v.range, v.config);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "range test of a {} network ({} {}, batch {}), lr {} to {} in {} steps{}",
        v.shape,
        config.loss,
        config.optimizer.name(),
        v.batch,
        fmt_num(v.lr_min as f64),
        fmt_num(v.lr_max as f64),
        v.steps,
        if r.stopped_early {
            format!(", stopped at step {} when the cost blew up", r.lrs.len())
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        text,
        "lowest smoothed cost {:.4} at lr {}; steepest fall at lr {}",
        r.smoothed[r.min_index],
        fmt_num(r.lrs[r.min_index] as f64),
        fmt_num(r.lrs[r.steepest_index] as f64)
    );
    let _ = writeln!(text, "suggested learning rate: {} (use it with `backprop train --lr {}`, or let `--lr auto` find it)", fmt_num(r.suggestion as f64), fmt_num(r.suggestion as f64));
    text
}

/// Every number drawn, for `lr.json`.
fn numbers(v: &LrView) -> serde_json::Value {
    let (r, config) = (v.range, v.config);
    json!({
        "network": v.shape,
        "optimizer": config.optimizer.name(),
        "loss": config.loss.name(),
        "batch_size": v.batch,
        "lr_min": v.lr_min, "lr_max": v.lr_max, "steps": v.steps,
        "lrs": r.lrs, "losses": r.losses, "smoothed": r.smoothed,
        "min_index": r.min_index, "steepest_index": r.steepest_index,
        "suggestion": r.suggestion, "stopped_early": r.stopped_early,
    })
}

fn html_body(v: &LrView, svg: &str) -> String {
    let (r, config) = (v.range, v.config);
    let rows = vec![
        vec![
            "lowest smoothed cost".to_string(),
            fmt_num(r.lrs[r.min_index] as f64),
            fmt_num(r.smoothed[r.min_index]),
        ],
        vec![
            "steepest descent".to_string(),
            fmt_num(r.lrs[r.steepest_index] as f64),
            fmt_num(r.smoothed[r.steepest_index]),
        ],
        vec![
            "suggested (lowest / 10)".to_string(),
            fmt_num(r.suggestion as f64),
            String::new(),
        ],
    ];
    format!(
        "<h1>Learning-rate range test</h1><p class=\"lead\">A {shape} network ({opt}, batch {batch}) trained for {n} mini-batch steps while the learning rate grows by the same factor each step, from {lo} to {hi} (Smith 2017, \"Cyclical Learning Rates for Training Neural Networks\"). While the rate is too small the cost barely moves; then it falls fastest; then the steps overshoot and it blows up{stop}.</p>\
<div class=\"grid\">{fig}</div>{tab}<p>The suggestion is the rate at the lowest smoothed cost divided by 10: at the lowest point the steps are already on the edge of overshooting, and a rate a little below the steepest fall trains fast and stays stable (the rule fastai's <code>lr_find</code> popularised). <code>backprop train --lr auto</code> runs this test on the training rows before it trains and uses the suggestion.</p><p class=\"note\">Files: <code>lr_range.svg</code> and <code>lr.json</code> with every number drawn.</p>",
        shape = v.shape,
        opt = config.optimizer.name(),
        batch = v.batch,
        n = r.lrs.len(),
        lo = fmt_num(v.lr_min as f64),
        hi = fmt_num(v.lr_max as f64),
        stop = if r.stopped_early { " (the test stopped once the smoothed cost passed 4× its lowest value)" } else { "" },
        fig = figure(svg, "Cost of each mini-batch (light) and its exponential moving average (β = 0.9, bias-corrected) against the learning rate."),
        tab = table(&["point", "learning rate", "smoothed cost"], &rows),
    )
}

fn chart(r: &LrRange, config: &TrainConfig) -> String {
    let raw: Vec<(f64, f64)> = r
        .lrs
        .iter()
        .zip(&r.losses)
        .map(|(&l, &c)| (l as f64, c))
        .collect();
    let smooth: Vec<(f64, f64)> = r
        .lrs
        .iter()
        .zip(&r.smoothed)
        .map(|(&l, &c)| (l as f64, c))
        .collect();
    let x = Axis::fit(
        "learning rate η (log scale)",
        r.lrs.iter().map(|&l| l as f64),
        Scale::Log,
        0.0,
    );
    // The raw losses of the last steps can be huge; the axis follows the smoothed curve.
    let y = Axis::fit(
        &format!(
            "cost: {} per mini-batch (standardised units, log)",
            config.loss
        ),
        r.smoothed.iter().copied().chain(
            r.losses
                .iter()
                .copied()
                .filter(|&v| v <= 5.0 * r.smoothed[0]),
        ),
        Scale::Log,
        0.05,
    );
    let mut p = Plot::new("Cost while the learning rate grows", x, y)
        .size(760.0, 520.0)
        .legend_at(Corner::BottomLeft);
    p.line(&raw, "#9ecae1", 1.0, false, Some("cost of each mini-batch"));
    p.line(&smooth, PALETTE[0], 2.5, false, Some("smoothed cost"));
    let at = |i: usize| (r.lrs[i] as f64, r.smoothed[i]);
    let (ml, mc) = at(r.min_index);
    p.marker(ml, mc, PALETTE[1], &format!("lowest: {}", fmt_num(ml)));
    let (sl, sc) = at(r.steepest_index);
    p.marker(sl, sc, PALETTE[3], &format!("steepest: {}", fmt_num(sl)));
    let (lo, hi) = (
        r.smoothed.iter().copied().fold(f64::INFINITY, f64::min),
        r.smoothed.iter().copied().fold(0.0, f64::max),
    );
    p.line(
        &[
            (r.suggestion as f64, lo * 0.5),
            (r.suggestion as f64, hi * 2.0),
        ],
        PALETTE[2],
        2.0,
        true,
        Some(&format!("suggested: {}", fmt_num(r.suggestion as f64))),
    );
    p.finish()
}
