//! Layers: what one step of a network computes, forward and backward.
//!
//! A layer kind implements [`Layer`]: it knows its shape and how many parameters it has
//! (they live in the network's one flat parameter buffer, so the optimizer updates every
//! kind alike), a forward pass that writes its output and keeps what its backward pass
//! needs, and a backward pass that, given the gradient of the loss with respect to its
//! output, writes the gradient with respect to its parameters and to its input. A
//! [`crate::Network`] is a sequence of layers of any kinds, and the trainer and the
//! optimizers see only that sequence and the flat buffers.
//!
//! [`Dense`] (`dense.rs`) is the fully connected layer and the reference to read first:
//! its forward and backward fit on one screen, with the math of each line.
//!
//! # A trait, not an enum
//! An enum of layer kinds would let the compiler check that every match handles every
//! kind, and would serialise with a derive. We chose a trait because the set of kinds is
//! meant to stay open: dropout, an embedding of numeric features, an ensemble layer or
//! a convolution can be written in their own file (or in a user's crate, or a test:
//! `tests/layers.rs` trains a per-feature scaling layer through `Trainer::fit`) without
//! touching the network, the trainer, the optimizers or any other kind. What an enum
//! would give, dispatch on the kind, is needed in one place only: the fast paths, which
//! look for [`Dense`] layers through [`Layer::as_dense`] (see `dispatch`). A trait object
//! costs one indirect call per layer per step, nothing next to a layer's products.
//! Saving a model writes the [`Dense`] layers' shapes; a network with other kinds trains
//! and predicts but is refused by the model and checkpoint writers with an error.

use std::fmt;

mod dense;

pub use dense::Dense;

/// One kind of layer: its shape, its parameters' count, and its forward and backward
/// passes. See the module documentation.
pub trait Layer: fmt::Debug + Send + Sync {
    /// A short name of the kind, for messages (`"dense"`).
    fn kind(&self) -> &'static str;

    /// Inputs per observation.
    fn inputs(&self) -> usize;

    /// Outputs per observation.
    fn outputs(&self) -> usize;

    /// Number of parameters (this layer's slice of the network's buffer).
    fn num_params(&self) -> usize;

    /// Values per observation that [`Layer::forward`] keeps for [`Layer::backward`]
    /// besides the layer's input and output (0 by default).
    fn saved_width(&self) -> usize {
        0
    }

    /// Forward: writes the output of the batch into `pass.out` and what backward needs
    /// into `pass.saved`.
    fn forward(&self, pass: Forward<'_>);

    /// Backward: from `pass.d_out = dL/d(output)`, writes (or, when `pass.accumulate`,
    /// adds) `dL/dθ` into `pass.grads` and writes `dL/d(input)` into `pass.dx` when it
    /// is given (the first layer of a network has no one to pass it to).
    fn backward(&self, pass: Backward<'_>);

    /// A boxed copy (a [`crate::Network`] is `Clone`).
    fn boxed_clone(&self) -> Box<dyn Layer>;

    /// This layer as a [`Dense`] layer, if it is one.
    fn as_dense(&self) -> Option<&Dense> {
        None
    }
}

/// The arguments of [`Layer::forward`] for a batch of `batch` rows.
#[derive(Debug)]
pub struct Forward<'a> {
    /// This layer's parameters.
    pub params: &'a [f32],
    /// The input, `batch x inputs`, row-major.
    pub x: &'a [f32],
    /// Rows in the batch.
    pub batch: usize,
    /// The output, `batch x outputs` (only written).
    pub out: &'a mut [f32],
    /// What backward needs besides input and output, `batch x saved_width` (only
    /// written).
    pub saved: &'a mut [f32],
}

/// The arguments of [`Layer::backward`] for the batch of the last forward pass.
#[derive(Debug)]
pub struct Backward<'a> {
    /// This layer's parameters.
    pub params: &'a [f32],
    /// The forward pass's input, `batch x inputs`.
    pub x: &'a [f32],
    /// Rows in the batch.
    pub batch: usize,
    /// The forward pass's output, `batch x outputs`.
    pub out: &'a [f32],
    /// What the forward pass saved, `batch x saved_width`.
    pub saved: &'a [f32],
    /// `dL/d(output)`, `batch x outputs`; the layer may overwrite it (it is working
    /// memory after this call).
    pub d_out: &'a mut [f32],
    /// This layer's slice of `dL/dθ`: written, or added to when `accumulate`.
    pub grads: &'a mut [f32],
    /// `dL/d(input)`, `batch x inputs`, written when given.
    pub dx: Option<&'a mut [f32]>,
    /// Whether to add to `grads` (the gradient of a batch summed over its pieces).
    pub accumulate: bool,
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// Two [`Dense`] layers are equal when their shapes and activations are; layers of
/// other kinds when their kinds and shapes are.
impl PartialEq for dyn Layer {
    fn eq(&self, other: &dyn Layer) -> bool {
        match (self.as_dense(), other.as_dense()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => {
                self.kind() == other.kind()
                    && self.inputs() == other.inputs()
                    && self.outputs() == other.outputs()
                    && self.num_params() == other.num_params()
            }
            _ => false,
        }
    }
}
