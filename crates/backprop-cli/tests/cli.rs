//! End-to-end tests of `backprop train`, `evaluate`, `predict` and `inspect` on small
//! CSV fixtures drawn from the California housing data.

use std::path::Path;

mod common;
use common::{bin, fixture, json, ok, run, tmp};

#[test]
fn default_embedded_run_writes_a_complete_run_folder() {
    let out = tmp("default");
    let o = ok(&[
        "train",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--lr",
        "0.01",
        "--schedule",
        "constant",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("MedHouseVal") && stdout.contains("RMSE ($)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no hidden layer (linear regression)"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("epoch   2/2"),
        "one line per epoch when not a terminal: {stderr}"
    );
    for f in [
        "model.safetensors",
        "model.json",
        "metrics.json",
        "history.csv",
        "loss_curve.svg",
        "settings.toml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["task"], "regress");
    assert_eq!(m["rows"]["train"], 14448);
    assert_eq!(m["rows"]["test"], 4128);
    // Better than predicting the mean (the target's standard deviation is 1.15), and
    // better than the linear baseline even after two epochs.
    let (net, base) = (
        m["test"]["rmse"].as_f64().unwrap(),
        m["baseline"]["test"]["rmse"].as_f64().unwrap(),
    );
    assert!(net < 0.8 && net < base, "{net} vs baseline {base}");
    let h = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(h.lines().count(), 3);
    assert!(h.starts_with("epoch,train_loss,valid_loss,lr,seconds,grad_norm_0"));
    let meta = json(&out.join("model.json"));
    assert_eq!(meta["format"], "backprop-model");
    assert_eq!(meta["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn safetensors_use_pytorch_linear_names_and_layout() {
    let out = tmp("layout");
    ok(&[
        "train",
        "--data",
        fixture("houses.csv").to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--hidden",
        "5,3",
        "--epochs",
        "1",
        "--no-baseline",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    for (name, shape) in [
        ("layers.0.weight", vec![5, 8]),
        ("layers.0.bias", vec![5]),
        ("layers.1.weight", vec![3, 5]),
        ("layers.2.weight", vec![1, 3]),
        ("layers.2.bias", vec![1]),
    ] {
        assert_eq!(header[name]["dtype"], "F32", "{name}");
        assert_eq!(header[name]["shape"], serde_json::json!(shape), "{name}");
    }
}

#[test]
fn train_predict_evaluate_inspect_round_trip() {
    let out = tmp("roundtrip");
    let data = fixture("houses.csv");
    let data = data.to_str().unwrap();
    let metrics = tmp("roundtrip-metrics.json");
    ok(&[
        "train",
        "--data",
        data,
        "--target",
        "MedHouseVal",
        "--hidden",
        "8",
        "--epochs",
        "5",
        "--scale",
        "standard",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--metrics-json",
        metrics.to_str().unwrap(),
    ]);
    let m = json(&metrics);
    for k in [
        "task",
        "test",
        "valid",
        "baseline",
        "epochs_run",
        "train_seconds",
        "rows",
    ] {
        assert!(!m[k].is_null(), "metrics-json lacks {k}");
    }
    assert_eq!(
        m["rows"]["train"].as_u64().unwrap()
            + m["rows"]["valid"].as_u64().unwrap()
            + m["rows"]["test"].as_u64().unwrap(),
        300
    );

    let pred = ok(&["predict", "--model", out.to_str().unwrap(), "--data", data]);
    let text = String::from_utf8(pred.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with(",MedHouseVal_predicted"));
    let preds: Vec<f64> = lines
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(preds.len(), 300);
    assert!(preds.iter().all(|p| p.is_finite()));

    // Predicting twice from the saved model gives byte-identical output.
    let again = ok(&["predict", "--model", out.to_str().unwrap(), "--data", data]);
    assert_eq!(text.as_bytes(), again.stdout.as_slice());

    // Predict to a file, from standard input.
    let file = out.join("pred.csv");
    let status = bin()
        .args([
            "predict",
            "--model",
            out.to_str().unwrap(),
            "--data",
            "-",
            "--out",
            file.to_str().unwrap(),
        ])
        .stdin(std::fs::File::open(fixture("houses.csv")).unwrap())
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let ev = ok(&[
        "evaluate",
        "--model",
        out.to_str().unwrap(),
        "--data",
        data,
        "--json",
    ]);
    let ev: serde_json::Value = serde_json::from_slice(&ev.stdout).unwrap();
    assert_eq!(ev["rows"], 300);
    // The evaluation's RMSE agrees with the predictions written by `predict`.
    let actual: Vec<f64> = std::fs::read_to_string(fixture("houses.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let rmse = (preds
        .iter()
        .zip(&actual)
        .map(|(p, a)| (p - a).powi(2))
        .sum::<f64>()
        / 300.0)
        .sqrt();
    assert!(
        (ev["test"]["rmse"].as_f64().unwrap() - rmse).abs() < 1e-4,
        "{} vs {rmse}",
        ev["test"]["rmse"]
    );

    let ins = ok(&["inspect", "--model", out.to_str().unwrap()]);
    let s = String::from_utf8_lossy(&ins.stdout);
    assert!(
        s.contains("layers.0: 8 -> 8 relu") && s.contains("MedInc") && s.contains("standard (mean"),
        "{s}"
    );
}

#[test]
fn mixed_text_and_missing_cells_are_encoded_and_reported() {
    let out = tmp("mixed");
    let o = ok(&[
        "train",
        "--data",
        fixture("houses_mixed.csv").to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing cell(s) in `HouseAge`"), "{err}");
    assert!(err.contains("missing cell(s) in `region`"), "{err}");
    let meta = json(&out.join("model.json"));
    let region = &meta["preprocessor"]["features"][0];
    assert_eq!(region["kind"], "categorical");
    assert_eq!(
        region["categories"],
        serde_json::json!(["coast", "missing", "north", "south"])
    );
    assert_eq!(meta["layers"][0]["inputs"], 4 + 6);

    // An unseen category at prediction time is all zeros and counted in a warning.
    let new = out.join("new.csv");
    std::fs::write(&new, "region,MedInc,HouseAge,AveRooms,AveBedrms,Population,AveOccup\ndesert,3.1,20,5,1,900,3\nnorth,3.1,20,5,1,900,3\n").unwrap();
    let p = ok(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        "--data",
        new.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&p.stderr)
        .contains("1 row(s) have a category of `region` not seen in training"));
}

#[test]
fn features_ignore_and_config_file() {
    let out = tmp("config");
    std::fs::create_dir_all(&out).unwrap();
    let cfg = out.join("train.toml");
    std::fs::write(&cfg, "target = \"MedHouseVal\"\nhidden = \"4\"\nepochs = 2\nlr = 0.01\noptimizer = \"sgd\"\nbatch-size = \"full\"\nignore = [\"Population\"]\n").unwrap();
    let run_dir = out.join("run");
    ok(&[
        "train",
        "--data",
        fixture("houses.csv").to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let meta = json(&run_dir.join("model.json"));
    assert_eq!(meta["training"]["epochs"], 3, "the flag wins over the file");
    assert_eq!(meta["training"]["batch_size"], "full");
    assert_eq!(meta["training"]["optimizer"]["kind"], "sgd");
    let names: Vec<&str> = meta["preprocessor"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"Population") && names.len() == 7,
        "{names:?}"
    );

    let run2 = out.join("run2");
    ok(&[
        "train",
        "--data",
        fixture("houses.csv").to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--features",
        "MedInc,Latitude",
        "--hidden",
        "",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        run2.to_str().unwrap(),
    ]);
    let meta = json(&run2.join("model.json"));
    assert_eq!(
        meta["layers"].as_array().unwrap().len(),
        1,
        "no hidden layer: linear regression"
    );
    assert_eq!(meta["layers"][0]["inputs"], 2);
}

#[test]
fn log_target_and_separate_test_file() {
    let out = tmp("logtest");
    let o = ok(&[
        "train",
        "--data",
        fixture("houses.csv").to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--target-transform",
        "log",
        "--test",
        fixture("houses.csv").to_str().unwrap(),
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["rows"]["test"], 300);
    assert_eq!(
        m["rows"]["train"].as_u64().unwrap() + m["rows"]["valid"].as_u64().unwrap(),
        300
    );
}

#[test]
fn default_runs_never_overwrite_earlier_runs() {
    let cwd = tmp("numbered");
    std::fs::create_dir_all(&cwd).unwrap();
    for _ in 0..2 {
        let o = bin()
            .current_dir(&cwd)
            .args([
                "train",
                "--data",
                fixture("houses.csv").to_str().unwrap(),
                "--target",
                "MedHouseVal",
                "--hidden",
                "2",
                "--epochs",
                "1",
                "--quiet",
                "--no-baseline",
            ])
            .output()
            .unwrap();
        assert!(o.status.success());
    }
    assert!(cwd.join("runs/houses/model.json").is_file());
    assert!(cwd.join("runs/houses-2/model.json").is_file());
}

/// Compares with a committed snapshot; `UPDATE_SNAPSHOTS=1` rewrites it.
/// `--valid-fraction 0` trains without validation (the trainer is never handed an
/// empty validation set, whose loss would be NaN) and says what that turns off.
#[test]
fn no_validation_rows_trains_without_validation_and_says_so() {
    let out = tmp("no-valid");
    let houses = fixture("houses.csv");
    let o = ok(&[
        "train",
        "--data",
        houses.to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--valid-fraction",
        "0",
        "--patience",
        "3",
        "--epochs",
        "4",
        "--hidden",
        "8",
        "--no-baseline",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("validating on 0"), "{err}");
    assert!(
        err.contains("warning: --patience 3 needs validation rows and there are none"),
        "{err}"
    );
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["rows"]["valid"], 0);
    assert!(m["valid"].is_null(), "{m}");
    assert_eq!(m["epochs_run"], 4);
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{history}");
    for r in rows {
        // epoch,train_loss,valid_loss,...: the validation loss is empty, not NaN.
        let f: Vec<&str> = r.split(',').collect();
        assert!(f[1].parse::<f64>().unwrap().is_finite(), "{r}");
        assert_eq!(f[2], "", "{r}");
    }
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "snapshot {name} differs; rerun with UPDATE_SNAPSHOTS=1 if the change is intended"
    );
}

#[test]
fn help_snapshots() {
    for (name, args) in [
        ("help.txt", vec!["--help"]),
        ("train_help.txt", vec!["train", "--help"]),
        ("predict_help.txt", vec!["predict", "--help"]),
    ] {
        let o = ok(&args);
        snapshot(name, &String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn error_snapshots() {
    let data = fixture("houses.csv");
    let cases: [(&str, Vec<&str>); 3] = [
        (
            "err_target_typo.txt",
            vec![
                "train",
                "--data",
                data.to_str().unwrap(),
                "--target",
                "MedHouseValue",
            ],
        ),
        (
            "err_no_target.txt",
            vec!["train", "--data", data.to_str().unwrap()],
        ),
        ("err_bad_hidden.txt", vec!["train", "--hidden", "64,x"]),
    ];
    for (name, args) in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr).replace(env!("CARGO_MANIFEST_DIR"), "<crate>");
        // A value clap's parser refuses gets clap's usage error (the message, then a
        // pointer to --help), like every other flag value; errors in the data are one line.
        let lines = if name == "err_bad_hidden.txt" { 3 } else { 1 };
        assert_eq!(err.lines().count(), lines, "{lines}-line error: {err}");
        snapshot(name, &err);
    }
}

/// The README's default command reaches the RMSE it states. Slow (tens of seconds):
/// run with `cargo test --release -p backprop-cli -- --ignored`.
#[test]
#[ignore]
fn readme_default_run_reaches_stated_rmse() {
    let out = tmp("readme");
    ok(&["train", "--quiet", "--out", out.to_str().unwrap()]);
    let m = json(&out.join("metrics.json"));
    let rmse = m["test"]["rmse"].as_f64().unwrap();
    assert!(rmse <= 0.50, "test RMSE {rmse} above 0.50");
    assert!(m["baseline"]["test"]["rmse"].as_f64().unwrap() > rmse);
}

/// A flag given twice takes the last value (as in ripgrep and curl), so a script can
/// append overrides to a command line; list flags add up.
#[test]
fn a_flag_given_twice_takes_the_last_value() {
    let out = tmp("twice");
    let run_dir = out.join("run");
    ok(&[
        "train",
        "--data",
        fixture("houses.csv").to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--epochs",
        "5",
        "--hidden",
        "8,8",
        "--batch-size",
        "full",
        "--no-baseline",
        "--quiet",
        "--out",
        "/nonexistent/never-used",
        "--epochs",
        "2",
        "--hidden",
        "4",
        "--batch-size",
        "32",
        "--ignore",
        "Population",
        "--ignore",
        "AveOccup",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let meta = json(&run_dir.join("model.json"));
    assert_eq!(meta["training"]["epochs"], 2);
    assert_eq!(
        meta["training"]["batch_size"]["mini"], 32,
        "{}",
        meta["training"]
    );
    assert_eq!(json(&run_dir.join("metrics.json"))["architecture"], "6-4-1");
}

/// At learning rate 1 the network improves for an epoch, then falls to predicting the
/// mean (validation loss 0.31 -> 1.02): the guard must end the run with the first
/// epoch's weights, say so, and record it; `history.csv` still shows every epoch.
#[test]
fn a_run_that_diverges_keeps_its_best_epoch() {
    let out = tmp("diverged");
    let o = out.to_str().unwrap();
    let common = [
        "train",
        "--epochs",
        "8",
        "--hidden",
        "32,32",
        "--no-baseline",
        "--quiet",
        // One network: `--scale select` could keep a second one that did not diverge.
        "--scale",
        "quantile",
    ];
    let run = ok(&[&common[..], &["--lr", "1", "--out", o]].concat());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("training diverged"), "{stdout}");
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["diverged"], true);
    let best = m["best_epoch"].as_u64().unwrap() as usize;
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let valid: Vec<f64> = history
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(valid.len(), 8);
    let min = valid.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(valid[best - 1], min);
    assert!(valid[7] > 2.0 * min);
    // The model is the best epoch's: its test RMSE is far below the mean's (~1.15).
    assert!(m["test"]["rmse"].as_f64().unwrap() < 0.8, "{m}");

    // A run that converges is left as it ends.
    let calm = tmp("calm");
    let c = calm.to_str().unwrap();
    let run = ok(&[&common[..], &["--lr", "0.01", "--out", c]].concat());
    assert!(!String::from_utf8_lossy(&run.stdout).contains("diverged"));
    let m = json(&calm.join("metrics.json"));
    assert_eq!(m["diverged"], false);
    assert_eq!(m["best_epoch"], serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&calm);
}

/// A run folder's `settings.toml` holds what the run was given and trains the same
/// model again through `--config`, from another folder; defaults stay unset in it.
#[test]
fn settings_toml_trains_the_same_model_again() {
    let out = tmp("settings_toml");
    let data = fixture("houses.csv");
    ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--lr",
        "0.01",
        "--weight-decay",
        "0.3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(out.join("settings.toml")).unwrap();
    assert!(text.contains("lr = 0.01\n"), "{text}");
    assert!(text.contains("weight-decay = 0.3\n"), "{text}");
    assert!(!text.contains("seed") && !text.contains("out ="), "{text}");
    let again = tmp("settings_toml_again");
    let o = bin()
        .current_dir(std::env::temp_dir())
        .args(["train", "--config"])
        .arg(out.join("settings.toml"))
        .args(["--quiet", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        std::fs::read(again.join("model.safetensors")).unwrap()
    );
}

/// A text column of 300 categories (a shop id: 120 shops with 20 rows each, 180 with
/// one) gets an input for each of its 100 most frequent categories in the training rows
/// and one shared by the rest, and says so; `predict` puts a category never seen into
/// that input, without a warning.
#[test]
fn a_text_column_with_many_categories_is_encoded_compactly() {
    let dir = tmp("many-categories");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("shops.csv");
    let mut csv = String::from("x,shop,y\n");
    for k in 0..2580 {
        let shop = if k < 2400 { k % 120 } else { k - 2280 };
        let x = (k % 13) as f64;
        csv.push_str(&format!(
            "{x},s{shop:03},{}\n",
            0.37 * x + 1.13 * (shop % 7) as f64
        ));
    }
    std::fs::write(&data, &csv).unwrap();
    let run_dir = dir.join("run");
    let o = ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "y",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("note: `shop` has more than 100 categories in the training rows: the 100 most frequent (at least 5 rows each) get an input, the rest share one `(other)` input"),
        "{err}"
    );
    assert_eq!(
        json(&run_dir.join("metrics.json"))["architecture"],
        "102-8-1"
    );
    let o = ok(&["inspect", "--model", run_dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("one input for every other category"));
    let rows = dir.join("rows.csv");
    std::fs::write(&rows, "x,shop\n3,never-seen\n3,s001\n").unwrap();
    let o = ok(&[
        "predict",
        "--model",
        run_dir.to_str().unwrap(),
        "--data",
        rows.to_str().unwrap(),
    ]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("warning"));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
