//! `backprop explain descent`: the cost of a one- and a two-weight model of house prices,
//! found by brute force over a grid, with gradient-descent paths walked on it by the
//! library's own network, loss and optimizer.

use anyhow::{bail, Result};
use backprop::data::csv::Column;
use backprop::explain::{
    cost_on_plane, descent_path, least_squares_line, linspace, DescentPath, PathConfig,
};
use backprop::{
    Activation, BatchSize, Dataset, Dense, Loss, Matrix, Network, NetworkConfig, OptimizerKind,
};
use serde_json::json;

use super::{out_dir, write_all, DescentArgs};
use crate::input::{self, CALIFORNIA_TARGET};
use crate::report::html::{figure, page, table};
use crate::report::svg::{band_edges, esc, fmt_num, Axis, ColorBar, Corner, Plot, Scale, PALETTE};

/// Hidden layers of `backprop train`'s default network (see `commands::train`).
const DEFAULT_HIDDEN: [usize; 3] = [256, 256, 128];
/// Grid values per weight in the brute-force count for the default network.
const GRID_PER_WEIGHT: f64 = 100.0;

/// Steps drawn of the diverging walk (and of every one-weight walk).
const DIVERGING_STEPS: usize = 12;

/// The colours of the three learning rates: too small, good, too large.
const RATE_COLORS: [&str; 3] = ["#ff7f0e", "#ffffff", "#d62728"];
/// The colours of full-batch, mini-batch and online paths.
const BATCH_COLORS: [&str; 3] = ["#ffffff", "#ff7f0e", "#d62728"];

/// A path as drawn: its name, colour and the walk itself.
struct NamedPath {
    name: String,
    lr: f32,
    batch: BatchSize,
    path: DescentPath,
}

/// Runs `backprop explain descent`.
pub fn run(a: DescentArgs) -> Result<()> {
    if a.grid < 3 || a.steps == 0 {
        bail!(
            "invalid --grid {} / --steps {}: use a grid of at least 3 points and at least one step",
            a.grid,
            a.steps
        );
    }
    let out = out_dir(a.out.as_deref(), "descent")?;
    let csv = input::california()?;
    let fcol = csv.require_column(&a.feature, "feature")?;
    let tcol = csv.require_column(CALIFORNIA_TARGET, "target")?;
    let (Column::Numeric(xs), Column::Numeric(ys)) = (&csv.columns[fcol], &csv.columns[tcol])
    else {
        bail!(
            "--feature {}: pick a numeric column ({})",
            a.feature,
            csv.headers.join(", ")
        );
    };
    let rows: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .collect();
    let n = rows.len();
    let x_mean = rows.iter().map(|r| r.0).sum::<f64>() / n as f64;
    let y_mean = rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
    let x_var = rows.iter().map(|r| (r.0 - x_mean).powi(2)).sum::<f64>() / n as f64;
    let y_sd = (rows.iter().map(|r| (r.1 - y_mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    if x_var <= 0.0 {
        bail!(
            "--feature {}: the column is constant, so there is no slope to learn",
            a.feature
        );
    }
    // The feature is centred (kept in its units) so the two weights do not interact:
    // the bowl's axes are the weights' axes, stretched by the feature's variance.
    let x: Vec<f32> = rows.iter().map(|r| (r.0 - x_mean) as f32).collect();
    let y: Vec<f32> = rows.iter().map(|r| r.1 as f32).collect();
    let data = Dataset::new(
        Matrix::from_vec(n, 1, x.clone()).unwrap_or_default(),
        Matrix::from_vec(n, 1, y.clone()).unwrap_or_default(),
    )?;
    let (w_ls, b_ls) =
        least_squares_line(&x, &y).ok_or_else(|| anyhow::anyhow!("no least-squares line"))?;
    let linear = |w: f32, b: f32| {
        Network::from_params(
            vec![Dense {
                inputs: 1,
                outputs: 1,
                activation: Activation::Identity,
            }],
            vec![w, b],
        )
    };
    let zero = linear(0.0, 0.0)?;

    // Brute force over (w, b).
    let slope = y_sd / x_var.sqrt();
    let ws = linspace(-1.6 * slope, 2.4 * slope, a.grid);
    let bs = linspace(y_mean - 2.2 * y_sd, y_mean + 1.8 * y_sd, a.grid);
    let grid = cost_on_plane(
        &zero,
        &data,
        Loss::Mse,
        &[1.0, 0.0],
        Some(&[0.0, 1.0]),
        &ws,
        &bs,
    );
    let (gi, gj, gmin) = argmin(&grid);
    let ls_cost = cost_on_plane(
        &linear(w_ls as f32, b_ls as f32)?,
        &data,
        Loss::Mse,
        &[0.0, 0.0],
        None,
        &[0.0],
        &[0.0],
    )[0][0];

    // One weight: centred price against the centred feature, y - ȳ = w x (the bias
    // stays 0 because both are centred, so its gradient is 0 at every step).
    let yc: Vec<f32> = y.iter().map(|&v| (v as f64 - y_mean) as f32).collect();
    let data1 = Dataset::new(
        data.x.clone(),
        Matrix::from_vec(n, 1, yc.clone()).unwrap_or_default(),
    )?;
    let grid1 = cost_on_plane(&zero, &data1, Loss::Mse, &[1.0, 0.0], None, &ws, &[0.0]).remove(0);
    let (_, g1j, g1min) = argmin(std::slice::from_ref(&grid1));

    // Gradient descent on MSE is stable below 2/λmax of the Hessian, here
    // diag(2 var(x), 2) because the feature is centred.
    let limit = 2.0 / (2.0 * x_var.max(1.0));
    let rates = [
        ("too small", 0.05 * limit),
        ("good", 0.4 * limit),
        ("too large", 1.05 * limit),
    ];
    let sgd = OptimizerKind::Sgd.build(0.0, 0.0);
    let walk = |net: &Network, d: &Dataset, lr: f64, batch: BatchSize, steps: usize| {
        descent_path(
            net,
            d,
            &PathConfig {
                loss: Loss::Mse,
                optimizer: sgd,
                lr: lr as f32,
                batch_size: batch,
                steps,
                seed: a.seed,
                blowup: 1e4,
            },
        )
    };
    // Every walk starts where an untrained network would: all weights zero.
    let start = linear(0.0, 0.0)?;
    let mut rate_paths = Vec::new();
    let mut rate_paths_1d = Vec::new();
    let start1 = &start;
    for (i, (name, lr)) in rates.into_iter().enumerate() {
        // The diverging walk is cut short so its growing zigzag stays in the picture.
        let steps = if i == 2 {
            a.steps.min(DIVERGING_STEPS)
        } else {
            a.steps
        };
        let name = if i == 2 && steps < a.steps {
            format!("{name}: η = {} (first {steps} steps)", fmt_num(lr))
        } else {
            format!("{name}: η = {}", fmt_num(lr))
        };
        rate_paths.push(NamedPath {
            name: name.clone(),
            lr: lr as f32,
            batch: BatchSize::Full,
            path: walk(&start, &data, lr, BatchSize::Full, steps)?,
        });
        rate_paths_1d.push(NamedPath {
            name,
            lr: lr as f32,
            batch: BatchSize::Full,
            path: walk(
                start1,
                &data1,
                lr,
                BatchSize::Full,
                steps.min(DIVERGING_STEPS),
            )?,
        });
    }
    // One row of a large feature value has a much steeper cost than the average row, so
    // single-row steps need a far smaller rate than full-batch ones; all three walks
    // share that small rate and take more steps.
    let batch_lr = 0.03 * limit;
    let batch_steps = a.steps * 5;
    let mut batch_paths = Vec::new();
    for (name, batch) in [
        ("full batch", BatchSize::Full),
        ("mini-batch of 32", BatchSize::Mini(32)),
        ("online (1 row)", BatchSize::Mini(1)),
    ] {
        let rows_per = batch.rows(n);
        batch_paths.push(NamedPath {
            name: format!("{name}: {} rows per update", rows_per),
            lr: batch_lr as f32,
            batch,
            path: walk(&start, &data, batch_lr, batch, batch_steps)?,
        });
    }

    // The brute-force count for the default network.
    let default_net = NetworkConfig {
        inputs: 8,
        hidden: DEFAULT_HIDDEN.to_vec(),
        outputs: 1,
        ..Default::default()
    };
    let weights: usize = default_net.layers().iter().map(Dense::num_params).sum();
    let log10_evals = weights as f64 * GRID_PER_WEIGHT.log10();
    let log10_years = log10_evals - 9.0 - (365.25f64 * 24.0 * 3600.0).log10();

    let feature = &a.feature;
    let w_label = format!("w: price change per unit of {feature} ($100,000s)");
    let b_label = format!("b: price at the average {feature} ($100,000s)");
    let surface = surface_chart(
        "Cost surface and learning rates (full-batch gradient descent)",
        &ws,
        &bs,
        &grid,
        &rate_paths,
        &RATE_COLORS,
        (w_ls, b_ls),
        &w_label,
        &b_label,
    );
    let batches = surface_chart(
        "Full-batch, mini-batch and online gradient descent (same rate)",
        &ws,
        &bs,
        &grid,
        &batch_paths,
        &BATCH_COLORS,
        (w_ls, b_ls),
        &w_label,
        &b_label,
    );
    let one = one_weight_chart(&ws, &grid1, &rate_paths_1d, w_ls, feature);

    let mut text = String::new();
    text.push_str(&format!("brute force: {} x {} = {} cost evaluations over {n} rows; lowest at w = {:.4}, b = {:.4} (cost {:.5})\n", a.grid, a.grid, a.grid * a.grid, ws[gj], bs[gi], gmin));
    text.push_str(&format!("closed-form least squares:                       w = {w_ls:.4}, b = {b_ls:.4} (cost {ls_cost:.5})\n"));
    text.push_str(&format!(
        "one weight: lowest grid cost {g1min:.5} at w = {:.4}\n",
        ws[g1j]
    ));
    for p in &rate_paths {
        text.push_str(&format!(
            "{:<28} cost {:.4} -> {:.4} after {} steps{}\n",
            p.name,
            p.path.costs[0],
            p.path.costs.last().copied().unwrap_or(f64::NAN),
            p.path.costs.len() - 1,
            status(&p.path)
        ));
    }
    text.push_str(&format!(
        "brute force for the default 8-{}-1 network ({} weights and biases): {} values per weight need 100^{} = 10^{} cost evaluations;\n  at a billion evaluations per second that is about 10^{:.0} years (the universe is 1.4 x 10^10 years old).\n  Gradient descent needs one forward and one backward pass per step instead.\n",
        DEFAULT_HIDDEN.map(|h| h.to_string()).join("-"),
        thousands(weights),
        GRID_PER_WEIGHT,
        thousands(weights),
        thousands(log10_evals.round() as usize),
        log10_years.floor()
    ));
    print!("{text}");

    let path_json = |p: &NamedPath| json!({ "name": p.name, "lr": p.lr, "batch": p.batch.to_string(), "diverged": p.path.diverged, "costs": p.path.costs, "w": p.path.params.iter().map(|q| q[0]).collect::<Vec<_>>(), "b": p.path.params.iter().map(|q| q[1]).collect::<Vec<_>>() });
    let numbers = json!({
        "feature": feature,
        "rows": n,
        "feature_mean": x_mean,
        "least_squares": { "w": w_ls, "b": b_ls, "cost": ls_cost },
        "grid": { "w": ws, "b": bs, "evaluations": a.grid * a.grid, "min": { "w": ws[gj], "b": bs[gi], "cost": gmin } },
        "grid_1d": { "w": ws, "cost": grid1, "min": { "w": ws[g1j], "cost": g1min } },
        "stability_limit": limit,
        "rate_paths": rate_paths.iter().map(path_json).collect::<Vec<_>>(),
        "rate_paths_1d": rate_paths_1d.iter().map(path_json).collect::<Vec<_>>(),
        "batch_paths": batch_paths.iter().map(path_json).collect::<Vec<_>>(),
        "default_network": { "weights": weights, "grid_per_weight": GRID_PER_WEIGHT, "log10_evaluations": log10_evals },
    });

    let summary = table(
        &["", "w", "b", "cost (($100,000s)²)"],
        &[
            vec![
                "brute-force grid minimum".into(),
                format!("{:.4}", ws[gj]),
                format!("{:.4}", bs[gi]),
                format!("{gmin:.5}"),
            ],
            vec![
                "closed-form least squares".into(),
                format!("{w_ls:.4}"),
                format!("{b_ls:.4}"),
                format!("{ls_cost:.5}"),
            ],
        ],
    );
    let body = format!(
        "<h1>Gradient descent on house prices</h1>\
<p class=\"lead\">Predict the median house value of a California district from one feature, <code>{f}</code> (centred: its mean {mean:.3} is subtracted), with the smallest possible network: one weight <i>w</i> and one bias <i>b</i>, <i>price = w·x + b</i>. The cost is the mean squared error over all {n} districts.</p>\
<h2>Brute force</h2><p>With two weights we can afford to evaluate the cost everywhere: {g}×{g} = {evals} evaluations of the cost on a grid. The lowest grid point agrees with the exact least-squares answer to within the grid spacing:</p>{summary}\
<p>A real network cannot do this. The default <code>backprop train</code> network (8-{hidden}-1) has {weights} weights and biases; trying just 100 values for each needs 100<sup>{weights}</sup> = 10<sup>{log}</sup> cost evaluations, about 10<sup>{years:.0}</sup> years at a billion evaluations per second. Gradient descent needs one forward and one backward pass per step instead: it only asks which way is downhill from where it stands.</p>\
<h2>The learning rate</h2><p>Gradient descent steps against the gradient, by a step the learning rate η sets. For this cost the steps stay stable only while η &lt; 2/λ<sub>max</sub> = {limit} (λ<sub>max</sub> is the largest curvature of the bowl). Below that but far too small, it crawls; near 0.4 of it, it arrives in a few steps; just above it, every step overshoots the valley further than the last and the walk diverges.</p>\
<div class=\"grid\">{f1}{f2}</div>\
<h2>Full batch, mini-batches, online</h2><p>Full-batch gradient descent computes the exact gradient over all {n} rows before each step. A mini-batch uses a random handful of rows, online (stochastic) gradient descent a single row: each step is far cheaper and the gradient noisy, so the path jitters, but it still heads downhill and ends near the bottom. A single district with a very large income has a far steeper cost than the average, so single-row steps need a much smaller rate than full-batch ones; the three walks here share that small rate.</p>\
<div class=\"grid\">{f3}</div><h2>Numbers</h2><pre>{text}</pre><p class=\"note\">Files: <code>cost_1d.svg</code>, <code>cost_surface.svg</code>, <code>batch_paths.svg</code>, and <code>descent.json</code> with every number drawn.</p>",
        f = esc(feature),
        mean = x_mean,
        g = a.grid,
        evals = a.grid * a.grid,
        hidden = DEFAULT_HIDDEN.map(|h| h.to_string()).join("-"),
        weights = thousands(weights),
        log = thousands(log10_evals.round() as usize),
        years = log10_years.floor(),
        limit = fmt_num(limit),
        f1 = figure(&one, "One weight (price against the feature, both centred): the cost is a parabola; each dot is one gradient-descent step from the same start."),
        f2 = figure(&surface, "Two weights: colour is the cost found by brute force (darker is lower; log-spaced bands, so band edges are contour lines); lines are gradient-descent paths from the same start; the ring marks the least-squares solution."),
        f3 = figure(&batches, &format!("The same rate η = {} and {} updates each; a mini-batch step costs 32 rows of work and an online step 1, against {n} for a full-batch step.", fmt_num(batch_lr), batch_steps)),
        text = esc(&text),
    );
    let html = page("backprop explain descent", &body);
    write_all(
        &out,
        &[
            ("cost_1d.svg", &one),
            ("cost_surface.svg", &surface),
            ("batch_paths.svg", &batches),
            ("index.html", &html),
            ("descent.json", &serde_json::to_string_pretty(&numbers)?),
        ],
    )?;
    eprintln!("wrote {}", out.join("index.html").display());
    Ok(())
}

/// How a walk ended, for legends: diverged (blew up), or cost growing at the end.
fn status(p: &DescentPath) -> &'static str {
    let (first, last) = (
        p.costs.first().copied().unwrap_or(0.0),
        p.costs.last().copied().unwrap_or(0.0),
    );
    if p.diverged {
        " (diverged)"
    } else if last > first {
        " (diverging)"
    } else {
        ""
    }
}

/// Row, column and value of the smallest entry.
fn argmin(grid: &[Vec<f64>]) -> (usize, usize, f64) {
    let mut best = (0, 0, f64::INFINITY);
    for (i, row) in grid.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v < best.2 {
                best = (i, j, v);
            }
        }
    }
    best
}

/// `101121` as `101,121`.
fn thousands(n: usize) -> String {
    let d = n.to_string();
    d.chars().enumerate().fold(String::new(), |mut s, (i, c)| {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
        s
    })
}

#[allow(clippy::too_many_arguments)]
fn surface_chart(
    title: &str,
    ws: &[f64],
    bs: &[f64],
    grid: &[Vec<f64>],
    paths: &[NamedPath],
    colors: &[&str],
    ls: (f64, f64),
    w_label: &str,
    b_label: &str,
) -> String {
    let (edges, log) = band_edges(grid.iter().flatten().copied(), 16, true, None);
    let x = Axis::new(w_label, ws[0], ws[ws.len() - 1], Scale::Linear);
    let y = Axis::new(b_label, bs[0], bs[bs.len() - 1], Scale::Linear);
    let mut p = Plot::new(title, x, y)
        .size(720.0, 560.0)
        .legend_at(Corner::BottomRight);
    p.heat(
        ws,
        bs,
        grid,
        ColorBar {
            label: "cost: mean squared error (($100,000s)²)".into(),
            edges,
            log,
        },
    );
    for (path, color) in paths.iter().zip(colors) {
        let pts: Vec<(f64, f64)> = path
            .path
            .params
            .iter()
            .map(|q| (q[0] as f64, q[1] as f64))
            .collect();
        p.line(&pts, "#000", 4.0, false, None);
        p.line(
            &pts,
            color,
            2.0,
            false,
            Some(&format!("{}{}", path.name, status(&path.path))),
        );
        p.points(&pts, color, 2.6, 1.0, None);
    }
    if let Some(first) = paths.first().and_then(|q| q.path.params.first()) {
        p.marker(first[0] as f64, first[1] as f64, "#fff", "start");
    }
    p.marker(ls.0, ls.1, "#fff", "least squares");
    p.finish()
}

fn one_weight_chart(
    ws: &[f64],
    cost: &[f64],
    paths: &[NamedPath],
    w_ls: f64,
    feature: &str,
) -> String {
    let curve: Vec<(f64, f64)> = ws.iter().copied().zip(cost.iter().copied()).collect();
    let x = Axis::new(
        &format!("w: price change per unit of {feature} ($100,000s)"),
        ws[0],
        ws[ws.len() - 1],
        Scale::Linear,
    );
    let y = Axis::fit(
        "cost: mean squared error (($100,000s)²)",
        cost.iter().copied().chain([0.0]),
        Scale::Linear,
        0.04,
    );
    let mut p = Plot::new("One weight: the cost is a parabola", x, y)
        .size(720.0, 560.0)
        .legend_at(Corner::TopRight);
    p.line(&curve, "#333", 2.5, false, Some("cost (brute force)"));
    let colors = [PALETTE[3], PALETTE[2], PALETTE[1]];
    for (path, color) in paths.iter().zip(colors) {
        let pts: Vec<(f64, f64)> = path
            .path
            .params
            .iter()
            .zip(&path.path.costs)
            .map(|(q, &c)| (q[0] as f64, c))
            .collect();
        p.line(&pts, color, 1.5, false, None);
        p.points(
            &pts,
            color,
            4.0,
            1.0,
            Some(&format!("{}{}", path.name, status(&path.path))),
        );
    }
    let min = cost.iter().copied().fold(f64::INFINITY, f64::min);
    p.marker(w_ls, min, "#333", "least squares");
    p.finish()
}
