//! Cost functions: how far the prediction is from the actual value.
//!
//! Every loss is the mean over the batch (and, for the element-wise losses, over the
//! outputs too), as PyTorch's default `reduction="mean"` does, so the learning rate
//! means the same thing whatever the batch size.

use crate::activation::sigmoid;
use serde::{Deserialize, Serialize};

/// Huber's threshold between the quadratic and the linear part (PyTorch's default).
pub const HUBER_DELTA: f32 = 1.0;

/// A cost function comparing predictions `p` with targets `y` (both batch x outputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error, `mean((p - y)²)`.
    #[default]
    Mse,
    /// Mean absolute error, `mean(|p - y|)`.
    Mae,
    /// Huber: `½d²` for `|d| ≤ δ`, else `δ(|d| - ½δ)`, with `d = p - y`, `δ = 1`.
    Huber,
    /// Binary cross-entropy on logits `z`: `max(z,0) - z y + ln(1 + e^{-|z|})`, the
    /// form that stays finite for any logit. Targets in `[0, 1]`.
    Bce,
    /// Softmax cross-entropy on logits `z`: `Σ_i y_i (logsumexp(z) - z_i)` per row,
    /// averaged over rows. Targets are one-hot (or any probability) rows.
    CrossEntropy,
}

impl Loss {
    /// Whether the network's output layer must emit logits (identity activation),
    /// because this loss applies the sigmoid or softmax itself.
    pub fn takes_logits(self) -> bool {
        matches!(self, Loss::Bce | Loss::CrossEntropy)
    }

    /// The name used on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber => "huber",
            Loss::Bce => "bce",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// The mean loss over a batch, accumulated in `f64`.
    pub fn value(self, p: &[f32], y: &[f32], cols: usize) -> f64 {
        assert_eq!(p.len(), y.len(), "loss: prediction vs target length");
        if p.is_empty() {
            return 0.0;
        }
        self.sum(p, y, cols) / self.denominator(p.len(), cols)
    }

    /// The summed (not averaged) loss over a batch, in `f64`, so callers can combine
    /// batches of different sizes exactly.
    pub fn sum(self, p: &[f32], y: &[f32], cols: usize) -> f64 {
        let mut s = 0.0f64;
        match self {
            Loss::CrossEntropy => {
                for (zr, yr) in p.chunks_exact(cols).zip(y.chunks_exact(cols)) {
                    let lse = log_sum_exp(zr);
                    s += zr
                        .iter()
                        .zip(yr)
                        .map(|(&z, &y)| y as f64 * (lse - z as f64))
                        .sum::<f64>();
                }
            }
            _ => {
                for (&p, &y) in p.iter().zip(y) {
                    s += self.elementwise(p, y) as f64;
                }
            }
        }
        s
    }

    /// What `sum` is divided by to give the mean for `n` values in rows of `cols`.
    pub fn denominator(self, n: usize, cols: usize) -> f64 {
        match self {
            Loss::CrossEntropy => (n / cols) as f64,
            _ => n as f64,
        }
    }

    fn elementwise(self, p: f32, y: f32) -> f32 {
        let d = p - y;
        match self {
            Loss::Mse => d * d,
            Loss::Mae => d.abs(),
            Loss::Huber => {
                if d.abs() <= HUBER_DELTA {
                    0.5 * d * d
                } else {
                    HUBER_DELTA * (d.abs() - 0.5 * HUBER_DELTA)
                }
            }
            Loss::Bce => p.max(0.0) - p * y + (-p.abs()).exp().ln_1p(),
            Loss::CrossEntropy => unreachable!("cross-entropy is row-wise"),
        }
    }

    /// Writes `dL/dp` of the mean loss into `grad` and returns the mean loss.
    pub fn gradient(self, p: &[f32], y: &[f32], cols: usize, grad: &mut [f32]) -> f32 {
        self.gradient_scaled(p, y, cols, 1.0, grad)
    }

    /// [`Loss::gradient`] with `dL/dp` multiplied by `scale` (a piece's share of the
    /// rows of its batch) in the same pass: each element is the same bits as
    /// `gradient`'s times `scale`.
    pub fn gradient_scaled(
        self,
        p: &[f32],
        y: &[f32],
        cols: usize,
        scale: f32,
        grad: &mut [f32],
    ) -> f32 {
        assert_eq!(
            p.len(),
            y.len(),
            "loss gradient: prediction vs target length"
        );
        assert_eq!(
            p.len(),
            grad.len(),
            "loss gradient: prediction vs gradient length"
        );
        let n = self.denominator(p.len(), cols) as f32;
        let inv = 1.0 / n;
        let mut total = 0.0f64;
        match self {
            Loss::Mse => {
                for ((g, &p), &y) in grad.iter_mut().zip(p).zip(y) {
                    let d = p - y;
                    total += (d * d) as f64;
                    *g = 2.0 * d * inv * scale;
                }
            }
            Loss::Mae => {
                for ((g, &p), &y) in grad.iter_mut().zip(p).zip(y) {
                    let d = p - y;
                    total += d.abs() as f64;
                    *g = if d > 0.0 {
                        inv * scale
                    } else if d < 0.0 {
                        -inv * scale
                    } else {
                        0.0
                    };
                }
            }
            Loss::Huber => {
                for ((g, &p), &y) in grad.iter_mut().zip(p).zip(y) {
                    let d = p - y;
                    total += self.elementwise(p, y) as f64;
                    *g = d.clamp(-HUBER_DELTA, HUBER_DELTA) * inv * scale;
                }
            }
            // dL/dz = σ(z) - y
            Loss::Bce => {
                for ((g, &p), &y) in grad.iter_mut().zip(p).zip(y) {
                    total += self.elementwise(p, y) as f64;
                    *g = (sigmoid(p) - y) * inv * scale;
                }
            }
            // dL/dz_i = (Σ_j y_j) softmax(z)_i - y_i
            Loss::CrossEntropy => {
                for ((zr, yr), gr) in p
                    .chunks_exact(cols)
                    .zip(y.chunks_exact(cols))
                    .zip(grad.chunks_exact_mut(cols))
                {
                    let max = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f32;
                    for (g, &z) in gr.iter_mut().zip(zr) {
                        *g = (z - max).exp();
                        sum += *g;
                    }
                    let lse = max + sum.ln();
                    let ysum: f32 = yr.iter().sum();
                    let ce_scale = ysum / sum;
                    for ((g, &z), &y) in gr.iter_mut().zip(zr).zip(yr) {
                        total += (y * (lse - z)) as f64;
                        *g = (*g * ce_scale - y) * inv * scale;
                    }
                }
            }
        }
        (total / n as f64) as f32
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn log_sum_exp(z: &[f32]) -> f64 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + z.iter().map(|&z| (z as f64 - max).exp()).sum::<f64>().ln()
}
