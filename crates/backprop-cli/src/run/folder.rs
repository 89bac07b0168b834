//! Writing a run folder: every rank scores the kept model (and the baseline) on its
//! rows, rank 0 gathers the predictions and writes the model, metrics, history, loss
//! curve, trajectory and report.

use std::path::Path;

use anyhow::Result;
use backprop::data::prep::Target;
use backprop::model::{atomic_write, Model};
use backprop::{Dataset, History, Matrix, Network, NetworkConfig, PartialEpoch, TrainConfig};
use serde_json::json;

use super::prepare::Prepared;
use super::select::{linear, Choice};
use crate::compute::trajectory::{self, Recorder, SplitInfo};
use crate::settings::Settings;
use crate::summary::{metrics_of, predict_units, shape};

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

    /// The majority class's name and its test accuracy (the share of test rows in it).
    pub(super) fn majority(&self, target: &Target, class: Option<usize>) -> Option<(String, f64)> {
        let (Target::Classification { classes, .. }, Some(k)) = (target, class) else {
            return None;
        };
        let y = &self.test.y;
        if y.rows() == 0 {
            return None;
        }
        let hits = backprop::metrics::argmax_rows(y)
            .iter()
            .filter(|&&c| c == k)
            .count();
        Some((classes.get(k)?.clone(), hits as f64 / y.rows() as f64))
    }

    pub(super) fn base_test(&self, target: &Target) -> Option<serde_json::Value> {
        self.base.as_ref().map(|(t, _)| t.metrics(target))
    }

    /// A note when the network with hidden layers validated worse than the one without
    /// (RMSE for regression, log-loss for classification): then its hidden layers only
    /// fitted noise, and the user should know before using the model.
    pub(super) fn linear_wins(&self, target: &Target, net: &NetworkConfig) -> Option<String> {
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

/// For classification, the class with the most training rows over every process (the
/// first of equals): the model that always predicts it is the floor a classifier must
/// beat (a collective under mpirun).
pub(super) fn majority_class(p: &Prepared) -> Option<usize> {
    let Target::Classification { classes, .. } = &p.prep.target else {
        return None;
    };
    if p.train.y.cols() != classes.len() {
        return None;
    }
    let mut counts = vec![0.0f64; classes.len()];
    for c in backprop::metrics::argmax_rows(&p.train.y) {
        counts[c] += 1.0;
    }
    crate::cluster::collective().sum_f64(&mut counts);
    let most = counts.iter().cloned().fold(0.0, f64::max);
    counts.iter().position(|&n| n == most)
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
    /// What `--scale select` and `--keep best` compared.
    pub(super) choice: Choice,
    /// The majority class of the training rows, for classification.
    pub(super) majority: Option<usize>,
}

/// The model a run folder keeps: the network, or (`--keep best`) the one without hidden
/// layers; with its configuration, what training recorded and its scores.
struct Kept<'a> {
    config: NetworkConfig,
    fitted: &'a Fitted,
    test: &'a Scored,
    valid: Option<&'a Scored>,
    /// The other model to compare with in the report (the baseline when the network is
    /// kept).
    other: Option<&'a Fitted>,
}

impl Trained<'_> {
    /// The kept model, with its scores among `scores`.
    fn kept<'a>(&'a self, scores: &'a Scores) -> Kept<'a> {
        match (&self.baseline, &scores.base) {
            (Some(b), Some((test, valid))) if self.choice.keeps_linear() => Kept {
                config: linear(self.net_config),
                fitted: b,
                test,
                valid: valid.as_ref(),
                other: None,
            },
            _ => Kept {
                config: self.net_config.clone(),
                fitted: &self.network,
                test: &scores.test,
                valid: scores.valid.as_ref(),
                other: self.baseline.as_ref(),
            },
        }
    }

    /// The metrics written to `metrics.json`: `test` and `valid` are the kept model's.
    fn metrics(&self, scores: &Scores, kept: &Kept) -> serde_json::Value {
        let target = &self.p.prep.target;
        let classify = matches!(target, Target::Classification { .. });
        let (h, partial) = (&kept.fitted.history, &kept.fitted.partial);
        let [train_rows, valid_rows, test_rows] = self.rows;
        let base_valid = scores
            .base
            .as_ref()
            .and_then(|(_, v)| v.as_ref().map(|v| v.metrics(target)));
        json!({
            "task": if classify { "classify" } else { "regress" },
            "target": target.name(),
            "test": kept.test.metrics(target),
            "valid": kept.valid.map(|v| v.metrics(target)),
            "baseline": { "hidden": [], "test": scores.base_test(target), "valid": base_valid, "train_seconds": self.baseline.as_ref().map(|b| b.seconds) },
            // The network with hidden layers, whichever model the folder keeps.
            "network": {
                "architecture": shape(self.net_config),
                "test": scores.test.metrics(target),
                "valid": scores.valid.as_ref().map(|v| v.metrics(target)),
            },
            "choice": self.choice.json(),
            "majority": scores.majority(target, self.majority).map(|(class, acc)| json!({
                "class": class,
                "test_accuracy": acc,
            })),
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
            "diverged": kept.fitted.diverged.is_some(),
            "train_seconds": self.network.seconds,
            "rows": { "train": train_rows, "valid": valid_rows, "test": test_rows },
            "architecture": shape(&kept.config),
            "parameters": kept.fitted.net.num_params(),
            "seed": self.config.seed,
            "threads": self.s.threads(),
        })
    }

    /// Writes the kept model, its metrics, history, loss curve, trajectory (`path`, the
    /// kept model's recording) and report; returns the network's test metrics.
    pub(super) fn write(
        self,
        out_dir: &Path,
        scores: &Scores,
        path: Option<&Recorder>,
    ) -> Result<serde_json::Value> {
        let target = &self.p.prep.target;
        let test = scores.test.metrics(target);
        let kept = self.kept(scores);
        let metrics = self.metrics(scores, &kept);
        let s = self.s;
        let p = self.p;
        let config = self.config;
        let model = Model::new(kept.fitted.net.clone(), p.prep.clone(), config.clone());
        model.save(out_dir)?;
        let metrics_text = serde_json::to_string_pretty(&metrics)?;
        atomic_write(&out_dir.join("metrics.json"), metrics_text.as_bytes())?;
        let history = &kept.fitted.history;
        let history_text = crate::report::history_csv(history);
        atomic_write(&out_dir.join("history.csv"), history_text.as_bytes())?;
        atomic_write(&out_dir.join("settings.toml"), s.given_toml()?.as_bytes())?;
        crate::report::plot::loss_curve(
            history,
            config.loss.name(),
            &out_dir.join("loss_curve.svg"),
        )?;
        if let Some(rec) = path {
            let split = SplitInfo {
                valid_fraction: s.valid_fraction,
                test_fraction: s.test_fraction,
            };
            trajectory::save(out_dir, rec, model.network.params(), &split)?;
            let choice = self.choice.lines(config.loss, &shape(self.net_config));
            let report = crate::report::RunReport {
                name: &p.name,
                net_config: &kept.config,
                train_config: config,
                history,
                initial: &rec.initial,
                network: &model.network,
                target: &p.prep.target,
                test_pred: &kept.test.pred,
                test_y: &kept.test.y,
                test_x: &p.test.x,
                image: p
                    .image
                    .or_else(|| crate::report::images::pixel_grid(&p.prep.input_names())),
                train_rows: self.rows[0],
                metrics: &metrics,
                baseline: kept.other.map(|b| &b.history),
                partial: kept.fitted.partial.as_ref(),
                dollars: p.dollars,
                lr_note: self.lr_note.clone(),
                choice: &choice,
            };
            crate::report::write(out_dir, &report)?;
        }
        if let Some(path) = &s.metrics_json {
            atomic_write(path, metrics_text.as_bytes())?;
        }
        Ok(test)
    }
}
