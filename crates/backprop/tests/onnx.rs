//! ONNX export read back by tract, an ONNX runtime written independently of ours and
//! of ONNX Runtime: the exported graph, fed the raw columns, gives what the library
//! computes (preprocessing, network, target units), for both tasks, every activation,
//! every scaling and a log target; plus the structure of the file.
//!
//! tract cannot compare strings, so models with text columns are checked by ONNX
//! Runtime in the CLI's tests (`onnxruntime_matches_predict_for_every_model_kind`).

use std::path::Path;

use backprop::data::csv::{Column, CsvOptions, Table};
use backprop::data::prep::{
    Feature, PrepOptions, Preprocessor, ScaleKind, Scaler, Target, TargetTransform, Task,
};
use backprop::model::Model;
use backprop::onnx::{self, InputMode};
use backprop::{Activation, NetworkConfig, TrainConfig};
use rand::SeedableRng;
use tract_onnx::prelude::*;

/// 120 rows: a skewed column with missing cells and ties, a column with outliers, a
/// constant column, an integer class and a positive numeric target.
fn table() -> Table {
    let mut csv = String::from("a,b,k,y,flat,c\n");
    for i in 0..120u64 {
        let a = if i % 13 == 5 {
            "NA".to_string()
        } else {
            format!("{}", ((i * 7919) % 41) as f64 * 0.37 - 3.0)
        };
        let b = if i % 29 == 0 {
            1e4 + i as f64
        } else {
            (i as f64).sqrt() * 1.7
        };
        let y = 1.0 + ((i * 31) % 97) as f64 / 7.0;
        csv.push_str(&format!("{a},{b},{},{y},4.5,{}\n", i % 3, i % 2));
    }
    Table::parse(Path::new("t.csv"), csv.as_bytes(), CsvOptions::default()).unwrap()
}

/// A model over columns a, b, flat (and c) with random weights (the export does not
/// care whether they were trained).
fn model(
    t: &Table,
    task: Task,
    scale: ScaleKind,
    transform: TargetTransform,
    act: Activation,
) -> Model {
    let target = if task == Task::Regress { 3 } else { 2 };
    let opts = PrepOptions {
        scale,
        target_transform: transform,
        task,
    };
    let rows: Vec<usize> = (0..100).collect();
    let (prep, _) = Preprocessor::fit(t, &[0, 1, 4, 5], target, &rows, &opts).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let net = NetworkConfig {
        inputs: prep.input_width(),
        hidden: vec![9, 5],
        outputs: prep.target.width(),
        activation: act,
        ..Default::default()
    }
    .init(&mut rng)
    .unwrap();
    Model::new(net, prep, TrainConfig::default())
}

/// What the library predicts for every row of `t`, in the target's units
/// (probabilities for a classifier), as `backprop predict` computes it.
fn library_predictions(m: &Model, t: &Table) -> Vec<Vec<f32>> {
    let prep = &m.meta.preprocessor;
    let cols = prep.locate_features(t).unwrap();
    let rows: Vec<usize> = (0..t.rows()).collect();
    let (x, _) = prep.transform_features(t, &cols, &rows).unwrap();
    let z = m.network.predict(&x);
    (0..z.rows())
        .map(|r| match &prep.target {
            Target::Regression { .. } => vec![prep.target.inverse(z.row(r)[0] as f64) as f32],
            Target::Classification { .. } => {
                let mut p = vec![0.0; z.cols()];
                backprop::activation::softmax_row(z.row(r), &mut p);
                p
            }
        })
        .collect()
}

/// The exported model run by tract on the raw columns of `t`: the first output
/// (prediction or label) and the last (prediction or probabilities), row by row.
fn tract_predictions(m: &Model, t: &Table) -> (Vec<String>, Vec<Vec<f32>>) {
    let bytes = onnx::to_bytes(&onnx::build(m, InputMode::Columns).unwrap()).unwrap();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the export")
        .into_optimized()
        .expect("tract types the graph")
        .into_runnable()
        .unwrap();
    let n = t.rows();
    let mut inputs = TVec::new();
    let sig = onnx::signature(m, InputMode::Columns).unwrap();
    for port in &sig.inputs {
        let j = t.headers.iter().position(|h| *h == port.name).unwrap();
        let Column::Numeric(v) = &t.columns[j] else {
            panic!("numeric columns only")
        };
        let a = tract_ndarray::Array2::from_shape_vec((n, 1), v.iter().collect()).unwrap();
        inputs.push(a.into_tensor().into());
    }
    let out = plan.run(inputs).expect("tract runs the export");
    let first = out[0].clone().into_tensor();
    let labels = match first.datum_type() {
        DatumType::String => first.as_slice::<String>().unwrap().to_vec(),
        _ => Vec::new(),
    };
    let last = out[out.len() - 1].to_array_view::<f32>().unwrap();
    let k = last.shape()[1];
    let rows = last.iter().copied().collect::<Vec<f32>>();
    (labels, rows.chunks(k).map(<[f32]>::to_vec).collect())
}

/// Largest relative difference (absolute below `floor`), and where.
fn max_rel(a: &[Vec<f32>], b: &[Vec<f32>], floor: f32) -> (f32, String) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0.0, String::new());
    for (r, (x, y)) in a.iter().zip(b).enumerate() {
        for (u, v) in x.iter().zip(y) {
            let d = (u - v).abs() / u.abs().max(floor);
            if d > worst.0 || d.is_nan() {
                worst = (d, format!("row {r}: library {u}, tract {v}"));
            }
        }
    }
    worst
}

#[test]
fn tract_matches_the_library_for_every_scaling_and_activation() {
    let t = table();
    for scale in [
        ScaleKind::Standard,
        ScaleKind::Minmax,
        ScaleKind::Quantile,
        ScaleKind::None,
    ] {
        // Softmax is for the output layer only.
        for act in Activation::ALL
            .into_iter()
            .filter(|&a| a != Activation::Softmax)
        {
            let m = model(&t, Task::Regress, scale, TargetTransform::None, act);
            let want = library_predictions(&m, &t);
            let (_, got) = tract_predictions(&m, &t);
            // Relative to the prediction, or to 0.1 for predictions nearer zero: a random
            // network on unscaled columns sums terms far larger than its output.
            let (d, at) = max_rel(&want, &got, 0.1);
            assert!(
                d < 1e-5,
                "{scale:?} {act:?}: relative difference {d} at {at}"
            );
        }
    }
}

#[test]
fn tract_matches_the_library_for_a_log_target_and_a_classifier() {
    let t = table();
    let m = model(
        &t,
        Task::Regress,
        ScaleKind::Quantile,
        TargetTransform::Log,
        Activation::Tanh,
    );
    let (want, (_, got)) = (library_predictions(&m, &t), tract_predictions(&m, &t));
    let (d, at) = max_rel(&want, &got, 1e-3);
    assert!(d < 1e-5, "log target: relative difference {d} at {at}");

    for scale in [ScaleKind::Standard, ScaleKind::Quantile] {
        let m = model(
            &t,
            Task::Classify,
            scale,
            TargetTransform::None,
            Activation::Gelu,
        );
        let want = library_predictions(&m, &t);
        let (labels, got) = tract_predictions(&m, &t);
        let worst = want
            .iter()
            .flatten()
            .zip(got.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-6, "{scale:?}: probabilities differ by {worst}");
        let Target::Classification { classes, .. } = &m.meta.preprocessor.target else {
            panic!("classifier")
        };
        let picked: Vec<String> = want
            .iter()
            .map(|p| {
                let best = p
                    .iter()
                    .enumerate()
                    .fold(0, |b, (i, &v)| if v > p[b] { i } else { b });
                classes[best].clone()
            })
            .collect();
        assert_eq!(labels, picked, "{scale:?}: labels");
    }
}

/// A model whose network passes its one input through unchanged (weight 1, bias 0,
/// identity) with an identity target: the graph's output is its preprocessing.
fn pass_through(feature: Feature) -> Model {
    let prep = Preprocessor {
        features: vec![feature],
        target: Target::Regression {
            name: "y".into(),
            transform: TargetTransform::None,
            mean: 0.0,
            std: 1.0,
        },
    };
    let layers = vec![backprop::Dense {
        inputs: 1,
        outputs: 1,
        activation: Activation::Identity,
    }];
    let net = backprop::Network::from_params(layers, vec![1.0, 0.0]).unwrap();
    Model::new(net, prep, TrainConfig::default())
}

fn run_one(m: &Model, xs: &[f64]) -> Vec<f32> {
    let bytes = onnx::to_bytes(&onnx::build(m, InputMode::Columns).unwrap()).unwrap();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let a = tract_ndarray::Array2::from_shape_vec((xs.len(), 1), xs.to_vec()).unwrap();
    let out = plan.run(tvec!(a.into_tensor().into())).unwrap();
    out[0].as_slice::<f32>().unwrap().to_vec()
}

/// The quantile transform in the graph is `Scaler::apply`: below, at and above the
/// ends, on a tie spanning many references, at the references, between them, in both
/// tails, and for a missing value (the median's); within one float step (Acklam's
/// approximation without the Halley step is within 1.15e-9 relative).
#[test]
fn the_graphs_quantile_transform_is_the_scalers() {
    let mut values: Vec<f64> = (0..3000)
        .map(|i| ((i * 7919) % 2003) as f64 * 0.01 + if i % 5 == 0 { 3.0 } else { 0.0 })
        .collect();
    values.extend([7.0; 400]); // a tie spanning many references
    let scaler = Scaler::fit(ScaleKind::Quantile, &values);
    let Scaler::Quantile { references } = &scaler else {
        panic!("quantile")
    };
    let m = pass_through(Feature::Numeric {
        name: "x".into(),
        median: 7.0,
        scaler: scaler.clone(),
        constant: false,
    });
    let mut xs: Vec<f64> = vec![-1e6, -1.0, 0.0, 7.0, 10.005, 22.99, 23.03, 1e9, f64::NAN];
    xs.extend(references.iter().copied());
    xs.extend(references.iter().map(|&r| r as f32 as f64));
    xs.extend((0..2000).map(|i| i as f64 * 0.0117 - 0.3));
    let got = run_one(&m, &xs);
    let mut exact = 0;
    for (&x, &g) in xs.iter().zip(&got) {
        let want = scaler.apply(if x.is_nan() { 7.0 } else { x }) as f32;
        let ulp = f32::EPSILON * want.abs().max(f32::MIN_POSITIVE);
        assert!((g - want).abs() <= ulp, "x = {x}: graph {g}, scaler {want}");
        exact += usize::from(g == want);
    }
    assert!(
        exact * 100 >= xs.len() * 95,
        "only {exact} of {} bit-exact",
        xs.len()
    );

    // A constant column scales to zero.
    let flat = pass_through(Feature::Numeric {
        name: "x".into(),
        median: 2.0,
        scaler: Scaler::fit(ScaleKind::Quantile, &[2.0; 50]),
        constant: true,
    });
    assert_eq!(run_one(&flat, &[1.0, 2.0, 3.0]), [0.0, 0.0, 0.0]);
}

/// Each column of the test table through its fitted scaler, alone: the graph's
/// preprocessing is the library's, row by row, for every scaling.
#[test]
fn every_fitted_column_scales_as_the_library_does() {
    let t = table();
    for scale in [
        ScaleKind::Standard,
        ScaleKind::Minmax,
        ScaleKind::Quantile,
        ScaleKind::None,
    ] {
        let m = model(
            &t,
            Task::Regress,
            scale,
            TargetTransform::None,
            Activation::Relu,
        );
        for (j, f) in m.meta.preprocessor.features.iter().enumerate() {
            let one = pass_through(f.clone());
            let c = t.headers.iter().position(|h| h == f.name()).unwrap();
            let Column::Numeric(v) = &t.columns[c] else {
                panic!("numeric")
            };
            let got = run_one(&one, &v.iter().collect::<Vec<_>>());
            let (want, _) = m
                .meta
                .preprocessor
                .transform_features(
                    &t,
                    &m.meta.preprocessor.locate_features(&t).unwrap(),
                    &(0..t.rows()).collect::<Vec<_>>(),
                )
                .unwrap();
            for (r, &g) in got.iter().enumerate() {
                let w = want.get(r, j);
                let ulp = f32::EPSILON * w.abs().max(f32::MIN_POSITIVE);
                assert!(
                    (g - w).abs() <= ulp,
                    "{scale:?} column {} row {r} (x = {}): graph {g}, library {w}",
                    f.name(),
                    v.get(r)
                );
            }
        }
    }
}

#[test]
fn the_file_declares_its_interface_and_is_the_numbers_it_holds() {
    let t = table();
    let m = model(
        &t,
        Task::Classify,
        ScaleKind::Standard,
        TargetTransform::None,
        Activation::Relu,
    );
    let proto = onnx::build(&m, InputMode::Auto).unwrap();
    assert_eq!(proto.ir_version, onnx::IR_VERSION);
    assert_eq!(proto.opset_import[0].version, onnx::OPSET);
    let g = proto.graph.as_ref().unwrap();
    let names: Vec<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "flat", "c"]);
    let outs: Vec<&str> = g.output.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(outs, [onnx::LABEL, onnx::PROBABILITIES]);
    let dim = &g.input[0].type_.tensor_type().shape.dim;
    assert_eq!(dim[0].dim_param(), "N");
    assert_eq!(dim[1].dim_value(), 1);
    let meta = |k: &str| {
        proto
            .metadata_props
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
    };
    assert_eq!(meta("feature_columns").unwrap(), r#"["a","b","flat","c"]"#);
    assert_eq!(meta("classes").unwrap(), r#"["0","1","2"]"#);
    assert_eq!(meta("backprop_version").unwrap(), env!("CARGO_PKG_VERSION"));
    // The weights are stored once, as raw little-endian floats.
    let payload: usize = g
        .initializer
        .iter()
        .map(|t| t.raw_data.len() + t.string_data.iter().map(Vec::len).sum::<usize>())
        .sum();
    let weights = 4 * m.network.num_params();
    let bytes = onnx::to_bytes(&proto).unwrap().len();
    assert!(payload >= weights);
    assert!(
        bytes < payload + payload / 10 + 4096,
        "{bytes} bytes for {payload} bytes of numbers"
    );
}

/// The default model's shape (8 quantile-scaled columns of 1000 references, an
/// 8-256-256-128-1 network): the file is within 1% of the numbers it must hold.
#[test]
fn a_default_sized_file_is_within_one_percent_of_its_numbers() {
    let features = (0..8)
        .map(|j| Feature::Numeric {
            name: format!("column{j}"),
            median: 0.5,
            scaler: Scaler::Quantile {
                references: (0..1000).map(|i| (i * (j + 1)) as f64 / 999.0).collect(),
            },
            constant: false,
        })
        .collect();
    let prep = Preprocessor {
        features,
        target: Target::Regression {
            name: "y".into(),
            transform: TargetTransform::None,
            mean: 2.0,
            std: 1.2,
        },
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let net = NetworkConfig {
        inputs: 8,
        hidden: vec![256, 256, 128],
        outputs: 1,
        ..Default::default()
    }
    .init(&mut rng)
    .unwrap();
    let m = Model::new(net, prep, TrainConfig::default());
    let proto = onnx::build(&m, InputMode::Auto).unwrap();
    let bytes = onnx::to_bytes(&proto).unwrap().len();
    // The constants: weights as floats, references as doubles, medians, range ends,
    // the formulas' coefficients; the weights and references make nearly all of it.
    let numbers: usize = proto
        .graph
        .initializer
        .iter()
        .map(|t| t.raw_data.len())
        .sum();
    let at_least = 4 * m.network.num_params() + 8 * (8 * 1000 + 3 * 8);
    assert!(
        (at_least..at_least + 1024).contains(&numbers),
        "{numbers} bytes of numbers"
    );
    assert!(
        bytes < numbers + numbers / 100,
        "{bytes} bytes for {numbers} bytes of numbers"
    );
}

#[test]
fn models_the_graph_cannot_take_are_refused_with_a_reason() {
    let t = table();
    let m = model(
        &t,
        Task::Regress,
        ScaleKind::Standard,
        TargetTransform::None,
        Activation::Relu,
    );
    // Pixels need numeric features only; this model is numeric, so it may; a text
    // feature may not.
    assert_eq!(
        onnx::signature(&m, InputMode::Pixels).unwrap().inputs[0].to_string(),
        "pixels float[N, 4]"
    );
    let mut text = m.clone();
    text.meta.preprocessor.features.push(Feature::Categorical {
        name: "colour".into(),
        categories: vec!["red".into()],
        other: false,
    });
    let e = onnx::build(&text, InputMode::Pixels)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`colour` is a text column"), "{e}");
    // A feature column named like an output.
    let mut clash = m.clone();
    if let Feature::Numeric { name, .. } = &mut clash.meta.preprocessor.features[0] {
        *name = "prediction".into();
    }
    let e = onnx::build(&clash, InputMode::Columns)
        .unwrap_err()
        .to_string();
    assert!(e.contains("name of a graph output"), "{e}");
    // An output path that cannot be written leaves nothing behind.
    let dir = std::env::temp_dir().join(format!("bp-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("missing-folder").join("m.onnx");
    assert!(onnx::save(&m, InputMode::Auto, &bad).is_err());
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
