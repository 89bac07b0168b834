//! The fully connected layer, `a = f(x Wᵀ + b)`: the reference every fast path in
//! `kernels` is tested against.

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Layer};
use crate::activation::Activation;
use crate::kernels::gemm;
use crate::matrix::View;

/// A fully connected layer: every output (perceptron) applies its activation to a
/// weighted sum of all inputs plus a bias. Its parameters, in the network's flat
/// buffer: the weight `W` (`outputs x inputs`, row-major, PyTorch's `nn.Linear` layout)
/// followed by the bias `b` (`outputs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dense {
    /// Inputs per observation (`fan_in`).
    pub inputs: usize,
    /// Perceptrons in the layer (`fan_out`).
    pub outputs: usize,
    /// What each perceptron applies to its weighted sum.
    pub activation: Activation,
}

impl Layer for Dense {
    /// For a batch `x` (`batch x inputs`): `z = x Wᵀ + b`, `a = f(z)` (`batch x
    /// outputs`). Keeps `z` only when the activation's derivative needs it
    /// ([`Activation::needs_z`]); every other derivative is a function of `a`.
    fn forward(&self, p: Forward<'_>) {
        let (w, b) = self.split(p.params);
        let (k, n) = (self.inputs, self.outputs);
        // x Wᵀ                                        (batch x outputs)
        gemm(
            1.0,
            View::new(p.x, p.batch, k),
            View::new(w, n, k).t(),
            0.0,
            p.out,
        );
        // z = x Wᵀ + b, a = f(z)
        self.bias_and_activation(b, p.out, p.saved);
    }

    /// From `dy = dL/da`: `dz = dy ⊙ f'(z)`, then the three gradients of `z = x Wᵀ + b`.
    fn backward(&self, p: Backward<'_>) {
        let (w, _) = self.split(p.params);
        let (gw, gb) = self.split_mut(p.grads);
        let (k, n) = (self.inputs, self.outputs);
        if !p.accumulate {
            gb.fill(0.0);
        }
        // dz = dy ⊙ f'(z) (overwriting dy), and db (+)= Σ_rows dz, in one pass
        self.activation
            .backward_bias_in_place(p.saved, p.out, p.d_out, gb, n);
        let dz = View::new(p.d_out, p.batch, n);
        // dW (+)= dzᵀ x                               (outputs x inputs)
        let beta = if p.accumulate { 1.0 } else { 0.0 };
        gemm(1.0, dz.t(), View::new(p.x, p.batch, k), beta, gw);
        // dx = dz W                                   (batch x inputs)
        if let Some(dx) = p.dx {
            gemm(1.0, dz, View::new(w, n, k), 0.0, dx);
        }
    }

    fn kind(&self) -> &'static str {
        "dense"
    }

    fn inputs(&self) -> usize {
        self.inputs
    }

    fn outputs(&self) -> usize {
        self.outputs
    }

    fn num_params(&self) -> usize {
        Dense::num_params(self)
    }

    fn saved_width(&self) -> usize {
        if self.activation.needs_z() {
            self.outputs
        } else {
            0
        }
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        let (i, o) = (self.inputs, self.outputs);
        vec![("weight", vec![o, i]), ("bias", vec![o])]
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }

    fn as_dense(&self) -> Option<&Dense> {
        Some(self)
    }
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

    /// Given `x Wᵀ` in `out`, `a = f(x Wᵀ + b)` in its place, and `z = x Wᵀ + b` in
    /// `saved` when the activation needs it. Without `z` the bias and activation take
    /// one pass over the batch.
    pub(crate) fn bias_and_activation(&self, b: &[f32], out: &mut [f32], saved: &mut [f32]) {
        let n = self.outputs;
        if self.activation.needs_z() {
            Activation::Identity.forward_bias_in_place(out, b, n);
            saved.copy_from_slice(out);
            self.activation.forward_bias_in_place(out, &[], n);
        } else {
            self.activation.forward_bias_in_place(out, b, n);
        }
    }

    /// The affine part alone: `z = x Wᵀ + b`.
    pub fn affine(&self, params: &[f32], x: &[f32], batch: usize, z: &mut [f32]) {
        let (w, b) = self.split(params);
        let (k, n) = (self.inputs, self.outputs);
        gemm(1.0, View::new(x, batch, k), View::new(w, n, k).t(), 0.0, z);
        Activation::Identity.forward_bias_in_place(z, b, n);
    }
}
