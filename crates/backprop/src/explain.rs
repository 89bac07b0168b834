//! The numbers behind the "how does it learn?" pictures: the cost evaluated by brute
//! force over a grid of weights, gradient-descent paths recorded step by step, the cost
//! along (filter-normalised) directions through trained weights, the principal
//! directions of a training trajectory, and the learning-rate range test.
//!
//! Everything here drives the real [`Network`], [`Loss`] and [`Optimizer`]; nothing is
//! a separate toy implementation, so the pictures show what training does.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::network::{Network, Trace};
use crate::optim::{Optimizer, OptimizerState};
use crate::train::{evaluate_loss, BatchSize, Dataset};

/// `n` evenly spaced values from `lo` to `hi` inclusive (`n >= 2`; one value is `lo`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// The cost of `net` over `data` with its parameters moved to `θ + α d₁` for each `α`.
pub fn cost_along(
    net: &Network,
    data: &Dataset,
    loss: Loss,
    d1: &[f32],
    alphas: &[f64],
) -> Vec<f64> {
    cost_on_plane(net, data, loss, d1, None, alphas, &[0.0])
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The cost of `net` over `data` with its parameters moved to `θ + α d₁ + β d₂`, for
/// every `α` in `alphas` and `β` in `betas`: `result[i][j]` is the cost at
/// `(alphas[j], betas[i])`. With `θ = 0` and unit vectors for `d₁`, `d₂` this is a
/// brute-force search over two weights. Grid rows are evaluated in parallel.
pub fn cost_on_plane(
    net: &Network,
    data: &Dataset,
    loss: Loss,
    d1: &[f32],
    d2: Option<&[f32]>,
    alphas: &[f64],
    betas: &[f64],
) -> Vec<Vec<f64>> {
    let n = net.num_params();
    assert_eq!(d1.len(), n, "cost_on_plane: first direction vs parameters");
    if let Some(d2) = d2 {
        assert_eq!(d2.len(), n, "cost_on_plane: second direction vs parameters");
    }
    let origin = net.params();
    betas
        .par_iter()
        .map(|&b| {
            let mut moved = net.clone();
            let mut trace = Trace::default();
            alphas
                .iter()
                .map(|&a| {
                    for (i, p) in moved.params_mut().iter_mut().enumerate() {
                        let off = a * d1[i] as f64 + d2.map_or(0.0, |d2| b * d2[i] as f64);
                        *p = (origin[i] as f64 + off) as f32;
                    }
                    evaluate_loss(&moved, data, loss, &mut trace)
                })
                .collect()
        })
        .collect()
}

/// Ordinary least squares for one feature: the slope `w` and intercept `b` that
/// minimise `mean((w x + b - y)²)`, in closed form (`w = cov(x, y) / var(x)`,
/// `b = ȳ - w x̄`). `None` when `x` is constant or empty.
pub fn least_squares_line(x: &[f32], y: &[f32]) -> Option<(f64, f64)> {
    assert_eq!(x.len(), y.len(), "least_squares_line: x vs y length");
    let n = x.len() as f64;
    if x.is_empty() {
        return None;
    }
    let mx = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let my = y.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        sxy += (a as f64 - mx) * (b as f64 - my);
        sxx += (a as f64 - mx).powi(2);
    }
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

/// How a gradient-descent path is walked.
#[derive(Clone, Debug)]
pub struct PathConfig {
    /// The cost function.
    pub loss: Loss,
    /// The update rule.
    pub optimizer: Optimizer,
    /// Learning rate (constant).
    pub lr: f32,
    /// Rows per update: full batch, mini-batch, or 1 for online SGD.
    pub batch_size: BatchSize,
    /// Updates to take.
    pub steps: usize,
    /// Seed of the shuffling (its [`crate::seed::Stream::Shuffle`] stream; each pass over
    /// the data is reshuffled).
    pub seed: u64,
    /// Stop once the cost exceeds this multiple of the starting cost (diverged).
    pub blowup: f64,
}

/// A recorded walk through weight space.
#[derive(Clone, Debug, PartialEq)]
pub struct DescentPath {
    /// The parameters at the start and after every update.
    pub params: Vec<Vec<f32>>,
    /// The cost over the whole data set at each of those points.
    pub costs: Vec<f64>,
    /// Whether the walk stopped because the cost blew up (or became non-finite).
    pub diverged: bool,
}

/// Walks `steps` updates of gradient descent from `net`'s current parameters, with the
/// library's forward pass, backpropagation and optimizer, recording the parameters and
/// the full-data cost after every update.
pub fn descent_path(net: &Network, data: &Dataset, config: &PathConfig) -> Result<DescentPath> {
    let mut net = net.clone();
    let mut stepper = Stepper::new(&net, data, config.optimizer, config.seed)?;
    let mut trace = Trace::default();
    let start = evaluate_loss(&net, data, config.loss, &mut trace);
    let mut path = DescentPath {
        params: vec![net.params().to_vec()],
        costs: vec![start],
        diverged: false,
    };
    let batch = config.batch_size.rows(data.len());
    for _ in 0..config.steps {
        stepper.step(&mut net, data, config.loss, config.lr, batch);
        let cost = evaluate_loss(&net, data, config.loss, &mut trace);
        let finite = cost.is_finite() && net.params().iter().all(|p| p.is_finite());
        if finite {
            path.params.push(net.params().to_vec());
            path.costs.push(cost);
        }
        if !finite || cost > config.blowup * start.max(f64::MIN_POSITIVE) {
            path.diverged = true;
            break;
        }
    }
    Ok(path)
}

/// A random direction in weight space scaled filter by filter (Li et al. 2018,
/// "Visualizing the Loss Landscape of Neural Nets", §4): for every layer, each row of
/// the weight matrix (the incoming weights of one unit, a dense layer's "filter") gets
/// a Gaussian direction rescaled to that row's norm, so that moving one unit along the
/// direction perturbs every unit by the same relative amount whatever its scale. Bias
/// entries are zero, as in the paper's default (`--xignore biasbn`), and so are the
/// parameters of layers other than [`crate::Dense`].
pub fn filter_normalized_direction<R: Rng + ?Sized>(net: &Network, rng: &mut R) -> Vec<f32> {
    let mut d = vec![0.0f32; net.num_params()];
    for (i, layer) in net.layers().iter().enumerate() {
        let Some(layer) = layer.as_dense() else {
            continue;
        };
        let range = net.layer_range(i);
        let (w, _) = layer.split(&net.params()[range.clone()]);
        let (dw, _) = layer.split_mut(&mut d[range]);
        for (wr, dr) in w
            .chunks_exact(layer.inputs)
            .zip(dw.chunks_exact_mut(layer.inputs))
        {
            for v in dr.iter_mut() {
                *v = rng.sample::<f32, _>(StandardNormal);
            }
            let (wn, dn) = (norm(wr), norm(dr));
            let scale = if dn > 0.0 { wn / dn } else { 0.0 };
            for v in dr.iter_mut() {
                *v = (*v as f64 * scale) as f32;
            }
        }
    }
    d
}

fn norm(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// A training trajectory seen from the two directions that explain most of it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrajectoryPca {
    /// Two orthonormal directions in weight space.
    pub directions: [Vec<f32>; 2],
    /// Each snapshot's coordinates `(⟨θᵢ - θ_end, d₁⟩, ⟨θᵢ - θ_end, d₂⟩)`.
    pub coords: Vec<[f64; 2]>,
    /// Share of the trajectory's squared length (`Σ‖θᵢ - θ_end‖²`) each direction
    /// explains.
    pub explained: [f64; 2],
}

/// The two principal directions of the moves `θᵢ - θ_end` of a trajectory (Li et al.
/// 2018, §7: random directions in a space of many thousands of weights are nearly
/// orthogonal to the path training takes, so a trajectory is drawn in the plane of
/// its principal components). Computed from the small Gram matrix of the snapshots, so
/// memory stays at the snapshots themselves. The moves are not mean-centred, so the end
/// point sits at the origin of the plane. `None` with fewer than two distinct moves.
pub fn trajectory_pca(snapshots: &[Vec<f32>], end: &[f32]) -> Option<TrajectoryPca> {
    let moves: Vec<Vec<f32>> = snapshots
        .iter()
        .map(|s| {
            assert_eq!(s.len(), end.len(), "trajectory_pca: snapshot vs end length");
            s.iter().zip(end).map(|(&a, &b)| a - b).collect()
        })
        .collect();
    let k = moves.len();
    let mut gram = vec![vec![0.0f64; k]; k];
    for i in 0..k {
        for j in 0..=i {
            let v = dot(&moves[i], &moves[j]);
            gram[i][j] = v;
            gram[j][i] = v;
        }
    }
    let total: f64 = (0..k).map(|i| gram[i][i]).sum();
    if total <= 0.0 {
        return None;
    }
    let mut directions: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    let mut explained = [0.0; 2];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for c in 0..2 {
        let (lambda, u) = top_eigen(&gram, &mut rng);
        if lambda.is_nan() || lambda <= total * 1e-12 {
            return None;
        }
        // v = Mᵀu / √λ has unit length because ‖Mᵀu‖² = uᵀ G u = λ.
        let mut v = vec![0.0f64; end.len()];
        for (m, &ui) in moves.iter().zip(&u) {
            for (vj, &mj) in v.iter_mut().zip(m) {
                *vj += ui * mj as f64;
            }
        }
        let s = lambda.sqrt();
        directions[c] = v.iter().map(|&x| (x / s) as f32).collect();
        explained[c] = lambda / total;
        // Deflate: G ← G - λ u uᵀ.
        for i in 0..k {
            for j in 0..k {
                gram[i][j] -= lambda * u[i] * u[j];
            }
        }
    }
    let coords = moves
        .iter()
        .map(|m| [dot(m, &directions[0]), dot(m, &directions[1])])
        .collect();
    Some(TrajectoryPca {
        directions,
        coords,
        explained,
    })
}

/// The largest eigenvalue and its unit eigenvector of a symmetric positive
/// semi-definite matrix, by power iteration.
fn top_eigen(g: &[Vec<f64>], rng: &mut ChaCha8Rng) -> (f64, Vec<f64>) {
    let k = g.len();
    let mut u: Vec<f64> = (0..k).map(|_| rng.gen_range(0.5..1.5)).collect();
    let mut lambda = 0.0;
    for _ in 0..1000 {
        let w: Vec<f64> = (0..k)
            .map(|i| g[i].iter().zip(&u).map(|(a, b)| a * b).sum())
            .collect();
        let n = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n == 0.0 {
            return (0.0, u);
        }
        let next: Vec<f64> = w.iter().map(|x| x / n).collect();
        let change: f64 = next.iter().zip(&u).map(|(a, b)| (a - b).abs()).sum();
        u = next;
        lambda = n;
        if change < 1e-12 {
            break;
        }
    }
    (lambda, u)
}

/// Settings of the learning-rate range test.
#[derive(Clone, Debug)]
pub struct LrRangeConfig {
    /// The cost function.
    pub loss: Loss,
    /// The update rule (its state starts fresh).
    pub optimizer: Optimizer,
    /// First learning rate.
    pub lr_min: f32,
    /// Last learning rate.
    pub lr_max: f32,
    /// Updates, with the rate growing geometrically from `lr_min` to `lr_max`.
    pub steps: usize,
    /// Rows per update.
    pub batch_size: usize,
    /// Seed of the shuffling (its [`crate::seed::Stream::Shuffle`] stream).
    pub seed: u64,
    /// Weight of the running average of the loss. fastai uses 0.98, which lags about
    /// fifty steps behind; over a test of a few hundred steps that shifts the lowest
    /// point by more than a decade of rates, so the default is 0.9 (about ten steps).
    pub smoothing: f64,
    /// Stop once the smoothed loss exceeds this multiple of its minimum (diverged).
    pub stop_factor: f64,
}

impl Default for LrRangeConfig {
    fn default() -> Self {
        LrRangeConfig {
            loss: Loss::Mse,
            optimizer: Optimizer::default(),
            lr_min: 1e-6,
            lr_max: 1.0,
            steps: 200,
            batch_size: 256,
            seed: 0,
            smoothing: 0.9,
            stop_factor: 4.0,
        }
    }
}

/// What the range test found.
#[derive(Clone, Debug, PartialEq)]
pub struct LrRange {
    /// Learning rate of each update taken.
    pub lrs: Vec<f32>,
    /// Mini-batch loss of each update (before the update).
    pub losses: Vec<f64>,
    /// Bias-corrected exponential moving average of `losses`.
    pub smoothed: Vec<f64>,
    /// Index of the lowest smoothed loss.
    pub min_index: usize,
    /// Index where the smoothed loss falls fastest per unit of `ln(lr)` (measured over a
    /// tenth of the steps), before the minimum.
    pub steepest_index: usize,
    /// The suggested rate: the rate at the lowest smoothed loss divided by 10, the rule
    /// of thumb of Smith (2017) and fastai, since the minimum is already on the edge of
    /// instability.
    pub suggestion: f32,
    /// Whether the test stopped before `lr_max` because the loss blew up.
    pub stopped_early: bool,
}

/// Smith's learning-rate range test (2017, "Cyclical Learning Rates for Training Neural
/// Networks", §3.3): train from `net`'s weights while the rate grows geometrically
/// from `lr_min` to `lr_max`, one mini-batch per rate, and record the loss. The loss
/// first stalls (rate too small), then falls, then blows up (rate too large).
/// `net` is left untouched.
pub fn lr_range_test(net: &Network, data: &Dataset, config: &LrRangeConfig) -> Result<LrRange> {
    if !(config.lr_min > 0.0 && config.lr_max > config.lr_min && config.lr_max.is_finite()) {
        return Err(Error::config(
            "lr range",
            format!(
                "needs 0 < lr_min < lr_max, got {} and {}",
                config.lr_min, config.lr_max
            ),
        ));
    }
    if config.steps < 2 || config.batch_size == 0 {
        return Err(Error::config(
            "lr range",
            "needs at least 2 steps and a batch of at least 1 row",
        ));
    }
    if !(0.0..1.0).contains(&config.smoothing) {
        return Err(Error::config("lr range", "smoothing must be in [0, 1)"));
    }
    let mut net = net.clone();
    let mut stepper = Stepper::new(&net, data, config.optimizer, config.seed)?;
    let ratio = (config.lr_max as f64 / config.lr_min as f64).ln();
    let mut out = LrRange {
        lrs: Vec::new(),
        losses: Vec::new(),
        smoothed: Vec::new(),
        min_index: 0,
        steepest_index: 0,
        suggestion: config.lr_min,
        stopped_early: false,
    };
    let (mut avg, mut best) = (0.0f64, f64::INFINITY);
    for i in 0..config.steps {
        let lr =
            (config.lr_min as f64 * (ratio * i as f64 / (config.steps - 1) as f64).exp()) as f32;
        let loss = stepper.step(&mut net, data, config.loss, lr, config.batch_size) as f64;
        if !loss.is_finite() {
            out.stopped_early = true;
            break;
        }
        avg = config.smoothing * avg + (1.0 - config.smoothing) * loss;
        let smooth = avg / (1.0 - config.smoothing.powi(i as i32 + 1));
        out.lrs.push(lr);
        out.losses.push(loss);
        out.smoothed.push(smooth);
        if smooth < best {
            best = smooth;
            out.min_index = out.smoothed.len() - 1;
        }
        if smooth > config.stop_factor * best || !net.params().iter().all(|p| p.is_finite()) {
            out.stopped_early = i + 1 < config.steps;
            break;
        }
    }
    if out.lrs.is_empty() {
        return Err(Error::NonFinite {
            epoch: 1,
            step: 1,
            what: "loss of the range test",
            value: f32::NAN,
        });
    }
    // Slopes over a tenth of the run, centred, so one noisy step does not win.
    let w = (config.steps / 10).max(1);
    let mut steepest = (0, 0.0f64);
    for i in w..=out.min_index {
        let slope = (out.smoothed[i] - out.smoothed[i - w])
            / (out.lrs[i] as f64 / out.lrs[i - w] as f64).ln();
        if slope < steepest.1 {
            steepest = (i - w / 2, slope);
        }
    }
    out.steepest_index = steepest.0;
    out.suggestion = (out.lrs[out.min_index] / 10.0).max(config.lr_min);
    Ok(out)
}

/// One mini-batch update after another over reshuffled passes of a data set, with
/// reusable buffers.
struct Stepper {
    optimizer: Optimizer,
    state: OptimizerState,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    pos: usize,
    x: Matrix,
    y: Matrix,
    trace: Trace,
    d_out: Vec<f32>,
    grads: Vec<f32>,
}

impl Stepper {
    fn new(net: &Network, data: &Dataset, optimizer: Optimizer, seed: u64) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::config("data", "no rows to learn from"));
        }
        if data.x.cols() != net.inputs() || data.y.cols() != net.outputs() {
            return Err(Error::ShapeMismatch {
                op: "explain",
                expected: format!("{} inputs and {} outputs", net.inputs(), net.outputs()),
                got: format!("{} and {}", data.x.cols(), data.y.cols()),
            });
        }
        optimizer.validate()?;
        let n = data.len();
        Ok(Stepper {
            optimizer,
            state: optimizer.init(net.num_params()),
            rng: crate::seed::rng(seed, crate::seed::Stream::Shuffle),
            order: (0..n).collect(),
            pos: n,
            x: Matrix::default(),
            y: Matrix::default(),
            trace: Trace::default(),
            d_out: Vec::new(),
            grads: vec![0.0; net.num_params()],
        })
    }

    /// One update on the next `batch` rows (reshuffling at the start of each pass);
    /// returns the batch loss before the update.
    fn step(
        &mut self,
        net: &mut Network,
        data: &Dataset,
        loss: Loss,
        lr: f32,
        batch: usize,
    ) -> f32 {
        let n = data.len();
        let batch = batch.clamp(1, n);
        if self.pos + batch > n {
            if batch < n {
                self.order.shuffle(&mut self.rng);
            }
            self.pos = 0;
        }
        let rows = &self.order[self.pos..self.pos + batch];
        self.pos += batch;
        self.x.gather_rows(&data.x, rows);
        self.y.gather_rows(&data.y, rows);
        net.forward_train(&self.x, &mut self.trace);
        let out = self.trace.output();
        self.d_out.resize(out.as_slice().len(), 0.0);
        let value = loss.gradient(
            out.as_slice(),
            self.y.as_slice(),
            out.cols(),
            &mut self.d_out,
        );
        net.backward(&self.x, &mut self.trace, &self.d_out, &mut self.grads);
        self.optimizer
            .step(lr, net.params_mut(), &self.grads, &mut self.state);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::layer::Dense;
    use crate::optim::OptimizerKind;

    /// y = 3x - 1 + a small deterministic wiggle, x spread unevenly.
    fn line_data(n: usize) -> Dataset {
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 0.7)
            .collect();
        let y: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| 3.0 * v - 1.0 + 0.3 * ((i * 13 % 7) as f32 - 3.0) / 3.0)
            .collect();
        Dataset::new(
            Matrix::from_vec(n, 1, x).unwrap(),
            Matrix::from_vec(n, 1, y).unwrap(),
        )
        .unwrap()
    }

    fn linear(params: Vec<f32>) -> Network {
        Network::from_params(
            vec![Dense {
                inputs: 1,
                outputs: 1,
                activation: Activation::Identity,
            }],
            params,
        )
        .unwrap()
    }

    #[test]
    fn brute_force_grid_minimum_is_the_least_squares_line() {
        let data = line_data(300);
        let (w, b) = least_squares_line(data.x.as_slice(), data.y.as_slice()).unwrap();
        let net = linear(vec![0.0, 0.0]);
        let (ws, bs) = (linspace(-5.0, 5.0, 201), linspace(-5.0, 5.0, 201));
        let grid = cost_on_plane(
            &net,
            &data,
            Loss::Mse,
            &[1.0, 0.0],
            Some(&[0.0, 1.0]),
            &ws,
            &bs,
        );
        let (mut best, mut at) = (f64::INFINITY, (0, 0));
        for (i, row) in grid.iter().enumerate() {
            for (j, &c) in row.iter().enumerate() {
                if c < best {
                    best = c;
                    at = (i, j);
                }
            }
        }
        // Grid spacing 0.05: the cell holding the minimum is within half a step.
        assert!(
            (ws[at.1] - w).abs() <= 0.025 + 1e-9,
            "w grid {} vs exact {w}",
            ws[at.1]
        );
        assert!(
            (bs[at.0] - b).abs() <= 0.025 + 1e-9,
            "b grid {} vs exact {b}",
            bs[at.0]
        );
        // The grid value at a point equals the directly computed cost.
        let direct = Loss::Mse.value(
            &data
                .x
                .as_slice()
                .iter()
                .map(|&x| (ws[7] * x as f64 + bs[3]) as f32)
                .collect::<Vec<_>>(),
            data.y.as_slice(),
            1,
        );
        assert!((grid[3][7] - direct).abs() < 1e-5 * direct);
    }

    #[test]
    fn gradient_descent_converges_for_a_good_rate_and_diverges_for_a_large_one() {
        let data = line_data(300);
        let (w, b) = least_squares_line(data.x.as_slice(), data.y.as_slice()).unwrap();
        let sgd = OptimizerKind::Sgd.build(0.0, 0.0);
        let cfg = |lr| PathConfig {
            loss: Loss::Mse,
            optimizer: sgd,
            lr,
            batch_size: BatchSize::Full,
            steps: 200,
            seed: 1,
            blowup: 1e6,
        };
        let good = descent_path(&linear(vec![-2.0, 2.0]), &data, &cfg(0.1)).unwrap();
        assert!(!good.diverged);
        let end = good.params.last().unwrap();
        assert!(
            (end[0] as f64 - w).abs() < 1e-3 && (end[1] as f64 - b).abs() < 1e-3,
            "{end:?} vs {w} {b}"
        );
        assert!(
            // Converged f32 weights make the cost wobble in its seventh digit.
            good.costs.windows(2).all(|c| c[1] <= c[0] * (1.0 + 1e-6)),
            "full-batch GD with a small rate never goes uphill"
        );
        // The largest curvature of the MSE is 2 λmax(E[x xᵀ]); a rate above 2/that diverges.
        let bad = descent_path(&linear(vec![-2.0, 2.0]), &data, &cfg(2.0)).unwrap();
        assert!(bad.diverged);
        assert!(bad.costs.last().unwrap() > &(100.0 * bad.costs[0]));
    }

    #[test]
    fn online_sgd_takes_one_row_per_step() {
        let data = line_data(50);
        let sgd = OptimizerKind::Sgd.build(0.0, 0.0);
        let cfg = PathConfig {
            loss: Loss::Mse,
            optimizer: sgd,
            lr: 0.01,
            batch_size: BatchSize::Mini(1),
            steps: 3,
            seed: 1,
            blowup: 1e6,
        };
        let p = descent_path(&linear(vec![0.0, 0.0]), &data, &cfg).unwrap();
        assert_eq!(p.params.len(), 4);
        // From zero weights, one row (x, y) moves the bias by exactly 2 lr y.
        let db = p.params[1][1];
        assert!(
            data.y
                .as_slice()
                .iter()
                .any(|&y| (2.0 * 0.01 * y - db).abs() < 1e-7),
            "bias step {db}"
        );
    }

    #[test]
    fn filter_normalised_rows_have_the_norm_of_their_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net = crate::NetworkConfig {
            inputs: 4,
            hidden: vec![5],
            outputs: 2,
            ..Default::default()
        }
        .init(&mut rng)
        .unwrap();
        let d = filter_normalized_direction(&net, &mut rng);
        for i in 0..net.layers().len() {
            let (l, w, _) = net.dense(i).unwrap();
            let (dw, db) = l.split(&d[net.layer_range(i)]);
            for (wr, dr) in w.chunks(l.inputs).zip(dw.chunks(l.inputs)) {
                assert!((norm(wr) - norm(dr)).abs() < 1e-5 * norm(wr));
            }
            assert!(db.iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn trajectory_pca_recovers_a_planar_path() {
        // Snapshots on the plane spanned by e0 and e1 in 5 dimensions.
        let end = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        let snaps: Vec<Vec<f32>> = (0..6)
            .map(|t| {
                let t = t as f32;
                vec![1.0 + 3.0 * t, 2.0 + t * t * 0.2, 3.0, 4.0, 5.0]
            })
            .collect();
        let pca = trajectory_pca(&snaps, &end).unwrap();
        assert!((pca.explained[0] + pca.explained[1] - 1.0).abs() < 1e-9);
        assert!(pca.explained[0] >= pca.explained[1]);
        for d in &pca.directions {
            assert!((norm(d) - 1.0).abs() < 1e-5);
            assert!(d[2..].iter().all(|&v| v.abs() < 1e-6));
        }
        assert!(dot(&pca.directions[0], &pca.directions[1]).abs() < 1e-5);
        // Coordinates reproduce each move exactly (the path lies in the plane).
        for (s, c) in snaps.iter().zip(&pca.coords) {
            for k in 0..5 {
                let rebuilt = end[k] as f64
                    + c[0] * pca.directions[0][k] as f64
                    + c[1] * pca.directions[1][k] as f64;
                assert!(
                    (rebuilt - s[k] as f64).abs() < 1e-4,
                    "{rebuilt} vs {}",
                    s[k]
                );
            }
        }
    }

    #[test]
    fn lr_range_test_stays_in_range_and_finds_the_blow_up() {
        let data = line_data(400);
        let cfg = LrRangeConfig {
            optimizer: OptimizerKind::Sgd.build(0.0, 0.0),
            lr_min: 1e-5,
            lr_max: 10.0,
            steps: 150,
            batch_size: 32,
            ..Default::default()
        };
        let r = lr_range_test(&linear(vec![0.0, 0.0]), &data, &cfg).unwrap();
        assert!(r.stopped_early, "a rate of 10 on this problem diverges");
        assert!(r.suggestion >= cfg.lr_min && r.suggestion <= cfg.lr_max);
        assert!(r.losses.iter().all(|l| l.is_finite()));
        assert!(r.smoothed[r.min_index] < 0.5 * r.smoothed[0]);
        // The largest curvature of the mean squared error of w x + b is 2 λmax of
        // E[(x, 1)(x, 1)ᵀ]; rates above 2 / that diverge. The lowest point sits near that
        // edge and the suggestion safely below it.
        let n = data.len() as f64;
        let (sx, sxx) = data.x.as_slice().iter().fold((0.0, 0.0), |(a, b), &x| {
            (a + x as f64 / n, b + (x as f64).powi(2) / n)
        });
        let lmax = 2.0 * ((1.0 + sxx) / 2.0 + (((sxx - 1.0) / 2.0).powi(2) + sx * sx).sqrt());
        let limit = 2.0 / lmax;
        let at_min = r.lrs[r.min_index] as f64;
        assert!(
            at_min > 0.1 * limit && at_min < 3.0 * limit,
            "lowest at {at_min}, limit {limit}"
        );
        assert!(
            (r.suggestion as f64) < limit,
            "suggestion {} vs limit {limit}",
            r.suggestion
        );
        assert!(r.steepest_index <= r.min_index);
    }
}
