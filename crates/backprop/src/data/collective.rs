//! Statistics over data that is split between processes.
//!
//! In data-parallel training every process holds only its shard of the rows, yet the
//! preprocessing (which columns are numbers, medians, scaling, categories, classes) must
//! be fitted on all training rows, exactly as one process would fit it. [`Collective`] is
//! the little the fitting code needs from the processes: element-wise sums and gathering
//! strings. The library implements it for one process ([`Alone`]); the command-line tool
//! implements it over MPI. Nothing here knows about MPI.
//!
//! Sums of counts are exact. Sums of floats depend on the order of addition, so a mean
//! computed over shards can differ from the one-process mean in the last bits.
//! Order statistics (medians, quantiles, minimum and maximum) are exact:
//! [`order_statistics`] finds the k-th smallest value of the union of the shards by
//! bisection over the values' bit patterns, 64 rounds of one sum of counts each, without
//! moving any value between processes.

/// What fitting on sharded data needs from the processes that hold the shards. Every
/// process calls the same methods in the same order (they are collective operations).
pub trait Collective {
    /// Whether this process holds all the data (no other process takes part).
    fn is_alone(&self) -> bool {
        false
    }
    /// Replaces each element by its sum over all processes.
    fn sum_u64(&mut self, values: &mut [u64]);
    /// Replaces each element by its sum over all processes.
    fn sum_f64(&mut self, values: &mut [f64]);
    /// Every process's `items`, concatenated in process order.
    fn gather_strings(&mut self, items: &[String]) -> Vec<String>;
}

/// One process holding all of the data: every operation is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Alone;

impl Collective for Alone {
    fn is_alone(&self) -> bool {
        true
    }
    fn sum_u64(&mut self, _values: &mut [u64]) {}
    fn sum_f64(&mut self, _values: &mut [f64]) {}
    fn gather_strings(&mut self, items: &[String]) -> Vec<String> {
        items.to_vec()
    }
}

/// The sum over all processes of one count.
pub fn total(c: &mut dyn Collective, local: usize) -> usize {
    let mut v = [local as u64];
    c.sum_u64(&mut v);
    v[0] as usize
}

/// A key whose unsigned order is `f64::total_cmp`'s order.
fn key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The value of a [`key`].
fn value(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The `ks[i]`-th smallest (0-based, in `f64::total_cmp` order) of all processes'
/// values, where each process passes its own values sorted by `f64::total_cmp`. Every
/// `ks[i]` must be below the total number of values.
///
/// Alone, this is `sorted[k]`. Otherwise each value is found by bisection over the 2^64
/// bit patterns: in every round each process counts its values at or below the middle
/// (a binary search in its sorted values) and one [`Collective::sum_u64`] of all the
/// counts at once tells whether the k-th value lies below. After 64 rounds the bounds
/// meet at the bit pattern of a value that some process holds, so the result is exact.
pub fn order_statistics(c: &mut dyn Collective, sorted: &[f64], ks: &[usize]) -> Vec<f64> {
    if c.is_alone() {
        return ks.iter().map(|&k| sorted[k]).collect();
    }
    let keys: Vec<u64> = sorted.iter().map(|&x| key(x)).collect();
    debug_assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "values must be sorted"
    );
    // The answer for each k is the smallest key v with count(<= v) > k, in [lo, hi].
    let mut lo = vec![0u64; ks.len()];
    let mut hi = vec![u64::MAX; ks.len()];
    let mut counts = vec![0u64; ks.len()];
    for _ in 0..64 {
        for (i, count) in counts.iter_mut().enumerate() {
            let mid = lo[i] + (hi[i] - lo[i]) / 2;
            *count = keys.partition_point(|&k| k <= mid) as u64;
        }
        c.sum_u64(&mut counts);
        for (i, &count) in counts.iter().enumerate() {
            let mid = lo[i] + (hi[i] - lo[i]) / 2;
            if count > ks[i] as u64 {
                hi[i] = mid;
            } else {
                lo[i] = mid + 1;
            }
        }
    }
    hi.into_iter().map(value).collect()
}

/// The sorted, de-duplicated union of every process's `items`.
pub fn union(c: &mut dyn Collective, items: &[String]) -> Vec<String> {
    let mut all = c.gather_strings(items);
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::any::Any;
    use std::sync::{Arc, Barrier, Mutex};

    /// One shard's side of shards run on threads of one process, calling the same
    /// operations in lockstep the way processes would.
    struct Threads {
        barrier: Arc<Barrier>,
        slots: Arc<Mutex<Vec<Box<dyn Any + Send>>>>,
        rank: usize,
    }

    impl Threads {
        /// Every shard's `mine`, in shard order.
        fn exchange<T: Clone + Send + 'static>(&mut self, mine: T) -> Vec<T> {
            self.slots.lock().unwrap()[self.rank] = Box::new(mine);
            self.barrier.wait();
            let all = self
                .slots
                .lock()
                .unwrap()
                .iter()
                .map(|b| b.downcast_ref::<T>().unwrap().clone())
                .collect();
            self.barrier.wait();
            all
        }
    }

    impl Collective for Threads {
        fn sum_u64(&mut self, values: &mut [u64]) {
            let all = self.exchange(values.to_vec());
            for (i, v) in values.iter_mut().enumerate() {
                *v = all.iter().map(|a| a[i]).sum();
            }
        }
        fn sum_f64(&mut self, values: &mut [f64]) {
            let all = self.exchange(values.to_vec());
            for (i, v) in values.iter_mut().enumerate() {
                *v = all.iter().map(|a| a[i]).sum();
            }
        }
        fn gather_strings(&mut self, items: &[String]) -> Vec<String> {
            self.exchange(items.to_vec()).concat()
        }
    }

    /// Runs `f(rank, collective)` for `size` shards on threads and returns the results.
    pub(crate) fn run_sharded<T: Send>(
        size: usize,
        f: impl Fn(usize, &mut dyn Collective) -> T + Sync,
    ) -> Vec<T> {
        let barrier = Arc::new(Barrier::new(size));
        let slots: Arc<Mutex<Vec<Box<dyn Any + Send>>>> = Arc::new(Mutex::new(
            (0..size)
                .map(|_| Box::new(()) as Box<dyn Any + Send>)
                .collect(),
        ));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..size)
                .map(|rank| {
                    let mut c = Threads {
                        barrier: barrier.clone(),
                        slots: slots.clone(),
                        rank,
                    };
                    let f = &f;
                    s.spawn(move || f(rank, &mut c))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn keys_order_like_total_cmp() {
        let mut xs = vec![
            -f64::MAX,
            -1.5,
            -0.0,
            0.0,
            1e-310,
            2.0,
            f64::MAX,
            -1e-300,
            7.25,
        ];
        xs.sort_by(f64::total_cmp);
        for w in xs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} vs {}", w[0], w[1]);
        }
        for &x in &xs {
            assert_eq!(value(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn order_statistics_over_shards_match_sorting_everything() {
        // Values with ties, negatives and a spread of magnitudes, dealt to 3 shards.
        let all: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 263) as f64 * if i % 5 == 0 { -0.37 } else { 1.13 })
            .collect();
        let mut sorted = all.clone();
        sorted.sort_by(f64::total_cmp);
        let ks = [0, 1, 499, 500, 998, 999, 250];
        let got = run_sharded(3, |rank, c| {
            let mut mine: Vec<f64> = all.iter().skip(rank).step_by(3).copied().collect();
            mine.sort_by(f64::total_cmp);
            order_statistics(c, &mine, &ks)
        });
        for per_rank in got {
            let want: Vec<f64> = ks.iter().map(|&k| sorted[k]).collect();
            assert_eq!(per_rank, want);
        }
    }

    #[test]
    fn order_statistics_with_an_empty_shard() {
        let got = run_sharded(2, |rank, c| {
            let mine: Vec<f64> = if rank == 0 {
                vec![]
            } else {
                vec![-2.0, 3.0, 3.0]
            };
            order_statistics(c, &mine, &[0, 1, 2])
        });
        assert_eq!(got[0], vec![-2.0, 3.0, 3.0]);
        assert_eq!(got[1], got[0]);
    }
}
