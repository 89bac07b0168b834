//! The numeric-feature embeddings ([`Periodic`]): finite-difference checks of the
//! backward pass (as `tests/image_layers.rs` does for the image layers), PyTorch golden
//! fixtures (`tests/golden/layers_embeddings.json`, from `generate_embeddings.py`),
//! saving and loading with the reference implementation's tensor names, the
//! initialisation, and training on 1 and 2 threads.

use backprop::activation::Activation;
use backprop::gradcheck::check_gradient;
use backprop::layer::{Backward, Dense, Forward, Layer, LayerSpec, Mode, Periodic};
use backprop::loss::Loss;
use backprop::matrix::Matrix;
use backprop::network::{Network, Trace};
use backprop::optim::OptimizerKind;
use backprop::train::{BatchSize, Dataset, TrainConfig, Trainer};
use backprop::Init;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

/// Finite-difference step: as in `tests/gradients.rs`.
const H: f64 = 1.0 / 128.0;
/// Tolerance: `tests/gradients.rs`'s 2e-4 is for layers whose f32 products are exact
/// on the 2^-12 grid; `sin` and `cos` round (by up to an ulp, 6e-8 relative), and the
/// central difference divides that by 2H = 1/64, so a few 1e-5 of noise is expected.
const TOL: f64 = 1e-3;

/// Values on the 2^-12 grid in `[-r, r]`.
fn grid_vec(rng: &mut impl Rng, n: usize, r: f32) -> Vec<f32> {
    (0..n)
        .map(|_| rng.gen_range(-4096..=4096) as f32 / 4096.0 * r)
        .collect()
}

fn forward(l: &dyn Layer, params: &[f32], x: &[f32], batch: usize) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![f32::NAN; batch * l.outputs()];
    let mut saved = vec![f32::NAN; batch * l.saved_width()];
    let mut work = vec![f32::NAN; batch * l.work_width()];
    l.forward(Forward {
        params,
        x,
        batch,
        out: &mut out,
        saved: &mut saved,
        work: &mut work,
        mode: Mode::Infer,
    });
    (out, saved)
}

/// Backward from `d_out`: (dL/dθ, dL/dx); `accumulate` adds to `grads` as given.
fn backward(
    l: &dyn Layer,
    (params, x, batch): (&[f32], &[f32], usize),
    (out, saved): (&[f32], &[f32]),
    d_out: &[f32],
    mut grads: Vec<f32>,
    accumulate: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut dx = vec![f32::NAN; x.len()];
    let mut d = d_out.to_vec();
    let mut work = vec![f32::NAN; batch * l.work_width()];
    l.backward(Backward {
        params,
        x,
        batch,
        out,
        saved,
        d_out: &mut d,
        grads: &mut grads,
        dx: Some(&mut dx),
        accumulate,
        work: &mut work,
    });
    (grads, dx)
}

fn periodic(features: usize, frequencies: usize, width: usize) -> Periodic {
    Periodic {
        features,
        frequencies,
        width,
        sigma: 0.1,
    }
}

/// The smallest `|z|` of the layer's pre-activations (from `v = relu(z)` and the
/// parameters: recomputed with the bias-free output of a second layer).
fn min_abs_preactivation(l: &Periodic, params: &[f32], x: &[f32], batch: usize) -> f32 {
    // z = relu(z) - relu(-z): the output of the layer with W and b negated.
    let cut = l.features * l.frequencies;
    let neg: Vec<f32> = params
        .iter()
        .enumerate()
        .map(|(i, &v)| if i < cut { v } else { -v })
        .collect();
    let (pos, _) = forward(l, params, x, batch);
    let (negv, _) = forward(l, &neg, x, batch);
    pos.iter()
        .zip(&negv)
        .map(|(a, b)| (a - b).abs())
        .fold(f32::INFINITY, f32::min)
}

/// Checks dL/dθ and dL/dx of `L = Σ out ⊙ c` against central differences, at points
/// where no pre-activation lies within reach of a step of ReLU's kink (drawn again
/// until so), with some units off so that the mask is exercised too.
#[test]
fn periodic_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (n, k, d, batch) in [(3, 4, 5, 2), (1, 1, 1, 3), (4, 2, 6, 2)] {
        let l = periodic(n, k, d);
        l.validate().unwrap();
        let (params, x) = loop {
            let params = grid_vec(&mut rng, l.num_params(), 1.0);
            let x = grid_vec(&mut rng, batch * n, 1.0);
            if min_abs_preactivation(&l, &params, &x, batch) > 0.1 {
                break (params, x);
            }
        };
        let c = grid_vec(&mut rng, batch * l.outputs(), 1.0);
        let (out, saved) = forward(&l, &params, &x, batch);
        let (grads, dx) = backward(
            &l,
            (&params, &x, batch),
            (&out, &saved),
            &c,
            vec![f32::NAN; params.len()],
            false,
        );
        let loss = |p: &[f32], x: &[f32]| -> f64 {
            let (a, _) = forward(&l, p, x, batch);
            a.iter().zip(&c).map(|(&a, &c)| a as f64 * c as f64).sum()
        };
        let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
        let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
        let r = check_gradient(&f64s(&params), &f64s(&grads), H, |p| loss(&f32s(p), &x));
        assert!(r.passes(TOL), "{l:?}: dθ disagrees: {r:?}");
        let r = check_gradient(&f64s(&x), &f64s(&dx), H, |xp| loss(&params, &f32s(xp)));
        assert!(r.passes(TOL), "{l:?}: dx disagrees: {r:?}");
        // Accumulating adds the same gradient to what is there.
        let (twice, _) = backward(
            &l,
            (&params, &x, batch),
            (&out, &saved),
            &c,
            grads.clone(),
            true,
        );
        for (a, b) in twice.iter().zip(&grads) {
            assert!(
                (a - 2.0 * b).abs() <= 1e-6 * b.abs().max(1.0),
                "{a} vs 2 x {b}"
            );
        }
    }
}

#[test]
fn a_zero_unit_passes_no_gradient() {
    // One feature, one frequency, width 2: a bias of -10 keeps unit 0 off.
    let l = periodic(1, 1, 2);
    // c, W (2x2: rows cos and sin), b
    let params = [0.25, 1.0, 1.0, 1.0, 1.0, -10.0, 0.0];
    let (out, saved) = forward(&l, &params, &[0.5], 1);
    assert_eq!(out[0], 0.0);
    // θ = 2π · 0.25 · 0.5 = π/4: v_1 = cos + sin = √2.
    assert!((out[1] - 2f32.sqrt()).abs() < 1e-6, "{out:?}");
    let (g, _) = backward(
        &l,
        (&params, &[0.5], 1),
        (&out, &saved),
        &[1.0, 1.0],
        vec![0.0; 7],
        false,
    );
    assert_eq!(g[5], 0.0, "db of the unit that is off");
    assert_eq!(g[6], 1.0, "db of the unit that is on");
}

#[derive(Deserialize)]
struct Fixture {
    torch_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    config: Periodic,
    batch: usize,
    x: Vec<f32>,
    params: Vec<f32>,
    c: Vec<f32>,
    out: Vec<f64>,
    dx: Vec<f64>,
    dparams: Vec<f64>,
    names: Vec<String>,
}

/// Within `tol` relative and absolute.
fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= tol * w.abs() + tol,
            "{what}[{i}]: ours {g}, torch {w}"
        );
    }
}

#[test]
fn periodic_matches_pytorch() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/layers_embeddings.json"
    );
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(f.torch_version.starts_with('2'));
    assert!(f.cases.len() >= 4);
    for case in &f.cases {
        let l = case.config;
        l.validate().unwrap();
        let n = &case.name;
        assert_eq!(l.num_params(), case.params.len(), "{n}: parameters");
        let names: Vec<&str> = l.tensors().iter().map(|t| t.0).collect();
        assert_eq!(names, case.names, "{n}: tensor names");
        // The phase θ = 2π c x is rounded to f32 (|θ| 2^-24), which the outputs and
        // gradients inherit: the tolerance grows with the largest phase (1e-5 up to 1).
        let n_feat = l.features;
        let theta = (0..case.x.len())
            .flat_map(|i| {
                let j = i % n_feat;
                let c = &case.params[j * l.frequencies..][..l.frequencies];
                c.iter()
                    .map(move |&c| (c * case.x[i]).abs() * std::f32::consts::TAU)
            })
            .fold(1f32, f32::max) as f64;
        let tol = 1e-5 * theta;
        let (out, saved) = forward(&l, &case.params, &case.x, case.batch);
        assert_close(&format!("{n}: output"), &out, &case.out, tol);
        let (grads, dx) = backward(
            &l,
            (&case.params, &case.x, case.batch),
            (&out, &saved),
            &case.c,
            vec![0.0; case.params.len()],
            false,
        );
        assert_close(&format!("{n}: dx"), &dx, &case.dx, tol);
        assert_close(&format!("{n}: dθ"), &grads, &case.dparams, tol);
        // The same through a network's loops (as training runs it).
        let spec = LayerSpec::Periodic(l);
        let net = Network::from_specs(&[spec], case.params.clone()).unwrap();
        let x = Matrix::from_vec(case.batch, l.features, case.x.clone()).unwrap();
        let mut trace = Trace::default();
        net.forward_train(&x, &mut trace);
        assert_close(
            &format!("{n}: network"),
            trace.output().as_slice(),
            &case.out,
            tol,
        );
        let mut g = vec![0.0; net.num_params()];
        net.backward(&x, &mut trace, &case.c, &mut g);
        assert_close(&format!("{n}: network dθ"), &g, &case.dparams, tol);
    }
}

/// `periodic` on 3 features (k 4, width 5), then dense 15 -> 8 relu -> 1.
fn specs() -> Vec<LayerSpec> {
    let p = Periodic {
        features: 3,
        frequencies: 4,
        width: 5,
        sigma: 0.5,
    };
    vec![
        LayerSpec::Periodic(p),
        LayerSpec::Dense(Dense {
            inputs: 15,
            outputs: 8,
            activation: Activation::Relu,
        }),
        LayerSpec::Dense(Dense {
            inputs: 8,
            outputs: 1,
            activation: Activation::Identity,
        }),
    ]
}

#[test]
fn initial_frequencies_follow_sigma_and_weights_the_reference_bound() {
    let p = Periodic {
        features: 50,
        frequencies: 40,
        width: 8,
        sigma: 0.3,
    };
    let spec = [LayerSpec::Periodic(p)];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = Network::init_specs(&spec, Init::Auto, Activation::Relu, &mut rng).unwrap();
    let (c, rest) = net.params().split_at(50 * 40);
    let sd = (c.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / c.len() as f64).sqrt();
    // A normal truncated at 3σ has a standard deviation of 0.986σ.
    assert!((sd / 0.3 - 0.986).abs() < 0.05, "sd {sd}");
    assert!(c.iter().all(|v| v.abs() <= 0.9));
    let bound = 1.0 / 80f32.sqrt();
    assert!(rest.iter().all(|v| v.abs() <= bound));
    let max = rest.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max > 0.9 * bound, "uniform over the bound: max {max}");
    let again = Network::init_specs(
        &spec,
        Init::Auto,
        Activation::Relu,
        &mut ChaCha8Rng::seed_from_u64(3),
    )
    .unwrap();
    assert_eq!(again.params(), net.params());
}

#[test]
fn a_periodic_network_saves_and_loads_with_reference_names() {
    let specs = specs();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let net = Network::init_specs(&specs, Init::Auto, Activation::Relu, &mut rng).unwrap();
    let bytes = backprop::model::weights_to_safetensors(&net).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("layers.0.periodic.weight").unwrap().shape(),
        &[3, 4]
    );
    assert_eq!(
        st.tensor("layers.0.linear.weight").unwrap().shape(),
        &[3, 8, 5]
    );
    assert_eq!(st.tensor("layers.0.linear.bias").unwrap().shape(), &[3, 5]);
    assert_eq!(st.tensor("layers.1.weight").unwrap().shape(), &[8, 15]);
    let path = std::path::Path::new("m.safetensors");
    let back = backprop::model::weights_from_safetensors(path, &bytes, &specs).unwrap();
    assert_eq!(back.params(), net.params());
    let x = Matrix::from_vec(2, 3, vec![0.1, -2.0, 0.5, 1.5, 0.0, -0.25]).unwrap();
    assert_eq!(back.predict(&x), net.predict(&x));
    let json = serde_json::to_string(&specs).unwrap();
    assert!(json.contains(r#""kind":"periodic""#), "{json}");
    let again: Vec<LayerSpec> = serde_json::from_str(&json).unwrap();
    assert_eq!(again, specs);
    // Weights of another shape are refused, naming the tensor.
    let mut wrong = specs.clone();
    if let LayerSpec::Periodic(p) = &mut wrong[0] {
        p.frequencies = 3;
    }
    let e = backprop::model::weights_from_safetensors(path, &bytes, &wrong).unwrap_err();
    assert!(e.to_string().contains("layers.0.periodic.weight"), "{e}");
    // Bad configurations are refused by name.
    for bad in [
        Periodic {
            sigma: 0.0,
            ..periodic(3, 4, 5)
        },
        Periodic {
            sigma: f32::NAN,
            ..periodic(3, 4, 5)
        },
        periodic(3, 0, 5),
        periodic(3, 4, 0),
        periodic(usize::MAX / 2, 4, 5),
    ] {
        let e = LayerSpec::Periodic(bad).validate().unwrap_err().to_string();
        assert!(e.contains("periodic"), "{e}");
    }
}

/// Trains the network of [`specs`] for two epochs with AdamW on a pool of `threads`,
/// in batches of 1024 rows: two pieces of `PIECE_ROWS` (512) each, the second adding
/// to the first's gradient (`accumulate`), and a short last batch; the optimizer's
/// update is split over the pool's threads.
fn train(threads: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let rows = 2500;
    let x: Vec<f32> = (0..rows * 3).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let y: Vec<f32> = x
        .chunks_exact(3)
        .map(|r| (3.0 * r[0]).sin() + r[1].abs() - r[2])
        .collect();
    let data = Dataset::new(
        Matrix::from_vec(rows, 3, x).unwrap(),
        Matrix::from_vec(rows, 1, y).unwrap(),
    )
    .unwrap();
    let mut net = Network::init_specs(&specs(), Init::Auto, Activation::Relu, &mut rng).unwrap();
    let trainer = Trainer::new(TrainConfig {
        epochs: 2,
        batch_size: BatchSize::Mini(1024),
        loss: Loss::Mse,
        optimizer: OptimizerKind::Adamw.build(0.9, 0.01),
        lr: 0.01,
        seed: 7,
        ..Default::default()
    })
    .unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let before = net.params().to_vec();
    pool.install(|| trainer.fit(&mut net, &data, None, &mut []))
        .unwrap();
    assert_ne!(net.params(), &before[..], "training moved the weights");
    net.params().to_vec()
}

#[test]
fn training_gives_the_same_bits_on_1_and_2_threads() {
    let (one, two) = (train(1), train(2));
    let same = one
        .iter()
        .zip(&two)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "parameters differ between 1 and 2 threads");
}
