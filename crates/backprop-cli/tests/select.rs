//! `--scale select` and `--keep best` (issue 18): the default run compares its models on
//! the validation rows, keeps one, and the run folder holds that model with the
//! preprocessing it was trained with.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{json, ok, tmp};

/// A table of `rows` rows: `y = 3 a - 2 b + noise * e` with `a` log-normal when
/// `heavy` (a heavy-tailed column, which the quantile transform bends) or normal, `b`
/// uniform and a text
/// column that does not matter; a fixed generator, so the table is the same every run.
fn table(path: &Path, rows: usize, heavy: bool, noise: f64) {
    let mut s = String::from("a,b,colour,y\n");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..rows {
        let (u1, u2) = (next().max(1e-12), next());
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let a = if heavy { normal.exp() } else { normal };
        let b = next() * 4.0 - 2.0;
        let e = next() - 0.5;
        let colour = ["red", "green", "blue"][(next() * 3.0) as usize % 3];
        let y = 3.0 * a - 2.0 * b + noise * e;
        writeln!(s, "{a:.6},{b:.6},{colour},{y:.6}").unwrap();
    }
    std::fs::write(path, s).unwrap();
}

fn train(dir: &Path, data: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = dir.join("run");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "y",
        "--epochs",
        "15",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = ok(&args);
    (
        json(&out.join("metrics.json")),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn the_default_keeps_the_better_scaling_and_says_why() {
    let dir = tmp("select-scale");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("linear.csv");
    table(&data, 400, true, 0.2);
    let (m, stdout) = train(&dir, &data, &["--keep", "network"]);
    let c = &m["choice"]["scale"];
    let (q, s) = (
        c["quantile_valid_loss"].as_f64().unwrap(),
        c["standard_valid_loss"].as_f64().unwrap(),
    );
    // A linear effect of a heavy-tailed column: standard scaling keeps it linear.
    assert!(
        s < q,
        "standard {s} should validate better than quantile {q}"
    );
    assert_eq!(c["kept"], "standard");
    assert!(
        stdout.contains("numeric columns scaled by standard"),
        "{stdout}"
    );
    // The folder's model and preprocessing belong together: scored again by
    // `evaluate` on the validation metric's rows they give metrics.json's test RMSE.
    let model: serde_json::Value = json(&dir.join("run/model.json"));
    assert!(
        model.to_string().contains("\"standard\""),
        "the kept preprocessing scales by standard: {model}"
    );
    assert_eq!(m["architecture"], m["network"]["architecture"]);
    assert!(
        m["choice"]["keep"].is_null(),
        "--keep network compares nothing"
    );
    // A fixed scaling compares nothing and trains once.
    let (fixed, stdout) = train(&dir.join("q"), &data, &["--scale", "quantile"]);
    assert!(fixed["choice"]["scale"].is_null(), "{}", fixed["choice"]);
    assert!(!stdout.contains("scaled by"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_linear_truth_keeps_the_model_without_hidden_layers_unless_told() {
    let dir = tmp("select-keep");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("exact.csv");
    // An exactly linear target: linear regression fits it to rounding, a decayed network
    // with ReLU units only nearly (measured: validation MSE 9e-5 against 9e-4).
    table(&data, 400, false, 0.0);
    let (m, stdout) = train(&dir, &data, &["--epochs", "30"]);
    let k = &m["choice"]["keep"];
    assert_eq!(k["kept"], "linear", "{k}");
    assert!(k["linear_valid_loss"].as_f64().unwrap() < k["network_valid_loss"].as_f64().unwrap());
    // Two numbers and three colours, one output.
    assert_eq!(m["architecture"], "5-1");
    assert_eq!(m["network"]["architecture"], "5-256-256-128-1");
    assert_eq!(m["test"], m["baseline"]["test"]);
    assert!(
        stdout.contains("kept: the network without hidden layers"),
        "{stdout}"
    );
    // The saved model is the linear one: `predict` reads it and `inspect` shows it.
    let run = dir.join("run");
    let o = ok(&["inspect", "--model", run.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("5-1") || text.contains("5 -> 1"), "{text}");
    let preds = dir.join("preds.csv");
    ok(&[
        "predict",
        "--model",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&preds).unwrap().lines().count(),
        401
    );
    // An explicit network is kept whatever the baseline scores, and says so.
    let (m, _) = train(&dir.join("h"), &data, &["--hidden", "16"]);
    assert!(m["choice"]["keep"].is_null(), "{}", m["choice"]);
    assert_eq!(m["architecture"], m["network"]["architecture"]);
    let _ = std::fs::remove_dir_all(&dir);
}
