//! The numbers of `backprop explain descent`: the cost of a one- and a two-weight model
//! of house prices, found by brute force over a grid, with gradient-descent paths walked
//! on it by the library's own network, loss and optimizer.

use anyhow::{bail, Result};
use backprop::data::csv::Column;
use backprop::explain::{
    cost_on_plane, descent_path, least_squares_line, linspace, DescentPath, PathConfig,
};
use backprop::{
    Activation, BatchSize, Dataset, Dense, Loss, Matrix, Network, NetworkConfig, OptimizerKind,
};

use crate::input::{self, CALIFORNIA_TARGET};
use crate::summary::fmt_num;

/// Hidden layers of `backprop train`'s default network (see `settings`).
pub const DEFAULT_HIDDEN: [usize; 3] = [256, 256, 128];
/// Grid values per weight in the brute-force count for the default network.
pub const GRID_PER_WEIGHT: f64 = 100.0;

/// Steps drawn of the diverging walk (and of every one-weight walk).
const DIVERGING_STEPS: usize = 12;

/// What to compute.
pub struct Params {
    /// Feature of the embedded California data to predict the price from.
    pub feature: String,
    /// Grid points per weight.
    pub grid: usize,
    /// Gradient-descent updates per path.
    pub steps: usize,
    /// Seed of the shuffling of mini-batch and online paths.
    pub seed: u64,
}

impl Params {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.grid < 3 || self.steps == 0 {
            bail!(
                "invalid --grid {} / --steps {}: use a grid of at least 3 points and at least one step",
                self.grid,
                self.steps
            );
        }
        Ok(())
    }
}

/// A walk as drawn: its name, rate and batch, and the walk itself.
pub struct NamedPath {
    pub name: String,
    pub lr: f32,
    pub batch: BatchSize,
    pub path: DescentPath,
}

/// Every number `explain descent` draws.
pub struct Descent {
    pub feature: String,
    pub grid_points: usize,
    /// Rows of the data (with both columns finite).
    pub rows: usize,
    pub feature_mean: f64,
    /// The closed-form least-squares line and its cost.
    pub w_ls: f64,
    pub b_ls: f64,
    pub ls_cost: f64,
    /// The grid's weights, biases and costs (`cost[b][w]`), and its lowest point
    /// (row, column, cost).
    pub ws: Vec<f64>,
    pub bs: Vec<f64>,
    pub grid: Vec<Vec<f64>>,
    pub grid_min: (usize, usize, f64),
    /// One weight: the cost along `ws`, and its lowest point (column, cost).
    pub grid_1d: Vec<f64>,
    pub grid_1d_min: (usize, f64),
    /// Full-batch gradient descent is stable below this rate.
    pub limit: f64,
    pub rate_paths: Vec<NamedPath>,
    pub rate_paths_1d: Vec<NamedPath>,
    pub batch_paths: Vec<NamedPath>,
    /// The shared rate and step count of the batch paths.
    pub batch_lr: f64,
    pub batch_steps: usize,
    /// The brute-force count for the default network.
    pub weights: usize,
    pub log10_evals: f64,
    pub log10_years: f64,
}

/// The data: the feature centred (kept in its units) so the two weights do not
/// interact, and the price.
struct Data {
    rows: usize,
    x_mean: f64,
    y_mean: f64,
    x_var: f64,
    y_sd: f64,
    data: Dataset,
    /// The same with the price centred too, for the one-weight model.
    centred: Dataset,
}

fn load(feature: &str) -> Result<Data> {
    let csv = input::california()?;
    let fcol = csv.require_column(feature, "feature")?;
    let tcol = csv.require_column(CALIFORNIA_TARGET, "target")?;
    let (Column::Numeric(xs), Column::Numeric(ys)) = (&csv.columns[fcol], &csv.columns[tcol])
    else {
        bail!(
            "--feature {}: pick a numeric column ({})",
            feature,
            csv.headers.join(", ")
        );
    };
    let rows: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let n = rows.len();
    let x_mean = rows.iter().map(|r| r.0).sum::<f64>() / n as f64;
    let y_mean = rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
    let x_var = rows.iter().map(|r| (r.0 - x_mean).powi(2)).sum::<f64>() / n as f64;
    let y_sd = (rows.iter().map(|r| (r.1 - y_mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    if x_var <= 0.0 {
        bail!("--feature {feature}: the column is constant, so there is no slope to learn");
    }
    // The bowl's axes are then the weights' axes, stretched by the feature's variance.
    let x: Vec<f32> = rows.iter().map(|r| (r.0 - x_mean) as f32).collect();
    let y: Vec<f32> = rows.iter().map(|r| r.1 as f32).collect();
    let data = Dataset::new(
        Matrix::from_vec(n, 1, x).unwrap_or_default(),
        Matrix::from_vec(n, 1, y.clone()).unwrap_or_default(),
    )?;
    // One weight: centred price against the centred feature, y - ȳ = w x (the bias
    // stays 0 because both are centred, so its gradient is 0 at every step).
    let yc: Vec<f32> = y.iter().map(|&v| (v as f64 - y_mean) as f32).collect();
    let centred = Dataset::new(
        data.x.clone(),
        Matrix::from_vec(n, 1, yc).unwrap_or_default(),
    )?;
    Ok(Data {
        rows: n,
        x_mean,
        y_mean,
        x_var,
        y_sd,
        data,
        centred,
    })
}

/// `price = w·x + b` as a network.
fn linear(w: f32, b: f32) -> backprop::Result<Network> {
    Network::from_params(
        vec![Dense {
            inputs: 1,
            outputs: 1,
            activation: Activation::Identity,
        }],
        vec![w, b],
    )
}

/// Computes every number of the page.
pub fn compute(p: &Params) -> Result<Descent> {
    let d = load(&p.feature)?;
    let x = d.data.x.as_slice();
    let y = d.data.y.as_slice();
    let (w_ls, b_ls) =
        least_squares_line(x, y).ok_or_else(|| anyhow::anyhow!("no least-squares line"))?;
    let zero = linear(0.0, 0.0)?;

    // Brute force over (w, b).
    let slope = d.y_sd / d.x_var.sqrt();
    let ws = linspace(-1.6 * slope, 2.4 * slope, p.grid);
    let bs = linspace(d.y_mean - 2.2 * d.y_sd, d.y_mean + 1.8 * d.y_sd, p.grid);
    let grid = cost_on_plane(
        &zero,
        &d.data,
        Loss::Mse,
        &[1.0, 0.0],
        Some(&[0.0, 1.0]),
        &ws,
        &bs,
    );
    let grid_min = argmin(&grid);
    let ls = linear(w_ls as f32, b_ls as f32)?;
    let ls_cost = cost_on_plane(&ls, &d.data, Loss::Mse, &[0.0, 0.0], None, &[0.0], &[0.0])[0][0];
    let grid_1d =
        cost_on_plane(&zero, &d.centred, Loss::Mse, &[1.0, 0.0], None, &ws, &[0.0]).remove(0);
    let (_, g1j, g1min) = argmin(std::slice::from_ref(&grid_1d));

    // Gradient descent on MSE is stable below 2/λmax of the Hessian, here
    // diag(2 var(x), 2) because the feature is centred.
    let limit = 2.0 / (2.0 * d.x_var.max(1.0));
    let (rate_paths, rate_paths_1d) = rate_paths(p, &d, limit)?;
    // One row of a large feature value has a much steeper cost than the average row, so
    // single-row steps need a far smaller rate than full-batch ones; all three walks
    // share that small rate and take more steps.
    let batch_lr = 0.03 * limit;
    let batch_steps = p.steps * 5;
    let mut batch_paths = Vec::new();
    for (name, batch) in [
        ("full batch", BatchSize::Full),
        ("mini-batch of 32", BatchSize::Mini(32)),
        ("online (1 row)", BatchSize::Mini(1)),
    ] {
        batch_paths.push(NamedPath {
            name: format!("{name}: {} rows per update", batch.rows(d.rows)),
            lr: batch_lr as f32,
            batch,
            path: walk(&d.data, batch_lr, batch, batch_steps, p.seed)?,
        });
    }

    let (weights, log10_evals, log10_years) = brute_force_count();
    Ok(Descent {
        feature: p.feature.clone(),
        grid_points: p.grid,
        rows: d.rows,
        feature_mean: d.x_mean,
        w_ls,
        b_ls,
        ls_cost,
        ws,
        bs,
        grid,
        grid_min,
        grid_1d,
        grid_1d_min: (g1j, g1min),
        limit,
        rate_paths,
        rate_paths_1d,
        batch_paths,
        batch_lr,
        batch_steps,
        weights,
        log10_evals,
        log10_years,
    })
}

/// The brute-force count for the default network: its weights, and log10 of the cost
/// evaluations and of the years at a billion evaluations per second.
fn brute_force_count() -> (usize, f64, f64) {
    let default_net = NetworkConfig {
        inputs: 8,
        hidden: DEFAULT_HIDDEN.to_vec(),
        outputs: 1,
        ..Default::default()
    };
    let weights: usize = default_net.layers().iter().map(Dense::num_params).sum();
    let log10_evals = weights as f64 * GRID_PER_WEIGHT.log10();
    let log10_years = log10_evals - 9.0 - (365.25f64 * 24.0 * 3600.0).log10();
    (weights, log10_evals, log10_years)
}

/// Full-batch walks at a too small, a good and a too large rate, on the two-weight and
/// the one-weight model.
fn rate_paths(p: &Params, d: &Data, limit: f64) -> Result<(Vec<NamedPath>, Vec<NamedPath>)> {
    let rates = [
        ("too small", 0.05 * limit),
        ("good", 0.4 * limit),
        ("too large", 1.05 * limit),
    ];
    let mut two = Vec::new();
    let mut one = Vec::new();
    for (i, (name, lr)) in rates.into_iter().enumerate() {
        // The diverging walk is cut short so its growing zigzag stays in the picture.
        let steps = if i == 2 {
            p.steps.min(DIVERGING_STEPS)
        } else {
            p.steps
        };
        let name = if i == 2 && steps < p.steps {
            format!("{name}: η = {} (first {steps} steps)", fmt_num(lr))
        } else {
            format!("{name}: η = {}", fmt_num(lr))
        };
        two.push(NamedPath {
            name: name.clone(),
            lr: lr as f32,
            batch: BatchSize::Full,
            path: walk(&d.data, lr, BatchSize::Full, steps, p.seed)?,
        });
        one.push(NamedPath {
            name,
            lr: lr as f32,
            batch: BatchSize::Full,
            path: walk(
                &d.centred,
                lr,
                BatchSize::Full,
                steps.min(DIVERGING_STEPS),
                p.seed,
            )?,
        });
    }
    Ok((two, one))
}

/// Plain SGD on the mean squared error from where an untrained network would start:
/// all weights zero.
fn walk(d: &Dataset, lr: f64, batch: BatchSize, steps: usize, seed: u64) -> Result<DescentPath> {
    let start = linear(0.0, 0.0)?;
    Ok(descent_path(
        &start,
        d,
        &PathConfig {
            loss: Loss::Mse,
            optimizer: OptimizerKind::Sgd.build(0.0, 0.0),
            lr: lr as f32,
            batch_size: batch,
            steps,
            seed,
            blowup: 1e4,
        },
    )?)
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
