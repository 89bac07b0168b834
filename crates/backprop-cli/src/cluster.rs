//! The processes of one training run, and which rows each one holds.
//!
//! Without the `distributed` feature, or when started without `mpirun` (or with
//! `mpirun -n 1`), there is one process and every function here is the identity: the
//! run is bit for bit the single-process run.
//!
//! Under `mpirun -n K` (feature `distributed`, see `distributed.rs`), rank `r` of `K`:
//! * streams the CSV file (or the embedded table) once to count its rows, without
//!   keeping any, and computes the same seeded split as one process;
//! * takes its shard of each part: every K-th row of the training, validation and test
//!   rows, starting at `r`; streams the file a second time and decodes and keeps only
//!   those rows (`Table::read_rows`), so no rank ever holds another rank's rows;
//! * fits the preprocessing over all ranks' training rows with collective operations
//!   (`backprop::data::collective`): whether a column is numeric is decided on every
//!   rank's cell counts, categories and classes are unions, medians, quantiles, minima
//!   and maxima exact order statistics found by bisection on counts (no value moves
//!   between ranks), means and standard deviations sums. So each rank gets the
//!   preprocessing one process would fit, up to floating-point summation order in the
//!   means; the integration tests compare it with the one-process fit;
//! * trains on its shard (one all-reduce per step), computing the validation loss of
//!   every epoch across ranks (an all-reduce of the summed loss and row count);
//! * after training, every rank runs the network on its own validation and test rows;
//!   rank 0 gathers the predictions and targets (a few numbers per row, never the
//!   features) and alone computes the metrics, prints and writes the run folder and
//!   checkpoints.
//!
//! A `--test FILE` is sharded the same way (every K-th row). An MNIST-format folder
//! (`--example mnist`) likewise: each rank streams the IDX files, keeping every K-th of
//! the training, validation and test images, and the per-pixel scaling comes from pixel
//! histograms summed over the ranks (`images.rs`).
//!
//! A rank that fails aborts the whole job (see [`abort_on_error`] and the panic hook
//! installed at start), so no rank is left waiting in a collective.

use std::sync::OnceLock;

use anyhow::Result;
use backprop::data::collective::{Alone, Collective};
use backprop::data::split::Split;
use backprop::train::{GradientReducer, LocalReducer, Shard};
use backprop::Matrix;

/// (rank, size) once [`start`] has run.
static WORLD: OnceLock<(usize, usize)> = OnceLock::new();

/// This process's rank (0 without MPI).
pub fn rank() -> usize {
    WORLD.get().map_or(0, |w| w.0)
}

/// Number of processes in the run (1 without MPI).
pub fn size() -> usize {
    WORLD.get().map_or(1, |w| w.1)
}

/// Whether this process prints, evaluates and writes files (rank 0).
pub fn is_root() -> bool {
    rank() == 0
}

/// Membership of the run; with MPI, dropping it leaves the job (`MPI_Finalize`).
pub struct Guard {
    #[cfg(feature = "distributed")]
    _session: Option<crate::distributed::Session>,
}

/// Joins the MPI job when built with the `distributed` feature (a process started
/// without `mpirun` is a job of one); otherwise a run of one process.
pub fn start() -> Result<Guard> {
    #[cfg(feature = "distributed")]
    {
        let (session, rank, size) = crate::distributed::init()?;
        let _ = WORLD.set((rank, size));
        Ok(Guard {
            _session: Some(session),
        })
    }
    #[cfg(not(feature = "distributed"))]
    {
        let _ = WORLD.set((0, 1));
        Ok(Guard {})
    }
}

/// This process's share of `total` rows.
pub fn shard(total: usize) -> Shard {
    Shard {
        rank: rank(),
        size: size(),
        total,
    }
}

/// This process's rows of a list of row indices (every `size`-th from `rank`).
pub fn shard_rows(rows: &[usize]) -> Vec<usize> {
    shard(rows.len()).select(rows)
}

/// This process's rows of each part of a split.
pub fn shard_split(s: Split) -> Split {
    if size() == 1 {
        return s;
    }
    Split {
        train: shard_rows(&s.train),
        valid: shard_rows(&s.valid),
        test: shard_rows(&s.test),
    }
}

/// Sums of per-process counts over all processes (the row counts of the whole run).
pub fn totals<const N: usize>(local: [usize; N]) -> [usize; N] {
    #[cfg(feature = "distributed")]
    if size() > 1 {
        let mut v = local.map(|n| n as u64);
        crate::distributed::sum_u64(&mut v);
        return v.map(|n| n as usize);
    }
    local
}

/// The collective operations of the run's processes, for fitting the preprocessing on
/// rows that are split between them.
pub fn collective() -> Box<dyn Collective> {
    #[cfg(feature = "distributed")]
    if size() > 1 {
        return Box::new(crate::distributed::MpiCollective::new());
    }
    Box::new(Alone)
}

/// The gradient reducer of a training run over `local_rows` rows of this process (a
/// collective: every process calls it at the same point).
pub fn reducer(local_rows: usize) -> Box<dyn GradientReducer> {
    #[cfg(feature = "distributed")]
    if size() > 1 {
        let [total] = totals([local_rows]);
        return Box::new(crate::distributed::MpiReducer::new(shard(total)));
    }
    let _ = local_rows;
    Box::new(LocalReducer)
}

/// On rank 0, the rows of every process's `m` (rank 0's first, then rank 1's, ...);
/// elsewhere an empty matrix. One process: a copy of `m`.
pub fn gather_matrix(m: &Matrix) -> Matrix {
    #[cfg(feature = "distributed")]
    if size() > 1 {
        let all = crate::distributed::gather_f32(m.as_slice());
        let rows = all.len() / m.cols().max(1);
        return Matrix::from_vec(rows, m.cols(), all).unwrap_or_default();
    }
    m.clone()
}

/// With more than one process, a failed process aborts the whole job with the CLI's
/// exit code and a message naming its rank, instead of leaving the others waiting in a
/// collective. With one, returns `result` for `main` to report.
pub fn abort_on_error(result: Result<()>) -> Result<()> {
    #[cfg(feature = "distributed")]
    if let (Err(e), true) = (&result, size() > 1) {
        let message = format!(
            "error on rank {} of {}: {}",
            rank(),
            size(),
            crate::errors::chain(e)
        );
        crate::distributed::abort(&message, crate::errors::exit_code(e));
    }
    result
}
