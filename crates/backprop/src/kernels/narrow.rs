//! Layers with few inputs (the first layer of a tabular network: 8 features into 64
//! perceptrons), whose products are too thin for the multiply kernel.
//!
//! * Forward, [`Forward`]: `a = f(x Wᵀ + b)` in one pass. With so few inputs the
//!   multiply kernel spends more time storing its output than computing it (8
//!   multiply-adds per stored value for 8 inputs), and the bias and activation then take
//!   another pass. Here four rows' weighted sums stay in registers while their inputs are
//!   added in, and are stored once, activated (BENCHMARKS.md, D21). Each sum adds its
//!   terms in the kernel's order, one multiply-add at a time from zero, then the bias, so
//!   the results are the same bits as the kernel and the separate pass
//!   (`forward_matches_product_and_pass`).
//! * Backward, [`weight_gradient`]: the weight gradient `dzᵀ x` has rows `inputs` long,
//!   too short for the multiply kernel, which runs along the output's contiguous side
//!   and would pad every 8-wide row to 16; its transpose `xᵀ dz` has rows `outputs`
//!   long and is added in transposed (D12).

use multiversion::multiversion;

use super::gemm::gemm;
use super::WithFunction;
use crate::matrix::View;

/// Layers with at most this many inputs take [`Forward`].
pub(crate) const MAX_INPUTS: usize = 16;

/// Room for the transposed weight of the widest layer [`Forward`] takes.
pub(crate) const MAX_WEIGHTS: usize = MAX_INPUTS * 64;

/// Whether [`Forward`] takes a layer of `inputs` x `outputs` on `batch` rows: at most 16
/// inputs, 16, 32, 48 or 64 outputs, two rows or more, and a CPU with fused
/// multiply-add (which it needs to match the multiply kernel's rounding). The caller
/// also needs an element-wise activation whose derivative needs no `z`.
pub(crate) fn takes_forward(inputs: usize, outputs: usize, batch: usize) -> bool {
    inputs <= MAX_INPUTS
        && outputs.is_multiple_of(16)
        && (16..=64).contains(&outputs)
        && batch >= 2
        && fma()
}

/// Whether [`weight_gradient`] takes a layer of `inputs` x `outputs` on `batch` rows:
/// fewer inputs than one AVX-512 register holds, more outputs than inputs, and more
/// than one row.
pub(crate) fn takes_gradient(inputs: usize, outputs: usize, batch: usize) -> bool {
    inputs < 16 && outputs > inputs && batch > 1
}

/// Whether this CPU has fused multiply-add, which [`Forward`] needs to match the
/// multiply kernel's rounding (and to be fast).
fn fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Writes the weight `w` (`outputs x inputs`) transposed into `wt` (`inputs x outputs`).
pub(crate) fn transpose(w: &[f32], inputs: usize, outputs: usize, wt: &mut [f32]) {
    for (o, row) in w.chunks_exact(inputs).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            wt[i * outputs + o] = v;
        }
    }
}

/// `out = f(x wt + b)`, run with the activation's function `f`: `x` is `rows x k`,
/// `wt` the weight transposed (`k x N`, see [`transpose`]), `b` the bias (`N`).
pub(crate) struct Forward<'a> {
    pub x: &'a [f32],
    pub k: usize,
    pub wt: &'a [f32],
    pub b: &'a [f32],
    pub out: &'a mut [f32],
}

impl WithFunction for Forward<'_> {
    type Output = ();
    fn apply(self, f: impl Fn(f32) -> f32 + Copy) {
        match self.b.len() {
            16 => forward::<16>(self.x, self.k, self.wt, self.b, self.out, f),
            32 => forward::<32>(self.x, self.k, self.wt, self.b, self.out, f),
            48 => forward::<48>(self.x, self.k, self.wt, self.b, self.out, f),
            _ => forward::<64>(self.x, self.k, self.wt, self.b, self.out, f),
        }
    }
}

/// [`Forward`]'s loop, four rows at a time. Compiled for AVX-512 and AVX2 with FMA
/// (only called where FMA exists: `mul_add` is one instruction there).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn forward<const N: usize>(
    x: &[f32],
    k: usize,
    wt: &[f32],
    b: &[f32],
    out: &mut [f32],
    f: impl Fn(f32) -> f32,
) {
    let b: &[f32; N] = b.try_into().expect("narrow forward: bias of N");
    assert_eq!(wt.len(), k * N, "narrow forward: weight vs {k}x{N}");
    assert_eq!(
        x.len() / k * N,
        out.len(),
        "narrow forward: rows of x vs out"
    );
    let one = |x: &[f32], out: &mut [f32]| {
        let mut acc = [0.0f32; N];
        for (&s, w) in x.iter().zip(wt.chunks_exact(N)) {
            for (a, &w) in acc.iter_mut().zip(w) {
                *a = s.mul_add(w, *a);
            }
        }
        for ((o, &a), &b) in out.iter_mut().zip(&acc).zip(b) {
            *o = f(a + b);
        }
    };
    // Four rows at a time: four independent chains of multiply-adds per register
    // column, enough to keep both multiply-add units busy.
    let mut quads = x.chunks_exact(4 * k).zip(out.chunks_exact_mut(4 * N));
    for (x4, out4) in &mut quads {
        let mut acc = [[0.0f32; N]; 4];
        for (i, w) in wt.chunks_exact(N).enumerate() {
            let s = [x4[i], x4[k + i], x4[2 * k + i], x4[3 * k + i]];
            for (acc, s) in acc.iter_mut().zip(s) {
                for (a, &w) in acc.iter_mut().zip(w) {
                    *a = s.mul_add(w, *a);
                }
            }
        }
        for (o, acc) in out4.chunks_exact_mut(N).zip(&acc) {
            for ((o, &a), &b) in o.iter_mut().zip(acc).zip(b) {
                *o = f(a + b);
            }
        }
    }
    let done = x.len() / k / 4 * 4;
    for (x, out) in x[done * k..]
        .chunks_exact(k)
        .zip(out[done * N..].chunks_exact_mut(N))
    {
        one(x, out);
    }
}

/// The weight gradient `gw (+)= dzᵀ x` of a layer [`takes_gradient`] takes, through its
/// transpose `xᵀ dz` computed in `scratch` (working memory kept between calls): `x` is
/// `batch x inputs`, `dz` is `batch x outputs`, `gw` is `outputs x inputs`.
pub(crate) fn weight_gradient(
    x: View<'_>,
    dz: View<'_>,
    gw: &mut [f32],
    accumulate: bool,
    scratch: &mut Vec<f32>,
) {
    let (inputs, outputs) = (x.cols, dz.cols);
    scratch.resize(inputs * outputs, 0.0);
    gemm(1.0, x.t(), dz, 0.0, scratch);
    for (i, row) in scratch.chunks_exact(outputs).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            let g = &mut gw[o * inputs + i];
            *g = if accumulate { *g + v } else { v };
        }
    }
}
