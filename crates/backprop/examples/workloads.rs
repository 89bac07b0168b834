//! The four training workloads of the speed comparison with PyTorch (`bench/compare.py`,
//! results in `BENCHMARKS.md`), run through the library's own `Trainer::fit`.
//!
//! ```text
//! cargo run --release --example workloads -- <workload> [--threads N] [--seed S]
//!     [--epochs E] [--data DIR]
//! ```
//!
//! Workloads: `california-mini` (batch 32, 10 epochs), `california-online` (batch 1,
//! 1 epoch), `california-full` (full batch, 500 epochs), all 8-64-64-1 ReLU, MSE, SGD
//! momentum 0.9, lr 0.001; and `mnist` (784-512-256-10 ReLU, softmax cross-entropy, SGD
//! momentum 0.9, lr 0.05, batch 128, 1 epoch). Prints one JSON object: the seconds of
//! `Trainer::fit` alone (data loading and evaluation excluded), the final epoch's mean
//! training loss and the test metric.
//!
//! The California split is an 80/20 Fisher-Yates shuffle driven by SplitMix64, which
//! `bench/compare.py` reproduces exactly, so both sides train and test on the same rows.
//! Features and target are standardised with the training rows' mean and (population)
//! standard deviation.

use std::path::{Path, PathBuf};
use std::time::Instant;

use backprop::data::idx;
use backprop::{
    Activation, BatchSize, Dataset, Init, Loss, Matrix, Network, NetworkConfig, OptimizerKind,
    TrainConfig, Trainer,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    CaliforniaMini,
    CaliforniaOnline,
    CaliforniaFull,
    Mnist,
}

impl Workload {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "california-mini" => Workload::CaliforniaMini,
            "california-online" => Workload::CaliforniaOnline,
            "california-full" => Workload::CaliforniaFull,
            "mnist" => Workload::Mnist,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Workload::CaliforniaMini => "california-mini",
            Workload::CaliforniaOnline => "california-online",
            Workload::CaliforniaFull => "california-full",
            Workload::Mnist => "mnist",
        }
    }

    /// (batch size, default epochs, learning rate)
    fn schedule(self) -> (BatchSize, usize, f32) {
        match self {
            Workload::CaliforniaMini => (BatchSize::Mini(32), 10, 0.001),
            Workload::CaliforniaOnline => (BatchSize::Mini(1), 1, 0.001),
            Workload::CaliforniaFull => (BatchSize::Full, 500, 0.001),
            Workload::Mnist => (BatchSize::Mini(128), 1, 0.05),
        }
    }
}

struct Args {
    workload: Workload,
    threads: usize,
    seed: u64,
    epochs: Option<usize>,
    lr: Option<f32>,
    data: PathBuf,
}

const USAGE: &str = "usage: workloads <california-mini|california-online|california-full|mnist> \
                     [--threads N] [--seed S] [--epochs E] [--lr LR] [--data DIR]";

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let workload = it.next().ok_or(USAGE)?;
    let workload = Workload::parse(&workload)
        .ok_or_else(|| format!("unknown workload `{workload}`\n{USAGE}"))?;
    let default_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let mut args = Args {
        workload,
        threads: 1,
        seed: 0,
        epochs: None,
        lr: None,
        data: default_data,
    };
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--threads" => args.threads = value.parse().map_err(bad)?,
            "--seed" => args.seed = value.parse().map_err(bad)?,
            "--epochs" => args.epochs = Some(value.parse().map_err(bad)?),
            "--lr" => args.lr = Some(value.parse().map_err(|e| format!("{flag} {value}: {e}"))?),
            "--data" => args.data = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("workloads: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // The training loop runs on one of the pool's threads, as in `backprop train`: a
    // product split from outside the pool would hand both halves to the pool and wait.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let (batch_size, epochs, lr) = args.workload.schedule();
    let epochs = args.epochs.unwrap_or(epochs);
    let lr = args.lr.unwrap_or(lr);
    let is_mnist = args.workload == Workload::Mnist;
    let (train, test) = if is_mnist {
        mnist(&args.data)?
    } else {
        california(&args.data, args.seed)?
    };
    let net_config = NetworkConfig {
        inputs: train.x.cols(),
        hidden: if is_mnist {
            vec![512, 256]
        } else {
            vec![64, 64]
        },
        outputs: train.y.cols(),
        activation: Activation::Relu,
        output_activation: Activation::Identity,
        init: Init::Torch,
        stack: Vec::new(),
    };
    let mut rng = backprop::seed::rng(args.seed, backprop::seed::Stream::Init);
    let mut net = net_config.init(&mut rng)?;
    let trainer = Trainer::new(TrainConfig {
        epochs,
        batch_size,
        loss: if is_mnist {
            Loss::CrossEntropy
        } else {
            Loss::Mse
        },
        optimizer: OptimizerKind::Sgd.build(0.9, 0.0),
        lr,
        seed: args.seed,
        ..TrainConfig::default()
    })?;

    let started = Instant::now();
    let history = pool.install(|| trainer.fit(&mut net, &train, None, &mut []))?;
    let seconds = started.elapsed().as_secs_f64();

    let steps = epochs * train.len().div_ceil(batch_size.rows(train.len()));
    let train_loss = history.epochs.last().map_or(f64::NAN, |e| e.train_loss);
    drop(train);
    let (metric, value) = if is_mnist {
        ("accuracy", accuracy(&net, &test))
    } else {
        ("mse", mse(&net, &test))
    };
    println!(
        "{{\"impl\":\"backprop\",\"workload\":\"{}\",\"threads\":{},\"seed\":{},\"epochs\":{epochs},\
         \"steps\":{steps},\"lr\":{lr},\"seconds\":{seconds:.6},\"train_loss\":{train_loss:.6},\
         \"test_metric\":\"{metric}\",\"test_value\":{value:.6}}}",
        args.workload.name(),
        args.threads,
        args.seed
    );
    Ok(())
}

/// Mean squared error on the test rows, in standardised target units.
fn mse(net: &Network, test: &Dataset) -> f64 {
    let p = net.predict(&test.x);
    let sum: f64 = p
        .as_slice()
        .iter()
        .zip(test.y.as_slice())
        .map(|(&p, &y)| ((p - y) as f64).powi(2))
        .sum();
    sum / test.len() as f64
}

/// Fraction of test rows whose largest logit is the labelled class.
fn accuracy(net: &Network, test: &Dataset) -> f64 {
    let p = net.predict(&test.x);
    let argmax = |r: &[f32]| {
        r.iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
    };
    let hits = (0..test.len())
        .filter(|&i| argmax(p.row(i)) == argmax(test.y.row(i)))
        .count();
    hits as f64 / test.len() as f64
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny generator Python can reproduce bit for bit.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// California housing: seeded 80/20 split, standardised with the training statistics.
fn california(dir: &Path, seed: u64) -> Result<(Dataset, Dataset), Box<dyn std::error::Error>> {
    let path = dir.join("california_housing/california_housing.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let cols = lines.next().ok_or("empty CSV")?.split(',').count();
    let mut values = Vec::new();
    for (i, line) in lines.enumerate() {
        for field in line.split(',') {
            values.push(
                field
                    .parse::<f64>()
                    .map_err(|e| format!("{}:{}: {e}", path.display(), i + 2))?,
            );
        }
    }
    let n = values.len() / cols;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64(seed);
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let n_train = n * 4 / 5;
    let (train_idx, test_idx) = order.split_at(n_train);
    let stats: Vec<(f64, f64)> = (0..cols)
        .map(|j| {
            let mean =
                train_idx.iter().map(|&r| values[r * cols + j]).sum::<f64>() / n_train as f64;
            let var = train_idx
                .iter()
                .map(|&r| (values[r * cols + j] - mean).powi(2))
                .sum::<f64>()
                / n_train as f64;
            (mean, var.sqrt())
        })
        .collect();
    let build = |idx: &[usize]| -> Result<Dataset, backprop::Error> {
        let mut x = Vec::with_capacity(idx.len() * (cols - 1));
        let mut y = Vec::with_capacity(idx.len());
        for &r in idx {
            for (j, &(mean, std)) in stats.iter().enumerate() {
                let v = ((values[r * cols + j] - mean) / std) as f32;
                if j + 1 < cols {
                    x.push(v);
                } else {
                    y.push(v);
                }
            }
        }
        // Invariant: the lengths are idx.len() times the column counts by construction.
        let x = Matrix::from_vec(idx.len(), cols - 1, x).expect("feature matrix shape");
        let y = Matrix::from_vec(idx.len(), 1, y).expect("target matrix shape");
        Dataset::new(x, y)
    };
    Ok((build(train_idx)?, build(test_idx)?))
}

/// MNIST train and test sets (the library's IDX reader), pixels scaled to [0, 1], labels
/// one-hot. Each set's bytes are dropped once its `f32` matrix exists.
fn mnist(dir: &Path) -> Result<(Dataset, Dataset), Box<dyn std::error::Error>> {
    let dir = dir.join("mnist");
    let set = |images: &str, labels: &str| -> Result<Dataset, Box<dyn std::error::Error>> {
        let x = idx::read_images(dir.join(images))?.to_matrix();
        let labels = idx::read_labels(dir.join(labels))?;
        let mut y = Matrix::zeros(labels.len(), idx::MNIST_CLASSES);
        for (i, &l) in labels.iter().enumerate() {
            y.row_mut(i)[usize::from(l)] = 1.0;
        }
        Ok(Dataset::new(x, y)?)
    };
    Ok((
        set("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")?,
        set("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")?,
    ))
}
