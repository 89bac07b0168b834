//! The training loop: epochs of (shuffled) batches, each a forward pass, a cost, a
//! backward pass and an update, shared by the command line, the examples and the tests.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::network::{Network, Trace};
use crate::optim::{clip_grad_norm, l2_norm, Optimizer, OptimizerState, Schedule, ScheduleState};
use crate::seed::{self, Stream};

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
    /// After every epoch, with the network as it now is and the resumable state.
    fn on_epoch_end(&mut self, _net: &Network, _state: &TrainState) -> Result<Control> {
        Ok(Control::Continue)
    }
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

/// Runs training.
#[derive(Clone, Debug)]
pub struct Trainer {
    config: TrainConfig,
}

/// Buffers a training step reuses.
#[derive(Default)]
struct Workspace {
    x: Matrix,
    y: Matrix,
    trace: Trace,
    d_out: Vec<f32>,
    grads: Vec<f32>,
    before: Vec<f32>,
    order: Vec<usize>,
    /// Local rows of this process's part of the batch (sharded training only).
    local: Vec<usize>,
}

impl Trainer {
    /// A trainer with a validated configuration.
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Trainer { config })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains `net` on `train` for the configured epochs, evaluating on `valid` after
    /// every epoch. Returns the history.
    ///
    /// Large products and optimizer steps are split over the threads of the current
    /// rayon pool. Call this inside that pool (`pool.install(|| trainer.fit(..))`, as
    /// `backprop train` does) when it has more than one thread: from outside, every
    /// split hands both halves to the pool's threads and waits for them. On MNIST
    /// (784-512-256-10, batch 128, 2 threads) an epoch took about 6% longer that way.
    pub fn fit(
        &self,
        net: &mut Network,
        train: &Dataset,
        valid: Option<&Dataset>,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let mut state = TrainState::new(&self.config, net);
        self.resume(net, train, valid, &mut state, callbacks, &mut LocalReducer)?;
        Ok(state.history)
    }

    /// Continues training from `state` (fresh from [`TrainState::new`] or loaded from a
    /// checkpoint, possibly in the middle of an epoch) until the configured epochs are
    /// done or a callback stops it.
    ///
    /// Errors: shapes that do not fit the network, a state with more epochs done than
    /// configured (or a part-done epoch of another size), and a validation set with no
    /// rows (its loss would be NaN; pass `None` to train without validation).
    pub fn resume(
        &self,
        net: &mut Network,
        train: &Dataset,
        valid: Option<&Dataset>,
        state: &mut TrainState,
        callbacks: &mut [&mut dyn Callback],
        reducer: &mut dyn GradientReducer,
    ) -> Result<()> {
        let c = &self.config;
        let shard = self.check(net, train, valid, state, reducer)?;
        let n = shard.total;
        let batch = c.batch_size.rows(n);
        let steps = n.div_ceil(batch);
        let mut ws = Workspace {
            d_out: Vec::with_capacity(batch * net.outputs()),
            grads: vec![0.0; net.num_params()],
            order: (0..n).collect(),
            ..Workspace::default()
        };
        if c.record_steps {
            let done = state.partial.as_ref().map_or(0, |p| p.steps_done);
            let left = (c.epochs - state.epoch) * steps - done;
            state.history.step_losses.reserve(left);
        }
        let mut eval_trace = Trace::default();
        // A state that stopped early is finished even when loaded from a checkpoint.
        while state.epoch < c.epochs && !state.history.stopped_early {
            let Some(epoch) =
                self.run_epoch(net, train, shard, &mut ws, state, callbacks, reducer)?
            else {
                // Stopped mid-epoch: the weights stay as they are and `state.partial`
                // says where to go on.
                return Ok(());
            };
            let valid_loss =
                valid.map(|v| validation_loss(net, v, c.loss, reducer, &mut eval_trace));
            let stop = self.end_epoch(net, state, &ws, epoch, valid_loss);
            let mut cb_stop = false;
            for cb in callbacks.iter_mut() {
                if cb.on_epoch_end(net, state)? == Control::Stop {
                    cb_stop = true;
                }
            }
            if stop || cb_stop {
                if state.epoch < c.epochs && !state.history.stopped_early {
                    // Interrupted by a callback: leave the weights as they are so the
                    // run can resume exactly.
                    return Ok(());
                }
                break;
            }
        }
        if let Some((_, best)) = &state.best {
            if state.history.stopped_early || state.epoch == c.epochs {
                net.params_mut().copy_from_slice(best);
            }
        }
        Ok(())
    }

    /// Checks the data and the state against the network and the configuration, and
    /// returns this process's shard of the training rows.
    fn check(
        &self,
        net: &Network,
        train: &Dataset,
        valid: Option<&Dataset>,
        state: &TrainState,
        reducer: &mut dyn GradientReducer,
    ) -> Result<Shard> {
        let c = &self.config;
        check_shapes(net, train, c.loss)?;
        if let Some(v) = valid {
            check_shapes(net, v, c.loss)?;
        }
        // A state from elsewhere (a checkpoint) must be this optimizer's, for this
        // network, or every update would fail.
        state.optimizer.check(&c.optimizer, net.num_params())?;
        let shard = reducer.shard(train.len());
        if shard.rank >= shard.size || shard.rows() != train.len() {
            return Err(Error::ShapeMismatch {
                op: "fit (shard)",
                expected: format!(
                    "{} local rows of {} for process {} of {}",
                    shard.rows(),
                    shard.total,
                    shard.rank,
                    shard.size
                ),
                got: format!("{}", train.len()),
            });
        }
        if shard.total == 0 {
            return Err(Error::config("data", "the training set has no rows"));
        }
        if let Some(v) = valid {
            // Every process calls this (each holds `Some`, possibly with no rows of
            // its own), so the sum is the global count.
            let mut rows = [v.len() as f64];
            reducer.sum(&mut rows);
            if rows[0] == 0.0 {
                return Err(Error::config(
                    "valid",
                    "the validation set has no rows, so its loss would be NaN (and early stopping would keep it as the best forever); pass no validation set to train without one",
                ));
            }
        }
        if state.epoch > c.epochs {
            return Err(Error::config(
                "epochs",
                format!(
                    "the training state has {} epochs done, more than the {} configured; configure at least {} epochs to continue it",
                    state.epoch, c.epochs, state.epoch
                ),
            ));
        }
        if let Some(p) = &state.partial {
            let steps = shard.total.div_ceil(c.batch_size.rows(shard.total));
            if state.epoch == c.epochs
                || p.steps != steps
                || p.steps_done == 0
                || p.steps_done >= p.steps
            {
                return Err(Error::config(
                    "state",
                    format!(
                        "the training state stopped after step {} of {} of epoch {}, which does not fit {} epochs of {steps} steps (the training set or batch size has changed); continue it with the data and settings that made it",
                        p.steps_done,
                        p.steps,
                        state.epoch + 1,
                        c.epochs
                    ),
                ));
            }
        }
        Ok(shard)
    }

    /// Runs the updates of epoch `state.epoch + 1`, from where `state.partial` left it
    /// if set. Returns `None` when a callback stopped it before its last step (then
    /// `state.partial` records how far it got), else what the epoch record needs.
    #[allow(clippy::too_many_arguments)]
    fn run_epoch(
        &self,
        net: &mut Network,
        train: &Dataset,
        shard: Shard,
        ws: &mut Workspace,
        state: &mut TrainState,
        callbacks: &mut [&mut dyn Callback],
        reducer: &mut dyn GradientReducer,
    ) -> Result<Option<EpochSteps>> {
        let c = &self.config;
        let started = Instant::now();
        let (n, epoch) = (shard.total, state.epoch);
        let batch = c.batch_size.rows(n);
        let steps = n.div_ceil(batch);
        let (first, mut loss_sum, seconds_before) = match state.partial.take() {
            Some(p) => {
                // Shuffle again from the generator the epoch started with: the same
                // order, and the generator ends where it did.
                state.rng = p.rng;
                (p.steps_done, p.loss_sum, p.seconds)
            }
            None => (0, 0.0f64, 0.0),
        };
        let rng_at_start = state.rng.clone();
        ws.order.clear();
        ws.order.extend(0..n);
        if c.shuffle && batch < n {
            ws.order.shuffle(&mut state.rng);
        }
        let mut lr = c.lr;
        let mut stop = false;
        for step in first..steps {
            lr = c
                .schedule
                .lr(c.lr, epoch, step, steps, c.epochs, &state.schedule);
            let last = step + 1 == steps;
            let (rows, loss) = self.step(
                net,
                train,
                shard,
                ws,
                step * batch,
                batch,
                lr,
                last,
                state,
                reducer,
                epoch,
                step,
            )?;
            loss_sum += rows as f64 * loss as f64;
            if c.record_steps {
                state.history.step_losses.push(loss);
            }
            for cb in callbacks.iter_mut() {
                if cb.on_step_end(epoch + 1, step + 1, steps, loss) == Control::Stop {
                    stop = true;
                }
            }
            if stop && !last {
                state.partial = Some(PartialEpoch {
                    steps_done: step + 1,
                    steps,
                    rng: rng_at_start,
                    loss_sum,
                    seconds: seconds_before + started.elapsed().as_secs_f64(),
                });
                return Ok(None);
            }
        }
        Ok(Some(EpochSteps {
            train_loss: loss_sum / n as f64,
            lr,
            started,
            seconds_before,
            stop,
        }))
    }

    /// Records a finished epoch: steps the schedule, appends the history and applies
    /// early stopping. Returns whether training should stop.
    fn end_epoch(
        &self,
        net: &Network,
        state: &mut TrainState,
        ws: &Workspace,
        e: EpochSteps,
        valid_loss: Option<f64>,
    ) -> bool {
        let c = &self.config;
        c.schedule.end_epoch(
            c.lr,
            valid_loss.unwrap_or(e.train_loss),
            &mut state.schedule,
        );
        let (grad_norms, update_ratios) = layer_stats(net, ws);
        state.epoch += 1;
        state.history.epochs.push(EpochRecord {
            epoch: state.epoch,
            train_loss: e.train_loss,
            valid_loss,
            lr: e.lr,
            seconds: e.seconds_before + e.started.elapsed().as_secs_f64(),
            grad_norms,
            update_ratios,
        });
        let mut stop = e.stop;
        if let (Some(v), true) = (valid_loss, c.patience > 0) {
            if early_stopping(state, net, v, c.patience) {
                stop = true;
            }
        }
        stop
    }

    /// One update on global rows `order[start..start+batch]`, of which this process
    /// computes those its shard holds. Returns (global rows, loss).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        net: &mut Network,
        train: &Dataset,
        shard: Shard,
        ws: &mut Workspace,
        start: usize,
        batch: usize,
        lr: f32,
        last: bool,
        state: &mut TrainState,
        reducer: &mut dyn GradientReducer,
        epoch: usize,
        step: usize,
    ) -> Result<(usize, f32)> {
        let c = &self.config;
        let end = (start + batch).min(shard.total);
        let idx: &[usize] = if shard.size == 1 {
            &ws.order[start..end]
        } else {
            ws.local.clear();
            ws.local.extend(
                ws.order[start..end]
                    .iter()
                    .filter(|&&g| g % shard.size == shard.rank)
                    .map(|&g| g / shard.size),
            );
            &ws.local
        };
        let rows = idx.len();
        let mut loss = 0.0;
        if rows == 0 {
            // This process holds none of the batch: it contributes a zero gradient.
            ws.grads.fill(0.0);
        } else if rows <= PIECE_ROWS {
            // A full batch this small is the whole set in its own order: no copy.
            let (x, y) = if start == 0 && end == shard.total {
                (&train.x, &train.y)
            } else {
                ws.x.gather_rows(&train.x, idx);
                ws.y.gather_rows(&train.y, idx);
                (&ws.x, &ws.y)
            };
            loss = piece_gradient(
                net,
                c.loss,
                (x.as_slice(), y.as_slice(), rows),
                &mut ws.trace,
                &mut ws.d_out,
                &mut ws.grads,
                None,
            );
        } else {
            // The batch's mean gradient is the sum of the pieces' mean gradients, each
            // weighted by its share of the rows.
            let mut sum = 0.0f64;
            let (xc, yc) = (train.x.cols(), train.y.cols());
            for (i, piece) in idx.chunks(PIECE_ROWS).enumerate() {
                // Consecutive rows (a full batch, which is never shuffled) are used
                // where they lie; others are gathered.
                let (x, y) = match consecutive(piece) {
                    Some(r) => (
                        &train.x.as_slice()[r.start * xc..r.end * xc],
                        &train.y.as_slice()[r.start * yc..r.end * yc],
                    ),
                    None => {
                        ws.x.gather_rows(&train.x, piece);
                        ws.y.gather_rows(&train.y, piece);
                        (ws.x.as_slice(), ws.y.as_slice())
                    }
                };
                let share = piece.len() as f32 / rows as f32;
                let l = piece_gradient(
                    net,
                    c.loss,
                    (x, y, piece.len()),
                    &mut ws.trace,
                    &mut ws.d_out,
                    &mut ws.grads,
                    Some((share, i > 0)),
                );
                sum += f64::from(l) * f64::from(share);
            }
            loss = sum as f32;
        }
        reducer.reduce(&mut ws.grads, &mut loss, rows);
        if !loss.is_finite() {
            return Err(Error::NonFinite {
                epoch: epoch + 1,
                step: step + 1,
                what: "loss",
                value: loss,
            });
        }
        let norm = match c.clip_norm {
            Some(max) => clip_grad_norm(&mut ws.grads, max),
            None if last => l2_norm(&ws.grads),
            None => 0.0,
        };
        if !norm.is_finite() {
            return Err(Error::NonFinite {
                epoch: epoch + 1,
                step: step + 1,
                what: "gradient",
                value: norm,
            });
        }
        if last {
            ws.before.clear();
            ws.before.extend_from_slice(net.params());
        }
        c.optimizer
            .step(lr, net.params_mut(), &ws.grads, &mut state.optimizer);
        Ok((end - start, loss))
    }
}

/// What a finished epoch's updates leave for its record.
struct EpochSteps {
    /// Mean training loss over the epoch's rows.
    train_loss: f64,
    /// Learning rate of the last step.
    lr: f32,
    /// When this process started (or went on with) the epoch.
    started: Instant,
    /// Seconds spent on the epoch before it was interrupted and resumed.
    seconds_before: f64,
    /// Whether a callback asked to stop at the last step.
    stop: bool,
}

/// Keeps the best weights so far and counts the epochs without improvement. Returns
/// whether `patience` such epochs have passed (then the history says it stopped early).
fn early_stopping(state: &mut TrainState, net: &Network, valid_loss: f64, patience: usize) -> bool {
    if state.best.as_ref().is_none_or(|(b, _)| valid_loss < *b) {
        state.best = Some((valid_loss, net.params().to_vec()));
        state.bad_epochs = 0;
        state.history.best_epoch = Some(state.epoch);
        return false;
    }
    state.bad_epochs += 1;
    if state.bad_epochs >= patience {
        state.history.stopped_early = true;
        return true;
    }
    false
}

/// The mean loss over the validation rows of every process.
fn validation_loss(
    net: &Network,
    v: &Dataset,
    loss: Loss,
    reducer: &mut dyn GradientReducer,
    trace: &mut Trace,
) -> f64 {
    let mut s = [evaluate_loss_sum(net, v, loss, trace), v.len() as f64];
    reducer.sum(&mut s);
    s[0] / loss.denominator(s[1] as usize * net.outputs(), net.outputs())
}

/// Rows that go through forward and backward propagation together. A larger batch (as
/// in full-batch gradient descent) is processed in pieces of this many rows whose
/// gradients are summed: each piece's activations then stay in cache from the forward
/// pass to the backward pass, where the whole batch's would stream from memory several
/// times per layer. Measured on 8-64-64-1 at full batch (16,512 rows): see
/// `BENCHMARKS.md`.
pub const PIECE_ROWS: usize = 512;

/// Forward, loss and backward on one batch (or piece of one), the `rows` rows of
/// `x` and `y` (row-major), returning its mean loss. With `piece = Some((share,
/// accumulate))` the gradient is scaled by `share`, the piece's fraction of the batch's
/// rows, and added to `grads` when `accumulate`.
fn piece_gradient(
    net: &Network,
    loss: Loss,
    (x, y, rows): (&[f32], &[f32], usize),
    trace: &mut Trace,
    d_out: &mut Vec<f32>,
    grads: &mut [f32],
    piece: Option<(f32, bool)>,
) -> f32 {
    net.forward_rows(x, rows, trace);
    let out = trace.output();
    d_out.resize(out.as_slice().len(), 0.0);
    let (share, accumulate) = piece.unwrap_or((1.0, false));
    let value = loss.gradient_scaled(out.as_slice(), y, out.cols(), share, d_out);
    net.backward_rows(x, rows, trace, d_out, grads, accumulate);
    value
}

/// The range `piece` covers when it lists consecutive rows in order.
fn consecutive(piece: &[usize]) -> Option<std::ops::Range<usize>> {
    let first = *piece.first()?;
    let in_order = piece.iter().enumerate().all(|(k, &r)| r == first + k);
    in_order.then(|| first..first + piece.len())
}

fn check_shapes(net: &Network, d: &Dataset, loss: Loss) -> Result<()> {
    if d.x.cols() != net.inputs() {
        return Err(Error::ShapeMismatch {
            op: "fit",
            expected: format!("{} input columns", net.inputs()),
            got: format!("{}", d.x.cols()),
        });
    }
    if d.y.cols() != net.outputs() {
        return Err(Error::ShapeMismatch {
            op: "fit",
            expected: format!("{} target columns", net.outputs()),
            got: format!("{}", d.y.cols()),
        });
    }
    if loss.takes_logits()
        && net
            .dense(net.layers().len() - 1)
            .map(|(l, ..)| l.activation)
            != Some(crate::Activation::Identity)
    {
        return Err(Error::config("loss", format!("{loss} applies the sigmoid/softmax itself; the output layer must be identity (logits)")));
    }
    Ok(())
}

/// Per-layer gradient norm and update-to-weight ratio of the last step.
fn layer_stats(net: &Network, ws: &Workspace) -> (Vec<f32>, Vec<f32>) {
    let mut norms = Vec::with_capacity(net.layers().len());
    let mut ratios = Vec::with_capacity(net.layers().len());
    for i in 0..net.layers().len() {
        let r = net.layer_range(i);
        norms.push(l2_norm(&ws.grads[r.clone()]));
        let p = &net.params()[r.clone()];
        let before = ws.before.get(r).unwrap_or(p);
        let delta: f64 = p
            .iter()
            .zip(before)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = l2_norm(before) as f64;
        ratios.push(if norm > 0.0 {
            (delta / norm) as f32
        } else {
            0.0
        });
    }
    (norms, ratios)
}

/// Rows evaluated at once when computing losses and predictions of a whole data set.
pub const EVAL_CHUNK: usize = 4096;

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
    for chunk in idx.chunks(EVAL_CHUNK) {
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
    use crate::{Activation, NetworkConfig};
    use rand::{Rng, SeedableRng};

    /// Only rows listed consecutively and in order are read in place.
    #[test]
    fn consecutive_rows_are_recognised() {
        assert_eq!(consecutive(&[3, 4, 5]), Some(3..6));
        assert_eq!(consecutive(&[7]), Some(7..8));
        assert_eq!(consecutive(&[]), None);
        assert_eq!(consecutive(&[3, 5, 6]), None);
        assert_eq!(consecutive(&[4, 3]), None);
        assert_eq!(consecutive(&[0, 1, 2, 2]), None);
    }

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

    /// A batch processed in pieces has the gradient and loss of the whole batch at once.
    #[test]
    fn pieces_sum_to_the_whole_batch_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let rows = 2 * PIECE_ROWS + 37;
        let x = Matrix::from_vec(
            rows,
            5,
            (0..rows * 5).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        )
        .unwrap();
        let y = Matrix::from_vec(
            rows,
            3,
            (0..rows * 3).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        )
        .unwrap();
        let config = NetworkConfig {
            inputs: 5,
            hidden: vec![16, 8],
            outputs: 3,
            activation: Activation::Tanh,
            ..Default::default()
        };
        let net = config.init(&mut rng).unwrap();
        let (mut trace, mut d_out) = (Trace::default(), Vec::new());
        let mut whole = vec![0.0; net.num_params()];
        let whole_loss = piece_gradient(
            &net,
            Loss::Mse,
            (x.as_slice(), y.as_slice(), rows),
            &mut trace,
            &mut d_out,
            &mut whole,
            None,
        );

        let idx: Vec<usize> = (0..rows).collect();
        let (mut xp, mut yp) = (Matrix::default(), Matrix::default());
        let mut summed = vec![f32::NAN; net.num_params()];
        let mut loss = 0.0;
        for (i, piece) in idx.chunks(PIECE_ROWS).enumerate() {
            xp.gather_rows(&x, piece);
            yp.gather_rows(&y, piece);
            let share = piece.len() as f32 / rows as f32;
            loss += share
                * piece_gradient(
                    &net,
                    Loss::Mse,
                    (xp.as_slice(), yp.as_slice(), piece.len()),
                    &mut trace,
                    &mut d_out,
                    &mut summed,
                    Some((share, i > 0)),
                );
        }
        assert!(
            (loss - whole_loss).abs() <= 1e-6 * whole_loss,
            "{loss} vs {whole_loss}"
        );
        let scale = whole.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        for (a, b) in summed.iter().zip(&whole) {
            // Summation order differs; f32 rounding over ~1,000 rows.
            assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b}");
        }
    }
}
