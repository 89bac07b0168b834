//! Convergence tests, seeded and fast: the library actually learns, with every form of
//! gradient descent and every optimizer, and the same seed gives the same network.

use backprop::activation::{sigmoid, Activation};
use backprop::loss::Loss;
use backprop::matrix::Matrix;
use backprop::network::{Network, NetworkConfig, Trace};
use backprop::optim::{Adam, Optimizer, OptimizerKind, RmsProp, Schedule, ScheduleState, Sgd};
use backprop::train::{
    evaluate_loss, BatchSize, Callback, Control, Dataset, TrainConfig, TrainState, Trainer,
};
use backprop::Init;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn net(
    inputs: usize,
    hidden: &[usize],
    outputs: usize,
    activation: Activation,
    seed: u64,
) -> Network {
    let config = NetworkConfig {
        inputs,
        hidden: hidden.to_vec(),
        outputs,
        activation,
        ..Default::default()
    };
    config.init(&mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
}

fn xor() -> Dataset {
    let x = Matrix::from_rows(&[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).unwrap();
    let y = Matrix::from_vec(4, 1, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    Dataset::new(x, y).unwrap()
}

/// XOR is not linearly separable: only a hidden layer that learns its features gets
/// all four right. Several seeds, so a lucky initialisation cannot pass it.
#[test]
fn xor_is_learned_by_a_2_4_1_network() {
    let data = xor();
    for seed in 0..5 {
        let mut net = net(2, &[4], 1, Activation::Tanh, seed);
        let trainer = Trainer::new(TrainConfig {
            epochs: 300,
            batch_size: BatchSize::Full,
            loss: Loss::Bce,
            optimizer: OptimizerKind::Adam.build(0.0, 0.0),
            lr: 0.05,
            seed,
            ..Default::default()
        })
        .unwrap();
        let history = trainer.fit(&mut net, &data, None, &mut []).unwrap();
        let loss = history.epochs.last().unwrap().train_loss;
        assert!(loss < 0.05, "seed {seed}: XOR loss still {loss}");
        let p = net.predict(&data.x);
        for (i, (&logit, &y)) in p.as_slice().iter().zip(data.y.as_slice()).enumerate() {
            let prob = sigmoid(logit);
            assert!(
                (prob - y).abs() < 0.2,
                "seed {seed}: row {i} predicted {prob}, want {y}"
            );
        }
    }
}

/// With no hidden layer the network is linear regression; gradient descent on MSE must
/// find the weights that generated the (noise-free) data.
#[test]
fn a_network_without_hidden_layers_recovers_known_linear_weights() {
    let (w, b) = ([1.5f32, -2.0, 0.5], 0.25f32);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let rows: Vec<Vec<f32>> = (0..64)
        .map(|_| (0..3).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect();
    let y: Vec<f32> = rows
        .iter()
        .map(|r| r.iter().zip(&w).map(|(x, w)| x * w).sum::<f32>() + b)
        .collect();
    let data = Dataset::new(
        Matrix::from_rows(&rows).unwrap(),
        Matrix::from_vec(64, 1, y).unwrap(),
    )
    .unwrap();
    let mut net = net(3, &[], 1, Activation::Identity, 1);
    let trainer = Trainer::new(TrainConfig {
        epochs: 400,
        batch_size: BatchSize::Full,
        lr: 0.3,
        optimizer: OptimizerKind::Sgd.build(0.0, 0.0),
        ..Default::default()
    })
    .unwrap();
    trainer.fit(&mut net, &data, None, &mut []).unwrap();
    // Layout: weight (1 x 3), then bias.
    let got = net.params();
    for (g, want) in got.iter().zip(w.iter().chain([&b])) {
        assert!(
            (g - want).abs() < 1e-3,
            "recovered {got:?}, want {w:?} and {b}"
        );
    }
}

/// A 2-parameter objective with its analytic gradient and its minimiser.
struct Objective {
    name: &'static str,
    f: fn(&[f32]) -> f32,
    grad: fn(&[f32], &mut [f32]),
    start: [f32; 2],
    minimum: [f32; 2],
}

/// `½(x² + 10y²)`: convex but ill-conditioned (condition number 10).
const QUADRATIC: Objective = Objective {
    name: "quadratic",
    f: |p| 0.5 * (p[0] * p[0] + 10.0 * p[1] * p[1]),
    grad: |p, g| {
        g[0] = p[0];
        g[1] = 10.0 * p[1];
    },
    start: [3.0, -2.0],
    minimum: [0.0, 0.0],
};

/// Rosenbrock's banana `(1-x)² + 100(y-x²)²`: a curved, flat-bottomed valley.
const ROSENBROCK: Objective = Objective {
    name: "rosenbrock",
    f: |p| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2),
    grad: |p, g| {
        g[0] = -2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] * p[0]);
        g[1] = 200.0 * (p[1] - p[0] * p[0]);
    },
    start: [-1.5, 2.0],
    minimum: [1.0, 1.0],
};

/// Runs `steps` updates of `optimizer` on `objective` from its start, the learning
/// rate from `schedule` (one "epoch" per step), and returns where it ends.
fn minimise(
    objective: &Objective,
    optimizer: Optimizer,
    lr: f32,
    schedule: Schedule,
    steps: usize,
) -> [f32; 2] {
    optimizer.validate().unwrap();
    let mut p = objective.start;
    let mut g = [0.0f32; 2];
    let mut state = optimizer.init(2);
    let sched_state = ScheduleState::default();
    for t in 0..steps {
        (objective.grad)(&p, &mut g);
        let rate = schedule.lr(lr, t, 0, 1, steps, &sched_state);
        optimizer.step(rate, &mut p, &g, &mut state);
    }
    assert_eq!(state.step(), steps as u64);
    p
}

fn sgd(momentum: f32, nesterov: bool) -> Optimizer {
    Optimizer::Sgd(Sgd {
        momentum,
        nesterov,
        weight_decay: 0.0,
    })
}

/// Every optimizer, each with a learning rate and step budget that suit it (from a
/// coarse sweep), ends within `1e-6` of the quadratic's minimum and `1e-2` of
/// Rosenbrock's. The adaptive methods take steps of about `lr` whatever the gradient,
/// so they are annealed (cosine) to settle instead of hovering at distance ~lr.
#[test]
fn every_optimizer_minimises_a_quadratic_and_rosenbrock() {
    let cosine = Schedule::Cosine { min_lr: 0.0 };
    let adam = Adam::default();
    let rms = RmsProp::default();
    #[rustfmt::skip]
    let runs: Vec<(&Objective, &str, Optimizer, f32, Schedule, usize)> = vec![
        (&QUADRATIC, "sgd", sgd(0.0, false), 0.15, Schedule::Constant, 200),
        (&QUADRATIC, "momentum", sgd(0.9, false), 0.02, Schedule::Constant, 400),
        (&QUADRATIC, "nesterov", sgd(0.9, true), 0.02, Schedule::Constant, 400),
        (&QUADRATIC, "sgd+l2", Optimizer::Sgd(Sgd { momentum: 0.5, nesterov: false, weight_decay: 0.1 }), 0.1, Schedule::Constant, 200),
        (&QUADRATIC, "adam", Optimizer::Adam(adam), 0.1, cosine, 1000),
        (&QUADRATIC, "adam+l2", Optimizer::Adam(Adam { weight_decay: 0.1, ..adam }), 0.1, cosine, 1000),
        (&QUADRATIC, "adamw", Optimizer::AdamW(Adam { weight_decay: 0.1, ..adam }), 0.1, cosine, 1000),
        (&QUADRATIC, "rmsprop", Optimizer::RmsProp(rms), 0.05, cosine, 1000),
        (&QUADRATIC, "rmsprop+momentum", Optimizer::RmsProp(RmsProp { momentum: 0.9, ..rms }), 0.01, cosine, 1000),
        (&ROSENBROCK, "sgd", sgd(0.0, false), 1e-3, Schedule::Constant, 20_000),
        (&ROSENBROCK, "momentum", sgd(0.9, false), 2e-4, Schedule::Constant, 10_000),
        (&ROSENBROCK, "nesterov", sgd(0.9, true), 2e-4, Schedule::Constant, 10_000),
        (&ROSENBROCK, "adam", Optimizer::Adam(adam), 0.05, cosine, 5_000),
        (&ROSENBROCK, "adamw", Optimizer::AdamW(adam), 0.05, cosine, 5_000),
        (&ROSENBROCK, "rmsprop", Optimizer::RmsProp(rms), 0.01, cosine, 20_000),
        (&ROSENBROCK, "rmsprop+momentum", Optimizer::RmsProp(RmsProp { momentum: 0.9, ..rms }), 1e-3, cosine, 5_000),
    ];
    for (objective, name, optimizer, lr, schedule, steps) in runs {
        let end = minimise(objective, optimizer, lr, schedule, steps);
        let distance = ((end[0] - objective.minimum[0]).powi(2)
            + (end[1] - objective.minimum[1]).powi(2))
        .sqrt();
        let tol = if objective.name == "quadratic" {
            1e-3
        } else {
            1e-2
        };
        assert!(
            distance < tol,
            "{name} on {}: ended at {end:?} (f = {}), {distance} from the minimum {:?}",
            objective.name,
            (objective.f)(&end),
            objective.minimum
        );
    }
}

/// A small smooth regression problem: `y = sin(2 x0) + x1²`.
fn regression(rows: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<[f32; 2]> = (0..rows)
        .map(|_| [rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)])
        .collect();
    let y: Vec<f32> = x.iter().map(|r| (2.0 * r[0]).sin() + r[1] * r[1]).collect();
    Dataset::new(
        Matrix::from_rows(&x).unwrap(),
        Matrix::from_vec(rows, 1, y).unwrap(),
    )
    .unwrap()
}

/// The three forms of gradient descent: full batch (one update per epoch), online (one
/// per observation) and mini-batch, each making the number of updates it should and
/// reducing the loss to under a fifth of where it started.
#[test]
fn full_batch_online_and_mini_batch_all_reduce_the_loss() {
    let data = regression(40, 5);
    for (batch_size, lr, steps_per_epoch) in [
        (BatchSize::Full, 0.2, 1),
        (BatchSize::Mini(1), 0.01, 40),
        (BatchSize::Mini(8), 0.05, 5),
        (BatchSize::Mini(12), 0.05, 4),
    ] {
        let mut network = net(2, &[8], 1, Activation::Tanh, 9);
        let before = evaluate_loss(&network, &data, Loss::Mse, &mut Trace::default());
        let epochs = 60;
        let trainer = Trainer::new(TrainConfig {
            epochs,
            batch_size,
            lr,
            optimizer: OptimizerKind::Sgd.build(0.9, 0.0),
            record_steps: true,
            seed: 1,
            ..Default::default()
        })
        .unwrap();
        let history = trainer.fit(&mut network, &data, None, &mut []).unwrap();
        assert_eq!(
            history.step_losses.len(),
            epochs * steps_per_epoch,
            "{batch_size}: updates made"
        );
        let after = evaluate_loss(&network, &data, Loss::Mse, &mut Trace::default());
        assert!(
            after < 0.2 * before,
            "{batch_size}: loss {before} -> {after}"
        );
        // The history's last epoch loss (measured during the epoch, before each
        // update) is close to the loss evaluated afterwards.
        let last = history.epochs.last().unwrap().train_loss;
        assert!(
            (last - after).abs() < 0.5 * before,
            "{batch_size}: history says {last}, evaluation {after}"
        );
    }
}

/// Records the parameters after every epoch.
#[derive(Default)]
struct Snapshots(Vec<Vec<f32>>);

impl Callback for Snapshots {
    fn on_epoch_end(&mut self, net: &Network, _state: &TrainState) -> backprop::Result<Control> {
        self.0.push(net.params().to_vec());
        Ok(Control::Continue)
    }
}

/// Validation targets opposite to the training targets: the better the fit, the worse
/// the validation loss after an initial dip, so early stopping must trigger and hand
/// back the weights of the best validation epoch, not the last.
#[test]
fn early_stopping_restores_the_best_weights() {
    let train = regression(32, 6);
    let mut flipped = train.clone();
    for v in flipped.y.as_mut_slice() {
        *v = 0.3 - 0.5 * *v;
    }
    let mut network = net(2, &[8], 1, Activation::Tanh, 2);
    let patience = 3;
    let trainer = Trainer::new(TrainConfig {
        epochs: 100,
        batch_size: BatchSize::Mini(8),
        lr: 0.05,
        optimizer: OptimizerKind::Sgd.build(0.9, 0.0),
        patience,
        ..Default::default()
    })
    .unwrap();
    let mut snapshots = Snapshots::default();
    let history = trainer
        .fit(&mut network, &train, Some(&flipped), &mut [&mut snapshots])
        .unwrap();
    assert!(
        history.stopped_early,
        "validation loss kept improving for 100 epochs"
    );
    let valid: Vec<f64> = history
        .epochs
        .iter()
        .map(|e| e.valid_loss.unwrap())
        .collect();
    let (best_index, best_loss) = valid
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    assert_eq!(history.best_epoch, Some(best_index + 1));
    assert_eq!(
        valid.len(),
        best_index + 1 + patience,
        "stopped {patience} epochs after the best"
    );
    assert!(best_index + 1 < valid.len());
    assert_ne!(
        network.params(),
        snapshots.0.last().unwrap().as_slice(),
        "the last epoch's weights were kept"
    );
    assert_eq!(
        network.params(),
        snapshots.0[best_index].as_slice(),
        "weights are not the best epoch's"
    );
    let restored = evaluate_loss(&network, &flipped, Loss::Mse, &mut Trace::default());
    assert!(
        (restored - best_loss).abs() <= 1e-12 * best_loss.abs().max(1.0),
        "restored weights score {restored}, best was {best_loss}"
    );
}

fn train_with_seeds(init_seed: u64, train_seed: u64) -> Vec<f32> {
    let data = regression(50, 8);
    let mut network = net(2, &[6, 5], 1, Activation::Relu, init_seed);
    let trainer = Trainer::new(TrainConfig {
        epochs: 5,
        batch_size: BatchSize::Mini(7),
        lr: 0.01,
        optimizer: OptimizerKind::Adam.build(0.0, 0.0),
        seed: train_seed,
        ..Default::default()
    })
    .unwrap();
    trainer.fit(&mut network, &data, None, &mut []).unwrap();
    network.params().to_vec()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// One seed drives all randomness: the same seeds give bit-identical weights; changing
/// either the initialisation seed or the shuffling seed changes them.
#[test]
fn same_seed_gives_bit_identical_weights_and_different_seeds_do_not() {
    let a = train_with_seeds(1, 1);
    assert_eq!(bits(&a), bits(&train_with_seeds(1, 1)));
    assert_ne!(
        bits(&a),
        bits(&train_with_seeds(2, 1)),
        "initialisation seed ignored"
    );
    assert_ne!(
        bits(&a),
        bits(&train_with_seeds(1, 2)),
        "shuffling seed ignored"
    );
    // Each initialisation scheme is reproducible too.
    for init in [
        Init::Classic,
        Init::XavierNormal,
        Init::HeNormal,
        Init::Torch,
    ] {
        let config = NetworkConfig {
            inputs: 3,
            hidden: vec![4],
            outputs: 2,
            init,
            ..Default::default()
        };
        let one = config.init(&mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        let two = config.init(&mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        let other = config.init(&mut ChaCha8Rng::seed_from_u64(5)).unwrap();
        assert_eq!(bits(one.params()), bits(two.params()), "{init:?}");
        assert_ne!(bits(one.params()), bits(other.params()), "{init:?}");
    }
}
