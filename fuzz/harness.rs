#![allow(dead_code)] // each target uses one of these
//! What each fuzz target does with its input, shared by the targets in `fuzz_targets/`
//! and by the library's test that replays the committed corpus
//! (`crates/backprop/tests/fuzz_corpus.rs`). Each function must return, never panic,
//! whatever the bytes.

use std::path::Path;

use backprop::checkpoint::Checkpoint;
use backprop::data::csv::{CsvOptions, Table};
use backprop::data::idx::{parse_images, parse_labels};
use backprop::data::prep::{detect_task, PrepOptions, Preprocessor, ScaleKind, TargetTransform};
use backprop::model::{Model, ModelMeta};

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
    if let Ok(model) = Model::from_parts(
        meta,
        Path::new("model.json"),
        Path::new("model.safetensors"),
        weights,
    ) {
        assert!(model.network.params().iter().all(|v| v.is_finite()));
    }
}

/// The checkpoint loader used by `backprop train --resume`.
pub fn checkpoint(data: &[u8]) {
    let _ = Checkpoint::from_bytes(Path::new("state.safetensors"), data);
}
