//! Loading tables: from a file, standard input, or the embedded house-price data.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use backprop::data::csv::{CsvOptions, CsvSource, Table};

/// The California housing data (20,640 block groups, 8 features, target `MedHouseVal`
/// in $100,000s), embedded so the default run needs no files.
pub const CALIFORNIA: &[u8] =
    include_bytes!("../../../data/california_housing/california_housing.csv");
/// Name the embedded data goes by in messages.
pub const CALIFORNIA_NAME: &str = "california_housing.csv (embedded)";
/// Target column of the embedded data.
pub const CALIFORNIA_TARGET: &str = "MedHouseVal";
/// Dollars per target unit of the embedded data.
pub const CALIFORNIA_DOLLARS: f64 = 100_000.0;

/// Parses `--delimiter`: one character, or `tab`.
pub fn csv_options(delimiter: Option<&str>) -> Result<CsvOptions> {
    let delimiter = match delimiter {
        None => b',',
        Some("tab") | Some("\\t") | Some("\t") => b'\t',
        Some(s) if s.len() == 1 && s.is_ascii() => s.as_bytes()[0],
        Some(s) => {
            bail!("invalid --delimiter `{s}`: give a single character such as ';' or the word tab")
        }
    };
    Ok(CsvOptions { delimiter })
}

/// Rows `predict` and `evaluate` read at a time: a multiple of the rows the network
/// scores at once (`eval_rows`, a power of two up to `EVAL_CHUNK`), so the batches, and so the predictions' bits, are
/// those of scoring the whole file at once. 16,384 rows of 9 columns are about 1 MB.
pub const CHUNK_ROWS: usize = 4 * backprop::train::EVAL_CHUNK;

/// A CSV input that can be read more than once, as a survey and then in chunks: a file,
/// or standard input saved to a temporary file (removed when this is dropped), so
/// neither is ever held in memory whole.
pub struct CsvInput {
    path: PathBuf,
    name: PathBuf,
    temporary: bool,
}

impl CsvInput {
    /// The input at `path` (`-` for standard input).
    pub fn open(path: &Path) -> Result<CsvInput> {
        if path != Path::new("-") {
            if !path.exists() {
                bail!("{}: no such file; check the path", path.display());
            }
            return Ok(CsvInput {
                path: path.into(),
                name: path.into(),
                temporary: false,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp =
            std::env::temp_dir().join(format!("backprop-stdin-{}-{nanos}.csv", std::process::id()));
        let input = CsvInput {
            path: tmp,
            name: PathBuf::from("<stdin>"),
            temporary: true,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&input.path)
            .with_context(|| {
                format!(
                    "cannot save standard input to {}; set TMPDIR to a writable folder",
                    input.path.display()
                )
            })?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file).with_context(|| {
            format!(
                "cannot save standard input to {}; is the disk full?",
                input.path.display()
            )
        })?;
        Ok(input)
    }

    /// The source to read.
    pub fn source(&self) -> CsvSource<'_> {
        CsvSource::Named {
            path: &self.path,
            name: &self.name,
        }
    }
}

impl Drop for CsvInput {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where `predict` writes: standard output, or a temporary file beside the output that
/// replaces it only once complete ([`Output::finish`]), so an error or a crash never
/// leaves half a file in place of an earlier good one.
pub enum Output {
    /// Standard output.
    Stdout(std::io::BufWriter<std::io::Stdout>),
    /// A file being written.
    File {
        /// The temporary file.
        file: std::io::BufWriter<std::fs::File>,
        /// Its path (removed on drop unless finished).
        tmp: PathBuf,
        /// The output's path.
        path: PathBuf,
    },
}

impl Output {
    /// Starts writing to `path` (`-` for standard output).
    pub fn create(path: &Path) -> Result<Output> {
        if path == Path::new("-") {
            return Ok(Output::Stdout(std::io::BufWriter::new(std::io::stdout())));
        }
        let tmp = backprop::model::temp_path(path);
        let file = std::fs::File::create(&tmp).with_context(|| {
            format!(
                "cannot write {}; check that its folder exists and is writable",
                path.display()
            )
        })?;
        Ok(Output::File {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            tmp,
            path: path.into(),
        })
    }

    /// Flushes; a file is synced and renamed over the output's path.
    pub fn finish(mut self) -> Result<()> {
        match &mut self {
            Output::Stdout(w) => w.flush().context("cannot write to standard output"),
            Output::File { file, tmp, path } => {
                let done = file
                    .flush()
                    .and_then(|()| file.get_ref().sync_all())
                    .and_then(|()| std::fs::rename(&*tmp, &*path));
                done.with_context(|| format!("cannot write {}", path.display()))?;
                // Make the rename itself durable.
                let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
                if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // After a rename there is nothing left to remove; before one, the partial file
        // must not stay behind.
        if let Output::File { tmp, .. } = self {
            let _ = std::fs::remove_file(&*tmp);
        }
    }
}

/// Reads a CSV table from `path` (`-` for standard input).
pub fn read_table(path: &Path, opts: CsvOptions) -> Result<Table> {
    let input = CsvInput::open(path)?;
    Ok(Table::read_source(input.source(), opts)?)
}

/// The embedded California housing table.
pub fn california() -> Result<Table> {
    Ok(Table::parse(
        &PathBuf::from(CALIFORNIA_NAME),
        CALIFORNIA,
        CsvOptions::default(),
    )?)
}
