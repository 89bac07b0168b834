//! Training that goes wrong or is cut short: divergence stops with exit code 1 and
//! keeps the last good checkpoint; SIGKILL and Ctrl-C leave a checkpoint from which
//! `--resume` ends bit-identical to an uninterrupted run; the same seed gives the same
//! bytes whatever the thread count.
#![cfg(unix)] // sends signals with `kill`

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backprop::checkpoint::Checkpoint;

mod common;
use common::{bin, run, tmp};

fn fixture(name: &str) -> String {
    common::fixture(name).to_string_lossy().into_owned()
}

fn checkpoint_epoch(dir: &Path) -> Option<usize> {
    Checkpoint::load(&dir.join("checkpoint/state.safetensors"))
        .ok()
        .map(|c| c.state.epoch)
}

/// A run long enough (a few seconds) to be stopped part-way.
fn long_run(out: &Path) -> Vec<String> {
    let houses = fixture("houses.csv");
    [
        "train",
        "--data",
        &houses,
        "--target",
        "MedHouseVal",
        "--epochs",
        "150",
        "--hidden",
        "16",
        "--batch-size",
        "4",
        "--no-baseline",
        "--quiet",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// Starts `args` paused after epoch `epoch` (the hidden `--pause-after-epoch`) and waits
/// until its checkpoint of that epoch is on disk: the run then waits for the signal, so
/// it is stopped at that epoch however fast the machine is.
fn start_and_wait(args: &[String], out: &Path, epoch: usize) -> Child {
    let mut child = bin()
        .args(args)
        .args(["--pause-after-epoch", &epoch.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while checkpoint_epoch(out).is_none_or(|e| e < epoch) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before epoch {epoch}; make it longer"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint of epoch {epoch}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

#[track_caller]
fn same_files(a: &Path, b: &Path) {
    for f in ["model.safetensors", "model.json"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn sigkill_then_resume_and_ctrl_c_then_resume_end_bit_identical() {
    let full = tmp("full");
    let o = run(&long_run(&full)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // SIGKILL mid-way: the checkpoint survives and resumes exactly.
    let killed = tmp("killed");
    let mut child = start_and_wait(&long_run(&killed), &killed, 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let at = checkpoint_epoch(&killed).unwrap();
    assert_eq!(at, 3, "killed while paused after epoch 3");
    assert!(
        !killed.join("model.safetensors").exists(),
        "killed before the end"
    );
    let o = run(&["train", "--resume", killed.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    same_files(&full, &killed);

    // Ctrl-C: finishes the step, writes the outputs, exits 130 and says how to resume.
    let stopped = tmp("sigint");
    let mut args = long_run(&stopped);
    args.extend(["--checkpoint-every", "4"].map(String::from));
    let child = start_and_wait(&args, &stopped, 4);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: stopped at epoch")
            && err.contains(&format!("backprop train --resume {}", stopped.display())),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for f in [
        "model.safetensors",
        "model.json",
        "metrics.json",
        "history.csv",
    ] {
        assert!(stopped.join(f).is_file(), "{f} not written on Ctrl-C");
    }
    // Written at the last completed epoch, although --checkpoint-every is 4.
    let at = checkpoint_epoch(&stopped).unwrap();
    let pos: Vec<usize> = err
        .split("stopped at epoch ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect();
    let (epoch, step, steps) = (pos[0], pos[1], pos[2]);
    assert_eq!(at, if step < steps { epoch - 1 } else { epoch }, "{err}");
    assert_eq!(
        (epoch, step, at),
        (5, 1, 4),
        "interrupted while paused after epoch 4: stops after the next step; {err}"
    );
    let o = run(&["train", "--resume", stopped.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    same_files(&full, &stopped);
    // A finished run resumes to the same files again.
    let o = run(&["train", "--resume", stopped.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success());
    same_files(&full, &stopped);
}

#[test]
fn divergence_exits_1_naming_epoch_and_step_and_keeps_the_last_good_checkpoint() {
    let out = tmp("diverge");
    let data = fixture("bad/base_houses.csv");
    let o = run(&[
        "train",
        "--data",
        &data,
        "--target",
        "price",
        "--epochs",
        "10",
        "--hidden",
        "4",
        "--batch-size",
        "4",
        "--no-baseline",
        "--optimizer",
        "sgd",
        "--schedule",
        "one-cycle",
        "--lr",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        line.contains("training diverged at epoch ")
            && line.contains(", step ")
            && line.contains("--lr")
            && line.contains("--clip-norm"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let epoch: usize = line
        .split("epoch ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let kept = checkpoint_epoch(&out).expect("the last good checkpoint is readable");
    assert_eq!(kept, epoch - 1, "{err}");
    assert!(
        err.contains(&format!("the last good checkpoint (epoch {kept}) is kept")),
        "{err}"
    );
    assert!(
        !out.join("model.safetensors").exists(),
        "no model from a diverged run"
    );
    // Clipping the gradient is the remedy the message suggests; it trains.
    let out2 = tmp("clipped");
    let o = run(&[
        "train",
        "--data",
        &data,
        "--target",
        "price",
        "--epochs",
        "10",
        "--hidden",
        "4",
        "--batch-size",
        "4",
        "--no-baseline",
        "--quiet",
        "--optimizer",
        "sgd",
        "--schedule",
        "one-cycle",
        "--lr",
        "1",
        "--clip-norm",
        "1",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn same_seed_gives_identical_bytes_across_runs_and_thread_counts() {
    let houses = fixture("houses.csv");
    // Wide enough that the matrix products are split between threads.
    let go = |name: &str, threads: &str| {
        let out = tmp(name);
        let o = run(&[
            "train",
            "--data",
            &houses,
            "--target",
            "MedHouseVal",
            "--epochs",
            "3",
            "--hidden",
            "256,128",
            "--batch-size",
            "128",
            "--quiet",
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let a = go("t1a", "1");
    let b = go("t1b", "1");
    let c = go("t2", "2");
    same_files(&a, &b);
    same_files(&a, &c);
    let metrics = |d: &Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("metrics.json")).unwrap()).unwrap();
        (v["test"].clone(), v["baseline"]["test"].clone())
    };
    assert_eq!(metrics(&a), metrics(&c));

    // Issue 19's command: its 64-unit ReLU layer under the one-output head takes
    // 512 x 64 x 256 = 2^23 multiply-adds per piece, where the patterns table was
    // used on one thread and the matrix product (another order of sums) on two.
    let issue = |name: &str, threads: &str| {
        let out = tmp(name);
        let o = run(&[
            "train",
            "--hidden",
            "256,64",
            "--batch-size",
            "512",
            "--epochs",
            "3",
            "--quiet",
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let one = issue("t19_1", "1");
    let two = issue("t19_2", "2");
    same_files(&one, &two);
    assert_eq!(metrics(&one), metrics(&two));
}

/// A run stopped by Ctrl-C in the middle of an epoch: that epoch appears nowhere as an
/// epoch (history.csv, metrics.json, report.html), the checkpoint holds the position
/// within it, and `--resume` ends with the uninterrupted run's model and history.
///
/// The run pauses after its third epoch (`--pause-after-epoch`), takes the signal there
/// and stops after the next step, the first of epoch 4; no checkpoint is due before the
/// end, so the one on disk is the stop's.
#[test]
fn ctrl_c_within_an_epoch_records_no_partial_epoch_and_resumes_exactly() {
    use std::io::{BufRead, BufReader, Read};
    let args = |out: &Path| -> Vec<String> {
        let houses = fixture("houses.csv");
        [
            "train",
            "--data",
            &houses,
            "--target",
            "MedHouseVal",
            "--epochs",
            "60",
            "--hidden",
            "64",
            "--batch-size",
            "1",
            "--no-baseline",
            "--seed",
            "5",
            "--checkpoint-every",
            "1000",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let full = tmp("partial-full");
    let o = bin().args(args(&full)).arg("--quiet").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Paused after epoch 3 (the hidden test hook), the run takes Ctrl-C there and
    // stops after the first step of epoch 4, whatever the machine's speed.
    let (stopped, err, (epoch, step, steps)) = {
        let stopped = tmp("partial-stopped");
        let mut child = bin()
            .args(args(&stopped))
            .args(["--pause-after-epoch", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Without a terminal the progress is one line per epoch on standard error.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut err = String::new();
        while !err.contains("epoch   3/60") {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the run ended before epoch 3: {err}"
            );
            err.push_str(&line);
        }
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        stderr.read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let pos: Vec<usize> = err
            .split("stopped at epoch ")
            .nth(1)
            .unwrap_or_else(|| panic!("{err}"))
            .split(';')
            .next()
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!((pos[0], pos[1]), (4, 1), "{err}");
        assert!(pos[1] < pos[2], "{err}");
        (stopped, err, (pos[0], pos[1], pos[2]))
    };
    assert!(
        err.contains(&format!("epoch {epoch} is not recorded as an epoch")),
        "{err}"
    );
    let done = epoch - 1;
    let history = std::fs::read_to_string(stopped.join("history.csv")).unwrap();
    let epochs: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let expected: Vec<String> = (1..=done).map(|e| e.to_string()).collect();
    assert_eq!(epochs, expected, "history.csv:\n{history}");
    let metrics = common::json(&stopped.join("metrics.json"));
    assert_eq!(metrics["epochs_run"], done, "{metrics}");
    assert_eq!(
        metrics["interrupted_epoch"],
        serde_json::json!({"epoch": epoch, "steps_done": step, "steps": steps})
    );
    let report = std::fs::read_to_string(stopped.join("report.html")).unwrap();
    assert!(
        report.contains(&format!(
            "for {done} epochs, then was stopped after {step} of the {steps} steps of epoch {epoch}"
        )),
        "report.html does not say where it stopped"
    );
    let c = Checkpoint::load(&stopped.join("checkpoint/state.safetensors")).unwrap();
    assert_eq!(c.state.epoch, done);
    assert_eq!(c.state.history.epochs.len(), done);
    let partial = c.state.partial.expect("the checkpoint holds the position");
    assert_eq!((partial.steps_done, partial.steps), (step, steps));

    let o = run(&["train", "--resume", stopped.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    same_files(&full, &stopped);
    // The same history, but for the seconds each epoch took.
    let without_seconds = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("history.csv"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(4);
                f.join(",")
            })
            .collect()
    };
    assert_eq!(without_seconds(&stopped), without_seconds(&full));
    let m = common::json(&stopped.join("metrics.json"));
    assert_eq!(m["epochs_run"], 60);
    assert!(m["interrupted_epoch"].is_null());
}
