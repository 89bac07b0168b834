//! Folders of PNG images, one sub-folder per class (torchvision's `ImageFolder`), made
//! here with the `image` crate: `train --data DIR` learns them through a convolution
//! (greyscale and RGB), `predict` names each file, `evaluate` scores a labelled folder,
//! and every kind of bad folder exits 2 naming the file and what to do.

mod common;
use std::path::{Path, PathBuf};

use common::{json, ok, run, tmp};

/// A small, seeded generator (no dependency, same images everywhere).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(n)) as u32
    }
}

/// An 8x8 greyscale image of `class`: a bright horizontal bar (0), vertical bar (1) or
/// 3x3 square (2) at a random place over a noisy dark background.
fn grey_shape(class: usize, rng: &mut Lcg) -> image::GrayImage {
    let at = rng.next(6) as usize + 1;
    let other = rng.next(6) as usize + 1;
    image::GrayImage::from_fn(8, 8, |x, y| {
        let (x, y) = (x as usize, y as usize);
        let on = match class {
            0 => y == at,
            1 => x == at,
            _ => x.abs_diff(at) <= 1 && y.abs_diff(other) <= 1,
        };
        let v = if on { 170 + rng.next(86) } else { rng.next(90) };
        image::Luma([v as u8])
    })
}

/// An 8x8 colour image of `class`: a bar in the red channel (0) or the blue one (1),
/// horizontal or vertical at random, over the same noise in every channel.
fn rgb_bar(class: usize, rng: &mut Lcg) -> image::RgbImage {
    let at = rng.next(8);
    let across = rng.next(2) == 0;
    image::RgbImage::from_fn(8, 8, |x, y| {
        let noise = rng.next(100) as u8;
        let mut px = [noise; 3];
        if (across && y == at) || (!across && x == at) {
            px[if class == 0 { 0 } else { 2 }] = 200 + rng.next(56) as u8;
        }
        image::Rgb(px)
    })
}

/// Writes `per_class` images of each class into `dir/<class>/NNN.png`.
fn grey_folder(dir: &Path, classes: &[&str], per_class: usize, seed: u64) {
    let mut rng = Lcg(seed);
    for (c, name) in classes.iter().enumerate() {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        for i in 0..per_class {
            grey_shape(c, &mut rng)
                .save(dir.join(name).join(format!("{i:03}.png")))
                .unwrap();
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains on `data` with `extra` flags, writing the model to `out`; returns the metrics.
fn train(data: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let metrics = out.with_extension("json");
    let mut args = vec![
        "train",
        "--data",
        s(data),
        "--no-baseline",
        "--quiet",
        "--out",
        s(out),
        "--metrics-json",
        s(&metrics),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    json(&metrics)
}

/// Runs `args`, expects exit code 2, and returns stderr.
fn fails(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

const SHAPES: [&str; 3] = ["bar_h", "bar_v", "square"];
const CNN: &str =
    "conv 8 3x3 pad 1 relu, maxpool 2, conv 16 3x3 pad 1 relu, maxpool 2, flatten, dense 3";

#[test]
fn a_grey_folder_trains_a_cnn_then_predicts_and_evaluates() {
    let root = tmp("imgfolder-grey");
    let (data, held, model) = (root.join("train"), root.join("held"), root.join("model"));
    grey_folder(&data, &SHAPES, 80, 1);
    grey_folder(&held, &SHAPES, 20, 2);
    let flags = ["--layers", CNN, "--epochs", "40", "--lr", "0.01"];
    let m = train(&data, &model, &flags);
    // 48 test images (a fifth of 240); chance is 1/3. Measured: 1.0 (and 1.0 on the
    // 60 held-out images below).
    let acc = m["test"]["accuracy"].as_f64().unwrap();
    eprintln!("test accuracy {acc}");
    assert!(acc >= 0.9, "test accuracy {acc}");

    let meta = std::fs::read_to_string(model.join("model.json")).unwrap();
    for want in [r#""bar_h""#, r#""square""#, r#""pixel_7_7""#, r#""class""#] {
        assert!(meta.contains(want), "{want} in {meta}");
    }
    let inspect = ok(&["inspect", "--model", s(&model)]);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("conv2d 1x8x8 -> 8x8x8"), "{text}");

    // A held-out folder: evaluate it, and predict each file by its path in the folder.
    let e = ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&held),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(e["rows"], 60);
    let held_acc = e["test"]["accuracy"].as_f64().unwrap();
    eprintln!("held-out accuracy {held_acc}");
    assert!(held_acc >= 0.9, "held-out accuracy {held_acc}");

    let p = ok(&["predict", "--model", s(&model), "--data", s(&held)]);
    let csv = String::from_utf8_lossy(&p.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0], "image,class_predicted,p_bar_h,p_bar_v,p_square",
        "{csv}"
    );
    assert_eq!(lines.len(), 61);
    assert!(lines[1].starts_with("bar_h/000.png,"), "{}", lines[1]);
    assert!(lines[60].starts_with("square/019.png,"), "{}", lines[60]);
    let right = lines[1..]
        .iter()
        .filter(|l| {
            let mut f = l.split(',');
            let (name, pred) = (f.next().unwrap(), f.next().unwrap());
            name.starts_with(&format!("{pred}/"))
        })
        .count();
    assert!(right as f64 >= 0.9 * 60.0, "{right} of 60 right");

    // One file, by its name; the same prediction as in the folder.
    let one = held.join("bar_v").join("003.png");
    let p = ok(&["predict", "--model", s(&model), "--data", s(&one)]);
    let single = String::from_utf8_lossy(&p.stdout);
    let row = single.lines().nth(1).unwrap();
    assert!(row.starts_with("003.png,"), "{single}");
    let in_folder = lines
        .iter()
        .find(|l| l.starts_with("bar_v/003.png,"))
        .unwrap();
    // The same class and probabilities (to rounding: a batch of 1 and one of 60 may
    // sum in different orders).
    let fields = |l: &str| l.split(',').skip(1).map(str::to_string).collect::<Vec<_>>();
    let (a, b) = (fields(row), fields(in_folder));
    assert_eq!(a[0], b[0], "{row} vs {in_folder}");
    for (x, y) in a[1..].iter().zip(&b[1..]) {
        let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
        assert!((x - y).abs() <= 1e-5, "{row} vs {in_folder}");
    }

    // A JPEG copy of it reads as well (lossy, so only the class is compared).
    let jpeg = root.join("copy.jpg");
    image::open(&one).unwrap().save(&jpeg).unwrap();
    let p = ok(&["predict", "--model", s(&model), "--data", s(&jpeg)]);
    let out = String::from_utf8_lossy(&p.stdout);
    assert!(out.contains("\ncopy.jpg,bar_v,"), "{out}");

    // --test DIR2: the held-out folder is the test set.
    let with_test = train(
        &data,
        &root.join("model2"),
        &[&flags[..], &["--test", s(&held)]].concat(),
    );
    assert_eq!(with_test["test"]["rows"].as_u64(), Some(60), "{with_test}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_same_folder_gives_the_same_model_files() {
    let root = tmp("imgfolder-same");
    let data = root.join("data");
    grey_folder(&data, &SHAPES[..2], 12, 3);
    let flags = [
        "--layers",
        CNN.replace("dense 3", "dense 2").leak(),
        "--epochs",
        "3",
    ];
    train(&data, &root.join("a"), &flags);
    train(
        &data,
        &root.join("b"),
        &[&flags[..], &["--threads", "1"]].concat(),
    );
    for f in ["model.safetensors", "model.json"] {
        let (a, b) = (root.join("a").join(f), root.join("b").join(f));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{f} differs"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_rgb_folder_trains_through_a_conv_layer_with_per_channel_scaling() {
    let root = tmp("imgfolder-rgb");
    let (data, model) = (root.join("data"), root.join("model"));
    let mut rng = Lcg(7);
    for (c, name) in ["blue", "red"].iter().enumerate() {
        std::fs::create_dir_all(data.join(name)).unwrap();
        for i in 0..80 {
            rgb_bar(1 - c, &mut rng)
                .save(data.join(name).join(format!("{i:02}.png")))
                .unwrap();
        }
    }
    // One greyscale image among the colour ones is read as RGB.
    grey_shape(0, &mut rng)
        .save(data.join("red").join("grey.png"))
        .unwrap();
    let m = train(
        &data,
        &model,
        &[
            "--layers",
            "conv 4 3x3 pad 1 relu, maxpool 2, flatten, dense 2",
            "--scale",
            "standard",
            "--epochs",
            "40",
            "--lr",
            "0.01",
        ],
    );
    // 32 test images (a fifth of 161); chance is 1/2. Measured: 1.0.
    let acc = m["test"]["accuracy"].as_f64().unwrap();
    eprintln!("test accuracy {acc}");
    assert!(acc >= 0.9, "test accuracy {acc}");
    let meta = json(&model.join("model.json"));
    let text = meta.to_string();
    assert!(text.contains(r#""channels":3"#), "{text}");
    // One standard scaling per channel, shared by its pixels, and the channels differ.
    let features = find_features(&meta);
    let scaler = |name: &str| {
        let f = features.iter().find(|f| f["name"] == name).unwrap();
        (
            f["scaler"]["mean"].as_f64().unwrap(),
            f["scaler"]["std"].as_f64().unwrap(),
        )
    };
    assert_eq!(features.len(), 3 * 64);
    assert_eq!(scaler("red_0_0"), scaler("red_7_7"));
    assert_eq!(scaler("blue_0_0"), scaler("blue_3_5"));
    assert_ne!(scaler("red_0_0"), scaler("green_0_0"));
    // A grey model refuses a colour image; this colour model reads a grey one.
    let p = ok(&[
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&data.join("red/grey.png")),
    ]);
    assert!(String::from_utf8_lossy(&p.stdout).contains("grey.png,"));
    let _ = std::fs::remove_dir_all(&root);
}

/// The preprocessor's features in `model.json`, wherever the file nests them.
fn find_features(v: &serde_json::Value) -> Vec<serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => match m.get("features") {
            Some(serde_json::Value::Array(a))
                if a.first().is_some_and(|f| f["name"].is_string()) =>
            {
                a.clone()
            }
            _ => m.values().flat_map(find_features).collect(),
        },
        serde_json::Value::Array(a) => a.iter().flat_map(find_features).collect(),
        _ => Vec::new(),
    }
}

/// A fresh copy of a good two-class folder to spoil.
fn good(name: &str) -> PathBuf {
    let dir = tmp(name);
    grey_folder(&dir, &SHAPES[..2], 6, 4);
    dir
}

#[test]
fn bad_folders_exit_2_naming_the_file() {
    let out = tmp("imgfolder-bad-out");
    let train_on = |dir: &Path| fails(&["train", "--data", s(dir), "--quiet", "--out", s(&out)]);

    let d = good("imgfolder-corrupt");
    std::fs::write(d.join("bar_v").join("002.png"), b"not a png at all").unwrap();
    let e = train_on(&d);
    assert!(
        e.contains("bar_v/002.png: not a readable PNG or JPEG image"),
        "{e}"
    );

    let d = good("imgfolder-sizes");
    image::GrayImage::new(9, 8)
        .save(d.join("bar_h").join("003.png"))
        .unwrap();
    let e = train_on(&d);
    assert!(
        e.contains("bar_h/003.png: 9x8 pixels (width x height), but ")
            && e.contains("bar_h/000.png is 8x8")
            && e.contains("never resized"),
        "{e}"
    );

    let d = good("imgfolder-one-class");
    std::fs::remove_dir_all(d.join("bar_v")).unwrap();
    let e = train_on(&d);
    assert!(e.contains("only one class folder (`bar_h`)"), "{e}");

    let d = good("imgfolder-empty-class");
    std::fs::create_dir_all(d.join("cat")).unwrap();
    std::fs::write(d.join("cat").join("notes.txt"), b"no images here").unwrap();
    let e = train_on(&d);
    assert!(e.contains("cat: an empty class folder"), "{e}");

    let d = good("imgfolder-one-file");
    let e = train_on(&d.join("bar_h").join("000.png"));
    assert!(
        e.contains("000.png: a single image; train on a folder"),
        "{e}"
    );

    let d = tmp("imgfolder-nothing");
    std::fs::create_dir_all(&d).unwrap();
    let e = train_on(&d);
    assert!(e.contains("imgfolder-nothing: no images"), "{e}");

    let d = good("imgfolder-loose");
    grey_shape(0, &mut Lcg(9))
        .save(d.join("stray.png"))
        .unwrap();
    let e = train_on(&d);
    assert!(
        e.contains("stray.png: an image outside any class folder"),
        "{e}"
    );

    let d = good("imgfolder-layers");
    let e = fails(&[
        "train",
        "--data",
        s(&d),
        "--quiet",
        "--layers",
        "conv 4 9x9, flatten, dense 2",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("--layers item 1 `conv 4 9x9` does not fit 1x8x8 images"),
        "{e}"
    );

    // --test DIR2 must hold the training classes and size.
    let d = good("imgfolder-test");
    let t = tmp("imgfolder-test2");
    grey_folder(&t, &["bar_h", "dog"], 2, 5);
    let e = fails(&[
        "train",
        "--data",
        s(&d),
        "--test",
        s(&t),
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("class folder `dog` is not one of the training folder's classes (bar_h, bar_v)"),
        "{e}"
    );
    for d in [d, t] {
        let _ = std::fs::remove_dir_all(d);
    }
    for name in [
        "corrupt",
        "sizes",
        "one-class",
        "empty-class",
        "one-file",
        "nothing",
        "loose",
        "layers",
    ] {
        let _ = std::fs::remove_dir_all(tmp(&format!("imgfolder-{name}")));
    }
}

#[test]
fn predict_refuses_images_unlike_the_models() {
    let root = good("imgfolder-predict");
    let model = tmp("imgfolder-predict-model");
    train(
        &root,
        &model,
        &["--layers", "conv 2 3x3, flatten, dense 2", "--epochs", "1"],
    );
    let big = root.join("big.png");
    image::GrayImage::new(10, 12).save(&big).unwrap();
    let e = fails(&["predict", "--model", s(&model), "--data", s(&big)]);
    assert!(
        e.contains("big.png: 10x12 pixels (width x height), but the model's images are 8x8"),
        "{e}"
    );
    let colour = root.join("colour.png");
    image::RgbImage::new(8, 8).save(&colour).unwrap();
    let e = fails(&["predict", "--model", s(&model), "--data", s(&colour)]);
    assert!(
        e.contains("colour.png: a colour image, but the model's images are greyscale"),
        "{e}"
    );
    let corrupt = root.join("bad.jpg");
    std::fs::write(&corrupt, [0xff, 0xd8, 0xff, 0x00, 1, 2, 3]).unwrap();
    let e = fails(&["predict", "--model", s(&model), "--data", s(&corrupt)]);
    assert!(
        e.contains("bad.jpg: not a readable PNG or JPEG image"),
        "{e}"
    );
    // Evaluate on a folder with a class the model does not know.
    let other = tmp("imgfolder-predict-other");
    grey_folder(&other, &["bar_h", "zebra"], 2, 6);
    let e = fails(&["evaluate", "--model", s(&model), "--data", s(&other)]);
    assert!(
        e.contains("class folder `zebra` is not one of the model's classes"),
        "{e}"
    );
    for d in [root, other, model] {
        let _ = std::fs::remove_dir_all(d);
    }
}
