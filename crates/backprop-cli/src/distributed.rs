//! Data-parallel training over MPI (feature `distributed`): `mpirun -n K backprop train`.
//!
//! Every rank runs the same command. Ranks agree on the split, the preprocessing and the
//! shuffled order of every epoch because all of them derive from `--seed`; each rank
//! keeps only its shard of the rows (see [`crate::cluster`]) and computes the gradient
//! of the part of every global batch it holds. One all-reduce per step then sums a
//! single flat buffer `[rows x gradient..., rows x loss, rows]` over the ranks, and
//! every rank divides by the total rows, so each applies the same mean gradient and the
//! replicas stay identical. Only MPI calls live here; the policy is in `cluster.rs`.
//!
//! All MPI calls come from one thread at a time (the one running training, which is a
//! rayon worker, not necessarily the main thread), so MPI is initialised with
//! `MPI_THREAD_SERIALIZED`.

use anyhow::{bail, Result};
use backprop::data::collective::Collective;
use backprop::train::{GradientReducer, Shard};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::{Threading, Universe};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// Membership of the MPI job; dropping it calls `MPI_Finalize`.
pub struct Session {
    _universe: Universe,
}

/// Initialises MPI. Returns the session, this process's rank and the number of ranks
/// (1 when started without `mpirun`: MPI's singleton mode).
pub fn init() -> Result<(Session, usize, usize)> {
    let Some((universe, provided)) = mpi::initialize_with_threading(Threading::Serialized) else {
        bail!("MPI was already initialised in this process");
    };
    if !matches!(provided, Threading::Serialized | Threading::Multiple) {
        bail!("this MPI library does not support MPI_THREAD_SERIALIZED (got {provided:?}); build OpenMPI with thread support");
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    if size > 1 {
        install_panic_hook(rank, size);
    }
    Ok((
        Session {
            _universe: universe,
        },
        rank,
        size,
    ))
}

/// A panic on one rank would leave the others waiting in a collective for ever: report
/// it (without a backtrace) and abort the whole job instead.
fn install_panic_hook(rank: usize, size: usize) {
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("error: rank {rank} of {size} panicked ({info}); aborting all ranks");
        SimpleCommunicator::world().abort(101)
    }));
}

/// Prints `message` and aborts every rank of the job with exit code `code`.
pub fn abort(message: &str, code: u8) -> ! {
    eprintln!("{message}");
    SimpleCommunicator::world().abort(i32::from(code))
}

/// Element-wise sums over all ranks.
pub fn sum_u64(values: &mut [u64]) {
    let send = values.to_vec();
    SimpleCommunicator::world().all_reduce_into(&send[..], values, SystemOperation::sum());
}

/// Rank 0 receives every rank's `data` concatenated in rank order; the others get an
/// empty vector.
pub fn gather_f32(data: &[f32]) -> Vec<f32> {
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let count = data.len() as i32;
    if world.rank() != 0 {
        root.gather_into(&count);
        root.gather_varcount_into(data);
        return Vec::new();
    }
    let mut counts = vec![0i32; world.size() as usize];
    root.gather_into_root(&count, &mut counts[..]);
    let displs = displacements(&counts);
    let mut all = vec![0.0f32; counts.iter().map(|&c| c as usize).sum()];
    let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
    root.gather_varcount_into_root(data, &mut part);
    all
}

/// Averages the gradient of each step over the ranks, weighting each rank's mean by the
/// rows of the global batch it computed (the parts are unequal when the batch's rows
/// fall unevenly on the shards).
pub struct MpiReducer {
    world: SimpleCommunicator,
    shard: Shard,
    send: Vec<f32>,
    recv: Vec<f32>,
}

impl MpiReducer {
    /// The reducer of the rank holding `shard`.
    pub fn new(shard: Shard) -> Self {
        MpiReducer {
            world: SimpleCommunicator::world(),
            shard,
            send: Vec::new(),
            recv: Vec::new(),
        }
    }
}

impl GradientReducer for MpiReducer {
    fn reduce(&mut self, grads: &mut [f32], loss: &mut f32, rows: usize) {
        let n = grads.len();
        let w = rows as f32;
        self.send.clear();
        self.send.extend(grads.iter().map(|&g| g * w));
        self.send.extend([*loss * w, w]);
        self.recv.resize(n + 2, 0.0);
        // The one collective of a step: gradient, loss and row count in one buffer.
        self.world
            .all_reduce_into(&self.send[..], &mut self.recv[..], SystemOperation::sum());
        // Every global batch has at least one row, so the total is positive.
        let total = self.recv[n + 1];
        for (g, &s) in grads.iter_mut().zip(&self.recv[..n]) {
            *g = s / total;
        }
        *loss = self.recv[n] / total;
    }

    fn shard(&self, _local_rows: usize) -> Shard {
        self.shard
    }

    fn sum(&mut self, values: &mut [f64]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }
}

/// The collective operations that fitting the preprocessing on sharded rows needs
/// (`backprop::data::collective`), over all ranks.
pub struct MpiCollective {
    world: SimpleCommunicator,
}

impl MpiCollective {
    /// Over every rank of the job.
    // No `Default`: making one needs MPI started, which `new`'s callers see to.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        MpiCollective {
            world: SimpleCommunicator::world(),
        }
    }
}

impl Collective for MpiCollective {
    fn sum_u64(&mut self, values: &mut [u64]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn sum_f64(&mut self, values: &mut [f64]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn gather_strings(&mut self, items: &[String]) -> Vec<String> {
        // Each string as its byte length (u32, little-endian) and its bytes.
        let mut send = Vec::new();
        for s in items {
            send.extend((s.len() as u32).to_le_bytes());
            send.extend(s.as_bytes());
        }
        let mut counts = vec![0i32; self.world.size() as usize];
        self.world
            .all_gather_into(&(send.len() as i32), &mut counts[..]);
        let displs = displacements(&counts);
        let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
        let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
        self.world.all_gather_varcount_into(&send[..], &mut part);
        let mut out = Vec::new();
        let mut rest = &all[..];
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_le_bytes(*len) as usize;
            out.push(String::from_utf8_lossy(&tail[..len]).into_owned());
            rest = &tail[len..];
        }
        out
    }
}

/// Where each rank's part starts in a gathered buffer: the running sums of `counts`.
fn displacements(counts: &[i32]) -> Vec<i32> {
    counts
        .iter()
        .scan(0, |at, &c| {
            let d = *at;
            *at += c;
            Some(d)
        })
        .collect()
}
