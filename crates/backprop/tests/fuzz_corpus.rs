//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the reproducers of
//! crashes the fuzzers found (`fuzz/regressions/<target>-*`) through the same code the
//! `cargo fuzz` targets run: every input must give a value or an error, never a panic.

use std::path::Path;

#[path = "../../../fuzz/harness.rs"]
mod harness;

fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut inputs: Vec<_> = std::fs::read_dir(fuzz.join("corpus").join(target))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    if let Ok(d) = std::fs::read_dir(fuzz.join("regressions")) {
        inputs.extend(d.map(|e| e.unwrap().path()).filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{target}-"))
        }));
    }
    assert!(!inputs.is_empty(), "no corpus for {target}");
    for p in inputs {
        let bytes = std::fs::read(&p).unwrap();
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            panic!("{target} panicked on {}", p.display());
        }
    }
}

#[test]
fn csv_corpus() {
    replay("csv", harness::csv);
}

#[test]
fn idx_corpus() {
    replay("idx", harness::idx);
}

#[test]
fn model_corpus() {
    replay("model", harness::model);
}

#[test]
fn checkpoint_corpus() {
    replay("checkpoint", harness::checkpoint);
}
