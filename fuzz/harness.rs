#![allow(dead_code)] // each target uses one of these
//! What each fuzz target does with its input, shared by the targets in `fuzz_targets/`
//! and by the library's test that replays the committed corpus
//! (`crates/backprop/tests/fuzz_corpus.rs`). Each function must return, never panic,
//! whatever the bytes.

use std::path::Path;

use backprop::checkpoint::Checkpoint;
use backprop::data::csv::{CsvOptions, Table};
use backprop::data::idx::{parse_images, parse_labels};
use backprop::data::prep::{
    detect_task, Feature, PrepOptions, Preprocessor, ScaleKind, TargetTransform,
};
use backprop::model::{Model, ModelMeta};
use backprop::optim::StateKind;
use backprop::train::LocalReducer;
use backprop::{
    BatchSize, Dataset, Loss, Matrix, Network, OptimizerKind, Schedule, TrainConfig, Trainer,
};

/// The CSV reader and, on what it accepts, the preprocessing fitted on it. The first
/// byte picks the delimiter, the scaling and the target transform.
pub fn csv(data: &[u8]) {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let delimiter = [b',', b';', b'\t'][usize::from(first % 3)];
    let Ok(table) = Table::parse(Path::new("fuzz.csv"), bytes, CsvOptions { delimiter }) else {
        return;
    };
    assert!(table.columns.iter().all(|c| c.len() == table.rows()));
    let target = table.headers.len() - 1;
    let features: Vec<usize> = (0..target).collect();
    let rows: Vec<usize> = (0..table.rows()).collect();
    let scale = [
        ScaleKind::Standard,
        ScaleKind::Minmax,
        ScaleKind::Quantile,
        ScaleKind::None,
    ][usize::from(first / 3 % 4)];
    let target_transform = if first & 0x80 != 0 {
        TargetTransform::Log
    } else {
        TargetTransform::None
    };
    let opts = PrepOptions {
        scale,
        target_transform,
        task: detect_task(&table.columns[target]),
    };
    if let Ok((prep, _)) = Preprocessor::fit(&table, &features, target, &rows, &opts) {
        if let Ok((x, _)) = prep.transform_features(&table, &features, &rows) {
            assert!(
                x.as_slice().iter().all(|v| v.is_finite()),
                "non-finite network input"
            );
        }
        let _ = prep.transform_target(&table, target, &rows);
    }
}

/// The IDX reader (raw and gzipped), as images and as labels.
pub fn idx(data: &[u8]) {
    if let Ok(images) = parse_images(data, Path::new("fuzz-images.idx")) {
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
    }
    let _ = parse_labels(data, Path::new("fuzz-labels.idx"));
}

/// The model loader: a little-endian u32 length, that many bytes of `model.json`,
/// then the bytes of `model.safetensors`.
pub fn model(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (json, weights) = rest.split_at(n.min(rest.len()));
    let Ok(meta) = ModelMeta::from_json(Path::new("model.json"), json) else {
        return;
    };
    let Ok(model) = Model::from_parts(
        meta,
        Path::new("model.json"),
        Path::new("model.safetensors"),
        weights,
    ) else {
        return;
    };
    assert!(model.network.params().iter().all(|v| v.is_finite()));
    // A model that loads must predict, as `backprop predict` does: the preprocessing's
    // scalers on a few values, the network on a few rows, the outputs back in units.
    let prep = &model.meta.preprocessor;
    for f in &prep.features {
        if let Feature::Numeric { median, scaler, .. } = f {
            for x in [*median, 0.0, -1e30, 1e30, f64::NAN] {
                let _ = scaler.apply(x);
            }
        }
    }
    let out = model.network.predict(&rows(&model.network, 3));
    assert_eq!(
        (out.rows(), out.cols()),
        (3, model.network.outputs()),
        "prediction shape"
    );
    for &z in out.as_slice() {
        let _ = prep.target.inverse(f64::from(z));
    }
}

/// The checkpoint loader used by `backprop train --resume`, and on what it accepts,
/// training resumed for one more epoch of two steps (forward, backward, the optimizer
/// update from the loaded moments, the schedule, early stopping's bookkeeping) with an
/// optimizer of the kind the state belongs to.
pub fn checkpoint(data: &[u8]) {
    let Ok(mut c) = Checkpoint::from_bytes(Path::new("state.safetensors"), data) else {
        return;
    };
    let Some(epochs) = c.state.epoch.checked_add(1) else {
        return;
    };
    let optimizer = match c.state.optimizer.kind() {
        StateKind::Sgd => OptimizerKind::Sgd.build(0.0, 1e-4),
        StateKind::Momentum => OptimizerKind::Nesterov.build(0.9, 1e-4),
        StateKind::Adam => OptimizerKind::Adamw.build(0.0, 1e-2),
        StateKind::RmsProp => OptimizerKind::Rmsprop.build(0.0, 0.0),
        StateKind::RmsPropMomentum => OptimizerKind::Rmsprop.build(0.9, 0.0),
    };
    let trainer = Trainer::new(TrainConfig {
        epochs,
        batch_size: BatchSize::Mini(2),
        loss: Loss::Mse,
        optimizer,
        lr: 1e-3,
        schedule: Schedule::Plateau {
            factor: 0.5,
            patience: 1,
            min_lr: 0.0,
        },
        patience: 2,
        ..Default::default()
    })
    .expect("a valid configuration");
    let net = &c.network;
    let y: Vec<f32> = (0..4 * net.outputs())
        .map(|i| (i % 3) as f32 - 1.0)
        .collect();
    let y = Matrix::from_vec(4, net.outputs(), y).expect("4 x outputs values");
    let data = Dataset::new(rows(net, 4), y).expect("rows of the network's widths");
    let (before, stopped) = (c.state.optimizer.step(), c.state.history.stopped_early);
    let result = trainer.resume(
        &mut c.network,
        &data,
        Some(&data),
        &mut c.state,
        &mut [],
        &mut LocalReducer,
    );
    // A finished run stays finished; any other takes updates, and every update counts
    // (the step saturates at u64::MAX, which no run reaches).
    if result.is_ok() && !stopped {
        assert!(
            c.state.optimizer.step() > before || before == u64::MAX,
            "no update was taken"
        );
    }
}

/// `n` rows of inputs for `net`, values in [-1, 1].
fn rows(net: &Network, n: usize) -> Matrix {
    let k = net.inputs();
    let x = (0..n * k)
        .map(|i| ((i * 7) % 5) as f32 / 2.0 - 1.0)
        .collect();
    Matrix::from_vec(n, k, x).expect("n x k values")
}
