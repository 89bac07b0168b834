//! Input columns that are zero in every row of a batch, left out of the first layer's
//! products.
//!
//! Images and one-hot encoded tables have many inputs that are zero throughout a batch:
//! MNIST's border pixels (67 are zero in all 60,000 training images, and a third of the
//! 784 are zero in a typical batch of 128), a category that no row of the batch has.
//! Such a column adds nothing to the first layer's weighted sums (`0 · w`) and its
//! weights get a zero gradient (`Σ_rows dz · 0`). The first layer's two products are
//! usually the widest of all (784 inputs against 512 perceptrons in MNIST's network:
//! two thirds of a training step's arithmetic), so that is where leaving columns out
//! pays. The columns that remain, and the same columns of the weight, are copied
//! together in runs (active columns lie next to each other: the middle of each image
//! row), and the products run on the narrower copies with the same multiply kernel as
//! always. The weight gradient's left-out columns are written as zeros. See
//! BENCHMARKS.md, D19.
//!
//! The results are the same sums less terms that are exactly zero; the order in which
//! the product kernel adds the remaining terms may differ, so the last bit of a
//! weighted sum can differ from the full product's.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use multiversion::multiversion;

use super::PARALLEL_MIN_FLOPS;

/// Fewer inputs than this are always used whole: tabular networks with a handful of
/// features have no zero columns to speak of, and their products are too small to gain.
const MIN_INPUTS: usize = 32;

/// Products smaller than this many multiply-adds are computed whole: copying the
/// operands would cost about what the columns save.
const MIN_WORK: usize = 1 << 16;

/// Columns are left out only when at most this share of them (in tenths) remains:
/// near the full width the copies cost more than the products save.
const MAX_ACTIVE_TENTHS: usize = 9;

/// Zero columns between two runs shorter than this are kept (they add exact zeros) so
/// that copies go in longer runs.
const MERGE_GAP: usize = 4;

/// The first layer's active input columns for the batch of the last forward pass, with
/// copies of the batch and the weight restricted to them. Kept in a
/// `Trace` and reused, so it allocates only while its buffers grow.
#[derive(Clone, Debug, Default)]
pub(crate) struct InputColumns {
    /// Per input column, the OR of its values' bits without the sign: zero when the
    /// column is `±0.0` in every row.
    bits: Vec<u32>,
    /// Runs of kept columns, `(first, len)`, in order.
    runs: Vec<(usize, usize)>,
    /// Kept columns in all.
    active: usize,
    /// The batch restricted to the kept columns (`batch x active`).
    x: Vec<f32>,
    /// The weight restricted to the kept columns (`outputs x active`).
    w: Vec<f32>,
    /// The weight gradient of the kept columns (`outputs x active`).
    g: Vec<f32>,
    /// Outputs of the layer whose input was selected.
    outputs: usize,
    /// Rows of the last batch selected; 0 when the last forward pass used the whole
    /// input.
    batch: usize,
}

impl InputColumns {
    /// Looks at the batch `x` (`batch x inputs`) of a layer with `outputs` perceptrons
    /// and, when enough of its columns are zero throughout, keeps a copy of it
    /// restricted to the others and returns `true`. Returns `false` (the layer is to use
    /// its whole input) otherwise.
    pub(crate) fn select(
        &mut self,
        x: &[f32],
        batch: usize,
        inputs: usize,
        outputs: usize,
    ) -> bool {
        self.batch = 0;
        if inputs < MIN_INPUTS || batch * inputs * outputs < MIN_WORK {
            return false;
        }
        debug_assert_eq!(x.len(), batch * inputs);
        self.bits.clear();
        self.bits.resize(inputs, 0);
        or_rows(&mut self.bits, x);
        self.runs.clear();
        for (j, &b) in self.bits.iter().enumerate() {
            if b == 0 {
                continue;
            }
            match self.runs.last_mut() {
                Some((first, len)) if j - (*first + *len) < MERGE_GAP => *len = j + 1 - *first,
                _ => self.runs.push((j, 1)),
            }
        }
        self.active = self.runs.iter().map(|&(_, len)| len).sum();
        if self.active == 0 || self.active * 10 > inputs * MAX_ACTIVE_TENTHS {
            return false;
        }
        // Whole multiples of 16 columns fill the product kernel's registers: take in
        // zero columns after the last run (or before the first) up to the next one.
        let pad = self.active.next_multiple_of(16) - self.active;
        let (first, len) = self.runs[self.runs.len() - 1];
        if first + len + pad <= inputs {
            self.runs.last_mut().expect("a run").1 += pad;
            self.active += pad;
        } else if self.runs[0].0 >= pad {
            self.runs[0].0 -= pad;
            self.runs[0].1 += pad;
            self.active += pad;
        }
        fit(&mut self.x, batch * self.active, batch * inputs);
        gather(&mut self.x, x, inputs, &self.runs);
        self.outputs = outputs;
        self.batch = batch;
        true
    }

    /// Marks the last forward pass as using its whole input.
    pub(crate) fn reset(&mut self) {
        self.batch = 0;
    }

    /// Whether the last forward pass used the selected columns.
    pub(crate) fn in_use(&self) -> bool {
        self.batch > 0
    }

    /// `out = x Wᵀ` over the selected columns (`batch x outputs`), for the weight `w`
    /// (`outputs x inputs`) of the layer given to [`InputColumns::select`].
    pub(crate) fn product(&mut self, w: &[f32], out: &mut [f32]) {
        let (batch, active, outputs) = (self.batch, self.active, self.outputs);
        let inputs = w.len() / outputs;
        fit(&mut self.w, outputs * active, outputs * inputs);
        let x = MatRef::from_row_major_slice(&self.x, batch, active);
        let out = MatMut::from_row_major_slice_mut(out, batch, outputs);
        let parts = parts(batch * active * outputs);
        let runs = &self.runs[..];
        product_parts(parts, x, out, (&mut self.w, w, inputs), runs);
    }

    /// The weight gradient `gw (+)= dzᵀ x` (`outputs x inputs`) of the batch selected,
    /// given `dz` (`batch x outputs`): the selected columns' products, zeros (or
    /// nothing added) in the others.
    pub(crate) fn weight_gradient(&mut self, dz: &[f32], gw: &mut [f32], accumulate: bool) {
        let (batch, active, outputs) = (self.batch, self.active, self.outputs);
        let inputs = gw.len() / outputs;
        fit(&mut self.g, outputs * active, outputs * inputs);
        let x = MatRef::from_row_major_slice(&self.x, batch, active);
        let dz_t = MatRef::from_row_major_slice(dz, batch, outputs).transpose();
        let parts = parts(batch * active * outputs);
        let runs = &self.runs[..];
        gradient_parts(parts, dz_t, x, (&mut self.g, gw, inputs), runs, accumulate);
    }
}

/// Threads for a product of `work` multiply-adds: as in `matrix::gemm`.
fn parts(work: usize) -> usize {
    if work >= PARALLEL_MIN_FLOPS {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// Where `parts` threads split a layer's `outputs` (perceptrons): `(threads for the
/// first block, outputs in it)`, in multiples of 16 as in `matrix::gemm`; `None` to
/// keep them on one thread.
fn split(parts: usize, outputs: usize) -> Option<(usize, usize)> {
    const ALIGN: usize = 16;
    if parts < 2 || outputs < 2 * ALIGN {
        return None;
    }
    let left = parts / 2;
    let mid = (outputs * left / parts)
        .next_multiple_of(ALIGN)
        .min(outputs);
    Some((left, mid))
}

/// `out = x Wᵀ` in `parts` blocks of the layer's outputs (columns of `out`, rows of the
/// weight `w`, whose rows are `inputs` long) on the current rayon pool. Each block
/// copies the selected columns of its rows of `w` into its rows of `wc` and multiplies
/// by them: the copy runs on the thread that uses it, in parallel, and without a
/// separate handing of work to the threads. The products are `faer`'s, as in
/// `matrix::gemm`, which splits a product over threads the same way.
fn product_parts(
    parts: usize,
    x: MatRef<'_, f32>,
    out: MatMut<'_, f32>,
    (wc, w, inputs): (&mut [f32], &[f32], usize),
    runs: &[(usize, usize)],
) {
    let outputs = out.ncols();
    if let Some((left, mid)) = split(parts, outputs) {
        let (out0, out1) = out.split_at_col_mut(mid);
        let (wc0, wc1) = wc.split_at_mut(mid * x.ncols());
        let (w0, w1) = w.split_at(mid * inputs);
        rayon::join(
            || product_parts(left, x, out0, (wc0, w0, inputs), runs),
            || product_parts(parts - left, x, out1, (wc1, w1, inputs), runs),
        );
        return;
    }
    gather(wc, w, inputs, runs);
    let wc = MatRef::from_row_major_slice(wc, outputs, x.ncols());
    matmul(out, Accum::Replace, x, wc.transpose(), 1.0, Par::Seq);
}

/// The weight gradient in `parts` blocks of the layer's outputs: each block computes its
/// rows of `g = dzᵀ x` (selected columns) and writes them into its rows of `gw`.
fn gradient_parts(
    parts: usize,
    dz_t: MatRef<'_, f32>,
    x: MatRef<'_, f32>,
    (g, gw, inputs): (&mut [f32], &mut [f32], usize),
    runs: &[(usize, usize)],
    accumulate: bool,
) {
    let (outputs, active) = (dz_t.nrows(), x.ncols());
    if let Some((left, mid)) = split(parts, outputs) {
        let (dz0, dz1) = dz_t.split_at_row(mid);
        let (g0, g1) = g.split_at_mut(mid * active);
        let (gw0, gw1) = gw.split_at_mut(mid * inputs);
        rayon::join(
            || gradient_parts(left, dz0, x, (g0, gw0, inputs), runs, accumulate),
            || gradient_parts(parts - left, dz1, x, (g1, gw1, inputs), runs, accumulate),
        );
        return;
    }
    let gm = MatMut::from_row_major_slice_mut(g, outputs, active);
    matmul(gm, Accum::Replace, dz_t, x, 1.0, Par::Seq);
    for (dst, src) in gw.chunks_exact_mut(inputs).zip(g.chunks_exact(active)) {
        scatter_row(dst, src, runs, accumulate);
    }
}

/// `bits[j] |= |x[i][j]|`'s bits for every row `x[i]` (rows `bits.len()` long): zero
/// exactly for the columns that are `±0.0` in every row. Compiled for AVX-512 and AVX2
/// too (see `activation::map_bias`).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn or_rows(bits: &mut [u32], x: &[f32]) {
    for row in x.chunks_exact(bits.len()) {
        for (b, &v) in bits.iter_mut().zip(row) {
            *b |= v.to_bits() & 0x7fff_ffff;
        }
    }
}

/// Copies row `src` (the selected columns, run after run) into `dst` (all columns),
/// writing zeros in the columns left out or, when `accumulate`, adding to `dst` and
/// leaving those columns as they are.
fn scatter_row(dst: &mut [f32], src: &[f32], runs: &[(usize, usize)], accumulate: bool) {
    let (mut to, mut from) = (0, 0);
    for &(first, len) in runs {
        let s = &src[from..from + len];
        if accumulate {
            for (d, &s) in dst[first..first + len].iter_mut().zip(s) {
                *d += s;
            }
        } else {
            fill_short(&mut dst[to..first]);
            copy_short(&mut dst[first..first + len], s);
        }
        (to, from) = (first + len, from + len);
    }
    if !accumulate {
        fill_short(&mut dst[to..]);
    }
}

/// Copies the runs of columns of each row of `src` (rows `cols` long) into the rows of
/// `dst`, one run after another.
fn gather(dst: &mut [f32], src: &[f32], cols: usize, runs: &[(usize, usize)]) {
    let len: usize = runs.iter().map(|&(_, len)| len).sum();
    for (out, row) in dst.chunks_exact_mut(len).zip(src.chunks_exact(cols)) {
        let mut to = 0;
        for &(first, len) in runs {
            copy_short(&mut out[to..to + len], &row[first..first + len]);
            to += len;
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of columns (a few dozen values) copied
/// here, in pieces of fixed size that the compiler copies inline: a call to `memcpy`
/// per run cost more than the copy itself.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(s);
    }
    let (mut d, mut s) = (d.into_remainder(), s.remainder());
    for size in [8, 4, 2, 1] {
        if d.len() >= size {
            let (dh, dt) = d.split_at_mut(size);
            let (sh, st) = s.split_at(size);
            dh.copy_from_slice(sh);
            (d, s) = (dt, st);
        }
    }
}

/// `dst.fill(0.0)` for short slices, inline (see [`copy_short`]).
#[inline(always)]
fn fill_short(dst: &mut [f32]) {
    let mut d = dst.chunks_exact_mut(16);
    for d in &mut d {
        d.copy_from_slice(&[0.0; 16]);
    }
    for v in d.into_remainder() {
        *v = 0.0;
    }
}

/// Sets `v` to `len` elements (their values to be overwritten), with room for `max`.
/// Only elements beyond its present length are written (zeroing all of a weight-sized
/// buffer on every step cost more than the copy into it).
fn fit(v: &mut Vec<f32>, len: usize, max: usize) {
    v.reserve(max.saturating_sub(v.len()));
    v.resize(len, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, grid};

    /// A `rows x cols` batch whose columns in `zero` are 0 (some as -0.0) in every row.
    fn batch_with_zero_columns(rows: usize, cols: usize, zero: &[usize]) -> Vec<f32> {
        let mut x = grid(rows * cols, 5);
        for r in 0..rows {
            for &c in zero {
                x[r * cols + c] = if (r + c) % 3 == 0 { -0.0 } else { 0.0 };
            }
        }
        x
    }

    #[test]
    fn runs_cover_the_nonzero_columns_and_bridge_short_gaps() {
        let (rows, cols, outputs) = (40, 64, 32);
        // Zero: 0..10, 20, 21 (a gap of 2, bridged), 40..50 (not bridged), 63.
        let zero: Vec<usize> = (0..10).chain([20, 21]).chain(40..50).chain([63]).collect();
        let x = batch_with_zero_columns(rows, cols, &zero);
        let w = grid(outputs * cols, 6);
        let mut c = InputColumns::default();
        assert!(c.select(&x, rows, cols, outputs));
        // 43 columns, padded to 48 with the zero columns before the first run (after
        // the last there are too few).
        assert_eq!(c.runs, vec![(5, 35), (50, 13)]);
        assert_eq!(c.active, 48);
        assert_eq!(c.x[..35], x[5..40]);
        assert_eq!(c.x[35..48], x[50..63]);
        let mut out = vec![0.0; rows * outputs];
        c.product(&w, &mut out);
        assert_eq!(c.w[35..48], w[50..63]);
        // Zero columns after the last run when there are enough.
        let x = batch_with_zero_columns(rows, cols, &(40..64).collect::<Vec<_>>());
        assert!(c.select(&x, rows, cols, outputs));
        assert_eq!((c.runs.clone(), c.active), (vec![(0, 48)], 48));
    }

    #[test]
    fn whole_input_is_used_when_few_columns_are_zero_or_the_layer_is_small() {
        let mut c = InputColumns::default();
        let (rows, cols, outputs) = (40, 64, 32);
        // 4 of 64 columns zero: 94% remain.
        let x = batch_with_zero_columns(rows, cols, &[1, 2, 3, 4]);
        assert!(!c.select(&x, rows, cols, outputs));
        assert!(!c.in_use());
        // Every column zero: nothing to multiply.
        let x = vec![0.0; rows * cols];
        assert!(!c.select(&x, rows, cols, outputs));
        // Eight inputs (a tabular network).
        let x = batch_with_zero_columns(rows, 8, &[0, 1, 2, 3, 4]);
        assert!(!c.select(&x, rows, 8, outputs));
        // A NaN is not zero.
        let mut x = batch_with_zero_columns(rows, cols, &(0..32).collect::<Vec<_>>());
        x[7 * cols + 5] = f32::NAN;
        assert!(c.select(&x, rows, cols, outputs));
        assert_eq!(c.runs, vec![(5, 1), (32, 32)]);
    }

    /// The products over the selected columns against the whole products, on one
    /// thread and (with products above `PARALLEL_MIN_FLOPS`, split over the layer's
    /// outputs) on 2 and 3.
    #[test]
    fn products_match_the_whole_input() {
        for (rows, cols, outputs, threads) in
            [(70, 100, 48, 1), (200, 400, 300, 2), (200, 400, 300, 3)]
        {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| products_match(rows, cols, outputs));
        }
    }

    fn products_match(rows: usize, cols: usize, outputs: usize) {
        use super::super::gemm;
        use crate::matrix::View;
        let zero: Vec<usize> = (0..cols)
            .filter(|c| c % 7 < 4 || (30..60).contains(c) || *c == cols - 1)
            .collect();
        let x = batch_with_zero_columns(rows, cols, &zero);
        let w = grid(outputs * cols, 7);
        let dz = grid(rows * outputs, 8);
        let mut c = InputColumns::default();
        assert!(c.select(&x, rows, cols, outputs));
        let split = parts(rows * c.active * outputs) > 1;
        assert_eq!(
            split,
            rayon::current_num_threads() > 1,
            "{rows}x{cols}x{outputs}"
        );

        let mut want = vec![0.0; rows * outputs];
        let xv = View::new(&x, rows, cols);
        gemm(1.0, xv, View::new(&w, outputs, cols).t(), 0.0, &mut want);
        let mut got = vec![f32::NAN; rows * outputs];
        c.product(&w, &mut got);
        assert_close(&got, &want, "product");

        for accumulate in [false, true] {
            let start = grid(outputs * cols, 9);
            let mut want = start.clone();
            let beta = if accumulate { 1.0 } else { 0.0 };
            gemm(1.0, View::new(&dz, rows, outputs).t(), xv, beta, &mut want);
            let mut got = if accumulate {
                start.clone()
            } else {
                vec![f32::NAN; outputs * cols]
            };
            c.weight_gradient(&dz, &mut got, accumulate);
            assert_close(&got, &want, "weight gradient");
            for o in 0..outputs {
                for &z in &zero {
                    let left = if accumulate { start[o * cols + z] } else { 0.0 };
                    assert_eq!(got[o * cols + z], left, "column {z} left out");
                }
            }
        }
    }
}
