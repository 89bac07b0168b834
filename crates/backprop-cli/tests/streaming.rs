//! `predict` and `evaluate` read their input a chunk at a time (`--chunk-rows`): the
//! output must not depend on where the chunks break, bad rows anywhere must be refused
//! before anything is written, and the metrics summed over chunks must be those of the
//! whole file.

mod common;

use common::{bin, fixture, ok, run, tmp};
use std::path::{Path, PathBuf};

/// A small model trained on `data` (`target`), in a fresh folder called `name`.
fn model(name: &str, data: &str, target: &str) -> PathBuf {
    let out = tmp(name);
    ok(&[
        "train",
        "--data",
        fixture(data).to_str().unwrap(),
        "--target",
        target,
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    out
}

fn predict(model: &Path, data: &Path, chunk: usize) -> Vec<u8> {
    ok(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--chunk-rows",
        &chunk.to_string(),
    ])
    .stdout
}

#[test]
fn predicting_in_chunks_equals_predicting_the_pieces() {
    // Text, missing cells and an unseen category, across 300 rows.
    let m = model("stream-pieces", "houses_mixed.csv", "MedHouseVal");
    let text = std::fs::read_to_string(fixture("houses_mixed.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let dir = m.join("pieces");
    std::fs::create_dir_all(&dir).unwrap();
    for chunk in [1, 64, 299, 300, 301] {
        let whole = predict(&m, &fixture("houses_mixed.csv"), chunk);
        let mut joined: Vec<u8> = Vec::new();
        for (i, piece) in rows.chunks(chunk).enumerate() {
            let path = dir.join(format!("{chunk}-{i}.csv"));
            std::fs::write(&path, format!("{header}\n{}\n", piece.join("\n"))).unwrap();
            let out = predict(&m, &path, chunk);
            // Every piece's output starts with the header line; keep the first.
            let body = if i == 0 {
                &out[..]
            } else {
                let nl = out.iter().position(|&b| b == b'\n').unwrap();
                &out[nl + 1..]
            };
            joined.extend_from_slice(body);
        }
        assert_eq!(
            String::from_utf8(whole).unwrap(),
            String::from_utf8(joined).unwrap(),
            "chunks of {chunk} rows"
        );
    }
}

#[test]
fn a_column_that_turns_to_text_late_is_typed_as_the_whole_file() {
    // `Latitude` holds numbers in the first 100 rows and words after: the whole file
    // makes it text, which a model that knows it as a number refuses, naming the first
    // cell (line 2), whichever chunk is read first.
    let m = model("stream-late-text", "houses.csv", "MedHouseVal");
    let text = std::fs::read_to_string(fixture("houses.csv")).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let mut f: Vec<&str> = l.split(',').collect();
        if i > 100 {
            f[6] = "north";
        }
        out.push_str(&f.join(","));
        out.push('\n');
    }
    let path = m.join("late.csv");
    std::fs::write(&path, out).unwrap();
    for chunk in ["10", "16384"] {
        let o = run(&[
            "predict",
            "--model",
            m.to_str().unwrap(),
            "--data",
            path.to_str().unwrap(),
            "--chunk-rows",
            chunk,
        ]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("late.csv:2:7:")
                && err
                    .contains("`Latitude` was numeric in training but holds text such as `33.68`"),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "nothing is written");
    }
}

#[test]
fn a_bad_row_in_a_later_chunk_is_refused_before_anything_is_written() {
    let m = model("stream-bad", "houses.csv", "MedHouseVal");
    let text = std::fs::read_to_string(fixture("houses.csv")).unwrap();
    let out = m.join("pred.csv");
    for (what, expect) in [
        (
            "word",
            "bad.csv:152:2: column `HouseAge` is numeric except for 1 value(s): `abc` on line 152",
        ),
        ("short", "bad.csv:152:9: too few fields: 8 instead of 9"),
        ("inf", "bad.csv:152:2: column `HouseAge` holds `inf`"),
    ] {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        // Line 152 (row 151) is in the third chunk of 64 rows.
        let mut f: Vec<&str> = lines[151].split(',').collect();
        match what {
            "word" => f[1] = "abc",
            "inf" => f[1] = "inf",
            _ => {
                f.pop();
            }
        }
        lines[151] = f.join(",");
        let bad = m.join("bad.csv");
        std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
        std::fs::write(&out, "an earlier good file\n").unwrap();
        let o = run(&[
            "predict",
            "--model",
            m.to_str().unwrap(),
            "--data",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--chunk-rows",
            "64",
        ]);
        assert_eq!(o.status.code(), Some(2), "{what}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{what}: {err}");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "an earlier good file\n",
            "{what}: the earlier output is untouched"
        );
        let left: Vec<String> = std::fs::read_dir(&m)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{what}: temporary files left: {left:?}");
        // Through standard input and output: an error and no output at all.
        let o = bin()
            .args([
                "predict",
                "--model",
                m.to_str().unwrap(),
                "--data",
                "-",
                "--chunk-rows",
                "64",
            ])
            .stdin(std::fs::File::open(&bad).unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{what}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&expect.replace("bad.csv", "<stdin>")),
            "{what}: {err}"
        );
        assert!(o.stdout.is_empty(), "{what}: nothing on standard output");
    }
    // A good run replaces the earlier file and reads standard input in chunks too.
    let o = bin()
        .args([
            "predict",
            "--model",
            m.to_str().unwrap(),
            "--data",
            "-",
            "--out",
            out.to_str().unwrap(),
            "--chunk-rows",
            "64",
        ])
        .stdin(std::fs::File::open(fixture("houses.csv")).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        predict(&m, &fixture("houses.csv"), 64)
    );
}

fn evaluate(model: &Path, data: &Path, chunk: usize) -> serde_json::Value {
    let o = ok(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
        "--chunk-rows",
        &chunk.to_string(),
    ]);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn evaluating_in_chunks_gives_the_metrics_of_the_predictions() {
    // Regression: RMSE, MAE and R² recomputed from `predict`'s output (whole file).
    let m = model("stream-eval", "houses.csv", "MedHouseVal");
    let data = fixture("houses.csv");
    let pred = String::from_utf8(predict(&m, &data, 16384)).unwrap();
    let pairs: Vec<(f64, f64)> = pred
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            // The target is read back through f32, as `evaluate` sees it.
            (f[8] as f32 as f64, f[9])
        })
        .collect();
    let n = pairs.len() as f64;
    let rmse = (pairs.iter().map(|(y, p)| (p - y).powi(2)).sum::<f64>() / n).sqrt();
    let mae = pairs.iter().map(|(y, p)| (p - y).abs()).sum::<f64>() / n;
    let mean = pairs.iter().map(|(y, _)| y).sum::<f64>() / n;
    let tot = pairs.iter().map(|(y, _)| (y - mean).powi(2)).sum::<f64>();
    let r2 = 1.0 - rmse * rmse * n / tot;
    for chunk in [1, 7, 300, 16384] {
        let e = evaluate(&m, &data, chunk);
        assert_eq!(e["rows"], 300);
        for (k, want) in [("rmse", rmse), ("mae", mae), ("r2", r2)] {
            let got = e["test"][k].as_f64().unwrap();
            // The targets go through f32 (standardised, then back), so they match
            // the file's to about 1e-7 relative.
            assert!((got - want).abs() < 1e-5, "{chunk}: {k} {got} vs {want}");
        }
    }

    // Classification: accuracy, log-loss, per-class counts and the confusion matrix
    // are the same whatever the chunks.
    let m = model("stream-eval-iris", "iris.csv", "target");
    let data = fixture("iris.csv");
    let whole = evaluate(&m, &data, 16384);
    assert_eq!(whole["rows"], 150);
    let confusion = &whole["test"]["confusion"];
    let total: u64 = confusion
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, 150);
    for chunk in [1, 8, 149] {
        let e = evaluate(&m, &data, chunk);
        let (a, b) = (&e["test"], &whole["test"]);
        assert_eq!(a["confusion"], b["confusion"], "{chunk}");
        assert_eq!(a["per_class"], b["per_class"], "{chunk}");
        assert_eq!(a["accuracy"], b["accuracy"], "{chunk}");
        let (la, lb) = (
            a["log_loss"].as_f64().unwrap(),
            b["log_loss"].as_f64().unwrap(),
        );
        assert!(
            (la - lb).abs() < 1e-6 * lb.max(1e-3),
            "{chunk}: {la} vs {lb}"
        );
    }
}
