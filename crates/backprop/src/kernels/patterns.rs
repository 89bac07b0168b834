//! The gradient a ReLU layer passes down when a one-output layer sits on it (the last
//! hidden layer of every regression network), from the pattern of active units
//! instead of a matrix product.
//!
//! Backward through a one-output layer with weights `h` gives the layer below
//! `dz_rj = [a_rj > 0] s_r h_j` (`s_r` the output's gradient on row `r`, `a` the ReLU's
//! output). The gradient it passes down, `dx = dz W` (`W` its `J x K` weights), then
//! has rows
//!
//! ```text
//! dx_r = s_r Σ_{j : a_rj > 0} h_j W_j
//! ```
//!
//! a sum of some of the `J` rows `h_j W_j`, which are the same for every row of the
//! batch. With the units in groups of four, a table holds, for each group, the sums of
//! its rows for all 16 patterns of active units; a row of `dx` is then `J / 4` table
//! rows added and one multiplication, where the product takes `J` multiply-adds per
//! column. The table is built per piece of the batch (15 rows of `K` values per
//! group), which pays from a few hundred rows up ([`MIN_ROWS`]; BENCHMARKS.md, D25).
//!
//! The sum is the product's in another order, so the two differ in the last bits.
//! Both orders are fixed and the choice between them depends on the shape alone (D27; not
//! on the thread count), so a run repeats to the bit on any number of threads.

use multiversion::multiversion;

use super::PARALLEL_MIN_FLOPS;

/// Units per group: a group's patterns of active units index its 16 table rows.
const GROUP: usize = 4;

/// Table rows per group.
const PATTERNS: usize = 1 << GROUP;

/// Columns of `dx` computed in one pass over the piece: a table for 32 columns (16
/// groups of 16 rows at `J` = 64) is 32 KB and stays in the first-level cache.
const PART: usize = 32;

/// Rows of `dx` summed together: their 16 sums (at 32 columns) fill the AVX-512
/// registers and are independent, so the additions overlap.
const ROWS: usize = 8;

/// Batches (or pieces of one) from which [`input_gradient`] is used: below this the
/// table costs more to build than it saves.
pub(crate) const MIN_ROWS: usize = 256;

/// Whether [`input_gradient`] is used for `rows` rows of a ReLU layer of `units`
/// outputs and `inputs` inputs: it [`fits`] and the batch is large enough. The choice
/// depends on the shape alone, never on the thread count: the table sums in another
/// order than the product, so choosing by threads would give other model files on
/// another machine or `--threads`. Large batches are split over the pool by rows
/// instead (see [`input_gradient`]).
pub(crate) fn pays(rows: usize, units: usize, inputs: usize) -> bool {
    fits(units, inputs) && rows >= MIN_ROWS
}

/// One table row: a pattern's sum over `PART` columns, aligned so that no load of it
/// straddles two cache lines.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct TableRow([f32; PART]);

/// Working memory of [`input_gradient`], reused across steps.
#[derive(Clone, Debug, Default)]
pub(crate) struct PatternSpace {
    /// Per row of the piece and group, its table row within a part: `16 g + p`, bit
    /// `b` of `p` set where unit `4 g + b` is active.
    index: Vec<u8>,
    /// By part of the columns, then group, then pattern.
    table: Vec<TableRow>,
}

/// Whether [`input_gradient`] takes a layer of `units` outputs and `inputs` inputs.
pub(crate) fn fits(units: usize, inputs: usize) -> bool {
    units > 0
        && units.is_multiple_of(GROUP)
        && units / GROUP * PATTERNS <= 256
        && inputs > 0
        && inputs.is_multiple_of(PART)
}

/// `dx = dz W` for a ReLU layer below a one-output layer, with `dz_rj = [a_rj > 0] s_r h_j`
/// (see the module): `a` its `rows x J` output, `s` the `rows` gradients of the
/// one-output layer's pre-activation, `h` that layer's `J` weights, `w` this layer's
/// `J x K` weights, `dx` the `rows x K` result (only written). Needs [`fits`].
pub(crate) fn input_gradient(
    a: &[f32],
    s: &[f32],
    h: &[f32],
    w: &[f32],
    space: &mut PatternSpace,
    dx: &mut [f32],
) {
    let (rows, units) = (s.len(), h.len());
    let inputs = w.len() / units.max(1);
    assert!(
        fits(units, inputs),
        "relu pattern gradient: {units} x {inputs} layer"
    );
    assert!(
        w.len() == units * inputs && a.len() == rows * units && dx.len() == rows * inputs,
        "relu pattern gradient: shapes"
    );
    let groups = units / GROUP;
    space
        .table
        .resize(inputs / PART * groups * PATTERNS, TableRow([0.0; PART]));
    build(h, w, inputs, &mut space.table);
    patterns(a, units, &mut space.index);
    // As `matrix::gemm`: the pool's threads from as much work as a product worth
    // splitting (the table's look-ups are a quarter of the product's multiply-adds).
    let parts = if rows * units * inputs >= PARALLEL_MIN_FLOPS {
        rayon::current_num_threads()
    } else {
        1
    };
    let sums = Sums {
        groups,
        inputs,
        table: &space.table,
    };
    sums.rows_in_parts(parts, &space.index, s, dx);
}

/// The table of one [`input_gradient`] and the shape of its rows.
#[derive(Clone, Copy)]
struct Sums<'a> {
    groups: usize,
    inputs: usize,
    table: &'a [TableRow],
}

impl Sums<'_> {
    /// The rows of `dx` of the gradients `s` and table indices `index`, in `parts`
    /// blocks of rows on the current rayon pool. Each row of `dx` is its own sum, in
    /// the same order whichever block holds it, so the blocks give the same bits as
    /// one pass.
    fn rows_in_parts(self, parts: usize, index: &[u8], s: &[f32], dx: &mut [f32]) {
        let rows = s.len();
        if parts > 1 && rows >= 2 * ROWS {
            let left = parts / 2;
            let mid = (rows * left / parts).next_multiple_of(ROWS).min(rows);
            let (i0, i1) = index.split_at(mid * self.groups);
            let (s0, s1) = s.split_at(mid);
            let (d0, d1) = dx.split_at_mut(mid * self.inputs);
            rayon::join(
                || self.rows_in_parts(left, i0, s0, d0),
                || self.rows_in_parts(parts - left, i1, s1, d1),
            );
            return;
        }
        let (groups, inputs) = (self.groups, self.inputs);
        let per_part = groups * PATTERNS;
        if per_part == 256 {
            for (part, table) in self.table.chunks_exact(256).enumerate() {
                let table: &[TableRow; 256] = table.try_into().expect("256 rows");
                sum_rows_16(index, s, table, &mut dx[part * PART..], inputs);
            }
        } else {
            for (part, table) in self.table.chunks_exact(per_part).enumerate() {
                sum_rows(index, groups, s, table, &mut dx[part * PART..], inputs);
            }
        }
    }
}

/// The table: for part `q` of the columns, group `g` and pattern `p`, the sum of
/// `h_j W_j[q]` over the units `j` of `p`, each pattern one addition (of its highest
/// unit's row) to the pattern without that unit.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn build(h: &[f32], w: &[f32], inputs: usize, table: &mut [TableRow]) {
    let groups = h.len() / GROUP;
    for (part, t) in table.chunks_exact_mut(groups * PATTERNS).enumerate() {
        for (g, t) in t.chunks_exact_mut(PATTERNS).enumerate() {
            let mut rows = [[0.0f32; PART]; GROUP];
            for (b, row) in rows.iter_mut().enumerate() {
                let unit = g * GROUP + b;
                let w = &w[unit * inputs + part * PART..][..PART];
                for (r, &w) in row.iter_mut().zip(w) {
                    *r = h[unit] * w;
                }
            }
            let mut sums = [[0.0f32; PART]; PATTERNS];
            for p in 1..PATTERNS {
                let high = (usize::BITS - 1 - p.leading_zeros()) as usize;
                let rest = sums[p & !(1 << high)];
                for ((s, &rest), &r) in sums[p].iter_mut().zip(&rest).zip(&rows[high]) {
                    *s = rest + r;
                }
            }
            for (t, s) in t.iter_mut().zip(&sums) {
                t.0 = *s;
            }
        }
    }
}

/// Each row's table row per group ([`PatternSpace::index`]).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn patterns(a: &[f32], units: usize, index: &mut Vec<u8>) {
    let groups = units / GROUP;
    index.resize(a.len() / units * groups, 0);
    for (row, out) in a.chunks_exact(units).zip(index.chunks_exact_mut(groups)) {
        for (g, (o, four)) in out.iter_mut().zip(row.chunks_exact(GROUP)).enumerate() {
            let p = u8::from(four[0] > 0.0)
                | u8::from(four[1] > 0.0) << 1
                | u8::from(four[2] > 0.0) << 2
                | u8::from(four[3] > 0.0) << 3;
            // At most 16 groups (`fits`), so `16 g + p` < 256.
            *o = (g * PATTERNS) as u8 | p;
        }
    }
}

/// One part's columns of `dx` (rows `inputs` apart): row `r` is `s_r` times the sum of
/// its table rows, added group by group.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn sum_rows(
    index: &[u8],
    groups: usize,
    s: &[f32],
    table: &[TableRow],
    dx: &mut [f32],
    inputs: usize,
) {
    sum_part(index, groups, |i| &table[usize::from(i)], s, dx, inputs);
}

/// [`sum_rows`] for 16 groups (64 units), whose one-byte indices into 256 table rows
/// need no bounds checks.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn sum_rows_16(index: &[u8], s: &[f32], table: &[TableRow; 256], dx: &mut [f32], inputs: usize) {
    sum_part(index, 16, |i| &table[usize::from(i)], s, dx, inputs);
}

/// The loop of [`sum_rows`], [`ROWS`] rows at a time, looking table rows up with `row`.
#[inline(always)]
fn sum_part<'t>(
    index: &[u8],
    groups: usize,
    row: impl Fn(u8) -> &'t TableRow,
    s: &[f32],
    dx: &mut [f32],
    inputs: usize,
) {
    let full = s.len() / ROWS * ROWS;
    for r0 in (0..full).step_by(ROWS) {
        let idx = &index[r0 * groups..(r0 + ROWS) * groups];
        let mut acc = [[0.0f32; PART]; ROWS];
        for g in 0..groups {
            for (r, acc) in acc.iter_mut().enumerate() {
                for (acc, &t) in acc.iter_mut().zip(&row(idx[r * groups + g]).0) {
                    *acc += t;
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            store(&mut dx[(r0 + r) * inputs..][..PART], s[r0 + r], acc);
        }
    }
    for r in full..s.len() {
        let mut acc = [0.0f32; PART];
        for &i in &index[r * groups..(r + 1) * groups] {
            for (acc, &t) in acc.iter_mut().zip(&row(i).0) {
                *acc += t;
            }
        }
        store(&mut dx[r * inputs..][..PART], s[r], &acc);
    }
}

#[inline(always)]
fn store(dx: &mut [f32], s: f32, acc: &[f32; PART]) {
    for (d, &acc) in dx.iter_mut().zip(acc) {
        *d = s * acc;
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemm;
    use super::*;
    use crate::matrix::View;

    /// A deterministic spread of values in [-1, 1), about half of them positive.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let x = i
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The table's `dx` against the matrix product `dz W` it replaces, for every
    /// shape it takes, row counts that do and do not fill a block of eight, and rows
    /// with every unit active, none, and zero gradients.
    #[test]
    fn matches_the_product() {
        let mut space = PatternSpace::default();
        for (units, inputs) in [(4, 32), (16, 32), (32, 64), (64, 64), (64, 96), (48, 128)] {
            assert!(fits(units, inputs));
            for rows in [1, 7, 8, 13, 64, 203] {
                let mut a = values(rows * units, 1);
                a[..units].fill(0.5);
                if rows > 1 {
                    a[units..2 * units].fill(-0.5);
                }
                let mut s = values(rows, 2);
                if rows > 2 {
                    s[2] = 0.0;
                }
                let h = values(units, 3);
                let w = values(units * inputs, 4);
                let dz: Vec<f32> = (0..rows * units)
                    .map(|i| {
                        if a[i] > 0.0 {
                            s[i / units] * h[i % units]
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let mut want = vec![0.0; rows * inputs];
                gemm(
                    1.0,
                    View::new(&dz, rows, units),
                    View::new(&w, units, inputs),
                    0.0,
                    &mut want,
                );
                let mut got = vec![f32::NAN; rows * inputs];
                input_gradient(&a, &s, &h, &w, &mut space, &mut got);
                for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    let scale = units as f32 * s[i / inputs].abs();
                    assert!(
                        (g - e).abs() <= 1e-5 * scale.max(1.0),
                        "{units}x{inputs}, {rows} rows, [{}][{}]: {g} vs {e}",
                        i / inputs,
                        i % inputs
                    );
                }
            }
        }
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Used from `MIN_ROWS` rows whatever the thread count, also for a product large
    /// enough for `gemm` to split (the thread count must not choose the sum's order).
    #[test]
    fn pays_from_min_rows_on_any_thread_count() {
        for threads in 1..=3 {
            let p = pool(threads);
            assert!(p.install(|| pays(MIN_ROWS, 64, 64)));
            assert!(!p.install(|| pays(MIN_ROWS - 1, 64, 64)));
            assert!(!p.install(|| pays(4096, 64, 8)), "a shape it does not take");
            // 512 x 64 x 1024 = 33.5M multiply-adds: `gemm` would split it.
            const { assert!(512 * 64 * 1024 >= PARALLEL_MIN_FLOPS) };
            assert!(p.install(|| pays(512, 64, 1024)));
        }
    }

    /// Split over 2 to 4 threads by rows (row counts with and without a remainder of
    /// eight, 16 and 48 units), the table gives the bits it gives on one thread.
    #[test]
    fn rows_split_over_threads_give_the_same_bits() {
        for (rows, units, inputs) in [(512, 64, 256), (517, 16, 1024), (300, 48, 608)] {
            assert!(rows * units * inputs >= PARALLEL_MIN_FLOPS);
            let (a, s) = (values(rows * units, 1), values(rows, 2));
            let (h, w) = (values(units, 3), values(units * inputs, 4));
            let run = |threads| {
                let mut dx = vec![f32::NAN; rows * inputs];
                pool(threads).install(|| {
                    input_gradient(&a, &s, &h, &w, &mut PatternSpace::default(), &mut dx)
                });
                dx
            };
            let one = run(1);
            for threads in 2..=4 {
                assert_eq!(
                    run(threads),
                    one,
                    "{rows}x{units}x{inputs}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn takes_only_the_shapes_it_can() {
        assert!(fits(64, 64) && fits(4, 32) && fits(64, 32));
        assert!(!fits(0, 32), "no units");
        assert!(!fits(6, 32), "units not in fours");
        assert!(!fits(68, 32), "more than 16 groups");
        assert!(!fits(64, 8), "inputs not in parts of 32");
        assert!(!fits(64, 0));
    }
}
