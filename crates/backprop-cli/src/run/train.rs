//! `backprop train`'s run: settings -> prepared data -> the library's trainer -> a run
//! folder (model, metrics, history, report), with checkpoints along the way.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use backprop::optim::Schedule;
use backprop::{Callback, Dataset, NetworkConfig, TrainConfig, TrainState, Trainer};

use super::checkpoint::Run;
use super::folder::{majority_class, Fitted, Scores, Trained};
use super::prepare::{plan, prepare, Prepared};
use super::select::{self, baseline_config, linear, valid_loss, Choice, Compared};
use crate::compute::trajectory::Recorder;
use crate::progress::Progress;
use crate::run::guard::{Guard, MIN_VALID_ROWS};
use crate::settings::Settings;
use crate::summary::{epochs, shape};

/// Trains with settings `s`, checkpointing through `run`, and writes the run folder.
pub fn train(s: &Settings, run: &mut Run) -> Result<()> {
    let started = Instant::now();
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
    let standard = select::standard_candidate(s, &p, rows);
    announce(s, &net_config, &config, rows, standard.is_some());
    if crate::cluster::size() == 1 {
        // Under mpirun, Ctrl-C goes to mpirun, which ends every rank; resume from the
        // last checkpoint.
        crate::interrupt::install();
    }
    let plan = Plan {
        s,
        net_config: &net_config,
        config: &config,
    };
    let Fits {
        p,
        network,
        path,
        baseline,
        base_path,
        choice,
    } = plan.fit_all(p, standard, run)?;
    let scores = Scores::gather(&p, &network, baseline.as_ref());
    let majority = majority_class(&p);
    if !crate::cluster::is_root() {
        return Ok(());
    }
    let path = if choice.keeps_linear() {
        base_path
    } else {
        path
    };
    let trained = Trained {
        s,
        p: &p,
        net_config: &net_config,
        config: &config,
        network,
        baseline,
        rows,
        lr_note,
        choice: choice.clone(),
        majority,
    };
    let seconds = trained.network.seconds;
    let diverged = trained.network.diverged.clone();
    let history_len = trained.network.history.epochs.len();
    let test = trained.write(&out_dir, &scores, path.as_ref())?;
    let kept = Kept {
        choice: &choice,
        majority,
        diverged,
    };
    print_summary(&p, &scores, &test, &kept, &net_config, &config);
    let all = (s.baseline || choice.scale.is_some()).then(|| started.elapsed().as_secs_f64());
    println!(
        "\n{} in {seconds:.1}s{}; run folder: {}",
        epochs(history_len),
        all.map_or(String::new(), |t| format!(
            " ({t:.1}s with every model compared)"
        )),
        out_dir.display()
    );
    match run.interrupted() {
        Some(stopped) => Err(stopped.into()),
        None => Ok(()),
    }
}

/// What a run kept and why, for its summary.
struct Kept<'a> {
    choice: &'a Choice,
    majority: Option<usize>,
    /// The note of a diverged run that kept its best epoch.
    diverged: Option<String>,
}

/// The test table of the network and the baseline, and the notes on what was kept.
fn print_summary(
    p: &Prepared,
    scores: &Scores,
    test: &serde_json::Value,
    kept: &Kept,
    net_config: &NetworkConfig,
    config: &TrainConfig,
) {
    let Kept {
        choice,
        majority,
        diverged,
    } = kept;
    println!();
    print!(
        "{}",
        crate::report::train_summary(
            test,
            scores.base_test(&p.prep.target).as_ref(),
            &p.prep.target,
            p.dollars,
            &shape(net_config)
        )
    );
    if let Some((class, acc)) = scores.majority(&p.prep.target, *majority) {
        println!("always the majority class ({class}): accuracy {acc:.4}");
    }
    let linear_note = if choice.keep.is_some() {
        None
    } else {
        scores.linear_wins(&p.prep.target, net_config)
    };
    for note in diverged.iter().chain(&linear_note) {
        println!("\n{note}");
    }
    for line in choice.lines(config.loss, &shape(net_config)) {
        println!("\n{line}");
    }
}

/// The models a run trains, with the recordings of those that may be kept.
struct Fits {
    /// The data of the kept scaling.
    p: Prepared,
    network: Fitted,
    path: Option<Recorder>,
    baseline: Option<Fitted>,
    base_path: Option<Recorder>,
    choice: Choice,
}

/// What every model of a run trains with.
struct Plan<'a> {
    s: &'a Settings,
    net_config: &'a NetworkConfig,
    config: &'a TrainConfig,
}

impl Plan<'_> {
    /// Trains the network on `p` (checkpointed through `run`), then, unless Ctrl-C
    /// stopped it, the same network with the `standard` settings of `--scale select`
    /// (without checkpoints: `--resume` trains it again, to the same bits) and the
    /// baseline on the data of the scaling that validated better; compares them as
    /// `--keep best` asks.
    fn fit_all(&self, p: Prepared, standard: Option<Settings>, run: &mut Run) -> Result<Fits> {
        let (s, net_config, config) = (self.s, self.net_config, self.config);
        let mut path = None;
        let network = fit(
            net_config,
            config,
            &p,
            "network ",
            s.quiet,
            Some(&mut path),
            Some(run),
        )?;
        let mut choice = Choice::default();
        let (p, network, path) = match standard.filter(|_| !crate::interrupt::requested()) {
            Some(s2) => {
                let p2 = prepare(&s2)?;
                let mut path2 = None;
                let other = fit(
                    net_config,
                    config,
                    &p2,
                    "standard",
                    s.quiet,
                    Some(&mut path2),
                    None,
                )?;
                let c = Compared::of(
                    valid_loss(&network.net, p.valid.as_ref(), config.loss),
                    valid_loss(&other.net, p2.valid.as_ref(), config.loss),
                );
                choice.scale = c;
                if c.is_some_and(|c| c.second_wins()) {
                    (p2, other, path2)
                } else {
                    (p, network, path)
                }
            }
            None => (p, network, path),
        };
        let mut base_path = None;
        let baseline = if s.baseline && !crate::interrupt::requested() {
            Some(fit_baseline(
                net_config,
                config,
                &p,
                s.quiet,
                Some(&mut base_path),
            )?)
        } else {
            None
        };
        if s.keep_best && !net_config.hidden.is_empty() && net_config.stack.is_empty() {
            if let Some(b) = &baseline {
                choice.keep = Compared::of(
                    choice
                        .kept_loss()
                        .or_else(|| valid_loss(&network.net, p.valid.as_ref(), config.loss)),
                    valid_loss(&b.net, p.valid.as_ref(), config.loss),
                );
            }
        }
        Ok(Fits {
            p,
            network,
            path,
            baseline,
            base_path,
            choice,
        })
    }
}

/// The line that says what is about to be trained.
fn announce(
    s: &Settings,
    net_config: &NetworkConfig,
    config: &TrainConfig,
    rows: [usize; 3],
    select: bool,
) {
    if s.quiet {
        return;
    }
    eprintln!(
        "training {} network ({} parameters){} on {} rows, validating on {}, testing on {}: {} {} lr {} batch {} for {}, {} thread(s)",
        shape(net_config),
        net_config.num_params(),
        if select {
            " with quantile, then with standard scaling of the numbers (--scale select keeps the one that validates better)"
        } else {
            ""
        },
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

/// The same network without hidden layers: plain linear (or logistic) regression. A few
/// weights a feature need no decay, and decay would make the comparison unfair to the
/// linear model, so it trains without.
fn fit_baseline(
    net: &NetworkConfig,
    config: &TrainConfig,
    p: &Prepared,
    quiet: bool,
    path: Option<&mut Option<Recorder>>,
) -> Result<Fitted> {
    fit(
        &linear(net),
        &baseline_config(config),
        p,
        "baseline",
        quiet,
        path,
        None,
    )
}

/// Trains one network; with `path`, also records its initial weights and per-epoch
/// snapshots there (for the report and the landscape).
/// With `run`, resumes from its checkpoint or writes the first, checkpoints during
/// training and stops on Ctrl-C.
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
