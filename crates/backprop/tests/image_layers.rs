//! The image layers (`Conv2d`, `MaxPool2d`, `AvgPool2d`, `Flatten`, `Dropout`,
//! `RandomShift`):
//! finite-difference checks of every backward pass (as `tests/gradients.rs` does for
//! the dense layer, with the same step and tolerance), PyTorch golden fixtures
//! (`tests/golden/layers_cnn.json`, from `generate_cnn.py`), whole networks through
//! the network's loops, saving and loading, thread counts, and dropout's modes.

use backprop::activation::Activation;
use backprop::gradcheck::check_gradient;
use backprop::layer::{
    AvgPool2d, Backward, Conv2d, Dense, Dropout, Flatten, Forward, Image, Layer, LayerSpec,
    MaxPool2d, Mode, Pool, RandomShift,
};
use backprop::matrix::Matrix;
use backprop::network::{Network, Trace};
use backprop::Init;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

/// Finite-difference step and tolerance: as in `tests/gradients.rs` (see its budget).
const H: f64 = 1.0 / 128.0;
const TOL: f64 = 2e-4;

/// Values on the 2^-12 grid in `[-1, 1]`.
fn grid_vec(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.gen_range(-4096..=4096) as f32 / 4096.0)
        .collect()
}

/// Distinct values at least 2^-5 apart (more than 2H), so that no finite-difference
/// step moves a maximum from one input to another.
fn distinct_vec(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) / 32.0).collect();
    v.shuffle(rng);
    v
}

/// Forward of one layer on `batch` rows, with working memory and mode.
fn forward(
    l: &dyn Layer,
    params: &[f32],
    x: &[f32],
    batch: usize,
    mode: Mode,
) -> (Vec<f32>, Vec<f32>) {
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
        mode,
    });
    (out, saved)
}

/// Backward of one layer from `d_out`: (dL/dθ, dL/dx).
fn backward(
    l: &dyn Layer,
    params: &[f32],
    x: &[f32],
    batch: usize,
    (out, saved): (&[f32], &[f32]),
    d_out: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let mut grads = vec![f32::NAN; params.len()];
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
        accumulate: false,
        work: &mut work,
    });
    (grads, dx)
}

/// Checks dL/dθ and dL/dx of `L = Σ out ⊙ c` against central differences.
fn gradcheck(what: &str, l: &dyn Layer, params: &[f32], x: &[f32], batch: usize, mode: Mode) {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let c = grid_vec(&mut rng, batch * l.outputs());
    let (out, saved) = forward(l, params, x, batch, mode);
    let (grads, dx) = backward(l, params, x, batch, (&out, &saved), &c);
    let loss = |p: &[f32], x: &[f32]| -> f64 {
        let (a, _) = forward(l, p, x, batch, mode);
        a.iter().zip(&c).map(|(&a, &c)| a as f64 * c as f64).sum()
    };
    let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
    if !params.is_empty() {
        let r = check_gradient(&f64s(params), &f64s(&grads), H, |p| loss(&f32s(p), x));
        assert!(r.passes(TOL), "{what}: dθ disagrees: {r:?}");
    }
    let r = check_gradient(&f64s(x), &f64s(&dx), H, |xp| loss(params, &f32s(xp)));
    assert!(r.passes(TOL), "{what}: dx disagrees: {r:?}");
}

fn image(channels: usize, height: usize, width: usize) -> Image {
    Image {
        channels,
        height,
        width,
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (input, oc, kernel, stride, padding, act) in [
        (image(2, 5, 7), 3, [3, 3], 1, 1, Activation::Identity),
        (image(3, 6, 5), 2, [3, 2], 2, 0, Activation::Tanh),
        (image(1, 7, 7), 4, [5, 5], 2, 2, Activation::Sigmoid),
        (image(2, 4, 4), 2, [1, 1], 1, 0, Activation::Gelu),
    ] {
        let l = Conv2d {
            input,
            out_channels: oc,
            kernel,
            stride,
            padding,
            activation: act,
        };
        l.validate().unwrap();
        let params = grid_vec(&mut rng, l.num_params());
        let x = grid_vec(&mut rng, 2 * input.len());
        gradcheck(&format!("{l:?}"), &l, &params, &x, 2, Mode::Infer);
    }
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (input, kernel, stride, padding) in [
        (image(2, 5, 7), 2, 2, 0),
        (image(3, 7, 6), 3, 2, 1),
        (image(1, 4, 5), 2, 1, 0),
    ] {
        let p = Pool {
            input,
            kernel,
            stride,
            padding,
        };
        let x = distinct_vec(&mut rng, 2 * input.len());
        gradcheck(
            &format!("max {p:?}"),
            &MaxPool2d(p),
            &[],
            &x,
            2,
            Mode::Infer,
        );
        gradcheck(
            &format!("avg {p:?}"),
            &AvgPool2d(p),
            &[],
            &x,
            2,
            Mode::Infer,
        );
    }
}

#[test]
fn flatten_and_dropout_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = grid_vec(&mut rng, 3 * 24);
    let flatten = Flatten {
        input: image(2, 3, 4),
    };
    gradcheck("flatten", &flatten, &[], &x, 3, Mode::Infer);
    let dropout = Dropout { width: 24, p: 0.3 };
    gradcheck("dropout (infer)", &dropout, &[], &x, 3, Mode::Infer);
    // A training pass with a fixed seed is a fixed mask: differentiable, and checked.
    gradcheck(
        "dropout (train)",
        &dropout,
        &[],
        &x,
        3,
        Mode::Train { seed: 7 },
    );
}

#[test]
fn dropout_drops_the_share_it_is_given_and_keeps_the_mean() {
    let l = Dropout {
        width: 1000,
        p: 0.25,
    };
    let x = vec![1.0f32; 20_000];
    let (out, _) = forward(&l, &[], &x, 20, Mode::Train { seed: 5 });
    let dropped = out.iter().filter(|&&v| v == 0.0).count() as f64 / out.len() as f64;
    assert!((dropped - 0.25).abs() < 0.01, "dropped {dropped}");
    let mean = out.iter().map(|&v| v as f64).sum::<f64>() / out.len() as f64;
    assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
    assert!(out.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
    // The same seed gives the same mask; another seed another; inference passes on.
    assert_eq!(out, forward(&l, &[], &x, 20, Mode::Train { seed: 5 }).0);
    assert_ne!(out, forward(&l, &[], &x, 20, Mode::Train { seed: 6 }).0);
    assert_eq!(x, forward(&l, &[], &x, 20, Mode::Infer).0);
}

#[derive(Deserialize)]
struct Fixture {
    torch_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    config: serde_json::Value,
    activation: String,
    input: Vec<usize>,
    batch: usize,
    x: Vec<f32>,
    params: Vec<f32>,
    c: Vec<f32>,
    out: Vec<f64>,
    dx: Vec<f64>,
    dparams: Vec<f64>,
}

impl Case {
    /// The layer the case describes, built from its kind and configuration as
    /// `model.json` would hold it.
    fn spec(&self) -> LayerSpec {
        let mut v = self.config.clone();
        let input = match self.input[..] {
            [c, h, w] => image(c, h, w),
            _ => image(1, 1, 1),
        };
        v["kind"] = self.kind.clone().into();
        match self.kind.as_str() {
            "conv2d" => v["activation"] = self.activation.clone().into(),
            "dropout" => v["width"] = self.input.iter().product::<usize>().into(),
            _ => {}
        }
        if self.kind != "dropout" {
            v["input"] = serde_json::to_value(input).unwrap();
        }
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= 1e-5 * w.abs() + 1e-5,
            "{what}[{i}]: ours {g}, torch {w}"
        );
    }
}

#[test]
fn image_layers_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/layers_cnn.json");
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(f.torch_version.starts_with('2'));
    let kinds: std::collections::BTreeSet<_> = f.cases.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds.len(), 5, "every kind has a case: {kinds:?}");
    for case in &f.cases {
        let spec = case.spec();
        spec.validate().unwrap();
        let l = spec.layer();
        let n = &case.name;
        assert_eq!(l.num_params(), case.params.len(), "{n}: parameters");
        let (out, saved) = forward(&*l, &case.params, &case.x, case.batch, Mode::Infer);
        assert_close(&format!("{n}: output"), &out, &case.out);
        let (grads, dx) = backward(
            &*l,
            &case.params,
            &case.x,
            case.batch,
            (&out, &saved),
            &case.c,
        );
        assert_close(&format!("{n}: dx"), &dx, &case.dx);
        assert_close(&format!("{n}: dθ"), &grads, &case.dparams);
        // The same through a network's loops (as training runs it).
        let net = Network::from_specs(&[spec], case.params.clone()).unwrap();
        let x = Matrix::from_vec(case.batch, l.inputs(), case.x.clone()).unwrap();
        let mut trace = Trace::default();
        net.forward_train(&x, &mut trace);
        assert_close(
            &format!("{n}: network output"),
            trace.output().as_slice(),
            &case.out,
        );
        let mut g = vec![0.0; net.num_params()];
        net.backward(&x, &mut trace, &case.c, &mut g);
        assert_close(&format!("{n}: network dθ"), &g, &case.dparams);
    }
}

/// A small CNN for 1x8x8 images: conv 4 3x3 pad 1 relu (tanh when `smooth`),
/// maxpool 2 (avgpool when `smooth`), conv 6 3x3 tanh,
/// avgpool 2, flatten, dropout, dense 5 tanh, dense 3.
fn small_cnn(p: f32, smooth: bool) -> Vec<LayerSpec> {
    let c1 = Conv2d {
        input: image(1, 8, 8),
        out_channels: 4,
        kernel: [3, 3],
        stride: 1,
        padding: 1,
        activation: if smooth {
            Activation::Tanh
        } else {
            Activation::Relu
        },
    };
    let p1 = Pool {
        input: c1.output(),
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    let c2 = Conv2d {
        input: p1.output(),
        out_channels: 6,
        kernel: [3, 3],
        stride: 1,
        padding: 0,
        activation: Activation::Tanh,
    };
    let p2 = Pool {
        input: c2.output(),
        kernel: 2,
        stride: 2,
        padding: 0,
    };
    let flat = p2.output().len();
    vec![
        LayerSpec::Conv2d(c1),
        if smooth {
            LayerSpec::AvgPool2d(AvgPool2d(p1))
        } else {
            LayerSpec::MaxPool2d(MaxPool2d(p1))
        },
        LayerSpec::Conv2d(c2),
        LayerSpec::AvgPool2d(AvgPool2d(p2)),
        LayerSpec::Flatten(Flatten { input: p2.output() }),
        LayerSpec::Dropout(Dropout { width: flat, p }),
        LayerSpec::Dense(Dense {
            inputs: flat,
            outputs: 5,
            activation: Activation::Tanh,
        }),
        LayerSpec::Dense(Dense {
            inputs: 5,
            outputs: 3,
            activation: Activation::Identity,
        }),
    ]
}

#[test]
fn a_cnn_saves_loads_and_keeps_pytorch_layouts() {
    let specs = small_cnn(0.1, false);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let net = Network::init_specs(&specs, Init::Auto, Activation::Relu, &mut rng).unwrap();
    let bytes = backprop::model::weights_to_safetensors(&net).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[4, 1, 3, 3]);
    assert_eq!(st.tensor("layers.2.weight").unwrap().shape(), &[6, 4, 3, 3]);
    assert_eq!(st.tensor("layers.6.weight").unwrap().shape(), &[5, 6]);
    assert!(
        st.tensor("layers.1.weight").is_err(),
        "pooling has no tensors"
    );
    let path = std::path::Path::new("m.safetensors");
    let back = backprop::model::weights_from_safetensors(path, &bytes, &specs).unwrap();
    assert_eq!(back.params(), net.params());
    assert_eq!(back.specs().unwrap(), specs);
    let json = serde_json::to_string(&specs).unwrap();
    assert!(json.contains(r#""kind":"conv2d""#), "{json}");
    let again: Vec<LayerSpec> = serde_json::from_str(&json).unwrap();
    assert_eq!(again, specs);
    // Weights of another shape are refused, naming the tensor.
    let mut wrong = specs.clone();
    if let LayerSpec::Conv2d(c) = &mut wrong[0] {
        c.kernel = [5, 5];
        c.padding = 2;
    }
    let e = backprop::model::weights_from_safetensors(path, &bytes, &wrong).unwrap_err();
    assert!(e.to_string().contains("layers.0.weight"), "{e}");
}

#[test]
fn a_cnn_gradient_through_the_network_matches_finite_differences() {
    let specs = small_cnn(0.0, true);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = Network::spec_param_count(&specs).unwrap();
    let net = Network::from_specs(&specs, grid_vec(&mut rng, n)).unwrap();
    let x = Matrix::from_vec(3, 64, grid_vec(&mut rng, 3 * 64)).unwrap();
    let c = grid_vec(&mut rng, 3 * 3);
    let mut trace = Trace::default();
    net.forward_train(&x, &mut trace);
    let mut grads = vec![0.0; n];
    net.backward(&x, &mut trace, &c, &mut grads);
    let loss = |p: &[f64]| -> f64 {
        let p: Vec<f32> = p.iter().map(|&v| v as f32).collect();
        let out = Network::from_specs(&specs, p).unwrap().predict(&x);
        out.as_slice()
            .iter()
            .zip(&c)
            .map(|(&a, &c)| a as f64 * c as f64)
            .sum()
    };
    let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let r = check_gradient(&f64s(net.params()), &f64s(&grads), H, loss);
    // Smooth layers only (tanh, average pooling): the kinks of ReLU and max-pooling
    // can sit within a step of a point; those layers are checked on their own above.
    assert!(r.passes(TOL), "{r:?}");
}

#[test]
fn random_shift_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let l = RandomShift {
        image: image(2, 5, 6),
        max: 2,
    };
    let x = grid_vec(&mut rng, 4 * 60);
    gradcheck("shift (infer)", &l, &[], &x, 4, Mode::Infer);
    // A training pass with a fixed seed is a fixed shift of each image: linear.
    for seed in [1, 2, 3] {
        gradcheck("shift (train)", &l, &[], &x, 4, Mode::Train { seed });
    }
}

/// `a[c][y][x] = x[c][y - dy][x - dx]`, 0 outside: written pixel by pixel.
fn shifted(img: Image, x: &[f32], dy: isize, dx: isize) -> Vec<f32> {
    let (h, w) = (img.height as isize, img.width as isize);
    let mut a = vec![0.0; x.len()];
    for c in 0..img.channels as isize {
        for y in 0..h {
            for xx in 0..w {
                let (sy, sx) = (y - dy, xx - dx);
                if (0..h).contains(&sy) && (0..w).contains(&sx) {
                    a[((c * h + y) * w + xx) as usize] = x[((c * h + sy) * w + sx) as usize];
                }
            }
        }
    }
    a
}

#[test]
fn random_shift_moves_each_image_by_its_own_draw_and_predicts_unchanged() {
    let img = image(3, 7, 5);
    let l = RandomShift { image: img, max: 2 };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let batch = 400;
    let x = grid_vec(&mut rng, batch * img.len());
    let (out, saved) = forward(&l, &[], &x, batch, Mode::Train { seed: 11 });
    let mut seen = std::collections::BTreeSet::new();
    for (r, s) in saved.chunks_exact(2).enumerate() {
        let (dy, dx) = (s[0] as isize, s[1] as isize);
        assert!(dy.abs() <= 2 && dx.abs() <= 2);
        seen.insert((dy, dx));
        let n = img.len();
        assert_eq!(
            out[r * n..][..n],
            shifted(img, &x[r * n..][..n], dy, dx)[..]
        );
    }
    assert_eq!(seen.len(), 25, "every shift in -2..=2 squared is drawn");
    assert_eq!(out, forward(&l, &[], &x, batch, Mode::Train { seed: 11 }).0);
    assert_ne!(out, forward(&l, &[], &x, batch, Mode::Train { seed: 12 }).0);
    assert_eq!(x, forward(&l, &[], &x, batch, Mode::Infer).0);
    // Refused: no shift, or one as large as a side.
    assert!(LayerSpec::RandomShift(RandomShift { image: img, max: 0 })
        .validate()
        .is_err());
    assert!(LayerSpec::RandomShift(RandomShift { image: img, max: 5 })
        .validate()
        .is_err());
    assert!(LayerSpec::RandomShift(l).validate().is_ok());
    let json = serde_json::to_string(&LayerSpec::RandomShift(l)).unwrap();
    assert!(json.contains("\"kind\":\"shift\""), "{json}");
    let back: LayerSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, LayerSpec::RandomShift(l));
}
