//! What the defaults compare on the validation rows before a run keeps one model
//! (issue 18: no single setting wins on every table, so the defaults try the two that
//! disagree most and let held-out rows decide):
//!
//! * `--scale select` trains the network once with `quantile` and once with `standard`
//!   scaling of the numeric columns. Quantiles tame the extreme outliers of ratio
//!   features (California: test RMSE 0.49 against 0.52); standard scaling keeps a linear
//!   effect linear, which the quantile transform bends (a 400-row credit table: 31
//!   against 124).
//! * `--keep best` keeps the network without hidden layers (linear or logistic
//!   regression, trained beside the network anyway) when it validates better: on a few
//!   hundred noisy rows the hidden layers fit noise.
//!
//! Both compare the mean validation loss (the cost function, in the target's
//! standardised units for regression), summed over every process under mpirun, so every
//! rank makes the same choice. Without validation rows nothing is compared.

use backprop::data::prep::Feature;
use backprop::train::evaluate_loss;
use backprop::{Dataset, Loss, Network, NetworkConfig, Trace, TrainConfig};
use serde_json::json;

use super::prepare::Prepared;
use crate::settings::{Scale, Settings};

/// Above this many training rows `--scale select` trains once, with quantiles: a second
/// network doubles the time, and with many rows the quantile transform's robustness is
/// what counts (California, 14,448 training rows: quantiles validated better on every
/// seed, and the comparison doubled `train`'s time, 6.5 -> 12.5 s).
pub const SELECT_MAX_ROWS: usize = 10_000;

/// The settings of `--scale select`'s second candidate (standard scaling, preparing the
/// data without repeating its notes), when there is one: a table (not images) with validation rows, at most [`SELECT_MAX_ROWS`] training
/// rows and a numeric column that is not constant.
pub fn standard_candidate(s: &Settings, p: &Prepared, rows: [usize; 3]) -> Option<Settings> {
    let scaled = p.prep.features.iter().any(|f| {
        matches!(
            f,
            Feature::Numeric {
                constant: false,
                ..
            }
        )
    });
    (s.scale == Scale::Select
        && p.image.is_none()
        && rows[1] > 0
        && rows[0] <= SELECT_MAX_ROWS
        && scaled)
        .then(|| Settings {
            scale: Scale::Standard,
            // The first preparation said what there is to say about the data.
            quiet: true,
            ..s.clone()
        })
}

/// The mean loss of `net` over the validation rows of every process; `None` without
/// validation rows.
pub fn valid_loss(net: &Network, valid: Option<&Dataset>, loss: Loss) -> Option<f64> {
    let (sum, n) = match valid.filter(|v| !v.is_empty()) {
        Some(v) => {
            let n = loss.denominator(v.len() * net.outputs(), net.outputs());
            let mean = evaluate_loss(net, v, loss, &mut Trace::default());
            (mean * n, n)
        }
        None => (0.0, 0.0),
    };
    let mut s = [sum, n];
    crate::cluster::collective().sum_f64(&mut s);
    (s[1] > 0.0).then(|| s[0] / s[1])
}

/// Two models' validation losses; the second is kept when its loss is lower.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compared {
    pub first: f64,
    pub second: f64,
}

impl Compared {
    /// The losses of two models, when both have validation rows.
    pub fn of(first: Option<f64>, second: Option<f64>) -> Option<Compared> {
        Some(Compared {
            first: first?,
            second: second?,
        })
    }

    /// Whether the second model validated better (a tie keeps the first).
    pub fn second_wins(&self) -> bool {
        self.second < self.first
    }
}

/// What a run compared before keeping its model.
#[derive(Clone, Debug, Default)]
pub struct Choice {
    /// `--scale select`: quantile (first) against standard (second) scaling.
    pub scale: Option<Compared>,
    /// `--keep best`: the network (first) against the one without hidden layers.
    pub keep: Option<Compared>,
}

impl Choice {
    /// Whether the run keeps the network without hidden layers.
    pub fn keeps_linear(&self) -> bool {
        self.keep.is_some_and(|c| c.second_wins())
    }

    /// The validation loss of the network `--scale select` kept, if it compared (so
    /// `--keep best` need not score it again).
    pub fn kept_loss(&self) -> Option<f64> {
        self.scale.map(|c| c.first.min(c.second))
    }

    /// The scaling kept by `--scale select`, if it compared.
    pub fn scale_kept(&self) -> Option<&'static str> {
        self.scale.map(|c| {
            if c.second_wins() {
                "standard"
            } else {
                "quantile"
            }
        })
    }

    /// One line a comparison, for the printed summary and the report; `network` is the
    /// shape of the network with hidden layers.
    pub fn lines(&self, loss: Loss, network: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(c), Some(kept)) = (self.scale, self.scale_kept()) {
            let (won, lost, other) = if c.second_wins() {
                (c.second, c.first, "quantile")
            } else {
                (c.first, c.second, "standard")
            };
            out.push(format!(
                "numeric columns scaled by {kept}: validation {loss} {won:.4} against {lost:.4} with {other} scaling (--scale select)"
            ));
        }
        if let Some(c) = self.keep {
            out.push(if c.second_wins() {
                format!("kept: the network without hidden layers, which validated better ({loss} {:.4} against {:.4} for {network}); the run folder holds it (--keep network keeps the network)", c.second, c.first)
            } else {
                format!("kept: the {network} network (validation {loss} {:.4} against {:.4} without hidden layers)", c.first, c.second)
            });
        }
        out
    }

    /// The comparisons for `metrics.json`.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "scale": self.scale.map(|c| json!({
                "kept": self.scale_kept(),
                "quantile_valid_loss": c.first,
                "standard_valid_loss": c.second,
            })),
            "keep": self.keep.map(|c| json!({
                "kept": if c.second_wins() { "linear" } else { "network" },
                "network_valid_loss": c.first,
                "linear_valid_loss": c.second,
            })),
        })
    }
}

/// The network `net` without hidden layers.
pub fn linear(net: &NetworkConfig) -> NetworkConfig {
    NetworkConfig {
        hidden: Vec::new(),
        stack: Vec::new(),
        ..net.clone()
    }
}

/// The training of the network without hidden layers: `config` without weight decay.
pub fn baseline_config(config: &TrainConfig) -> TrainConfig {
    TrainConfig {
        optimizer: config.optimizer.with_weight_decay(0.0),
        ..config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_keep_the_first_and_missing_losses_compare_nothing() {
        let tie = Compared::of(Some(0.5), Some(0.5)).unwrap();
        assert!(!tie.second_wins());
        assert!(Compared::of(Some(0.5), Some(0.4)).unwrap().second_wins());
        assert_eq!(Compared::of(None, Some(0.4)), None);
        let c = Choice {
            scale: Compared::of(Some(0.3), Some(0.2)),
            keep: Compared::of(Some(0.2), Some(0.25)),
        };
        assert_eq!(c.scale_kept(), Some("standard"));
        assert!(!c.keeps_linear());
        let lines = c.lines(Loss::Mse, "4-8-1");
        assert!(
            lines[0].contains("scaled by standard") && lines[0].contains("0.2000 against 0.3000"),
            "{lines:?}"
        );
        assert!(lines[1].contains("kept: the 4-8-1 network"), "{lines:?}");
        assert_eq!(c.json()["keep"]["kept"], "network");
    }
}
