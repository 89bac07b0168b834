//! Learning-rate schedules: how far each step goes, over time.

use serde::{Deserialize, Serialize};

/// A learning-rate schedule. Epoch-based schedules follow PyTorch's `lr_scheduler`
/// classes stepped once per epoch; one-cycle is stepped every mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` epochs (`StepLR`).
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f32,
    },
    /// Multiply by `gamma` every epoch (`ExponentialLR`).
    Exponential {
        /// Decay factor per epoch.
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min_lr` over all epochs
    /// (`CosineAnnealingLR` with `T_max` = epochs; Loshchilov & Hutter 2017).
    Cosine {
        /// Final learning rate.
        min_lr: f32,
    },
    /// One-cycle (Smith & Topin 2019; PyTorch's `OneCycleLR` with cosine annealing):
    /// warm up from `lr/25` to `lr` over the first `pct_start` of all steps, then
    /// anneal to `lr/(25·10⁴)`. Stepped per mini-batch.
    OneCycle {
        /// Fraction of the steps spent warming up.
        pct_start: f32,
    },
    /// Multiply by `factor` when the validation loss has not improved by a relative
    /// `1e-4` for more than `patience` epochs (`ReduceLROnPlateau`, mode min; like its
    /// `eps`, a reduction of less than 1e-8 is skipped).
    Plateau {
        /// Decay factor.
        factor: f32,
        /// Epochs without improvement tolerated.
        patience: usize,
        /// Lower bound of the rate.
        min_lr: f32,
    },
}

/// The name and settings, for people: `step (x0.1 every 10 epochs)`.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())?;
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { every: 1, gamma } => write!(f, " (x{gamma} every epoch)"),
            Schedule::Step { every, gamma } => write!(f, " (x{gamma} every {every} epochs)"),
            Schedule::Exponential { gamma } => write!(f, " (x{gamma} per epoch)"),
            Schedule::Cosine { min_lr } => write!(f, " (down to {min_lr})"),
            Schedule::OneCycle { pct_start } => {
                // In tenths of a percent, without f32's noise (0.3 is 30.000002%).
                let pct = (f64::from(pct_start) * 1000.0).round() / 10.0;
                write!(f, " (warm-up over {pct}% of the steps)")
            }
            Schedule::Plateau {
                factor,
                patience,
                min_lr,
            } => write!(
                f,
                " (x{factor} after {patience} epoch{} without improvement, down to {min_lr})",
                if patience == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The schedule's own state (only reduce-on-plateau has any), serialisable for resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Multiplier applied by reduce-on-plateau so far.
    pub scale: f32,
    /// Best validation loss seen.
    pub best: f64,
    /// Epochs since it improved.
    pub bad_epochs: usize,
}

impl Default for ScheduleState {
    fn default() -> Self {
        ScheduleState {
            scale: 1.0,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }
}

const ONE_CYCLE_DIV: f32 = 25.0;
const ONE_CYCLE_FINAL_DIV: f32 = 1e4;
const PLATEAU_THRESHOLD: f64 = 1e-4;
/// Reductions smaller than this are skipped (`ReduceLROnPlateau`'s `eps`), so the rate
/// stops shrinking near 1e-8 instead of underflowing towards zero.
const PLATEAU_EPS: f32 = 1e-8;

impl Schedule {
    /// The name used on the command line (`--schedule`).
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Step { .. } => "step",
            Schedule::Exponential { .. } => "exponential",
            Schedule::Cosine { .. } => "cosine",
            Schedule::OneCycle { .. } => "one-cycle",
            Schedule::Plateau { .. } => "plateau",
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        match *self {
            Schedule::Step { every, gamma } if every == 0 || gamma <= 0.0 => Err(Error::config(
                "schedule",
                "step needs every >= 1 and gamma > 0",
            )),
            Schedule::Exponential { gamma } if gamma <= 0.0 => {
                Err(Error::config("schedule", "exponential needs gamma > 0"))
            }
            Schedule::OneCycle { pct_start }
                if !(0.0..1.0).contains(&pct_start) || pct_start == 0.0 =>
            {
                Err(Error::config(
                    "schedule",
                    "one-cycle needs 0 < pct_start < 1",
                ))
            }
            Schedule::Plateau { factor, .. } if !(0.0..1.0).contains(&factor) || factor == 0.0 => {
                Err(Error::config("schedule", "plateau needs 0 < factor < 1"))
            }
            _ => Ok(()),
        }
    }

    /// The rate for 0-based `epoch` and 0-based `step` within it.
    pub fn lr(
        &self,
        base: f32,
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        epochs: usize,
        state: &ScheduleState,
    ) -> f32 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every) as i32),
            Schedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
            Schedule::Cosine { min_lr } => {
                let t = epoch as f32 / epochs.max(1) as f32;
                min_lr + (base - min_lr) * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
            }
            Schedule::OneCycle { pct_start } => {
                let total = (epochs * steps_per_epoch).max(2) as f32;
                let t = (epoch * steps_per_epoch + step) as f32;
                let start = base / ONE_CYCLE_DIV;
                let end = start / ONE_CYCLE_FINAL_DIV;
                let up = pct_start * total - 1.0;
                let cos_anneal = |from: f32, to: f32, pct: f32| {
                    to + (from - to) * 0.5 * (1.0 + (std::f32::consts::PI * pct).cos())
                };
                if t <= up {
                    cos_anneal(start, base, t / up.max(1.0))
                } else {
                    let down = total - 1.0 - up;
                    cos_anneal(base, end, ((t - up) / down.max(1.0)).min(1.0))
                }
            }
            Schedule::Plateau { .. } => base * state.scale,
        }
    }

    /// Tells the schedule an epoch ended with this validation (or training) loss.
    pub fn end_epoch(&self, base: f32, loss: f64, state: &mut ScheduleState) {
        if let Schedule::Plateau {
            factor,
            patience,
            min_lr,
        } = *self
        {
            if loss < state.best * (1.0 - PLATEAU_THRESHOLD) {
                state.best = loss;
                state.bad_epochs = 0;
            } else {
                state.bad_epochs += 1;
            }
            if state.bad_epochs > patience {
                let old = base * state.scale;
                let lr = (old * factor).max(min_lr);
                if old - lr > PLATEAU_EPS {
                    state.scale = lr / base;
                }
                state.bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_schedule_and_its_settings() {
        let shown: Vec<String> = [
            Schedule::Constant,
            Schedule::Step {
                every: 1,
                gamma: 0.5,
            },
            Schedule::Step {
                every: 10,
                gamma: 0.1,
            },
            Schedule::Exponential { gamma: 0.95 },
            Schedule::Cosine { min_lr: 0.0 },
            Schedule::OneCycle { pct_start: 0.3 },
            Schedule::Plateau {
                factor: 0.1,
                patience: 1,
                min_lr: 1e-6,
            },
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shown,
            [
                "constant",
                "step (x0.5 every epoch)",
                "step (x0.1 every 10 epochs)",
                "exponential (x0.95 per epoch)",
                "cosine (down to 0)",
                "one-cycle (warm-up over 30% of the steps)",
                "plateau (x0.1 after 1 epoch without improvement, down to 0.000001)",
            ]
        );
    }
}
