//! Folders of PNG and JPEG images, one sub-folder per class (torchvision's
//! `ImageFolder` convention: `DIR/<class>/<file>.png`), for training, `evaluate` and
//! `predict`.
//!
//! - Classes are the sub-folder names, sorted; files are read in sorted path order
//!   (never `read_dir`'s), so a folder gives the same model files on any machine.
//! - Every image must have the same size; none is resized. Images are greyscale
//!   (1 channel) if all of them are, else RGB (3 channels): greyscale images among
//!   colour ones are copied into the three channels (as torchvision's loader does), an
//!   alpha channel is dropped.
//! - Every value is a feature: `pixel_<row>_<col>` for greyscale (as MNIST's IDX
//!   files), `red_<row>_<col>`, `green_...`, `blue_...` for RGB, in channel, row, column
//!   order (the `C x H x W` the convolutions take). The scaling is fitted per channel on
//!   the training images: `minmax` (the default) maps 0-255 onto `[0, 1]`, `standard`
//!   subtracts each channel's mean and divides by its standard deviation (torchvision's
//!   `Normalize`), `quantile` maps each channel's quantiles, `none` keeps 0-255.

mod read;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use backprop::data::prep::{Feature, Preprocessor, ScaleKind, Target};
use backprop::data::split::split_rows;
use backprop::layer::Image;
use backprop::metrics::one_hot;
use backprop::{Dataset, Matrix};

use crate::images::{fit_pixel, pixel_name, rescale, ImageData};
use read::{decode_into, list_labelled, Expect, Labelled};

/// Name of the target of an image folder (the class folders' names).
pub const TARGET: &str = "class";

/// Names of the channels of RGB images, as their features are named.
const RGB: [&str; 3] = ["red", "green", "blue"];

/// Whether `path` is a PNG or JPEG file (by its extension).
pub fn is_image_file(path: &Path) -> bool {
    path.is_file() && read::has_image_extension(path)
}

/// Whether `path` is read as an image folder: any folder that is not one of MNIST's
/// IDX files (see `crate::images`).
pub fn is_folder(path: &Path) -> bool {
    path.is_dir() && !crate::images::is_image_folder(path)
}

/// What [`load`] reads and how it splits it.
pub struct Load<'a> {
    /// The training folder.
    pub dir: &'a Path,
    /// A second folder of test images (`--test DIR2`); else `test_fraction` of `dir`.
    pub test: Option<&'a Path>,
    pub scale: ScaleKind,
    pub valid_fraction: f64,
    pub test_fraction: f64,
    pub seed: u64,
    pub quiet: bool,
}

/// Loads an image folder for training: the training images less a seeded validation
/// and test share (or with the test images of `--test`), the scaling fitted per channel
/// on the training images. Each image is decoded straight into its row of its set's
/// matrix. Under mpirun each rank decodes only its shard of each set, and the channels'
/// value counts are summed over the ranks before the scaling is fitted (as for IDX).
pub fn load(l: &Load) -> Result<ImageData> {
    let set = list_labelled(l.dir)?;
    if set.classes.len() < 2 {
        bail!(
            "{}: only one class folder (`{}`); a classifier needs at least two: add a sub-folder \
             of images for each other class (DIR/<class>/<file>.png)",
            l.dir.display(),
            set.classes[0]
        );
    }
    let (shape, widened) = read::survey(&set.files, None)?;
    if widened > 0 && !l.quiet {
        eprintln!(
            "note: {}: {widened} greyscale image(s) among colour ones are read as RGB (the grey copied into each channel)",
            l.dir.display()
        );
    }
    let test_fraction = if l.test.is_some() {
        0.0
    } else {
        l.test_fraction
    };
    let split = split_rows(set.files.len(), l.valid_fraction, test_fraction, l.seed)
        .with_context(|| l.dir.display().to_string())?;
    let own = |mut rows: Vec<usize>| {
        rows.sort_unstable();
        crate::cluster::shard_rows(&rows)
    };
    let (train, valid, test) = (own(split.train), own(split.valid), own(split.test));
    let identity: Vec<usize> = (0..set.classes.len()).collect();
    let mut hist = vec![0u64; shape.channels * 256];
    let train = decode_rows(&set, &train, &identity, shape, Some(&mut hist))?;
    let has_valid = crate::cluster::totals([valid.len()])[0] > 0;
    let valid = has_valid
        .then(|| decode_rows(&set, &valid, &identity, shape, None))
        .transpose()?;
    let test = match l.test {
        Some(dir) => test_folder(dir, &set.classes, shape)?,
        None => decode_rows(&set, &test, &identity, shape, None)?,
    };
    crate::cluster::collective().sum_u64(&mut hist);
    let prep = preprocessor(shape, l.scale, &hist, set.classes);
    let classes = prep.target.width();
    let finish = |(mut x, y): (Matrix, Vec<usize>)| -> Result<Dataset> {
        rescale(&prep, &mut x);
        Ok(Dataset::new(x, one_hot(&y, classes))?)
    };
    Ok(ImageData {
        train: finish(train)?,
        valid: valid.map(finish).transpose()?,
        test: finish(test)?,
        shape,
        prep,
    })
}

/// The images of `--test DIR2` (this rank's shard), whose classes must be among the
/// training folder's and whose images must have the training images' shape.
fn test_folder(dir: &Path, classes: &[String], shape: Image) -> Result<(Matrix, Vec<usize>)> {
    let set = list_labelled(dir)?;
    let map = class_map(dir, &set, classes, "the training folder's")?;
    let expect = Expect {
        shape,
        of: "the training images",
    };
    read::survey(&set.files, Some(expect))?;
    let rows = crate::cluster::shard_rows(&(0..set.files.len()).collect::<Vec<_>>());
    decode_rows(&set, &rows, &map, shape, None)
}

/// The index in `classes` of each class of `set`, or an error naming a class folder
/// of `dir` that is not one of them (`whose` says whose classes they are).
fn class_map(dir: &Path, set: &Labelled, classes: &[String], whose: &str) -> Result<Vec<usize>> {
    set.classes
        .iter()
        .map(|name| {
            classes.iter().position(|c| c == name).with_context(|| {
                format!(
                    "{}: class folder `{name}` is not one of {whose} classes ({}); rename or remove it",
                    dir.join(name).display(),
                    classes.join(", ")
                )
            })
        })
        .collect()
}

/// Decodes images `rows` of `set` into a matrix (one row each, values `p / 255`) with
/// their classes mapped through `map`, counting values in `hist` when given.
fn decode_rows(
    set: &Labelled,
    rows: &[usize],
    map: &[usize],
    shape: Image,
    mut hist: Option<&mut [u64]>,
) -> Result<(Matrix, Vec<usize>)> {
    let mut x = Matrix::zeros(rows.len(), shape.len());
    for (i, &r) in rows.iter().enumerate() {
        decode_into(&set.files[r], shape, x.row_mut(i), hist.as_deref_mut())?;
    }
    let y = rows.iter().map(|&r| map[set.labels[r]]).collect();
    Ok((x, y))
}

/// The feature names of images of `shape`, in the order of their values.
fn feature_names(shape: Image) -> impl Iterator<Item = String> {
    let Image {
        channels,
        height,
        width,
    } = shape;
    (0..channels * height * width).map(move |j| {
        let (c, r, col) = (j / (height * width), j / width % height, j % width);
        match channels {
            1 => pixel_name(r, col),
            _ => format!("{}_{r}_{col}", RGB[c]),
        }
    })
}

/// The preprocessor of images of `shape` and `classes`: each channel's scaling fitted on
/// `hist` (its 256 value counts, see `crate::images::fit_pixel`), shared by every pixel
/// of the channel.
fn preprocessor(
    shape: Image,
    scale: ScaleKind,
    hist: &[u64],
    classes: Vec<String>,
) -> Preprocessor {
    let channels: Vec<Feature> = hist
        .chunks_exact(256)
        .map(|h| fit_pixel(h, scale, String::new()))
        .collect();
    let features = feature_names(shape)
        .enumerate()
        .map(|(j, name)| match channels[j / shape.area()].clone() {
            Feature::Numeric {
                median,
                scaler,
                constant,
                ..
            } => Feature::Numeric {
                name,
                median,
                scaler,
                constant,
            },
            other => other,
        })
        .collect();
    Preprocessor {
        features,
        target: Target::Classification {
            name: TARGET.to_string(),
            classes,
        },
    }
}

/// The image shape a model was trained on, read off its feature names (`pixel_r_c`, or
/// `red_r_c` ... `blue_r_c`); `None` for a model trained on a table.
pub fn model_shape(prep: &Preprocessor) -> Option<Image> {
    let last = prep.features.last()?.name();
    let mut parts = last.rsplitn(3, '_');
    let col: usize = parts.next()?.parse().ok()?;
    let row: usize = parts.next()?.parse().ok()?;
    let channels = match parts.next()? {
        "pixel" => 1,
        "blue" => 3,
        _ => return None,
    };
    let shape = Image {
        channels,
        height: row.checked_add(1)?,
        width: col.checked_add(1)?,
    };
    let numeric = prep
        .features
        .iter()
        .all(|f| matches!(f, Feature::Numeric { .. }));
    let names = feature_names(shape).eq(prep.features.iter().map(|f| f.name().to_string()));
    (numeric && names).then_some(shape)
}

/// The model's image shape and classes, or an error saying why it cannot read images.
fn model_images<'a>(prep: &'a Preprocessor, source: &Path) -> Result<(Image, &'a [String])> {
    let Target::Classification { classes, .. } = &prep.target else {
        bail!("{}: images, but the model predicts a number; give it data like the data it was trained on", source.display());
    };
    let Some(shape) = model_shape(prep) else {
        let first = prep.features.first().map_or("none", Feature::name);
        bail!(
            "{}: images, but the model was trained on a table ({} feature(s), the first: `{first}`); \
             give it data like the data it was trained on",
            source.display(),
            prep.features.len()
        );
    };
    Ok((shape, classes))
}

/// A labelled folder (`DIR/<class>/<file>.png`) as a data set for a model trained on
/// images: inputs scaled as in training, one-hot targets over the model's classes.
pub fn labelled_dataset(prep: &Preprocessor, dir: &Path) -> Result<Dataset> {
    let (shape, classes) = model_images(prep, dir)?;
    let set = list_labelled(dir)?;
    let map = class_map(dir, &set, classes, "the model's")?;
    let of = "the model's images";
    read::survey(&set.files, Some(Expect { shape, of }))?;
    let all: Vec<usize> = (0..set.files.len()).collect();
    let (mut x, y) = decode_rows(&set, &all, &map, shape, None)?;
    rescale(prep, &mut x);
    Ok(Dataset::new(x, one_hot(&y, classes.len()))?)
}

/// The images `predict` reads at `path`, with the name each is reported by: a single
/// file (its name), or a folder's images, directly in it or in sub-folders at any depth
/// (each by its path within the folder, `/`-separated), in sorted order.
pub fn files_to_predict(path: &Path) -> Result<Vec<(PathBuf, String)>> {
    if !path.is_dir() {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        return Ok(vec![(path.to_path_buf(), name)]);
    }
    let mut files = Vec::new();
    read::images_below(path, &mut files, 0)?;
    if files.is_empty() {
        bail!(
            "{}: no images (no .png, .jpg or .jpeg files in it or its sub-folders); check the path",
            path.display()
        );
    }
    Ok(files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(path).unwrap_or(&f);
            let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
            let name = parts.join("/");
            (f, name)
        })
        .collect())
}

/// Checks that every one of `files` fits the model's images (by their headers, before
/// anything is decoded or written); returns the model's classes.
pub fn check_for_model<'a>(
    prep: &'a Preprocessor,
    files: &[PathBuf],
    source: &Path,
) -> Result<&'a [String]> {
    let (shape, classes) = model_images(prep, source)?;
    let of = "the model's images";
    read::survey(files, Some(Expect { shape, of }))?;
    Ok(classes)
}

/// The network inputs of `files` (already checked by [`check_for_model`]), scaled as
/// in training.
pub fn inputs_for_model(prep: &Preprocessor, files: &[PathBuf]) -> Result<Matrix> {
    let Some(shape) = model_shape(prep) else {
        bail!("the model was not trained on images");
    };
    let mut x = Matrix::zeros(files.len(), shape.len());
    for (i, f) in files.iter().enumerate() {
        decode_into(f, shape, x.row_mut(i), None)?;
    }
    rescale(prep, &mut x);
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_name_channels_and_read_back_as_the_shape() {
        let grey = Image {
            channels: 1,
            height: 3,
            width: 2,
        };
        let rgb = Image {
            channels: 3,
            height: 2,
            width: 4,
        };
        let names: Vec<String> = feature_names(rgb).collect();
        assert_eq!(
            (names[0].as_str(), names[8].as_str(), names[23].as_str()),
            ("red_0_0", "green_0_0", "blue_1_3")
        );
        assert_eq!(feature_names(grey).nth(3).unwrap(), "pixel_1_1");
        for shape in [grey, rgb] {
            // Channel k holds only the value k: each channel gets its own scaling.
            let mut hist = vec![0u64; shape.channels * 256];
            (0..shape.channels).for_each(|k| hist[k * 256 + k] = 5);
            let prep = preprocessor(shape, ScaleKind::Standard, &hist, vec!["a".into()]);
            assert_eq!(model_shape(&prep), Some(shape));
            let mean = |j: usize| match &prep.features[j] {
                Feature::Numeric {
                    scaler: backprop::data::prep::Scaler::Standard { mean, .. },
                    ..
                } => *mean,
                f => panic!("{f:?}"),
            };
            let last = shape.len() - 1;
            assert_eq!(mean(last), (shape.channels - 1) as f64);
        }
        let mut table = preprocessor(grey, ScaleKind::Minmax, &[0; 256], vec![]);
        table.features.pop();
        assert_eq!(model_shape(&table), None, "a pixel missing");
    }
}
