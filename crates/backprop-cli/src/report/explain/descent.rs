//! `backprop explain descent` rendered: the brute-forced cost surfaces with the
//! gradient-descent paths on them, as text, SVG, JSON and an HTML page.

use backprop::explain::DescentPath;
use serde_json::json;

use super::Rendered;
use crate::compute::descent::{Descent, NamedPath, DEFAULT_HIDDEN, GRID_PER_WEIGHT};
use crate::report::html::{figure, page, table};
use crate::report::svg::{band_edges, esc, fmt_num, Axis, ColorBar, Corner, Plot, Scale, PALETTE};

/// The colours of the three learning rates: too small, good, too large.
const RATE_COLORS: [&str; 3] = ["#ff7f0e", "#ffffff", "#d62728"];
/// The colours of full-batch, mini-batch and online paths.
const BATCH_COLORS: [&str; 3] = ["#ffffff", "#ff7f0e", "#d62728"];

/// The charts of the page: one weight, the surface with three rates, three batch sizes.
struct Charts {
    one: String,
    surface: String,
    batches: String,
}

/// The text, SVGs, JSON and HTML of `explain descent`.
pub fn render(d: &Descent) -> serde_json::Result<Rendered> {
    let c = charts(d);
    let text = text(d);
    let html = page("backprop explain descent", &html_body(d, &text, &c));
    let json = serde_json::to_string_pretty(&numbers(d))?;
    Ok(Rendered {
        text,
        files: vec![
            ("cost_1d.svg", c.one),
            ("cost_surface.svg", c.surface),
            ("batch_paths.svg", c.batches),
            ("index.html", html),
            ("descent.json", json),
        ],
    })
}

fn charts(d: &Descent) -> Charts {
    let (ws, bs, grid1, w_ls, b_ls) = (&d.ws, &d.bs, &d.grid_1d, d.w_ls, d.b_ls);
    let (rate_paths, rate_paths_1d, batch_paths) =
        (&d.rate_paths, &d.rate_paths_1d, &d.batch_paths);
    let feature = &d.feature;
    let w_label = format!("w: price change per unit of {feature} ($100,000s)");
    let b_label = format!("b: price at the average {feature} ($100,000s)");
    let surface = surface_chart(
        "Cost surface and learning rates (full-batch gradient descent)",
        ws,
        bs,
        &d.grid,
        rate_paths,
        &RATE_COLORS,
        (w_ls, b_ls),
        &w_label,
        &b_label,
    );
    let batches = surface_chart(
        "Full-batch, mini-batch and online gradient descent (same rate)",
        ws,
        bs,
        &d.grid,
        batch_paths,
        &BATCH_COLORS,
        (w_ls, b_ls),
        &w_label,
        &b_label,
    );
    let one = one_weight_chart(ws, grid1, rate_paths_1d, w_ls, feature);
    Charts {
        one,
        surface,
        batches,
    }
}

/// What the command prints (and the page shows under Numbers).
fn text(d: &Descent) -> String {
    let (n, w_ls, b_ls, ls_cost) = (d.rows, d.w_ls, d.b_ls, d.ls_cost);
    let ((gi, gj, gmin), (g1j, g1min)) = (d.grid_min, d.grid_1d_min);
    let (ws, bs, rate_paths) = (&d.ws, &d.bs, &d.rate_paths);
    let (weights, log10_evals, log10_years) = (d.weights, d.log10_evals, d.log10_years);
    let mut text = String::new();
    text.push_str(&format!("brute force: {} x {} = {} cost evaluations over {n} rows; lowest at w = {:.4}, b = {:.4} (cost {:.5})\n", d.grid_points, d.grid_points, d.grid_points * d.grid_points, ws[gj], bs[gi], gmin));
    text.push_str(&format!("closed-form least squares:                       w = {w_ls:.4}, b = {b_ls:.4} (cost {ls_cost:.5})\n"));
    text.push_str(&format!(
        "one weight: lowest grid cost {g1min:.5} at w = {:.4}\n",
        ws[g1j]
    ));
    for p in rate_paths {
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
    text
}

/// Every number drawn, for `descent.json`.
fn numbers(d: &Descent) -> serde_json::Value {
    let (n, x_mean, w_ls, b_ls, ls_cost, limit) =
        (d.rows, d.feature_mean, d.w_ls, d.b_ls, d.ls_cost, d.limit);
    let ((gi, gj, gmin), (g1j, g1min)) = (d.grid_min, d.grid_1d_min);
    let (ws, bs, grid1) = (&d.ws, &d.bs, &d.grid_1d);
    let (rate_paths, rate_paths_1d, batch_paths) =
        (&d.rate_paths, &d.rate_paths_1d, &d.batch_paths);
    let (weights, log10_evals) = (d.weights, d.log10_evals);
    let feature = &d.feature;
    let path_json = |p: &NamedPath| json!({ "name": p.name, "lr": p.lr, "batch": p.batch.to_string(), "diverged": p.path.diverged, "costs": p.path.costs, "w": p.path.params.iter().map(|q| q[0]).collect::<Vec<_>>(), "b": p.path.params.iter().map(|q| q[1]).collect::<Vec<_>>() });
    json!({
        "feature": feature,
        "rows": n,
        "feature_mean": x_mean,
        "least_squares": { "w": w_ls, "b": b_ls, "cost": ls_cost },
        "grid": { "w": ws, "b": bs, "evaluations": d.grid_points * d.grid_points, "min": { "w": ws[gj], "b": bs[gi], "cost": gmin } },
        "grid_1d": { "w": ws, "cost": grid1, "min": { "w": ws[g1j], "cost": g1min } },
        "stability_limit": limit,
        "rate_paths": rate_paths.iter().map(path_json).collect::<Vec<_>>(),
        "rate_paths_1d": rate_paths_1d.iter().map(path_json).collect::<Vec<_>>(),
        "batch_paths": batch_paths.iter().map(path_json).collect::<Vec<_>>(),
        "default_network": { "weights": weights, "grid_per_weight": GRID_PER_WEIGHT, "log10_evaluations": log10_evals },
    })
}

fn html_body(d: &Descent, text: &str, c: &Charts) -> String {
    let (n, x_mean, w_ls, b_ls, ls_cost, limit) =
        (d.rows, d.feature_mean, d.w_ls, d.b_ls, d.ls_cost, d.limit);
    let (gi, gj, gmin) = d.grid_min;
    let (ws, bs, batch_lr, batch_steps) = (&d.ws, &d.bs, d.batch_lr, d.batch_steps);
    let (weights, log10_evals, log10_years) = (d.weights, d.log10_evals, d.log10_years);
    let feature = &d.feature;
    let (one, surface, batches) = (&c.one, &c.surface, &c.batches);
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
    format!(
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
        g = d.grid_points,
        evals = d.grid_points * d.grid_points,
        hidden = DEFAULT_HIDDEN.map(|h| h.to_string()).join("-"),
        weights = thousands(weights),
        log = thousands(log10_evals.round() as usize),
        years = log10_years.floor(),
        limit = fmt_num(limit),
        f1 = figure(one, "One weight (price against the feature, both centred): the cost is a parabola; each dot is one gradient-descent step from the same start."),
        f2 = figure(surface, "Two weights: colour is the cost found by brute force (darker is lower; log-spaced bands, so band edges are contour lines); lines are gradient-descent paths from the same start; the ring marks the least-squares solution."),
        f3 = figure(batches, &format!("The same rate η = {} and {} updates each; a mini-batch step costs 32 rows of work and an online step 1, against {n} for a full-batch step.", fmt_num(batch_lr), batch_steps)),
        text = esc(text),
    )
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
