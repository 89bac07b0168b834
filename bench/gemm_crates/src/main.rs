//! Which matrix-multiply crate for backprop: single-threaded GFLOP/s of `matrixmultiply`,
//! `gemm` and `faer` (sequential) on the products of the benchmark workloads
//! (`bench/compare.py`), with the same strides backprop passes (transposed operands are
//! strided views, never copies), and how many heap allocations ten calls make.
//!
//! ```text
//! cd bench/gemm_crates && cargo run --release
//! ```
//! Results and the decision: `BENCHMARKS.md` and the docs of `crates/backprop/src/matrix.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 { ALLOCS.fetch_add(1, Relaxed); System.alloc(l) }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) { System.dealloc(p, l) }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 { ALLOCS.fetch_add(1, Relaxed); System.alloc_zeroed(l) }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 { ALLOCS.fetch_add(1, Relaxed); System.realloc(p, l, n) }
}
#[global_allocator]
static G: Counting = Counting;
use std::time::Instant;
fn main() {
    // (m, k, n, a transposed, b transposed): the products of a 784-512-256-10 step at
    // batch 128 (workload 4) and of a 512-row piece of the 8-64-64-1 full batch (workload 3).
    let shapes = [(128usize, 784usize, 512usize, false, true), (512, 128, 784, true, false), (128, 512, 256, false, true), (256,128,512,true,false), (128,256,512,false,false), (256,784,256,false,false), (512,64,64,false,true), (64,512,64,true,false), (512,64,64,false,false), (512,8,64,false,true), (64,512,8,true,false)];
    for &(m, k, n, at, bt) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        // strides: a is m x k; if at, stored as k x m
        let (rsa, csa) = if at { (1isize, m as isize) } else { (k as isize, 1) };
        let (rsb, csb) = if bt { (1isize, k as isize) } else { (n as isize, 1) };
        let flops = 2.0 * (m * k * n) as f64;
        let reps = ((2e9 / flops) as usize).max(10);
        let t = Instant::now();
        for _ in 0..reps {
            unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), n as isize, 1); }
        }
        let mm = flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let t = Instant::now();
        for _ in 0..reps {
            unsafe { gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), csa, rsa, b.as_ptr(), csb, rsb, 0.0, 1.0, false, false, false, gemm::Parallelism::None); }
        }
        let gm = flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let t = Instant::now();
        for _ in 0..reps {
            let lhs = unsafe { faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, rsa, csa) };
            let rhs = unsafe { faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, rsb, csb) };
            let dst = unsafe { faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, n as isize, 1) };
            faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, faer::Par::Seq);
        }
        let fm = flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let before = ALLOCS.load(Relaxed);
        for _ in 0..10 {
            let lhs = unsafe { faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, rsa, csa) };
            let rhs = unsafe { faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, rsb, csb) };
            let dst = unsafe { faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, n as isize, 1) };
            faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, faer::Par::Seq);
        }
        let faer_allocs = ALLOCS.load(Relaxed) - before;
        let before = ALLOCS.load(Relaxed);
        for _ in 0..10 {
            unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), n as isize, 1); }
        }
        println!("  allocations per 10 calls: faer {faer_allocs}, matrixmultiply {}", ALLOCS.load(Relaxed) - before);
        println!("{m}x{k}x{n} at={at} bt={bt}: matrixmultiply {mm:.1} GFLOP/s, gemm {gm:.1}, faer {fm:.1}");
    }
}
