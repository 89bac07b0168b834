//! Data-parallel training inside one process: K threads, each holding only its shard of
//! the training and validation rows, combine their gradients through a shared reducer
//! after every step, as `mpirun -n K backprop train` does over MPI. The result must be
//! the single-process run up to floating-point summation order.
//!
//! Tolerance: the only difference from one process is the order in which the rows of a
//! batch are summed (each thread sums its part, then the parts are added), which moves
//! each gradient by a few f32 ulp (~1e-7 relative) per step. Over the 5 epochs x 11
//! steps here the largest weight difference measured is 3.6e-7 of the largest weight
//! (2 threads; 3.0e-7 with 3), so `TOL = 1e-5` leaves a factor of ~30, while the
//! plausible bug of averaging the parts' means without weighting them by their rows
//! moves the weights by 1e-1 (tested below).

use std::sync::{Arc, Barrier, Mutex};

use backprop::train::{GradientReducer, Shard};
use backprop::{
    Activation, BatchSize, Dataset, Init, Loss, Matrix, Network, NetworkConfig, OptimizerKind,
    TrainConfig, TrainState, Trainer,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f32 = 1e-5;

/// Sums shared by the threads of one run, with a barrier to keep them in step.
struct Shared {
    grads: Mutex<Vec<f64>>,
    sums: Mutex<Vec<f64>>,
    barrier: Barrier,
}

/// One thread's reducer: adds `rows x mean` into the shared sums, waits for all, divides
/// by the total rows.
struct ThreadReducer {
    shared: Arc<Shared>,
    shard: Shard,
    weighted: bool,
}

impl ThreadReducer {
    /// Waits until every thread has read the result, then clears the sums for the next
    /// call (one thread does it; the last barrier keeps the others from adding early).
    fn finish(&self, buf: &Mutex<Vec<f64>>) {
        if self.shared.barrier.wait().is_leader() {
            buf.lock().unwrap().fill(0.0);
        }
        self.shared.barrier.wait();
    }
}

impl GradientReducer for ThreadReducer {
    fn reduce(&mut self, grads: &mut [f32], loss: &mut f32, rows: usize) {
        let n = grads.len();
        // A deliberately wrong reducer for the negative test: the plain mean of the
        // parts' means, ignoring that the parts have unequal rows.
        let w = if self.weighted {
            rows as f64
        } else {
            f64::from(u8::from(rows > 0))
        };
        {
            let mut s = self.shared.grads.lock().unwrap();
            for (a, &g) in s.iter_mut().zip(grads.iter()) {
                *a += g as f64 * w;
            }
            s[n] += *loss as f64 * w;
            s[n + 1] += w;
        }
        self.shared.barrier.wait();
        {
            let s = self.shared.grads.lock().unwrap();
            for (g, a) in grads.iter_mut().zip(s.iter()) {
                *g = (a / s[n + 1]) as f32;
            }
            *loss = (s[n] / s[n + 1]) as f32;
        }
        self.finish(&self.shared.grads);
    }

    fn shard(&self, _local_rows: usize) -> Shard {
        self.shard
    }

    fn sum(&mut self, values: &mut [f64]) {
        {
            let mut s = self.shared.sums.lock().unwrap();
            for (a, v) in s.iter_mut().zip(values.iter()) {
                *a += v;
            }
        }
        self.shared.barrier.wait();
        values.copy_from_slice(&self.shared.sums.lock().unwrap()[..values.len()]);
        self.finish(&self.shared.sums);
    }
}

fn data(rows: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f32> = (0..rows * 3).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<f32> = x
        .chunks(3)
        .map(|r| (2.0 * r[0]).sin() + r[1] * r[2] - 0.5 * r[2])
        .collect();
    Dataset::new(
        Matrix::from_vec(rows, 3, x).unwrap(),
        Matrix::from_vec(rows, 1, y).unwrap(),
    )
    .unwrap()
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 5,
        batch_size: BatchSize::Mini(10),
        loss: Loss::Mse,
        optimizer: OptimizerKind::Sgd.build(0.9, 0.0),
        lr: 0.05,
        seed: 3,
        ..TrainConfig::default()
    }
}

fn network() -> Network {
    let cfg = NetworkConfig {
        inputs: 3,
        hidden: vec![16],
        outputs: 1,
        activation: Activation::Tanh,
        output_activation: Activation::Identity,
        init: Init::default(),
        stack: Vec::new(),
    };
    cfg.init(&mut ChaCha8Rng::seed_from_u64(11)).unwrap()
}

/// Trains on `k` threads; returns each thread's final parameters and validation losses.
fn sharded(
    train: &Dataset,
    valid: &Dataset,
    k: usize,
    weighted: bool,
) -> Vec<(Vec<f32>, Vec<f64>)> {
    let n = network().num_params();
    let shared = Arc::new(Shared {
        grads: Mutex::new(vec![0.0; n + 2]),
        sums: Mutex::new(vec![0.0; 2]),
        barrier: Barrier::new(k),
    });
    let rows: Vec<usize> = (0..train.len()).collect();
    let vrows: Vec<usize> = (0..valid.len()).collect();
    let handles: Vec<_> = (0..k)
        .map(|rank| {
            let shard = Shard {
                rank,
                size: k,
                total: train.len(),
            };
            let vshard = Shard {
                rank,
                size: k,
                total: valid.len(),
            };
            let local = train.select(&shard.select(&rows));
            let local_valid = valid.select(&vshard.select(&vrows));
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut net = network();
                let trainer = Trainer::new(config()).unwrap();
                let mut state = TrainState::new(trainer.config(), &net);
                let mut reducer = ThreadReducer {
                    shared,
                    shard,
                    weighted,
                };
                trainer
                    .resume(
                        &mut net,
                        &local,
                        Some(&local_valid),
                        &mut state,
                        &mut [],
                        &mut reducer,
                    )
                    .unwrap();
                (
                    net.params().to_vec(),
                    state
                        .history
                        .epochs
                        .iter()
                        .map(|e| e.valid_loss.unwrap())
                        .collect(),
                )
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// `max |a - b| / max |a|`: the largest difference relative to the largest weight.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn sharded_training_matches_one_process() {
    // 101 rows and batches of 10: the parts of each batch are unequal, and the last
    // batch has a single row, which one of the threads does not hold.
    let (train, valid) = (data(101, 1), data(23, 2));
    let mut net = network();
    let single = Trainer::new(config())
        .unwrap()
        .fit(&mut net, &train, Some(&valid), &mut [])
        .unwrap();
    for k in [2, 3] {
        let runs = sharded(&train, &valid, k, true);
        for (params, valid_losses) in &runs {
            // Every replica holds the same weights.
            assert_eq!(params, &runs[0].0, "replicas diverged");
            let d = rel_diff(net.params(), params);
            eprintln!("{k} shards: weights differ by {d:e} of the largest weight");
            assert!(
                d < TOL,
                "{k} shards: weights differ by {d:e} of the largest weight"
            );
            for (e, (v, s)) in valid_losses.iter().zip(&single.epochs).enumerate() {
                let s = s.valid_loss.unwrap();
                assert!(
                    (v - s).abs() <= 1e-5 * s,
                    "{k} shards, epoch {}: validation loss {v} vs {s}",
                    e + 1
                );
            }
        }
    }
}

#[test]
fn unweighted_mean_of_unequal_parts_is_caught() {
    let (train, valid) = (data(101, 1), data(23, 2));
    let mut net = network();
    Trainer::new(config())
        .unwrap()
        .fit(&mut net, &train, Some(&valid), &mut [])
        .unwrap();
    let runs = sharded(&train, &valid, 2, false);
    let d = rel_diff(net.params(), &runs[0].0);
    eprintln!("unweighted: weights differ by {d:e} of the largest weight");
    assert!(
        d > 100.0 * TOL,
        "a wrongly weighted reduction went unnoticed ({d:e})"
    );
}

#[test]
fn shards_partition_the_rows() {
    for total in 0..20 {
        for size in 1..6 {
            let all: Vec<usize> = (0..total).collect();
            let mut seen = Vec::new();
            for rank in 0..size {
                let s = Shard { rank, size, total };
                let mine = s.select(&all);
                assert_eq!(mine.len(), s.rows());
                assert!(mine
                    .iter()
                    .enumerate()
                    .all(|(j, &g)| g % size == rank && g / size == j));
                seen.extend(mine);
            }
            seen.sort();
            assert_eq!(seen, all);
        }
    }
}

#[test]
fn a_shard_of_the_wrong_size_is_refused() {
    let train = data(10, 1);
    let mut net = network();
    let trainer = Trainer::new(config()).unwrap();
    let mut state = TrainState::new(trainer.config(), &net);
    struct Wrong;
    impl GradientReducer for Wrong {
        fn shard(&self, _: usize) -> Shard {
            Shard {
                rank: 0,
                size: 2,
                total: 10,
            }
        }
    }
    assert!(trainer
        .resume(&mut net, &train, None, &mut state, &mut [], &mut Wrong)
        .is_err());
}
