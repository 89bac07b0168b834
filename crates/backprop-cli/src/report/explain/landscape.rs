//! `backprop explain landscape` rendered: slices of a trained network's cost surface
//! as text, SVG, JSON and an HTML page.

use std::fmt::Write;

use serde_json::json;

use super::Rendered;
use crate::compute::landscape::{Landscape, SplitArg};
use crate::compute::trajectory;
use crate::report::html::{figure, page};
use crate::report::svg::{band_edges, esc, fmt_num, Axis, ColorBar, Corner, Plot, Scale, PALETTE};

/// The charts of the page.
struct Charts {
    curve: String,
    random: String,
    path: Option<String>,
}

/// The text, SVGs, JSON and HTML of `explain landscape`.
pub fn render(l: &Landscape) -> serde_json::Result<Rendered> {
    let c = charts(l);
    let html = page("backprop explain landscape", &html_body(l, &c));
    let json = serde_json::to_string_pretty(&numbers(l))?;
    let mut files = vec![
        ("landscape_1d.svg", c.curve),
        ("landscape_2d.svg", c.random),
        ("index.html", html),
        ("landscape.json", json),
    ];
    if let Some(s) = c.path {
        files.push(("landscape_path.svg", s));
    }
    Ok(Rendered {
        text: text(l),
        files,
    })
}

/// `training`, `validation`, `test`.
fn split_name(s: SplitArg) -> &'static str {
    match s {
        SplitArg::Train => "training",
        SplitArg::Valid => "validation",
        SplitArg::Test => "test",
    }
}

fn charts(l: &Landscape) -> Charts {
    let cost_label = format!(
        "cost: {} ({} rows, standardised units)",
        l.loss,
        split_name(l.split)
    );
    let curve = curve_chart(&l.alphas, &l.curves, &cost_label);
    let random = plane_chart(
        "Cost on a random filter-normalised plane",
        &l.axis,
        &l.axis,
        &l.plane,
        &cost_label,
        "α: along direction 1 (filter-normalised)",
        "β: along direction 2 (filter-normalised)",
        None,
    );
    let path = l.path.as_ref().map(|t| {
        let label = |k: usize| {
            format!(
                "principal direction {} ({:.1}% of the path; weight-space units)",
                k + 1,
                100.0 * t.explained[k]
            )
        };
        plane_chart(
            "Training path on the cost surface (principal-component plane)",
            &t.xs,
            &t.ys,
            &t.cost,
            &cost_label,
            &label(0),
            &label(1),
            Some((&t.coords, &t.epochs)),
        )
    });
    Charts {
        curve,
        random,
        path,
    }
}

/// What the command prints.
fn text(l: &Landscape) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cost at the trained weights ({} rows, {} of {}): {:.6}",
        split_name(l.split),
        l.rows,
        l.split_rows,
        l.center
    );
    let last = l.alphas.len() - 1;
    for (i, c) in l.curves.iter().enumerate() {
        let _ = writeln!(
            s,
            "direction {}: cost at α = -{sp} / +{sp}: {:.4} / {:.4}",
            i + 1,
            c[0],
            c[last],
            sp = l.span
        );
    }
    if l.path.is_none() {
        let _ = writeln!(
            s,
            "no {} in {}: the training path is not drawn (it is written by `backprop train`)",
            trajectory::FILE,
            l.model.display()
        );
    }
    s
}

/// Every number drawn, for `landscape.json`.
fn numbers(l: &Landscape) -> serde_json::Value {
    let path = l.path.as_ref().map_or(serde_json::Value::Null, |t| {
        json!({ "explained": t.explained, "coords": t.coords, "epochs": t.epochs, "x": t.xs, "y": t.ys, "cost": t.cost })
    });
    json!({
        "model": l.model.display().to_string(),
        "split": split_name(l.split),
        "rows": l.rows,
        "split_rows": l.split_rows,
        "loss": l.loss.name(),
        "center_cost": l.center,
        "alphas": l.alphas,
        "curves": l.curves,
        "plane": { "alphas": l.axis, "betas": l.axis, "cost": l.plane },
        "trajectory": path,
    })
}

fn html_body(l: &Landscape, c: &Charts) -> String {
    let (loss, split_name) = (l.loss, split_name(l.split));
    let note = if l.rows < l.split_rows {
        format!(
            " (a random {} of the {}; <code>--rows 0</code> uses all)",
            l.rows, l.split_rows
        )
    } else {
        String::new()
    };
    format!(
        "<h1>The cost landscape of a trained network</h1>\
<p class=\"lead\">Model <code>{model}</code>: {params} weights. A network's cost is a surface over all its weights at once, far too many dimensions to draw, so we slice it: θ(α, β) = θ* + α·d₁ + β·d₂ through the trained weights θ*. Random directions are <em>filter-normalised</em> (Li, Xu, Taylor, Studer &amp; Goldstein 2018): each unit's slice of a direction is scaled to the norm of that unit's incoming weights, so a step of 1 changes every unit by as much as its own weights, whatever their scale, and slices of different networks can be compared. The cost is the {loss} on {rows} {split_name} rows{note}.</p>\
<p>Cost at the trained weights: <b>{center}</b>. A linear model's cost is one convex bowl; a network's surface is not convex, and training finds one of its many low regions. A wide, flat basin around θ* tends to generalise better than a sharp one.</p>\
<div class=\"grid\">{f1}{f2}{f3}</div><p class=\"note\">Files: <code>landscape_1d.svg</code>, <code>landscape_2d.svg</code>{pfile}, and <code>landscape.json</code> with every number drawn.</p>",
        model = esc(&l.model.display().to_string()),
        params = l.params,
        rows = l.rows,
        center = fmt_num(l.center),
        f1 = figure(&c.curve, "Cost along three random filter-normalised directions through the trained weights (α = 0)."),
        f2 = figure(&c.random, "Cost over the plane of two random filter-normalised directions; the ring marks the trained weights. Log-spaced colour bands: their edges are contour lines."),
        f3 = c.path.as_deref().map_or_else(|| "<p class=\"note\">The run recorded no training path (trajectory.safetensors), so only random slices are shown.</p>".to_string(), |s| figure(s, "Random directions are nearly perpendicular to the path training takes through thousands of dimensions, so the path is drawn in the plane of its two principal components instead (Li et al. 2018, §7): each dot is the weights after one epoch, projected onto the plane; colour is the cost on that plane.")),
        pfile = if c.path.is_some() { ", <code>landscape_path.svg</code>" } else { "" },
    )
}

fn curve_chart(alphas: &[f64], curves: &[Vec<f64>], cost_label: &str) -> String {
    let x = Axis::new(
        "α: step along the direction (filter-normalised units)",
        alphas[0],
        alphas[alphas.len() - 1],
        Scale::Linear,
    );
    let y = Axis::fit(
        &format!("{cost_label}, log"),
        curves.iter().flatten().copied(),
        Scale::Log,
        0.05,
    );
    let mut p = Plot::new("Cost along random directions", x, y)
        .size(720.0, 560.0)
        .legend_at(Corner::TopLeft);
    for (i, c) in curves.iter().enumerate() {
        let pts: Vec<(f64, f64)> = alphas.iter().copied().zip(c.iter().copied()).collect();
        p.line(
            &pts,
            PALETTE[i],
            2.2,
            false,
            Some(&format!("random direction {}", i + 1)),
        );
    }
    let mid = curves[0][alphas.len() / 2];
    p.marker(0.0, mid, "#000", "trained weights");
    p.finish()
}

#[allow(clippy::too_many_arguments)]
fn plane_chart(
    title: &str,
    xs: &[f64],
    ys: &[f64],
    grid: &[Vec<f64>],
    cost_label: &str,
    x_label: &str,
    y_label: &str,
    path: Option<(&[[f64; 2]], &[usize])>,
) -> String {
    // Cap the colours at 20× the lowest cost so the basin keeps its detail.
    let lo = grid
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let (edges, log) = band_edges(
        grid.iter().flatten().copied(),
        16,
        true,
        Some(lo.max(1e-12) * 20.0),
    );
    let x = Axis::new(x_label, xs[0], xs[xs.len() - 1], Scale::Linear);
    let y = Axis::new(y_label, ys[0], ys[ys.len() - 1], Scale::Linear);
    let mut p = Plot::new(title, x, y)
        .size(720.0, 560.0)
        .legend_at(Corner::BottomRight);
    p.heat(
        xs,
        ys,
        grid,
        ColorBar {
            label: cost_label.to_string(),
            edges,
            log,
        },
    );
    if let Some((coords, epochs)) = path {
        let pts: Vec<(f64, f64)> = coords.iter().map(|c| (c[0], c[1])).collect();
        p.line(&pts, "#000", 4.0, false, None);
        p.line(&pts, "#fff", 2.0, false, None);
        p.points(
            &pts,
            "#fff",
            3.0,
            1.0,
            Some(&format!(
                "weights after each epoch (0 to {})",
                epochs.last().copied().unwrap_or(0)
            )),
        );
        if let Some(first) = pts.first() {
            p.marker(first.0, first.1, "#fff", "initial weights");
        }
    }
    p.marker(0.0, 0.0, "#fff", "trained weights");
    p.finish()
}
