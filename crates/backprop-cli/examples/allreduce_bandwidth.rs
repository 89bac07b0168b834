//! Measures the all-reduce that data-parallel training does once per step: a sum of
//! `f32` buffers of 1 to 16 MB over all ranks, as in `backprop train` under `mpirun`.
//!
//! ```text
//! cargo build --release -p backprop-cli --features distributed --example allreduce_bandwidth
//! mpirun -n 2 target/release/examples/allreduce_bandwidth
//! ```
//!
//! Prints, per size, the median time of one all-reduce and two bandwidths: the
//! algorithm bandwidth (buffer bytes / time) and the bus bandwidth
//! (`2 (K-1)/K x bytes / time`, the bytes each rank must send and receive in a ring
//! all-reduce; the figure NCCL's and OSU's benchmarks report), which is what a network
//! link must carry.

use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::traits::*;

fn main() {
    let Some(universe) = mpi::initialize() else {
        eprintln!("MPI is already initialised");
        std::process::exit(2);
    };
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size() as f64);
    if rank == 0 {
        println!(
            "{} rank(s); f32 sum all-reduce, median of 30 after 5 warm-up calls",
            size
        );
        println!(
            "{:>10} {:>12} {:>14} {:>14}",
            "MB", "ms", "algo GB/s", "bus GB/s"
        );
    }
    for mb in [1usize, 2, 4, 8, 16] {
        let n = mb * 1024 * 1024 / 4;
        let send: Vec<f32> = (0..n)
            .map(|i| (i % 97) as f32 * 1e-3 + rank as f32)
            .collect();
        let mut recv = vec![0.0f32; n];
        let mut times = Vec::new();
        for it in 0..35 {
            world.barrier();
            let t = Instant::now();
            world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
            if it >= 5 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        // Slowest rank's view of each call: the time training waits.
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let mut worst = 0.0f64;
        world.all_reduce_into(&median, &mut worst, SystemOperation::max());
        if rank == 0 {
            let bytes = (n * 4) as f64;
            println!(
                "{:>10} {:>12.3} {:>14.2} {:>14.2}",
                mb,
                worst * 1e3,
                bytes / worst / 1e9,
                2.0 * (size - 1.0) / size * bytes / worst / 1e9
            );
        }
    }
}
