//! Optimizers: how a gradient becomes a change of the weights.
//!
//! An optimizer is an update rule over the flat parameter buffer with explicit,
//! serialisable state (optax's `init` + `update`), so a checkpoint resumes exactly.
//! Conventions follow PyTorch's `torch.optim` so results can be checked against it.

mod schedule;
mod state;

pub use schedule::{Schedule, ScheduleState};
pub use state::{OptimizerState, StateKind};

use multiversion::multiversion;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The update rule and its hyper-parameters (the learning rate comes from a
/// [`Schedule`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum.
    Sgd(Sgd),
    /// Adam with L2 weight decay added to the gradient.
    Adam(Adam),
    /// AdamW: Adam with decoupled weight decay.
    AdamW(Adam),
    /// RMSprop.
    RmsProp(RmsProp),
}

/// SGD (PyTorch's `torch.optim.SGD`, dampening 0):
/// `g ← g + λθ`; `v ← μv + g` (first step `v = g`); `θ ← θ - η g'` with `g' = v`,
/// or `g' = g + μv` for Nesterov (Sutskever et al. 2013).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Sgd {
    /// Momentum `μ` (0 = plain gradient descent).
    pub momentum: f32,
    /// Use Nesterov's look-ahead form of momentum.
    pub nesterov: bool,
    /// L2 weight decay `λ`, added to the gradient.
    pub weight_decay: f32,
}

/// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019):
/// `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`, `θ ← θ - η m̂ / (√v̂ + ε)` with bias
/// corrections `m̂ = m / (1-β₁ᵗ)`, `v̂ = v / (1-β₂ᵗ)`. Adam adds `λθ` to `g`; AdamW
/// instead multiplies `θ` by `1 - ηλ` before the step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// `β₁`, decay of the first moment.
    pub beta1: f32,
    /// `β₂`, decay of the second moment.
    pub beta2: f32,
    /// `ε`, added to the denominator.
    pub eps: f32,
    /// Weight decay `λ`.
    pub weight_decay: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// RMSprop (Hinton's lecture 6e; PyTorch's form): `g ← g + λθ`,
/// `s ← αs + (1-α)g²`, then `θ ← θ - η g / (√s + ε)`, or with momentum `μ`:
/// `b ← μb + g / (√s + ε)`, `θ ← θ - η b`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RmsProp {
    /// `α`, decay of the squared-gradient average.
    pub alpha: f32,
    /// `ε`, added to the denominator.
    pub eps: f32,
    /// Momentum `μ`.
    pub momentum: f32,
    /// L2 weight decay `λ`.
    pub weight_decay: f32,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }
}

/// The optimizer names accepted on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Plain (or momentum, if `--momentum` > 0) gradient descent.
    Sgd,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adam.
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// RMSprop.
    Rmsprop,
}

impl OptimizerKind {
    /// Builds the optimizer with the given momentum and weight decay (each used where
    /// the rule has such a term) and the other hyper-parameters at PyTorch's defaults.
    pub fn build(self, momentum: f32, weight_decay: f32) -> Optimizer {
        match self {
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd {
                momentum,
                nesterov: false,
                weight_decay,
            }),
            OptimizerKind::Nesterov => Optimizer::Sgd(Sgd {
                momentum,
                nesterov: true,
                weight_decay,
            }),
            OptimizerKind::Adam => Optimizer::Adam(Adam {
                weight_decay,
                ..Adam::default()
            }),
            OptimizerKind::Adamw => Optimizer::AdamW(Adam {
                weight_decay,
                ..Adam::default()
            }),
            OptimizerKind::Rmsprop => Optimizer::RmsProp(RmsProp {
                momentum,
                weight_decay,
                ..RmsProp::default()
            }),
        }
    }
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Sgd(Sgd::default())
    }
}

impl Optimizer {
    /// The same rule with weight decay `λ` (each rule applies it its own way).
    pub fn with_weight_decay(self, weight_decay: f32) -> Optimizer {
        match self {
            Optimizer::Sgd(o) => Optimizer::Sgd(Sgd { weight_decay, ..o }),
            Optimizer::Adam(o) => Optimizer::Adam(Adam { weight_decay, ..o }),
            Optimizer::AdamW(o) => Optimizer::AdamW(Adam { weight_decay, ..o }),
            Optimizer::RmsProp(o) => Optimizer::RmsProp(RmsProp { weight_decay, ..o }),
        }
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: &str| Err(Error::config(field, reason));
        match *self {
            Optimizer::Sgd(s) => {
                if !(0.0..1.0).contains(&s.momentum) {
                    return bad("momentum", "must be in [0, 1)");
                }
                if s.nesterov && s.momentum == 0.0 {
                    return bad(
                        "momentum",
                        "Nesterov needs a momentum above 0 (e.g. --momentum 0.9)",
                    );
                }
                check_decay(s.weight_decay)
            }
            Optimizer::Adam(a) | Optimizer::AdamW(a) => {
                if !(0.0..1.0).contains(&a.beta1) || !(0.0..1.0).contains(&a.beta2) {
                    return bad("beta", "Adam's betas must be in [0, 1)");
                }
                if a.eps <= 0.0 || !a.eps.is_finite() {
                    return bad("eps", "must be positive");
                }
                check_decay(a.weight_decay)
            }
            Optimizer::RmsProp(r) => {
                if !(0.0..1.0).contains(&r.alpha) {
                    return bad("alpha", "must be in [0, 1)");
                }
                if !(0.0..1.0).contains(&r.momentum) {
                    return bad("momentum", "must be in [0, 1)");
                }
                check_decay(r.weight_decay)
            }
        }
    }

    /// One update of `params` with learning rate `lr` and gradient `grads`.
    ///
    /// # Panics
    /// If `state` is not this optimizer's for `params.len()` parameters
    /// ([`OptimizerState::check_shape`]): a state made by [`Optimizer::init`] fits, and
    /// one read from a file is checked where it is loaded, so this is a bug, never a
    /// silently skipped update.
    pub fn step(&self, lr: f32, params: &mut [f32], grads: &[f32], state: &mut OptimizerState) {
        assert_eq!(
            params.len(),
            grads.len(),
            "optimizer: parameters vs gradients"
        );
        if let Err(e) = state.check_shape(self, params.len()) {
            panic!("optimizer {}: {e}", self.name());
        }
        let (step, b0, b1) = state.parts_mut();
        // Saturating: a count read from a file may be anything, and past 2^64 updates
        // only Adam's bias correction reads it, which is 1 by then.
        *step = step.saturating_add(1);
        let parts = rayon::current_num_threads();
        let operands = Operands {
            params,
            grads,
            b0,
            b1,
        };
        self.apply(parts, *step, lr, operands);
    }

    /// The update of step `t` on `u`, in `parts` pieces on the current rayon pool when
    /// there are enough parameters to pay for the threads. Every rule is element by
    /// element, so the pieces give the same bits as one pass.
    fn apply(&self, parts: usize, t: u64, lr: f32, u: Operands<'_>) {
        let n = u.params.len();
        if parts > 1 && n >= PARALLEL_MIN_PARAMS {
            let left = parts / 2;
            let mid = (n * left / parts).next_multiple_of(16).min(n);
            let (u0, u1) = u.split_at(mid);
            rayon::join(
                || self.apply(left, t, lr, u0),
                || self.apply(parts - left, t, lr, u1),
            );
            return;
        }
        let Operands {
            params,
            grads,
            b0,
            b1,
        } = u;
        match *self {
            Optimizer::Sgd(s) => sgd_step(s, t, lr, params, grads, b0),
            Optimizer::Adam(a) => adam_step(AdamStep(a, false, t, lr), params, grads, b0, b1),
            Optimizer::AdamW(a) => adam_step(AdamStep(a, true, t, lr), params, grads, b0, b1),
            Optimizer::RmsProp(r) => rmsprop_step(r, lr, params, grads, b0, b1),
        }
    }

    /// The short name used in output and model files.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(s) if s.nesterov => "nesterov",
            Optimizer::Sgd(s) if s.momentum > 0.0 => "sgd+momentum",
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(_) => "adam",
            Optimizer::AdamW(_) => "adamw",
            Optimizer::RmsProp(_) => "rmsprop",
        }
    }
}

/// The operands of one update: the parameters, their gradient and the rule's moment
/// buffers (`b0`, `b1`; empty when the rule keeps fewer).
struct Operands<'a> {
    params: &'a mut [f32],
    grads: &'a [f32],
    b0: &'a mut [f32],
    b1: &'a mut [f32],
}

impl<'a> Operands<'a> {
    /// The first `mid` elements of every buffer, and the rest.
    fn split_at(self, mid: usize) -> (Operands<'a>, Operands<'a>) {
        let (p0, p1) = self.params.split_at_mut(mid);
        let (g0, g1) = self.grads.split_at(mid);
        let (b0l, b0r) = self
            .b0
            .split_at_mut(if self.b0.is_empty() { 0 } else { mid });
        let (b1l, b1r) = self
            .b1
            .split_at_mut(if self.b1.is_empty() { 0 } else { mid });
        (
            Operands::new(p0, g0, b0l, b1l),
            Operands::new(p1, g1, b0r, b1r),
        )
    }

    fn new(params: &'a mut [f32], grads: &'a [f32], b0: &'a mut [f32], b1: &'a mut [f32]) -> Self {
        Operands {
            params,
            grads,
            b0,
            b1,
        }
    }
}

fn check_decay(wd: f32) -> Result<()> {
    if wd < 0.0 || !wd.is_finite() {
        return Err(Error::config("weight_decay", "must be zero or positive"));
    }
    Ok(())
}

/// Parameter counts from which an update is split over the threads of the pool (the
/// 535,818 of the MNIST network are; the 4,801 of an 8-64-64-1 network are not).
const PARALLEL_MIN_PARAMS: usize = 1 << 17;

fn sgd_step(s: Sgd, t: u64, lr: f32, params: &mut [f32], grads: &[f32], v: &mut [f32]) {
    let wd = s.weight_decay;
    if s.momentum == 0.0 {
        for (p, &g) in params.iter_mut().zip(grads) {
            *p -= lr * (g + wd * *p);
        }
        return;
    }
    // The first step sets v = g, which is `0 · v + g` on the zeroed buffer.
    let decay = if t == 1 { 0.0 } else { s.momentum };
    // One loop per form, with no branch inside, so each vectorises.
    if s.nesterov {
        momentum_step::<true>(lr, s.momentum, decay, wd, params, grads, v);
    } else {
        momentum_step::<false>(lr, s.momentum, decay, wd, params, grads, v);
    }
}

/// `g ← g + λθ`, `v ← decay·v + g`, `θ ← θ - η (g + μv)` (Nesterov) or `θ - η v`.
/// Compiled for AVX-512 and AVX2 too (see `activation::map_bias`).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn momentum_step<const NESTEROV: bool>(
    lr: f32,
    mu: f32,
    decay: f32,
    wd: f32,
    params: &mut [f32],
    grads: &[f32],
    v: &mut [f32],
) {
    for ((p, &g), v) in params.iter_mut().zip(grads).zip(v.iter_mut()) {
        let g = g + wd * *p;
        *v = flush_subnormal(decay * *v + g);
        let d = if NESTEROV { g + mu * *v } else { *v };
        *p -= lr * d;
    }
}

/// Adam's settings, whether its weight decay is decoupled (AdamW), the step `t` and
/// the learning rate.
#[derive(Clone, Copy)]
struct AdamStep(Adam, bool, u64, f32);

/// Adam's update of `params` with moments `m` and `v`. (The buffers are arguments, not
/// fields of a struct, so that the compiler knows they do not overlap and vectorises
/// the loop: passed in `Operands`, a step of batch 1 took 11% longer.)
fn adam_step(s: AdamStep, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let AdamStep(a, decoupled, t, lr) = s;
    // β^t underflows to 0 long before t leaves i32 (a state read from a file can hold
    // any count); the same bits as `t as i32` for every count a run reaches.
    let t = t.min(i32::MAX as u64) as i32;
    let bc1 = 1.0 - a.beta1.powi(t);
    let bc2 = 1.0 - a.beta2.powi(t);
    let step_size = lr / bc1;
    let bc2_sqrt = bc2.sqrt();
    let (wd_grad, decay) = if decoupled {
        (0.0, 1.0 - lr * a.weight_decay)
    } else {
        (a.weight_decay, 1.0)
    };
    for (((p, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let g = g + wd_grad * *p;
        *p *= decay;
        *m = flush_subnormal(a.beta1 * *m + (1.0 - a.beta1) * g);
        *v = flush_subnormal(a.beta2 * *v + (1.0 - a.beta2) * g * g);
        let denom = v.sqrt() / bc2_sqrt + a.eps;
        *p -= step_size * *m / denom;
    }
}

fn rmsprop_step(
    r: RmsProp,
    lr: f32,
    params: &mut [f32],
    grads: &[f32],
    s: &mut [f32],
    b: &mut [f32],
) {
    if r.momentum > 0.0 {
        for (((p, &g), s), b) in params
            .iter_mut()
            .zip(grads)
            .zip(s.iter_mut())
            .zip(b.iter_mut())
        {
            let g = g + r.weight_decay * *p;
            *s = flush_subnormal(r.alpha * *s + (1.0 - r.alpha) * g * g);
            *b = flush_subnormal(r.momentum * *b + g / (s.sqrt() + r.eps));
            *p -= lr * *b;
        }
    } else {
        for ((p, &g), s) in params.iter_mut().zip(grads).zip(s.iter_mut()) {
            let g = g + r.weight_decay * *p;
            *s = flush_subnormal(r.alpha * *s + (1.0 - r.alpha) * g * g);
            *p -= lr * g / (s.sqrt() + r.eps);
        }
    }
}

/// Zero in place of a subnormal number. A moving average of a gradient that stays zero
/// (a dead ReLU unit, a constant input) decays geometrically into the subnormal range
/// (below `f32::MIN_POSITIVE`, about 1.2e-38), where x86 floating-point arithmetic takes
/// a microcode assist roughly a hundred times slower than normal; online SGD with
/// momentum spent 85% of its time there. A subnormal moment cannot visibly move a
/// weight, so flushing it changes the speed, not the result.
#[inline(always)]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when the norm exceeds it).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let norm = l2_norm(grads);
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g *= scale;
        }
    }
    norm
}

/// The L2 norm of a buffer, accumulated in `f64`.
pub fn l2_norm(x: &[f32]) -> f32 {
    x.iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large updates are split over the threads; every rule is element-wise, so the
    /// result is the same bits as one pass on one thread.
    #[test]
    fn split_updates_are_bit_identical_to_one_pass() {
        let n = PARALLEL_MIN_PARAMS * 2 + 37;
        let grads: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1009) as f32 * 1e-3 - 0.5)
            .collect();
        for kind in [
            OptimizerKind::Sgd,
            OptimizerKind::Nesterov,
            OptimizerKind::Adam,
            OptimizerKind::Adamw,
            OptimizerKind::Rmsprop,
        ] {
            for momentum in [0.0, 0.9] {
                let opt = kind.build(
                    if kind == OptimizerKind::Nesterov {
                        0.9
                    } else {
                        momentum
                    },
                    1e-2,
                );
                let run = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| {
                        let mut params: Vec<f32> =
                            (0..n).map(|i| (i % 101) as f32 * 0.01).collect();
                        let mut state = opt.init(n);
                        for _ in 0..3 {
                            opt.step(0.01, &mut params, &grads, &mut state);
                        }
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        let moments: Vec<Vec<u32>> =
                            state.buffers().iter().map(|(_, b)| bits(b)).collect();
                        (bits(&params), moments)
                    })
                };
                let (one, two, three) = (run(1), run(2), run(3));
                assert!(one == two && one == three, "{kind:?} momentum {momentum}");
            }
        }
    }
}
