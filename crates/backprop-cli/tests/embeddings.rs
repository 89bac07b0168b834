//! Periodic embeddings from the command line: `--layers "periodic K D, ..."` (and the
//! TOML `layers` key) trains on a table with numeric and text columns, saves, shows in
//! `inspect`, and the reloaded model predicts what the trained one did, with the same
//! model bits on 1 and 2 threads; a bad `periodic` item exits 2 naming it.

mod common;
use common::{fixture, json, ok, run, tmp};

const STACK: &str = "periodic 8 6 sigma 0.2, dense 16 relu, dense 1";

/// Trains [`STACK`] on the mixed fixture (6 numeric columns and a text one) with
/// `threads`; returns the run folder and its metrics.
fn train(name: &str, threads: &str, extra: &[&str]) -> (std::path::PathBuf, serde_json::Value) {
    let out = tmp(name);
    let metrics = out.with_extension("json");
    let data = fixture("houses_mixed.csv");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--test",
        data.to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--epochs",
        "8",
        "--threads",
        threads,
        "--no-baseline",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--metrics-json",
        metrics.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    let m = json(&metrics);
    let _ = std::fs::remove_file(&metrics);
    (out, m)
}

#[test]
fn a_periodic_stack_trains_saves_and_predicts_the_same_after_reload() {
    let (out, m) = train("plr-1", "1", &["--layers", STACK]);
    let model = out.to_str().unwrap();
    let meta = std::fs::read_to_string(out.join("model.json")).unwrap();
    assert!(meta.contains(r#""kind": "periodic""#), "{meta}");
    // The mixed fixture has 6 numeric columns and a text column of 4 regions.
    let inputs = json(&out.join("model.json"))["layers"][0]["features"]
        .as_u64()
        .unwrap();
    assert_eq!(inputs, 10);
    let inspect = ok(&["inspect", "--model", model]);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.contains("periodic 10 -> 60 (10 features x 8 frequencies -> 6 each, relu, sigma 0.2)"),
        "{text}"
    );
    // The reloaded model's test RMSE is the one the training run measured in memory.
    let data = fixture("houses_mixed.csv");
    let ev = ok(&[
        "evaluate",
        "--model",
        model,
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    let ev: serde_json::Value = serde_json::from_slice(&ev.stdout).unwrap();
    let (trained, reloaded) = (
        m["test"]["rmse"].as_f64().unwrap(),
        ev["test"]["rmse"].as_f64().unwrap(),
    );
    assert_eq!(trained, reloaded, "test RMSE in training vs after reload");
    assert!(trained.is_finite() && trained < 1.5, "{trained}");
    // The same model bits on 2 threads, and from the TOML `layers` key.
    let (two, _) = train("plr-2", "2", &["--layers", STACK]);
    let toml = tmp("plr-toml.toml");
    std::fs::write(&toml, format!("layers = \"{STACK}\"\n")).unwrap();
    let (from_toml, _) = train("plr-3", "1", &["--config", toml.to_str().unwrap()]);
    for other in [&two, &from_toml] {
        for file in ["model.safetensors", "model.json"] {
            assert!(
                std::fs::read(out.join(file)).unwrap() == std::fs::read(other.join(file)).unwrap(),
                "{file} differs from {}",
                other.display()
            );
        }
    }
    for d in [out, two, from_toml] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(toml);
}

#[test]
fn a_bad_periodic_item_exits_2_naming_it() {
    let data = fixture("houses_mixed.csv");
    for (layers, says) in [
        (
            "periodic 8, dense 1",
            "`periodic 8`: the embedding width is missing",
        ),
        (
            "periodic x 4, dense 1",
            "`periodic x 4`: the number of frequencies `x`",
        ),
        (
            "periodic 8 4 sigma 0, dense 1",
            "item 1 `periodic 8 4 sigma 0`",
        ),
        ("periodic 8 4 sigma, dense 1", "sigma is missing"),
        ("periodic 8 4 wide, dense 1", "unexpected `wide`"),
        ("periodic 0 4, dense 1", "item 1 `periodic 0 4`"),
        ("periodic 8 4, dense 3", "dense 1"),
    ] {
        let out = run(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--target",
            "MedHouseVal",
            "--layers",
            layers,
            "--epochs",
            "1",
            "--no-baseline",
            "--quiet",
            "--out",
            tmp("plr-bad").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{layers}: {err}");
        assert!(err.contains(says), "{layers}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // On images it asks to be put on table rows.
    let out = run(&[
        "train",
        "--example",
        "digits",
        "--layers",
        "input 1x8x8, conv 4 3, periodic 4 4, dense 10",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        tmp("plr-bad-img").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("item 2 `periodic 4 4`") && err.contains("images"),
        "{err}"
    );
}
