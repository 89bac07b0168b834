//! Full MNIST: a plain multilayer perceptron reaches at least 98.0% test accuracy
//! (issue 5; its time, under 3 minutes on 2 cores, is printed and recorded in
//! BENCHMARKS.md, not asserted: a timed test fails on a busy machine). Slow, so ignored
//! by default and run by `.ci/run`:
//!
//! ```text
//! cargo test --release -p backprop --test mnist -- --ignored --nocapture
//! ```

use std::time::Instant;

use backprop::data::idx::{load_mnist_dir, MNIST_CLASSES};
use backprop::metrics::{one_hot, softmax_rows, ClassificationMetrics};
use backprop::{
    Activation, BatchSize, Dataset, Loss, NetworkConfig, OptimizerKind, Schedule, TrainConfig,
    Trainer,
};
use rand::SeedableRng;

#[test]
#[ignore = "trains on all 60,000 MNIST images (about 1.5 minutes in release mode on 2 cores)"]
fn mlp_reaches_98_percent_on_mnist() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist");
    let mnist = load_mnist_dir(dir).unwrap();
    let classes = |y: &[u8]| y.iter().map(|&l| usize::from(l)).collect::<Vec<_>>();
    let (train_labels, test_labels) = (classes(&mnist.train_y), classes(&mnist.test_y));
    let train = Dataset::new(mnist.train_x, one_hot(&train_labels, MNIST_CLASSES)).unwrap();

    // 784-512-256-10 ReLU (He-uniform init), softmax cross-entropy on the logits, Adam
    // lr 1e-3 annealed to 0 by a cosine schedule, batch 128, 10 epochs, pixels / 255.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut net = NetworkConfig {
        inputs: 784,
        hidden: vec![512, 256],
        outputs: MNIST_CLASSES,
        activation: Activation::Relu,
        output_activation: Activation::Identity,
        ..Default::default()
    }
    .init(&mut rng)
    .unwrap();
    let trainer = Trainer::new(TrainConfig {
        epochs: 10,
        batch_size: BatchSize::Mini(128),
        loss: Loss::CrossEntropy,
        optimizer: OptimizerKind::Adam.build(0.0, 0.0),
        lr: 1e-3,
        schedule: Schedule::Cosine { min_lr: 0.0 },
        seed: 0,
        ..Default::default()
    })
    .unwrap();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let started = Instant::now();
    let history = pool
        .install(|| trainer.fit(&mut net, &train, None, &mut []))
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();

    let probs = softmax_rows(&pool.install(|| net.predict(&mnist.test_x)));
    let m = ClassificationMetrics::compute(&test_labels, &probs);
    println!(
        "MNIST 784-512-256-10: test accuracy {:.2}%, log-loss {:.4}, final train loss {:.4}, {seconds:.1} s",
        100.0 * m.accuracy,
        m.log_loss,
        history.epochs.last().map_or(f64::NAN, |e| e.train_loss)
    );
    assert!(
        m.accuracy >= 0.98,
        "test accuracy {:.2}% is below 98.0%",
        100.0 * m.accuracy
    );
}
