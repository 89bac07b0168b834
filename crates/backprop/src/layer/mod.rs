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
//! [`Periodic`] (`periodic.rs`) embeds each numeric input value as `relu(W_j [cos 2πc_j
//! x, sin 2πc_j x] + b_j)` (Gorishniy et al. 2022), with learned frequencies: a kind
//! with three tensors and no `Dense` fast path, written through the trait alone.
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
//! Saving a model writes each layer's [`LayerSpec`] (its kind and configuration) to
//! `model.json` and its tensors ([`Layer::tensors`], PyTorch's names and layouts) to
//! `model.safetensors`; a layer kind without a spec trains and predicts but is refused
//! by the model and checkpoint writers with an error naming it.
//!
//! # Images: NCHW
//! The image layers ([`Conv2d`], [`MaxPool2d`], [`AvgPool2d`], [`Flatten`]) see each
//! row of a batch as one image in PyTorch's `channels x height x width` order (NCHW
//! for the batch). Chosen over NHWC because (a) [`Flatten`] is then free and gives the
//! order PyTorch's `nn.Flatten` gives, so a dense layer after it has PyTorch's weight
//! layout, a saved model loads into `torch.nn` without permuting anything, and the
//! golden fixtures compare outputs element for element; (b) the convolution's cost is
//! its matrix product, which im2col makes layout-independent: the product writes
//! `channel x (image, position)`, which becomes NCHW by copying whole planes (see
//! `conv.rs` for why its im2col matrix is field-major). (An NHWC variant was not
//! built, so this choice is argued, not yet measured against one.)
//!
//! # Training and inference
//! [`Forward::mode`] says whether the pass trains ([`Mode::Train`], with a seed fixed
//! per step and layer, so that [`Dropout`]'s masks are random yet reproducible on any
//! thread count) or predicts ([`Mode::Infer`], the default of a [`crate::Trace`]).

use std::fmt;

mod conv;
mod dense;
mod dropout;
mod flatten;
mod periodic;
mod pool;
mod shift;
mod spec;

pub use conv::{Conv2d, Image};
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use periodic::Periodic;
pub use pool::{AvgPool2d, MaxPool2d, Pool};
pub use shift::RandomShift;
pub use spec::LayerSpec;

/// Whether a forward pass trains or predicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Prediction: every layer is deterministic ([`Dropout`] passes its input on).
    #[default]
    Infer,
    /// Training, with this step's and this layer's seed for layers that draw random
    /// numbers (the trainer derives it from the configured seed, the epoch, the step
    /// and the piece; the network mixes in the layer's index).
    Train {
        /// The seed of this step's random numbers.
        seed: u64,
    },
}

impl Mode {
    /// This mode for layer `i`: a training seed mixed with the index, so that two
    /// dropout layers draw different masks.
    pub fn for_layer(self, i: usize) -> Mode {
        match self {
            Mode::Infer => Mode::Infer,
            Mode::Train { seed } => Mode::Train {
                seed: mix(seed, i as u64),
            },
        }
    }
}

/// A 64-bit mix of two values (SplitMix64's finaliser over their combination), for
/// seeds that differ whenever either value does.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One kind of layer: its shape, its parameters' count, and its forward and backward
/// passes. See the module documentation.
pub trait Layer: std::any::Any + fmt::Debug + Send + Sync {
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

    /// Values per observation of working memory that [`Layer::forward`] and
    /// [`Layer::backward`] may use and leave in any state (0 by default): the network
    /// keeps one buffer for all layers, so a step allocates nothing.
    fn work_width(&self) -> usize {
        0
    }

    /// The layer's tensors in `model.safetensors`, in the order of its parameters:
    /// each a name suffix (`"weight"`, `"bias"`) and a shape whose product is its
    /// share of [`Layer::num_params`]. By default one flat `"weight"` when the layer
    /// has parameters, none otherwise.
    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self.num_params() {
            0 => Vec::new(),
            n => vec![("weight", vec![n])],
        }
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
    /// Working memory, at least `batch x work_width`, in any state.
    pub work: &'a mut [f32],
    /// Training or inference (see [`Mode`]).
    pub mode: Mode,
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
    /// Working memory, at least `batch x work_width`, in any state.
    pub work: &'a mut [f32],
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// Two layers with specs are equal when their specs are; layers without, when their
/// kinds and shapes are.
impl PartialEq for dyn Layer {
    fn eq(&self, other: &dyn Layer) -> bool {
        match (self.spec(), other.spec()) {
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
