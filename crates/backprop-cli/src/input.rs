//! Loading tables: from a file, standard input, or the embedded house-price data.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use backprop::data::csv::{CsvOptions, Table};

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

/// Reads a CSV table from `path` (`-` for standard input).
pub fn read_table(path: &Path, opts: CsvOptions) -> Result<Table> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        return Ok(Table::parse(Path::new("<stdin>"), &bytes, opts)?);
    }
    if !path.exists() {
        bail!("{}: no such file; check the path", path.display());
    }
    Ok(Table::read(path, opts)?)
}

/// The embedded California housing table.
pub fn california() -> Result<Table> {
    Ok(Table::parse(
        &PathBuf::from(CALIFORNIA_NAME),
        CALIFORNIA,
        CsvOptions::default(),
    )?)
}
