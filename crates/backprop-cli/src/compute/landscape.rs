//! The numbers of `backprop explain landscape`: the cost of a trained network around
//! its final weights, along random filter-normalised directions (Li et al. 2018) and in
//! the plane of its training path.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use backprop::data::split::split_rows;
use backprop::explain::{cost_along, cost_on_plane, filter_normalized_direction, linspace};
use backprop::model::Model;
use backprop::{Dataset, Loss};
use rand::SeedableRng;

use super::trajectory::{self, SplitInfo};
use crate::input::{self, CALIFORNIA_TARGET};

/// The split fractions `backprop train` uses unless told otherwise, for runs that
/// recorded none.
const DEFAULT_SPLIT: SplitInfo = SplitInfo {
    valid_fraction: 0.1,
    test_fraction: 0.2,
};

/// Which rows to evaluate a landscape on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// The rows the network learned from.
    Train,
    /// The validation rows.
    Valid,
    /// The test rows.
    Test,
}

/// What to compute (the flags of `explain landscape`).
pub struct Params {
    pub model: PathBuf,
    pub data: Option<PathBuf>,
    pub delimiter: Option<String>,
    pub split: SplitArg,
    pub rows: usize,
    pub points: usize,
    pub grid: usize,
    pub span: f64,
    pub seed: u64,
}

impl Params {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.points < 3 || self.grid < 3 || !(self.span > 0.0 && self.span.is_finite()) {
            bail!("invalid --points {} / --grid {} / --span {}: use at least 3 points, a grid of at least 3 and a positive span", self.points, self.grid, self.span);
        }
        Ok(())
    }
}

/// The cost over the plane of the training path's two principal directions.
pub struct PathPlane {
    /// Share of the path's variance along each direction.
    pub explained: [f64; 2],
    /// Each snapshot's coordinates in the plane, and its epoch.
    pub coords: Vec<[f64; 2]>,
    pub epochs: Vec<usize>,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// `cost[y][x]`.
    pub cost: Vec<Vec<f64>>,
}

/// Every number `explain landscape` draws.
pub struct Landscape {
    pub model: PathBuf,
    pub params: usize,
    pub split: SplitArg,
    pub loss: Loss,
    /// Rows evaluated, of how many in the split.
    pub rows: usize,
    pub split_rows: usize,
    pub span: f64,
    pub alphas: Vec<f64>,
    /// The cost along three random directions, at `alphas`.
    pub curves: Vec<Vec<f64>>,
    /// The cost at the trained weights.
    pub center: f64,
    /// The random plane: its axis (both directions) and `cost[β][α]`.
    pub axis: Vec<f64>,
    pub plane: Vec<Vec<f64>>,
    /// The training path's plane, when the run recorded a trajectory.
    pub path: Option<PathPlane>,
}

/// Computes every number of the page.
pub fn compute(a: &Params) -> Result<Landscape> {
    let model = Model::load(&a.model)?;
    let net = &model.network;
    let traj = trajectory::load(&a.model, net.num_params())?;
    let split_info = traj.as_ref().map_or(DEFAULT_SPLIT, |t| t.split.clone());
    let (data, rows_total) = load_rows(&model, a, &split_info)?;
    let loss = model.meta.training.loss;

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
    let path = traj.map(|t| {
        let (lo0, hi0) = span_of(t.pca.coords.iter().map(|c| c[0]));
        let (lo1, hi1) = span_of(t.pca.coords.iter().map(|c| c[1]));
        let xs = linspace(lo0, hi0, grid_n);
        let ys = linspace(lo1, hi1, grid_n);
        let d = &t.pca.directions;
        let cost = cost_on_plane(net, &data, loss, &d[0], Some(&d[1]), &xs, &ys);
        PathPlane {
            explained: t.pca.explained,
            coords: t.pca.coords.clone(),
            epochs: t.epochs.clone(),
            xs,
            ys,
            cost,
        }
    });
    Ok(Landscape {
        model: a.model.clone(),
        params: net.num_params(),
        split: a.split,
        loss,
        rows: data.len(),
        split_rows: rows_total,
        span: a.span,
        alphas,
        curves,
        center,
        axis,
        plane,
        path,
    })
}

/// The rows of the requested split, rebuilt from the model's preprocessing and seed.
fn load_rows(model: &Model, a: &Params, split: &SplitInfo) -> Result<(Dataset, usize)> {
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
            crate::settings::flag_value(&a.split)
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
