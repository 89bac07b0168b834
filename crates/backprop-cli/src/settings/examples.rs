//! `backprop train --example NAME`: data sets that ship with backprop, each with the
//! settings documented for it: a layer of [`Options`] under the command line and the
//! `--config` file, which win over it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use backprop::data::csv::{CsvOptions, Table};
use backprop::data::prep::Task;
use backprop::OptimizerKind;

use super::options::Options;
use super::values::{Batch, Example, Lr, Scale, ScheduleKind};

/// scikit-learn's 8x8 digits: 64 pixel columns `pixel_<row>_<col>` (0-16) and `digit`.
pub const DIGITS: &[u8] = include_bytes!("../../../../data/digits/digits.csv");
/// Name the embedded digits go by in messages and run folders.
pub const DIGITS_NAME: &str = "digits.csv (embedded)";
/// Target column of the digits.
pub const DIGITS_TARGET: &str = "digit";

/// The embedded digits table.
pub fn digits() -> Result<Table> {
    Ok(Table::parse(
        Path::new(DIGITS_NAME),
        DIGITS,
        CsvOptions::default(),
    )?)
}

/// The repository's MNIST folder: `data/mnist` under the current folder, else the
/// one this binary was built from.
pub fn mnist_dir() -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("data/mnist"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"),
    ];
    match candidates.iter().find(|p| p.join("train-images-idx3-ubyte.gz").is_file()) {
        Some(p) => Ok(p.clone()),
        None => bail!(
            "--example mnist: the MNIST files are not in data/mnist (looked in {} and {}); run from the \
             repository root, or pass --data DIR with a folder holding the four MNIST files",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

/// The network of `--example mnist-cnn` (the one `bench/cnn.py` times).
pub const MNIST_CNN: &str = "conv 32 3x3 pad 1, relu, maxpool 2, conv 64 3x3 pad 1, relu, maxpool 2, flatten, dense 128 relu, dense 10";

/// The augmentation `--example mnist-cnn` puts before [`MNIST_CNN`]: random shifts of
/// up to 2 pixels while training (99.11% -> 99.35% test accuracy at 10 epochs; 99.19%
/// at 8; BENCHMARKS.md C1).
pub const MNIST_CNN_AUGMENT: &str = "shift 2";

/// Fills the settings of `--example NAME`, and of an image folder given with `--data`,
/// into the flags left unset; checks that no flag contradicts the data.
pub fn apply(a: &mut Options) -> Result<()> {
    match a.example {
        Some(Example::Mnist) => {
            if let Some(d) = &a.data {
                bail!("--example mnist reads data/mnist; leave out --data {} (or drop --example to train on it)", d.display());
            }
            a.data = Some(mnist_dir()?);
            image_settings(a)
        }
        Some(Example::MnistCnn) => {
            if let Some(d) = &a.data {
                bail!("--example mnist-cnn reads data/mnist; leave out --data {} (or drop --example to train on it)", d.display());
            }
            a.data = Some(mnist_dir()?);
            if a.hidden.is_none() {
                a.layers
                    .get_or_insert_with(|| format!("{MNIST_CNN_AUGMENT}, {MNIST_CNN}"));
            }
            cnn_settings(a);
            image_settings(a)
        }
        Some(Example::Digits) => {
            if let Some(d) = &a.data {
                bail!("--example digits uses the embedded digits; leave out --data {} (or drop --example to train on it)", d.display());
            }
            if a.test.is_some() {
                bail!(
                    "--example digits takes its test rows from the embedded data; leave out --test"
                );
            }
            a.target.get_or_insert_with(|| DIGITS_TARGET.to_string());
            a.scale.get_or_insert(Scale::Minmax);
            if a.layers.is_none() {
                a.hidden.get_or_insert_with(|| vec![128]);
            }
            a.batch_size.get_or_insert(Batch::Rows(32));
            a.epochs.get_or_insert(40);
            Ok(())
        }
        None if a
            .data
            .as_deref()
            .is_some_and(crate::images::is_image_folder) =>
        {
            image_settings(a)
        }
        None if a
            .data
            .as_deref()
            .is_some_and(crate::image_folder::is_folder) =>
        {
            folder_settings(a)
        }
        None => match a.data.as_deref() {
            Some(p) if crate::image_folder::is_image_file(p) => bail!(
                "--data {}: a single image; train on a folder of images with one sub-folder per class (DIR/<class>/<file>.png)",
                p.display()
            ),
            _ => Ok(()),
        },
    }
}

/// The documented MNIST settings: a 784-512-256-10 ReLU network, Adam at 0.001 annealed
/// to zero by a cosine schedule, batches of 128, 10 epochs, pixels mapped to [0, 1],
/// and all 60,000 training images trained on (no validation split).
fn image_settings(a: &mut Options) -> Result<()> {
    for (flag, given) in [
        ("--test", a.test.is_some()),
        ("--test-fraction", a.test_fraction.is_some()),
    ] {
        if given {
            bail!(
                "{flag} does not apply to an MNIST-format folder: its t10k files are the test set; leave out {flag}"
            );
        }
    }
    pixel_settings(a)
}

/// The settings of a folder of PNG/JPEG images (`DIR/<class>/<file>.png`): those of
/// MNIST, with the test images `--test DIR2` or a `--test-fraction` (0.2) of the folder,
/// and the batch size of tables (so that a folder of a few hundred images gets batches
/// of 16 rather than one full batch an epoch).
fn folder_settings(a: &mut Options) -> Result<()> {
    let table_flags = [
        ("--target", a.target.is_some()),
        ("--features", a.features.is_some()),
        ("--ignore", a.ignore.is_some()),
        ("--delimiter", a.delimiter.is_some()),
    ];
    if let (Some((flag, _)), Some(dir)) = (table_flags.iter().find(|f| f.1), &a.data) {
        bail!(
            "{}: is a directory, not a CSV file; give the path of a .csv file, or leave out {flag} \
             to learn from the images in its class sub-folders (DIR/<class>/<file>.png)",
            dir.display()
        );
    }
    if let Some(t) = a.test.as_deref().filter(|t| !t.is_dir()) {
        bail!(
            "--test {}: not a folder; with an image folder, --test takes a second folder laid out the same way (DIR2/<class>/<file>.png)",
            t.display()
        );
    }
    let batch = a.batch_size.take();
    pixel_settings(a)?;
    a.batch_size = batch;
    Ok(())
}

/// Settings shared by image data: no table flags; MNIST's documented training settings.
fn pixel_settings(a: &mut Options) -> Result<()> {
    for (flag, given) in [
        ("--target", a.target.is_some()),
        ("--features", a.features.is_some()),
        ("--ignore", a.ignore.is_some()),
        ("--target-transform", a.target_transform.is_some()),
        ("--delimiter", a.delimiter.is_some()),
    ] {
        if given {
            bail!(
                "{flag} does not apply to an image folder: every pixel is a feature and the class \
                 (digit, or class folder) is the target; leave out {flag}"
            );
        }
    }
    if a.task == Some(Task::Regress) {
        bail!("--task regress does not apply to an image folder: its labels are classes");
    }
    a.scale.get_or_insert(Scale::Minmax);
    a.valid_fraction.get_or_insert(0.0);
    if a.layers.is_none() {
        a.hidden.get_or_insert_with(|| vec![512, 256]);
    }
    a.optimizer.get_or_insert(OptimizerKind::Adam);
    a.lr.get_or_insert(Lr::Rate(0.001));
    a.weight_decay.get_or_insert(0.0);
    a.schedule.get_or_insert(ScheduleKind::Cosine);
    a.batch_size.get_or_insert(Batch::Rows(128));
    a.epochs.get_or_insert(10);
    Ok(())
}

/// The documented settings of `--example mnist-cnn`: SGD with momentum 0.9 at 0.05,
/// weight decay 0.0005, a cosine schedule, batches of 128, for the epochs below.
fn cnn_settings(a: &mut Options) {
    a.optimizer.get_or_insert(OptimizerKind::Sgd);
    a.lr.get_or_insert(Lr::Rate(0.05));
    a.momentum.get_or_insert(0.9);
    a.weight_decay.get_or_insert(0.0005);
    a.schedule.get_or_insert(ScheduleKind::Cosine);
    a.batch_size.get_or_insert(Batch::Rows(128));
    a.epochs.get_or_insert(MNIST_CNN_EPOCHS);
}

/// Epochs of `--example mnist-cnn`.
pub const MNIST_CNN_EPOCHS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_digits_parse() {
        let t = digits().unwrap();
        assert_eq!((t.rows(), t.headers.len()), (1797, 65));
        assert_eq!(t.headers[64], DIGITS_TARGET);
        assert_eq!(t.headers[9], "pixel_1_1");
    }

    #[test]
    fn flags_win_over_example_settings() {
        let mut a = Options {
            example: Some(Example::Digits),
            epochs: Some(3),
            ..Options::default()
        };
        apply(&mut a).unwrap();
        assert_eq!(
            (a.epochs, a.hidden.as_deref(), a.target.as_deref()),
            (Some(3), Some(&[128][..]), Some("digit"))
        );
        let mut a = Options {
            example: Some(Example::Digits),
            data: Some("x.csv".into()),
            ..Options::default()
        };
        assert!(apply(&mut a)
            .unwrap_err()
            .to_string()
            .contains("leave out --data x.csv"));
    }

    #[test]
    fn image_folders_refuse_table_flags() {
        let dir = std::env::temp_dir().join(format!("backprop-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train-images-idx3-ubyte"), b"").unwrap();
        let mut a = Options {
            data: Some(dir.clone()),
            target: Some("y".into()),
            ..Options::default()
        };
        let e = apply(&mut a).unwrap_err().to_string();
        assert!(
            e.contains("--target does not apply to an image folder"),
            "{e}"
        );
        let mut a = Options {
            data: Some(dir),
            lr: Some("0.01".parse().unwrap()),
            ..Options::default()
        };
        apply(&mut a).unwrap();
        assert_eq!(
            (a.lr, a.epochs, a.valid_fraction),
            (Some("0.01".parse().unwrap()), Some(10), Some(0.0))
        );
        std::fs::remove_dir_all(a.data.unwrap()).unwrap();
    }
}
