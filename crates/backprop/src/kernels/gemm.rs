//! Matrix products: `c = α a b + β c` on strided views, through `faer`, split over the
//! rayon pool for large products, with hand-written loops for thin shapes.
//!
//! Products go through the [`faer`] crate (its `matmul`, sequential): of the multiply
//! crates measured on this project's shapes and strides it was the fastest on nearly
//! all of them, and it reuses its packing memory between calls, so a steady-state
//! training step allocates nothing (`tests/no_alloc.rs`); see BENCHMARKS.md, D10. It
//! takes arbitrary strides, so the transposed products of backpropagation (`dzᵀ x`,
//! `x Wᵀ`) need no copies. Its own threading makes tiny products many times slower, so
//! threading is ours: large products are split by output rows or columns over the
//! current rayon pool (D5, D16), and every output element keeps its summation order, so
//! results are bit-identical whatever the thread count
//! (`parallel_gemm_is_bit_identical_to_serial`). Work is handed to threads with
//! `rayon::join`, which allocates nothing (D7).

use multiversion::multiversion;

use crate::matrix::View;

/// Products smaller than this many multiply-adds stay on one thread: inside a training
/// step each product follows single-threaded passes, by which time the pool's other
/// threads sleep, and waking one costs more than the work it would take over below
/// this size (tabular 512-row pieces stay on one thread, MNIST's products are split).
/// See BENCHMARKS.md, D16.
pub(crate) const PARALLEL_MIN_FLOPS: usize = 1 << 23;

/// `c = alpha * a b + beta * c`, with `c` row-major `a.rows x b.cols`.
///
/// Uses every thread of the current rayon pool when the product is large enough.
pub fn gemm(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: inner dimensions {m}x{k} * {}x{n}", b.rows);
    assert_eq!(c.len(), m * n, "gemm: output length vs {m}x{n}");
    if m == 0 || n == 0 || gemm_thin(alpha, a, b, beta, c) {
        return;
    }
    let threads = rayon::current_num_threads();
    // Every part of a split product must take the same `faer` kernel as the whole, or
    // its sums run in another order and the thread count changes the bits: `faer`
    // computes a product of one row or one column as matrix-vector products. So parts
    // are balanced (at least two rows, or 16 columns, each), and a one-row product
    // (`m = 1` through strides `gemm_thin` does not take) is not split.
    if threads < 2 || m * n * k < PARALLEL_MIN_FLOPS {
        gemm_serial(alpha, a, b, beta, c);
    } else if n >= m && n >= 2 * threads * SPLIT_COLUMNS_ALIGN && m >= 2 {
        // Every thread packs all of the operand it shares and its part of the other;
        // splitting the wider side shares (and so packs twice) the smaller operand.
        check_extent(a);
        // Part p's columns start at `n p / threads` rounded up to 16: at least 17
        // columns each, since `n / threads >= 32`.
        let start = |p: usize| {
            (n * p / threads)
                .next_multiple_of(SPLIT_COLUMNS_ALIGN)
                .min(n)
        };
        let out = OutPtr(c.as_mut_ptr());
        for_each_part(threads, &|part| {
            let (j, end) = (start(part), start(part + 1));
            let b_part = b.cols_slice(j, end - j);
            check_extent(b_part);
            // SAFETY: the views' extents are checked; `c` is an exclusive borrow of
            // m rows of n, and each part writes only its own columns j..end.
            unsafe { sgemm(alpha, a, b_part, beta, out.get().add(j), n) }
        });
    } else if m >= 2 * threads {
        check_extent(a);
        // Part p's rows start at `m p / threads`: at least two rows each.
        let start = |p: usize| m * p / threads;
        let out = OutPtr(c.as_mut_ptr());
        for_each_part(threads, &|part| {
            let (i, end) = (start(part), start(part + 1));
            let c_part = out.get().wrapping_add(i * n);
            // SAFETY: each part writes only its own rows i..end of the exclusive
            // borrow `c` (m rows of n), so the parts' slices are disjoint.
            let c_part = unsafe { std::slice::from_raw_parts_mut(c_part, (end - i) * n) };
            gemm_serial(alpha, a.rows_slice(i, end - i), b, beta, c_part);
        });
    } else {
        gemm_serial(alpha, a, b, beta, c);
    }
}

/// Runs `f(0..parts)` on the current rayon pool, splitting the range in halves with
/// `rayon::join`. Unlike `rayon::scope`, whose spawned tasks are boxed, `join` keeps its
/// jobs on the stack, so handing work to other threads allocates nothing.
fn for_each_part(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    fn run(start: usize, end: usize, f: &(dyn Fn(usize) + Sync)) {
        match end - start {
            0 => {}
            1 => f(start),
            len => {
                let mid = start + len / 2;
                rayon::join(|| run(start, mid, f), || run(mid, end, f));
            }
        }
    }
    run(0, parts, f)
}

/// Column blocks given to threads are multiples of this (16 columns: a whole number of
/// AVX2 or AVX-512 registers), so no block ends in a partly used kernel tile.
const SPLIT_COLUMNS_ALIGN: usize = 16;

/// The output pointer handed to the threads that each write their own columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: only used to give threads disjoint column blocks of one exclusive borrow.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the `Send` wrapper, not the field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Products in which one side is a single vector: a one-row `a` (a batch of one), a
/// one-column `b` (a layer with one output) or an inner dimension of one (an outer
/// product). A blocked matrix multiply packs both operands into tiles 8 or 16 wide, so on
/// these shapes most of its work would be padding and packing; plain loops over
/// contiguous memory are faster. Returns whether it computed the product (it only
/// takes layouts whose inner loops run over contiguous data). Compiled for AVX-512 and
/// AVX2 too (see `activation::map_bias`): the sums keep their order in every version.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn gemm_thin(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32]) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k == 0 || a.row_stride < 0 || a.col_stride < 0 || b.row_stride < 0 || b.col_stride < 0 {
        return false;
    }
    if m == 1 && b.col_stride == 1 {
        // c = α a B + β c, accumulated row of B by row of B.
        scale(c, beta);
        let mut p = 0;
        while p + 4 <= k {
            // (Spelled out: `[0, 1, 2, 3].map(..)` here went through the stack.)
            let (s0, s1) = (alpha * a.at(0, p), alpha * a.at(0, p + 1));
            let (s2, s3) = (alpha * a.at(0, p + 2), alpha * a.at(0, p + 3));
            let (r0, r1) = (&b.row(p)[..n], &b.row(p + 1)[..n]);
            let (r2, r3) = (&b.row(p + 2)[..n], &b.row(p + 3)[..n]);
            // Left to right, so the sum is the same as adding one row at a time. Zipped
            // slices of the same length leave no bounds checks, so this vectorises.
            let rows = r0.iter().zip(r1).zip(r2).zip(r3);
            for (c, (((&x0, &x1), &x2), &x3)) in c.iter_mut().zip(rows) {
                *c = *c + s0 * x0 + s1 * x1 + s2 * x2 + s3 * x3;
            }
            p += 4;
        }
        for p in p..k {
            axpy(alpha * a.at(0, p), b.row(p), c);
        }
    } else if m == 1 && a.col_stride == 1 && b.row_stride == 1 {
        // c_j = α a · B[:, j] + β c_j, each column of B contiguous (B = Wᵀ).
        dots(alpha, b.t(), a.row(0), beta, c);
    } else if n == 1 && a.col_stride == 1 && b.row_stride == 1 {
        // c_i = α A[i, :] · b + β c_i.
        dots(alpha, a, b.t().row(0), beta, c);
    } else if k == 1 && b.col_stride == 1 {
        // The outer product c = α a bᵀ + β c.
        let y = b.row(0);
        for (i, ci) in c.chunks_exact_mut(n).enumerate() {
            let s = alpha * a.at(i, 0);
            if beta == 0.0 {
                // One pass that writes, instead of zeroing and then adding.
                for (c, &y) in ci.iter_mut().zip(y) {
                    *c = s * y;
                }
            } else {
                scale(ci, beta);
                axpy(s, y, ci);
            }
        }
    } else {
        return false;
    }
    true
}

/// `c ← β c`, where `β = 0` overwrites (never reading `c`, which may hold NaN).
fn scale(c: &mut [f32], beta: f32) {
    if beta == 0.0 {
        c.fill(0.0);
    } else if beta != 1.0 {
        c.iter_mut().for_each(|c| *c *= beta);
    }
}

/// `v + β c`, where `β = 0` ignores `c`.
#[inline]
fn blend(v: f32, beta: f32, c: f32) -> f32 {
    if beta == 0.0 {
        v
    } else {
        v + beta * c
    }
}

/// `y ← y + s x`.
#[inline]
fn axpy(s: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += s * x;
    }
}

/// `c_i = α (R_i · v) + β c_i` for every row `R_i` of `rows` (contiguous rows of
/// `v.len()` elements): the product of a matrix and one vector, as in a layer with one
/// output or a batch of one.
///
/// Each dot product is [`dot`]'s, with its order of additions. One running sum per row
/// waits on the previous addition at every step, so on x86-64 with AVX this takes eight
/// rows at a time (then four) in 8-wide registers, whose sums are independent; the
/// additions of each row are the same as in [`dot`], so the bits are too.
pub(crate) fn dots(alpha: f32, rows: View<'_>, v: &[f32], beta: f32, c: &mut [f32]) {
    // Checked in release builds too: the AVX path reads `v.len()` elements of every
    // row through raw pointers, so these two comparisons are what keep it in bounds.
    assert_eq!(rows.cols, v.len(), "dots: row width vs vector length");
    assert_eq!(rows.rows, c.len(), "dots: rows vs outputs");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") && rows.rows >= 4 {
        check_extent(rows);
        assert_eq!(rows.col_stride, 1, "dots: rows must be contiguous");
        // SAFETY: AVX is present; `check_extent` proved every row lies in `rows.data`.
        done = unsafe { dots_avx(alpha, rows, v, beta, c) };
    }
    for (i, c) in c.iter_mut().enumerate().skip(done) {
        *c = blend(alpha * dot(rows.row(i), v), beta, *c);
    }
}

/// [`dots`] for the rows in groups of eight, then of four; returns how many rows it did.
///
/// # Safety
/// The CPU must have AVX, `rows` must have contiguous rows (`col_stride == 1`) and
/// pass `check_extent`, and `c` must hold `rows.rows` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn dots_avx(alpha: f32, rows: View<'_>, v: &[f32], beta: f32, c: &mut [f32]) -> usize {
    let eights = rows.rows / 8 * 8;
    dots_group_avx::<8>(alpha, rows, v, beta, &mut c[..eights]);
    let fours = rows.rows / 4 * 4;
    if fours > eights {
        let rest = View {
            data: &rows.data[eights * rows.row_stride as usize..],
            rows: fours - eights,
            ..rows
        };
        dots_group_avx::<4>(alpha, rest, v, beta, &mut c[eights..fours]);
    }
    fours
}

/// [`dots`] for the first `c.len()` rows (a multiple of `R`), `R` at a time: their
/// running sums are independent, so `R` of them are in flight at once.
///
/// # Safety
/// As [`dots_avx`], and `c.len()` is a multiple of `R` at most `rows.rows`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn dots_group_avx<const R: usize>(
    alpha: f32,
    rows: View<'_>,
    v: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    use std::arch::x86_64::*;
    let k = v.len();
    let whole = k / 8 * 8;
    let stride = rows.row_stride as usize;
    debug_assert!(c.len() / R * R == c.len() && c.len() <= rows.rows);
    for (g, cs) in c.chunks_exact_mut(R).enumerate() {
        let first = rows.data.as_ptr().add(R * g * stride);
        let r: [*const f32; R] = std::array::from_fn(|d| first.add(d * stride));
        let mut acc = [_mm256_setzero_ps(); R];
        let mut p = 0;
        while p < whole {
            let y = _mm256_loadu_ps(v.as_ptr().add(p));
            for d in 0..R {
                let x = _mm256_loadu_ps(r[d].add(p));
                acc[d] = _mm256_add_ps(acc[d], _mm256_mul_ps(x, y));
            }
            p += 8;
        }
        // Per row: s_l = acc_l + acc_{l+4}, then (s_0 + s_1) + (s_2 + s_3), as `dot`.
        for (q, cs) in cs.chunks_exact_mut(4).enumerate() {
            let s: [__m128; 4] = std::array::from_fn(|d| {
                let a = acc[4 * q + d];
                _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1))
            });
            let sums = _mm_hadd_ps(_mm_hadd_ps(s[0], s[1]), _mm_hadd_ps(s[2], s[3]));
            let mut out = [0.0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), sums);
            for (d, c) in cs.iter_mut().enumerate() {
                let row = std::slice::from_raw_parts(r[4 * q + d], k);
                let tail: f32 = row[whole..]
                    .iter()
                    .zip(&v[whole..])
                    .map(|(a, b)| a * b)
                    .sum();
                *c = blend(alpha * (out[d] + tail), beta, *c);
            }
        }
    }
}

/// `x · y` with eight partial sums, so it vectorises (the order of a float sum is fixed
/// by the code, and one running sum cannot be split across SIMD lanes).
#[inline]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (xs, ys) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += xs[l] * ys[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

fn gemm_serial(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32]) {
    let (k, n) = (a.cols, b.cols);
    if k == 0 {
        scale(c, beta);
        return;
    }
    check_extent(a);
    check_extent(b);
    // SAFETY: `check_extent` proved every element addressed through the strides lies in
    // its slice; `c` is an exclusive borrow of exactly m*n elements (asserted above).
    unsafe { sgemm(alpha, a, b, beta, c.as_mut_ptr(), n) }
}

/// `c ← α a b + β c` by `faer`'s sequential `matmul` on views, writing `a.rows x b.cols`
/// elements at `c` whose rows are `row_stride` apart.
///
/// # Safety
/// Both views must have passed `check_extent`, and `c` must be valid for writes of every
/// element it addresses, with no other thread reading or writing them meanwhile.
unsafe fn sgemm(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: *mut f32, row_stride: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let lhs =
        faer::MatRef::<f32>::from_raw_parts(a.data.as_ptr(), m, k, a.row_stride, a.col_stride);
    let rhs =
        faer::MatRef::<f32>::from_raw_parts(b.data.as_ptr(), k, n, b.row_stride, b.col_stride);
    let accum = if beta == 0.0 {
        faer::Accum::Replace
    } else {
        if beta != 1.0 {
            for i in 0..m {
                scale(
                    std::slice::from_raw_parts_mut(c.add(i * row_stride), n),
                    beta,
                );
            }
        }
        faer::Accum::Add
    };
    let dst = faer::MatMut::<f32>::from_raw_parts_mut(c, m, n, row_stride as isize, 1);
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, faer::Par::Seq);
}

fn check_extent(v: View<'_>) {
    assert!(
        v.row_stride >= 0 && v.col_stride >= 0,
        "gemm: negative strides"
    );
    let last = (v.rows.saturating_sub(1)) as isize * v.row_stride
        + (v.cols.saturating_sub(1)) as isize * v.col_stride;
    assert!(
        (last as usize) < v.data.len(),
        "gemm: view exceeds its data"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0;
                for p in 0..a.cols {
                    s += a.data[(i as isize * a.row_stride + p as isize * a.col_stride) as usize]
                        * b.data[(p as isize * b.row_stride + j as isize * b.col_stride) as usize];
                }
                c[i * b.cols + j] = s;
            }
        }
        c
    }

    #[test]
    fn gemm_matches_naive_with_transposes() {
        let a: Vec<f32> = (0..12).map(|x| x as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..12).map(|x| (x as f32).sin()).collect();
        let av = View::new(&a, 3, 4);
        let bv = View::new(&b, 3, 4);
        let mut c = vec![0.0; 9];
        gemm(1.0, av, bv.t(), 0.0, &mut c);
        let want = naive(av, bv.t());
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        let mut c2 = vec![0.0; 16];
        gemm(1.0, av.t(), bv, 0.0, &mut c2);
        let want2 = naive(av.t(), bv);
        for (x, y) in c2.iter().zip(&want2) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|x| ((x * 7919 + seed * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    }

    /// Split by rows (m > n) or by columns (n >= m, widths not multiples of the kernel),
    /// plain and transposed operands, overwriting and accumulating: the same bits as
    /// one thread, for 2, 3 and 4 threads.
    #[test]
    fn parallel_gemm_is_bit_identical_to_serial() {
        // All above PARALLEL_MIN_FLOPS, so every one is split.
        // The last three left a part of one column (97 and 145 columns on 3 and 4
        // threads) or one row (7 rows on 3 threads) before the parts were balanced.
        for (m, k, n) in [
            (512, 96, 256),
            (128, 784, 512),
            (150, 200, 333),
            (256, 256, 200),
            (90, 1000, 97),
            (100, 600, 145),
            (7, 13_000, 93),
        ] {
            assert!(m * k * n >= PARALLEL_MIN_FLOPS);
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let c0 = data(m * n, 3);
            for transposed in [false, true] {
                let at = View::new(&a, k, m);
                let bt = View::new(&b, n, k);
                let (av, bv) = if transposed {
                    (at.t(), bt.t())
                } else {
                    (View::new(&a, m, k), View::new(&b, k, n))
                };
                for beta in [0.0, 1.0] {
                    let mut serial = c0.clone();
                    gemm_serial(1.0, av, bv, beta, &mut serial);
                    for threads in [2, 3, 4] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        let mut par = c0.clone();
                        pool.install(|| gemm(1.0, av, bv, beta, &mut par));
                        assert_eq!(
                            serial, par,
                            "{m}x{k}x{n} transposed {transposed} beta {beta} threads {threads}"
                        );
                    }
                }
            }
        }
    }

    /// The many-dots kernel (eight and four rows at a time where the CPU has AVX) gives
    /// each row the same bits as the plain `dot`, for lengths with and without a tail
    /// and row counts with and without a remainder, through a padded row stride.
    #[test]
    fn dots_match_dot_bit_for_bit() {
        for (rows, k) in [(1, 64), (4, 8), (7, 64), (13, 9), (32, 3), (9, 130)] {
            let stride = k + 3;
            let a = data(rows * stride, 6);
            let v = data(k, 7);
            let view = View {
                data: &a[..(rows - 1) * stride + k],
                rows,
                cols: k,
                row_stride: stride as isize,
                col_stride: 1,
            };
            for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (2.0, -0.5)] {
                let c0 = data(rows, 8);
                let mut got = c0.clone();
                dots(alpha, view, &v, beta, &mut got);
                let want: Vec<f32> = (0..rows)
                    .map(|i| blend(alpha * dot(view.row(i), &v), beta, c0[i]))
                    .collect();
                assert_eq!(got, want, "{rows} rows of {k}, alpha {alpha} beta {beta}");
            }
        }
    }

    /// The one-row, one-column and outer-product kernels against the naive product,
    /// with `beta = 0` never reading the (NaN) output and `beta = 1` adding to it.
    #[test]
    fn thin_products_match_naive() {
        for (m, k, n) in [
            (1, 64, 64),
            (1, 7, 5),
            (32, 64, 1),
            (5, 9, 1),
            (64, 1, 8),
            (3, 1, 1),
            (1, 1, 1),
        ] {
            let (a, b) = (data(m * k, 4), data(k * n, 5));
            let views = [
                (View::new(&a, m, k), View::new(&b, k, n)),
                (View::new(&a, m, k), View::new(&b, n, k).t()),
                (View::new(&a, k, m).t(), View::new(&b, k, n)),
            ];
            for (av, bv) in views {
                let want = naive(av, bv);
                let mut c = vec![f32::NAN; m * n];
                gemm(1.0, av, bv, 0.0, &mut c);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-5, "{m}x{k}x{n}: {x} vs {y}");
                }
                let mut c = vec![1.0; m * n];
                gemm(1.0, av, bv, 1.0, &mut c);
                for (x, y) in c.iter().zip(&want) {
                    assert!(
                        (x - (y + 1.0)).abs() < 1e-5,
                        "{m}x{k}x{n} accumulating: {x} vs {y} + 1"
                    );
                }
            }
        }
    }
}
