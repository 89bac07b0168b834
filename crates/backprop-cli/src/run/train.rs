//! `backprop train`'s run: settings -> prepared data -> the library's trainer -> a run
//! folder (model, metrics, history, report), with checkpoints along the way.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use backprop::data::prep::Target;
use backprop::model::{atomic_write, Model};
use backprop::optim::Schedule;
use backprop::{
    Callback, Dataset, History, Matrix, Network, NetworkConfig, PartialEpoch, TrainConfig,
    TrainState, Trainer,
};
use serde_json::json;

use super::checkpoint::Run;
use super::prepare::{plan, prepare, Prepared};
use crate::compute::trajectory::{self, Recorder, SplitInfo};
use crate::progress::Progress;
use crate::run::guard::{Guard, MIN_VALID_ROWS};
use crate::settings::Settings;
use crate::summary::{epochs, metrics_of, predict_units, shape};

/// Trains with settings `s`, checkpointing through `run`, and writes the run folder.
pub fn train(s: &Settings, run: &mut Run) -> Result<()> {
    let p = prepare(s)?;
    let rows = crate::cluster::totals([
        p.train.len(),
        p.valid.as_ref().map_or(0, Dataset::len),
        p.test.len(),
    ]);
    let (net_config, mut config) = plan(s, &p, rows[0])?;
    warn_without_validation(s, &config, rows[1]);
    let lr_note = choose_lr(s, &net_config, &mut config, &p.train)?;
    let out_dir = run_dir(s.out.as_deref(), &p.name)?;
    run.claim(&out_dir)?;
    announce(s, &net_config, &config, rows);
    let mut path = None;
    if crate::cluster::size() == 1 {
        // Under mpirun, Ctrl-C goes to mpirun, which ends every rank; resume from the
        // last checkpoint.
        crate::interrupt::install();
    }
    let network = fit(
        &net_config,
        &config,
        &p,
        "network ",
        s.quiet,
        Some(&mut path),
        Some(run),
    )?;
    let baseline = if s.baseline && !crate::interrupt::requested() {
        Some(fit_baseline(&net_config, &config, &p, s.quiet)?)
    } else {
        None
    };
    let scores = Scores::gather(&p, &network, baseline.as_ref());
    if !crate::cluster::is_root() {
        return Ok(());
    }
    let trained = Trained {
        s,
        p: &p,
        net_config: &net_config,
        config: &config,
        network,
        baseline,
        rows,
        lr_note,
    };
    let seconds = trained.network.seconds;
    let diverged = trained.network.diverged.clone();
    let history_len = trained.network.history.epochs.len();
    let test = trained.write(&out_dir, &scores, path.as_ref())?;
    println!();
    print!(
        "{}",
        crate::report::train_summary(
            &test,
            scores.base_test(&p.prep.target).as_ref(),
            &p.prep.target,
            p.dollars,
            &shape(&net_config)
        )
    );
    for note in diverged
        .iter()
        .chain(&scores.linear_wins(&p.prep.target, &net_config))
    {
        println!("\n{note}");
    }
    println!(
        "\n{} in {seconds:.1}s; run folder: {}",
        epochs(history_len),
        out_dir.display()
    );
    match run.interrupted() {
        Some(stopped) => Err(stopped.into()),
        None => Ok(()),
    }
}

/// The line that says what is about to be trained.
fn announce(s: &Settings, net_config: &NetworkConfig, config: &TrainConfig, rows: [usize; 3]) {
    if s.quiet {
        return;
    }
    eprintln!(
        "training {} network ({} parameters) on {} rows, validating on {}, testing on {}: {} {} lr {} batch {} for {}, {} thread(s)",
        shape(net_config),
        net_config.num_params(),
        rows[0],
        rows[1],
        rows[2],
        config.loss,
        config.optimizer.name(),
        config.lr,
        config.batch_size,
        epochs(config.epochs),
        s.threads()
    );
}

/// The trainer is handed no validation set (never an empty one, whose loss would be
/// NaN): say what that turns off.
fn warn_without_validation(s: &Settings, config: &TrainConfig, valid_rows: usize) {
    if valid_rows > 0 || s.quiet {
        return;
    }
    if config.patience > 0 {
        eprintln!("warning: --patience {} needs validation rows and there are none (--valid-fraction {}): training runs every epoch without early stopping; pass --valid-fraction 0.1 for early stopping", config.patience, s.valid_fraction);
    }
    if matches!(config.schedule, Schedule::Plateau { .. }) {
        eprintln!("note: no validation rows: the plateau schedule watches the training loss");
    }
}

/// `--lr auto`: runs the range test and sets the rate; returns the note saying how.
pub(super) fn choose_lr(
    s: &Settings,
    net_config: &NetworkConfig,
    config: &mut TrainConfig,
    train: &Dataset,
) -> Result<Option<String>> {
    if !s.lr_auto {
        return Ok(None);
    }
    if crate::cluster::size() > 1 {
        bail!("--lr auto is not available under mpirun with more than one rank; find the rate with `backprop explain lr` in one process and pass --lr");
    }
    let (lo, hi, steps) = crate::compute::lr::AUTO_RANGE;
    let r = crate::compute::lr::range_test(net_config, config, train, lo, hi, steps)?;
    let note = crate::report::explain::lr::auto_note(lo, hi, &r);
    if !s.quiet {
        eprintln!("{note}");
    }
    config.lr = r.suggestion;
    Ok(Some(note))
}

/// A trained network with what training recorded.
#[derive(Clone)]
pub(super) struct Fitted {
    pub(super) net: Network,
    pub(super) history: History,
    pub(super) seconds: f64,
    pub(super) partial: Option<PartialEpoch>,
    /// The note of [`Guard::restore`] when training diverged.
    pub(super) diverged: Option<String>,
}

/// Trains one network; with `path`, also records its initial weights and per-epoch
/// snapshots there (for the report and the landscape).
/// With `run`, resumes from its checkpoint or writes the first, checkpoints during
/// training and stops on Ctrl-C.
/// The same network without hidden layers: plain linear (or logistic) regression. A few
/// weights a feature need no decay, and decay would make the comparison unfair to the
/// linear model, so it trains without.
fn fit_baseline(
    net: &NetworkConfig,
    config: &TrainConfig,
    p: &Prepared,
    quiet: bool,
) -> Result<Fitted> {
    let cfg = NetworkConfig {
        hidden: Vec::new(),
        stack: Vec::new(),
        ..net.clone()
    };
    let base = TrainConfig {
        optimizer: config.optimizer.with_weight_decay(0.0),
        ..config.clone()
    };
    fit(&cfg, &base, p, "baseline", quiet, None, None)
}

fn fit(
    cfg: &NetworkConfig,
    train: &TrainConfig,
    p: &Prepared,
    label: &str,
    quiet: bool,
    path: Option<&mut Option<Recorder>>,
    mut run: Option<&mut Run>,
) -> Result<Fitted> {
    let mut rng = backprop::seed::rng(train.seed, backprop::seed::Stream::Init);
    let mut net = cfg.init(&mut rng)?;
    let recorder = path.map(|slot| slot.insert(Recorder::start(&net, train.epochs)));
    let mut progress = Progress::new(label, train.epochs, quiet);
    let trainer = Trainer::new(train.clone())?;
    let mut state = TrainState::new(trainer.config(), &net);
    if let Some(r) = run.as_deref_mut() {
        r.restore(&mut net, &mut state, train)?;
    }
    let started = Instant::now();
    let mut pause = crate::pause::Pause;
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut progress];
    callbacks.extend(recorder.map(|r| r as &mut dyn Callback));
    // With --patience the trainer restores the best epoch itself.
    let valid_rows = crate::cluster::totals([p.valid.as_ref().map_or(0, Dataset::len), 0, 0])[0];
    let mut guard = (train.patience == 0 && valid_rows >= MIN_VALID_ROWS).then(Guard::default);
    callbacks.extend(guard.as_mut().map(|g| g as &mut dyn Callback));
    let has_run = run.is_some();
    callbacks.extend(run.as_deref_mut().map(|r| r as &mut dyn Callback));
    // After the checkpoint callback, so the paused-at epoch is on disk.
    if has_run {
        callbacks.push(&mut pause);
    }
    let result = trainer.resume(
        &mut net,
        &p.train,
        p.valid.as_ref(),
        &mut state,
        &mut callbacks,
        &mut *crate::cluster::reducer(p.train.len()),
    );
    progress.finish();
    if let (Err(_), Some(r)) = (&result, &run) {
        r.note_failure(quiet);
    }
    result?;
    if let Some(r) = run {
        r.stopped(&net, &state)?;
    }
    // After the checkpoint, which keeps where training stood for `--resume`.
    let diverged = guard.and_then(|g| g.restore(&mut net, &mut state.history));
    Ok(Fitted {
        net,
        history: state.history,
        seconds: started.elapsed().as_secs_f64(),
        partial: state.partial,
        diverged,
    })
}

/// A network's predictions (in the target's units) for some rows, with their encoded
/// targets.
struct Scored {
    pred: Matrix,
    y: Matrix,
}

impl Scored {
    /// Predictions of `net` for this process's rows `d`; under mpirun, rank 0 gets every
    /// rank's (a collective), the other ranks empty matrices.
    fn gather(net: &Network, target: &Target, d: &Dataset) -> Scored {
        let pred = predict_units(net, target, &d.x);
        Scored {
            pred: crate::cluster::gather_matrix(&pred),
            y: crate::cluster::gather_matrix(&d.y),
        }
    }

    /// The metrics; null without rows (`--test-fraction 0`, or a Python `fit`), which
    /// have none, rather than zeros.
    fn metrics(&self, target: &Target) -> serde_json::Value {
        if self.y.rows() == 0 {
            return serde_json::Value::Null;
        }
        metrics_of(target, &self.pred, &self.y)
    }
}

/// Every rank predicts its own validation and test rows; under mpirun rank 0 gathers
/// the predictions and targets (a few numbers per row, not the features) and alone
/// computes the metrics and writes.
pub(super) struct Scores {
    test: Scored,
    valid: Option<Scored>,
    base: Option<(Scored, Option<Scored>)>,
}

impl Scores {
    pub(super) fn gather(p: &Prepared, network: &Fitted, baseline: Option<&Fitted>) -> Scores {
        let target = &p.prep.target;
        let score = |net: &Network, d: &Dataset| Scored::gather(net, target, d);
        Scores {
            test: score(&network.net, &p.test),
            valid: p.valid.as_ref().map(|v| score(&network.net, v)),
            base: baseline.map(|b| {
                (
                    score(&b.net, &p.test),
                    p.valid.as_ref().map(|v| score(&b.net, v)),
                )
            }),
        }
    }

    fn base_test(&self, target: &Target) -> Option<serde_json::Value> {
        self.base.as_ref().map(|(t, _)| t.metrics(target))
    }

    /// A note when the network with hidden layers validated worse than the one without
    /// (RMSE for regression, log-loss for classification): then its hidden layers only
    /// fitted noise, and the user should know before using the model.
    fn linear_wins(&self, target: &Target, net: &NetworkConfig) -> Option<String> {
        if net.hidden.is_empty() {
            return None;
        }
        let valid = self.valid.as_ref()?.metrics(target);
        let base_valid = self.base.as_ref()?.1.as_ref()?.metrics(target);
        let key = if valid.get("rmse").is_some() {
            "rmse"
        } else {
            "log_loss"
        };
        let (n, b) = (valid.get(key)?.as_f64()?, base_valid.get(key)?.as_f64()?);
        (b < n).then(|| {
            format!(
                "note: the network without hidden layers validated better ({} {b:.4} against {n:.4} for {}): with these rows its hidden layers fit noise; try --hidden \"\" (linear) or a smaller --hidden",
                key.replace('_', "-"),
                shape(net)
            )
        })
    }
}

/// A finished training run, ready to be written.
pub(super) struct Trained<'a> {
    pub(super) s: &'a Settings,
    pub(super) p: &'a Prepared,
    pub(super) net_config: &'a NetworkConfig,
    pub(super) config: &'a TrainConfig,
    pub(super) network: Fitted,
    pub(super) baseline: Option<Fitted>,
    /// Training, validation and test rows over all ranks.
    pub(super) rows: [usize; 3],
    pub(super) lr_note: Option<String>,
}

impl Trained<'_> {
    /// The metrics written to `metrics.json`.
    fn metrics(&self, scores: &Scores, test: &serde_json::Value) -> serde_json::Value {
        let target = &self.p.prep.target;
        let classify = matches!(target, Target::Classification { .. });
        let (h, partial) = (&self.network.history, &self.network.partial);
        let [train_rows, valid_rows, test_rows] = self.rows;
        let base_valid = scores
            .base
            .as_ref()
            .and_then(|(_, v)| v.as_ref().map(|v| v.metrics(target)));
        json!({
            "task": if classify { "classify" } else { "regress" },
            "target": target.name(),
            "test": test,
            "valid": scores.valid.as_ref().map(|v| v.metrics(target)),
            "baseline": { "hidden": [], "test": scores.base_test(target), "valid": base_valid, "train_seconds": self.baseline.as_ref().map(|b| b.seconds) },
            "epochs_run": h.epochs.len(),
            // Ctrl-C within an epoch: the weights are those after this many of its
            // steps; the epoch is in no count or record above.
            "interrupted_epoch": partial.as_ref().map(|p| json!({
                "epoch": h.epochs.len() + 1,
                "steps_done": p.steps_done,
                "steps": p.steps,
            })),
            "best_epoch": h.best_epoch,
            // The validation loss ended over twice its best: the model is the best epoch's.
            "diverged": self.network.diverged.is_some(),
            "train_seconds": self.network.seconds,
            "rows": { "train": train_rows, "valid": valid_rows, "test": test_rows },
            "architecture": shape(self.net_config),
            "parameters": self.network.net.num_params(),
            "seed": self.config.seed,
            "threads": self.s.threads(),
        })
    }

    /// Writes the model, metrics, history, loss curve, trajectory and report; returns
    /// the test metrics.
    pub(super) fn write(
        self,
        out_dir: &Path,
        scores: &Scores,
        path: Option<&Recorder>,
    ) -> Result<serde_json::Value> {
        let target = &self.p.prep.target;
        let test = scores.test.metrics(target);
        let metrics = self.metrics(scores, &test);
        let Trained {
            s,
            p,
            net_config,
            config,
            network,
            baseline,
            rows,
            lr_note,
        } = self;
        let model = Model::new(network.net, p.prep.clone(), config.clone());
        model.save(out_dir)?;
        let metrics_text = serde_json::to_string_pretty(&metrics)?;
        atomic_write(&out_dir.join("metrics.json"), metrics_text.as_bytes())?;
        let history_text = crate::report::history_csv(&network.history);
        atomic_write(&out_dir.join("history.csv"), history_text.as_bytes())?;
        atomic_write(&out_dir.join("settings.toml"), s.given_toml()?.as_bytes())?;
        crate::report::plot::loss_curve(
            &network.history,
            config.loss.name(),
            &out_dir.join("loss_curve.svg"),
        )?;
        if let Some(rec) = path {
            let split = SplitInfo {
                valid_fraction: s.valid_fraction,
                test_fraction: s.test_fraction,
            };
            trajectory::save(out_dir, rec, model.network.params(), &split)?;
            let report = crate::report::RunReport {
                name: &p.name,
                net_config,
                train_config: config,
                history: &network.history,
                initial: &rec.initial,
                network: &model.network,
                target: &p.prep.target,
                test_pred: &scores.test.pred,
                test_y: &scores.test.y,
                test_x: &p.test.x,
                image: p
                    .image
                    .or_else(|| crate::report::images::pixel_grid(&p.prep.input_names())),
                train_rows: rows[0],
                metrics: &metrics,
                baseline: baseline.as_ref().map(|b| &b.history),
                partial: network.partial.as_ref(),
                dollars: p.dollars,
                lr_note,
            };
            crate::report::write(out_dir, &report)?;
        }
        if let Some(path) = &s.metrics_json {
            atomic_write(path, metrics_text.as_bytes())?;
        }
        Ok(test)
    }
}

/// The run folder: `--out` as given, or `runs/<name>` numbered so that no earlier run
/// is overwritten.
fn run_dir(out: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(o) = out {
        if o.is_file() {
            bail!(
                "--out {}: is a file; give a folder for the run",
                o.display()
            );
        }
        return Ok(o.to_path_buf());
    }
    let base = Path::new("runs").join(name);
    if !base.exists() {
        return Ok(base);
    }
    (2..10_000)
        .map(|i| Path::new("runs").join(format!("{name}-{i}")))
        .find(|p| !p.exists())
        .context("runs/ holds too many runs of this name; pass --out DIR")
}
