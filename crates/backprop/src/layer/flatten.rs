//! Flatten: an image's `channels x height x width` values as one row of features, in
//! that order (PyTorch's `nn.Flatten` of an NCHW batch). Rows are already stored so,
//! so forward and backward copy.

use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Image, Layer};

/// Marks where images end and feature rows begin: the values pass through unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flatten {
    /// The input image's shape.
    pub input: Image,
}

impl Layer for Flatten {
    /// `a = x`, seen as `batch x (c h w)`.
    fn forward(&self, p: Forward<'_>) {
        p.out.copy_from_slice(p.x);
    }

    /// `dx = dy`.
    fn backward(&self, p: Backward<'_>) {
        if let Some(dx) = p.dx {
            dx.copy_from_slice(p.d_out);
        }
    }

    fn kind(&self) -> &'static str {
        "flatten"
    }
    fn inputs(&self) -> usize {
        self.input.len()
    }
    fn outputs(&self) -> usize {
        self.input.len()
    }
    fn num_params(&self) -> usize {
        0
    }
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}
