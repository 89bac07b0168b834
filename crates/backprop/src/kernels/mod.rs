//! The fast paths behind the layers: every piece of code that exists only for speed,
//! and every `unsafe` block of the crate.
//!
//! The reference path (`layer::Dense`, an activation's `forward` and `backward`) says
//! what is computed; the kernels here compute the same numbers faster on the shapes
//! where that pays. They are chosen at one place, `dispatch` (per layer, or per pair of
//! layers where two fuse), by shape alone, never by thread count or machine load, so
//! the same seed gives the same model everywhere. Each is tested against the reference
//! path (in `dispatch`'s tests) on the shapes at its edges and on shapes where it must
//! not be chosen.
//!
//! | kernel | what it speeds up | same bits as the reference? |
//! |---|---|---|
//! | [`gemm`] | every matrix product (`faer`, our threading, thin-shape loops, AVX dots) | it *is* the reference product |
//! | `elementwise` | bias + activation, derivative + bias gradient, bias gradient (AVX-512/AVX2 builds) | yes |
//! | `narrow` | layers of at most 16 inputs: one-pass forward, transposed weight gradient | forward yes; gradient to rounding |
//! | `head` | a layer and a one-output layer above it, fused forward and backward | yes |
//! | `patterns` | the input gradient of a ReLU layer below a one-output layer, from a table | to rounding |
//! | `columns` | the first layer's products without input columns zero in the whole batch | to rounding |
//!
//! Why each is shaped as it is, with the measurements, is in BENCHMARKS.md's decision
//! records (D-numbers in each module's docs).
//!
//! `unsafe` is used in `gemm` only: handing `faer` raw views whose extents are checked,
//! giving threads disjoint blocks of one output, and the AVX dot products. The
//! `multiversion` builds (AVX-512, AVX2 alongside the baseline) expand to `unsafe` calls
//! guarded by run-time CPU detection; they too live only in this module.

pub(crate) mod columns;
pub(crate) mod elementwise;
mod gemm;
pub(crate) mod head;
pub(crate) mod narrow;
pub(crate) mod patterns;

pub use gemm::gemm;
pub(crate) use gemm::{dots, PARALLEL_MIN_FLOPS};

/// A loop over a batch to run with an activation's element function:
/// [`Activation::with_function`] calls `apply` with that function as a concrete closure,
/// so the loop is compiled, inlined and vectorised for each activation.
pub(crate) trait WithFunction {
    /// What the loop returns.
    type Output;
    /// Runs the loop with `f`.
    fn apply(self, f: impl Fn(f32) -> f32 + Copy) -> Self::Output;
}

/// A loop over a batch to run with an activation's derivative (see
/// [`Activation::with_derivative`]).
pub(crate) trait WithDerivative {
    /// What the loop returns.
    type Output;
    /// Runs the loop with `d(v, g) = g f'(z)`.
    fn apply(self, d: impl Fn(f32, f32) -> f32 + Copy) -> Self::Output;
}

/// Working memory of the kernels, kept in a `Trace` and reused from step to step so
/// that steady-state training allocates nothing.
#[derive(Clone, Debug, Default)]
pub(crate) struct Space {
    /// The transposed weight gradient of a narrow layer (`narrow::weight_gradient`).
    pub scratch: Vec<f32>,
    /// The table of a ReLU layer's input gradient below a one-output layer.
    pub patterns: patterns::PatternSpace,
    /// The first layer's input columns that are not zero throughout the batch, when the
    /// forward pass left the others out.
    pub columns: columns::InputColumns,
}
