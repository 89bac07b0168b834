//! `backprop explain lr` and `train --lr auto`: the learning-rate range test (Smith
//! 2017). The rate grows geometrically from tiny to huge, one mini-batch per rate; the
//! cost first barely moves, then falls fastest, then blows up. The suggestion is the
//! rate of the lowest smoothed cost divided by ten: the lowest point is already where
//! the steps start to overshoot, so a rate ten times smaller is still fast but stable.

use anyhow::{bail, Result};
use backprop::explain::{lr_range_test, LrRange, LrRangeConfig};
use backprop::{Dataset, NetworkConfig, TrainConfig};
use serde_json::json;

use super::{out_dir, write_all, LrArgs};
use crate::report::html::{figure, page, table};
use crate::report::svg::{fmt_num, Axis, Corner, Plot, Scale, PALETTE};

/// Lowest and highest rate and number of steps of the test `--lr auto` runs.
pub const AUTO_RANGE: (f32, f32, usize) = (1e-6, 1.0, 200);

/// Runs the range test for a network about to be trained with `config` on `train`,
/// from the same initial weights.
pub fn range_test(
    net_config: &NetworkConfig,
    config: &TrainConfig,
    train: &Dataset,
    lr_min: f32,
    lr_max: f32,
    steps: usize,
) -> Result<LrRange> {
    // The weights `backprop train` starts from with this seed.
    let mut rng = backprop::seed::rng(config.seed, backprop::seed::Stream::Init);
    let net = net_config.init(&mut rng)?;
    let cfg = LrRangeConfig {
        loss: config.loss,
        optimizer: config.optimizer,
        lr_min,
        lr_max,
        steps,
        batch_size: config.batch_size.rows(train.len()),
        seed: config.seed,
        ..LrRangeConfig::default()
    };
    Ok(lr_range_test(&net, train, &cfg)?)
}

/// `train --lr auto`: the suggested rate and a note saying how it was found.
pub fn auto(
    net_config: &NetworkConfig,
    config: &TrainConfig,
    train: &Dataset,
) -> Result<(f32, String)> {
    let (lo, hi, steps) = AUTO_RANGE;
    let r = range_test(net_config, config, train, lo, hi, steps)?;
    let note = format!("--lr auto: a range test over {} to {} in {} steps found the lowest smoothed cost at lr {}; using a tenth of it, {}", fmt_num(lo as f64), fmt_num(hi as f64), r.lrs.len(), fmt_num(r.lrs[r.min_index] as f64), fmt_num(r.suggestion as f64));
    Ok((r.suggestion, note))
}

/// Runs `backprop explain lr`.
pub fn run(a: LrArgs) -> Result<()> {
    if !(a.lr_min > 0.0 && a.lr_max > a.lr_min && a.lr_max.is_finite()) || a.steps < 10 {
        bail!("invalid range: need 0 < --lr-min < --lr-max and --steps of at least 10");
    }
    let dir = a.train.out.clone();
    let (net_config, config, train) = crate::commands::train::setup(a.train)?;
    let out = out_dir(dir.as_deref(), "lr")?;
    let r = range_test(&net_config, &config, &train, a.lr_min, a.lr_max, a.steps)?;
    let shape = crate::commands::train::shape(&net_config);
    let svg = chart(&r, &config);
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
    println!(
        "range test of a {shape} network ({} {}, batch {}), lr {} to {} in {} steps{}",
        config.loss,
        config.optimizer.name(),
        config.batch_size.rows(train.len()),
        fmt_num(a.lr_min as f64),
        fmt_num(a.lr_max as f64),
        a.steps,
        if r.stopped_early {
            format!(", stopped at step {} when the cost blew up", r.lrs.len())
        } else {
            String::new()
        }
    );
    println!(
        "lowest smoothed cost {:.4} at lr {}; steepest fall at lr {}",
        r.smoothed[r.min_index],
        fmt_num(r.lrs[r.min_index] as f64),
        fmt_num(r.lrs[r.steepest_index] as f64)
    );
    println!("suggested learning rate: {} (use it with `backprop train --lr {}`, or let `--lr auto` find it)", fmt_num(r.suggestion as f64), fmt_num(r.suggestion as f64));
    let numbers = json!({
        "network": shape,
        "optimizer": config.optimizer.name(),
        "loss": config.loss.name(),
        "batch_size": config.batch_size.rows(train.len()),
        "lr_min": a.lr_min, "lr_max": a.lr_max, "steps": a.steps,
        "lrs": r.lrs, "losses": r.losses, "smoothed": r.smoothed,
        "min_index": r.min_index, "steepest_index": r.steepest_index,
        "suggestion": r.suggestion, "stopped_early": r.stopped_early,
    });
    let body = format!(
        "<h1>Learning-rate range test</h1><p class=\"lead\">A {shape} network ({opt}, batch {batch}) trained for {n} mini-batch steps while the learning rate grows by the same factor each step, from {lo} to {hi} (Smith 2017, \"Cyclical Learning Rates for Training Neural Networks\"). While the rate is too small the cost barely moves; then it falls fastest; then the steps overshoot and it blows up{stop}.</p>\
<div class=\"grid\">{fig}</div>{tab}<p>The suggestion is the rate at the lowest smoothed cost divided by 10: at the lowest point the steps are already on the edge of overshooting, and a rate a little below the steepest fall trains fast and stays stable (the rule fastai's <code>lr_find</code> popularised). <code>backprop train --lr auto</code> runs this test on the training rows before it trains and uses the suggestion.</p><p class=\"note\">Files: <code>lr_range.svg</code> and <code>lr.json</code> with every number drawn.</p>",
        opt = config.optimizer.name(),
        batch = config.batch_size.rows(train.len()),
        n = r.lrs.len(),
        lo = fmt_num(a.lr_min as f64),
        hi = fmt_num(a.lr_max as f64),
        stop = if r.stopped_early { " (the test stopped once the smoothed cost passed 4× its lowest value)" } else { "" },
        fig = figure(&svg, "Cost of each mini-batch (light) and its exponential moving average (β = 0.9, bias-corrected) against the learning rate."),
        tab = table(&["point", "learning rate", "smoothed cost"], &rows),
    );
    let html = page("backprop explain lr", &body);
    write_all(
        &out,
        &[
            ("lr_range.svg", &svg),
            ("index.html", &html),
            ("lr.json", &serde_json::to_string_pretty(&numbers)?),
        ],
    )?;
    eprintln!("wrote {}", out.join("index.html").display());
    Ok(())
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
