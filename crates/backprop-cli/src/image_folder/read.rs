//! Reading an image folder: its files in sorted order, their headers (size and colour)
//! checked before anything is decoded, then each image decoded straight into its row
//! of the data matrix.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use backprop::layer::Image;
use image::{ImageDecoder, ImageReader};

/// File extensions read as images (case-insensitive); other files are skipped.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// How deep `class/sub/sub/...` folders may nest (a guard against link loops).
const MAX_DEPTH: usize = 16;

/// Whether `path` is named like a PNG or JPEG file.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The entries of `dir`, hidden ones (`.name`) left out, sorted by path, so that the
/// same folder gives the same order (and the same model) on any machine.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let cannot = || {
        format!(
            "{}: cannot read the folder; check the path and its permissions",
            dir.display()
        )
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(cannot)? {
        let e = e.with_context(cannot)?;
        if !e.file_name().to_string_lossy().starts_with('.') {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Appends the images in `dir` and its sub-folders, at any depth, in sorted order.
pub fn images_below(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "{}: folders nested more than {MAX_DEPTH} deep (a link loop?); flatten the folder",
            dir.display()
        );
    }
    for p in entries(dir)? {
        if p.is_dir() {
            images_below(&p, out, depth + 1)?;
        } else if has_image_extension(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// A folder of labelled images: one sub-folder per class.
pub struct Labelled {
    /// Every image, class by class, each class's in sorted order.
    pub files: Vec<PathBuf>,
    /// The class (index into `classes`) of each file.
    pub labels: Vec<usize>,
    /// The sub-folders' names, sorted.
    pub classes: Vec<String>,
}

/// Lists a folder laid out as `dir/<class>/<file>.png` (torchvision's `ImageFolder`):
/// every class folder must hold at least one image, and no image may lie directly in
/// `dir`.
pub fn list_labelled(dir: &Path) -> Result<Labelled> {
    if !dir.is_dir() {
        bail!("{}: no such folder; check the path", dir.display());
    }
    let mut set = Labelled {
        files: Vec::new(),
        labels: Vec::new(),
        classes: Vec::new(),
    };
    let mut loose = None;
    for p in entries(dir)? {
        if p.is_dir() {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                bail!(
                    "{}: the folder's name is not valid UTF-8; rename it (folder names are the class names)",
                    p.display()
                );
            };
            let before = set.files.len();
            images_below(&p, &mut set.files, 1)?;
            if set.files.len() == before {
                bail!(
                    "{}: an empty class folder (no .png, .jpg or .jpeg files); add images of class `{name}` or remove the folder",
                    p.display()
                );
            }
            set.labels.resize(set.files.len(), set.classes.len());
            set.classes.push(name.to_string());
        } else if loose.is_none() && has_image_extension(&p) {
            loose = Some(p);
        }
    }
    if let Some(p) = loose {
        bail!(
            "{}: an image outside any class folder; an image folder holds one sub-folder per class \
             (DIR/<class>/<file>.png): move it into the folder of its class",
            p.display()
        );
    }
    if set.classes.is_empty() {
        bail!(
            "{}: no images (no class sub-folders holding .png, .jpg or .jpeg files); an image folder \
             holds one sub-folder per class, named after it: DIR/<class>/<file>.png (a table is a .csv file)",
            dir.display()
        );
    }
    Ok(set)
}

/// What the images must look like: the size and channels of a model's or a training
/// set's images, `of` naming them in messages ("the model's images").
#[derive(Clone, Copy)]
pub struct Expect<'a> {
    pub shape: Image,
    pub of: &'a str,
}

/// The shape shared by `files`, from their headers alone (nothing is decoded): every
/// image must have the size of the first (or `expect`'s); the channels are 3 if any
/// image is in colour, else 1 (or `expect`'s, where a colour image cannot be read as a
/// greyscale one). Returns the shape and how many greyscale images will be read as RGB.
pub fn survey(files: &[PathBuf], expect: Option<Expect>) -> Result<(Image, usize)> {
    let mut first: Option<(&Path, u32, u32)> = None;
    let (mut colour, mut grey) = (0, 0);
    for f in files {
        let d = open(f)?.into_decoder().map_err(|e| unreadable(f, e))?;
        let (w, h) = d.dimensions();
        if d.color_type().has_color() {
            colour += 1;
            if let Some(e) = expect.filter(|e| e.shape.channels == 1) {
                bail!(
                    "{}: a colour image, but {} are greyscale (1 channel); convert it to greyscale",
                    f.display(),
                    e.of
                );
            }
        } else {
            grey += 1;
        }
        let (want_w, want_h, of) = match (expect, first) {
            (Some(e), _) => (e.shape.width, e.shape.height, e.of.to_string()),
            (None, Some((p, w0, h0))) => (w0 as usize, h0 as usize, p.display().to_string()),
            (None, None) => {
                first = Some((f, w, h));
                continue;
            }
        };
        if (w as usize, h as usize) != (want_w, want_h) {
            bail!(
                "{}: {w}x{h} pixels (width x height), but {of} {} {want_w}x{want_h}; every image must have \
                 the same size: resize them beforehand (images are never resized here)",
                f.display(),
                if expect.is_some() { "are" } else { "is" }
            );
        }
    }
    let (width, height) = match (expect, first) {
        (Some(e), _) => (e.shape.width, e.shape.height),
        (None, Some((_, w, h))) => (w as usize, h as usize),
        (None, None) => bail!("no images to read"),
    };
    let channels = match expect {
        Some(e) => e.shape.channels,
        None if colour > 0 => 3,
        None => 1,
    };
    let widened = if channels == 3 { grey } else { 0 };
    let shape = Image {
        channels,
        height,
        width,
    };
    Ok((shape, widened))
}

fn open(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
    let r = ImageReader::open(path).with_context(|| {
        format!(
            "{}: cannot open the file; check that it exists and is readable",
            path.display()
        )
    })?;
    r.with_guessed_format()
        .with_context(|| format!("{}: cannot read the file", path.display()))
}

fn unreadable(path: &Path, e: image::ImageError) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: not a readable PNG or JPEG image ({e}); replace the file or remove it",
        path.display()
    )
}

/// Decodes `path` into `row`, channel after channel (`shape`: `C x H x W`, as the
/// convolutions take it), each value `p / 255` for its 8-bit value `p`, and counts each
/// channel's values in `hist` (256 counts a channel) when given. A greyscale image is
/// copied into each of 3 channels; an alpha channel is dropped; 16-bit values are
/// rounded to 8 bits.
pub fn decode_into(
    path: &Path,
    shape: Image,
    row: &mut [f32],
    hist: Option<&mut [u64]>,
) -> Result<()> {
    let img = open(path)?.decode().map_err(|e| unreadable(path, e))?;
    if (img.width() as usize, img.height() as usize) != (shape.width, shape.height) {
        bail!(
            "{}: {}x{} pixels once decoded, but its header said {}x{}; replace the file",
            path.display(),
            img.width(),
            img.height(),
            shape.width,
            shape.height
        );
    }
    let pixels = match shape.channels {
        1 => img.to_luma8().into_raw(),
        _ => img.to_rgb8().into_raw(),
    };
    let (c, area) = (shape.channels, shape.area());
    let mut hist = hist;
    for (i, px) in pixels.chunks_exact(c).enumerate() {
        for (k, &p) in px.iter().enumerate() {
            row[k * area + i] = f32::from(p) / 255.0;
            if let Some(h) = hist.as_deref_mut() {
                h[k * 256 + usize::from(p)] += 1;
            }
        }
    }
    Ok(())
}
