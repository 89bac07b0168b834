//! Activation functions: what each perceptron applies to its weighted sum.

use serde::{Deserialize, Serialize};

/// Slope of leaky ReLU for negative inputs (PyTorch's default).
pub const LEAKY_SLOPE: f32 = 0.01;
/// Scale of ELU for negative inputs (PyTorch's default).
pub const ELU_ALPHA: f32 = 1.0;

/// An element-wise (or, for softmax, row-wise) activation.
///
/// Every variant maps a batch of pre-activations `z` (batch x units) to outputs `a` of
/// the same shape; `backward` maps `dL/da` to `dL/dz` with the exact derivative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `a = z` (linear output; regression, or logits for the fused losses).
    #[default]
    Identity,
    /// `a = 1 / (1 + e^-z)`.
    Sigmoid,
    /// `a = tanh z`.
    Tanh,
    /// `a = max(0, z)`.
    Relu,
    /// `a = z` for `z > 0`, else `0.01 z`.
    LeakyRelu,
    /// `a = z` for `z > 0`, else `e^z - 1`.
    Elu,
    /// `a = z Φ(z)` with Φ the standard normal CDF (the exact form, as PyTorch's default).
    Gelu,
    /// Row-wise `a_i = e^{z_i} / Σ_j e^{z_j}` (for an output layer).
    Softmax,
}

impl Activation {
    /// Applies the activation: `a = f(z)`; `cols` is the number of units per row.
    pub fn forward(self, z: &[f32], a: &mut [f32], cols: usize) {
        assert_eq!(z.len(), a.len(), "activation forward: z vs a length");
        match self {
            Activation::Identity => a.copy_from_slice(z),
            Activation::Sigmoid => map(z, a, sigmoid),
            Activation::Tanh => map(z, a, f32::tanh),
            Activation::Relu => map(z, a, |x| if x > 0.0 { x } else { 0.0 }),
            Activation::LeakyRelu => map(z, a, |x| if x > 0.0 { x } else { LEAKY_SLOPE * x }),
            Activation::Elu => map(z, a, |x| if x > 0.0 { x } else { ELU_ALPHA * x.exp_m1() }),
            Activation::Gelu => map(z, a, |x| x * std_normal_cdf(x)),
            Activation::Softmax => {
                for (zr, ar) in z.chunks_exact(cols).zip(a.chunks_exact_mut(cols)) {
                    softmax_row(zr, ar);
                }
            }
        }
    }

    /// Back-propagates through the activation: `dz = da ⊙ f'(z)` (softmax: the row
    /// Jacobian, `dz_i = a_i (da_i - Σ_j da_j a_j)`).
    pub fn backward(self, z: &[f32], a: &[f32], da: &[f32], dz: &mut [f32], cols: usize) {
        assert_eq!(da.len(), dz.len(), "activation backward: da vs dz length");
        match self {
            Activation::Identity => dz.copy_from_slice(da),
            Activation::Sigmoid => zip3(a, da, dz, |a, g| g * a * (1.0 - a)),
            Activation::Tanh => zip3(a, da, dz, |a, g| g * (1.0 - a * a)),
            Activation::Relu => zip3(z, da, dz, |z, g| if z > 0.0 { g } else { 0.0 }),
            Activation::LeakyRelu => {
                zip3(z, da, dz, |z, g| if z > 0.0 { g } else { LEAKY_SLOPE * g })
            }
            // For z <= 0, f'(z) = α e^z = a + α.
            Activation::Elu => {
                for ((dz, &g), (&z, &a)) in dz.iter_mut().zip(da).zip(z.iter().zip(a)) {
                    *dz = if z > 0.0 { g } else { g * (a + ELU_ALPHA) };
                }
            }
            // d/dz [z Φ(z)] = Φ(z) + z φ(z).
            Activation::Gelu => zip3(z, da, dz, |z, g| g * (std_normal_cdf(z) + z * std_normal_pdf(z))),
            Activation::Softmax => {
                for ((ar, gr), dr) in a.chunks_exact(cols).zip(da.chunks_exact(cols)).zip(dz.chunks_exact_mut(cols)) {
                    let dot: f32 = ar.iter().zip(gr).map(|(a, g)| a * g).sum();
                    for ((d, &a), &g) in dr.iter_mut().zip(ar).zip(gr) {
                        *d = a * (g - dot);
                    }
                }
            }
        }
    }

    /// Whether backward needs the pre-activation `z` (otherwise `a` suffices).
    pub fn is_rectifier(self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu | Activation::Elu | Activation::Gelu)
    }

    /// The name used on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Gelu => "gelu",
            Activation::Softmax => "softmax",
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[inline]
fn map(z: &[f32], a: &mut [f32], f: impl Fn(f32) -> f32) {
    for (a, &z) in a.iter_mut().zip(z) {
        *a = f(z);
    }
}

#[inline]
fn zip3(x: &[f32], g: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        *o = f(x, g);
    }
}

/// Logistic sigmoid in a form that never overflows.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Softmax of one row, shifted by its maximum so it never overflows.
pub fn softmax_row(z: &[f32], a: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (a, &z) in a.iter_mut().zip(z) {
        *a = (z - max).exp();
        sum += *a;
    }
    let inv = 1.0 / sum;
    for a in a.iter_mut() {
        *a *= inv;
    }
}

#[inline]
fn std_normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline]
fn std_normal_pdf(x: f32) -> f32 {
    // 1/sqrt(2π)
    0.398_942_3 * (-0.5 * x * x).exp()
}
