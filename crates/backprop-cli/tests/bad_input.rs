//! Every bad input in `tests/fixtures/bad/` (and bad flags, model files and resume
//! folders) against the real binary: exit code 2 (0 for the files that must be
//! accepted), a one-line error naming the file (line:column where it applies) and what
//! to do, no panic, and nothing already in the output folder touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::run;

fn bad(name: &str) -> String {
    common::fixture(&format!("bad/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// A fresh, existing scratch folder.
fn tmp(name: &str) -> PathBuf {
    let d = common::tmp(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const FAST: [&str; 6] = ["--epochs", "1", "--hidden", "4", "--no-baseline", "--quiet"];

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// A folder that looks like an earlier run, which failing commands must leave alone.
fn earlier_run(name: &str) -> PathBuf {
    let d = tmp(name);
    std::fs::create_dir_all(d.join("checkpoint")).unwrap();
    for (f, bytes) in [
        ("model.json", &b"{\"earlier\": true}"[..]),
        ("model.safetensors", b"earlier weights"),
        ("checkpoint/state.safetensors", b"earlier checkpoint"),
        ("predictions.csv", b"a,b\n1,2\n"),
    ] {
        std::fs::write(d.join(f), bytes).unwrap();
    }
    d
}

/// Asserts a clean failure: `code`, one `error:` line holding every needle, no panic.
#[track_caller]
fn fails(o: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr:\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "panic: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
}

/// A clap usage error: exit 2, `error:` first, no panic (clap adds usage lines).
#[track_caller]
fn usage_error(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
}

#[test]
fn bad_csv_files_get_one_clear_line_and_exit_2() {
    let out = earlier_run("csv");
    let before = snapshot(&out);
    let o = out.to_str().unwrap();
    let dir = bad("");
    let missing = bad("no_such_file.csv");
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            &missing,
            "price",
            vec!["no_such_file.csv: no such file; check the path"],
        ),
        (
            &dir,
            "price",
            vec!["is a directory", "give the path of a .csv file"],
        ),
        (
            "empty.csv",
            "price",
            vec!["empty.csv:1:", "the file is empty"],
        ),
        (
            "header_only.csv",
            "price",
            vec!["header_only.csv:1:", "header but no rows"],
        ),
        (
            "too_few_rows.csv",
            "price",
            vec![
                "too_few_rows.csv: ",
                "too few for the requested splits",
                "--valid-fraction",
            ],
        ),
        (
            "base_houses.csv",
            "prise",
            vec![
                "base_houses.csv:1:",
                "no target column `prise`",
                "did you mean `price`?",
            ],
        ),
        (
            "duplicate_columns.csv",
            "price",
            vec![
                "duplicate_columns.csv:1:3:",
                "duplicate column name `rooms`",
                "rename one",
            ],
        ),
        (
            "too_many_fields.csv",
            "price",
            vec![
                "too_many_fields.csv:6:5:",
                "too many fields: 5 instead of 4",
            ],
        ),
        (
            "too_few_fields.csv",
            "price",
            vec!["too_few_fields.csv:8:4:", "too few fields: 3 instead of 4"],
        ),
        (
            "non_numeric.csv",
            "price",
            vec![
                "non_numeric.csv:5:3:",
                "column `income` is numeric except for 4 value(s)",
                "`n/a?` on line 5",
                "`abc` on line 16",
                "NA to mark them missing",
            ],
        ),
        (
            "nan_value.csv",
            "price",
            vec!["nan_value.csv:7:2:", "`NaN`", "must be finite", "NA"],
        ),
        (
            "inf_value.csv",
            "price",
            vec!["inf_value.csv:9:4:", "`inf`", "must be finite"],
        ),
        (
            "out_of_range.csv",
            "price",
            vec!["out_of_range.csv:4:3:", "`1e400`", "must be finite"],
        ),
        (
            "constant_target.csv",
            "price",
            vec![
                "constant_target.csv:1:4:",
                "same value (3.5) in every training row",
            ],
        ),
        (
            "semicolon.csv",
            "price",
            vec!["semicolon.csv:1:", "semicolon-separated", "--delimiter ';'"],
        ),
        (
            "tab.tsv",
            "price",
            vec!["tab.tsv:1:", "tab-separated", "--delimiter tab"],
        ),
        (
            "invalid_utf8.csv",
            "price",
            vec![
                "invalid_utf8.csv:13:2:",
                "invalid UTF-8",
                "save the file as UTF-8",
            ],
        ),
    ];
    for (file, target, needles) in cases {
        let data = if file.starts_with('/') {
            file.to_string()
        } else {
            bad(file)
        };
        let mut args = vec!["train", "--data", &data, "--target", target, "--out", o];
        args.extend(FAST);
        fails(&run(&args), 2, &needles);
    }
    // No --target for a file of one's own.
    let data = bad("base_houses.csv");
    fails(
        &run(&["train", "--data", &data, "--out", o, "--quiet"]),
        2,
        &[
            "base_houses.csv: name the column to predict with --target",
            "price",
        ],
    );
    assert_eq!(
        snapshot(&out),
        before,
        "a failing run modified the --out folder"
    );
}

/// `train` for one epoch of a 4-unit network on `data`'s `price`, into `dir/run`, with
/// `extra` flags.
fn train_one_epoch(data: &str, dir: &Path, extra: &[&str]) -> Output {
    let out = dir.join("run");
    let mut args = vec![
        "train",
        "--data",
        data,
        "--target",
        "price",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--no-baseline",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn accepted_quirks_train_cleanly() {
    for file in [
        "accept_bom_crlf.csv",
        "accept_quoted_commas.csv",
        "accept_constant_feature.csv",
    ] {
        let out = tmp(file);
        let o = train_one_epoch(&bad(file), &out, &["--batch-size", "8"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{file}: {err}");
        let notes: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("note") || l.starts_with("warning") || l.starts_with("error"))
            // The default weight decay of a tiny table is a setting, not about the file.
            .filter(|l| !l.contains("(pass --weight-decay to choose)"))
            .collect();
        if file == "accept_constant_feature.csv" {
            assert!(
                notes.len() == 1 && notes[0].contains("constant") && notes[0].contains("zone"),
                "{err}"
            );
        } else {
            assert!(
                notes.is_empty(),
                "{file} should be accepted silently: {err}"
            );
        }
        assert!(out.join("run/model.safetensors").is_file());
    }
    // Quoted commas stay inside their field: three cities, one-hot.
    let meta = std::fs::read_to_string(std::env::temp_dir().join(format!(
        "backprop-test-{}-accept_quoted_commas.csv/run/model.json",
        std::process::id()
    )))
    .unwrap();
    assert!(
        meta.contains("Springfield, IL") && meta.contains("Portland, OR"),
        "{meta}"
    );
}

#[test]
fn bad_flags_exit_2_without_touching_the_run_folder() {
    let out = earlier_run("flags");
    let before = snapshot(&out);
    let o = out.to_str().unwrap();
    let data = bad("base_houses.csv");
    let base = [
        "train",
        "--data",
        &data,
        "--target",
        "price",
        "--quiet",
        "--no-baseline",
        "--out",
        o,
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        run(&a)
    };
    fails(
        &with(&["--lr", "0"]),
        2,
        &["invalid --lr 0", "positive number such as 0.001"],
    );
    fails(&with(&["--lr", "-1"]), 2, &["invalid --lr -1", "positive"]);
    fails(
        &with(&["--epochs", "0"]),
        2,
        &["invalid --epochs 0", "at least one epoch"],
    );
    // Typed by their parsers, so clap names the flag and the value.
    usage_error(
        &with(&["--hidden", "64,x"]),
        &[
            "invalid value '64,x' for '--hidden <WIDTHS>'",
            "such as 64,64",
        ],
    );
    usage_error(
        &with(&["--hidden", "4,0"]),
        &["invalid value '4,0' for '--hidden <WIDTHS>'", "0 units"],
    );
    usage_error(
        &with(&["--batch-size", "0"]),
        &["invalid value '0' for '--batch-size <N|full>'", "or `full`"],
    );
    fails(&with(&["--clip-norm", "-1"]), 2, &["clip-norm", "positive"]);
    fails(
        &with(&["--checkpoint-every", "0"]),
        2,
        &["invalid --checkpoint-every 0"],
    );
    fails(
        &with(&["--delimiter", "ab"]),
        2,
        &["invalid --delimiter `ab`", "single character"],
    );
    fails(
        &with(&["--metrics-json", "/no/such/folder/m.json"]),
        2,
        &["--metrics-json", "/no/such/folder does not exist"],
    );
    usage_error(&with(&["--epochs", "-3"]), &["'-3'", "--epochs"]);
    usage_error(
        &with(&["--optimizer", "adamm"]),
        &[
            "invalid value 'adamm'",
            "possible values: sgd, nesterov, adam, adamw, rmsprop",
        ],
    );
    assert_eq!(
        snapshot(&out),
        before,
        "a failing run modified the --out folder"
    );
    // An earlier run is never overwritten: it is resumed or left alone.
    fails(
        &with(&["--epochs", "1"]),
        2,
        &["already holds a run", "--resume"],
    );
    assert_eq!(snapshot(&out), before);

    // Settings that work, with a warning: a one-epoch run with `extra` flags in its own
    // folder succeeds, and its standard error says `warning`.
    let warns = |name: &str, extra: &[&str], warning: &str| {
        let o = train_one_epoch(&data, &tmp(name), extra);
        assert!(o.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(warning), "{extra:?}: {stderr}");
    };
    // Batch size larger than the data: full batch (documented in --help).
    warns(
        "batch",
        &["--batch-size", "1000"],
        "warning: --batch-size 1000 is larger than the 28 training rows; using full-batch",
    );
    // A flag the chosen optimizer has no use for is named, not silently dropped.
    warns(
        "momentum",
        &["--momentum", "0.5"],
        "warning: adamw does not use --momentum",
    );
    let help = String::from_utf8_lossy(&run(&["train", "--help"]).stdout).into_owned();
    assert!(
        help.contains("larger than the training rows means full batch"),
        "{help}"
    );
}

#[test]
fn bad_model_folders_get_one_clear_line_and_exit_2() {
    let root = tmp("models");
    let good = root.join("good");
    let data = bad("base_houses.csv");
    let mut args = vec![
        "train",
        "--data",
        &data,
        "--target",
        "price",
        "--out",
        good.to_str().unwrap(),
    ];
    args.extend(FAST);
    assert!(run(&args).status.success());
    let copy = |name: &str| {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["model.json", "model.safetensors"] {
            std::fs::copy(good.join(f), d.join(f)).unwrap();
        }
        d
    };
    let truncated = copy("truncated");
    let w = std::fs::read(truncated.join("model.safetensors")).unwrap();
    std::fs::write(truncated.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    let corrupted = copy("corrupted");
    let j = std::fs::read(corrupted.join("model.json")).unwrap();
    std::fs::write(corrupted.join("model.json"), &j[..j.len() / 3]).unwrap();
    let version = copy("version");
    let j = std::fs::read_to_string(version.join("model.json")).unwrap();
    std::fs::write(
        version.join("model.json"),
        j.replacen("\"format_version\": 1", "\"format_version\": 99", 1),
    )
    .unwrap();
    let no_weights = copy("no_weights");
    std::fs::remove_file(no_weights.join("model.safetensors")).unwrap();
    let preds = root.join("predictions.csv");
    std::fs::write(&preds, "earlier predictions\n").unwrap();

    let s = |p: &Path| p.to_string_lossy().into_owned();
    let cases: Vec<(PathBuf, String, Vec<&str>)> = vec![
        (
            root.join("missing"),
            data.clone(),
            vec![
                "missing: is not a model folder",
                "written by `backprop train`",
            ],
        ),
        (
            truncated,
            data.clone(),
            vec![
                "truncated/model.safetensors: is not a readable safetensors file",
                "truncated or corrupted",
            ],
        ),
        (
            corrupted,
            data.clone(),
            vec![
                "corrupted/model.json: is not valid JSON",
                "retrain or restore it",
            ],
        ),
        (
            version,
            data.clone(),
            vec!["format version 99", "expected version 1", "retrain"],
        ),
        (
            no_weights,
            data.clone(),
            vec!["no_weights/model.safetensors", "check the path"],
        ),
        (
            good.clone(),
            bad("renamed_columns.csv"),
            vec![
                "renamed_columns.csv without column(s) age",
                "years",
                "the model's feature columns: rooms, age, income",
            ],
        ),
    ];
    for (model, data, needles) in cases {
        fails(
            &run(&[
                "predict",
                "--model",
                &s(&model),
                "--data",
                &data,
                "--out",
                &s(&preds),
            ]),
            2,
            &needles,
        );
        fails(
            &run(&["evaluate", "--model", &s(&model), "--data", &data]),
            2,
            &needles,
        );
        if !data.ends_with("renamed_columns.csv") {
            fails(&run(&["inspect", "--model", &s(&model)]), 2, &needles);
        }
    }
    assert_eq!(
        std::fs::read(&preds).unwrap(),
        b"earlier predictions\n",
        "a failing predict overwrote --out"
    );
    // The same data with the right columns works.
    assert!(run(&[
        "predict",
        "--model",
        &s(&good),
        "--data",
        &bad("base_houses.csv")
    ])
    .status
    .success());
}

#[test]
fn bad_resume_folders_exit_2() {
    let root = tmp("resume");
    let data_path = root.join("data.csv");
    std::fs::copy(bad("base_houses.csv"), &data_path).unwrap();
    let data = data_path.to_str().unwrap();
    let run_dir = root.join("run");
    let r = run_dir.to_str().unwrap();
    let mut args = vec!["train", "--data", data, "--target", "price", "--out", r];
    args.extend(FAST);
    assert!(run(&args).status.success());
    let before = snapshot(&run_dir);

    let missing = root.join("nope");
    fails(
        &run(&["train", "--resume", missing.to_str().unwrap()]),
        2,
        &["--resume", "nope: no such run folder"],
    );
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &run(&["train", "--resume", empty.to_str().unwrap()]),
        2,
        &["holds no checkpoint", "checkpoint/state.safetensors"],
    );
    fails(
        &run(&["train", "--resume", r, "--lr", "0.1"]),
        2,
        &["leave out --lr"],
    );
    // The data changed since the run started.
    std::fs::write(
        &data_path,
        std::fs::read_to_string(bad("base_houses.csv"))
            .unwrap()
            .replacen("4.55", "4.56", 1),
    )
    .unwrap();
    fails(
        &run(&["train", "--resume", r]),
        2,
        &["data.csv: changed since the run", "same data"],
    );
    assert_eq!(snapshot(&run_dir), before);
    // A corrupted checkpoint.
    let ck = run_dir.join("checkpoint/state.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &run(&["train", "--resume", r]),
        2,
        &[
            "state.safetensors: is not a readable checkpoint",
            "corrupted",
        ],
    );
}

/// Model folders that parse but could not predict (made by
/// `fixtures/bad/make_models.py`): every command that loads them refuses them with
/// exit 2 and names the file and the fault, instead of panicking later.
#[test]
fn unusable_models_are_refused_by_every_command_that_loads_them() {
    let data = bad("base_houses.csv");
    let preds = tmp("unusable").join("predictions.csv");
    let cases: [(&str, &[&str]); 4] = [
        (
            "model_zero_width",
            &[
                "model_zero_width/model.json: describes no usable network",
                "layer 0 at least 1 wide",
                "retrain or restore it",
            ],
        ),
        (
            "model_no_layers",
            &[
                "model_no_layers/model.json: describes no usable network",
                "at least one layer",
            ],
        ),
        (
            "model_empty_quantiles",
            &[
                "model_empty_quantiles/model.json: holds unusable preprocessing",
                "feature `age`",
                "0 quantile reference(s)",
            ],
        ),
        (
            "model_zero_target_std",
            &[
                "model_zero_target_std/model.json: holds unusable preprocessing",
                "target `price`",
                "standard deviation 0",
            ],
        ),
    ];
    for (model, needles) in cases {
        let m = bad(model);
        let p = preds.to_str().unwrap();
        fails(
            &run(&["predict", "--model", &m, "--data", &data, "--out", p]),
            2,
            needles,
        );
        fails(
            &run(&["evaluate", "--model", &m, "--data", &data]),
            2,
            needles,
        );
        fails(&run(&["inspect", "--model", &m]), 2, needles);
        assert!(!preds.exists(), "{model}: predictions written");
    }
}

/// A checkpoint whose optimizer state does not fit the run is refused on `--resume`,
/// naming the checkpoint, instead of resuming with updates that do nothing: a short
/// Adam moment (`fixtures/bad/checkpoint_adam_short.safetensors`), and the state of
/// another optimizer.
#[test]
fn resume_refuses_an_optimizer_state_that_does_not_fit() {
    let root = tmp("resume_state");
    let run_dir = root.join("run");
    let r = run_dir.to_str().unwrap();
    let data = bad("base_houses.csv");
    let mut args = vec![
        "train",
        "--data",
        &data,
        "--target",
        "price",
        "--optimizer",
        "adam",
        "--out",
        r,
    ];
    args.extend(FAST);
    assert!(run(&args).status.success());
    let ck = run_dir.join("checkpoint/state.safetensors");
    let good = std::fs::read(&ck).unwrap();

    std::fs::copy(bad("checkpoint_adam_short.safetensors"), &ck).unwrap();
    fails(
        &run(&["train", "--resume", r]),
        2,
        &[
            "checkpoint/state.safetensors: tensor `optimizer.v` is F32",
            "the Adam optimizer state needs `optimizer.m` and `optimizer.v`",
            "corrupted",
        ],
    );

    // The same run's checkpoint, its Adam moments replaced by plain SGD's (none).
    let mut c = backprop::checkpoint::Checkpoint::from_bytes(&ck, &good).unwrap();
    c.state.optimizer = backprop::OptimizerState::Sgd {
        step: c.state.optimizer.step(),
    };
    backprop::checkpoint::Checkpoint::save(&ck, &c.network, &c.state, &c.extra).unwrap();
    fails(
        &run(&["train", "--resume", r]),
        2,
        &[
            "checkpoint/state.safetensors: optimizer state does not fit",
            "found the state of plain SGD (no buffers)",
            "expected that of adam (buffers m, v)",
            "train anew",
        ],
    );
}

/// A checkpoint written before the settings were saved (its record holds the command
/// line and the folder it ran in, relative paths relative to it) resumes from any folder
/// to the same model; one whose command line no longer parses is refused with the
/// command that starts the run again.
#[test]
fn checkpoints_that_saved_the_command_line_resume_or_say_what_to_do() {
    let root = tmp("resume_v1");
    let here = root.join("here");
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(bad("base_houses.csv"), here.join("data.csv")).unwrap();
    let mut args = vec![
        "train", "--data", "data.csv", "--target", "price", "--out", "run",
    ];
    args.extend(FAST);
    let o = common::bin()
        .args(&args)
        .current_dir(&here)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = std::fs::read(here.join("run/model.safetensors")).unwrap();
    let ck = here.join("run/checkpoint/state.safetensors");
    let mut c = backprop::checkpoint::Checkpoint::load(&ck).unwrap();
    let mut argv = vec!["/old/backprop".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut v1 = serde_json::json!({
        "argv": argv,
        "cwd": here,
        "inputs": [{ "path": "data.csv", "bytes": 0, "fnv1a64": "" }],
        "train_config": c.extra["train_config"],
    });
    // The fingerprint as it was recorded: the path as typed, relative to `cwd`.
    v1["inputs"][0]["bytes"] = c.extra["inputs"][0]["bytes"].clone();
    v1["inputs"][0]["fnv1a64"] = c.extra["inputs"][0]["fnv1a64"].clone();
    c.extra = v1.clone();
    backprop::checkpoint::Checkpoint::save(&ck, &c.network, &c.state, &c.extra).unwrap();
    std::fs::remove_file(here.join("run/model.safetensors")).unwrap();
    let o = common::bin()
        .args(["train", "--resume"])
        .arg(here.join("run"))
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(here.join("run/model.safetensors")).unwrap(),
        model
    );

    v1["argv"] = serde_json::json!(["/old/backprop", "train", "--data", "my data.csv", "--gone"]);
    c.extra = v1;
    backprop::checkpoint::Checkpoint::save(&ck, &c.network, &c.state, &c.extra).unwrap();
    fails(
        &run(&["train", "--resume", here.join("run").to_str().unwrap()]),
        2,
        &[
            "written by an earlier backprop",
            "no longer parses",
            "backprop train --data 'my data.csv' --gone",
            &format!("in {}", here.display()),
            "--out NEW_DIR",
        ],
    );
}

/// `--resume` restores the saved settings, relative paths made absolute when the run
/// started: it works from any folder, without re-reading the command line or changing
/// the working folder.
#[test]
fn resume_works_from_another_folder() {
    let root = tmp("resume_cwd");
    let here = root.join("here");
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(bad("base_houses.csv"), here.join("data.csv")).unwrap();
    let mut args = vec![
        "train", "--data", "data.csv", "--target", "price", "--out", "run",
    ];
    args.extend(FAST);
    let o = common::bin()
        .args(&args)
        .current_dir(&here)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = std::fs::read(here.join("run/model.safetensors")).unwrap();
    std::fs::remove_file(here.join("run/model.safetensors")).unwrap();
    let o = common::bin()
        .args(["train", "--resume"])
        .arg(here.join("run"))
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(here.join("run/model.safetensors")).unwrap(),
        model
    );
    assert!(
        !elsewhere.join("run").exists(),
        "wrote into the current folder"
    );
}
