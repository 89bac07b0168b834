//! The IDX format of the MNIST database (LeCun et al.), gzipped or raw.
//!
//! An IDX file is a big-endian header followed by the data, row-major:
//! - magic number: two zero bytes, a type byte (`0x08` = unsigned byte) and the number
//!   of dimensions (3 for images, 1 for labels), so `0x00000803` or `0x00000801`;
//! - one `u32` per dimension (images: count, rows, columns; labels: count);
//! - exactly `product of the dimensions` data bytes, nothing after them.
//!
//! Files starting with the gzip magic `1f 8b` are decompressed first, so the four
//! `*-ubyte.gz` files of MNIST (or Fashion-MNIST) can be read as downloaded.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Number of classes in MNIST-format label files (the digits 0-9).
pub const MNIST_CLASSES: usize = 10;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A stack of greyscale images read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Pixel rows per image.
    pub rows: usize,
    /// Pixel columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, each row-major (0 = background).
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Pixels per image.
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i`'s pixels, row-major.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images as a `count x (rows * cols)` matrix with pixels scaled to `[0, 1]`
    /// (`p / 255`), one image per row.
    ///
    /// # Panics
    /// If `pixels.len() != count * rows * cols` (never for images read by this module).
    pub fn to_matrix(&self) -> Matrix {
        let data = self.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        Matrix::from_vec(self.count, self.pixels_per_image(), data)
            // Invariant: `pixels.len() == count * rows * cols`, checked when parsed.
            .expect("IdxImages: pixels.len() must equal count * rows * cols")
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        self.count = self.count.min(n);
        self.pixels.truncate(self.count * self.pixels_per_image());
    }

    /// Encodes the images as an (uncompressed) IDX file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.pixels.len());
        for v in [IMAGES_MAGIC as usize, self.count, self.rows, self.cols] {
            out.extend_from_slice(&u32_be(v));
        }
        out.extend_from_slice(&self.pixels);
        out
    }
}

/// Encodes labels as an (uncompressed) IDX file.
pub fn labels_to_bytes(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&u32_be(LABELS_MAGIC as usize));
    out.extend_from_slice(&u32_be(labels.len()));
    out.extend_from_slice(labels);
    out
}

fn u32_be(v: usize) -> [u8; 4] {
    // IDX dimensions are u32; anything we encode came from a parsed u32 or a Vec that
    // callers keep far below 4 G entries.
    assert!(
        u32::try_from(v).is_ok(),
        "IDX dimension {v} does not fit in 32 bits"
    );
    (v as u32).to_be_bytes()
}

/// Reads an IDX image file (gzipped or raw).
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    parse_images(&read_file(path)?, path)
}

/// Reads an IDX label file (gzipped or raw).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    parse_labels(&read_file(path)?, path)
}

/// Parses the bytes of an IDX image file (gzipped or raw); `path` is only used in
/// error messages.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let bytes = decode(bytes, path)?;
    let dims = parse_header(&bytes, path, IMAGES_MAGIC)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(format_err(
            path,
            format!("the header gives images of {rows}x{cols} pixels; an image needs at least one row and one column"),
        ));
    }
    let pixels = body(&bytes, path, &dims)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: pixels.to_vec(),
    })
}

/// Parses the bytes of an IDX label file (gzipped or raw); `path` is only used in
/// error messages.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let bytes = decode(bytes, path)?;
    let dims = parse_header(&bytes, path, LABELS_MAGIC)?;
    Ok(body(&bytes, path, &dims)?.to_vec())
}

fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Decompresses `bytes` if they start with the gzip magic; otherwise borrows them.
fn decode<'a>(bytes: &'a [u8], path: &Path) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    // Decompress the header first, then at most the bytes it declares (plus one, so an
    // over-long body is still reported): a tiny damaged or hostile file cannot make us
    // inflate gigabytes.
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut decoder)
        .take(MAX_HEADER as u64)
        .read_to_end(&mut out)
        .and_then(|_| {
            let declared = declared_len(&out);
            if declared > MAX_DECLARED {
                return Err(std::io::Error::other(format!(
                    "its header declares {declared} bytes, more than the {MAX_DECLARED} this \
                     reader accepts"
                )));
            }
            let limit = declared.saturating_add(1);
            let rest = limit.saturating_sub(out.len() as u64);
            (&mut decoder).take(rest).read_to_end(&mut out)
        })
        .map_err(|e| {
            format_err(
                path,
                format!(
                    "the file starts like gzip but does not decompress ({e}); it is probably \
                 truncated or damaged: copy it again, or gunzip it yourself to see what is wrong"
                ),
            )
        })?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Largest IDX file (header plus data) we decompress: 4 GiB, over 50 times MNIST's
/// training images.
const MAX_DECLARED: u64 = 1 << 32;

/// Most bytes after the declared data that a streaming read counts before reporting them.
const MAX_EXTRA: u64 = 1 << 20;

/// Longest IDX header we read: magic plus up to three dimensions.
const MAX_HEADER: usize = 16;

/// Total file length (header plus data) that an IDX header declares, as far as the
/// bytes given show it; `MAX_HEADER` when they do not hold a whole header.
fn declared_len(bytes: &[u8]) -> u64 {
    if bytes.len() < 4 {
        return MAX_HEADER as u64;
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if ndims > 3 || bytes.len() < header {
        return MAX_HEADER as u64;
    }
    let data = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
        .fold(1u64, u64::saturating_mul);
    data.saturating_add(header as u64)
}

/// Checks the magic number and returns the dimensions the header declares.
fn parse_header(bytes: &[u8], path: &Path, want: u32) -> Result<Vec<usize>> {
    let what = if want == IMAGES_MAGIC {
        "image"
    } else {
        "label"
    };
    let ndims = (want & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(format_err(
            path,
            format!(
                "the file has only {} bytes, too few for an IDX header ({header} bytes for an \
                 {what} file); it is empty or truncated: copy it again",
                bytes.len()
            ),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != want {
        let hint = if magic == IMAGES_MAGIC {
            "this is an IDX image file: were the image and label files swapped?".to_string()
        } else if magic == LABELS_MAGIC {
            "this is an IDX label file: were the image and label files swapped?".to_string()
        } else if magic >> 16 != 0 {
            "this is not an IDX file (an IDX file starts with two zero bytes); MNIST files \
             are named like train-images-idx3-ubyte(.gz)"
                .to_string()
        } else {
            format!(
                "this IDX file holds data of type 0x{:02x} in {} dimension(s); only unsigned \
                 bytes (type 0x08) are supported, in 3 dimensions for images and 1 for labels",
                (magic >> 8) & 0xff,
                magic & 0xff
            )
        };
        return Err(format_err(
            path,
            format!("magic number 0x{magic:08x} where an IDX {what} file has 0x{want:08x}; {hint}"),
        ));
    }
    if bytes.len() < header {
        return Err(format_err(
            path,
            format!(
                "the file has only {} bytes, too few for the {header}-byte header of an IDX \
                 {what} file; it is truncated: copy it again",
                bytes.len()
            ),
        ));
    }
    Ok(bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect())
}
/// Checks that exactly the declared number of data bytes follows the header and
/// returns them.
fn body<'a>(bytes: &'a [u8], path: &Path, dims: &[usize]) -> Result<&'a [u8]> {
    let header = 4 + 4 * dims.len();
    let expected = data_len(path, dims)?;
    let got = bytes.len() - header;
    if got != expected {
        return Err(size_mismatch(path, dims, expected, got));
    }
    Ok(&bytes[header..])
}

/// The number of data bytes the header's dimensions declare.
fn data_len(path: &Path, dims: &[usize]) -> Result<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        format_err(path, format!("the header's dimensions {dims:?} are too large to be real; the header is corrupt"))
    })
}

/// The error for a file with `got` data bytes where its header declares `expected`.
fn size_mismatch(path: &Path, dims: &[usize], expected: usize, got: usize) -> Error {
    let header = 4 + 4 * dims.len();
    let (items, item_size) = match dims {
        [_, rows, cols] => ("images", format!("{rows}x{cols} pixels")),
        _ => ("labels", "1 byte".to_string()),
    };
    let problem = if got < expected {
        format!(
            "{} bytes are missing: the file is truncated, copy it again",
            expected - got
        )
    } else {
        format!(
            "{} extra bytes follow: the header's count is wrong or another file was \
             appended",
            got - expected
        )
    };
    format_err(
        path,
        format!(
            "the header declares {} {items} of {item_size}, i.e. {expected} data bytes after \
             the {header}-byte header, but the file has {got}; {problem}",
            dims[0]
        ),
    )
}

/// MNIST (or any data set in its four-file IDX layout), with pixels scaled to `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// Training images, one per row (`count x rows*cols`), pixels `p / 255`.
    pub train_x: Matrix,
    /// Training labels, `0..10`.
    pub train_y: Vec<u8>,
    /// Test images, one per row, pixels `p / 255`.
    pub test_x: Matrix,
    /// Test labels, `0..10`.
    pub test_y: Vec<u8>,
    /// Pixel rows per image (28 for MNIST).
    pub image_rows: usize,
    /// Pixel columns per image (28 for MNIST).
    pub image_cols: usize,
    /// The four files read: train images, train labels, test images, test labels.
    pub files: [PathBuf; 4],
}

/// The four files of an MNIST-format folder, by their standard stems.
const MNIST_FILES: [(&str, &str); 4] = [
    ("train-images", "idx3"),
    ("train-labels", "idx1"),
    ("t10k-images", "idx3"),
    ("t10k-labels", "idx1"),
];

/// Finds one of the four files in `dir`: `{stem}-{idx}-ubyte` or `{stem}.{idx}-ubyte`,
/// each optionally ending in `.gz`.
fn find_mnist_file(dir: &Path, stem: &str, idx: &str) -> Result<PathBuf> {
    let names = [
        format!("{stem}-{idx}-ubyte.gz"),
        format!("{stem}-{idx}-ubyte"),
        format!("{stem}.{idx}-ubyte.gz"),
        format!("{stem}.{idx}-ubyte"),
    ];
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format_err(
                dir,
                format!(
                "no {stem}-{idx}-ubyte[.gz] (or {stem}.{idx}-ubyte[.gz]) here; an MNIST-format \
                 folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                 t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, gzipped or not"
            ),
            )
        })
}

/// Checks that `labels` fit `images` and are digits.
fn check_pair(
    images: &IdxImages,
    labels: &[u8],
    images_path: &Path,
    labels_path: &Path,
) -> Result<()> {
    if images.count != labels.len() {
        return Err(format_err(
            labels_path,
            format!(
                "{} labels, but {} has {} images; the two files must come from the same set \
                 (train with train, t10k with t10k)",
                labels.len(),
                images_path.display(),
                images.count
            ),
        ));
    }
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= MNIST_CLASSES) {
        let max = labels.iter().copied().max().unwrap_or(0);
        return Err(format_err(
            labels_path,
            format!(
                "label {} at position {i} (largest label: {max}); MNIST-format labels are the \
                 digits 0-9. For another number of classes, export the data to CSV and train \
                 with --task classify",
                labels[i]
            ),
        ));
    }
    Ok(())
}

/// The four files of an MNIST-format folder: training images, training labels, test
/// images, test labels.
pub fn mnist_files(dir: impl AsRef<Path>) -> Result<[PathBuf; 4]> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(format_err(
            dir,
            "not a folder; give the folder that holds the four MNIST IDX files",
        ));
    }
    let find = |(stem, idx): (&str, &str)| find_mnist_file(dir, stem, idx);
    Ok([
        find(MNIST_FILES[0])?,
        find(MNIST_FILES[1])?,
        find(MNIST_FILES[2])?,
        find(MNIST_FILES[3])?,
    ])
}

/// Some of the items (images or labels) of an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxRows {
    /// The dimensions the header declares (the first is the number of items in the file).
    pub dims: Vec<usize>,
    /// The bytes of the items read, one after the other.
    pub data: Vec<u8>,
}

impl IdxRows {
    /// Bytes per item (1 for labels, `rows * cols` for images).
    pub fn item_len(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// The items read, as images (for an image file).
    pub fn into_images(self) -> IdxImages {
        IdxImages {
            count: self.data.len() / self.item_len().max(1),
            rows: self.dims[1],
            cols: self.dims[2],
            pixels: self.data,
        }
    }
}

/// The dimensions an IDX file of kind `magic` ([`IMAGES_MAGIC`] or [`LABELS_MAGIC`])
/// declares, reading (and decompressing) only its header.
pub fn read_dims(path: impl AsRef<Path>, magic: u32) -> Result<Vec<usize>> {
    Ok(read_rows(path, magic, None)?.dims)
}

/// Streams an IDX file of kind `magic` and keeps only the items numbered `keep`
/// (increasing), with all of the checks [`read_images`] and [`read_labels`] make: one
/// process's shard of a file that several processes share, read without holding the
/// rest of the file. `None` reads the header alone.
pub fn read_rows(path: impl AsRef<Path>, magic: u32, keep: Option<&[usize]>) -> Result<IdxRows> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = std::io::BufReader::with_capacity(1 << 16, file);
    let gzip = std::io::BufRead::fill_buf(&mut raw)
        .map_err(|e| Error::io(path, e))?
        .starts_with(&GZIP_MAGIC);
    let mut input: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let damaged = |e: std::io::Error| {
        if gzip {
            format_err(path, format!("the file starts like gzip but does not decompress ({e}); it is probably truncated or damaged: copy it again, or gunzip it yourself to see what is wrong"))
        } else {
            Error::io(path, e)
        }
    };
    let ndims = (magic & 0xff) as usize;
    let mut header = Vec::with_capacity(4 + 4 * ndims);
    (&mut input)
        .take(4 + 4 * ndims as u64)
        .read_to_end(&mut header)
        .map_err(damaged)?;
    let dims = parse_header(&header, path, magic)?;
    let what = if magic == IMAGES_MAGIC {
        "images"
    } else {
        "labels"
    };
    if magic == IMAGES_MAGIC && (dims[1] == 0 || dims[2] == 0) {
        return Err(format_err(
            path,
            format!("the header gives images of {}x{} pixels; an image needs at least one row and one column", dims[1], dims[2]),
        ));
    }
    let declared = declared_len(&header);
    if declared > MAX_DECLARED {
        return Err(format_err(path, format!("its header declares {declared} bytes, more than the {MAX_DECLARED} this reader accepts")));
    }
    let Some(keep) = keep else {
        return Ok(IdxRows {
            dims,
            data: Vec::new(),
        });
    };
    let count = dims[0];
    let item: usize = dims[1..].iter().product();
    let expected = data_len(path, &dims)?;
    if let Some(&last) = keep.last().filter(|&&last| last >= count) {
        return Err(format_err(
            path,
            format!("item {last} was asked for, but the file holds {count} {what}"),
        ));
    }
    let mut data = Vec::with_capacity(keep.len() * item);
    let mut scratch = Vec::with_capacity(item);
    let mut wanted = keep.iter().peekable();
    for i in 0..count {
        // `take` + `read_to_end`: a clean end of the data shows as a short item (the
        // file is truncated), an error of the decompressor as an error (it is damaged).
        scratch.clear();
        (&mut input)
            .take(item as u64)
            .read_to_end(&mut scratch)
            .map_err(damaged)?;
        if scratch.len() < item {
            return Err(size_mismatch(
                path,
                &dims,
                expected,
                i * item + scratch.len(),
            ));
        }
        if wanted.peek() == Some(&&i) {
            wanted.next();
            data.extend_from_slice(&scratch);
        }
    }
    // Count what follows, up to a bound, so a hostile file cannot keep us inflating.
    let extra =
        std::io::copy(&mut (&mut input).take(MAX_EXTRA), &mut std::io::sink()).map_err(damaged)?;
    if extra > 0 {
        return Err(size_mismatch(
            path,
            &dims,
            expected,
            expected + extra as usize,
        ));
    }
    Ok(IdxRows { dims, data })
}

/// Loads the four MNIST files from `dir`, checks that they agree, and scales the pixels
/// to `[0, 1]`.
pub fn load_mnist_dir(dir: impl AsRef<Path>) -> Result<Mnist> {
    let dir = dir.as_ref();
    let files = mnist_files(dir)?;
    let train = read_images(&files[0])?;
    let train_y = read_labels(&files[1])?;
    check_pair(&train, &train_y, &files[0], &files[1])?;
    let test = read_images(&files[2])?;
    let test_y = read_labels(&files[3])?;
    check_pair(&test, &test_y, &files[2], &files[3])?;
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(format_err(
            &files[2],
            format!(
                "test images are {}x{} but training images ({}) are {}x{}; both sets must have \
                 the same image size",
                test.rows,
                test.cols,
                files[0].display(),
                train.rows,
                train.cols
            ),
        ));
    }
    Ok(Mnist {
        train_x: train.to_matrix(),
        train_y,
        test_x: test.to_matrix(),
        test_y,
        image_rows: train.rows,
        image_cols: train.cols,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p() -> &'static Path {
        Path::new("x.idx")
    }

    fn images(count: usize, rows: usize, cols: usize) -> IdxImages {
        let pixels = (0..count * rows * cols)
            .map(|i| (i * 37 % 256) as u8)
            .collect();
        IdxImages {
            count,
            rows,
            cols,
            pixels,
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn reason(e: Error) -> String {
        match e {
            Error::Format { reason, .. } => reason,
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn gzip_bomb_is_not_inflated_past_the_declared_size() {
        // A valid 2-image header followed by 50 MB of zeros, gzipped to a few kB.
        let mut raw = images(2, 3, 3).to_bytes();
        raw.resize(raw.len() + 50_000_000, 0);
        let gz = gzip(&raw);
        assert!(gz.len() < 200_000);
        let decoded = decode(&gz, p()).unwrap();
        assert_eq!(
            decoded.len(),
            16 + 2 * 9 + 1,
            "stops one byte past the declared size"
        );
        let e = reason(parse_images(&gz, p()).unwrap_err());
        assert!(e.contains("byte"), "{e}");
    }

    #[test]
    fn images_round_trip_raw_and_gzipped() {
        let im = images(3, 2, 4);
        let bytes = im.to_bytes();
        // Header by hand: magic 0x00000803, then 3, 2, 4 big-endian.
        assert_eq!(
            &bytes[..16],
            &[0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4]
        );
        assert_eq!(bytes.len(), 16 + 24);
        assert_eq!(parse_images(&bytes, p()).unwrap(), im);
        assert_eq!(parse_images(&gzip(&bytes), p()).unwrap(), im);
        assert_eq!(im.image(1), &im.pixels[8..16]);
    }

    #[test]
    fn labels_round_trip_raw_and_gzipped() {
        let labels = vec![5, 0, 4, 1, 9];
        let bytes = labels_to_bytes(&labels);
        assert_eq!(&bytes[..8], &[0, 0, 8, 1, 0, 0, 0, 5]);
        assert_eq!(parse_labels(&bytes, p()).unwrap(), labels);
        assert_eq!(parse_labels(&gzip(&bytes), p()).unwrap(), labels);
    }

    #[test]
    fn pixels_scale_to_unit_interval() {
        let im = IdxImages {
            count: 2,
            rows: 1,
            cols: 2,
            pixels: vec![0, 255, 51, 102],
        };
        let m = im.to_matrix();
        assert_eq!((m.rows(), m.cols()), (2, 2));
        assert_eq!(m.as_slice(), &[0.0, 1.0, 0.2, 0.4]);
    }

    #[test]
    fn rejects_label_file_given_as_images_and_vice_versa() {
        let r = reason(parse_images(&labels_to_bytes(&[1, 2]), p()).unwrap_err());
        assert!(
            r.contains("magic number 0x00000801 where an IDX image file has 0x00000803"),
            "{r}"
        );
        assert!(r.contains("swapped"), "{r}");
        let r = reason(parse_labels(&images(1, 2, 2).to_bytes(), p()).unwrap_err());
        assert!(
            r.contains("magic number 0x00000803 where an IDX label file has 0x00000801"),
            "{r}"
        );
    }

    #[test]
    fn rejects_non_idx_and_other_types() {
        let r = reason(parse_labels(b"label\n1\n2\n", p()).unwrap_err());
        assert!(r.contains("not an IDX file"), "{r}");
        // Type 0x0d (float) labels.
        let mut bytes = labels_to_bytes(&[1, 2]);
        bytes[2] = 0x0d;
        let r = reason(parse_labels(&bytes, p()).unwrap_err());
        assert!(r.contains("type 0x0d"), "{r}");
        // Images declared with 2 dimensions.
        let mut bytes = images(1, 2, 2).to_bytes();
        bytes[3] = 2;
        let r = reason(parse_images(&bytes, p()).unwrap_err());
        assert!(r.contains("in 2 dimension(s)"), "{r}");
    }

    #[test]
    fn rejects_short_headers() {
        let r = reason(parse_images(&[], p()).unwrap_err());
        assert!(r.contains("only 0 bytes"), "{r}");
        let bytes = images(2, 2, 2).to_bytes();
        let r = reason(parse_images(&bytes[..10], p()).unwrap_err());
        assert!(
            r.contains("only 10 bytes, too few for the 16-byte header"),
            "{r}"
        );
        let r = reason(parse_labels(&labels_to_bytes(&[3])[..6], p()).unwrap_err());
        assert!(r.contains("too few for the 8-byte header"), "{r}");
    }

    #[test]
    fn rejects_truncated_and_overlong_data() {
        let bytes = images(3, 2, 2).to_bytes();
        let r = reason(parse_images(&bytes[..bytes.len() - 5], p()).unwrap_err());
        assert!(
            r.contains("declares 3 images of 2x2 pixels, i.e. 12 data bytes"),
            "{r}"
        );
        assert!(r.contains("but the file has 7; 5 bytes are missing"), "{r}");
        let mut long = labels_to_bytes(&[1, 2, 3]);
        long.extend_from_slice(&[0, 0]);
        let r = reason(parse_labels(&long, p()).unwrap_err());
        assert!(r.contains("declares 3 labels"), "{r}");
        assert!(r.contains("2 extra bytes follow"), "{r}");
        // A count in the header larger than the data (a corrupted count).
        let mut bad = labels_to_bytes(&[1, 2, 3]);
        bad[4..8].copy_from_slice(&60000u32.to_be_bytes());
        let r = reason(parse_labels(&bad, p()).unwrap_err());
        assert!(r.contains("declares 60000 labels"), "{r}");
        assert!(r.contains("59997 bytes are missing"), "{r}");
    }

    #[test]
    fn rejects_zero_sized_images() {
        let bytes = IdxImages {
            count: 4,
            rows: 0,
            cols: 28,
            pixels: vec![],
        }
        .to_bytes();
        let r = reason(parse_images(&bytes, p()).unwrap_err());
        assert!(r.contains("images of 0x28 pixels"), "{r}");
    }

    #[test]
    fn rejects_damaged_gzip() {
        let gz = gzip(&labels_to_bytes(&[1; 100]));
        let r = reason(parse_labels(&gz[..gz.len() / 2], p()).unwrap_err());
        assert!(r.contains("does not decompress"), "{r}");
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("backprop-idx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loads_a_folder_with_either_naming_and_compression() {
        let d = temp_dir("ok");
        let train = images(4, 3, 2);
        let test = images(2, 3, 2);
        write(&d, "train-images-idx3-ubyte.gz", &gzip(&train.to_bytes()));
        write(
            &d,
            "train-labels.idx1-ubyte",
            &labels_to_bytes(&[0, 9, 3, 3]),
        );
        write(&d, "t10k-images.idx3-ubyte.gz", &gzip(&test.to_bytes()));
        write(&d, "t10k-labels-idx1-ubyte", &labels_to_bytes(&[7, 1]));
        let m = load_mnist_dir(&d).unwrap();
        assert_eq!((m.train_x.rows(), m.train_x.cols()), (4, 6));
        assert_eq!((m.test_x.rows(), m.test_x.cols()), (2, 6));
        assert_eq!((m.image_rows, m.image_cols), (3, 2));
        assert_eq!(m.train_y, vec![0, 9, 3, 3]);
        assert_eq!(m.test_y, vec![7, 1]);
        assert_eq!(m.test_x, test.to_matrix());
        assert!(m.files[1].ends_with("train-labels.idx1-ubyte"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn folder_errors_name_the_problem() {
        let d = temp_dir("bad");
        write(&d, "train-images-idx3-ubyte", &images(4, 3, 2).to_bytes());
        write(&d, "train-labels-idx1-ubyte", &labels_to_bytes(&[0, 9, 3]));
        write(&d, "t10k-images-idx3-ubyte", &images(2, 2, 3).to_bytes());
        let e = load_mnist_dir(&d).unwrap_err();
        assert!(
            e.to_string().contains("no t10k-labels-idx1-ubyte[.gz]"),
            "{e}"
        );
        write(&d, "t10k-labels-idx1-ubyte", &labels_to_bytes(&[7, 1]));
        let e = load_mnist_dir(&d).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("train-labels-idx1-ubyte: 3 labels, but"), "{s}");
        assert!(s.contains("has 4 images"), "{s}");
        write(
            &d,
            "train-labels-idx1-ubyte",
            &labels_to_bytes(&[0, 12, 3, 10]),
        );
        let s = load_mnist_dir(&d).unwrap_err().to_string();
        assert!(
            s.contains("label 12 at position 1 (largest label: 12)"),
            "{s}"
        );
        write(
            &d,
            "train-labels-idx1-ubyte",
            &labels_to_bytes(&[0, 1, 3, 9]),
        );
        let s = load_mnist_dir(&d).unwrap_err().to_string();
        assert!(s.contains("test images are 2x3 but training images"), "{s}");
        assert!(s.contains("are 3x2"), "{s}");
        std::fs::remove_dir_all(&d).unwrap();
        let s = load_mnist_dir(&d).unwrap_err().to_string();
        assert!(s.contains("not a folder"), "{s}");
    }

    #[test]
    fn truncate_keeps_the_first_images() {
        let mut im = images(5, 2, 2);
        let first = im.pixels[..8].to_vec();
        im.truncate(2);
        assert_eq!((im.count, im.pixels), (2, first));
    }

    /// The shipped MNIST files: sizes, and the label facts recorded in data/README.md.
    #[test]
    fn reads_the_shipped_mnist() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let m = load_mnist_dir(&dir).unwrap();
        assert_eq!(
            (m.train_x.rows(), m.train_x.cols(), m.test_x.rows()),
            (60000, 784, 10000)
        );
        assert_eq!(&m.train_y[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        assert_eq!(&m.test_y[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let mut counts = [0usize; 10];
        for &l in &m.test_y {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        let (lo, hi) = m
            .train_x
            .as_slice()
            .iter()
            .fold((1f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((lo, hi), (0.0, 1.0));
    }

    #[test]
    fn reading_some_rows_streams_and_checks_like_reading_all() {
        let dir = temp_dir("rows");
        let imgs = images(7, 2, 3);
        for (name, bytes) in [("raw", imgs.to_bytes()), ("gz", gzip(&imgs.to_bytes()))] {
            let path = dir.join(name);
            std::fs::write(&path, &bytes).unwrap();
            let rows = read_rows(&path, IMAGES_MAGIC, Some(&[1, 4, 6])).unwrap();
            assert_eq!(rows.dims, [7, 2, 3]);
            let got = rows.into_images();
            assert_eq!(got.count, 3);
            for (k, i) in [1, 4, 6].into_iter().enumerate() {
                assert_eq!(got.image(k), imgs.image(i), "{name}: image {i}");
            }
            assert_eq!(read_dims(&path, IMAGES_MAGIC).unwrap(), [7, 2, 3]);
            let e = reason(read_rows(&path, LABELS_MAGIC, Some(&[0])).unwrap_err());
            assert!(e.contains("swapped"), "{e}");
        }
        let full = imgs.to_bytes();
        std::fs::write(dir.join("short"), &full[..full.len() - 1]).unwrap();
        let e = reason(read_rows(dir.join("short"), IMAGES_MAGIC, Some(&[0])).unwrap_err());
        assert!(e.contains("the file has 41; 1 bytes are missing"), "{e}");
        std::fs::write(dir.join("long"), [&full[..], &[0]].concat()).unwrap();
        let e = reason(read_rows(dir.join("long"), IMAGES_MAGIC, Some(&[0])).unwrap_err());
        assert!(e.contains("the file has 43; 1 extra bytes follow"), "{e}");
        let mut damaged = gzip(&full);
        let n = damaged.len();
        damaged.truncate(n / 2);
        std::fs::write(dir.join("damaged.gz"), damaged).unwrap();
        let e = reason(read_rows(dir.join("damaged.gz"), IMAGES_MAGIC, Some(&[0])).unwrap_err());
        assert!(
            e.contains("does not decompress") || e.contains("truncated"),
            "{e}"
        );
    }
}
