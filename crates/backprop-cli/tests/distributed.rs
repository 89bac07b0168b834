//! `mpirun -n K backprop train` (feature `distributed`; needs OpenMPI's `mpirun` on the
//! PATH). Run with `cargo test --release --features distributed --test distributed`.
//!
//! Tolerance of the 2-rank vs 1-process comparison: the ranks sum the rows of each
//! batch in two parts and add them, a different floating-point summation order, which
//! moves each step's gradient by a few f32 ulp; nothing else differs (same split,
//! preprocessing, initial weights, shuffles, global batches and updates). After 4
//! epochs (452 steps) of SGD with momentum on the house prices the largest weight
//! difference measured is 5.3e-7 of the largest weight (metrics agree to 1e-7), so
//! `WEIGHT_TOL = 1e-4` leaves a factor of ~200, while losing or mis-weighting one
//! rank's part changes the weights by more than 1e-2 (see the in-process test
//! `crates/backprop/tests/sharded.rs`). A single-process MPI world (`mpirun -n 1`)
//! takes the one-process code path and must be bit-identical.

#![cfg(feature = "distributed")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use backprop::model::Model;

/// Largest weight difference allowed, relative to the largest weight.
const WEIGHT_TOL: f32 = 1e-4;
/// Relative difference allowed in test and validation metrics.
const METRIC_TOL: f64 = 1e-5;
/// A test whose job is not done by then has hung in a collective.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Training flags of the runs compared (embedded house prices): SGD with momentum, with
/// the gradient norm clipped at 1 so that no seed can make the standardised outliers of
/// the house-price features diverge (seed 42 did at lr 0.005 once the split, the initial
/// weights and the shuffle drew from independent streams).
fn flags(epochs: &str, hidden: &str, batch: &str, lr: &str) -> Vec<String> {
    let f = [
        "train",
        "--hidden",
        hidden,
        "--epochs",
        epochs,
        "--batch-size",
        batch,
        "--optimizer",
        "sgd",
        "--lr",
        lr,
        "--clip-norm",
        "1",
        "--schedule",
        "constant",
        "--scale",
        "standard",
        "--threads",
        "1",
        "--quiet",
    ];
    f.iter().map(|s| s.to_string()).collect()
}

/// The small run the comparisons use.
fn small() -> Vec<String> {
    flags("4", "32,16", "128", "0.005")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_backprop")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-mpi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `mpirun` allowed to run as root (CI containers) and to start more ranks than cores.
fn mpirun() -> Command {
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .arg("--oversubscribe");
    c
}

/// Runs `c` to completion, failing the test if it takes longer than [`TIMEOUT`].
fn output(mut c: Command) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts (is OpenMPI's mpirun installed?)");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("{c:?} hung for {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn ok(c: Command) -> Output {
    let shown = format!("{c:?}");
    let o = output(c);
    assert!(
        o.status.success(),
        "{shown} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `backprop <flags> --out dir` on `ranks` ranks (0: without mpirun).
fn train(ranks: usize, out: &Path, flags: &[String]) -> Output {
    let mut c = if ranks == 0 {
        Command::new(bin())
    } else {
        let mut c = mpirun();
        c.args(["-n", &ranks.to_string(), bin()]);
        c
    };
    c.args(flags).arg("--out").arg(out);
    ok(c)
}

/// `max |a - b| / max |a|` over all parameters.
fn weight_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (
        Model::load(a).expect("model a"),
        Model::load(b).expect("model b"),
    );
    let (a, b) = (a.network.params(), b.network.params());
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).expect("metrics.json"))
        .expect("JSON")
}

#[test]
fn two_ranks_end_with_the_weights_of_one_process() {
    let (single, one, two) = (tmp("single"), tmp("one"), tmp("two"));
    train(0, &single, &small());
    train(1, &one, &small());
    let o = train(2, &two, &small());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout.matches("run folder:").count(),
        1,
        "rank 0 alone prints:\n{stdout}"
    );

    let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).expect("weights");
    assert_eq!(
        bytes(&single),
        bytes(&one),
        "mpirun -n 1 must be bit-identical to a run without mpirun"
    );
    let d = weight_diff(&single, &two);
    eprintln!("2 ranks vs 1 process: weights differ by {d:e} of the largest weight");
    assert!(
        d < WEIGHT_TOL,
        "2 ranks vs 1 process: weights differ by {d:e} (> {WEIGHT_TOL:e})"
    );

    let (m1, m2) = (metrics(&single), metrics(&two));
    assert_eq!(m1["rows"], m2["rows"], "global row counts");
    for split in ["test", "valid"] {
        for k in ["rmse", "mae", "r2"] {
            let (a, b) = (
                m1[split][k].as_f64().unwrap(),
                m2[split][k].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= METRIC_TOL * a.abs(),
                "{split} {k}: {a} vs {b}"
            );
        }
    }
    for f in ["model.json", "history.csv", "checkpoint/state.safetensors"] {
        assert!(two.join(f).is_file(), "rank 0 wrote {f}");
    }
}

#[test]
fn a_failing_rank_aborts_the_job_and_names_itself() {
    let out = tmp("abort");
    let missing = out.join("missing.csv");
    // One MPI job, two programs: rank 0 trains normally and reaches the first
    // collective; rank 1 cannot read its data. Without the abort, rank 0 would wait.
    let mut c = mpirun();
    c.args(["-n", "1", bin()])
        .args(small())
        .arg("--out")
        .arg(&out);
    c.args([":", "-n", "1", bin()]).args(small());
    c.arg("--data").arg(&missing).arg("--out").arg(&out);
    let o = output(c);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the job failed");
    assert!(
        err.contains("error on rank 1 of 2"),
        "names the rank:\n{err}"
    );
    assert!(err.contains("missing.csv"), "says why:\n{err}");
}

#[test]
fn a_killed_distributed_run_resumes_exactly() {
    let (whole, cut) = (tmp("whole"), tmp("cut"));
    // `--pause-after-epoch` below stops it at epoch 2 whatever the machine's speed.
    let long = flags("8", "128,128", "32", "0.001");
    train(2, &whole, &long);

    let mut c = mpirun();
    c.args(["-n", "2", bin()])
        .args(&long)
        .arg("--out")
        .arg(&cut)
        // Every rank waits after epoch 2's checkpoint, so the signal stops the run
        // there however fast the machine is (the whole run takes about a second).
        .args(["--pause-after-epoch", "2"]);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mpirun");
    let ck = cut.join("checkpoint/state.safetensors");
    let started = Instant::now();
    let epoch = || {
        backprop::checkpoint::Checkpoint::load(&ck)
            .map(|c| c.state.epoch)
            .unwrap_or(0)
    };
    while epoch() < 2 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it could be stopped; make it longer"
        );
        assert!(
            started.elapsed() < TIMEOUT,
            "no checkpoint after {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // mpirun passes SIGTERM on to every rank, which ends at once under mpirun.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let at = epoch();
    assert_eq!(at, 2, "stopped while paused after epoch 2");

    let mut c = mpirun();
    c.args(["-n", "2", bin(), "train", "--resume"]).arg(&cut);
    ok(c);
    let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).expect("weights");
    assert_eq!(
        bytes(&whole),
        bytes(&cut),
        "resumed from epoch {at}: not bit-identical to the uninterrupted 2-rank run"
    );
}

/// A CSV file of `rows` rows: a skewed number with missing cells (`rooms`), a text
/// column (`kind`), a second number and the target.
fn mixed_csv(path: &Path, rows: usize) {
    let mut s = String::from("rooms,kind,age,price\n");
    for i in 0..rows {
        let rooms = if i % 11 == 0 {
            "NA".to_string()
        } else {
            format!(
                "{}",
                ((i * 7919) % 113) as f64 * 0.5 + if i % 7 == 0 { 90.0 } else { 1.0 }
            )
        };
        let kind = ["flat", "house", "villa"][i % 3];
        let age = (i * 31) % 97;
        let price =
            1.0 + ((i * 7919) % 113) as f64 * 0.02 + (i % 3) as f64 * 0.5 + age as f64 * 0.003;
        s.push_str(&format!("{rooms},{kind},{age},{price:.4}\n"));
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, s).unwrap();
}

fn preprocessor(dir: &Path) -> serde_json::Value {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).expect("model.json"))
            .expect("JSON");
    m["preprocessor"].clone()
}

/// With the default preprocessing (quantile scaling, medians for missing cells, one-hot
/// text) the ranks, which each read only their shard of the file, fit exactly the
/// preprocessing one process fits on the whole file: medians and quantiles are exact
/// order statistics over the shards, categories their union. Only the target's mean
/// and standard deviation are sums, equal up to summation order.
#[test]
fn two_ranks_reading_their_shards_fit_the_preprocessing_of_one_process() {
    let dir = tmp("shards");
    let data = dir.join("mixed.csv");
    mixed_csv(&data, 1500);
    let mut f = flags("3", "16", "64", "0.01");
    f.extend(["--data", data.to_str().unwrap(), "--target", "price"].map(String::from));
    f.retain(|a| a != "--quiet");
    let (single, two) = (dir.join("single"), dir.join("two"));
    // `flags` pins --scale standard; the default (quantile) is what this test is about.
    let without_scale = |f: &[String]| -> Vec<String> {
        let i = f.iter().position(|a| a == "--scale").unwrap();
        [&f[..i], &f[i + 2..]].concat()
    };
    let f = without_scale(&f);
    let o1 = train(0, &single, &f);
    let o2 = train(2, &two, &f);

    let (p1, p2) = (preprocessor(&single), preprocessor(&two));
    assert!(
        p1["features"].to_string().contains("\"quantile\""),
        "default scaling is quantile: {}",
        p1["features"]
    );
    assert_eq!(
        p1["features"], p2["features"],
        "medians, quantiles and categories"
    );
    let t = |p: &serde_json::Value, k: &str| p["target"][k].as_f64().unwrap();
    for k in ["mean", "std"] {
        let (a, b) = (t(&p1, k), t(&p2, k));
        assert!((a - b).abs() <= 1e-12 * a.abs(), "target {k}: {a} vs {b}");
    }
    let d = weight_diff(&single, &two);
    assert!(d < WEIGHT_TOL, "weights differ by {d:e}");
    // The notes count the cells of every rank, not only rank 0's.
    let note = |o: &Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("note:") || l.starts_with("warning:"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(note(&o1), note(&o2));
    assert!(
        note(&o1)
            .iter()
            .any(|l| l.contains("missing cell(s) in `rooms`")),
        "{:?}",
        note(&o1)
    );
}

/// Each rank parses only its own rows: a broken cell in a row of rank 1's shard is
/// found by rank 1 alone (rank 0 never decodes that row), and the job stops with an
/// error naming rank 1 and the row's line.
#[test]
fn each_rank_reads_only_its_own_rows() {
    let rows = 400;
    // The split and shards every rank computes (defaults: 10% validation, 20% test,
    // seed 42; training position p belongs to rank p % 2).
    let split = backprop::data::split::split_rows(rows, 0.1, 0.2, 42).unwrap();
    for (rank, record) in [(1, split.train[1]), (0, split.train[2]), (1, split.test[1])] {
        let dir = tmp(&format!("own-{rank}-{record}"));
        let data = dir.join("broken.csv");
        mixed_csv(&data, rows);
        // Invalid UTF-8 in the `kind` field of `record` (line record + 2).
        let text = std::fs::read(&data).unwrap();
        let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let line = &mut lines[record + 1];
        let comma = line.iter().position(|&b| b == b',').unwrap();
        line.splice(comma + 1..comma + 1, [0xFFu8, 0xFE]);
        std::fs::write(&data, lines.join(&b'\n')).unwrap();

        let mut c = mpirun();
        c.args(["-n", "2", bin()]).args(small());
        c.args([
            "--data",
            data.to_str().unwrap(),
            "--target",
            "price",
            "--out",
        ]);
        c.arg(dir.join("run"));
        let o = output(c);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "bad input exits 2:\n{err}");
        let want = format!(
            "error on rank {rank} of 2: {}:{}:2: invalid UTF-8",
            data.display(),
            record + 2
        );
        assert!(err.contains(&want), "expected `{want}` in:\n{err}");
        assert!(
            !err.contains(&format!("rank {} of 2", 1 - rank)),
            "only the rank holding the row saw it:\n{err}"
        );
    }
}

/// An MNIST-format folder under mpirun: each rank streams the IDX files keeping only
/// its images, and the per-pixel scaling fitted from histograms summed over the ranks
/// is exactly the one-process fit; the weights agree as for the CSV runs.
#[test]
fn two_ranks_reading_their_shards_of_idx_images_match_one_process() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist_small");
    let dir = tmp("idx");
    let f: Vec<String> = [
        "train",
        "--data",
        fixture.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--schedule",
        "constant",
        "--threads",
        "1",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    for scale in ["quantile", "minmax"] {
        let mut f = f.clone();
        f.extend(["--scale".to_string(), scale.to_string()]);
        let (single, two) = (
            dir.join(format!("single-{scale}")),
            dir.join(format!("two-{scale}")),
        );
        train(0, &single, &f);
        train(2, &two, &f);
        assert_eq!(
            preprocessor(&single),
            preprocessor(&two),
            "{scale}: per-pixel scaling, medians and classes"
        );
        let d = weight_diff(&single, &two);
        assert!(d < WEIGHT_TOL, "{scale}: weights differ by {d:e}");
        let (m1, m2) = (metrics(&single), metrics(&two));
        assert_eq!(m1["rows"], m2["rows"], "{scale}: global row counts");
        let acc = |m: &serde_json::Value| m["test"]["accuracy"].as_f64().unwrap();
        assert!((acc(&m1) - acc(&m2)).abs() < 1e-9, "{scale}: test accuracy");
    }
}
