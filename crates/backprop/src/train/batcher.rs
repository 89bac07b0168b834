//! Which rows each step of an epoch trains on: the epoch's order of rows (shuffled
//! unless the batch is the whole set), this process's share of each batch when the rows
//! are sharded over processes, and the batch cut into pieces of at most
//! [`PIECE_ROWS`] rows whose gradients are summed.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Dataset, Shard, PIECE_ROWS};
use crate::matrix::Matrix;

/// The rows of one piece of a batch, and its share of the batch.
pub(crate) struct Piece<'a> {
    /// Inputs, `rows x features`, row-major.
    pub x: &'a [f32],
    /// Targets, `rows x outputs`, row-major.
    pub y: &'a [f32],
    /// Rows in the piece.
    pub rows: usize,
    /// The piece's fraction of the batch's rows (1 for a batch in one piece).
    pub share: f32,
    /// Whether the piece's gradient is added to the pieces' before it.
    pub accumulate: bool,
}

/// The order of rows of an epoch and the buffers that gather a piece's rows. Reused
/// from epoch to epoch, so steady-state training allocates nothing.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// Global rows in the epoch's order.
    order: Vec<usize>,
    /// This process's local rows of the current batch (sharded training only).
    local: Vec<usize>,
    /// A piece's gathered inputs and targets.
    x: Matrix,
    y: Matrix,
    /// Rows per batch, and this process's shard of the rows.
    batch: usize,
    shard: Shard,
}

impl Batcher {
    /// A batcher for batches of `batch` rows out of the rows of `shard`.
    pub(crate) fn new(shard: Shard, batch: usize) -> Self {
        Batcher {
            order: Vec::with_capacity(shard.total),
            local: Vec::new(),
            x: Matrix::default(),
            y: Matrix::default(),
            batch,
            shard,
        }
    }

    /// Training rows of all processes together.
    pub(crate) fn total(&self) -> usize {
        self.shard.total
    }

    /// Updates per epoch.
    pub(crate) fn steps(&self) -> usize {
        self.shard.total.div_ceil(self.batch)
    }

    /// Starts an epoch: the rows in order, shuffled with `rng` when `shuffle` and the
    /// batch is not the whole set (a full batch is never shuffled).
    pub(crate) fn start_epoch(&mut self, shuffle: bool, rng: &mut ChaCha8Rng) {
        self.order.clear();
        self.order.extend(0..self.shard.total);
        if shuffle && self.batch < self.shard.total {
            self.order.shuffle(rng);
        }
    }

    /// The global rows of step `step` (all processes together).
    pub(crate) fn global_rows(&self, step: usize) -> usize {
        let start = step * self.batch;
        (start + self.batch).min(self.shard.total) - start
    }

    /// Calls `f` with each piece of step `step`'s batch that this process holds: the
    /// rows `order[step * batch..]` of its shard, at most [`PIECE_ROWS`] at a time.
    /// Returns how many rows this process holds (0: `f` is not called).
    pub(crate) fn for_each_piece(
        &mut self,
        train: &Dataset,
        step: usize,
        mut f: impl FnMut(Piece<'_>),
    ) -> usize {
        let start = step * self.batch;
        let end = (start + self.batch).min(self.shard.total);
        let shard = self.shard;
        let idx: &[usize] = if shard.size == 1 {
            &self.order[start..end]
        } else {
            let mine = self.order[start..end]
                .iter()
                .filter(|&&g| g % shard.size == shard.rank);
            self.local.clear();
            self.local.extend(mine.map(|&g| g / shard.size));
            &self.local
        };
        let rows = idx.len();
        let (xc, yc) = (train.x.cols(), train.y.cols());
        for (i, piece) in idx.chunks(PIECE_ROWS).enumerate() {
            // Consecutive rows (a full batch, which is never shuffled) are used where
            // they lie; others are gathered.
            let (x, y) = match consecutive(piece) {
                Some(r) => (
                    &train.x.as_slice()[r.start * xc..r.end * xc],
                    &train.y.as_slice()[r.start * yc..r.end * yc],
                ),
                None => {
                    self.x.gather_rows(&train.x, piece);
                    self.y.gather_rows(&train.y, piece);
                    (self.x.as_slice(), self.y.as_slice())
                }
            };
            let share = piece.len() as f32 / rows as f32;
            f(Piece {
                x,
                y,
                rows: piece.len(),
                share,
                accumulate: i > 0,
            });
        }
        rows
    }
}

/// The range `piece` covers when it lists consecutive rows in order.
fn consecutive(piece: &[usize]) -> Option<std::ops::Range<usize>> {
    let first = *piece.first()?;
    let in_order = piece.iter().enumerate().all(|(k, &r)| r == first + k);
    in_order.then(|| first..first + piece.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Only rows listed consecutively and in order are read in place.
    #[test]
    fn consecutive_rows_are_recognised() {
        assert_eq!(consecutive(&[3, 4, 5]), Some(3..6));
        assert_eq!(consecutive(&[7]), Some(7..8));
        assert_eq!(consecutive(&[]), None);
        assert_eq!(consecutive(&[3, 5, 6]), None);
        assert_eq!(consecutive(&[4, 3]), None);
        assert_eq!(consecutive(&[0, 1, 2, 2]), None);
    }

    fn dataset(rows: usize) -> Dataset {
        let x = Matrix::from_vec(rows, 2, (0..2 * rows).map(|v| v as f32).collect()).unwrap();
        let y = Matrix::from_vec(rows, 1, (0..rows).map(|v| v as f32).collect()).unwrap();
        Dataset::new(x, y).unwrap()
    }

    /// Each epoch visits every row exactly once, in batches of the configured size (the
    /// last shorter), in pieces of at most `PIECE_ROWS` whose shares sum to one; a full
    /// batch keeps the rows in order and reads them in place.
    #[test]
    fn an_epoch_visits_every_row_once_in_pieces() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (rows, batch) in [(1300, 1300), (1300, 600), (10, 3), (7, 1)] {
            let data = dataset(rows);
            let mut b = Batcher::new(Shard::whole(rows), batch);
            b.start_epoch(true, &mut rng);
            let mut seen = vec![0; rows];
            for step in 0..b.steps() {
                let (mut share, mut pieces) = (0.0, 0);
                let held = b.for_each_piece(&data, step, |p| {
                    assert!(p.rows <= PIECE_ROWS && p.accumulate == (pieces > 0));
                    for &v in p.y {
                        seen[v as usize] += 1;
                    }
                    if batch == rows {
                        assert_eq!(p.x.as_ptr(), data.x.row(pieces * PIECE_ROWS).as_ptr());
                    }
                    share += p.share;
                    pieces += 1;
                });
                assert_eq!(held, b.global_rows(step));
                assert_eq!(pieces, held.div_ceil(PIECE_ROWS));
                assert!(
                    (share - 1.0).abs() < 1e-6,
                    "{rows}/{batch} step {step}: {share}"
                );
            }
            assert!(seen.iter().all(|&n| n == 1), "{rows}/{batch}");
        }
    }
}
