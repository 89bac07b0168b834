//! Steady-state training steps allocate no memory: every buffer a step needs (the
//! gathered batch, the forward trace, backprop's scratch, the gradient, the optimizer's
//! moments) is made once and reused.
//!
//! A counting `#[global_allocator]` wraps the system allocator. The trainer calls
//! [`Callback::on_step_end`] after each update, so the count difference between two
//! consecutive calls within an epoch is exactly what one step allocated. The first
//! epoch is a warm-up and not measured, nor is the first step of later epochs (between
//! it and the previous call lies the epoch's end, which records history and may
//! allocate). Only allocations on the threads that train are counted: the calling
//! thread, and for the threaded case the workers of its own rayon pool (the test
//! harness allocates on its own threads meanwhile).
//!
//! Allocations are split by alignment: everything this library and `std` allocate for
//! it (`Vec<f32>`, `Vec<usize>`, ...) asks for 8-byte alignment at most, while matrix
//! multiply crates allocate over-aligned packing buffers for their SIMD kernels. `faer`,
//! which computes the products, keeps its packing memory between calls, so neither kind
//! shows up after the warm-up epoch (`matrixmultiply` and `gemm`, the alternatives, would
//! allocate one per product: `bench/gemm_crates`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use backprop::activation::Activation;
use backprop::loss::Loss;
use backprop::matrix::Matrix;
use backprop::network::NetworkConfig;
use backprop::optim::{OptimizerKind, Schedule};
use backprop::train::{BatchSize, Callback, Control, Dataset, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Counting;

/// Allocations with alignment up to 8 bytes (ours and std's).
static ORDINARY: AtomicUsize = AtomicUsize::new(0);
/// Over-aligned allocations (a multiply crate's packing buffers).
static OVERALIGNED: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Held while a test counts: the counters are shared by all threads.
static LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count(layout: Layout, size: usize) {
    // `try_with`: the allocator is also called while threads are torn down.
    if !COUNTING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    let counter = if layout.align() > 8 {
        &OVERALIGNED
    } else {
        &ORDINARY
    };
    counter.fetch_add(1, Relaxed);
    BYTES.fetch_add(size, Relaxed);
}

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout, layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout, layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout, new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What one step allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Allocated {
    ordinary: usize,
    overaligned: usize,
    bytes: usize,
}

fn snapshot() -> Allocated {
    Allocated {
        ordinary: ORDINARY.load(Relaxed),
        overaligned: OVERALIGNED.load(Relaxed),
        bytes: BYTES.load(Relaxed),
    }
}

/// Allocations made during each measured step.
struct PerStep {
    last: Option<Allocated>,
    measured: Vec<Allocated>,
}

impl Callback for PerStep {
    fn on_step_end(&mut self, epoch: usize, step: usize, _steps: usize, _loss: f32) -> Control {
        let now = snapshot();
        // The first epoch warms up (buffers sized on first use, such as the copy of the
        // weights the last step of an epoch keeps for its statistics).
        if let (Some(prev), true) = (self.last, epoch > 1 && step > 1) {
            self.measured.push(Allocated {
                ordinary: now.ordinary - prev.ordinary,
                overaligned: now.overaligned - prev.overaligned,
                bytes: now.bytes - prev.bytes,
            });
        }
        self.last = Some(now);
        Control::Continue
    }
}

/// Random rows; with 32 inputs or more, like images, each row is zero outside a window
/// of a third of its columns at a random place, so that a batch has columns that are
/// zero in every row (a different number in each batch), which the first layer leaves
/// out of its products.
fn data(rows: usize, inputs: usize, outputs: usize, classify: bool) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut x: Vec<f32> = (0..rows * inputs)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    if inputs >= 32 {
        let window = inputs / 3;
        for row in x.chunks_exact_mut(inputs) {
            let start = rng.gen_range(0..inputs / 2);
            for (j, v) in row.iter_mut().enumerate() {
                if !(start..start + window).contains(&j) {
                    *v = 0.0;
                }
            }
        }
    }
    let y: Vec<f32> = (0..rows * outputs)
        .map(|i| {
            if classify {
                (i % outputs == (i / outputs) % outputs) as u8 as f32
            } else {
                rng.gen_range(-1.0..1.0)
            }
        })
        .collect();
    Dataset::new(
        Matrix::from_vec(rows, inputs, x).unwrap(),
        Matrix::from_vec(rows, outputs, y).unwrap(),
    )
    .unwrap()
}

struct Case {
    what: &'static str,
    activation: Activation,
    outputs: usize,
    loss: Loss,
    optimizer: OptimizerKind,
    schedule: Schedule,
    clip_norm: Option<f32>,
    batch_size: BatchSize,
}

/// Different layers, losses, optimizers, schedules, clipping and batch sizes (with and
/// without a short last batch), so every code path of a step is measured.
#[rustfmt::skip]
const CASES: [Case; 5] = [
    Case { what: "8-64-64-1 relu, sgd+momentum, mse, batch 32", activation: Activation::Relu, outputs: 1, loss: Loss::Mse, optimizer: OptimizerKind::Sgd, schedule: Schedule::Constant, clip_norm: None, batch_size: BatchSize::Mini(32) },
    Case { what: "8-64-64-1 relu, adam, mse, batch 1", activation: Activation::Relu, outputs: 1, loss: Loss::Mse, optimizer: OptimizerKind::Adam, schedule: Schedule::Constant, clip_norm: None, batch_size: BatchSize::Mini(1) },
    Case { what: "8-64-64-3 tanh, adamw, cross-entropy, clipped, one-cycle, batch 7", activation: Activation::Tanh, outputs: 3, loss: Loss::CrossEntropy, optimizer: OptimizerKind::Adamw, schedule: Schedule::OneCycle { pct_start: 0.3 }, clip_norm: Some(0.5), batch_size: BatchSize::Mini(7) },
    Case { what: "8-64-64-2 gelu, rmsprop, bce, cosine, batch 16", activation: Activation::Gelu, outputs: 2, loss: Loss::Bce, optimizer: OptimizerKind::Rmsprop, schedule: Schedule::Cosine { min_lr: 0.0 }, clip_norm: None, batch_size: BatchSize::Mini(16) },
    Case { what: "8-64-64-1 elu, nesterov, huber, exponential, batch 30 (short last batch)", activation: Activation::Elu, outputs: 1, loss: Loss::Huber, optimizer: OptimizerKind::Nesterov, schedule: Schedule::Exponential { gamma: 0.9 }, clip_norm: None, batch_size: BatchSize::Mini(30) },
];

/// Trains the case for three epochs and returns what each measured step allocated.
fn measure(c: &Case) -> Vec<Allocated> {
    measure_with(c, 8, &[64, 64], 200)
}

/// Trains `inputs-hidden-outputs` on `rows` rows for three epochs and returns what each
/// measured step allocated.
fn measure_with(c: &Case, inputs: usize, hidden: &[usize], rows: usize) -> Vec<Allocated> {
    let _guard = lock();
    measure_locked(c, inputs, hidden, rows)
}

/// Holds [`LOCK`] (a test that failed while holding it does not stop the others).
fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`measure_with`] for a caller holding [`LOCK`].
fn measure_locked(c: &Case, inputs: usize, hidden: &[usize], rows: usize) -> Vec<Allocated> {
    let config = NetworkConfig {
        inputs,
        hidden: hidden.to_vec(),
        outputs: c.outputs,
        activation: c.activation,
        ..Default::default()
    };
    measure_config(c, config, rows)
}

/// [`measure_locked`] for any network configuration.
fn measure_config(c: &Case, config: NetworkConfig, rows: usize) -> Vec<Allocated> {
    let train = data(rows, config.inputs, c.outputs, c.loss == Loss::CrossEntropy);
    let mut net = config.init(&mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let epochs = 3;
    let trainer = Trainer::new(TrainConfig {
        epochs,
        batch_size: c.batch_size,
        loss: c.loss,
        optimizer: c.optimizer.build(0.9, 1e-4),
        lr: 1e-3,
        schedule: c.schedule,
        clip_norm: c.clip_norm,
        record_steps: true,
        ..Default::default()
    })
    .unwrap();
    // Room for every measurement up front, so recording them allocates nothing.
    let mut per_step = PerStep {
        last: None,
        measured: Vec::with_capacity(epochs * rows),
    };
    COUNTING.with(|c| c.set(true));
    let result = trainer.fit(&mut net, &train, None, &mut [&mut per_step]);
    COUNTING.with(|c| c.set(false));
    result.unwrap();
    let steps = rows.div_ceil(c.batch_size.rows(rows));
    assert_eq!(
        per_step.measured.len(),
        (epochs - 1) * (steps - 1),
        "{}: steps measured",
        c.what
    );
    per_step.measured
}

/// Asserts that no measured step made an allocation that `counted` counts.
fn assert_none(c: &Case, steps: &[Allocated], counted: fn(&Allocated) -> usize) {
    let allocating: Vec<_> = steps
        .iter()
        .enumerate()
        .filter(|(_, a)| counted(a) > 0)
        .collect();
    assert!(
        allocating.is_empty(),
        "{}: {} of {} steps allocated; first few (step, allocations): {:?}",
        c.what,
        allocating.len(),
        steps.len(),
        &allocating[..allocating.len().min(3)]
    );
}

/// Our own code (trainer, network, layers, losses, optimizers, schedules) allocates
/// nothing in a steady-state step.
#[test]
fn steady_state_steps_make_no_allocations_of_their_own() {
    for c in &CASES {
        assert_none(c, &measure(c), |a| a.ordinary);
    }
}

/// The whole step, matrix products included, allocates nothing.
#[test]
fn steady_state_steps_allocate_nothing_at_all() {
    for c in &CASES {
        assert_none(c, &measure(c), |a| a.ordinary + a.overaligned);
    }
}

/// A network large enough that `matrix::gemm` splits its products over two threads
/// (MNIST-like: 392-512-256-10, softmax cross-entropy, batch 128; its two large layers'
/// products are 16.8M and 25.7M multiply-adds, above `matrix::gemm`'s 8.4M limit for
/// splitting), whose inputs have columns that are zero throughout a batch (see
/// [`data`]): our code allocates nothing on the training thread nor on the pool's
/// worker threads, and the workers, which each keep their own packing buffer, make it
/// at most once.
#[test]
fn threaded_steps_allocate_nothing_but_one_buffer_per_worker() {
    let c = Case {
        what: "392-512-256-10 relu, sgd+momentum, cross-entropy, batch 128, 2 threads",
        activation: Activation::Relu,
        outputs: 10,
        loss: Loss::CrossEntropy,
        optimizer: OptimizerKind::Sgd,
        schedule: Schedule::Constant,
        clip_norm: None,
        batch_size: BatchSize::Mini(128),
    };
    // The workers count from their start until they exit, and what they allocate
    // while starting and shutting down must not land in another test's measurement
    // (the counters are shared): the whole life of the pool is under `LOCK`, and the
    // test waits for both workers to exit (dropping a pool does not).
    static EXITED: AtomicUsize = AtomicUsize::new(0);
    let guard = lock();
    EXITED.store(0, Relaxed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| COUNTING.with(|c| c.set(true)))
        .exit_handler(|_| {
            COUNTING.with(|c| c.set(false));
            EXITED.fetch_add(1, Relaxed);
        })
        .build()
        .unwrap();
    let steps = pool.install(|| measure_locked(&c, 392, &[512, 256], 1024));
    drop(pool);
    let waited = std::time::Instant::now();
    while EXITED.load(Relaxed) < 2 {
        assert!(
            waited.elapsed().as_secs() < 30,
            "the pool's workers did not exit"
        );
        std::thread::yield_now();
    }
    drop(guard);
    assert_none(&c, &steps, |a| a.ordinary);
    // Each worker makes its packing buffer the first time it runs a split product and
    // keeps it. On a loaded machine a worker can miss every split product of the
    // warm-up epoch (another thread stole them all) and make its buffer in a measured
    // step instead: once per worker at most, never again.
    let over: Vec<(usize, &Allocated)> = steps
        .iter()
        .enumerate()
        .filter(|(_, a)| a.overaligned > 0)
        .collect();
    let total: usize = over.iter().map(|(_, a)| a.overaligned).sum();
    assert!(
        total <= 2,
        "{}: {total} packing buffers made in {} measured steps, more than one per worker: {:?}",
        c.what,
        steps.len(),
        &over[..over.len().min(3)]
    );
}

/// Online learning (batch 1) needs only one-row and outer products, which
/// `matrix::gemm` computes itself, so there the whole step allocates nothing.
#[test]
fn online_steps_allocate_nothing_at_all() {
    let c = &CASES[1];
    assert_eq!(c.batch_size, BatchSize::Mini(1));
    assert_none(c, &measure(c), |a| a.ordinary + a.overaligned);
}

/// Batches large enough to go through backprop in pieces (`train::PIECE_ROWS`), here
/// one of 512 rows and one of 88, with a one-output ReLU network: the piece of 512
/// passes the gradient below the head through the `patterns` table, the piece of 88
/// through a product. Nothing allocates, the table's working memory included.
#[test]
fn large_batches_allocate_nothing_at_all() {
    let c = Case {
        what: "8-64-64-1 relu, sgd, mse, batch 600 on 1,200 rows",
        activation: Activation::Relu,
        outputs: 1,
        loss: Loss::Mse,
        optimizer: OptimizerKind::Sgd,
        schedule: Schedule::Constant,
        clip_norm: None,
        batch_size: BatchSize::Mini(600),
    };
    let steps = measure_with(&c, 8, &[64, 64], 1200);
    assert!(!steps.is_empty());
    assert_none(&c, &steps, |a| a.ordinary + a.overaligned);
}

/// A convolutional network (conv 4 3x3 pad 1 relu, maxpool 2, conv 6 3x3 relu,
/// avgpool 2, flatten, dropout 0.2, dense 3) on 1x8x8 images: its steady-state steps,
/// dropout masks included, allocate nothing at all.
#[test]
fn cnn_steps_allocate_nothing_at_all() {
    use backprop::layer::{
        AvgPool2d, Conv2d, Dense, Dropout, Flatten, Image, LayerSpec, MaxPool2d, Pool,
    };
    let conv = |input: Image, out, padding| Conv2d {
        input,
        out_channels: out,
        kernel: [3, 3],
        stride: 1,
        padding,
        activation: Activation::Relu,
    };
    let pool = |input| Pool {
        input,
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    let img = Image {
        channels: 1,
        height: 8,
        width: 8,
    };
    let c1 = conv(img, 4, 1);
    let p1 = pool(c1.output());
    let c2 = conv(p1.output(), 6, 1);
    let p2 = pool(c2.output());
    let flat = p2.output().len();
    let stack = vec![
        LayerSpec::Conv2d(c1),
        LayerSpec::MaxPool2d(MaxPool2d(p1)),
        LayerSpec::Conv2d(c2),
        LayerSpec::AvgPool2d(AvgPool2d(p2)),
        LayerSpec::Flatten(Flatten { input: p2.output() }),
        LayerSpec::Dropout(Dropout {
            width: flat,
            p: 0.2,
        }),
        LayerSpec::Dense(Dense {
            inputs: flat,
            outputs: 3,
            activation: Activation::Identity,
        }),
    ];
    let c = Case {
        what: "1x8x8 CNN with dropout, sgd+momentum, cross-entropy, batch 16",
        activation: Activation::Relu,
        outputs: 3,
        loss: Loss::CrossEntropy,
        optimizer: OptimizerKind::Sgd,
        schedule: Schedule::Constant,
        clip_norm: None,
        batch_size: BatchSize::Mini(16),
    };
    let config = NetworkConfig {
        inputs: 64,
        outputs: 3,
        hidden: vec![],
        stack,
        ..Default::default()
    };
    let _guard = lock();
    // Inside a pool, as the library asks (`Trainer::fit`'s docs): the image layers share
    // their copies between the pool's threads, and from outside a pool rayon would queue
    // those jobs in its global injector, which allocates a block per 63 jobs.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let steps = pool.install(|| measure_config(&c, config, 100));
    assert_none(&c, &steps, |a| a.ordinary + a.overaligned);
}

/// Periodic embeddings of 8 features (16 frequencies, width 4) under a 32-unit ReLU
/// layer, AdamW, batch 30 with a short last batch: steady-state steps allocate
/// nothing at all.
#[test]
fn periodic_embedding_steps_allocate_nothing_at_all() {
    use backprop::layer::{Dense, LayerSpec, Periodic};
    let p = Periodic {
        features: 8,
        frequencies: 16,
        width: 4,
        sigma: 0.1,
    };
    let stack = vec![
        LayerSpec::Periodic(p),
        LayerSpec::Dense(Dense {
            inputs: 32,
            outputs: 32,
            activation: Activation::Relu,
        }),
        LayerSpec::Dense(Dense {
            inputs: 32,
            outputs: 1,
            activation: Activation::Identity,
        }),
    ];
    let c = Case {
        what: "periodic 8x16 -> 4, 32 relu, 1; adamw, mse, batch 30",
        activation: Activation::Relu,
        outputs: 1,
        loss: Loss::Mse,
        optimizer: OptimizerKind::Adamw,
        schedule: Schedule::Constant,
        clip_norm: None,
        batch_size: BatchSize::Mini(30),
    };
    let config = NetworkConfig {
        inputs: 8,
        outputs: 1,
        hidden: vec![],
        stack,
        ..Default::default()
    };
    let _guard = lock();
    let steps = measure_config(&c, config, 200);
    assert_none(&c, &steps, |a| a.ordinary + a.overaligned);
}
