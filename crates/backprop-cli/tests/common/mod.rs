//! Helpers shared by the end-to-end tests: run the real binary, find the fixtures, make
//! scratch folders, read JSON.
#![allow(dead_code)] // every test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `backprop` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backprop"))
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// Runs the binary and asserts it succeeded.
pub fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A scratch path unique to this test process and `name`, removed if it exists (not
/// created).
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A JSON file, parsed.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("valid JSON")
}
