//! End-to-end classification: a small CSV (Fisher's iris, numeric and text targets),
//! a small MNIST subset in IDX format (fixtures/mnist_small, built by its make.py), the
//! embedded 8x8 digits, and the errors of corrupted IDX folders.

use std::path::{Path, PathBuf};

mod common;
use common::{fixture, json, ok, run, tmp};

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should fail with exit code 2"
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Checks the structure of classification metrics against each other.
fn check_metrics(m: &serde_json::Value, classes: &[&str], rows: u64) {
    assert_eq!(m["rows"], rows);
    let per_class = m["per_class"].as_array().unwrap();
    let names: Vec<&str> = per_class
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(names, classes);
    let confusion = m["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), classes.len());
    let mut total = 0;
    let mut diagonal = 0;
    for (i, row) in confusion.iter().enumerate() {
        let row: Vec<u64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(row.len(), classes.len());
        assert_eq!(
            row.iter().sum::<u64>(),
            per_class[i]["support"].as_u64().unwrap(),
            "support of class {i}"
        );
        total += row.iter().sum::<u64>();
        diagonal += row[i];
    }
    assert_eq!(total, rows);
    assert!((m["accuracy"].as_f64().unwrap() - diagonal as f64 / rows as f64).abs() < 1e-12);
    let ll = m["log_loss"].as_f64().unwrap();
    assert!(ll.is_finite() && ll > 0.0, "log-loss {ll}");
    for avg in ["macro_avg", "weighted_avg"] {
        for k in ["precision", "recall", "f1"] {
            let v = m[avg][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{avg}.{k} = {v}");
        }
    }
}

/// Parses CSV text into rows of fields (the fixtures have no quoting).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

const IRIS_FLAGS: [&str; 12] = [
    "--hidden",
    "16",
    "--batch-size",
    "16",
    "--epochs",
    "100",
    "--lr",
    "0.01",
    "--scale",
    "standard",
    "--threads",
    "1",
];

#[test]
fn iris_with_integer_classes_is_detected_and_fully_reported() {
    let out = tmp("iris");
    let data = fixture("iris.csv");
    let mut args = vec![
        "train",
        "--data",
        s(&data),
        "--target",
        "target",
        "--out",
        s(&out),
    ];
    args.extend(IRIS_FLAGS);
    let o = ok(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("so this is classification"),
        "detection is announced: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    for want in [
        "test set (target): accuracy",
        "precision",
        "macro avg",
        "confusion matrix",
        "softmax regression",
    ] {
        assert!(stdout.contains(want), "summary lacks {want:?}:\n{stdout}");
    }

    let m = json(&out.join("metrics.json"));
    assert_eq!(m["task"], "classify");
    assert_eq!(m["rows"]["test"], 30);
    check_metrics(&m["test"], &["0", "1", "2"], 30);
    check_metrics(&m["valid"], &["0", "1", "2"], 15);
    check_metrics(&m["baseline"]["test"], &["0", "1", "2"], 30);
    let acc = m["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "iris test accuracy {acc}");

    // predict: the class and one probability per class, summing to 1.
    let pred = out.join("pred.csv");
    ok(&[
        "predict",
        "--model",
        s(&out),
        "--data",
        s(&data),
        "--out",
        s(&pred),
    ]);
    let rows = csv_rows(&std::fs::read_to_string(&pred).unwrap());
    let header = &rows[0];
    assert_eq!(
        &header[header.len() - 4..],
        &["target_predicted", "p_0", "p_1", "p_2"]
    );
    assert_eq!(rows.len(), 151);
    let mut correct = 0;
    for r in &rows[1..] {
        let p: Vec<f64> = r[r.len() - 3..]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{r:?}");
        let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
        assert_eq!(r[r.len() - 4], best.to_string());
        correct += usize::from(r[4] == r[r.len() - 4]);
    }

    // evaluate on all 150 rows agrees with the predictions.
    let o = ok(&["evaluate", "--model", s(&out), "--data", s(&data), "--json"]);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    check_metrics(&e["test"], &["0", "1", "2"], 150);
    assert!((e["test"]["accuracy"].as_f64().unwrap() - correct as f64 / 150.0).abs() < 1e-12);
    let o = ok(&["evaluate", "--model", s(&out), "--data", s(&data)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("({correct} of 150 rows)")) && text.contains("confusion matrix"),
        "{text}"
    );
}

#[test]
fn text_classes_keep_their_names() {
    let out = tmp("species");
    let csv = out.with_extension("csv");
    let names = ["setosa", "versicolor", "virginica"];
    let text = std::fs::read_to_string(fixture("iris.csv")).unwrap();
    let mut lines = text.lines();
    let mut renamed = lines.next().unwrap().replace("target", "species") + "\n";
    for l in lines {
        let (x, t) = l.rsplit_once(',').unwrap();
        renamed.push_str(&format!("{x},{}\n", names[t.parse::<usize>().unwrap()]));
    }
    std::fs::write(&csv, renamed).unwrap();
    let mut args = vec![
        "train",
        "--data",
        s(&csv),
        "--target",
        "species",
        "--out",
        s(&out),
        "--no-baseline",
    ];
    args.extend(IRIS_FLAGS);
    let o = ok(&args);
    assert!(String::from_utf8_lossy(&o.stderr).contains("so this is classification"));
    let m = json(&out.join("metrics.json"));
    check_metrics(&m["test"], &names, 30);
    let o = ok(&["predict", "--model", s(&out), "--data", s(&csv)]);
    let rows = csv_rows(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        &rows[0][5..],
        &[
            "species_predicted",
            "p_setosa",
            "p_versicolor",
            "p_virginica"
        ]
    );
    assert!(names.contains(&rows[1][5].as_str()), "{:?}", rows[1]);
    // --task regress refuses a text target.
    let err = fails(&[
        "train",
        "--data",
        s(&csv),
        "--target",
        "species",
        "--task",
        "regress",
        "--out",
        s(&tmp("x")),
    ]);
    assert!(err.contains("holds text"), "{err}");
}

/// Labels of an IDX label file (raw, not gzipped).
fn idx_labels(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()[8..].to_vec()
}

#[test]
fn mnist_subset_trains_evaluates_and_predicts() {
    let dir = fixture("mnist_small");
    let out = tmp("mnist");
    let o = ok(&[
        "train",
        "--data",
        s(&dir),
        "--epochs",
        "10",
        "--hidden",
        "32",
        "--lr",
        "0.005",
        "--threads",
        "1",
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("784-32-10 network"), "{stderr}");
    assert!(
        stderr.contains("adam lr 0.005 batch 128 for 10 epochs"),
        "image-folder settings fill the rest: {stderr}"
    );
    let m = json(&out.join("metrics.json"));
    assert_eq!(
        m["rows"],
        serde_json::json!({"train": 300, "valid": 0, "test": 100})
    );
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let digits: Vec<&str> = digits.iter().map(String::as_str).collect();
    check_metrics(&m["test"], &digits, 100);
    let acc = m["test"]["accuracy"].as_f64().unwrap();
    // 300 training images: far from MNIST's 98%, far above chance (10%).
    assert!(acc >= 0.6, "accuracy {acc} on the MNIST subset");
    let meta = json(&out.join("model.json"));
    let features = meta["preprocessor"]["features"].as_array().unwrap();
    assert_eq!(features.len(), 784);
    assert_eq!(features[28 * 3 + 5]["name"], "pixel_3_5");
    assert_eq!(
        features[0]["scaler"],
        serde_json::json!({"kind": "minmax", "min": 0.0, "range": 255.0})
    );

    // evaluate on the folder reproduces the run's test metrics exactly.
    let o = ok(&["evaluate", "--model", s(&out), "--data", s(&dir), "--json"]);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["test"], m["test"]);

    // predict on the test image file: one row per image; its classes score the same.
    let images = dir.join("t10k-images-idx3-ubyte.gz");
    let o = ok(&["predict", "--model", s(&out), "--data", s(&images)]);
    let rows = csv_rows(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(rows[0][..3], ["image", "digit_predicted", "p_0"]);
    assert_eq!(rows.len(), 101);
    let labels = idx_labels(&dir.join("t10k-labels.idx1-ubyte"));
    let correct = rows[1..]
        .iter()
        .zip(&labels)
        .filter(|(r, &l)| r[1] == l.to_string())
        .count();
    assert!((correct as f64 / 100.0 - acc).abs() < 1e-12);

    // A model trained on 28x28 images refuses the 8x8 digits, and vice versa.
    let err = fails(&[
        "evaluate",
        "--model",
        s(&out),
        "--data",
        s(&fixture("iris.csv")),
    ]);
    assert!(err.contains("without column(s) pixel_0_0"), "{err}");
}

#[test]
fn embedded_digits_example() {
    let out = tmp("digits");
    let o = ok(&[
        "train",
        "--example",
        "digits",
        "--epochs",
        "3",
        "--threads",
        "1",
        "--no-baseline",
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("64-128-10 network"), "{stderr}");
    assert!(
        stderr.contains("on 1258 rows, validating on 180, testing on 359"),
        "{stderr}"
    );
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["target"], "digit");
    assert_eq!(m["test"]["per_class"].as_array().unwrap().len(), 10);
    // An 8x8 model cannot read 28x28 images.
    let err = fails(&[
        "evaluate",
        "--model",
        s(&out),
        "--data",
        s(&fixture("mnist_small")),
    ]);
    assert!(
        err.contains("holds 28x28 images, but the model was trained on 64 input feature(s)"),
        "{err}"
    );
}

#[test]
fn example_and_image_folder_flag_errors() {
    let dir = fixture("mnist_small");
    let err = fails(&["train", "--example", "mnist", "--data", s(&dir)]);
    assert!(
        err.contains("--example mnist reads data/mnist; leave out --data"),
        "{err}"
    );
    let err = fails(&["train", "--data", s(&dir), "--target", "label"]);
    assert!(
        err.contains("--target does not apply to an image folder"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--example",
        "digits",
        "--data",
        s(&fixture("iris.csv")),
    ]);
    assert!(err.contains("leave out --data"), "{err}");
}

/// Copies the subset into a fresh folder and applies `damage` to it.
fn damaged(name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let d = tmp(name);
    std::fs::create_dir_all(&d).unwrap();
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels.idx1-ubyte",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels.idx1-ubyte",
    ] {
        std::fs::copy(fixture("mnist_small").join(f), d.join(f)).unwrap();
    }
    damage(&d);
    d
}

#[test]
fn corrupted_idx_folders_are_rejected_with_the_file_named() {
    let train = |d: &Path| {
        fails(&[
            "train",
            "--data",
            s(d),
            "--epochs",
            "1",
            "--out",
            s(&d.join("run")),
        ])
    };

    let d = damaged("truncated", |d| {
        let p = d.join("train-labels.idx1-ubyte");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 10]).unwrap();
    });
    let err = train(&d);
    assert!(
        err.contains("train-labels.idx1-ubyte: the header declares 300 labels"),
        "{err}"
    );
    assert!(err.contains("10 bytes are missing"), "{err}");

    let d = damaged("magic", |d| {
        let p = d.join("t10k-labels.idx1-ubyte");
        let mut b = std::fs::read(&p).unwrap();
        b[3] = 3;
        std::fs::write(&p, b).unwrap();
    });
    let err = train(&d);
    assert!(
        err.contains("t10k-labels.idx1-ubyte: magic number 0x00000803"),
        "{err}"
    );

    let d = damaged("count", |d| {
        let p = d.join("t10k-labels.idx1-ubyte");
        let mut b = std::fs::read(&p).unwrap();
        b[7] = 99;
        b.pop();
        std::fs::write(&p, b).unwrap();
    });
    let err = train(&d);
    assert!(err.contains("99 labels, but"), "{err}");
    assert!(err.contains("has 100 images"), "{err}");

    let d = damaged("label", |d| {
        let p = d.join("train-labels.idx1-ubyte");
        let mut b = std::fs::read(&p).unwrap();
        b[8 + 7] = 42;
        std::fs::write(&p, b).unwrap();
    });
    assert!(train(&d).contains("label 42 at position 7 (largest label: 42)"));

    let d = damaged("gzip", |d| {
        let p = d.join("train-images-idx3-ubyte.gz");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    });
    assert!(train(&d)
        .contains("train-images-idx3-ubyte.gz: the file starts like gzip but does not decompress"));

    let d = damaged("missing", |d| {
        std::fs::remove_file(d.join("t10k-images-idx3-ubyte.gz")).unwrap()
    });
    assert!(train(&d).contains("no t10k-images-idx3-ubyte[.gz]"));
}

/// `--class-weight balanced` on a table with 6% positives: without it the network
/// predicts the majority class for every test row (recall of `yes` 0, as measured);
/// with it every class weighs the same in the cost and most positives are found. The
/// majority class's accuracy is printed beside the network's either way.
#[test]
fn balanced_class_weights_find_the_rare_class() {
    let dir = tmp("class-weight");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("imbalanced.csv");
    let mut text = String::from("x1,x2,buy\n");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut normal = || {
        let mut u = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64).max(1e-12)
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    };
    for _ in 0..1000 {
        let (x1, x2, e) = (normal(), normal(), normal());
        let buy = if x1 + 0.5 * x2 + 0.8 * e > 2.0 {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!("{x1:.5},{x2:.5},{buy}\n"));
    }
    std::fs::write(&data, text).unwrap();
    let recall_of_yes = |extra: &[&str], name: &str| {
        let out = dir.join(name);
        let mut args = vec![
            "train",
            "--data",
            s(&data),
            "--target",
            "buy",
            "--epochs",
            "20",
        ];
        args.extend_from_slice(&["--out", s(&out)]);
        args.extend_from_slice(extra);
        let o = ok(&args);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            stdout.contains("always the majority class (no): accuracy"),
            "{stdout}"
        );
        let m = json(&out.join("metrics.json"));
        assert_eq!(m["majority"]["class"], "no");
        let yes = m["test"]["per_class"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["class"] == "yes")
            .unwrap()
            .clone();
        (
            yes["recall"].as_f64().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (plain, _) = recall_of_yes(&[], "plain");
    let (balanced, stderr) = recall_of_yes(&["--class-weight", "balanced"], "balanced");
    assert!(
        stderr.contains("note: class weights (--class-weight balanced): no 0.5"),
        "{stderr}"
    );
    assert!(
        balanced >= 0.5 && balanced > plain + 0.3,
        "recall of the rare class: {plain} unweighted, {balanced} balanced"
    );
    // Weighing classes of a numeric target is refused.
    let err = fails(&[
        "train",
        "--data",
        fixture("houses.csv").to_str().unwrap(),
        "--target",
        "MedHouseVal",
        "--class-weight",
        "balanced",
        "--out",
        s(&dir.join("numeric")),
    ]);
    assert!(
        err.contains("--class-weight balanced weighs classes"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
