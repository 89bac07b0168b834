//! The kernels a training step is made of, each on the shapes of the two benchmark
//! networks (`BENCHMARKS.md`): 8-64-64-1 at batch 32 (tabular) and 784-512-256-10 at
//! batch 128 (MNIST).
//!
//! * `gemm/*`: every matrix product of backpropagation, per layer: forward `x Wᵀ`,
//!   weight gradient `dzᵀ x` and input gradient `dz W`, laid out exactly as
//!   `Dense` calls them (transposes as strides, no copies). Throughput is in FLOP
//!   (2 per multiply-add), so criterion's "elem/s" reads as FLOP/s. The MNIST shapes run
//!   on 1 and 2 threads, as does `gemm/peak`, the 256x784x256 product against which
//!   `BENCHMARKS.md` measures the machine's matrix-multiply peak.
//! * `activation/*`: the fused bias + activation forward and the in-place backward.
//! * `optimizer/*`: SGD with momentum and Adam over each network's parameter count.
//!
//! Run: `cargo bench -p backprop --bench kernels` (`-- gemm/peak` for one group,
//! `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use backprop::activation::Activation;
use backprop::kernels::gemm;
use backprop::matrix::View;
use backprop::optim::OptimizerKind;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// The three products of one dense layer (`inputs -> outputs`) at `batch` rows.
fn layer_products(c: &mut Criterion, batch: usize, inputs: usize, outputs: usize, threads: usize) {
    let x = random(batch * inputs, 1);
    let w = random(outputs * inputs, 2);
    let dz = random(batch * outputs, 3);
    let (mut z, mut gw, mut dx) = (
        vec![0.0; batch * outputs],
        vec![0.0; outputs * inputs],
        vec![0.0; batch * inputs],
    );
    let flops = (2 * batch * inputs * outputs) as u64;
    let pool = pool(threads);
    let mut group = c.benchmark_group("gemm");
    group.throughput(Throughput::Elements(flops));
    let shape = format!("{inputs}x{outputs}@{batch}/{threads}t");
    let xv = View::new(&x, batch, inputs);
    let wv = View::new(&w, outputs, inputs);
    let dzv = View::new(&dz, batch, outputs);
    group.bench_function(format!("forward_xWt/{shape}"), |bench| {
        bench.iter(|| pool.install(|| gemm(1.0, xv, wv.t(), 0.0, black_box(&mut z))))
    });
    group.bench_function(format!("weight_grad_dzTx/{shape}"), |bench| {
        bench.iter(|| pool.install(|| gemm(1.0, dzv.t(), xv, 0.0, black_box(&mut gw))))
    });
    group.bench_function(format!("input_grad_dzW/{shape}"), |bench| {
        bench.iter(|| pool.install(|| gemm(1.0, dzv, wv, 0.0, black_box(&mut dx))))
    });
    group.finish();
}

fn products(c: &mut Criterion) {
    for (inputs, outputs) in [(8, 64), (64, 64), (64, 1)] {
        layer_products(c, 32, inputs, outputs, 1);
        layer_products(c, 1, inputs, outputs, 1);
    }
    for threads in [1, 2] {
        for (inputs, outputs) in [(784, 512), (512, 256), (256, 10)] {
            layer_products(c, 128, inputs, outputs, threads);
        }
    }
}

/// The reference shape for the machine's peak: 256x784 times 784x256, row-major.
fn peak(c: &mut Criterion) {
    let (m, k, n) = (256, 784, 256);
    let a = random(m * k, 4);
    let b = random(k * n, 5);
    let mut out = vec![0.0; m * n];
    let mut group = c.benchmark_group("gemm");
    group.throughput(Throughput::Elements((2 * m * k * n) as u64));
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("peak/256x784x256/{threads}t"), |bench| {
            bench.iter(|| {
                pool.install(|| {
                    gemm(
                        1.0,
                        View::new(&a, m, k),
                        View::new(&b, k, n),
                        0.0,
                        black_box(&mut out),
                    )
                })
            })
        });
    }
    group.finish();
}

fn activations(c: &mut Criterion) {
    let mut group = c.benchmark_group("activation");
    for (batch, units) in [(32, 64), (128, 512)] {
        let z = random(batch * units, 6);
        let bias = random(units, 7);
        let da = random(batch * units, 8);
        group.throughput(Throughput::Elements((batch * units) as u64));
        for act in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
            let mut a = z.clone();
            group.bench_function(format!("forward_bias/{act}/{batch}x{units}"), |bench| {
                bench.iter(|| {
                    a.copy_from_slice(&z);
                    act.forward_bias_in_place(black_box(&mut a), &bias, units)
                })
            });
            act.forward_bias_in_place(&mut a, &bias, units);
            let mut g = da.clone();
            group.bench_function(format!("backward/{act}/{batch}x{units}"), |bench| {
                bench.iter(|| {
                    g.copy_from_slice(&da);
                    act.backward_in_place(&z, &a, black_box(&mut g), units)
                })
            });
        }
    }
    group.finish();
}

fn optimizers(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimizer");
    // 8-64-64-1 and 784-512-256-10.
    for params in [4_865, 535_818] {
        let grads = random(params, 9);
        group.throughput(Throughput::Elements(params as u64));
        for (name, kind) in [
            ("sgd_momentum", OptimizerKind::Sgd),
            ("adam", OptimizerKind::Adam),
        ] {
            let opt = kind.build(0.9, 0.0);
            let mut p = random(params, 10);
            let mut state = opt.init(params);
            group.bench_function(format!("{name}/{params}"), |bench| {
                bench.iter(|| opt.step(1e-3, black_box(&mut p), &grads, &mut state))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = peak, products, activations, optimizers
}
criterion_main!(benches);
