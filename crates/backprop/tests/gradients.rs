//! Finite-difference checks of every analytic derivative in the library: each
//! activation, each loss, the dense layer and whole networks.
//!
//! The kernels are `f32`, so the function under test is evaluated by the `f32` kernel
//! and accumulated in `f64`. That fixes the numbers used throughout:
//!
//! * Every point is a multiple of 2^-12 and the step is `H = 2^-7`, so `x ± H` is exact
//!   in `f32`: the perturbation the kernel sees is exactly the one the quotient divides
//!   by.
//! * Rounding: an `f32` evaluation of an O(1) function is off by a few ulp (~3e-7), so
//!   the quotient `(f(x+H) - f(x-H)) / 2H` carries an error of about 3e-7 / 2^-6 ≈ 2e-5.
//! * Truncation: central differences are off by `H² f''' / 6 ≈ 1e-5 · f'''`.
//!
//! Hence a tolerance of `TOL = 2e-4` on the checker's error measure
//! (`|a - n| / max(1, |a|, |n|)`): the largest error measured over all the checks
//! below is 2.2e-5 (tanh dense layer, `db`), so this leaves a factor of 9, while any
//! real mistake (a missing factor, a wrong sign, a dropped term, a transposed
//! gradient) is an error of 1e-2 or more here; the tests at the end show the same
//! checker, step and tolerance rejecting such errors.

use backprop::activation::Activation;
use backprop::gradcheck::check_gradient;
use backprop::layer::{Backward, Dense, Forward, Layer};
use backprop::loss::Loss;
use backprop::matrix::Matrix;
use backprop::network::{Network, Trace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Finite-difference step: a power of two, so `x ± H` is exact for our points.
const H: f64 = 1.0 / 128.0;
/// Tolerance on the checker's relative error (see the module docs for the budget).
const TOL: f64 = 2e-4;

/// A value in `[-range, range]` on the 2^-12 grid.
fn grid(rng: &mut impl Rng, range: f32) -> f32 {
    let steps = (range * 4096.0) as i32;
    rng.gen_range(-steps..=steps) as f32 / 4096.0
}

fn grid_vec(rng: &mut impl Rng, n: usize, range: f32) -> Vec<f32> {
    (0..n).map(|_| grid(rng, range)).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Asserts the analytic gradient matches central differences, naming the case.
fn assert_matches(what: &str, x: &[f32], analytic: &[f32], f: impl FnMut(&[f64]) -> f64) {
    let r = check_gradient(&to_f64(x), &to_f64(analytic), H, f);
    assert!(
        r.passes(TOL),
        "{what}: analytic gradient disagrees with finite differences: {r:?}"
    );
}

fn has_kink_at_zero(act: Activation) -> bool {
    matches!(
        act,
        Activation::Relu | Activation::LeakyRelu | Activation::Elu
    )
}

/// `L(z) = Σ c ⊙ f(z)` for fixed random `c`, so `dL/dz` is activation backward with
/// `da = c`: a vector-Jacobian product, which covers softmax's full row Jacobian.
#[test]
fn every_activation_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (rows, cols) = (3, 5);
    for act in Activation::ALL {
        // Points in [-3, 3], kept at least 4H from the kink at 0 (ELU's second
        // derivative jumps there too, which would break the truncation estimate).
        let z: Vec<f32> = (0..rows * cols)
            .map(|_| loop {
                let v = grid(&mut rng, 3.0);
                if !has_kink_at_zero(act) || v.abs() > 4.0 * H as f32 {
                    break v;
                }
            })
            .collect();
        let c = grid_vec(&mut rng, rows * cols, 1.0);
        let mut a = vec![0.0; z.len()];
        act.forward(&z, &mut a, cols);
        let mut dz = vec![0.0; z.len()];
        act.backward(&z, &a, &c, &mut dz, cols);
        let mut out = vec![0.0; z.len()];
        assert_matches(act.name(), &z, &dz, |zp| {
            act.forward(&to_f32(zp), &mut out, cols);
            out.iter().zip(&c).map(|(&a, &c)| a as f64 * c as f64).sum()
        });
    }
}

/// Predictions, targets and the number of columns for one loss, chosen where the loss
/// is smooth: MAE away from `p = y`; Huber with points on both sides of `|d| = 1`.
fn loss_case(loss: Loss, rng: &mut impl Rng) -> (Vec<f32>, Vec<f32>, usize) {
    let (rows, cols) = (4, 3);
    let n = rows * cols;
    let p = grid_vec(rng, n, 2.0);
    let y: Vec<f32> = match loss {
        Loss::Mse => grid_vec(rng, n, 2.0),
        // |p - y| >= 0.25 >> H: no kink within reach of the stencil.
        Loss::Mae => p
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                p + if i % 2 == 0 { 0.25 } else { -0.5 }
                    + grid(rng, 0.2).abs() * if i % 2 == 0 { 1.0 } else { -1.0 }
            })
            .collect(),
        // Half the residuals in the quadratic part (|d| <= 0.75), half in the linear
        // part (|d| >= 1.25): both regions, none within reach of the switch at 1.
        Loss::Huber => p
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let mag = if i % 2 == 0 {
                    grid(rng, 0.75)
                } else {
                    1.25 + grid(rng, 1.0).abs()
                };
                p - if i % 3 == 0 { mag } else { -mag }
            })
            .collect(),
        // Targets in [0, 1], including the hard labels 0 and 1.
        Loss::Bce => (0..n)
            .map(|i| {
                if i % 4 == 0 {
                    (i % 8 / 4) as f32
                } else {
                    grid(rng, 0.5) + 0.5
                }
            })
            .collect(),
        // Rows that are probability vectors: one-hot rows and soft rows.
        Loss::CrossEntropy => {
            let mut y = vec![0.0; n];
            for r in 0..rows {
                let row = &mut y[r * cols..(r + 1) * cols];
                if r % 2 == 0 {
                    row[r % cols] = 1.0;
                } else {
                    row.copy_from_slice(&[0.25, 0.5, 0.25]);
                }
            }
            y
        }
    };
    if loss == Loss::Huber {
        let small = p
            .iter()
            .zip(&y)
            .filter(|(p, y)| (*p - *y).abs() < 0.9)
            .count();
        assert!(small > 0 && small < n, "Huber case must cover both regions");
    }
    (p, y, cols)
}

const ALL_LOSSES: [Loss; 5] = [
    Loss::Mse,
    Loss::Mae,
    Loss::Huber,
    Loss::Bce,
    Loss::CrossEntropy,
];

#[test]
fn every_loss_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for loss in ALL_LOSSES {
        let (p, y, cols) = loss_case(loss, &mut rng);
        let mut grad = vec![0.0; p.len()];
        let value = loss.gradient(&p, &y, cols, &mut grad);
        // The value the gradient routine returns is the loss it differentiates.
        let reference = loss.value(&p, &y, cols);
        assert!(
            (value as f64 - reference).abs() <= 1e-6 * reference.abs().max(1.0),
            "{loss}: gradient() returns {value}, value() says {reference}"
        );
        assert_matches(loss.name(), &p, &grad, |pp| {
            loss.value(&to_f32(pp), &y, cols)
        });
    }
}

/// BCE at large logits, where the naive `-y ln σ(z) - (1-y) ln(1-σ(z))` loses all
/// precision: the stable form must still be differentiable and agree.
#[test]
fn bce_gradient_matches_at_large_logits() {
    let p = [-30.0f32, -12.5, 12.5, 30.0, 20.0, -20.0];
    let y = [0.0f32, 1.0, 0.0, 1.0, 0.25, 0.75];
    let mut grad = vec![0.0; p.len()];
    Loss::Bce.gradient(&p, &y, 1, &mut grad);
    assert_matches("bce at large logits", &p, &grad, |pp| {
        Loss::Bce.value(&to_f32(pp), &y, 1)
    });
}

/// The dense layer `a = f(x Wᵀ + b)` against `L = Σ c ⊙ a`: `dW`, `db` and `dx`.
#[test]
fn dense_layer_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (batch, inputs, outputs) = (4, 3, 5);
    for act in [
        Activation::Identity,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softmax,
    ] {
        let layer = Dense {
            inputs,
            outputs,
            activation: act,
        };
        let params = grid_vec(&mut rng, layer.num_params(), 1.0);
        let x = grid_vec(&mut rng, batch * inputs, 1.0);
        let c = grid_vec(&mut rng, batch * outputs, 1.0);
        let forward = |params: &[f32], x: &[f32]| {
            let mut a = vec![0.0; batch * outputs];
            let mut z = vec![0.0; batch * layer.saved_width()];
            let (out, saved) = (&mut a[..], &mut z[..]);
            layer.forward(Forward {
                params,
                x,
                batch,
                out,
                saved,
                work: &mut [],
                mode: backprop::layer::Mode::Infer,
            });
            (a, z)
        };
        let (a, z) = forward(&params, &x);
        let mut d_out = c.clone(); // dL/da = c
        let mut grads = vec![f32::NAN; params.len()]; // must be overwritten, not added to
        let mut dx = vec![f32::NAN; x.len()];
        layer.backward(Backward {
            params: &params,
            x: &x,
            batch,
            out: &a,
            saved: &z,
            d_out: &mut d_out,
            grads: &mut grads,
            dx: Some(&mut dx),
            accumulate: false,
            work: &mut [],
        });

        let loss = |params: &[f32], x: &[f32]| -> f64 {
            let (a, _) = forward(params, x);
            a.iter().zip(&c).map(|(&a, &c)| a as f64 * c as f64).sum()
        };
        let (w, b) = layer.split(&params);
        let (gw, gb) = layer.split(&grads);
        assert_matches(&format!("dense/{act}: dW"), w, gw, |wp| {
            let mut p = to_f32(wp);
            p.extend_from_slice(b);
            loss(&p, &x)
        });
        assert_matches(&format!("dense/{act}: db"), b, gb, |bp| {
            let mut p = w.to_vec();
            p.extend(to_f32(bp));
            loss(&p, &x)
        });
        assert_matches(&format!("dense/{act}: dx"), &x, &dx, |xp| {
            loss(&params, &to_f32(xp))
        });
    }
}

/// A network, data and targets for the whole-network checks.
struct Case {
    net: Network,
    x: Matrix,
    y: Matrix,
    loss: Loss,
}

impl Case {
    /// `sizes` with `hidden` activations and `output` activation, random weights on the
    /// grid; for networks with kinks, redrawn until every hidden pre-activation is at
    /// least `margin` from zero (a step H in one weight moves it by at most H·|x| < H).
    fn new(sizes: &[usize], hidden: Activation, output: Activation, loss: Loss, seed: u64) -> Case {
        let layers: Vec<Dense> = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| Dense {
                inputs: w[0],
                outputs: w[1],
                activation: if i + 2 == sizes.len() { output } else { hidden },
            })
            .collect();
        let batch = 6;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _attempt in 0..1000 {
            let n: usize = layers.iter().map(Dense::num_params).sum();
            let net = Network::from_params(layers.clone(), grid_vec(&mut rng, n, 0.8)).unwrap();
            let x = Matrix::from_vec(batch, sizes[0], grid_vec(&mut rng, batch * sizes[0], 1.0))
                .unwrap();
            if has_kink_at_zero(hidden) && min_hidden_preactivation(&net, &x) < 0.05 {
                continue;
            }
            let outputs = *sizes.last().unwrap();
            let pred = net.predict(&x);
            let y: Vec<f32> = match loss {
                // Away from MAE's kink at p = y.
                Loss::Mae => pred
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v + if i % 2 == 0 { 0.5 } else { -0.5 })
                    .collect(),
                _ => targets(loss, &mut rng, batch, outputs),
            };
            if loss == Loss::Huber {
                // Both regions covered, no residual within reach of the switch at 1.
                let d: Vec<f32> = pred
                    .as_slice()
                    .iter()
                    .zip(&y)
                    .map(|(p, y)| (p - y).abs())
                    .collect();
                if d.iter().any(|d| (d - 1.0).abs() < 0.05)
                    || d.iter().all(|&d| d < 1.0)
                    || d.iter().all(|&d| d > 1.0)
                {
                    continue;
                }
            }
            let y = Matrix::from_vec(batch, outputs, y).unwrap();
            return Case { net, x, y, loss };
        }
        panic!("no point away from the kinks found");
    }

    /// The analytic gradient of the mean loss with respect to every parameter.
    fn analytic(&self) -> Vec<f32> {
        let mut trace = Trace::default();
        self.net.forward_train(&self.x, &mut trace);
        let out = trace.output();
        let mut d_out = vec![0.0; out.as_slice().len()];
        self.loss
            .gradient(out.as_slice(), self.y.as_slice(), out.cols(), &mut d_out);
        let mut grads = vec![f32::NAN; self.net.num_params()];
        self.net.backward(&self.x, &mut trace, &d_out, &mut grads);
        grads
    }

    /// The mean loss at parameters `params` (f64, for the checker).
    fn loss_at(&self, params: &[f64]) -> f64 {
        let layers = self.net.dense_layers().unwrap();
        let net = Network::from_params(layers, to_f32(params)).unwrap();
        let p = net.predict(&self.x);
        self.loss.value(p.as_slice(), self.y.as_slice(), p.cols())
    }
}

fn targets(loss: Loss, rng: &mut impl Rng, rows: usize, cols: usize) -> Vec<f32> {
    match loss {
        Loss::CrossEntropy => (0..rows * cols)
            .map(|i| {
                if i % cols == (i / cols) % cols {
                    1.0
                } else {
                    0.0
                }
            })
            .collect(),
        Loss::Bce => (0..rows * cols).map(|_| grid(rng, 0.5) + 0.5).collect(),
        // Huber: spread wide enough that some residuals exceed 1 and some do not.
        _ => grid_vec(rng, rows * cols, 2.0),
    }
}

/// The smallest `|z|` over all hidden layers' pre-activations.
fn min_hidden_preactivation(net: &Network, x: &Matrix) -> f32 {
    let mut trace = Trace::default();
    net.forward_train(x, &mut trace);
    let mut min = f32::INFINITY;
    for i in 0..net.layers().len() - 1 {
        let (layer, ..) = net.dense(i).unwrap();
        let input = if i == 0 {
            x.as_slice()
        } else {
            trace.activations(i - 1).as_slice()
        };
        let mut z = vec![0.0; x.rows() * layer.outputs];
        layer.affine(net.layer_params(i), input, x.rows(), &mut z);
        min = z.iter().fold(min, |m, &v| m.min(v.abs()));
    }
    min
}

#[test]
fn whole_network_matches_finite_differences_for_every_loss() {
    for hidden in [
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Gelu,
    ] {
        for (k, loss) in ALL_LOSSES.into_iter().enumerate() {
            let case = Case::new(
                &[3, 5, 4, 2],
                hidden,
                Activation::Identity,
                loss,
                100 + k as u64,
            );
            let what = format!("3-5-4-2 {hidden} network, {loss} loss");
            assert_matches(&what, case.net.params(), &case.analytic(), |p| {
                case.loss_at(p)
            });
        }
    }
}

#[test]
fn networks_with_squashing_outputs_and_other_depths_match() {
    let cases = [
        // Sigmoid / softmax outputs under a regression loss exercise their backward
        // inside the network (the fused losses never see them).
        (
            vec![3, 5, 4, 2],
            Activation::Tanh,
            Activation::Sigmoid,
            Loss::Mse,
        ),
        (
            vec![3, 5, 4, 3],
            Activation::Relu,
            Activation::Softmax,
            Loss::Mse,
        ),
        // No hidden layer: linear and logistic regression.
        (
            vec![4, 2],
            Activation::Tanh,
            Activation::Identity,
            Loss::Mse,
        ),
        (
            vec![4, 3],
            Activation::Tanh,
            Activation::Identity,
            Loss::CrossEntropy,
        ),
        // One output, as every regression network: the last two layers go through
        // the fused passes of the library's `head` module (not with GELU below).
        (
            vec![3, 5, 4, 1],
            Activation::Relu,
            Activation::Identity,
            Loss::Mse,
        ),
        (
            vec![4, 6, 1],
            Activation::Tanh,
            Activation::Sigmoid,
            Loss::Mse,
        ),
        (
            vec![3, 5, 1],
            Activation::LeakyRelu,
            Activation::Identity,
            Loss::Huber,
        ),
        (
            vec![3, 5, 1],
            Activation::Elu,
            Activation::Identity,
            Loss::Mae,
        ),
        (
            vec![3, 4, 1],
            Activation::Gelu,
            Activation::Identity,
            Loss::Mse,
        ),
        // Deeper and wider.
        (
            vec![2, 7, 6, 5, 3],
            Activation::Gelu,
            Activation::Identity,
            Loss::Huber,
        ),
    ];
    for (i, (sizes, hidden, output, loss)) in cases.into_iter().enumerate() {
        let case = Case::new(&sizes, hidden, output, loss, 200 + i as u64);
        let what = format!("{sizes:?} {hidden}->{output} network, {loss} loss");
        assert_matches(&what, case.net.params(), &case.analytic(), |p| {
            case.loss_at(p)
        });
    }
}

/// The same checker, at the same step and tolerance, rejects plausible backprop bugs.
#[test]
fn network_check_rejects_wrong_gradients() {
    let case = Case::new(
        &[3, 5, 4, 2],
        Activation::Tanh,
        Activation::Identity,
        Loss::Mse,
        7,
    );
    let right = case.analytic();
    let f = |p: &[f64]| case.loss_at(p);
    assert!(check_gradient(&to_f64(case.net.params()), &to_f64(&right), H, f).passes(TOL));

    // One entry 5% off.
    let worst = right
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap()
        .0;
    let mut perturbed = right.clone();
    perturbed[worst] *= 1.05;
    let r = check_gradient(&to_f64(case.net.params()), &to_f64(&perturbed), H, f);
    assert!(
        !r.passes(TOL),
        "a 5% error in one entry went unnoticed: {r:?}"
    );
    assert_eq!(r.worst_index, worst);

    // Two entries swapped (a transposed weight gradient).
    let mut swapped = right.clone();
    let other = (1..right.len())
        .find(|&j| (right[j] - right[0]).abs() > 0.05)
        .unwrap();
    swapped.swap(0, other);
    assert!(!check_gradient(&to_f64(case.net.params()), &to_f64(&swapped), H, f).passes(TOL));

    // Backprop that forgets the hidden layers' activation derivative: the gradient of
    // the same weights in the network with identity hidden layers.
    let layers: Vec<Dense> = case
        .net
        .dense_layers()
        .unwrap()
        .iter()
        .map(|l| Dense {
            activation: Activation::Identity,
            ..*l
        })
        .collect();
    let linear = Case {
        net: Network::from_params(layers, case.net.params().to_vec()).unwrap(),
        x: case.x.clone(),
        y: case.y.clone(),
        loss: case.loss,
    };
    let forgot = linear.analytic();
    assert!(!check_gradient(&to_f64(case.net.params()), &to_f64(&forgot), H, f).passes(TOL));

    // The loss gradient without the 1/batch of the mean.
    let batch = case.x.rows() as f32;
    let unscaled: Vec<f32> = right.iter().map(|g| g * batch).collect();
    assert!(!check_gradient(&to_f64(case.net.params()), &to_f64(&unscaled), H, f).passes(TOL));
}
