//! `backprop explain landscape`: the cost of a trained network around its final weights,
//! along random filter-normalised directions (Li et al. 2018) and in the plane of its
//! training path.

use anyhow::{bail, Context, Result};
use backprop::data::split::split_rows;
use backprop::explain::{cost_along, cost_on_plane, filter_normalized_direction, linspace};
use backprop::model::Model;
use backprop::Dataset;
use rand::SeedableRng;
use serde_json::json;

use super::{out_dir, write_all, LandscapeArgs, SplitArg};
use crate::input::{self, CALIFORNIA_TARGET};
use crate::report::html::{figure, page};
use crate::report::svg::{band_edges, esc, fmt_num, Axis, ColorBar, Corner, Plot, Scale, PALETTE};
use crate::report::trajectory::{self, SplitInfo};

/// The split fractions `backprop train` uses unless told otherwise, for runs that
/// recorded none.
const DEFAULT_SPLIT: SplitInfo = SplitInfo {
    valid_fraction: 0.1,
    test_fraction: 0.2,
};

/// Runs `backprop explain landscape`.
pub fn run(a: LandscapeArgs) -> Result<()> {
    if a.points < 3 || a.grid < 3 || !(a.span > 0.0 && a.span.is_finite()) {
        bail!("invalid --points {} / --grid {} / --span {}: use at least 3 points, a grid of at least 3 and a positive span", a.points, a.grid, a.span);
    }
    let model = Model::load(&a.model)?;
    let net = &model.network;
    let traj = trajectory::load(&a.model, net.num_params())?;
    let split_info = traj.as_ref().map_or(DEFAULT_SPLIT, |t| t.split.clone());
    let (data, rows_total) = load_rows(&model, &a, &split_info)?;
    let loss = model.meta.training.loss;
    let out = out_dir(a.out.as_deref(), "landscape")?;

    // Zero is always a sample point, so the curve passes through the trained weights.
    let points = a.points | 1;
    let alphas = linspace(-a.span, a.span, points);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let dirs: Vec<Vec<f32>> = (0..3)
        .map(|_| filter_normalized_direction(net, &mut rng))
        .collect();
    let curves: Vec<Vec<f64>> = dirs
        .iter()
        .map(|d| cost_along(net, &data, loss, d, &alphas))
        .collect();
    let center = curves[0][points / 2];
    let grid_n = a.grid | 1;
    let axis = linspace(-a.span, a.span, grid_n);
    let plane = cost_on_plane(net, &data, loss, &dirs[0], Some(&dirs[1]), &axis, &axis);

    let split_name = match a.split {
        SplitArg::Train => "training",
        SplitArg::Valid => "validation",
        SplitArg::Test => "test",
    };
    let cost_label = format!("cost: {loss} ({split_name} rows, standardised units)");
    let curve_svg = curve_chart(&alphas, &curves, &cost_label);
    let random_svg = plane_chart(
        "Cost on a random filter-normalised plane",
        &axis,
        &axis,
        &plane,
        &cost_label,
        "α: along direction 1 (filter-normalised)",
        "β: along direction 2 (filter-normalised)",
        None,
    );

    let mut pca_json = serde_json::Value::Null;
    let mut pca_svg = None;
    if let Some(t) = &traj {
        let (lo0, hi0) = span_of(t.pca.coords.iter().map(|c| c[0]));
        let (lo1, hi1) = span_of(t.pca.coords.iter().map(|c| c[1]));
        let xs = linspace(lo0, hi0, grid_n);
        let ys = linspace(lo1, hi1, grid_n);
        let grid = cost_on_plane(
            net,
            &data,
            loss,
            &t.pca.directions[0],
            Some(&t.pca.directions[1]),
            &xs,
            &ys,
        );
        let label = |k: usize| {
            format!(
                "principal direction {} ({:.1}% of the path; weight-space units)",
                k + 1,
                100.0 * t.pca.explained[k]
            )
        };
        pca_svg = Some(plane_chart(
            "Training path on the cost surface (principal-component plane)",
            &xs,
            &ys,
            &grid,
            &cost_label,
            &label(0),
            &label(1),
            Some((&t.pca.coords, &t.epochs)),
        ));
        pca_json = json!({ "explained": t.pca.explained, "coords": t.pca.coords, "epochs": t.epochs, "x": xs, "y": ys, "cost": grid });
    }

    println!(
        "cost at the trained weights ({split_name} rows, {} of {rows_total}): {center:.6}",
        data.len()
    );
    for (i, c) in curves.iter().enumerate() {
        println!(
            "direction {}: cost at α = -{s} / +{s}: {:.4} / {:.4}",
            i + 1,
            c[0],
            c[points - 1],
            s = a.span
        );
    }
    if traj.is_none() {
        println!(
            "no {} in {}: the training path is not drawn (it is written by `backprop train`)",
            trajectory::FILE,
            a.model.display()
        );
    }
    let numbers = json!({
        "model": a.model.display().to_string(),
        "split": split_name,
        "rows": data.len(),
        "split_rows": rows_total,
        "loss": loss.name(),
        "center_cost": center,
        "alphas": alphas,
        "curves": curves,
        "plane": { "alphas": axis, "betas": axis, "cost": plane },
        "trajectory": pca_json,
    });
    let note = if data.len() < rows_total {
        format!(
            " (a random {} of the {rows_total}; <code>--rows 0</code> uses all)",
            data.len()
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>The cost landscape of a trained network</h1>\
<p class=\"lead\">Model <code>{model}</code>: {params} weights. A network's cost is a surface over all its weights at once, far too many dimensions to draw, so we slice it: θ(α, β) = θ* + α·d₁ + β·d₂ through the trained weights θ*. Random directions are <em>filter-normalised</em> (Li, Xu, Taylor, Studer &amp; Goldstein 2018): each unit's slice of a direction is scaled to the norm of that unit's incoming weights, so a step of 1 changes every unit by as much as its own weights, whatever their scale, and slices of different networks can be compared. The cost is the {loss} on {rows} {split_name} rows{note}.</p>\
<p>Cost at the trained weights: <b>{center}</b>. A linear model's cost is one convex bowl; a network's surface is not convex, and training finds one of its many low regions. A wide, flat basin around θ* tends to generalise better than a sharp one.</p>\
<div class=\"grid\">{f1}{f2}{f3}</div><p class=\"note\">Files: <code>landscape_1d.svg</code>, <code>landscape_2d.svg</code>{pfile}, and <code>landscape.json</code> with every number drawn.</p>",
        model = esc(&a.model.display().to_string()),
        params = net.num_params(),
        rows = data.len(),
        center = fmt_num(center),
        f1 = figure(&curve_svg, "Cost along three random filter-normalised directions through the trained weights (α = 0)."),
        f2 = figure(&random_svg, "Cost over the plane of two random filter-normalised directions; the ring marks the trained weights. Log-spaced colour bands: their edges are contour lines."),
        f3 = pca_svg.as_deref().map_or_else(|| "<p class=\"note\">The run recorded no training path (trajectory.safetensors), so only random slices are shown.</p>".to_string(), |s| figure(s, "Random directions are nearly perpendicular to the path training takes through thousands of dimensions, so the path is drawn in the plane of its two principal components instead (Li et al. 2018, §7): each dot is the weights after one epoch, projected onto the plane; colour is the cost on that plane.")),
        pfile = if pca_svg.is_some() { ", <code>landscape_path.svg</code>" } else { "" },
    );
    let html = page("backprop explain landscape", &body);
    let json_text = serde_json::to_string_pretty(&numbers)?;
    let mut files = vec![
        ("landscape_1d.svg", curve_svg.as_str()),
        ("landscape_2d.svg", random_svg.as_str()),
        ("index.html", html.as_str()),
        ("landscape.json", json_text.as_str()),
    ];
    if let Some(s) = &pca_svg {
        files.push(("landscape_path.svg", s.as_str()));
    }
    write_all(&out, &files)?;
    eprintln!("wrote {}", out.join("index.html").display());
    Ok(())
}

/// The rows of the requested split, rebuilt from the model's preprocessing and seed.
fn load_rows(model: &Model, a: &LandscapeArgs, split: &SplitInfo) -> Result<(Dataset, usize)> {
    let prep = &model.meta.preprocessor;
    let table = match &a.data {
        Some(p) => input::read_table(p, input::csv_options(a.delimiter.as_deref())?)?,
        None if prep.target.name() == CALIFORNIA_TARGET => input::california()?,
        None => bail!(
            "the model predicts `{}`: pass the CSV file it was trained on with --data FILE",
            prep.target.name()
        ),
    };
    let cols = prep.locate_features(&table)?;
    let target = table.require_column(prep.target.name(), "target")?;
    let s = split_rows(
        table.rows(),
        split.valid_fraction,
        split.test_fraction,
        model.meta.training.seed,
    )
    .context("cannot rebuild the run's split")?;
    let rows = match a.split {
        SplitArg::Train => s.train,
        SplitArg::Valid => s.valid,
        SplitArg::Test => s.test,
    };
    if rows.is_empty() {
        bail!(
            "the run has no {} rows; pick another --split",
            crate::args::flag_value(&a.split)
        );
    }
    let total = rows.len();
    // The split is already shuffled, so its first rows are a random sample.
    let take = if a.rows == 0 {
        total
    } else {
        a.rows.min(total)
    };
    let (x, _) = prep.transform_features(&table, &cols, &rows[..take])?;
    let y = prep.transform_target(&table, target, &rows[..take])?;
    Ok((Dataset::new(x, y)?, total))
}

/// The range of `values` widened by a quarter on each side.
fn span_of(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.25 * (hi - lo).max(1e-6);
    (lo - pad, hi + pad)
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
