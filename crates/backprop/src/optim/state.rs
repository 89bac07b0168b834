//! What an optimizer remembers between updates, typed by the rule that keeps it.
//!
//! Each rule keeps its own moving averages under their own names (the velocity of
//! momentum, Adam's `m` and `v`, RMSprop's squared-gradient average), so a state can be
//! checked against the optimizer and the network it is used with: a state read from a
//! checkpoint that lacks a buffer, holds one of the wrong length, or belongs to another
//! rule is an error where it is loaded ([`OptimizerState::check`]), never an update
//! that silently does nothing.

use serde::{Deserialize, Serialize};

use super::{Optimizer, RmsProp, Sgd};
use crate::error::{Error, Result};

/// Which buffers a state holds: one kind per update rule (and per use of momentum,
/// which adds a buffer). Serialised in checkpoints beside the named buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// Plain gradient descent: the step count only.
    Sgd,
    /// SGD with (Nesterov) momentum: `velocity`.
    Momentum,
    /// Adam and AdamW: `m` and `v`.
    Adam,
    /// RMSprop without momentum: `square_avg`.
    RmsProp,
    /// RMSprop with momentum: `square_avg` and `momentum_buffer`.
    RmsPropMomentum,
}

impl StateKind {
    /// The names of the buffers a state of this kind holds, in order.
    pub fn buffer_names(self) -> &'static [&'static str] {
        match self {
            StateKind::Sgd => &[],
            StateKind::Momentum => &["velocity"],
            StateKind::Adam => &["m", "v"],
            StateKind::RmsProp => &["square_avg"],
            StateKind::RmsPropMomentum => &["square_avg", "momentum_buffer"],
        }
    }

    /// How the kind is named in messages.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Sgd => "plain SGD",
            StateKind::Momentum => "SGD with momentum",
            StateKind::Adam => "Adam",
            StateKind::RmsProp => "RMSprop",
            StateKind::RmsPropMomentum => "RMSprop with momentum",
        }
    }
}

/// An optimizer's state: the updates taken so far (`step`, which Adam's bias correction
/// and the first momentum step read) and the moving averages of its rule, each one
/// value per parameter. [`Optimizer::init`] builds the state that fits an optimizer;
/// [`OptimizerState::check`] says whether a given one does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerState {
    /// Plain gradient descent keeps no moments.
    Sgd {
        /// Updates taken so far.
        step: u64,
    },
    /// SGD with (Nesterov) momentum.
    Momentum {
        /// Updates taken so far.
        step: u64,
        /// The velocity `v ← μv + g`.
        velocity: Vec<f32>,
    },
    /// Adam and AdamW.
    Adam {
        /// Updates taken so far.
        step: u64,
        /// First moment `m ← β₁m + (1-β₁)g`.
        m: Vec<f32>,
        /// Second moment `v ← β₂v + (1-β₂)g²`.
        v: Vec<f32>,
    },
    /// RMSprop without momentum.
    RmsProp {
        /// Updates taken so far.
        step: u64,
        /// The squared-gradient average `s ← αs + (1-α)g²`.
        square_avg: Vec<f32>,
    },
    /// RMSprop with momentum.
    RmsPropMomentum {
        /// Updates taken so far.
        step: u64,
        /// The squared-gradient average `s ← αs + (1-α)g²`.
        square_avg: Vec<f32>,
        /// The momentum buffer `b ← μb + g / (√s + ε)`.
        momentum_buffer: Vec<f32>,
    },
}

impl Default for OptimizerState {
    /// The state of plain SGD before its first update (the default [`Optimizer`]).
    fn default() -> Self {
        OptimizerState::Sgd { step: 0 }
    }
}

impl Optimizer {
    /// The kind of state this optimizer keeps.
    pub fn state_kind(&self) -> StateKind {
        match *self {
            Optimizer::Sgd(Sgd { momentum, .. }) if momentum > 0.0 => StateKind::Momentum,
            Optimizer::Sgd(_) => StateKind::Sgd,
            Optimizer::Adam(_) | Optimizer::AdamW(_) => StateKind::Adam,
            Optimizer::RmsProp(RmsProp { momentum, .. }) if momentum > 0.0 => {
                StateKind::RmsPropMomentum
            }
            Optimizer::RmsProp(_) => StateKind::RmsProp,
        }
    }

    /// Fresh state for `n` parameters: step 0 and zeroed moments.
    pub fn init(&self, n: usize) -> OptimizerState {
        let z = || vec![0.0; n];
        match self.state_kind() {
            StateKind::Sgd => OptimizerState::Sgd { step: 0 },
            StateKind::Momentum => OptimizerState::Momentum {
                step: 0,
                velocity: z(),
            },
            StateKind::Adam => OptimizerState::Adam {
                step: 0,
                m: z(),
                v: z(),
            },
            StateKind::RmsProp => OptimizerState::RmsProp {
                step: 0,
                square_avg: z(),
            },
            StateKind::RmsPropMomentum => OptimizerState::RmsPropMomentum {
                step: 0,
                square_avg: z(),
                momentum_buffer: z(),
            },
        }
    }
}

impl OptimizerState {
    /// Updates taken so far.
    pub fn step(&self) -> u64 {
        match *self {
            OptimizerState::Sgd { step }
            | OptimizerState::Momentum { step, .. }
            | OptimizerState::Adam { step, .. }
            | OptimizerState::RmsProp { step, .. }
            | OptimizerState::RmsPropMomentum { step, .. } => step,
        }
    }

    /// Which rule's buffers this state holds.
    pub fn kind(&self) -> StateKind {
        match self {
            OptimizerState::Sgd { .. } => StateKind::Sgd,
            OptimizerState::Momentum { .. } => StateKind::Momentum,
            OptimizerState::Adam { .. } => StateKind::Adam,
            OptimizerState::RmsProp { .. } => StateKind::RmsProp,
            OptimizerState::RmsPropMomentum { .. } => StateKind::RmsPropMomentum,
        }
    }

    /// The buffers with their names ([`StateKind::buffer_names`], in that order).
    pub fn buffers(&self) -> Vec<(&'static str, &[f32])> {
        self.buffers_iter().collect()
    }

    /// A state of `kind` after `step` updates, its buffers taken by name from `take`
    /// (called once for each of [`StateKind::buffer_names`], in order). Lengths are not
    /// checked here: see [`OptimizerState::check`].
    pub fn from_buffers(
        kind: StateKind,
        step: u64,
        mut take: impl FnMut(&'static str) -> Result<Vec<f32>>,
    ) -> Result<OptimizerState> {
        Ok(match kind {
            StateKind::Sgd => OptimizerState::Sgd { step },
            StateKind::Momentum => OptimizerState::Momentum {
                step,
                velocity: take("velocity")?,
            },
            StateKind::Adam => OptimizerState::Adam {
                step,
                m: take("m")?,
                v: take("v")?,
            },
            StateKind::RmsProp => OptimizerState::RmsProp {
                step,
                square_avg: take("square_avg")?,
            },
            StateKind::RmsPropMomentum => OptimizerState::RmsPropMomentum {
                step,
                square_avg: take("square_avg")?,
                momentum_buffer: take("momentum_buffer")?,
            },
        })
    }

    /// Checks that this state is one `optimizer` can continue from on a network of
    /// `n` parameters: the buffers of its rule, each `n` values long, all finite.
    pub fn check(&self, optimizer: &Optimizer, n: usize) -> Result<()> {
        self.check_shape(optimizer, n)?;
        for (name, b) in self.buffers_iter() {
            if let Some(i) = b.iter().position(|x| !x.is_finite()) {
                return Err(Error::IncompatibleState {
                    found: format!("buffer `{name}` holding {} at index {i}", b[i]),
                    expected: "finite values".into(),
                });
            }
        }
        Ok(())
    }

    /// The part of [`OptimizerState::check`] that reads no buffer (the kind and the
    /// lengths), cheap enough to guard every update. Allocates only to describe a
    /// failure.
    pub fn check_shape(&self, optimizer: &Optimizer, n: usize) -> Result<()> {
        let want = optimizer.state_kind();
        let have = self.kind();
        if want != have {
            return Err(Error::IncompatibleState {
                found: format!("the state of {} ({})", have.name(), describe(have)),
                expected: format!("that of {} ({})", optimizer.name(), describe(want)),
            });
        }
        for (name, b) in self.buffers_iter() {
            if b.len() != n {
                return Err(Error::IncompatibleState {
                    found: format!("buffer `{name}` of {} values", b.len()),
                    expected: format!("{n}, one per parameter of the network"),
                });
            }
        }
        Ok(())
    }

    /// The buffers with their names, without allocating.
    fn buffers_iter(&self) -> impl Iterator<Item = (&'static str, &[f32])> {
        let (a, b): (&[f32], &[f32]) = match self {
            OptimizerState::Sgd { .. } => (&[], &[]),
            OptimizerState::Momentum { velocity, .. } => (velocity, &[]),
            OptimizerState::Adam { m, v, .. } => (m, v),
            OptimizerState::RmsProp { square_avg, .. } => (square_avg, &[]),
            OptimizerState::RmsPropMomentum {
                square_avg,
                momentum_buffer,
                ..
            } => (square_avg, momentum_buffer),
        };
        self.kind().buffer_names().iter().copied().zip([a, b])
    }

    /// The step counter and the (up to two) buffers as the update rules take them,
    /// an empty slice standing for a buffer the rule does not keep.
    pub(super) fn parts_mut(&mut self) -> (&mut u64, &mut [f32], &mut [f32]) {
        match self {
            OptimizerState::Sgd { step } => (step, &mut [], &mut []),
            OptimizerState::Momentum { step, velocity } => (step, velocity, &mut []),
            OptimizerState::Adam { step, m, v } => (step, m, v),
            OptimizerState::RmsProp { step, square_avg } => (step, square_avg, &mut []),
            OptimizerState::RmsPropMomentum {
                step,
                square_avg,
                momentum_buffer,
            } => (step, square_avg, momentum_buffer),
        }
    }
}

/// "buffers m, v" or "no buffers", for messages.
fn describe(kind: StateKind) -> String {
    match kind.buffer_names() {
        [] => "no buffers".into(),
        names => format!("buffers {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OptimizerKind;

    fn every_optimizer() -> Vec<Optimizer> {
        let mut all = Vec::new();
        for kind in [
            OptimizerKind::Sgd,
            OptimizerKind::Nesterov,
            OptimizerKind::Adam,
            OptimizerKind::Adamw,
            OptimizerKind::Rmsprop,
        ] {
            for momentum in [0.0, 0.9] {
                if kind == OptimizerKind::Nesterov && momentum == 0.0 {
                    continue;
                }
                all.push(kind.build(momentum, 0.0));
            }
        }
        all
    }

    #[test]
    fn a_fresh_state_fits_its_optimizer_and_only_its_kind() {
        for opt in every_optimizer() {
            let state = opt.init(7);
            state.check(&opt, 7).unwrap();
            assert_eq!(state.kind(), opt.state_kind());
            assert_eq!(state.step(), 0);
            let names: Vec<&str> = state.buffers().iter().map(|(n, _)| *n).collect();
            assert_eq!(names, opt.state_kind().buffer_names());
            // Plain SGD keeps nothing, so it fits a network of any size.
            let sized = !names.is_empty();
            assert_eq!(
                state.check(&opt, 8).is_err(),
                sized,
                "{opt:?}: wrong length"
            );
            for other in every_optimizer() {
                if other.state_kind() != opt.state_kind() {
                    let e = state.check(&other, 7).unwrap_err().to_string();
                    assert!(e.contains(other.name()), "{e}");
                }
            }
        }
    }

    #[test]
    fn short_missing_and_non_finite_buffers_are_refused() {
        let adam = OptimizerKind::Adam.build(0.0, 0.0);
        let short = OptimizerState::Adam {
            step: 3,
            m: vec![0.0; 5],
            v: vec![0.0; 4],
        };
        let e = short.check(&adam, 5).unwrap_err().to_string();
        assert!(
            e.contains("`v` of 4 values") && e.contains("expected 5"),
            "{e}"
        );
        // An Adam run handed plain SGD's state (no moments at all).
        let e = OptimizerState::Sgd { step: 3 }
            .check(&adam, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain SGD") && e.contains("buffers m, v"), "{e}");
        let nan = OptimizerState::Adam {
            step: 3,
            m: vec![0.0, f32::NAN],
            v: vec![0.0; 2],
        };
        assert!(nan.check(&adam, 2).unwrap_err().to_string().contains("NaN"));
    }

    #[test]
    fn buffers_round_trip_by_name() {
        for opt in every_optimizer() {
            let mut state = opt.init(3);
            let (step, b0, b1) = state.parts_mut();
            *step = 9;
            b0.iter_mut().for_each(|x| *x = 1.5);
            b1.iter_mut().for_each(|x| *x = -2.0);
            let named: Vec<(&str, Vec<f32>)> = state
                .buffers()
                .into_iter()
                .map(|(n, b)| (n, b.to_vec()))
                .collect();
            let back = OptimizerState::from_buffers(state.kind(), state.step(), |name| {
                Ok(named.iter().find(|(n, _)| *n == name).unwrap().1.clone())
            })
            .unwrap();
            assert_eq!(back, state);
        }
    }
}
