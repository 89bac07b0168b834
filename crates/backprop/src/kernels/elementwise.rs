//! Element-wise loops over a batch: a layer's bias and activation (`x ← f(x + b)`), the
//! activation's derivative fused with the bias gradient, and the bias gradient alone.
//! Each is generic over the element function, which `Activation::with_function` and
//! `Activation::with_derivative` pass as a concrete closure, and compiled for AVX-512
//! and AVX2 as well as the baseline; every version adds in the same order, so the
//! choice changes only the speed.

use multiversion::multiversion;

use super::{WithDerivative, WithFunction};

/// `x ← f(x + b)` row by row ([`map_bias`]).
pub(crate) struct MapBias<'a> {
    pub x: &'a mut [f32],
    pub b: &'a [f32],
    pub cols: usize,
}

impl WithFunction for MapBias<'_> {
    type Output = ();
    fn apply(self, f: impl Fn(f32) -> f32 + Copy) {
        map_bias(self.x, self.b, self.cols, f)
    }
}

/// `g ← d(v, g)` and, when given, `gb ← gb + Σ rows of g` ([`update`]).
pub(crate) struct Update<'a> {
    pub v: &'a [f32],
    pub g: &'a mut [f32],
    pub gb: Option<&'a mut [f32]>,
    pub cols: usize,
}

impl WithDerivative for Update<'_> {
    type Output = ();
    fn apply(self, d: impl Fn(f32, f32) -> f32 + Copy) {
        update(self.v, self.g, self.gb, self.cols, d)
    }
}

/// `x ← f(x + b)` for every row of `x` (`b` empty: `x ← f(x)`).
///
/// The crate compiles for baseline x86-64 (SSE2), where the compiler vectorises loops
/// 4 wide (see BENCHMARKS.md, D8). The hot element-wise loops (this one, [`update`], the bias gradient and the
/// one-wide matrix products) are therefore also compiled for AVX-512 and AVX2 by the
/// `multiversion` crate, which picks the widest the CPU has at run time, as the
/// matrix-multiply crate does for its kernels. None of them reorders a floating-point
/// sum, and Rust never fuses a multiply and an add by itself, so every version gives
/// the same bits: the choice changes only the speed.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn map_bias(x: &mut [f32], b: &[f32], cols: usize, f: impl Fn(f32) -> f32) {
    if b.is_empty() {
        for x in x.iter_mut() {
            *x = f(*x);
        }
        return;
    }
    if let [b] = *b {
        // One column (a regression output): rows of one would not vectorise.
        for x in x.iter_mut() {
            *x = f(*x + b);
        }
        return;
    }
    for row in x.chunks_exact_mut(cols) {
        for (x, &b) in row.iter_mut().zip(b) {
            *x = f(*x + b);
        }
    }
}

/// `g ← d(v, g)` element by element and, when `gb` is given, `gb ← gb + Σ rows of g`
/// in the same pass (compiled for AVX-512 and AVX2 too, see [`map_bias`]).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn update(
    v: &[f32],
    g: &mut [f32],
    gb: Option<&mut [f32]>,
    cols: usize,
    d: impl Fn(f32, f32) -> f32,
) {
    match gb {
        None => {
            for (g, &v) in g.iter_mut().zip(v) {
                *g = d(v, *g);
            }
        }
        // Narrow layers' bias gradient stays in registers for the whole batch.
        Some(gb) => match cols {
            16 => update_fixed::<16>(v, g, gb, &d),
            32 => update_fixed::<32>(v, g, gb, &d),
            48 => update_fixed::<48>(v, g, gb, &d),
            64 => update_fixed::<64>(v, g, gb, &d),
            _ => update_rows(v, g, gb, &d),
        },
    }
}

/// [`update_rows`] with the bias gradient in a local array of `N`, which the compiler
/// keeps in registers.
#[inline(always)]
fn update_fixed<const N: usize>(
    v: &[f32],
    g: &mut [f32],
    gb: &mut [f32],
    d: &impl Fn(f32, f32) -> f32,
) {
    let mut local: [f32; N] = (&*gb).try_into().expect("bias gradient of N");
    update_rows(v, g, &mut local, d);
    gb.copy_from_slice(&local);
}

/// `g ← d(v, g)` and `gb ← gb + Σ rows of g`, row by row.
#[inline(always)]
fn update_rows(v: &[f32], g: &mut [f32], gb: &mut [f32], d: &impl Fn(f32, f32) -> f32) {
    let cols = gb.len();
    for (gr, vr) in g.chunks_exact_mut(cols).zip(v.chunks_exact(cols)) {
        for ((g, &v), b) in gr.iter_mut().zip(vr).zip(gb.iter_mut()) {
            *g = d(v, *g);
            *b += *g;
        }
    }
}

/// `g ← g + Σ rows of dz` (`dz` row-major with `g.len()` columns): the bias gradient.
/// Compiled for AVX-512 and AVX2 too (see [`map_bias`]); each column's sum runs over
/// the rows in order in every version.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
pub(crate) fn add_rows(g: &mut [f32], dz: &[f32]) {
    for row in dz.chunks_exact(g.len()) {
        for (g, &d) in g.iter_mut().zip(row) {
            *g += d;
        }
    }
}
