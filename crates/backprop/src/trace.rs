//! What a forward pass keeps for backpropagation.

use crate::kernels::Space;
use crate::layer::{Layer, Mode};
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
    /// Working memory of the layers ([`Layer::work_width`]), shared by all.
    pub(crate) work: Vec<f32>,
    /// Whether forward passes through this trace train or predict.
    pub(crate) mode: Mode,
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
        let work = layers.iter().map(|l| l.work_width()).max().unwrap_or(0);
        if self.work.len() < batch * work {
            self.work.resize(batch * work, 0.0);
        }
    }

    /// Sets whether the next forward passes train (with this seed for layers that
    /// draw random numbers, such as dropout) or predict (the default).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
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
