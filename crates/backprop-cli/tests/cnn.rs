//! Convolutional networks from the command line: `--layers` trains, saves, inspects,
//! evaluates and predicts; a stack that does not fit the input exits 2 naming the
//! layer and the sizes; and (ignored, real data) `--example mnist-cnn` reaches its
//! stated accuracy.

mod common;
use common::{fixture, json, ok, run, tmp};

/// A small CNN on the embedded 8x8 digits (a table whose rows are 1x8x8 images).
const DIGITS_CNN: &str =
    "input 1x8x8, conv 8 3x3 pad 1 relu, maxpool 2, conv 16 3x3 pad 1, relu, maxpool 2, flatten, dropout 0.1, dense 10";

#[test]
fn a_layer_stack_trains_saves_inspects_and_evaluates() {
    let out = tmp("cnn-digits");
    let metrics = out.with_extension("json");
    let (o, m) = (out.to_str().unwrap(), metrics.to_str().unwrap());
    ok(&[
        "train",
        "--example",
        "digits",
        "--layers",
        DIGITS_CNN,
        "--epochs",
        "15",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--no-baseline",
        "--quiet",
        "--out",
        o,
        "--metrics-json",
        m,
    ]);
    let acc = json(&metrics)["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.95, "test accuracy {acc}");
    let model = out.clone();
    let meta = std::fs::read_to_string(model.join("model.json")).unwrap();
    assert!(meta.contains(r#""kind": "conv2d""#), "{meta}");
    let inspect = ok(&["inspect", "--model", model.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.contains("conv2d 1x8x8 -> 8x8x8 (3x3, stride 1, padding 1, relu)"),
        "{text}"
    );
    assert!(text.contains("maxpool2d 16x4x4 -> 16x2x2"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&metrics);
}

#[test]
fn a_stack_that_does_not_fit_the_input_exits_2_naming_the_layer() {
    for (layers, says) in [
        (
            "input 1x8x8, conv 8 3x3, maxpool 2, conv 8 5x5, flatten, dense 10",
            "item 3 `conv 8 5x5`",
        ),
        (
            "input 1x8x8, conv 8 3x3, dense 10",
            "put `flatten` before it",
        ),
        ("input 1x8x8, flatten, dense 12", "dense 10"),
        (
            "input 1x9x9, flatten, dense 10",
            "81 values per row but the data has 64",
        ),
        ("conv 8 3x3, flatten, dense 10", "input CxHxW"),
        ("conv 8 3q3, flatten, dense 10", "kernel `3q3`"),
    ] {
        let out = run(&[
            "train",
            "--example",
            "digits",
            "--layers",
            layers,
            "--epochs",
            "1",
            "--no-baseline",
            "--quiet",
            "--out",
            tmp("cnn-bad").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{layers}: {err}");
        assert!(err.contains(says), "{layers}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Occurrences of `needle` in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Test rows the network got wrong, from the accuracy and row count in metrics.json.
fn wrong_test_rows(metrics: &std::path::Path) -> usize {
    let m = json(metrics);
    let rows = m["rows"]["test"].as_u64().unwrap() as f64;
    let acc = m["test"]["accuracy"].as_f64().unwrap();
    (rows - (acc * rows).round()) as usize
}

/// The report of a convolutional network shows the first convolution's filters (a tile
/// per filter, trained and initial), the feature maps of three test images at every
/// convolution and pooling layer, and the misclassified test images, as many as the
/// test accuracy in metrics.json says (up to 24).
#[test]
fn the_report_shows_filters_feature_maps_and_misclassified_images() {
    let out = tmp("cnn-report");
    let metrics = out.with_extension("json");
    let (o, m) = (out.to_str().unwrap(), metrics.to_str().unwrap());
    ok(&[
        "train",
        "--example",
        "digits",
        "--layers",
        DIGITS_CNN,
        "--epochs",
        "2",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--no-baseline",
        "--quiet",
        "--out",
        o,
        "--metrics-json",
        m,
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("What the convolutional layers learned"));
    // conv 8 on one input channel: 8 filters of one tile each.
    assert_eq!(count(&html, "class=\"filter\""), 8);
    assert_eq!(count(&html, "class=\"filter-init\""), 8);
    // 3 test images; channels of conv 8, maxpool, conv 16, maxpool.
    assert_eq!(count(&html, "class=\"map-input\""), 3);
    assert_eq!(count(&html, "class=\"map\""), 3 * (8 + 8 + 16 + 16));
    assert_eq!(count(&html, "layer 3: conv2d 8x4x4 -&gt; 16x4x4"), 3);
    let wrong = wrong_test_rows(&metrics);
    assert!(wrong > 0, "two epochs should leave some test images wrong");
    assert!(html.contains(&format!("data-wrong=\"{wrong}\" data-rows=\"359\"")));
    assert_eq!(count(&html, "<figure class=\"miss\">"), wrong.min(24));
    assert_eq!(
        count(&html, "data:image/png;base64,"),
        8 + 8 + 3 + 3 * 48 + wrong.min(24)
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&metrics);
}

/// Images fed to dense layers (IDX files) get the misclassified images (24 of the
/// many a one-epoch network gets wrong) but no filters; a table gets neither.
#[test]
fn dense_image_runs_show_misclassified_images_and_tables_none() {
    let out = tmp("dense-report");
    let metrics = out.with_extension("json");
    let (o, m) = (out.to_str().unwrap(), metrics.to_str().unwrap());
    let idx = fixture("mnist_small");
    ok(&[
        "train",
        "--data",
        idx.to_str().unwrap(),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--no-baseline",
        "--quiet",
        "--out",
        o,
        "--metrics-json",
        m,
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let wrong = wrong_test_rows(&metrics);
    assert!(wrong > 24, "{wrong} wrong: the cap is not exercised");
    assert!(html.contains(&format!("data-wrong=\"{wrong}\" data-rows=\"100\"")));
    assert!(html.contains("the first 24 are shown"));
    assert_eq!(count(&html, "<figure class=\"miss\">"), 24);
    assert_eq!(
        count(&html, "width=\"56\" height=\"56\""),
        24,
        "28x28 drawn 2x"
    );
    assert!(!html.contains("What the convolutional layers learned"));
    assert_eq!(count(&html, "class=\"filter\""), 0);
    let _ = std::fs::remove_dir_all(&out);
    let iris = fixture("iris.csv");
    ok(&[
        "train",
        "--data",
        iris.to_str().unwrap(),
        "--target",
        "target",
        "--task",
        "classify",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--no-baseline",
        "--quiet",
        "--out",
        o,
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Confusion matrix"), "a classification report");
    for absent in [
        "Misclassified test images",
        "convolutional layers",
        "data:image/png",
    ] {
        assert!(!html.contains(absent), "{absent}");
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&metrics);
}

#[test]
#[ignore = "trains the mnist-cnn example on all 60,000 MNIST images (minutes on 2 cores)"]
/// The issue's goal is 99.2%; the defaults (random shifts of up to 2 pixels, 10
/// epochs) reach 99.35% (2026-12-03). This checks the goal, with a margin of 15 images
/// for other instruction sets.
fn cnn_reaches_99_percent_on_mnist() {
    let out = tmp("mnist-cnn");
    let metrics = out.with_extension("json");
    let started = std::time::Instant::now();
    ok(&[
        "train",
        "--example",
        "mnist-cnn",
        "--threads",
        "2",
        "--no-baseline",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--metrics-json",
        metrics.to_str().unwrap(),
    ]);
    let seconds = started.elapsed().as_secs_f64();
    let acc = json(&metrics)["test"]["accuracy"].as_f64().unwrap();
    eprintln!("mnist-cnn: test accuracy {acc:.4} in {seconds:.0}s");
    assert!(acc >= 0.992, "test accuracy {acc:.4} after {seconds:.0}s");
    // The time (goal: under 10 minutes on 2 cores) is a benchmark's to check
    // (`bench/cnn.py`, BENCHMARKS.md), not a test's: CI machines are shared.
    // The report's images stay small: 32 filters, 3 x 64 feature maps, 24 misses.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(count(&html, "class=\"filter\""), 32);
    assert_eq!(count(&html, "class=\"map\""), 3 * 4 * 16);
    assert!(
        html.len() < 2_000_000,
        "report.html of {} bytes",
        html.len()
    );
    let _ = std::fs::remove_dir_all(&out);
}
