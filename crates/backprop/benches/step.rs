//! One training step of an 8-64-64-1 ReLU network (forward, MSE, backward, Adam and SGD
//! updates) at batch 32 and batch 1, on one thread.
//!
//! Two views of the same work:
//! * `step/*`: the step spelled out with the public pieces the trainer uses (gather the
//!   batch's rows, `forward_train`, `Loss::gradient`, `backward`, `Optimizer::step`),
//!   timed per step;
//! * `fit_epoch/*`: `Trainer::fit` over one epoch of 100 steps (shuffling, the epoch's
//!   statistics and history included), reported per step through the throughput.
//!
//! * `full_batch_piece/*`: forward and backward (with gradient accumulation) of one
//!   `train::PIECE_ROWS`-row piece of a full batch, as full-batch descent runs them, next
//!   to the same network's matrix products alone. Below the one-output layer, the ReLU
//!   layer's input gradient comes from a table of sums of weight rows (the library's
//!   `patterns` module) instead of the last of those products, so the piece can take
//!   less time than its products; the rest of the difference is everything else (bias,
//!   activation, derivative, bias gradient, the one-output layer).
//!
//! * `sparse_input/*`: forward and backward of MNIST's 784-512-256-10 network on real
//!   batches, whose input columns that are zero throughout a batch the first layer
//!   leaves out, next to the same batches with no zero columns.
//!
//! Run: `cargo bench -p backprop --bench step` (add `-- --quick` for a short run).

use std::hint::black_box;

use backprop::activation::Activation;
use backprop::kernels::gemm;
use backprop::loss::Loss;
use backprop::matrix::{Matrix, View};
use backprop::network::{Network, NetworkConfig, Trace};
use backprop::optim::{Optimizer, OptimizerKind};
use backprop::train::{BatchSize, Dataset, TrainConfig, Trainer, PIECE_ROWS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STEPS_PER_EPOCH: usize = 100;

fn network() -> Network {
    let config = NetworkConfig {
        inputs: 8,
        hidden: vec![64, 64],
        outputs: 1,
        activation: Activation::Relu,
        ..Default::default()
    };
    config
        .init(&mut ChaCha8Rng::seed_from_u64(0))
        .expect("valid configuration")
}

fn dataset(rows: usize) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x: Vec<f32> = (0..rows * 8).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<f32> = x
        .chunks_exact(8)
        .map(|r| r[0] * 2.0 - r[1] + (r[2] * 3.0).sin())
        .collect();
    Dataset::new(
        Matrix::from_vec(rows, 8, x).unwrap(),
        Matrix::from_vec(rows, 1, y).unwrap(),
    )
    .unwrap()
}

/// Everything a step reuses, as the trainer keeps it.
struct Stepper {
    net: Network,
    optimizer: Optimizer,
    state: backprop::optim::OptimizerState,
    trace: Trace,
    x: Matrix,
    y: Matrix,
    d_out: Vec<f32>,
    grads: Vec<f32>,
}

impl Stepper {
    fn new(optimizer: Optimizer) -> Self {
        let net = network();
        let n = net.num_params();
        Stepper {
            state: optimizer.init(n),
            optimizer,
            net,
            trace: Trace::default(),
            x: Matrix::default(),
            y: Matrix::default(),
            d_out: Vec::new(),
            grads: vec![0.0; n],
        }
    }

    fn step(&mut self, data: &Dataset, rows: &[usize]) -> f32 {
        self.x.gather_rows(&data.x, rows);
        self.y.gather_rows(&data.y, rows);
        self.net.forward_train(&self.x, &mut self.trace);
        let out = self.trace.output();
        self.d_out.resize(out.as_slice().len(), 0.0);
        let loss = Loss::Mse.gradient(
            out.as_slice(),
            self.y.as_slice(),
            out.cols(),
            &mut self.d_out,
        );
        self.net
            .backward(&self.x, &mut self.trace, &self.d_out, &mut self.grads);
        self.optimizer
            .step(1e-3, self.net.params_mut(), &self.grads, &mut self.state);
        loss
    }
}

fn bench_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    for batch in [32usize, 1] {
        let data = dataset(batch * STEPS_PER_EPOCH);
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(2));
        for (name, optimizer) in [
            ("sgd", OptimizerKind::Sgd.build(0.9, 0.0)),
            ("adam", OptimizerKind::Adam.build(0.0, 0.0)),
        ] {
            let mut stepper = Stepper::new(optimizer);
            let mut batches = order.chunks(batch).cycle();
            group.bench_function(BenchmarkId::new(name, format!("batch{batch}")), |b| {
                b.iter(|| black_box(stepper.step(&data, batches.next().expect("cycle never ends"))))
            });
        }
    }
    group.finish();
}

fn bench_fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("fit_epoch");
    for batch in [32usize, 1] {
        let data = dataset(batch * STEPS_PER_EPOCH);
        let trainer = Trainer::new(TrainConfig {
            epochs: 1,
            batch_size: BatchSize::Mini(batch),
            loss: Loss::Mse,
            optimizer: OptimizerKind::Adam.build(0.0, 0.0),
            lr: 1e-3,
            ..Default::default()
        })
        .expect("valid configuration");
        let mut net = network();
        // Throughput in steps: criterion's "elem/s" is steps per second.
        group.throughput(Throughput::Elements(STEPS_PER_EPOCH as u64));
        group.bench_function(BenchmarkId::new("adam", format!("batch{batch}")), |b| {
            b.iter(|| {
                black_box(
                    trainer
                        .fit(&mut net, &data, None, &mut [])
                        .expect("training runs"),
                )
            })
        });
    }
    group.finish();
}

fn bench_piece(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_batch_piece");
    let rows = PIECE_ROWS;
    let net = network();
    let data = dataset(rows);
    let mut trace = Trace::default();
    let d_out: Vec<f32> = (0..rows).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
    let mut grads = vec![0.0; net.num_params()];
    // Multiply-adds of forward and backward: 8x64, 64x64 and 64x1 forward, their weight
    // gradients, and the input gradients of the two upper layers.
    let flops = 2 * rows * (8 * 64 * 2 + 64 * 64 * 3 + 64 * 3);
    group.throughput(Throughput::Elements(flops as u64));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            net.forward_train(&data.x, &mut trace);
            net.backward_add(&data.x, &mut trace, black_box(&d_out), &mut grads, true);
        })
    });
    // The same products on the same shapes, nothing else.
    let (h, mut out) = (vec![0.5f32; rows * 64], vec![0.0f32; rows * 64]);
    let (w, mut gw) = (vec![0.25f32; 64 * 64], vec![0.0f32; 64 * 64]);
    let (w1, mut gw1) = (vec![0.25f32; 64 * 8], vec![0.0f32; 64 * 8]);
    let x = data.x.as_slice();
    group.bench_function("products_alone", |b| {
        b.iter(|| {
            let hv = View::new(&h, rows, 64);
            gemm(
                1.0,
                View::new(x, rows, 8),
                View::new(&w1, 64, 8).t(),
                0.0,
                &mut out,
            );
            gemm(1.0, hv, View::new(&w, 64, 64).t(), 0.0, &mut out);
            gemm(1.0, hv.t(), View::new(&out, rows, 64), 1.0, &mut gw);
            gemm(1.0, hv, View::new(&w, 64, 64), 0.0, &mut out);
            gemm(1.0, View::new(x, rows, 8).t(), hv, 1.0, &mut gw1);
            black_box(&gw1);
        })
    });
    group.finish();
}

/// Forward and backward of MNIST's 784-512-256-10 network on batches of 128 real
/// training images (`data/mnist`), whose border pixels are zero in every image of a
/// batch (a third of the 784, see the `columns` module), next to the same batches with
/// those zeros replaced by 1e-20, which leaves no column out. Throughput counts the
/// whole products' multiply-adds in both.
fn bench_sparse_input(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/mnist/train-images-idx3-ubyte.gz"
    );
    let images = backprop::data::idx::read_images(path)
        .expect("data/mnist")
        .to_matrix();
    let (batch, batches) = (128, 8);
    let columns: Vec<Matrix> = (0..batches)
        .map(|b| images.select_rows(&(b * batch..(b + 1) * batch).collect::<Vec<_>>()))
        .collect();
    let whole: Vec<Matrix> = columns
        .iter()
        .map(|m| {
            let x = m
                .as_slice()
                .iter()
                .map(|&v| if v == 0.0 { 1e-20 } else { v });
            Matrix::from_vec(m.rows(), m.cols(), x.collect()).unwrap()
        })
        .collect();
    let config = NetworkConfig {
        inputs: 784,
        hidden: vec![512, 256],
        outputs: 10,
        activation: Activation::Relu,
        ..Default::default()
    };
    let net = config.init(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut trace = Trace::default();
    let d_out: Vec<f32> = (0..batch * 10)
        .map(|i| (i % 7) as f32 / 7.0 - 0.5)
        .collect();
    let mut grads = vec![0.0; net.num_params()];
    let mut group = c.benchmark_group("sparse_input");
    let flops = 2 * batch * (784 * 512 * 2 + 512 * 256 * 3 + 256 * 10 * 3);
    group.throughput(Throughput::Elements((flops * batches) as u64));
    for (name, set) in [("columns_left_out", &columns), ("whole", &whole)] {
        group.bench_function(format!("mnist_784_512_256_10@128/{name}"), |b| {
            b.iter(|| {
                for x in set.iter() {
                    net.forward_train(x, &mut trace);
                    net.backward(x, &mut trace, black_box(&d_out), &mut grads);
                }
            })
        });
    }
    group.finish();
}

fn one_thread() -> Criterion {
    // The target is single-threaded; at these sizes `matrix::gemm` stays on the calling
    // thread anyway, but pin it so the measurement cannot depend on the machine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    Criterion::default()
}

criterion_group! { name = benches; config = one_thread(); targets = bench_step, bench_fit, bench_piece, bench_sparse_input }
criterion_main!(benches);
