//! Trains a multilayer perceptron on the full MNIST training set (60,000 images) and
//! reports the accuracy on the 10,000 test images after every epoch.
//!
//! ```text
//! cargo run --release --example mnist -- [--data data/mnist] [--hidden 512,256]
//!     [--optimizer adam|adamw|sgd|nesterov|rmsprop] [--lr 0.001] [--momentum 0.9]
//!     [--weight-decay 0] [--epochs 10] [--batch 128] [--schedule constant|cosine|onecycle]
//!     [--threads 2] [--seed 0]
//! ```
//!
//! The defaults are the settings the `#[ignore]`d test `tests/mnist.rs` checks.

use std::time::Instant;

use backprop::data::idx::{load_mnist_dir, MNIST_CLASSES};
use backprop::metrics::{argmax_rows, one_hot, ClassificationMetrics};
use backprop::{
    Activation, BatchSize, Callback, Control, Dataset, Loss, Network, NetworkConfig, OptimizerKind,
    Schedule, TrainConfig, TrainState, Trainer,
};

struct Settings {
    data: String,
    hidden: Vec<usize>,
    optimizer: OptimizerKind,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    epochs: usize,
    batch: usize,
    schedule: Schedule,
    threads: usize,
    seed: u64,
}

fn parse() -> Result<Settings, String> {
    let mut s = Settings {
        data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist").to_string(),
        hidden: vec![512, 256],
        optimizer: OptimizerKind::Adam,
        lr: 1e-3,
        momentum: 0.9,
        weight_decay: 0.0,
        epochs: 10,
        batch: 128,
        schedule: Schedule::Cosine { min_lr: 0.0 },
        threads: 2,
        seed: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        let num = |what: &str| format!("{flag}: {what} expected, got {value:?}");
        match flag.as_str() {
            "--data" => s.data = value.clone(),
            "--hidden" => {
                s.hidden = value
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(|t| t.trim().parse().map_err(|_| num("comma-separated widths")))
                    .collect::<Result<_, _>>()?
            }
            "--optimizer" => {
                s.optimizer = match value.as_str() {
                    "adam" => OptimizerKind::Adam,
                    "adamw" => OptimizerKind::Adamw,
                    "sgd" => OptimizerKind::Sgd,
                    "nesterov" => OptimizerKind::Nesterov,
                    "rmsprop" => OptimizerKind::Rmsprop,
                    _ => return Err(num("adam|adamw|sgd|nesterov|rmsprop")),
                }
            }
            "--lr" => s.lr = value.parse().map_err(|_| num("a number"))?,
            "--momentum" => s.momentum = value.parse().map_err(|_| num("a number"))?,
            "--weight-decay" => s.weight_decay = value.parse().map_err(|_| num("a number"))?,
            "--epochs" => s.epochs = value.parse().map_err(|_| num("an integer"))?,
            "--batch" => s.batch = value.parse().map_err(|_| num("an integer"))?,
            "--threads" => s.threads = value.parse().map_err(|_| num("an integer"))?,
            "--seed" => s.seed = value.parse().map_err(|_| num("an integer"))?,
            "--schedule" => {
                s.schedule = match value.as_str() {
                    "constant" => Schedule::Constant,
                    "cosine" => Schedule::Cosine { min_lr: 0.0 },
                    "onecycle" => Schedule::OneCycle { pct_start: 0.25 },
                    _ => return Err(num("constant|cosine|onecycle")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(s)
}

/// Prints the test accuracy after every epoch.
struct Report<'a> {
    test: &'a Dataset,
    labels: Vec<usize>,
    started: Instant,
}

impl Callback for Report<'_> {
    fn on_epoch_end(&mut self, net: &Network, state: &TrainState) -> backprop::Result<Control> {
        let e = state.history.epochs.last().map_or(0.0, |r| r.train_loss);
        let predicted = argmax_rows(&net.predict(&self.test.x));
        let acc = backprop::metrics::accuracy(&self.labels, &predicted);
        println!(
            "epoch {:>2}  train loss {e:.6}  test accuracy {:.2}%  {:.1} s",
            state.epoch,
            100.0 * acc,
            self.started.elapsed().as_secs_f64()
        );
        Ok(Control::Continue)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = parse()?;
    let mnist = load_mnist_dir(&s.data)?;
    let to_classes = |y: &[u8]| y.iter().map(|&l| usize::from(l)).collect::<Vec<_>>();
    let (train_labels, test_labels) = (to_classes(&mnist.train_y), to_classes(&mnist.test_y));
    let train = Dataset::new(mnist.train_x, one_hot(&train_labels, MNIST_CLASSES))?;
    let test = Dataset::new(mnist.test_x, one_hot(&test_labels, MNIST_CLASSES))?;

    let mut rng = backprop::seed::rng(s.seed, backprop::seed::Stream::Init);
    let mut net = NetworkConfig {
        inputs: train.x.cols(),
        hidden: s.hidden.clone(),
        outputs: MNIST_CLASSES,
        activation: Activation::Relu,
        output_activation: Activation::Identity,
        ..Default::default()
    }
    .init(&mut rng)?;
    let trainer = Trainer::new(TrainConfig {
        epochs: s.epochs,
        batch_size: BatchSize::Mini(s.batch),
        loss: Loss::CrossEntropy,
        optimizer: s.optimizer.build(s.momentum, s.weight_decay),
        lr: s.lr,
        schedule: s.schedule,
        seed: s.seed,
        ..Default::default()
    })?;
    println!(
        "784-{}-10 relu, {:?} lr {} (momentum {}, weight decay {}), {:?}, batch {}, {} epochs, {} threads",
        s.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-"),
        s.optimizer,
        s.lr,
        s.momentum,
        s.weight_decay,
        s.schedule,
        s.batch,
        s.epochs,
        s.threads
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(s.threads)
        .build()?;
    let started = Instant::now();
    let mut report = Report {
        test: &test,
        labels: test_labels.clone(),
        started,
    };
    pool.install(|| trainer.fit(&mut net, &train, None, &mut [&mut report]))?;
    let seconds = started.elapsed().as_secs_f64();
    let probs = backprop::metrics::softmax_rows(&pool.install(|| net.predict(&test.x)));
    let m = ClassificationMetrics::compute(&test_labels, &probs);
    println!(
        "test accuracy {:.2}%  log-loss {:.4}  macro F1 {:.4}  training {seconds:.1} s (with per-epoch evaluation)",
        100.0 * m.accuracy,
        m.log_loss,
        m.macro_avg.f1
    );
    Ok(())
}
