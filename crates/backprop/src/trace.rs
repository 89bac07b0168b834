//! What a forward pass keeps for backpropagation.

use crate::kernels::Space;
use crate::layer::Layer;
use crate::matrix::Matrix;

/// What forward propagation keeps for backpropagation, plus the kernels' working
/// memory. Reused across steps so steady-state training allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Per layer, what its forward pass saved for its backward pass
    /// ([`Layer::saved_width`] per row: a `Dense` layer's pre-activation `z` where the
    /// activation's derivative needs it); empty elsewhere.
    pub(crate) saved: Vec<Matrix>,
    /// Outputs per layer (the last is the network's output).
    pub(crate) a: Vec<Matrix>,
    /// `dL/da` per layer, which a layer's backward may overwrite (a `Dense` layer
    /// writes `dL/dz` over it).
    pub(crate) da: Vec<Matrix>,
    /// Working memory of the fast paths (see `kernels`).
    pub(crate) space: Space,
}

impl Trace {
    /// Sizes the buffers for `batch` rows through `layers`.
    pub(crate) fn prepare(&mut self, layers: &[Box<dyn Layer>], batch: usize) {
        let n = layers.len();
        for v in [&mut self.saved, &mut self.a, &mut self.da] {
            v.resize_with(n, Matrix::default);
        }
        for (i, l) in layers.iter().enumerate() {
            let saved = l.saved_width();
            self.saved[i].resize(if saved > 0 { batch } else { 0 }, saved);
            self.a[i].resize(batch, l.outputs());
            self.da[i].resize(batch, l.outputs());
        }
    }

    /// The output of the last forward pass (`batch x outputs`).
    pub fn output(&self) -> &Matrix {
        self.a.last().expect("output() called before forward_train")
    }

    /// Activations of layer `i` from the last forward pass.
    pub fn activations(&self, i: usize) -> &Matrix {
        &self.a[i]
    }
}
