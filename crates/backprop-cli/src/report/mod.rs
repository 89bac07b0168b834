//! `report.html`: how a training run learned, as one self-contained page written into
//! the run folder: cost per epoch and per step, the learning rate, per-layer gradient
//! norms and update ratios, weight histograms before and after, the test predictions,
//! and the configuration and metrics beside the no-hidden-layer baseline; for image
//! data, what the convolutions learned and the misclassified test images (`learned`).

pub mod classify;
pub mod explain;
pub mod html;
pub mod images;
pub mod learned;
pub mod plot;
mod run_report;
mod sections;
pub mod svg;
mod text;

use run_report::MAX_POINTS;
pub use run_report::{RunReport, FILE};
pub use text::{history_csv, train_summary};

use std::path::Path;

use anyhow::Result;
use backprop::data::prep::Target;
use backprop::optim::Schedule;
use backprop::{History, Network, ScheduleState};
use serde_json::Value;

use html::{figure, log_toggle, page, table};
use svg::{histogram, Axis, Corner, Plot, Scale, PALETTE};

/// Writes `report.html` into `dir`.
pub fn write(dir: &Path, r: &RunReport) -> Result<()> {
    let html = render(r);
    backprop::model::atomic_write(&dir.join(FILE), html.as_bytes())?;
    Ok(())
}

/// The whole page.
pub fn render(r: &RunReport) -> String {
    let mut b = intro(r);
    b.push_str(&body(r));
    page(&format!("backprop report: {}", r.name), &b)
}

/// The title and the paragraph under it.
fn intro(r: &RunReport) -> String {
    let shape = crate::summary::shape(r.net_config);
    format!(
        "<h1>How the network learned: {}</h1><p class=\"lead\">A {shape} network ({} weights and biases) trained by backpropagation and {} on {} rows for {} epochs{}. Every figure below comes from this run. {}</p>\n",
        svg::esc(r.name),
        r.network.num_params(),
        r.train_config.optimizer.name(),
        r.train_rows,
        r.history.epochs.len(),
        r.partial.map_or(String::new(), |p| format!(
            ", then was stopped after {} of the {} steps of epoch {}: that epoch is not counted or recorded as one (its steps are in the cost per step), and the weights below are those at the stop",
            p.steps_done,
            p.steps,
            r.history.epochs.len() + 1
        )),
        match r.target {
            Target::Regression { .. } => format!("The cost is the {} of the standardised target, so 1.0 is what always predicting the mean scores.", r.train_config.loss),
            Target::Classification { classes, .. } => format!("The cost is the {} of the predicted class probabilities; guessing uniformly among the {} classes scores ln {} = {:.2}.", r.train_config.loss, classes.len(), classes.len(), (classes.len() as f64).ln()),
        }
    )
}

/// The sections of the page.
fn body(r: &RunReport) -> String {
    let mut b = String::from("<h2>Configuration and results</h2><div class=\"tables\">");
    b.push_str(&config_table(r));
    b.push_str(&metrics_table(r));
    b.push_str("</div>\n");
    if !r.choice.is_empty() {
        b.push_str("<h3>Chosen on the validation rows</h3><ul>");
        for line in r.choice {
            b.push_str(&format!("<li>{}</li>", svg::esc(line)));
        }
        b.push_str("</ul>\n");
    }
    b.push_str("<h2>Cost</h2><p>The cost falls as gradient descent walks downhill. Each mini-batch gives a noisy estimate of the gradient, so the per-step cost jitters around the epoch average; the validation cost (rows never trained on) shows whether the fall generalises.</p>");
    b.push_str(log_toggle());
    b.push_str("<div class=\"charts grid\">");
    for log in [false, true] {
        let class = if log { "log" } else { "lin" };
        b.push_str(&format!("<div class=\"{class}\">{}</div>", figure(&cost_per_epoch(r, log), "Mean cost per epoch on the training rows and on the validation rows; dashed: the network with no hidden layer (linear/softmax regression) trained the same way.")));
        b.push_str(&format!("<div class=\"{class}\">{}</div>", figure(&cost_per_step(r, log), "Cost of every mini-batch update (training rows) with the validation cost at the end of each epoch.")));
    }
    b.push_str("</div>\n<div class=\"grid\">");
    b.push_str(&figure(
        &lr_chart(r),
        &format!(
            "Learning rate at every update ({} schedule).{}",
            r.train_config.schedule.name(),
            r.lr_note
                .as_ref()
                .map_or(String::new(), |n| format!(" {}", svg::esc(n)))
        ),
    ));
    b.push_str("</div>\n<h2>Inside the layers</h2><p>Backpropagation hands every layer its share of the blame. The gradient norm shows how strongly each layer is pushed; the update-to-weight ratio ‖Δθ‖/‖θ‖ shows how fast its weights actually change (around 10⁻³ per update is a common rule of thumb: much smaller learns slowly, much larger is unstable).</p><div class=\"grid\">");
    b.push_str(&figure(
        &layer_chart(
            r,
            |e, l| e.grad_norms.get(l).copied(),
            "gradient norm ‖∂C/∂θ‖ (log)",
            "Gradient norm per layer",
            false,
        ),
        "L2 norm of each layer's gradient at the last update of every epoch.",
    ));
    b.push_str(&figure(
        &layer_chart(
            r,
            |e, l| e.update_ratios.get(l).copied(),
            "update / weight ratio ‖Δθ‖/‖θ‖ (log)",
            "Update-to-weight ratio per layer",
            true,
        ),
        "Size of the last update of every epoch relative to the layer's weights.",
    ));
    b.push_str("</div>\n<h2>Weights before and after</h2><p>Weights start as small random numbers (scaled to each layer's fan-in) and training reshapes their distribution.</p><div class=\"grid\">");
    for l in 0..r.network.layers().len() {
        b.push_str(&figure(
            &weight_histogram(r, l),
            &format!(
                "Weights (not biases) of layer {} at initialisation and after training.",
                l + 1
            ),
        ));
    }
    b.push_str("</div>\n");
    b.push_str(&learned::conv_section(r));
    match r.target {
        Target::Regression { .. } => b.push_str(&sections::regression_section(r)),
        Target::Classification { classes, .. } => {
            b.push_str(&sections::classification_section(r, classes));
            b.push_str(&learned::misclassified_section(r, classes));
        }
    }
    b
}

fn config_table(r: &RunReport) -> String {
    let c = r.train_config;
    let n = r.net_config;
    let mut rows = vec![
        vec!["architecture".into(), crate::summary::shape(n)],
        vec!["parameters".into(), r.network.num_params().to_string()],
        vec!["hidden activation".into(), n.activation.name().to_string()],
        vec!["initialisation".into(), n.init.to_string()],
        vec!["cost function".into(), c.loss.to_string()],
        vec!["optimizer".into(), optimizer_desc(&c.optimizer)],
        vec![
            "learning rate".into(),
            format!(
                "{}{}",
                c.lr,
                r.lr_note.as_ref().map_or("", |_| " (range test)")
            ),
        ],
        vec!["schedule".into(), c.schedule.to_string()],
        vec!["batch size".into(), c.batch_size.to_string()],
        vec![
            "epochs (run / configured)".into(),
            format!("{} / {}", r.history.epochs.len(), c.epochs),
        ],
        vec![
            "early stopping patience".into(),
            if c.patience == 0 {
                "off".into()
            } else {
                c.patience.to_string()
            },
        ],
        vec![
            "gradient clipping".into(),
            c.clip_norm.map_or("off".into(), |v| v.to_string()),
        ],
        vec!["seed".into(), c.seed.to_string()],
    ];
    // A stack of layers (`--layers`): each layer with its sizes.
    for (i, spec) in n.stack.iter().enumerate() {
        rows.insert(1 + i, vec![format!("layers.{i}"), spec.describe()]);
    }
    format!(
        "<div><h3>Configuration</h3>{}</div>",
        table(&["setting", "value"], &rows)
    )
}

fn optimizer_desc(o: &backprop::Optimizer) -> String {
    use backprop::Optimizer;
    match o {
        Optimizer::Sgd(s) => format!(
            "{} (momentum {}, weight decay {})",
            o.name(),
            s.momentum,
            s.weight_decay
        ),
        Optimizer::Adam(a) | Optimizer::AdamW(a) => format!(
            "{} (β₁ {}, β₂ {}, ε {:e}, weight decay {})",
            o.name(),
            a.beta1,
            a.beta2,
            a.eps,
            a.weight_decay
        ),
        Optimizer::RmsProp(r) => format!(
            "{} (α {}, momentum {}, ε {:e}, weight decay {})",
            o.name(),
            r.alpha,
            r.momentum,
            r.eps,
            r.weight_decay
        ),
    }
}

fn metrics_table(r: &RunReport) -> String {
    let m = r.metrics;
    let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let keys: &[&str] = match r.target {
        Target::Regression { .. } => &["rmse", "mae", "r2"],
        Target::Classification { .. } => &["accuracy", "log_loss"],
    };
    let mut head = vec!["model", "split"];
    head.extend(keys.iter().map(|k| match *k {
        "rmse" => "RMSE",
        "mae" => "MAE",
        "r2" => "R²",
        "accuracy" => "accuracy",
        _ => "log-loss",
    }));
    let dollars = matches!(r.target, Target::Regression { .. })
        .then_some(r.dollars)
        .flatten();
    if dollars.is_some() {
        head.extend(["RMSE ($)", "MAE ($)"]);
    }
    let mut rows = Vec::new();
    let shape = crate::summary::shape(r.net_config);
    let network = format!("network {shape}");
    let baseline = "no hidden layer".to_string();
    for (model, split, base) in [
        (&network, "test", &m["test"]),
        (&baseline, "test", &m["baseline"]["test"]),
        (&network, "validation", &m["valid"]),
        (&baseline, "validation", &m["baseline"]["valid"]),
    ] {
        if base.is_null() {
            continue;
        }
        let mut row = vec![model.clone(), split.to_string()];
        row.extend(
            keys.iter()
                .map(|k| get(base, k).map_or("-".into(), |v| format!("{v:.4}"))),
        );
        if let Some(d) = dollars {
            row.extend(["rmse", "mae"].iter().map(|k| {
                get(base, k).map_or("-".into(), |v| format!("${}", sections::thousands(v * d)))
            }));
        }
        rows.push(row);
    }
    let mut s = format!(
        "<div><h3>Final metrics (in the target's units)</h3>{}",
        table(&head, &rows)
    );
    s.push_str(&format!(
        "<p class=\"note\">Training took {} s{}; best epoch: {}. The no-hidden-layer network is trained on the same split with the same settings: the gap to it is what the hidden layers add.</p></div>",
        get(m, "train_seconds").map_or("?".into(), |v| format!("{v:.1}")),
        if r.history.stopped_early { " (stopped early)" } else { "" },
        r.history.best_epoch.map_or("last".into(), |e| e.to_string())
    ));
    s
}

/// Averages `values` into at most `MAX_POINTS` buckets: (bucket centre, mean).
fn bucket_means(values: &[f64], x0: f64, dx: f64) -> (Vec<(f64, f64)>, usize) {
    let k = values.len().div_ceil(MAX_POINTS).max(1);
    let pts = values
        .chunks(k)
        .enumerate()
        .map(|(i, c)| {
            (
                x0 + (i * k) as f64 * dx + (c.len() - 1) as f64 * dx / 2.0,
                c.iter().sum::<f64>() / c.len() as f64,
            )
        })
        .collect();
    (pts, k)
}

fn scale(log: bool) -> Scale {
    if log {
        Scale::Log
    } else {
        Scale::Linear
    }
}

fn cost_label(r: &RunReport, log: bool) -> String {
    let unit = match r.target {
        Target::Regression { .. } => "standardised units",
        Target::Classification { .. } => "nats",
    };
    format!(
        "cost: {} ({unit}{})",
        r.train_config.loss,
        if log { ", log" } else { "" }
    )
}

/// Chart points `(x, y)`.
type Points = Vec<(f64, f64)>;

fn cost_per_epoch(r: &RunReport, log: bool) -> String {
    let ep = |h: &History| -> (Points, Points) {
        (
            h.epochs
                .iter()
                .map(|e| (e.epoch as f64, e.train_loss))
                .collect(),
            h.epochs
                .iter()
                .filter_map(|e| e.valid_loss.map(|v| (e.epoch as f64, v)))
                .collect(),
        )
    };
    let (train, valid) = ep(r.history);
    let (btrain, bvalid) = r.baseline.map(ep).unwrap_or_default();
    let ys = train
        .iter()
        .chain(&valid)
        .chain(&btrain)
        .chain(&bvalid)
        .map(|p| p.1);
    let x = Axis::new(
        "epoch (one pass over the training rows)",
        0.0,
        r.history.epochs.len().max(1) as f64,
        Scale::Linear,
    );
    let mut p = Plot::new(
        "Cost per epoch",
        x,
        Axis::fit(&cost_label(r, log), ys, scale(log), 0.05),
    );
    p.line(&train, PALETTE[0], 2.5, false, Some("train"));
    p.line(&valid, PALETTE[1], 2.5, false, Some("validation"));
    if !btrain.is_empty() {
        p.line(
            &btrain,
            PALETTE[0],
            1.5,
            true,
            Some("train, no hidden layer"),
        );
        p.line(
            &bvalid,
            PALETTE[1],
            1.5,
            true,
            Some("validation, no hidden layer"),
        );
    }
    p.finish()
}

fn steps_per_epoch(r: &RunReport) -> usize {
    r.train_rows
        .div_ceil(r.train_config.batch_size.rows(r.train_rows).max(1))
        .max(1)
}

fn cost_per_step(r: &RunReport, log: bool) -> String {
    let steps = steps_per_epoch(r);
    let losses: Vec<f64> = r.history.step_losses.iter().map(|&v| v as f64).collect();
    let (pts, k) = bucket_means(&losses, 1.0, 1.0);
    let valid: Vec<(f64, f64)> = r
        .history
        .epochs
        .iter()
        .filter_map(|e| e.valid_loss.map(|v| ((e.epoch * steps) as f64, v)))
        .collect();
    let x_label = format!(
        "update step ({} rows per mini-batch, {steps} steps per epoch)",
        r.train_config.batch_size.rows(r.train_rows)
    );
    let x = Axis::new(
        &x_label,
        0.0,
        (losses.len().max(steps)) as f64,
        Scale::Linear,
    );
    let mut p = Plot::new(
        "Cost per mini-batch step",
        x,
        Axis::fit(
            &cost_label(r, log),
            pts.iter().chain(&valid).map(|q| q.1),
            scale(log),
            0.05,
        ),
    );
    let name = if k > 1 {
        format!("train (mean of every {k} steps)")
    } else {
        "train (one mini-batch)".to_string()
    };
    p.line(&pts, PALETTE[0], 1.0, false, Some(&name));
    p.line(&valid, PALETTE[1], 2.0, false, None);
    p.points(
        &valid,
        PALETTE[1],
        3.5,
        1.0,
        Some("validation (end of epoch)"),
    );
    p.finish()
}

fn lr_chart(r: &RunReport) -> String {
    let c = r.train_config;
    let steps = steps_per_epoch(r);
    let epochs = r.history.epochs.len();
    let pts: Vec<(f64, f64)> = if matches!(c.schedule, Schedule::Plateau { .. }) {
        // Reduce-on-plateau depends on the validation losses: use the recorded rates.
        r.history
            .epochs
            .iter()
            .flat_map(|e| {
                [
                    (((e.epoch - 1) * steps) as f64, e.lr as f64),
                    ((e.epoch * steps) as f64, e.lr as f64),
                ]
            })
            .collect()
    } else {
        let state = ScheduleState::default();
        let all: Vec<f64> = (0..epochs)
            .flat_map(|e| (0..steps).map(move |s| (e, s)))
            .map(|(e, s)| c.schedule.lr(c.lr, e, s, steps, c.epochs, &state) as f64)
            .collect();
        let k = all.len().div_ceil(MAX_POINTS).max(1);
        all.iter()
            .enumerate()
            .step_by(k)
            .map(|(i, &v)| (i as f64 + 1.0, v))
            .collect()
    };
    let x = Axis::new(
        "update step",
        0.0,
        (epochs * steps).max(1) as f64,
        Scale::Linear,
    );
    let y = Axis::fit(
        "learning rate η (step size per unit gradient)",
        pts.iter().map(|q| q.1).chain([0.0]),
        Scale::Linear,
        0.05,
    );
    let mut p = Plot::new("Learning rate over time", x, y);
    p.line(&pts, PALETTE[2], 2.5, false, Some("learning rate"));
    p.finish()
}

fn layer_name(net: &Network, l: usize) -> String {
    let d = &net.layers()[l];
    let kind = d.as_dense().map_or(d.kind(), |d| d.activation.name());
    format!("layer {} ({}→{}, {kind})", l + 1, d.inputs(), d.outputs())
}

fn layer_chart(
    r: &RunReport,
    f: impl Fn(&backprop::EpochRecord, usize) -> Option<f32>,
    y_label: &str,
    title: &str,
    rule_of_thumb: bool,
) -> String {
    let layers = r.network.layers().len();
    let series: Vec<Vec<(f64, f64)>> = (0..layers)
        .map(|l| {
            r.history
                .epochs
                .iter()
                .filter_map(|e| f(e, l).map(|v| (e.epoch as f64, v as f64)))
                .collect()
        })
        .collect();
    let mut ys: Vec<f64> = series.iter().flatten().map(|p| p.1).collect();
    if rule_of_thumb {
        ys.push(1e-3);
    }
    let x = Axis::new(
        "epoch",
        0.0,
        r.history.epochs.len().max(1) as f64,
        Scale::Linear,
    );
    let mut p =
        Plot::new(title, x, Axis::fit(y_label, ys, Scale::Log, 0.05)).legend_at(Corner::BottomLeft);
    for (l, s) in series.iter().enumerate() {
        p.line(
            s,
            PALETTE[l % PALETTE.len()],
            2.0,
            false,
            Some(&layer_name(r.network, l)),
        );
    }
    if rule_of_thumb {
        p.line(
            &[(0.0, 1e-3), (r.history.epochs.len() as f64, 1e-3)],
            "#777",
            1.2,
            true,
            Some("10⁻³ rule of thumb"),
        );
    }
    p.finish()
}

fn weight_histogram(r: &RunReport, l: usize) -> String {
    // The CLI builds and loads networks of `Dense` layers only.
    let Some((layer, w_end, _)) = r.network.dense(l) else {
        return String::new();
    };
    let (w_start, _) = layer.split(&r.initial[r.network.layer_range(l)]);
    let (lo, hi) = w_start
        .iter()
        .chain(w_end)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v as f64), b.max(v as f64))
        });
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let bins = 40;
    let step = |h: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        let w = (hi - lo) / bins as f64;
        let mut pts = vec![(lo, 0.0)];
        for (x, c) in h {
            pts.push((x, c));
            pts.push((x + w, c));
        }
        pts.push((hi, 0.0));
        pts
    };
    let start = step(histogram(w_start, lo, hi, bins));
    let end = step(histogram(w_end, lo, hi, bins));
    let x = Axis::new("weight value", lo, hi, Scale::Linear);
    let y = Axis::fit(
        "weights per bin (count)",
        start.iter().chain(&end).map(|p| p.1).chain([0.0]),
        Scale::Linear,
        0.04,
    );
    let mut p =
        Plot::new(&format!("Weights of {}", layer_name(r.network, l)), x, y).size(640.0, 320.0);
    p.line(&start, "#777", 1.8, true, Some("at initialisation"));
    p.line(&end, PALETTE[0], 2.2, false, Some("after training"));
    p.finish()
}
