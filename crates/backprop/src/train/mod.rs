//! The training loop: epochs of (shuffled) batches, each a forward pass, a cost, a
//! backward pass and an update, shared by the command line, the examples and the tests.
//!
//! * `mod.rs` (here): what training is configured with and what it produces
//!   ([`TrainConfig`], [`Dataset`], [`History`], [`TrainState`]), and the hooks into
//!   it ([`Callback`], [`GradientReducer`]);
//! * `trainer.rs`: [`Trainer`], the epoch loop and the step;
//! * `batcher.rs`: which rows each step trains on (shuffling, shards, pieces);
//! * `early_stopping.rs`: [`EarlyStopping`], the callback that keeps the best weights.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::network::{Network, Trace};
use crate::optim::{Optimizer, OptimizerState, Schedule, ScheduleState};
use crate::seed::{self, Stream};

mod batcher;
mod early_stopping;
mod trainer;

pub use early_stopping::EarlyStopping;
pub use trainer::Trainer;

/// Observations per update: the three forms of gradient descent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchSize {
    /// Full-batch gradient descent: one update per epoch, over every row.
    Full,
    /// Mini-batch gradient descent with this many rows per update (1 = online /
    /// stochastic gradient descent, one observation per update).
    Mini(usize),
}

impl BatchSize {
    /// Rows per batch for a data set of `n` rows.
    pub fn rows(self, n: usize) -> usize {
        match self {
            BatchSize::Full => n,
            BatchSize::Mini(b) => b.min(n),
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Full => f.write_str("full"),
            BatchSize::Mini(b) => write!(f, "{b}"),
        }
    }
}

/// Features and targets of a data set, row for row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Dataset {
    /// Features, `rows x inputs`.
    pub x: Matrix,
    /// Targets, `rows x outputs` (one-hot rows for classification).
    pub y: Matrix,
}

impl Dataset {
    /// Pairs features with targets; they must have the same number of rows.
    pub fn new(x: Matrix, y: Matrix) -> Result<Self> {
        if x.rows() != y.rows() {
            return Err(Error::ShapeMismatch {
                op: "Dataset::new",
                expected: format!("{} target rows", x.rows()),
                got: format!("{}", y.rows()),
            });
        }
        Ok(Dataset { x, y })
    }

    /// Number of observations.
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    /// Whether there are no observations.
    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    /// The rows listed in `idx`.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select_rows(idx),
            y: self.y.select_rows(idx),
        }
    }
}

/// Everything that decides how a network learns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the whole training set.
    pub epochs: usize,
    /// Observations per update.
    pub batch_size: BatchSize,
    /// Shuffle the rows at the start of every epoch (seeded).
    pub shuffle: bool,
    /// The cost function.
    pub loss: Loss,
    /// The update rule.
    pub optimizer: Optimizer,
    /// Base learning rate.
    pub lr: f32,
    /// How the learning rate changes over time.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f32>,
    /// Stop when the validation loss has not improved for this many epochs and restore
    /// the best weights (0 = never stop early).
    pub patience: usize,
    /// Seed of the shuffling generator (its [`Stream::Shuffle`] stream).
    pub seed: u64,
    /// Record every step's loss in the history (for cost-per-step plots).
    pub record_steps: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: BatchSize::Mini(32),
            shuffle: true,
            loss: Loss::Mse,
            optimizer: Optimizer::default(),
            lr: 0.01,
            schedule: Schedule::Constant,
            clip_norm: None,
            patience: 0,
            seed: 0,
            record_steps: false,
        }
    }
}

impl TrainConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.batch_size == BatchSize::Mini(0) {
            return Err(Error::config(
                "batch-size",
                "must be at least 1 (or `full`)",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config(
                "lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        if let Some(c) = self.clip_norm {
            if !(c > 0.0 && c.is_finite()) {
                return Err(Error::config("clip-norm", "must be positive"));
            }
        }
        self.optimizer.validate()?;
        self.schedule.validate()
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (weighted by batch size).
    pub train_loss: f64,
    /// Validation loss at the end of the epoch.
    pub valid_loss: Option<f64>,
    /// Learning rate of the epoch's last step.
    pub lr: f32,
    /// Seconds the epoch took (training and validation).
    pub seconds: f64,
    /// Per layer: L2 norm of the gradient of the epoch's last step.
    pub grad_norms: Vec<f32>,
    /// Per layer: `‖Δθ‖ / ‖θ‖` of the epoch's last update.
    pub update_ratios: Vec<f32>,
}

/// What a training run has recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct History {
    /// One record per completed epoch.
    pub epochs: Vec<EpochRecord>,
    /// Loss of every step, when [`TrainConfig::record_steps`] is set.
    pub step_losses: Vec<f32>,
    /// Epoch (1-based) whose weights were kept when early stopping restored the best.
    pub best_epoch: Option<usize>,
    /// Whether training stopped before the configured number of epochs.
    pub stopped_early: bool,
}

/// Everything needed to continue training exactly where it stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Completed epochs.
    pub epoch: usize,
    /// Optimizer moments and step count.
    pub optimizer: OptimizerState,
    /// Learning-rate schedule state.
    pub schedule: ScheduleState,
    /// The shuffling generator.
    pub rng: ChaCha8Rng,
    /// The record so far (completed epochs only; the steps of an interrupted epoch are
    /// in [`History::step_losses`] but not in [`History::epochs`]).
    pub history: History,
    /// Best validation loss and the parameters that reached it (early stopping).
    pub best: Option<(f64, Vec<f32>)>,
    /// Epochs since the validation loss last improved.
    pub bad_epochs: usize,
    /// How far epoch `epoch + 1` got when a callback stopped it before its last step;
    /// `None` at an epoch boundary.
    pub partial: Option<PartialEpoch>,
}

/// An epoch a callback stopped part-way: what [`Trainer::resume`] needs to run its
/// remaining steps in the same order, with the same loss accumulation, as if it had
/// not been interrupted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Updates done in the epoch (at least 1, fewer than `steps`).
    pub steps_done: usize,
    /// Updates in the whole epoch (checked on resume: the training set must be the
    /// same size).
    pub steps: usize,
    /// The shuffling generator as it was before the epoch's shuffle: shuffling again
    /// from it regenerates the epoch's order of rows (and leaves the generator where
    /// the uninterrupted run left it), so the order need not be stored.
    pub rng: ChaCha8Rng,
    /// Sum over the done steps of rows x mean loss: the numerator of the epoch's
    /// training loss so far.
    pub loss_sum: f64,
    /// Seconds the epoch has taken so far.
    pub seconds: f64,
}

impl TrainState {
    /// The state before the first epoch. The shuffling generator is the
    /// [`Stream::Shuffle`] stream of the configured seed, independent of the streams
    /// that split the data and draw the initial weights.
    pub fn new(config: &TrainConfig, net: &Network) -> Self {
        TrainState {
            epoch: 0,
            optimizer: config.optimizer.init(net.num_params()),
            schedule: ScheduleState::default(),
            rng: seed::rng(config.seed, Stream::Shuffle),
            history: History::default(),
            best: None,
            bad_epochs: 0,
            partial: None,
        }
    }
}

/// What a callback asks the loop to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this point. The state stays consistent and resumable: a stop from
    /// [`Callback::on_step_end`] before an epoch's last step leaves that epoch
    /// unrecorded, its progress in [`TrainState::partial`], and no
    /// [`Callback::on_epoch_end`] call for it.
    Stop,
}

/// Hooks into the training loop: progress display, checkpointing, interruption.
pub trait Callback {
    /// After every update. `step` is 1-based within the epoch.
    fn on_step_end(&mut self, _epoch: usize, _step: usize, _steps: usize, _loss: f32) -> Control {
        Control::Continue
    }
    /// After every epoch is recorded and before any callback's
    /// [`Callback::on_epoch_end`]: a callback whose memory must survive a checkpoint
    /// ([`EarlyStopping`]) keeps it in `state` here.
    fn on_epoch_recorded(&mut self, _net: &Network, _state: &mut TrainState) -> Control {
        Control::Continue
    }
    /// After every epoch, with the network as it now is and the resumable state.
    fn on_epoch_end(&mut self, _net: &Network, _state: &TrainState) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// Once training has run its course (every configured epoch, or stopped early), but
    /// not when a callback interrupted it: the weights may still change here
    /// ([`EarlyStopping`] restores the best).
    fn on_train_end(&mut self, _net: &mut Network, _state: &TrainState) {}
}

/// Combines the gradients of a step across processes (data-parallel training). The
/// default, for one process, does nothing.
pub trait GradientReducer {
    /// Called with this process's mean gradient and loss for its share of the global
    /// batch, and the number of rows it holds (possibly 0, with zero gradient and loss);
    /// on return both must be global means.
    fn reduce(&mut self, _grads: &mut [f32], _loss: &mut f32, _rows: usize) {}
    /// Which training rows this process holds, given the rows it was handed (default:
    /// all of them, one process).
    fn shard(&self, local_rows: usize) -> Shard {
        Shard::whole(local_rows)
    }
    /// Sums `values` element-wise across processes (the validation loss). The default,
    /// for one process, does nothing.
    fn sum(&mut self, _values: &mut [f64]) {}
}

/// This process's share of the training rows in data-parallel training: global row `i`
/// (of `total`) belongs to process `i % size`, which holds it as its local row
/// `i / size`. Every process shuffles the same global order and computes the part of
/// each global batch it holds, so the global batches are those of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This process, `0..size`.
    pub rank: usize,
    /// Number of processes.
    pub size: usize,
    /// Training rows of all processes together.
    pub total: usize,
}

impl Shard {
    /// One process holding all `total` rows.
    pub fn whole(total: usize) -> Self {
        Shard {
            rank: 0,
            size: 1,
            total,
        }
    }

    /// Rows this process holds.
    pub fn rows(&self) -> usize {
        if self.rank >= self.size {
            return 0;
        }
        (self.total + self.size - 1 - self.rank) / self.size
    }

    /// This process's items of a list in global row order (every `size`-th from `rank`).
    pub fn select<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.rank)
            .step_by(self.size.max(1))
            .cloned()
            .collect()
    }
}

/// The single-process reducer.
pub struct LocalReducer;
impl GradientReducer for LocalReducer {}

/// Rows that go through forward and backward propagation together. A larger batch (as
/// in full-batch gradient descent) is processed in pieces of this many rows whose
/// gradients are summed: each piece's activations then stay in cache from the forward
/// pass to the backward pass, where the whole batch's would stream from memory several
/// times per layer. See BENCHMARKS.md, D4.
pub const PIECE_ROWS: usize = 512;

/// Rows evaluated at once when computing losses and predictions of a whole data set
/// (fewer for networks whose trace is large: [`eval_rows`]).
pub const EVAL_CHUNK: usize = 4096;

/// Floats a trace may take when a whole data set is scored (128 MiB).
const EVAL_FLOATS: usize = 1 << 25;

/// Rows of a data set that `net` scores at once: [`EVAL_CHUNK`], or, when the trace of
/// that many rows would take more than 128 MiB (image networks: a convolution keeps
/// every receptive field, 288 floats a position for 32 channels of 3x3), the largest
/// power of two whose trace fits. Every whole-data-set evaluation and prediction
/// scores in these chunks, and a power of two divides the rows `predict` reads at a
/// time, so a row's prediction has the same bits however the data is read.
pub fn eval_rows(net: &Network) -> usize {
    let per_row = net.inputs()
        + net
            .layers()
            .iter()
            .map(|l| l.outputs() + l.saved_width() + l.work_width())
            .sum::<usize>();
    let rows = EVAL_CHUNK.min(EVAL_FLOATS / per_row.max(1)).max(1);
    1 << rows.ilog2()
}

/// The mean loss of `net` over a data set (evaluated in chunks, accumulated in f64).
pub fn evaluate_loss(net: &Network, data: &Dataset, loss: Loss, trace: &mut Trace) -> f64 {
    evaluate_loss_sum(net, data, loss, trace)
        / loss.denominator(data.len() * net.outputs(), net.outputs())
}

/// The summed (not yet averaged) loss of `net` over a data set.
fn evaluate_loss_sum(net: &Network, data: &Dataset, loss: Loss, trace: &mut Trace) -> f64 {
    let mut sum = 0.0;
    let mut x = Matrix::default();
    let mut y = Matrix::default();
    let n = data.len();
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(eval_rows(net)) {
        x.gather_rows(&data.x, chunk);
        y.gather_rows(&data.y, chunk);
        net.forward_train(&x, trace);
        sum += loss.sum(trace.output().as_slice(), y.as_slice(), net.outputs());
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkConfig;
    use rand::{Rng, SeedableRng};

    fn tiny() -> (Network, Dataset) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x =
            Matrix::from_vec(12, 2, (0..24).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
        let y =
            Matrix::from_vec(12, 1, (0..12).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
        let net = NetworkConfig {
            inputs: 2,
            hidden: vec![3],
            outputs: 1,
            ..Default::default()
        }
        .init(&mut rng)
        .unwrap();
        (net, Dataset::new(x, y).unwrap())
    }

    /// A state with more epochs done than configured is an error, not an underflow.
    #[test]
    fn resuming_past_the_configured_epochs_is_an_error() {
        let (mut net, d) = tiny();
        let long = Trainer::new(TrainConfig {
            epochs: 5,
            ..Default::default()
        })
        .unwrap();
        let mut state = TrainState::new(long.config(), &net);
        long.resume(&mut net, &d, None, &mut state, &mut [], &mut LocalReducer)
            .unwrap();
        assert_eq!(state.epoch, 5);
        let short = Trainer::new(TrainConfig {
            epochs: 3,
            record_steps: true,
            ..Default::default()
        })
        .unwrap();
        let e = short
            .resume(&mut net, &d, None, &mut state, &mut [], &mut LocalReducer)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("5 epochs done, more than the 3 configured"),
            "{e}"
        );
        // Exactly the configured epochs done: nothing left to do, and no error.
        let same = Trainer::new(TrainConfig {
            epochs: 5,
            ..Default::default()
        })
        .unwrap();
        let before = net.params().to_vec();
        same.resume(&mut net, &d, None, &mut state, &mut [], &mut LocalReducer)
            .unwrap();
        assert_eq!(net.params(), &before[..]);
    }

    /// A part-done epoch of another size (the data changed) is refused.
    #[test]
    fn a_partial_epoch_must_fit_the_data() {
        let (mut net, d) = tiny();
        let trainer = Trainer::new(TrainConfig {
            batch_size: BatchSize::Mini(4),
            ..Default::default()
        })
        .unwrap();
        let mut state = TrainState::new(trainer.config(), &net);
        state.partial = Some(PartialEpoch {
            steps_done: 2,
            steps: 4,
            rng: state.rng.clone(),
            loss_sum: 0.0,
            seconds: 0.0,
        });
        let e = trainer
            .resume(&mut net, &d, None, &mut state, &mut [], &mut LocalReducer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("step 2 of 4 of epoch 1"), "{e}");
    }

    /// Early stopping is an ordinary callback: handed to `fit` by the caller (with no
    /// patience configured) it stops at the same epoch and restores the same weights as
    /// the one the trainer builds from `patience`.
    #[test]
    fn early_stopping_is_an_ordinary_callback() {
        let (net, d) = tiny();
        // Validation targets opposite to the training ones: learning makes them worse.
        let mut valid = d.clone();
        valid.y.as_mut_slice().iter_mut().for_each(|y| *y = -*y);
        let config = TrainConfig {
            epochs: 50,
            lr: 0.1,
            patience: 3,
            ..Default::default()
        };
        let mut configured = net.clone();
        let h1 = Trainer::new(config.clone())
            .unwrap()
            .fit(&mut configured, &d, Some(&valid), &mut [])
            .unwrap();
        assert!(h1.stopped_early && h1.epochs.len() < 50, "{h1:?}");
        let best = h1.best_epoch.expect("a best epoch");
        assert_eq!(h1.epochs.len(), best + 3);
        let mut handed = net.clone();
        let mut early = EarlyStopping::new(3);
        let h2 = Trainer::new(TrainConfig {
            patience: 0,
            ..config.clone()
        })
        .unwrap()
        .fit(&mut handed, &d, Some(&valid), &mut [&mut early])
        .unwrap();
        assert_eq!(configured.params(), handed.params());
        assert_eq!((h2.stopped_early, h2.best_epoch), (true, Some(best)));
        assert_eq!(h2.epochs.len(), h1.epochs.len());
        // The restored weights are the best epoch's, not the last one's.
        let mut last = net.clone();
        Trainer::new(TrainConfig {
            epochs: h1.epochs.len(),
            patience: 0,
            ..config
        })
        .unwrap()
        .fit(&mut last, &d, Some(&valid), &mut [])
        .unwrap();
        assert_ne!(last.params(), configured.params());
    }

    /// An empty validation set is refused (its loss would be NaN); none is fine.
    #[test]
    fn an_empty_validation_set_is_refused() {
        let (mut net, d) = tiny();
        let trainer = Trainer::new(TrainConfig {
            epochs: 2,
            patience: 1,
            ..Default::default()
        })
        .unwrap();
        let empty = d.select(&[]);
        let e = trainer
            .fit(&mut net, &d, Some(&empty), &mut [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("validation set has no rows"), "{e}");
        let h = trainer.fit(&mut net, &d, None, &mut []).unwrap();
        assert_eq!(h.epochs.len(), 2);
        assert!(h.epochs.iter().all(|e| e.valid_loss.is_none()));
    }
}
