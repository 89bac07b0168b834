//! The trainer: the epoch loop, and in it the steps, each a forward pass, a cost, a
//! backward pass and an update over the pieces of one batch. Which rows a step takes is
//! the [`Batcher`]'s business; what happens at the end of an epoch (the schedule, the
//! history) is [`Trainer::end_epoch`]'s; callbacks, early stopping among them
//! ([`EarlyStopping`]), can stop training after any step or epoch.

use std::time::Instant;

use super::batcher::{Batcher, Piece};
use super::{
    evaluate_loss_sum, Callback, Control, Dataset, EarlyStopping, EpochRecord, GradientReducer,
    History, LocalReducer, PartialEpoch, Shard, TrainConfig, TrainState,
};
use crate::error::{Error, Result};
use crate::layer::{mix, Mode};
use crate::loss::Loss;
use crate::network::{Network, Trace};
use crate::optim::{clip_grad_norm, l2_norm};

/// Runs training.
#[derive(Clone, Debug)]
pub struct Trainer {
    config: TrainConfig,
}

/// Buffers a training step reuses.
struct Workspace {
    trace: Trace,
    d_out: Vec<f32>,
    grads: Vec<f32>,
    /// The parameters before the epoch's last update (for the update ratios).
    before: Vec<f32>,
}

/// What one call of [`Trainer::resume`] works with besides the network and the state.
struct Run<'a, 'c> {
    train: &'a Dataset,
    callbacks: &'a mut [&'c mut dyn Callback],
    reducer: &'a mut dyn GradientReducer,
    batcher: Batcher,
    ws: Workspace,
}

/// Where a step is: its epoch and step (from 0), learning rate, and whether it is the
/// epoch's last.
#[derive(Clone, Copy)]
struct StepAt {
    epoch: usize,
    step: usize,
    lr: f32,
    last: bool,
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
    /// split hands both halves to the pool's threads and waits for them, which costs
    /// time on every product (BENCHMARKS.md, D20).
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
        let batch = c.batch_size.rows(shard.total);
        let batcher = Batcher::new(shard, batch);
        if c.record_steps {
            let done = state.partial.as_ref().map_or(0, |p| p.steps_done);
            let left = (c.epochs - state.epoch) * batcher.steps() - done;
            state.history.step_losses.reserve(left);
        }
        let ws = Workspace {
            trace: Trace::default(),
            d_out: Vec::with_capacity(batch * net.outputs()),
            grads: vec![0.0; net.num_params()],
            before: Vec::new(),
        };
        let mut run = Run {
            train,
            callbacks,
            reducer,
            batcher,
            ws,
        };
        let mut eval_trace = Trace::default();
        let mut early = EarlyStopping::new(c.patience);
        // A state that stopped early is finished even when loaded from a checkpoint.
        while state.epoch < c.epochs && !state.history.stopped_early {
            let Some(epoch) = self.run_epoch(net, state, &mut run)? else {
                // Stopped mid-epoch: the weights stay as they are and `state.partial`
                // says where to go on.
                return Ok(());
            };
            let valid_loss =
                valid.map(|v| validation_loss(net, v, c.loss, run.reducer, &mut eval_trace));
            let mut stop = epoch.stop;
            self.end_epoch(net, state, &run.ws, epoch, valid_loss);
            stop |= early.on_epoch_recorded(net, state) == Control::Stop;
            for cb in run.callbacks.iter_mut() {
                stop |= cb.on_epoch_recorded(net, state) == Control::Stop;
            }
            for cb in run.callbacks.iter_mut() {
                stop |= cb.on_epoch_end(net, state)? == Control::Stop;
            }
            if stop && state.epoch < c.epochs && !state.history.stopped_early {
                // Interrupted by a callback: leave the weights as they are so the run
                // can resume exactly.
                return Ok(());
            }
            if stop {
                break;
            }
        }
        early.on_train_end(net, state);
        for cb in run.callbacks.iter_mut() {
            cb.on_train_end(net, state);
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
    fn run_epoch(
        &self,
        net: &mut Network,
        state: &mut TrainState,
        run: &mut Run<'_, '_>,
    ) -> Result<Option<EpochSteps>> {
        let c = &self.config;
        let started = Instant::now();
        let (epoch, steps) = (state.epoch, run.batcher.steps());
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
        run.batcher.start_epoch(c.shuffle, &mut state.rng);
        let (mut lr, mut stop) = (c.lr, false);
        for step in first..steps {
            lr = c
                .schedule
                .lr(c.lr, epoch, step, steps, c.epochs, &state.schedule);
            let last = step + 1 == steps;
            let (rows, loss) = self.step(
                net,
                state,
                run,
                StepAt {
                    epoch,
                    step,
                    lr,
                    last,
                },
            )?;
            loss_sum += rows as f64 * loss as f64;
            if c.record_steps {
                state.history.step_losses.push(loss);
            }
            for cb in run.callbacks.iter_mut() {
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
        let train_loss = loss_sum / run.batcher.total() as f64;
        Ok(Some(EpochSteps {
            train_loss,
            lr,
            started,
            seconds_before,
            stop,
        }))
    }

    /// Records a finished epoch: steps the schedule and appends the history.
    fn end_epoch(
        &self,
        net: &Network,
        state: &mut TrainState,
        ws: &Workspace,
        e: EpochSteps,
        valid_loss: Option<f64>,
    ) {
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
    }

    /// One update from the rows of step `at.step` that this process holds: the pieces'
    /// gradients summed (each weighted by its share of the batch's rows), reduced over
    /// the processes, checked, clipped, and applied by the optimizer. Returns (global
    /// rows, loss).
    fn step(
        &self,
        net: &mut Network,
        state: &mut TrainState,
        run: &mut Run<'_, '_>,
        at: StepAt,
    ) -> Result<(usize, f32)> {
        let c = &self.config;
        let Workspace {
            trace,
            d_out,
            grads,
            before,
        } = &mut run.ws;
        let mut sum = 0.0f64;
        // Layers that draw random numbers (dropout) draw them from a seed fixed by the
        // run's seed, the epoch, the step and the piece: reproducible on any thread
        // count, and resumable mid-epoch.
        let step_seed = mix(mix(c.seed, at.epoch as u64), at.step as u64);
        let mut piece = 0u64;
        let rows = run.batcher.for_each_piece(run.train, at.step, |p| {
            trace.set_mode(Mode::Train {
                seed: mix(step_seed, piece),
            });
            piece += 1;
            let share = p.share;
            let l = piece_gradient(net, c.loss, p, trace, d_out, grads);
            sum += f64::from(l) * f64::from(share);
        });
        if rows == 0 {
            // This process holds none of the batch: it contributes a zero gradient.
            grads.fill(0.0);
        }
        let mut loss = sum as f32;
        run.reducer.reduce(grads, &mut loss, rows);
        let non_finite = |what, value| Error::NonFinite {
            epoch: at.epoch + 1,
            step: at.step + 1,
            what,
            value,
        };
        if !loss.is_finite() {
            return Err(non_finite("loss", loss));
        }
        let norm = match c.clip_norm {
            Some(max) => clip_grad_norm(grads, max),
            None if at.last => l2_norm(grads),
            None => 0.0,
        };
        if !norm.is_finite() {
            return Err(non_finite("gradient", norm));
        }
        if at.last {
            before.clear();
            before.extend_from_slice(net.params());
        }
        c.optimizer
            .step(at.lr, net.params_mut(), grads, &mut state.optimizer);
        Ok((run.batcher.global_rows(at.step), loss))
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

/// Forward, loss and backward on one piece of a batch (or a whole batch), returning its
/// mean loss; the gradient is scaled by the piece's share of the batch's rows, and
/// added to `grads` when `piece.accumulate`.
fn piece_gradient(
    net: &Network,
    loss: Loss,
    piece: Piece<'_>,
    trace: &mut Trace,
    d_out: &mut Vec<f32>,
    grads: &mut [f32],
) -> f32 {
    let (x, y, rows) = (piece.x, piece.y, piece.rows);
    net.forward_rows(x, rows, trace);
    let out = trace.output();
    d_out.resize(out.as_slice().len(), 0.0);
    let value = loss.gradient_scaled(out.as_slice(), y, out.cols(), piece.share, d_out);
    net.backward_rows(x, rows, trace, d_out, grads, piece.accumulate);
    value
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;
    use crate::train::PIECE_ROWS;
    use crate::{Activation, NetworkConfig};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

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
        let (x_all, y_all) = (x.as_slice(), y.as_slice());
        let p = Piece {
            x: x_all,
            y: y_all,
            rows,
            share: 1.0,
            accumulate: false,
        };
        let whole_loss = piece_gradient(&net, Loss::Mse, p, &mut trace, &mut d_out, &mut whole);

        let idx: Vec<usize> = (0..rows).collect();
        let (mut xp, mut yp) = (Matrix::default(), Matrix::default());
        let mut summed = vec![f32::NAN; net.num_params()];
        let mut loss = 0.0;
        for (i, piece) in idx.chunks(PIECE_ROWS).enumerate() {
            xp.gather_rows(&x, piece);
            yp.gather_rows(&y, piece);
            let share = piece.len() as f32 / rows as f32;
            let (x, y, rows) = (xp.as_slice(), yp.as_slice(), piece.len());
            let p = Piece {
                x,
                y,
                rows,
                share,
                accumulate: i > 0,
            };
            loss += share * piece_gradient(&net, Loss::Mse, p, &mut trace, &mut d_out, &mut summed);
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
