//! A layer followed by a layer with a single output (the output of every regression
//! network, for one), computed in fused passes.
//!
//! The single-output layer's products are one dot product per row forward and, backward,
//! a sum of rows (its weight gradient) and an outer product (the gradient it passes
//! down). Computed on their own, each is one more pass over the layer below's
//! activations, which for a large batch come from the second-level cache. Fused into
//! the layer below's own passes (the bias and activation forward, the activation's
//! derivative and bias gradient backward), they read rows already in the first-level
//! cache. Every sum keeps the order of the separate products (`gemm`'s thin-shape
//! loops), so the results are the same bits. See BENCHMARKS.md, D13, D17, D18, D24.

use multiversion::multiversion;

use super::{dots, WithDerivative, WithFunction};
use crate::matrix::View;

/// Forward: `x ← f(x + b)` row by row (the layer below), and `out_r = x_r · w` (the
/// single-output layer's product, before its bias), [`FORWARD_ROWS`] rows at a time.
pub(crate) struct Forward<'a> {
    pub x: &'a mut [f32],
    pub b: &'a [f32],
    pub w: &'a [f32],
    pub out: &'a mut [f32],
}

impl WithFunction for Forward<'_> {
    type Output = ();
    fn apply(self, f: impl Fn(f32) -> f32 + Copy) {
        forward(self.x, self.b, self.w, self.out, f)
    }
}

/// Rows activated before their dot products are taken (16 KB at 64 wide, in the
/// first-level cache). Reading rows back right after they were stored, as with
/// eight, waits on the stores, and 128 rows overflow the cache (BENCHMARKS.md, D24).
const FORWARD_ROWS: usize = 64;

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn forward(x: &mut [f32], b: &[f32], w: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    let cols = b.len();
    assert_eq!(w.len(), cols, "head forward: weights vs columns");
    assert_eq!(x.len(), out.len() * cols, "head forward: rows vs outputs");
    for (xs, outs) in x
        .chunks_mut(FORWARD_ROWS * cols)
        .zip(out.chunks_mut(FORWARD_ROWS))
    {
        for row in xs.chunks_exact_mut(cols) {
            for (x, &b) in row.iter_mut().zip(b) {
                *x = f(*x + b);
            }
        }
        dots(1.0, View::new(xs, outs.len(), cols), w, 0.0, outs);
    }
}

/// Backward, given `s = dL/dz` of the single-output layer (one per row) and its weights
/// `w`: its weight gradient `gw (+)= Σ_r s_r a_r` (`a` the layer below's output, its
/// input), and for the layer below `g_r = d(v_r, s_r w)` (the derivative applied to the
/// gradient passed down, the outer product `s wᵀ`, with `v = a`) and its bias gradient
/// `gb += Σ_r g_r`; with `head_bias`, also the single-output layer's own bias gradient
/// `+= Σ_r s_r` (an identity output, whose `dz` is `s`). `g` is only written.
pub(crate) struct Backward<'a> {
    pub a: &'a [f32],
    pub s: &'a [f32],
    pub w: &'a [f32],
    pub g: &'a mut [f32],
    pub gb: &'a mut [f32],
    pub gw: &'a mut [f32],
    pub head_bias: Option<&'a mut f32>,
    pub accumulate: bool,
}

impl WithDerivative for Backward<'_> {
    type Output = ();
    fn apply(self, d: impl Fn(f32, f32) -> f32 + Copy) {
        backward(self, d)
    }
}

/// Layers 16 to 64 wide (those of tabular networks) keep the two gradients they sum
/// over the rows, and the weights, in registers for the whole batch. (Loaded and
/// stored for every four rows instead, each sum waited on memory.) The additions are
/// the same either way.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn backward(k: Backward<'_>, d: impl Fn(f32, f32) -> f32) {
    match k.w.len() {
        16 => backward_fixed::<16>(k, &d),
        32 => backward_fixed::<32>(k, &d),
        48 => backward_fixed::<48>(k, &d),
        64 => backward_fixed::<64>(k, &d),
        _ => backward_rows(k, &d),
    }
}

/// [`backward_rows`] on local copies of `N` (whose size the compiler then knows).
#[inline(always)]
fn backward_fixed<const N: usize>(k: Backward<'_>, d: &impl Fn(f32, f32) -> f32) {
    let mut gw: [f32; N] = (&*k.gw).try_into().expect("N columns");
    let mut gb: [f32; N] = (&*k.gb).try_into().expect("N columns");
    let w: [f32; N] = k.w.try_into().expect("N columns");
    let mut hb = k.head_bias.as_deref().copied();
    backward_rows(
        Backward {
            a: k.a,
            s: k.s,
            w: &w,
            g: k.g,
            gb: &mut gb,
            gw: &mut gw,
            head_bias: hb.as_mut(),
            accumulate: k.accumulate,
        },
        d,
    );
    k.gw.copy_from_slice(&gw);
    k.gb.copy_from_slice(&gb);
    if let (Some(dst), Some(v)) = (k.head_bias, hb) {
        *dst = v;
    }
}

/// The backward pass, four rows at a time.
#[inline(always)]
fn backward_rows(k: Backward<'_>, d: &impl Fn(f32, f32) -> f32) {
    let Backward {
        a,
        s,
        w,
        g,
        gb,
        gw,
        mut head_bias,
        accumulate,
    } = k;
    let cols = w.len();
    assert!(
        a.len() == s.len() * cols && g.len() == a.len() && gb.len() == cols && gw.len() == cols,
        "head backward: shapes"
    );
    if !accumulate {
        gw.fill(0.0);
    }
    let mut rows = 0;
    for ((a4, g4), s4) in a
        .chunks_exact(4 * cols)
        .zip(g.chunks_exact_mut(4 * cols))
        .zip(s.chunks_exact(4))
    {
        // The weight gradient four rows at a time, left to right, as `gemm_thin`.
        let (a01, a23) = a4.split_at(2 * cols);
        let (r0, r1) = a01.split_at(cols);
        let (r2, r3) = a23.split_at(cols);
        let rows4 = r0.iter().zip(r1).zip(r2).zip(r3);
        for (c, (((&x0, &x1), &x2), &x3)) in gw.iter_mut().zip(rows4) {
            *c = *c + s4[0] * x0 + s4[1] * x1 + s4[2] * x2 + s4[3] * x3;
        }
        for ((ar, gr), &s) in a4.chunks_exact(cols).zip(g4.chunks_exact_mut(cols)).zip(s4) {
            for ((g, &a), &w) in gr.iter_mut().zip(ar).zip(w) {
                *g = d(a, s * w);
            }
        }
        // The bias gradient adds the four rows in order, loading and storing it once.
        let (g01, g23) = g4.split_at(2 * cols);
        let (g0, g1) = g01.split_at(cols);
        let (g2, g3) = g23.split_at(cols);
        let rows4 = g0.iter().zip(g1).zip(g2).zip(g3);
        for (b, (((&x0, &x1), &x2), &x3)) in gb.iter_mut().zip(rows4) {
            *b = *b + x0 + x1 + x2 + x3;
        }
        if let Some(hb) = head_bias.as_deref_mut() {
            *hb = *hb + s4[0] + s4[1] + s4[2] + s4[3];
        }
        rows += 4;
    }
    for r in rows..s.len() {
        if let Some(hb) = head_bias.as_deref_mut() {
            *hb += s[r];
        }
        let ar = &a[r * cols..][..cols];
        for (c, &x) in gw.iter_mut().zip(ar) {
            *c += s[r] * x;
        }
        derivative_row(ar, &mut g[r * cols..][..cols], gb, w, s[r], d);
    }
}

/// `g = d(a, s w)` and `gb += g` for one row.
#[inline(always)]
fn derivative_row(
    a: &[f32],
    g: &mut [f32],
    gb: &mut [f32],
    w: &[f32],
    s: f32,
    d: &impl Fn(f32, f32) -> f32,
) {
    for (((g, &a), &w), b) in g.iter_mut().zip(a).zip(w).zip(gb.iter_mut()) {
        *g = d(a, s * w);
        *b += *g;
    }
}
