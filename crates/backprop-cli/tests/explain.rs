//! The numbers behind `report.html` and the `backprop explain` pictures, checked
//! against independent computations: closed-form least squares, the trainer's own
//! record of the validation loss, and the definition of the range test.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::{json, ok, run, tmp};

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// Closed-form least squares of MedHouseVal on centred MedInc, read straight from the
/// CSV file the binary embeds.
fn california_least_squares() -> (f64, f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/california_housing/california_housing.csv");
    let text = std::fs::read_to_string(&path).expect("the California CSV");
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (xi, yi) = (
        head.iter().position(|h| *h == "MedInc").unwrap(),
        head.iter().position(|h| *h == "MedHouseVal").unwrap(),
    );
    let rows: Vec<(f64, f64)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[xi].parse().unwrap(), c[yi].parse().unwrap())
        })
        .collect();
    let n = rows.len() as f64;
    let mx = rows.iter().map(|r| r.0).sum::<f64>() / n;
    let my = rows.iter().map(|r| r.1).sum::<f64>() / n;
    let sxy: f64 = rows.iter().map(|r| (r.0 - mx) * (r.1 - my)).sum();
    let sxx: f64 = rows.iter().map(|r| (r.0 - mx).powi(2)).sum();
    // The feature is centred, so the intercept is the mean price.
    (sxy / sxx, my)
}

#[test]
fn descent_grid_minimum_is_least_squares_and_the_large_rate_diverges() {
    let out = tmp("descent");
    let o = ok(&["explain", "descent", "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    // 101,121 weights x log10(100) = 202,242.
    assert!(stdout.contains("100^101,121 = 10^202,242"), "{stdout}");
    let d = json(&out.join("descent.json"));
    let (w, b) = california_least_squares();
    assert!(
        (d["least_squares"]["w"].as_f64().unwrap() - w).abs() < 1e-4,
        "{} vs {w}",
        d["least_squares"]["w"]
    );
    assert!((d["least_squares"]["b"].as_f64().unwrap() - b).abs() < 1e-4);

    // The brute-force minimum lies within half a grid step of the exact solution.
    let ws = floats(&d["grid"]["w"]);
    let bs = floats(&d["grid"]["b"]);
    let (dw, db) = (ws[1] - ws[0], bs[1] - bs[0]);
    let gw = d["grid"]["min"]["w"].as_f64().unwrap();
    let gb = d["grid"]["min"]["b"].as_f64().unwrap();
    assert!(
        (gw - w).abs() <= dw / 2.0 + 1e-9,
        "grid w {gw} vs {w} (step {dw})"
    );
    assert!(
        (gb - b).abs() <= db / 2.0 + 1e-9,
        "grid b {gb} vs {b} (step {db})"
    );
    let ls_cost = d["least_squares"]["cost"].as_f64().unwrap();
    assert!(
        d["grid"]["min"]["cost"].as_f64().unwrap() >= ls_cost - 1e-6,
        "nothing on the grid beats least squares"
    );
    let w1 = d["grid_1d"]["min"]["w"].as_f64().unwrap();
    assert!(
        (w1 - w).abs() <= dw / 2.0 + 1e-9,
        "one-weight grid {w1} vs {w}"
    );

    let paths = d["rate_paths"].as_array().unwrap();
    let last = |p: &Value| *floats(&p["costs"]).last().unwrap();
    // Good rate: reaches the least-squares cost; too small: still well above it.
    assert!(
        (last(&paths[1]) - ls_cost).abs() < 1e-3 * ls_cost,
        "good rate ends at {}",
        last(&paths[1])
    );
    assert!(
        last(&paths[0]) > ls_cost * 1.2,
        "too small a rate is still far off after the same steps"
    );
    // Too large: with one weight every step overshoots further, so the cost grows.
    let big = floats(&d["rate_paths_1d"][2]["costs"]);
    assert!(big.windows(2).all(|c| c[1] > c[0]), "{big:?}");
    assert!(big.last().unwrap() > &(3.0 * big[0]));
    assert!(d["rate_paths_1d"][2]["lr"].as_f64().unwrap() > d["stability_limit"].as_f64().unwrap());
    for p in d["rate_paths_1d"].as_array().unwrap()[..2].iter() {
        let c = floats(&p["costs"]);
        // Once converged, the weights are f32 and the predictions round: the cost then
        // wobbles in its seventh significant digit, which is not climbing.
        assert!(
            c.windows(2).all(|c| c[1] <= c[0] * (1.0 + 1e-6)),
            "below the limit full-batch descent never climbs: {c:?}"
        );
    }
    // Mini-batch and online steps each see fewer rows but all three head downhill.
    for p in d["batch_paths"].as_array().unwrap() {
        let c = floats(&p["costs"]);
        assert!(c.last().unwrap() < &(0.5 * c[0]), "{}: {c:?}", p["name"]);
    }
    for f in [
        "index.html",
        "cost_1d.svg",
        "cost_surface.svg",
        "batch_paths.svg",
    ] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 1000, "{f}");
    }
}

/// A small, fast training run on the embedded data.
fn small_run(name: &str, extra: &[&str]) -> (PathBuf, Output) {
    let out = tmp(name);
    let mut args = vec![
        "train",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "512",
        "--lr",
        "0.01",
        "--schedule",
        "constant",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = ok(&args);
    (out, o)
}

fn last_valid_loss(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let head: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = head.iter().position(|h| *h == "valid_loss").unwrap();
    text.lines()
        .rfind(|l| !l.is_empty())
        .unwrap()
        .split(',')
        .nth(col)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn landscape_at_the_trained_weights_is_the_recorded_loss() {
    let (run_dir, _) = small_run("landscape-run", &["--no-baseline"]);
    for f in ["report.html", "trajectory.safetensors"] {
        assert!(run_dir.join(f).is_file(), "{f} is written by train");
    }
    let out = tmp("landscape");
    let o = ok(&[
        "explain",
        "landscape",
        "--model",
        run_dir.to_str().unwrap(),
        "--split",
        "valid",
        "--rows",
        "0",
        "--points",
        "5",
        "--grid",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let l = json(&out.join("landscape.json"));
    // The trainer recorded the validation loss of the final weights after the last
    // epoch; the landscape recomputes it from the saved files and a rebuilt split.
    let recorded = last_valid_loss(&run_dir);
    let center = l["center_cost"].as_f64().unwrap();
    assert!(
        (center - recorded).abs() <= 1e-6 * recorded,
        "landscape {center} vs recorded {recorded}"
    );
    assert_eq!(l["rows"].as_u64().unwrap(), 2064, "10% of 20,640 rows");
    for c in l["curves"].as_array().unwrap() {
        let c = floats(c);
        assert_eq!(
            c[2], center,
            "every direction passes through the trained weights"
        );
        assert!(c.iter().all(|v| v.is_finite() && *v > 0.0));
    }
    assert_eq!(floats(&l["plane"]["cost"][1])[1], center);
    // The trajectory: four snapshots (before training and after each epoch) ending at the
    // trained weights, which are the origin of the plane.
    let coords = l["trajectory"]["coords"].as_array().unwrap();
    assert_eq!(coords.len(), 4);
    let end = floats(&coords[3]);
    assert!(end[0].abs() < 1e-4 && end[1].abs() < 1e-4, "{end:?}");
    let explained = floats(&l["trajectory"]["explained"]);
    assert!(explained[0] >= explained[1] && explained[0] + explained[1] <= 1.0 + 1e-9);
    assert!(String::from_utf8_lossy(&o.stdout).contains("cost at the trained weights"));
}

#[test]
fn lr_range_test_suggests_a_rate_in_range() {
    let out = tmp("lr");
    let o = ok(&[
        "explain",
        "lr",
        "--hidden",
        "16",
        "--steps",
        "120",
        "--out",
        out.to_str().unwrap(),
    ]);
    let r = json(&out.join("lr.json"));
    let lrs = floats(&r["lrs"]);
    let losses = floats(&r["losses"]);
    let smoothed = floats(&r["smoothed"]);
    let (lo, hi) = (r["lr_min"].as_f64().unwrap(), r["lr_max"].as_f64().unwrap());
    let s = r["suggestion"].as_f64().unwrap();
    assert!(s >= lo && s <= hi, "suggestion {s} outside [{lo}, {hi}]");
    assert!((lrs[0] - lo).abs() < 1e-9 * lo.max(1e-12) + 1e-12);
    // Geometric growth: the same ratio every step.
    let ratio = (hi / lo).powf(1.0 / 119.0);
    for w in lrs.windows(2) {
        assert!((w[1] / w[0] / ratio - 1.0).abs() < 1e-3, "{w:?}");
    }
    assert!(
        losses.iter().chain(&smoothed).all(|v| v.is_finite()),
        "every recorded loss is finite"
    );
    let m = r["min_index"].as_u64().unwrap() as usize;
    assert!(smoothed.iter().all(|&v| v >= smoothed[m]));
    assert!(
        smoothed[m] < 0.8 * smoothed[0],
        "the cost falls somewhere in the range"
    );
    assert!(
        ((lrs[m] / 10.0).max(lo) - s).abs() < 1e-6 * s,
        "suggestion = lowest / 10"
    );
    assert!(r["steepest_index"].as_u64().unwrap() as usize <= m);
    assert!(String::from_utf8_lossy(&o.stdout).contains("suggested learning rate"));
}

#[test]
fn train_lr_auto_uses_the_range_test() {
    let out = tmp("auto");
    let o = ok(&[
        "train",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--lr",
        "auto",
        "--no-baseline",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    let note = err
        .lines()
        .find(|l| l.starts_with("--lr auto:"))
        .unwrap_or_else(|| panic!("no --lr auto note in:\n{err}"));
    let chosen: f64 = note.rsplit(' ').next().unwrap().parse().unwrap();
    let model = json(&out.join("model.json"));
    let lr = model["training"]["lr"].as_f64().unwrap();
    assert!(
        (lr - chosen).abs() <= 0.01 * chosen,
        "model.json lr {lr} vs printed {chosen}"
    );
    assert!(lr > 1e-6 && lr < 1.0);
    let bad = run(&["train", "--lr", "fast", "--epochs", "1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`auto`"));
}

#[test]
fn report_has_every_section() {
    let (run_dir, _) = small_run("report", &[]);
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    for needle in [
        "Cost per epoch",
        "Cost per mini-batch step",
        "Learning rate over time",
        "Gradient norm per layer",
        "Update-to-weight ratio per layer",
        "Weights of layer 1",
        "Weights of layer 2",
        "Predicted vs actual",
        "Residuals",
        "no hidden layer",
        "Configuration",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    // Self-contained: no scripts, no linked files, nothing fetched.
    for bad in [
        "<script", "<link", " src=", "href=", "https://", "@import", "url(http",
    ] {
        assert!(!html.contains(bad), "report.html contains {bad}");
    }
    // Two versions (linear and log) of each cost chart plus the other charts.
    assert_eq!(html.matches("<svg ").count(), 4 + 1 + 2 + 2 + 2);
}
