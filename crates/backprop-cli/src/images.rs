//! Image data in MNIST's IDX format: a folder of the four MNIST files for training and
//! evaluation, or a single IDX image file for prediction.
//!
//! Every pixel is one input feature, named `pixel_<row>_<col>` (as in the digits CSV),
//! so the model file records the image size and the pixel scaling like any other
//! feature.

use std::path::Path;

use anyhow::{bail, Result};
use backprop::data::idx::{self, IdxImages, MNIST_CLASSES};
use backprop::data::prep::{Feature, Preprocessor, ScaleKind, Scaler, Target};
use backprop::data::split::split_rows;
use backprop::metrics::one_hot;
use backprop::{Dataset, Matrix};

/// Name of the target of image data (the digit shown).
pub const TARGET: &str = "digit";

/// Whether `path` is a folder of MNIST-format IDX files (rather than a CSV file): a
/// folder holding at least one file named like `*idx3-ubyte*` or `*idx1-ubyte*`, so
/// that a folder missing some of the four files gets an error naming them.
pub fn is_image_folder(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.contains("idx3-ubyte") || name.contains("idx1-ubyte")
    })
}

/// Whether `path` is an IDX file (by its first bytes: gzip, or the IDX magic).
pub fn is_idx_file(path: &Path) -> bool {
    let mut head = [0u8; 4];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    read.is_ok()
        && (head[..2] == [0x1f, 0x8b]
            || u32::from_be_bytes(head) == idx::IMAGES_MAGIC
            || u32::from_be_bytes(head) == idx::LABELS_MAGIC)
}

/// Training, validation and test sets of an image folder, ready to train on.
pub struct ImageData {
    /// The pixel scaling and the classes, saved with the model.
    pub prep: Preprocessor,
    /// Training images (all of the folder's training file, less the validation share).
    pub train: Dataset,
    /// Validation images taken from the training file, if `valid_fraction > 0`.
    pub valid: Option<Dataset>,
    /// The folder's test images (`t10k-*`).
    pub test: Dataset,
    /// The images' shape (one channel).
    pub shape: backprop::layer::Image,
}

/// Loads an MNIST-format folder; `valid_fraction` of the training images (seeded) are
/// held out for validation. `scale` decides the pixel scaling: `minmax` maps the pixel
/// range 0-255 onto `[0, 1]` (the same for every pixel), `standard` and `quantile` are
/// fitted per pixel on the training images, `none` keeps 0-255.
///
/// The files are streamed and only the images this process holds are kept: all of them
/// for one process; under mpirun, the rank's shard of each set (every K-th of the
/// training, validation and test images, in file order, starting at its rank), with the
/// per-pixel scaling fitted on every rank's training images from pixel histograms
/// summed over the ranks (see [`preprocessor`] and `crate::cluster`).
pub fn load_folder(
    dir: &Path,
    scale: ScaleKind,
    valid_fraction: f64,
    seed: u64,
) -> Result<ImageData> {
    let files = idx::mnist_files(dir)?;
    let [count, rows, cols] = dims3(&files[0])?;
    let split = split_rows(count, valid_fraction, 0.0, seed)?;
    let (mut train, mut valid) = (split.train, split.valid);
    train.sort_unstable();
    valid.sort_unstable();
    let (train, valid) = (
        crate::cluster::shard_rows(&train),
        crate::cluster::shard_rows(&valid),
    );
    let mut keep: Vec<usize> = train.iter().chain(&valid).copied().collect();
    keep.sort_unstable();
    let (images, labels) = read_pair(&files[0], &files[1], count, &keep)?;
    let local = |rows: &[usize]| -> Vec<usize> {
        rows.iter()
            .map(|r| keep.binary_search(r).expect("kept above"))
            .collect()
    };
    let (train, valid) = (local(&train), local(&valid));

    let [test_count, test_rows, test_cols] = dims3(&files[2])?;
    if (test_rows, test_cols) != (rows, cols) {
        bail!(
            "{}: test images are {test_rows}x{test_cols} but training images ({}) are {rows}x{cols}; both sets must have the same image size",
            files[2].display(),
            files[0].display()
        );
    }
    let own_test = crate::cluster::shard_rows(&(0..test_count).collect::<Vec<_>>());
    let (test_images, test_labels) = read_pair(&files[2], &files[3], test_count, &own_test)?;

    let mut hist = vec![0u64; rows * cols * 256];
    for &i in &train {
        for (j, &p) in images.image(i).iter().enumerate() {
            hist[j * 256 + usize::from(p)] += 1;
        }
    }
    crate::cluster::collective().sum_u64(&mut hist);
    let prep = preprocessor(cols, scale, &hist);
    // Only the selected images become f32, already scaled.
    let set = |images: &IdxImages, y: &[u8], rows: &[usize]| -> Result<Dataset> {
        let pixels = rows
            .iter()
            .flat_map(|&i| images.image(i).iter().map(|&p| f32::from(p) / 255.0))
            .collect();
        let mut x =
            Matrix::from_vec(rows.len(), images.pixels_per_image(), pixels).expect("whole images");
        rescale(&prep, &mut x);
        let y: Vec<usize> = rows.iter().map(|&i| usize::from(y[i])).collect();
        Ok(Dataset::new(x, one_hot(&y, MNIST_CLASSES))?)
    };
    let train_set = set(&images, &labels, &train)?;
    let has_valid = crate::cluster::totals([valid.len()])[0] > 0;
    let valid_set = if has_valid {
        Some(set(&images, &labels, &valid)?)
    } else {
        None
    };
    drop(images);
    let all_test: Vec<usize> = (0..own_test.len()).collect();
    let test = set(&test_images, &test_labels, &all_test)?;
    Ok(ImageData {
        prep,
        train: train_set,
        valid: valid_set,
        test,
        shape: backprop::layer::Image {
            channels: 1,
            height: rows,
            width: cols,
        },
    })
}

/// The `[count, rows, cols]` an IDX image file's header declares.
fn dims3(path: &Path) -> Result<[usize; 3]> {
    let d = idx::read_dims(path, idx::IMAGES_MAGIC)?;
    Ok([d[0], d[1], d[2]])
}

/// Images `keep` of an image file and their labels, checked against each other.
fn read_pair(
    images_path: &Path,
    labels_path: &Path,
    count: usize,
    keep: &[usize],
) -> Result<(IdxImages, Vec<u8>)> {
    let images = idx::read_rows(images_path, idx::IMAGES_MAGIC, Some(keep))?.into_images();
    let label_count = idx::read_dims(labels_path, idx::LABELS_MAGIC)?[0];
    if label_count != count {
        bail!(
            "{}: {label_count} labels, but {} has {count} images; the two files must come from the same set (train with train, t10k with t10k)",
            labels_path.display(),
            images_path.display()
        );
    }
    let labels = idx::read_rows(labels_path, idx::LABELS_MAGIC, Some(keep))?.data;
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= MNIST_CLASSES) {
        let max = labels.iter().copied().max().unwrap_or(0);
        bail!(
            "{}: label {} at position {} (largest label: {max}); MNIST-format labels are the digits 0-9. For another number of classes, export the data to CSV and train with --task classify",
            labels_path.display(),
            labels[i],
            keep[i]
        );
    }
    Ok((images, labels))
}

/// The target of MNIST-format data: the ten digits.
fn classes_target() -> Target {
    Target::Classification {
        name: TARGET.to_string(),
        classes: (0..MNIST_CLASSES).map(|c| c.to_string()).collect(),
    }
}

/// The preprocessor of images `cols` pixels wide: one numeric feature per pixel, and
/// the digits as classes, fitted from `hist`, the count of each value (0-255) of each
/// pixel over the training images (256 counts per pixel; summed over the ranks under
/// mpirun). Medians, quantiles, minima and maxima read off the counts are exactly
/// those of the values themselves, and so is the mean (the pixel sums are whole
/// numbers); the standard deviation sums squared deviations value by value.
fn preprocessor(cols: usize, scale: ScaleKind, hist: &[u64]) -> Preprocessor {
    let features = hist
        .chunks_exact(256)
        .enumerate()
        .map(|(j, h)| fit_pixel(h, scale, pixel_name(j / cols, j % cols)))
        .collect();
    Preprocessor {
        features,
        target: classes_target(),
    }
}

/// The feature `name` of 8-bit pixel values counted by `h` (the count of each value
/// 0-255), scaled as `scale` says: `minmax` and `auto` map 0-255 onto `[0, 1]`
/// whatever the counts, the other scalings are fitted on them.
pub fn fit_pixel(h: &[u64], scale: ScaleKind, name: String) -> Feature {
    let cumulative: Vec<u64> = h
        .iter()
        .scan(0, |seen, &c| {
            *seen += c;
            Some(*seen)
        })
        .collect();
    let n = cumulative[255];
    // The k-th smallest value (0-based): the first with more than k at or below.
    let kth = |k: usize| cumulative.partition_point(|&seen| seen <= k as u64) as f64;
    let scaler = match scale {
        // Pixels share one known range: `auto` scales them by it.
        ScaleKind::Minmax | ScaleKind::Auto => Scaler::Minmax {
            min: 0.0,
            range: 255.0,
        },
        _ if n == 0 => Scaler::fit(scale, &[]),
        ScaleKind::Standard => {
            let count = n as f64;
            let value = |v: usize| v as f64;
            let sum: f64 = h
                .iter()
                .enumerate()
                .map(|(v, &c)| value(v) * c as f64)
                .sum();
            let mean = sum / count;
            let sq: f64 = h
                .iter()
                .enumerate()
                .map(|(v, &c)| c as f64 * (value(v) - mean).powi(2))
                .sum();
            let std = (sq / count).sqrt();
            Scaler::Standard {
                mean,
                std: if std > 1e-12 { std } else { 1.0 },
            }
        }
        ScaleKind::Quantile => {
            Scaler::quantile_from(n as usize, |ks| ks.iter().map(|&k| kth(k)).collect())
        }
        ScaleKind::None => Scaler::None,
    };
    // Images have no missing pixels; the median is kept for the model file's sake.
    Feature::Numeric {
        name,
        median: if n == 0 { 0.0 } else { kth(n as usize / 2) },
        scaler,
        constant: n == 0 || kth(0) == kth(n as usize - 1),
    }
}

/// The feature name of the pixel at row `r`, column `c` of a one-channel image.
pub fn pixel_name(r: usize, c: usize) -> String {
    format!("pixel_{r}_{c}")
}

/// Applies the preprocessor's per-pixel scalers, in place, to images given as `p / 255`.
pub fn rescale(prep: &Preprocessor, x: &mut Matrix) {
    let k = x.cols().max(1);
    for row in x.as_mut_slice().chunks_exact_mut(k) {
        for (v, f) in row.iter_mut().zip(&prep.features) {
            if let Feature::Numeric { scaler, .. } = f {
                *v = scaler.apply((*v * 255.0).round() as f64) as f32;
            }
        }
    }
}

/// The network inputs for `images`, checked against the model's features: a model
/// trained on `R x C` images needs `R x C` images.
pub fn inputs_for_model(prep: &Preprocessor, images: &IdxImages, source: &Path) -> Result<Matrix> {
    let pixels_ok = prep.features.len() == images.pixels_per_image()
        && prep.features.iter().enumerate().all(|(j, f)| {
            matches!(f, Feature::Numeric { .. })
                && f.name() == pixel_name(j / images.cols, j % images.cols)
        });
    if !pixels_ok {
        let first = prep.features.first().map_or("none", Feature::name);
        bail!(
            "{}: holds {}x{} images, but the model was trained on {} input feature(s) (the first: `{first}`); \
             give it data like the data it was trained on",
            source.display(),
            images.rows,
            images.cols,
            prep.features.len()
        );
    }
    let mut x = images.to_matrix();
    rescale(prep, &mut x);
    Ok(x)
}

/// A folder's test set, or a single IDX image file, for `evaluate` and `predict`:
/// images plus labels where there are any.
pub fn read_for_model(path: &Path) -> Result<(IdxImages, Option<Vec<u8>>)> {
    if path.is_dir() {
        let m = idx::load_mnist_dir(path)?;
        let pixels = m
            .test_x
            .as_slice()
            .iter()
            .map(|&p| (p * 255.0).round() as u8)
            .collect();
        let images = IdxImages {
            count: m.test_x.rows(),
            rows: m.image_rows,
            cols: m.image_cols,
            pixels,
        };
        return Ok((images, Some(m.test_y)));
    }
    Ok((idx::read_images(path)?, None))
}

/// Whether `path` holds image data (an MNIST-format folder or an IDX file) rather than
/// a CSV file.
pub fn is_image_source(path: &Path) -> bool {
    is_image_folder(path) || is_idx_file(path)
}

/// The labelled images of `path` (a folder's t10k test set) as a data set for a model
/// trained on images: inputs scaled as in training, one-hot targets over its classes.
pub fn labelled_dataset(prep: &Preprocessor, path: &Path) -> Result<Dataset> {
    let (images, labels) = read_for_model(path)?;
    let Some(labels) = labels else {
        bail!(
            "{}: an image file has no labels; give the folder holding both t10k-images-idx3-ubyte \
             and t10k-labels-idx1-ubyte",
            path.display()
        );
    };
    let Target::Classification { classes, .. } = &prep.target else {
        bail!("{}: the model predicts a number, not a class; it cannot be evaluated on labelled images", path.display());
    };
    let x = inputs_for_model(prep, &images, path)?;
    let mut y = Matrix::zeros(labels.len(), classes.len());
    for (i, &l) in labels.iter().enumerate() {
        let Some(c) = classes.iter().position(|c| *c == l.to_string()) else {
            bail!(
                "{}: label {l} of image {i} is not one of the model's classes ({})",
                path.display(),
                classes.join(", ")
            );
        };
        y.row_mut(i)[c] = 1.0;
    }
    Ok(Dataset::new(x, y)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaled(prep: &Preprocessor, x: &Matrix) -> Matrix {
        let mut x = x.clone();
        rescale(prep, &mut x);
        x
    }

    #[test]
    fn pixel_scalings() {
        // Two 1x2 images: pixel 0 takes 0 and 255, pixel 1 is always 51.
        let x = Matrix::from_vec(2, 2, vec![0.0, 0.2, 1.0, 0.2]).unwrap();
        let mut hist = vec![0u64; 2 * 256];
        for p in [0, 255, 256 + 51, 256 + 51] {
            hist[p] += 1;
        }
        let unit = preprocessor(2, ScaleKind::Minmax, &hist);
        assert_eq!(scaled(&unit, &x), x);
        assert_eq!(unit.features[1].name(), "pixel_0_1");
        let std = preprocessor(2, ScaleKind::Standard, &hist);
        // Pixel 0: mean 127.5, std 127.5; pixel 1 is constant (std taken as 1).
        assert_eq!(scaled(&std, &x).as_slice(), &[-1.0, 0.0, 1.0, 0.0]);
        assert!(matches!(
            std.features[1],
            Feature::Numeric { constant: true, .. }
        ));
        let none = preprocessor(2, ScaleKind::None, &hist);
        assert_eq!(scaled(&none, &x).as_slice(), &[0.0, 51.0, 255.0, 51.0]);
    }

    #[test]
    fn models_only_take_images_of_their_size() {
        let mut hist = vec![0u64; 4 * 256];
        (0..4).for_each(|j| hist[j * 256] = 1);
        let prep = preprocessor(2, ScaleKind::Minmax, &hist);
        let ok = IdxImages {
            count: 1,
            rows: 2,
            cols: 2,
            pixels: vec![0, 255, 0, 51],
        };
        assert_eq!(
            inputs_for_model(&prep, &ok, Path::new("a"))
                .unwrap()
                .as_slice(),
            &[0.0, 1.0, 0.0, 0.2]
        );
        let wrong = IdxImages {
            count: 1,
            rows: 1,
            cols: 4,
            pixels: vec![0; 4],
        };
        let e = inputs_for_model(&prep, &wrong, Path::new("b"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("holds 1x4 images, but the model was trained on 4 input feature(s)"),
            "{e}"
        );
    }

    /// The per-pixel fit read off histograms equals the fit on the pixel values
    /// themselves: quantiles, medians and constancy exactly, the standard scaling to
    /// rounding.
    #[test]
    fn histogram_fit_matches_the_fit_on_the_values() {
        // Three pixels over 500 images: spread out, skewed with ties, constant.
        let values: Vec<[u8; 3]> = (0..500u32)
            .map(|i| [((i * 7919) % 256) as u8, ((i * i) % 7) as u8 * 30, 9])
            .collect();
        let mut hist = vec![0u64; 3 * 256];
        for v in &values {
            for (j, &p) in v.iter().enumerate() {
                hist[j * 256 + usize::from(p)] += 1;
            }
        }
        for scale in [ScaleKind::Quantile, ScaleKind::Standard] {
            let prep = preprocessor(3, scale, &hist);
            for (j, f) in prep.features.iter().enumerate() {
                let mut column: Vec<f64> = values.iter().map(|v| f64::from(v[j])).collect();
                let want = Scaler::fit(scale, &column);
                column.sort_by(f64::total_cmp);
                let Feature::Numeric {
                    scaler,
                    median,
                    constant,
                    ..
                } = f
                else {
                    panic!("pixels are numeric")
                };
                assert_eq!(*median, column[column.len() / 2], "pixel {j} median");
                assert_eq!(*constant, column[0] == column[column.len() - 1]);
                match (scaler, &want) {
                    (Scaler::Standard { mean, std }, Scaler::Standard { mean: m, std: s }) => {
                        assert_eq!(mean, m, "pixel {j}: means of whole numbers are exact");
                        assert!((std - s).abs() <= 1e-12 * s, "pixel {j}: {std} vs {s}");
                    }
                    _ => assert_eq!(scaler, &want, "pixel {j}"),
                }
            }
        }
    }
}
