//! Training on a table in memory, for the Python package (`python/`): the same
//! preparation, plan, trainer, choices on the validation rows and run folder as
//! `backprop train`, without checkpoints or printed summary. The caller's callback sees every step and epoch (for
//! progress and Ctrl-C); a stop it asks for keeps the best weights so far.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use backprop::data::csv::Table;
use backprop::model::Model;
use backprop::train::LocalReducer;
use backprop::{
    Callback, Dataset, History, Matrix, Network, NetworkConfig, TrainConfig, TrainState, Trainer,
};

use super::folder::{majority_class, Fitted, Scores, Trained};
use super::guard::{Guard, MIN_VALID_ROWS};
use super::prepare::{plan, prepare_table, Prepared};
use super::select::{self, baseline_config, linear, valid_loss, Choice, Compared};
use super::train::choose_lr;
use crate::compute::trajectory::Recorder;
use crate::settings::{Scale, Settings};
use crate::summary::predict_units;

/// A finished in-memory training run: the model, and what the run folder needs.
pub struct FitRun {
    settings: Settings,
    prepared: Prepared,
    net_config: NetworkConfig,
    config: TrainConfig,
    network: Fitted,
    /// The network without hidden layers, trained for `keep='best'`.
    baseline: Option<Fitted>,
    /// What `scale='select'` and `keep='best'` compared.
    choice: Choice,
    /// The kept model's recording.
    recorder: Recorder,
    scores: Scores,
    rows: [usize; 3],
    lr_note: Option<String>,
    /// The callback stopped training before its last epoch.
    pub interrupted: bool,
}

/// Trains with settings `s` on `table`, predicting its column `target`; `name` names
/// the data in the run folder. As `backprop train`, `scale='select'` trains a second
/// network on standard-scaled numbers and `keep='best'` one without hidden layers, and
/// the one that validates best is kept (see `run::select`).
pub fn fit_table(
    s: &Settings,
    table: Table,
    target: &str,
    name: &str,
    hook: &mut dyn Callback,
) -> Result<FitRun> {
    let second = (s.scale == Scale::Select).then(|| table.clone());
    let p = prepare_table(s, table, target, name)?;
    let rows = [
        p.train.len(),
        p.valid.as_ref().map_or(0, Dataset::len),
        p.test.len(),
    ];
    let (net_config, mut config) = plan(s, &p, rows[0])?;
    let lr_note = choose_lr(s, &net_config, &mut config, &p.train)?;
    let (mut network, mut recorder, mut interrupted) = fit_one(&net_config, &config, &p, hook)?;
    let mut p = p;
    let mut choice = Choice::default();
    let standard = second.zip(select::standard_candidate(s, &p, rows));
    if let (Some((table, s2)), false) = (standard, interrupted) {
        let p2 = prepare_table(&s2, table, target, name)?;
        let (other, rec, stopped) = fit_one(&net_config, &config, &p2, hook)?;
        interrupted = stopped;
        let c = Compared::of(
            valid_loss(&network.net, p.valid.as_ref(), config.loss),
            valid_loss(&other.net, p2.valid.as_ref(), config.loss),
        );
        choice.scale = c.filter(|_| !stopped);
        if choice.scale.is_some_and(|c| c.second_wins()) {
            (p, network, recorder) = (p2, other, rec);
        }
    }
    let mut baseline = None;
    if s.keep_best && !interrupted && !net_config.hidden.is_empty() && net_config.stack.is_empty() {
        let (b, rec, stopped) = fit_one(&linear(&net_config), &baseline_config(&config), &p, hook)?;
        interrupted = stopped;
        choice.keep = Compared::of(
            choice
                .kept_loss()
                .or_else(|| valid_loss(&network.net, p.valid.as_ref(), config.loss)),
            valid_loss(&b.net, p.valid.as_ref(), config.loss),
        )
        .filter(|_| !stopped);
        if choice.keeps_linear() {
            recorder = rec;
        }
        baseline = Some(b);
    }
    let scores = Scores::gather(&p, &network, baseline.as_ref());
    Ok(FitRun {
        settings: s.clone(),
        prepared: p,
        net_config,
        config,
        network,
        baseline,
        choice,
        recorder,
        scores,
        rows,
        lr_note,
        interrupted,
    })
}

/// Trains one network on `p`, the hook seeing every step; returns it (with its best
/// weights so far if the hook stopped it), its recording, and whether it was stopped.
fn fit_one(
    net_config: &NetworkConfig,
    config: &TrainConfig,
    p: &Prepared,
    hook: &mut dyn Callback,
) -> Result<(Fitted, Recorder, bool)> {
    let mut rng = backprop::seed::rng(config.seed, backprop::seed::Stream::Init);
    let mut net = net_config.init(&mut rng)?;
    let mut recorder = Recorder::start(&net, config.epochs);
    let trainer = Trainer::new(config.clone())?;
    let mut state = TrainState::new(trainer.config(), &net);
    let started = Instant::now();
    // As `backprop train`: a run that diverges keeps its best epoch.
    let valid_rows = p.valid.as_ref().map_or(0, |v| v.len());
    let mut guard = (config.patience == 0 && valid_rows >= MIN_VALID_ROWS).then(Guard::default);
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut recorder, hook];
    callbacks.extend(guard.as_mut().map(|g| g as &mut dyn Callback));
    trainer.resume(
        &mut net,
        &p.train,
        p.valid.as_ref(),
        &mut state,
        &mut callbacks,
        &mut LocalReducer,
    )?;
    let interrupted = state.epoch < config.epochs && !state.history.stopped_early;
    if interrupted {
        // The trainer leaves a stopped run's weights as they are (for resuming); a
        // model handed back keeps the best so far, as a finished run does.
        if let Some((_, best)) = &state.best {
            net.params_mut().copy_from_slice(best);
            state.partial = None;
        }
    }
    let diverged = match (interrupted, guard) {
        (false, Some(g)) => g.restore(&mut net, &mut state.history),
        _ => None,
    };
    let fitted = Fitted {
        net,
        history: state.history,
        seconds: started.elapsed().as_secs_f64(),
        partial: state.partial,
        diverged,
    };
    Ok((fitted, recorder, interrupted))
}

impl FitRun {
    /// The kept model: the network, or the one without hidden layers (`keep='best'`).
    fn kept(&self) -> &Fitted {
        match &self.baseline {
            Some(b) if self.choice.keeps_linear() => b,
            _ => &self.network,
        }
    }

    /// The trained model, as `backprop train` saves it.
    pub fn model(&self) -> Model {
        Model::new(
            self.kept().net.clone(),
            self.prepared.prep.clone(),
            self.config.clone(),
        )
    }

    /// What `scale='select'` and `keep='best'` compared, one sentence each.
    pub fn choice_lines(&self) -> Vec<String> {
        self.choice
            .lines(self.config.loss, &crate::summary::shape(&self.net_config))
    }

    /// What training recorded.
    pub fn history(&self) -> &History {
        &self.kept().history
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.kept().net
    }

    /// Writes the run folder `backprop train` writes (model, metrics, history, loss
    /// curve, trajectory, report) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let trained = Trained {
            s: &self.settings,
            p: &self.prepared,
            net_config: &self.net_config,
            config: &self.config,
            network: self.network.clone(),
            baseline: self.baseline.clone(),
            rows: self.rows,
            lr_note: self.lr_note.clone(),
            choice: self.choice.clone(),
            majority: majority_class(&self.prepared),
        };
        trained.write(dir, &self.scores, Some(&self.recorder))?;
        Ok(())
    }
}

/// A model's outputs for every row of `table` (found by the names of the columns it
/// was trained on): the target in its units, or one probability a class, exactly as
/// `backprop predict` computes them.
pub fn predict_table(model: &Model, table: &Table) -> Result<Matrix> {
    let prep = &model.meta.preprocessor;
    let cols = prep.locate_features(table)?;
    let all: Vec<usize> = (0..table.rows()).collect();
    let (x, _) = prep.transform_features(table, &cols, &all)?;
    Ok(predict_units(&model.network, &prep.target, &x))
}

/// The learning-rate range test of `backprop explain lr` on the training rows `s`
/// takes from `table` (as [`fit_table`] would train on them).
pub fn lr_range_table(
    s: &Settings,
    table: Table,
    target: &str,
    range: (f32, f32, usize),
) -> Result<backprop::explain::LrRange> {
    let p = prepare_table(s, table, target, "data")?;
    let (net_config, config) = plan(s, &p, p.train.len())?;
    let (lo, hi, steps) = range;
    crate::compute::lr::range_test(&net_config, &config, &p.train, lo, hi, steps)
}
