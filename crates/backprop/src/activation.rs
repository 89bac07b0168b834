//! Activation functions: what each perceptron applies to its weighted sum.

use serde::{Deserialize, Serialize};

use crate::kernels::elementwise::{add_rows, MapBias, Update};
use crate::kernels::{WithDerivative, WithFunction};

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
    /// Every activation, in the order declared.
    pub const ALL: [Activation; 8] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Gelu,
        Activation::Softmax,
    ];

    /// Applies the activation: `a = f(z)`; `cols` is the number of units per row.
    pub fn forward(self, z: &[f32], a: &mut [f32], cols: usize) {
        assert_eq!(z.len(), a.len(), "activation forward: z vs a length");
        a.copy_from_slice(z);
        self.forward_bias_in_place(a, &[], cols);
    }

    /// The fused tail of a layer's forward pass: `x ← f(x + b)` row by row, with `b`
    /// the bias (`cols` long), or nothing added when `b` is empty. One pass over the
    /// batch instead of one for the bias and one for the activation.
    pub fn forward_bias_in_place(self, x: &mut [f32], b: &[f32], cols: usize) {
        assert!(
            b.is_empty() || b.len() == cols,
            "activation forward: bias length vs {cols} columns"
        );
        if self == Activation::Softmax {
            Activation::Identity.with_function(MapBias {
                x: &mut *x,
                b,
                cols,
            });
            for row in x.chunks_exact_mut(cols) {
                softmax_row_in_place(row);
            }
        } else {
            self.with_function(MapBias { x, b, cols });
        }
    }

    /// Back-propagates through the activation: `dz = da ⊙ f'(z)` (softmax: the row
    /// Jacobian, `dz_i = a_i (da_i - Σ_j da_j a_j)`).
    pub fn backward(self, z: &[f32], a: &[f32], da: &[f32], dz: &mut [f32], cols: usize) {
        assert_eq!(da.len(), dz.len(), "activation backward: da vs dz length");
        dz.copy_from_slice(da);
        self.backward_in_place(z, a, dz, cols);
    }

    /// [`Activation::backward`] overwriting `da` with `dz`. `z` is read only when
    /// [`Activation::needs_z`] (it may be empty otherwise).
    pub fn backward_in_place(self, z: &[f32], a: &[f32], g: &mut [f32], cols: usize) {
        self.backward_with(z, a, g, None, cols);
    }

    /// [`Activation::backward_in_place`] fused with the bias gradient: `g ← dL/dz` and
    /// `gb ← gb + Σ_rows dL/dz` (`gb` is `cols` long) in one pass over the batch instead
    /// of two. Each column's sum runs over the rows in order, as a separate pass would.
    pub fn backward_bias_in_place(
        self,
        z: &[f32],
        a: &[f32],
        g: &mut [f32],
        gb: &mut [f32],
        cols: usize,
    ) {
        assert_eq!(gb.len(), cols, "activation backward: bias gradient length");
        self.backward_with(z, a, g, Some(gb), cols);
    }

    fn backward_with(
        self,
        z: &[f32],
        a: &[f32],
        g: &mut [f32],
        gb: Option<&mut [f32]>,
        cols: usize,
    ) {
        assert_eq!(a.len(), g.len(), "activation backward: a vs da length");
        match self {
            Activation::Identity => {
                if let Some(gb) = gb {
                    add_rows(gb, g);
                }
            }
            Activation::Softmax => {
                for (ar, gr) in a.chunks_exact(cols).zip(g.chunks_exact_mut(cols)) {
                    let dot: f32 = ar.iter().zip(gr.iter()).map(|(a, g)| a * g).sum();
                    for (g, &a) in gr.iter_mut().zip(ar) {
                        *g = a * (*g - dot);
                    }
                }
                if let Some(gb) = gb {
                    add_rows(gb, g);
                }
            }
            _ => {
                let v = if self.needs_z() {
                    assert_eq!(z.len(), g.len(), "activation backward: {self} needs z");
                    z
                } else {
                    a
                };
                self.with_derivative(Update { v, g, gb, cols });
            }
        }
    }

    /// Runs `k` with this activation's element function `f`, so that `k`'s loop is
    /// compiled for (and inlines) that function; `None` for softmax, which is row-wise.
    pub(crate) fn with_function<K: WithFunction>(self, k: K) -> Option<K::Output> {
        Some(match self {
            Activation::Identity => k.apply(|x| x),
            Activation::Sigmoid => k.apply(sigmoid),
            Activation::Tanh => k.apply(f32::tanh),
            Activation::Relu => k.apply(|x| if x > 0.0 { x } else { 0.0 }),
            Activation::LeakyRelu => k.apply(|x| if x > 0.0 { x } else { LEAKY_SLOPE * x }),
            Activation::Elu => k.apply(|x| if x > 0.0 { x } else { ELU_ALPHA * x.exp_m1() }),
            Activation::Gelu => k.apply(|x| x * std_normal_cdf(x)),
            Activation::Softmax => return None,
        })
    }

    /// Runs `k` with this activation's derivative as `d(v, g) = g f'(z)`, where `v` is
    /// the output `a`, or `z` when [`Activation::needs_z`]; `None` for softmax.
    pub(crate) fn with_derivative<K: WithDerivative>(self, k: K) -> Option<K::Output> {
        Some(match self {
            Activation::Identity => k.apply(|_, g| g),
            Activation::Sigmoid => k.apply(|a, g| g * a * (1.0 - a)),
            Activation::Tanh => k.apply(|a, g| g * (1.0 - a * a)),
            // a > 0 exactly when z > 0, for ReLU, leaky ReLU and ELU alike.
            Activation::Relu => k.apply(|a, g| if a > 0.0 { g } else { 0.0 }),
            Activation::LeakyRelu => k.apply(|a, g| if a > 0.0 { g } else { LEAKY_SLOPE * g }),
            // For z <= 0, f'(z) = α e^z = a + α.
            Activation::Elu => k.apply(|a, g| if a > 0.0 { g } else { g * (a + ELU_ALPHA) }),
            // d/dz [z Φ(z)] = Φ(z) + z φ(z).
            Activation::Gelu => k.apply(|z, g| g * (std_normal_cdf(z) + z * std_normal_pdf(z))),
            Activation::Softmax => return None,
        })
    }

    /// Whether backward needs the pre-activation `z`. Every other derivative is a
    /// function of the output `a`, so a layer can compute `a` in place and keep no `z`.
    pub fn needs_z(self) -> bool {
        self == Activation::Gelu
    }

    /// Whether this is one of the ReLU family (He initialisation suits them).
    pub fn is_rectifier(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::LeakyRelu | Activation::Elu | Activation::Gelu
        )
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
    a.copy_from_slice(z);
    softmax_row_in_place(a);
}

fn softmax_row_in_place(a: &mut [f32]) {
    let max = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for a in a.iter_mut() {
        *a = (*a - max).exp();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused derivative + bias gradient gives the same bits as the two passes it
    /// replaces, overwriting and adding to a bias gradient that already holds values,
    /// for a width kept in memory (19) and widths kept in registers (16 and 64).
    #[test]
    fn fused_bias_gradient_matches_two_passes() {
        for (rows, cols) in [(37, 19), (37, 16), (9, 64)] {
            let z: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
                .collect();
            let da: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 104_729) % 997) as f32 / 500.0 - 1.0)
                .collect();
            for act in Activation::ALL {
                let mut a = vec![0.0; z.len()];
                act.forward(&z, &mut a, cols);
                let start: Vec<f32> = (0..cols).map(|j| j as f32 * 0.25 - 1.0).collect();

                let mut want = da.clone();
                act.backward_in_place(&z, &a, &mut want, cols);
                let mut want_gb = start.clone();
                add_rows(&mut want_gb, &want);

                let mut got = da.clone();
                let mut got_gb = start.clone();
                act.backward_bias_in_place(&z, &a, &mut got, &mut got_gb, cols);
                assert_eq!(got, want, "{act} x {cols}: dz");
                assert_eq!(got_gb, want_gb, "{act} x {cols}: bias gradient");
                assert_ne!(
                    got_gb, start,
                    "{act} x {cols}: the bias gradient was not added to"
                );
            }
        }
    }
}
