//! The fully connected layer: `y = f(x Wᵀ + b)`.

use multiversion::multiversion;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::matrix::{gemm, View};

/// Shape and activation of one fully connected layer. Its parameters live in the
/// network's flat parameter buffer: the weight (`outputs x inputs`, PyTorch's
/// `nn.Linear` layout) followed by the bias (`outputs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dense {
    /// Inputs per observation (`fan_in`).
    pub inputs: usize,
    /// Perceptrons in the layer (`fan_out`).
    pub outputs: usize,
    /// What each perceptron applies to its weighted sum.
    pub activation: Activation,
}

impl Dense {
    /// Number of parameters: weights plus biases.
    pub fn num_params(&self) -> usize {
        self.outputs * self.inputs + self.outputs
    }

    /// Splits this layer's slice of the parameter buffer into (weight, bias).
    pub fn split<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        params.split_at(self.outputs * self.inputs)
    }

    /// Splits this layer's slice of a parameter-shaped buffer mutably.
    pub fn split_mut<'a>(&self, params: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        params.split_at_mut(self.outputs * self.inputs)
    }

    /// Forward: `z = x Wᵀ + b` then `a = f(z)`, for `x` of `batch x inputs`.
    pub fn forward(&self, params: &[f32], x: &[f32], batch: usize, z: &mut [f32], a: &mut [f32]) {
        self.affine(params, x, batch, z);
        self.activation.forward(z, a, self.outputs);
    }

    /// Forward without keeping `z`: `a = f(x Wᵀ + b)`, the bias and activation applied
    /// in one pass after the product. Enough for backward unless
    /// [`Activation::needs_z`].
    pub fn forward_in_place(&self, params: &[f32], x: &[f32], batch: usize, a: &mut [f32]) {
        self.product(params, x, batch, a);
        let (_, b) = self.split(params);
        self.activation.forward_bias_in_place(a, b, self.outputs);
    }

    /// The affine part alone: `z = x Wᵀ + b`.
    pub fn affine(&self, params: &[f32], x: &[f32], batch: usize, z: &mut [f32]) {
        self.product(params, x, batch, z);
        let (_, b) = self.split(params);
        Activation::Identity.forward_bias_in_place(z, b, self.outputs);
    }

    /// `out = x Wᵀ`, without the bias.
    fn product(&self, params: &[f32], x: &[f32], batch: usize, out: &mut [f32]) {
        let (w, _) = self.split(params);
        gemm(
            1.0,
            View::new(x, batch, self.inputs),
            View::new(w, self.outputs, self.inputs).t(),
            0.0,
            out,
        );
    }

    /// Backward through the affine part, given `dz = dL/dz` (`batch x outputs`):
    /// `dW = dzᵀ x`, `db = Σ_rows dz` (written into `grads`, this layer's slice) and,
    /// when `dx` is given, `dx = dz W`.
    pub fn backward_affine(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        dz: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        self.backward_affine_add(params, x, batch, dz, grads, dx, false);
    }

    /// [`Dense::backward_affine`], adding `dW` and `db` to what `grads` holds when
    /// `accumulate` (to sum the gradients of several pieces of one batch).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_affine_add(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        dz: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
        accumulate: bool,
    ) {
        let (w, _) = self.split(params);
        let (gw, gb) = self.split_mut(grads);
        let dzv = View::new(dz, batch, self.outputs);
        let beta = if accumulate { 1.0 } else { 0.0 };
        gemm(1.0, dzv.t(), View::new(x, batch, self.inputs), beta, gw);
        if !accumulate {
            gb.fill(0.0);
        }
        add_rows(gb, dz);
        if let Some(dx) = dx {
            gemm(1.0, dzv, View::new(w, self.outputs, self.inputs), 0.0, dx);
        }
    }
}

/// `g ← g + Σ rows of dz` (`dz` row-major with `g.len()` columns): the bias gradient.
/// Compiled for AVX-512 and AVX2 too (see `activation::map_bias`); each column's sum
/// runs over the rows in order in every version.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn add_rows(g: &mut [f32], dz: &[f32]) {
    for row in dz.chunks_exact(g.len()) {
        for (g, &d) in g.iter_mut().zip(row) {
            *g += d;
        }
    }
}
