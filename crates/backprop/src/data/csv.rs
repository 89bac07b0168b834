//! Reading a CSV table: header, typed columns, and errors that name the line and column.

use std::path::{Path, PathBuf};

use std::io::BufRead;

use super::cells::Decimals;
pub use super::cells::{Lines, Numbers};
use super::collective::Collective;
use crate::error::{Error, Result};

/// How to read a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field separator (`b','` by default).
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: b',' }
    }
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Every present cell is a number; missing cells are NaN.
    Numeric(Numbers),
    /// Text cells; missing cells are empty strings.
    Text(Vec<String>),
}

impl Column {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    /// Whether the column has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether cell `i` is missing.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Column::Numeric(v) => v.get(i).is_nan(),
            Column::Text(v) => v[i].is_empty(),
        }
    }
}

/// A table read from a CSV file: named, typed columns of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Where it came from (for error messages).
    pub source: PathBuf,
    /// Column names, in file order.
    pub headers: Vec<String>,
    /// Columns, in file order.
    pub columns: Vec<Column>,
    /// File line number (1-based) of every row.
    pub lines: Lines,
}

/// Cell texts read as "missing".
pub const MISSING: [&str; 5] = ["", "NA", "N/A", "null", "NULL"];

fn is_missing_text(s: &str) -> bool {
    MISSING.contains(&s)
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// Index of column `name`, or an error that suggests the nearest existing name.
    pub fn require_column(&self, name: &str, role: &str) -> Result<usize> {
        self.column_index(name).ok_or_else(|| {
            let hint = match closest(name, &self.headers) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("the columns are: {}", self.headers.join(", ")),
            };
            Error::Csv {
                path: self.source.clone(),
                line: 1,
                column: 0,
                reason: format!("no {role} column `{name}` in the header; {hint}"),
            }
        })
    }

    /// Reads and parses a CSV file.
    pub fn read(path: &Path, opts: CsvOptions) -> Result<Table> {
        if path.is_dir() {
            return Err(Error::Format {
                path: path.into(),
                reason: "is a directory, not a CSV file; give the path of a .csv file".into(),
            });
        }
        Table::read_source(CsvSource::File(path), opts)
    }

    /// Parses CSV `bytes`; `source` names them in errors.
    pub fn parse(source: &Path, bytes: &[u8], opts: CsvOptions) -> Result<Table> {
        Table::read_source(
            CsvSource::Bytes {
                name: source,
                bytes,
            },
            opts,
        )
    }

    /// Reads a whole CSV source in two passes: [`Table::survey`] types the columns
    /// without keeping any cell, then the cells are parsed straight into their typed
    /// columns. Holding every cell as a `String` until the column's type was known took
    /// about 17 times the table's size as `f32` (see BENCHMARKS.md, "Memory").
    pub fn read_source(src: CsvSource<'_>, opts: CsvOptions) -> Result<Table> {
        let survey = Table::survey(src, opts)?;
        let mut chunks = survey.chunks(src, opts, usize::MAX)?;
        match chunks.next_chunk()? {
            Some(t) => Ok(t),
            None => Err(changed(src.name())),
        }
    }

    /// The first pass over a CSV source: checks the header and every row (the number of
    /// fields, UTF-8, finite numbers) and decides each column's type from all of its
    /// cells, keeping none of them. Its errors are those [`Table::parse`] gives, in the
    /// same order. [`Survey::chunks`] then reads the rows.
    pub fn survey(src: CsvSource<'_>, opts: CsvOptions) -> Result<Survey> {
        let source = src.name();
        if all_whitespace(src.open()?).map_err(|e| Error::io(source, e))? {
            return Err(empty_file(source));
        }
        let mut records = Records::new(source, src.open()?, opts)?;
        let mut tallies: Vec<Tally> = Vec::new();
        tallies.resize_with(records.headers.len(), Tally::default);
        let mut rows = 0;
        while let Some(line) = records.next()? {
            for (j, f) in records.record.iter().enumerate() {
                tallies[j].add(line, records.field(line, j, f)?);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(no_rows(source));
        }
        let columns = tallies
            .into_iter()
            .enumerate()
            .map(|(j, t)| t.decide(source, &records.headers[j], j))
            .collect::<Result<_>>()?;
        Ok(Survey {
            source: source.into(),
            headers: records.headers,
            rows,
            columns,
        })
    }

    /// Counts the data rows of a CSV source without keeping any of them, checking the
    /// header and the number of fields of every row as [`Table::parse`] does.
    pub fn count_rows(src: CsvSource<'_>, opts: CsvOptions) -> Result<usize> {
        let mut records = Records::new(src.name(), src.open()?, opts)?;
        let mut n = 0;
        while records.next()?.is_some() {
            n += 1;
        }
        if n == 0 {
            return Err(no_rows(src.name()));
        }
        Ok(n)
    }

    /// Reads only the data rows numbered `keep` (0-based, increasing) of a CSV source,
    /// streaming past the others without keeping them: one process's shard of a file
    /// that several processes share. Whether a column holds numbers or text is decided
    /// over the cells of every process (`c`), so all shards type their columns alike and
    /// as [`Table::parse`] would type the whole file. Rows of the result are in file
    /// order (row `i` is row `keep[i]` of the file) and keep their line numbers.
    pub fn read_rows(
        src: CsvSource<'_>,
        opts: CsvOptions,
        keep: &[usize],
        c: &mut dyn Collective,
    ) -> Result<Table> {
        debug_assert!(keep.windows(2).all(|w| w[0] < w[1]), "keep must increase");
        let source = src.name();
        let mut records = Records::new(source, src.open()?, opts)?;
        let width = records.headers.len();
        let mut cells: Vec<Vec<String>> = vec![Vec::new(); width];
        let mut lines = Lines::new();
        let mut wanted = keep.iter().peekable();
        let mut index = 0;
        while let Some(line) = records.next()? {
            if wanted.peek() == Some(&&index) {
                wanted.next();
                records.push_cells(line, &mut cells)?;
                lines.push(line);
            }
            index += 1;
        }
        if let Some(&missing) = wanted.next() {
            return Err(Error::Format {
                path: source.into(),
                reason: format!("row {missing} was asked for but the file has {index} rows; was it changed while being read?"),
            });
        }
        // One collective for all columns: [numbers, non-numbers] per column.
        let mut totals: Vec<u64> = cells.iter().flat_map(|c| cell_counts(c)).collect();
        c.sum_u64(&mut totals);
        let totals: Vec<[u64; 2]> = totals.chunks_exact(2).map(|t| [t[0], t[1]]).collect();
        Table::typed(source, records.headers, cells, lines, &totals)
    }

    /// Types every column from its cells and the counts `totals` of numbers and
    /// non-numbers among the present cells of the whole file.
    fn typed(
        source: &Path,
        headers: Vec<String>,
        cells: Vec<Vec<String>>,
        lines: Lines,
        totals: &[[u64; 2]],
    ) -> Result<Table> {
        let columns = cells
            .into_iter()
            .enumerate()
            .map(|(j, c)| type_column(source, &headers[j], j, c, &lines, totals[j]))
            .collect::<Result<_>>()?;
        Ok(Table {
            source: source.into(),
            headers,
            columns,
            lines,
        })
    }
}

/// The type of a column, decided over all of its present cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Every present cell is a finite number.
    Numeric,
    /// Text.
    Text,
}

/// A surveyed column: its type and its first present cell (line, text), which errors
/// about the column quote.
#[derive(Clone, Debug, PartialEq)]
pub struct SurveyedColumn {
    /// Numbers or text.
    pub kind: Kind,
    /// The first cell that is not missing, with its line; `None` if all are missing.
    pub first_present: Option<(u64, String)>,
    /// For a numeric column whose cells are all plain decimals that fit, the decimal
    /// places it is held to as an `i32` count ([`Numbers::scaled`]); `None`: as `f64`.
    pub digits: Option<u32>,
}

/// What the first pass over a CSV source found ([`Table::survey`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Survey {
    /// Where it came from (for error messages).
    pub source: PathBuf,
    /// Column names, in file order.
    pub headers: Vec<String>,
    /// Number of data rows.
    pub rows: usize,
    /// Every column's type, in file order.
    pub columns: Vec<SurveyedColumn>,
}

impl Survey {
    /// The second pass: the rows of `src` (the source surveyed) in tables of at most
    /// `chunk_rows` rows, typed as the survey decided, so any chunk types its columns as
    /// the whole file would. A source that no longer matches the survey (changed between
    /// the passes) is an error.
    pub fn chunks<'a>(
        &self,
        src: CsvSource<'a>,
        opts: CsvOptions,
        chunk_rows: usize,
    ) -> Result<Chunks<'a>> {
        let records = Records::new(src.name(), src.open()?, opts)?;
        if records.headers != self.headers {
            return Err(changed(src.name()));
        }
        Ok(Chunks {
            records,
            kinds: self.columns.iter().map(|c| (c.kind, c.digits)).collect(),
            chunk_rows: chunk_rows.max(1),
            remaining: self.rows,
        })
    }
}

/// The rows of a surveyed CSV source, a table of at most `chunk_rows` rows at a time
/// ([`Survey::chunks`]).
pub struct Chunks<'a> {
    records: Records<'a, Box<dyn std::io::Read + 'a>>,
    kinds: Vec<(Kind, Option<u32>)>,
    chunk_rows: usize,
    /// Rows the survey counted that are not yet read: the columns are sized for them
    /// up front, since growing a vector by doubling holds the old and the new buffer
    /// at once (1.5x a whole-file column at the moment of the last copy).
    remaining: usize,
}

impl Chunks<'_> {
    /// The next rows, or `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<Table>> {
        let source = self.records.source;
        let n = self.chunk_rows.min(self.remaining);
        let mut columns: Vec<Column> = self
            .kinds
            .iter()
            .map(|k| match k {
                (Kind::Numeric, Some(d)) => Column::Numeric(Numbers::scaled(*d, n)),
                (Kind::Numeric, None) => Column::Numeric(Numbers::wide(n)),
                (Kind::Text, _) => Column::Text(Vec::with_capacity(n)),
            })
            .collect();
        let mut lines = Lines::new();
        while lines.len() < self.chunk_rows {
            let Some(line) = self.records.next()? else {
                break;
            };
            for ((j, f), col) in self.records.record.iter().enumerate().zip(&mut columns) {
                let s = self.records.field(line, j, f)?;
                match col {
                    Column::Numeric(v) if is_missing_text(s) => v.push_missing(),
                    Column::Numeric(v) => v.push(s).ok_or_else(|| changed(source))?,
                    Column::Text(v) if is_missing_text(s) => v.push(String::new()),
                    Column::Text(v) => v.push(s.to_string()),
                }
            }
            lines.push(line);
        }
        self.remaining = self.remaining.saturating_sub(lines.len());
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(Table {
            source: source.into(),
            headers: self.records.headers.clone(),
            columns,
            lines,
        }))
    }
}

/// What the survey counts of one column's cells.
#[derive(Default)]
struct Tally {
    /// Present cells that read as numbers, and those that do not.
    numbers: u64,
    others: u64,
    /// The first number that is not finite (line, text, value).
    non_finite: Option<(u64, String, f64)>,
    /// The first three cells that are not numbers (line, text).
    offenders: Vec<(u64, String)>,
    first_present: Option<(u64, String)>,
    /// Whether the numbers can be held as scaled `i32`s.
    decimals: Decimals,
}

impl Tally {
    fn add(&mut self, line: u64, s: &str) {
        if is_missing_text(s) {
            return;
        }
        if self.first_present.is_none() {
            self.first_present = Some((line, s.to_string()));
        }
        match s.parse::<f64>() {
            Ok(v) => {
                self.numbers += 1;
                self.decimals.add(s, v);
                if !v.is_finite() && self.non_finite.is_none() {
                    self.non_finite = Some((line, s.to_string(), v));
                }
            }
            Err(_) => {
                self.others += 1;
                if self.offenders.len() < 3 {
                    self.offenders.push((line, s.to_string()));
                }
            }
        }
    }

    /// The column's type, or the error [`type_column`] gives for the same cells.
    fn decide(self, source: &Path, name: &str, j: usize) -> Result<SurveyedColumn> {
        if let Some((line, c, v)) = self.non_finite {
            return Err(non_finite(source, name, line, j, &c, v));
        }
        let kind = if self.others == 0 {
            Kind::Numeric
        } else if self.numbers >= 2 * self.others && self.numbers >= 3 {
            let shown: Vec<String> = self
                .offenders
                .iter()
                .map(|(line, c)| format!("`{c}` on line {line}"))
                .collect();
            return Err(mostly_numeric(
                source,
                name,
                self.offenders[0].0,
                j,
                self.others,
                &shown,
            ));
        } else {
            Kind::Text
        };
        Ok(SurveyedColumn {
            kind,
            first_present: self.first_present,
            digits: self.decimals.digits().filter(|_| kind == Kind::Numeric),
        })
    }
}

fn non_finite(source: &Path, name: &str, line: u64, j: usize, c: &str, v: f64) -> Error {
    Error::Csv { path: source.into(), line, column: j + 1, reason: format!("column `{name}` holds `{c}` ({v}); numbers must be finite: leave the cell empty or write NA to mark it missing") }
}

fn mostly_numeric(
    source: &Path,
    name: &str,
    line: u64,
    j: usize,
    others: u64,
    shown: &[String],
) -> Error {
    Error::Csv {
        path: source.into(),
        line,
        column: j + 1,
        reason: format!(
            "column `{name}` is numeric except for {} value(s): {}; fix them, or leave the cells empty / NA to mark them missing",
            others,
            shown.join(", ")
        ),
    }
}

fn changed(source: &Path) -> Error {
    Error::Format {
        path: source.into(),
        reason: "the file changed while being read; read it again when nothing writes to it".into(),
    }
}

/// Whether a reader yields only ASCII whitespace (stopping at the first other byte).
fn all_whitespace(mut r: impl std::io::Read) -> std::io::Result<bool> {
    let mut buf = [0u8; 4096];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if !buf[..n].iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(false);
        }
    }
}

/// The UTF-8 byte-order mark, skipped at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where CSV bytes come from, for readers that go over them more than once.
#[derive(Clone, Copy, Debug)]
pub enum CsvSource<'a> {
    /// A file, streamed (never read into memory whole).
    File(&'a Path),
    /// A file named `name` in messages (such as standard input saved to a temporary
    /// file, so it can be read twice).
    Named {
        /// The file.
        path: &'a Path,
        /// The name used in messages.
        name: &'a Path,
    },
    /// Bytes in memory (such as embedded data), named `name` in messages.
    Bytes {
        /// The name used in messages.
        name: &'a Path,
        /// The CSV text.
        bytes: &'a [u8],
    },
}

impl<'a> CsvSource<'a> {
    /// The name errors give.
    pub fn name(&self) -> &'a Path {
        match *self {
            CsvSource::File(p) => p,
            CsvSource::Named { name, .. } | CsvSource::Bytes { name, .. } => name,
        }
    }

    /// A reader positioned after the byte-order mark, if any.
    fn open(&self) -> Result<Box<dyn std::io::Read + 'a>> {
        match *self {
            CsvSource::File(path) | CsvSource::Named { path, .. } => {
                if path.is_dir() {
                    return Err(Error::Format {
                        path: path.into(),
                        reason: "is a directory, not a CSV file; give the path of a .csv file"
                            .into(),
                    });
                }
                let name = self.name();
                let file = std::fs::File::open(path).map_err(|e| Error::io(name, e))?;
                let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
                let head = reader.fill_buf().map_err(|e| Error::io(name, e))?;
                if head.starts_with(BOM) {
                    reader.consume(BOM.len());
                }
                Ok(Box::new(reader))
            }
            CsvSource::Bytes { bytes, .. } => {
                Ok(Box::new(bytes.strip_prefix(BOM).unwrap_or(bytes)))
            }
        }
    }
}

fn empty_file(source: &Path) -> Error {
    Error::Csv {
        path: source.into(),
        line: 1,
        column: 0,
        reason: "the file is empty; a CSV file needs a header line and at least one row".into(),
    }
}

fn no_rows(source: &Path) -> Error {
    Error::Csv {
        path: source.into(),
        line: 1,
        column: 0,
        reason: "the file has a header but no rows of data".into(),
    }
}

/// A reader that remembers where the line breaks are in what it has passed on, so the
/// line a record starts on can be told exactly. (The `csv` crate's own record positions
/// count a blank line, or the `\n` of a `\r\n` break, before a record as part of it,
/// which put errors one line too early in files with blank lines or Windows breaks.)
struct LineCounter<R> {
    inner: R,
    /// Bytes passed on so far.
    offset: u64,
    /// Offsets of the `\n` bytes passed on but not yet counted.
    breaks: std::collections::VecDeque<u64>,
    /// `\n` bytes counted so far (all before the last queried offset).
    counted: u64,
}

impl<R: std::io::Read> std::io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, &b)| b == b'\n') {
            self.breaks.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            offset: 0,
            breaks: Default::default(),
            counted: 0,
        }
    }

    /// The 1-based line of the record that ends at byte `end` (just after its
    /// terminator, if any) and holds `inner` line breaks inside quoted fields. Queries
    /// must come in increasing order of `end`.
    fn line_of_record(&mut self, end: u64, inner: u64) -> u64 {
        let mut ends_with_break = false;
        while let Some(&b) = self.breaks.front().filter(|&&b| b < end) {
            self.breaks.pop_front();
            self.counted += 1;
            ends_with_break = b + 1 == end;
        }
        1 + self.counted - u64::from(ends_with_break) - inner
    }
}

/// The header and the data records of a CSV stream, checked as they are read.
struct Records<'s, R: std::io::Read> {
    source: &'s Path,
    reader: ::csv::Reader<LineCounter<R>>,
    headers: Vec<String>,
    record: ::csv::ByteRecord,
}

impl<'s, R: std::io::Read> Records<'s, R> {
    /// Reads and checks the header.
    fn new(source: &'s Path, input: R, opts: CsvOptions) -> Result<Self> {
        let err = |line: u64, column: usize, reason: String| Error::Csv {
            path: source.into(),
            line,
            column,
            reason,
        };
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(opts.delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(LineCounter::new(input));
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(source, e))?
            .clone();
        let headers: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| utf8(h).map(|s| s.trim().to_string()).map_err(|off| err(1, i + 1, format!("invalid UTF-8 at byte {off} of the header field; save the file as UTF-8"))))
            .collect::<Result<_>>()?;
        if headers.len() == 1 && opts.delimiter == b',' {
            for (d, name) in [(b';', "';'"), (b'\t', "'\\t'")] {
                if header.as_slice().contains(&d) || headers[0].contains(d as char) {
                    return Err(err(1, 0, format!("the header has a single column but contains {name}; this looks like a {}-separated file: pass --delimiter {}", if d == b';' { "semicolon" } else { "tab" }, if d == b';' { "';'" } else { "tab" })));
                }
            }
        }
        if headers.len() <= 1 && headers.iter().all(String::is_empty) {
            // A blank first line: the file is empty, or its header is missing.
            let mut first = ::csv::ByteRecord::new();
            let more = reader
                .read_byte_record(&mut first)
                .map_err(|e| csv_error(source, e))?;
            if !more {
                return Err(empty_file(source));
            }
        }
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() {
                return Err(err(
                    1,
                    i + 1,
                    format!(
                        "column {} has an empty name; give every column a name",
                        i + 1
                    ),
                ));
            }
            if let Some(j) = headers[..i].iter().position(|g| g == h) {
                return Err(err(
                    1,
                    i + 1,
                    format!(
                        "duplicate column name `{h}` (also column {}); rename one of them",
                        j + 1
                    ),
                ));
            }
        }
        Ok(Records {
            source,
            reader,
            headers,
            record: ::csv::ByteRecord::new(),
        })
    }

    /// Reads the next record, skipping blank lines, and checks its number of fields.
    /// Returns its line number, or `None` at the end.
    fn next(&mut self) -> Result<Option<u64>> {
        let width = self.headers.len();
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                Err(e) => return Err(csv_error(self.source, e)),
            }
            let record = &self.record;
            if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
                continue; // a blank line
            }
            let end = self.reader.position().byte();
            let inner = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
            let line = self.reader.get_mut().line_of_record(end, inner);
            if record.len() != width {
                let what = if record.len() > width {
                    "too many"
                } else {
                    "too few"
                };
                return Err(Error::Csv { path: self.source.into(), line, column: record.len().min(width) + 1, reason: format!("{what} fields: {} instead of {} as in the header; check for a missing or extra separator", record.len(), width) });
            }
            return Ok(Some(line));
        }
    }

    /// Appends the fields of the current record (on `line`) to `cells`, trimmed.
    fn push_cells(&self, line: u64, cells: &mut [Vec<String>]) -> Result<()> {
        for (j, f) in self.record.iter().enumerate() {
            cells[j].push(self.field(line, j, f)?.to_string());
        }
        Ok(())
    }

    /// Field `j` (bytes `f`) of the record on `line` as trimmed text.
    fn field<'f>(&self, line: u64, j: usize, f: &'f [u8]) -> Result<&'f str> {
        let s = utf8(f).map_err(|off| Error::Csv {
            path: self.source.into(),
            line,
            column: j + 1,
            reason: format!("invalid UTF-8 at byte {off} of this field; save the file as UTF-8"),
        })?;
        Ok(s.trim())
    }
}

fn utf8(b: &[u8]) -> std::result::Result<&str, usize> {
    std::str::from_utf8(b).map_err(|e| e.valid_up_to() + 1)
}

fn csv_error(source: &Path, e: ::csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::Csv {
        path: source.into(),
        line,
        column: 0,
        reason: format!("cannot read CSV: {e}"),
    }
}

/// Of a column's present cells, how many read as numbers and how many do not.
fn cell_counts(cells: &[String]) -> [u64; 2] {
    let mut counts = [0u64; 2];
    for c in cells.iter().filter(|c| !is_missing_text(c)) {
        counts[usize::from(c.parse::<f64>().is_err())] += 1;
    }
    counts
}

/// Decides whether a column is numeric or text from `totals`, the counts of numbers and
/// non-numbers among the present cells of the whole column ([`cell_counts`], summed over
/// the processes that each hold some of its rows). A column whose present cells are
/// mostly numbers but not all is taken for a typo, reported with its first offenders
/// among `cells`.
fn type_column(
    source: &Path,
    name: &str,
    j: usize,
    cells: Vec<String>,
    lines: &Lines,
    totals: [u64; 2],
) -> Result<Column> {
    let mut values = Vec::with_capacity(cells.len());
    let mut offenders = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        if is_missing_text(c) {
            values.push(f64::NAN);
            continue;
        }
        match c.parse::<f64>() {
            Ok(v) if v.is_finite() => values.push(v),
            Ok(v) => return Err(non_finite(source, name, lines.get(i), j, c, v)),
            Err(_) => {
                offenders.push(i);
                values.push(f64::NAN);
            }
        }
    }
    let [numeric, others] = totals.map(|t| t as usize);
    if others == 0 {
        return Ok(Column::Numeric(values.into()));
    }
    if numeric >= 2 * others && numeric >= 3 {
        let Some(&first) = offenders.first() else {
            // The offending cells are in other processes' rows; they report them.
            return Err(Error::Csv {
                path: source.into(),
                line: 1,
                column: j + 1,
                reason: format!("column `{name}` is numeric except for {others} value(s) in rows read by another process; fix them, or leave the cells empty / NA to mark them missing"),
            });
        };
        let shown: Vec<String> = offenders
            .iter()
            .take(3)
            .map(|&i| format!("`{}` on line {}", cells[i], lines.get(i)))
            .collect();
        return Err(mostly_numeric(
            source,
            name,
            lines.get(first),
            j,
            others as u64,
            &shown,
        ));
    }
    Ok(Column::Text(
        cells
            .into_iter()
            .map(|c| {
                if is_missing_text(&c) {
                    String::new()
                } else {
                    c
                }
            })
            .collect(),
    ))
}

/// The candidate closest to `name` by edit distance (case-insensitive), if close enough
/// to be a likely typo.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Table> {
        Table::parse(Path::new("t.csv"), s.as_bytes(), CsvOptions::default())
    }

    #[test]
    fn reads_numeric_and_text_columns_with_missing_cells() {
        let t = parse("a,b,c\n1,x,2.5\nNA,y,\n3,,4\n").unwrap();
        assert_eq!(t.headers, ["a", "b", "c"]);
        assert_eq!(t.lines.to_vec(), [2, 3, 4]);
        match &t.columns[0] {
            Column::Numeric(v) => assert!(v.get(0) == 1.0 && v.get(1).is_nan() && v.get(2) == 3.0),
            c => panic!("{c:?}"),
        }
        assert_eq!(
            t.columns[1],
            Column::Text(vec!["x".into(), "y".into(), String::new()])
        );
    }

    #[test]
    fn accepts_bom_crlf_and_quoted_commas() {
        let t = parse("\u{feff}a,b\r\n\"1,5\",2\r\n\"x, y\",3\r\n").unwrap();
        assert_eq!(t.headers, ["a", "b"]);
        assert_eq!(
            t.columns[0],
            Column::Text(vec!["1,5".into(), "x, y".into()])
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3:2") && e.contains("too few"), "{e}");
        let e = parse("a,b\n1,2\n3,4,5\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3:3") && e.contains("too many"), "{e}");
        let e = parse("a,b\n1,2\n3,x\n4,5\n6,7\n").unwrap_err().to_string();
        assert!(
            e.contains("t.csv:3:2") && e.contains("`x` on line 3"),
            "{e}"
        );
        let e = parse("a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("duplicate column name `a`"), "{e}");
        let e = parse("a;b\n1;2\n").unwrap_err().to_string();
        assert!(e.contains("--delimiter"), "{e}");
        let e = parse("a,b\n").unwrap_err().to_string();
        assert!(e.contains("no rows"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = parse("a,b\n1,inf\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:2:2") && e.contains("finite"), "{e}");
    }

    #[test]
    fn suggests_close_column_names() {
        let t = parse("MedInc,MedHouseVal\n1,2\n").unwrap();
        let e = t
            .require_column("MedHouseValue", "target")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `MedHouseVal`"), "{e}");
    }

    #[test]
    fn reading_a_shard_keeps_only_its_rows_and_types_columns_over_all_shards() {
        use crate::data::collective::tests::run_sharded;
        // Column b: numbers on rows 0-2, words on 3-5, so text; shard 0 alone (rows
        // 0, 2, 4) would see two numbers and one word.
        let bytes = b"\xEF\xBB\xBFa,b\n1,10\n2,11\n\n3,12\n4,w\n5,x\n6,y\n";
        let src = CsvSource::Bytes {
            name: Path::new("s.csv"),
            bytes,
        };
        assert_eq!(Table::count_rows(src, CsvOptions::default()).unwrap(), 6);
        let shards = run_sharded(2, |rank, c| {
            let keep: Vec<usize> = (rank..6).step_by(2).collect();
            Table::read_rows(src, CsvOptions::default(), &keep, c).unwrap()
        });
        assert_eq!(
            shards[0].columns[0],
            Column::Numeric(vec![1.0, 3.0, 5.0].into())
        );
        assert_eq!(
            shards[1].columns[0],
            Column::Numeric(vec![2.0, 4.0, 6.0].into())
        );
        assert_eq!(
            shards[0].columns[1],
            Column::Text(vec!["10".into(), "12".into(), "x".into()])
        );
        assert_eq!(
            shards[0].lines.to_vec(),
            [2, 5, 7],
            "line numbers survive (line 4 is blank)"
        );
        assert_eq!(shards[1].lines.to_vec(), [3, 6, 8]);
        let whole = Table::parse(Path::new("s.csv"), bytes, CsvOptions::default()).unwrap();
        assert!(matches!(whole.columns[1], Column::Text(_)));
    }

    #[test]
    fn reading_a_shard_streams_a_file_and_reports_errors_by_line() {
        let dir = std::env::temp_dir().join(format!("backprop-csv-shard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.csv");
        std::fs::write(&path, "a,b\n1,2\n3,4\n5\n").unwrap();
        let err = Table::count_rows(CsvSource::File(&path), CsvOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains(":4:2:") && err.to_string().contains("too few fields"),
            "{err}"
        );
        std::fs::write(&path, "a,b\n1,2\n3,4\n").unwrap();
        let t = Table::read_rows(
            CsvSource::File(&path),
            CsvOptions::default(),
            &[1],
            &mut crate::data::collective::Alone,
        )
        .unwrap();
        assert_eq!(t.columns[1], Column::Numeric(vec![4.0].into()));
        std::fs::write(&path, " \n").unwrap();
        let err = Table::count_rows(CsvSource::File(&path), CsvOptions::default()).unwrap_err();
        assert!(err.to_string().contains("the file is empty"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Chunks of any size hold the rows of the whole table, typed as the whole file: a
    /// column whose numbers give way to words later is text in every chunk.
    #[test]
    fn chunks_hold_the_rows_typed_as_the_whole_file() {
        let mut text = String::from("\u{feff}n,late,t\r\n");
        for i in 0..20 {
            let late = if i < 8 { format!("{i}.50") } else { "w".into() };
            let n = if i % 5 == 0 {
                "NA".into()
            } else {
                format!("{}", i * 3)
            };
            text.push_str(&format!("{n},{late},\"x, {i}\"\r\n"));
            if i == 10 {
                text.push_str("\r\n"); // a blank line
            }
        }
        let src = CsvSource::Bytes {
            name: Path::new("c.csv"),
            bytes: text.as_bytes(),
        };
        let whole =
            Table::parse(Path::new("c.csv"), text.as_bytes(), CsvOptions::default()).unwrap();
        assert!(matches!(whole.columns[1], Column::Text(_)));
        assert_eq!(whole.columns[1].len(), 20);
        let survey = Table::survey(src, CsvOptions::default()).unwrap();
        assert_eq!(survey.rows, 20);
        assert_eq!(
            survey.columns[1].first_present,
            Some((2, "0.50".to_string()))
        );
        for chunk in [1, 3, 19, 20, 21] {
            let mut chunks = survey.chunks(src, CsvOptions::default(), chunk).unwrap();
            let mut rows = 0;
            while let Some(t) = chunks.next_chunk().unwrap() {
                assert!(t.rows() <= chunk && t.rows() > 0);
                assert_eq!(t.headers, whole.headers);
                for (j, c) in t.columns.iter().enumerate() {
                    let want = match &whole.columns[j] {
                        Column::Numeric(v) => {
                            Column::Numeric(v.iter().skip(rows).take(t.rows()).collect())
                        }
                        Column::Text(v) => Column::Text(v[rows..rows + t.rows()].to_vec()),
                    };
                    // NaN != NaN: compare the bits.
                    let same = match (c, &want) {
                        (Column::Numeric(a), Column::Numeric(b)) => {
                            a.iter().map(f64::to_bits).eq(b.iter().map(f64::to_bits))
                        }
                        (a, b) => a == b,
                    };
                    assert!(same, "{chunk} {j}: {c:?} {want:?}");
                }
                assert_eq!(
                    t.lines.to_vec(),
                    whole.lines.to_vec()[rows..rows + t.rows()],
                    "{chunk}"
                );
                rows += t.rows();
            }
            assert_eq!(rows, 20, "{chunk}");
        }
    }

    /// Errors name the line a record is on, also after blank lines, with Windows line
    /// breaks and after quoted fields that span lines.
    #[test]
    fn line_numbers_count_blank_lines_crlf_and_quoted_breaks() {
        for (text, line) in [
            ("a,b\n1,2\n\n\n3,x\n4,5\n6,7\n8,9\n", 5),
            ("a,b\r\n1,2\r\n3,x\r\n4,5\r\n6,7\r\n8,9\r\n", 3),
            ("a,b\r\n1,\"2\r\nz\"\r\n\r\n3,4\r\n", 3),
            ("a,b\n1,2\n3,4\n5,6\n7,8\n9,x", 6),
        ] {
            let t = Table::parse(Path::new("l.csv"), text.as_bytes(), CsvOptions::default());
            match t {
                Err(e) => assert!(
                    e.to_string().starts_with(&format!("l.csv:{line}:2:")),
                    "{text:?}: {e}"
                ),
                Ok(t) => assert_eq!(t.lines.last(), Some(line as u64 + 2), "{text:?}"),
            }
        }
        let t = parse("a,b\r\n1,2\r\n\r\n3,4\r\n5,6").unwrap();
        assert_eq!(t.lines.to_vec(), [2, 4, 5]);
    }
}
