//! The bytes under a CSV table: where they come from ([`CsvSource`]), and the header
//! and records read from them, each checked (field counts, UTF-8) and placed on its
//! exact file line. `csv.rs` builds tables and surveys on top.

use std::io::BufRead;
use std::path::Path;

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

/// Whether a reader yields only ASCII whitespace (stopping at the first other byte).
pub(super) fn all_whitespace(mut r: impl std::io::Read) -> std::io::Result<bool> {
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
    pub(super) fn open(&self) -> Result<Box<dyn std::io::Read + 'a>> {
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

pub(super) fn empty_file(source: &Path) -> Error {
    Error::Csv {
        path: source.into(),
        line: 1,
        column: 0,
        reason: "the file is empty; a CSV file needs a header line and at least one row".into(),
    }
}

pub(super) fn no_rows(source: &Path) -> Error {
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
pub(super) struct Records<'s, R: std::io::Read> {
    pub(super) source: &'s Path,
    reader: ::csv::Reader<LineCounter<R>>,
    pub(super) headers: Vec<String>,
    pub(super) record: ::csv::ByteRecord,
}

impl<'s, R: std::io::Read> Records<'s, R> {
    /// Reads and checks the header.
    pub(super) fn new(source: &'s Path, input: R, opts: CsvOptions) -> Result<Self> {
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
    pub(super) fn next(&mut self) -> Result<Option<u64>> {
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
    pub(super) fn push_cells(&self, line: u64, cells: &mut [Vec<String>]) -> Result<()> {
        for (j, f) in self.record.iter().enumerate() {
            cells[j].push(self.field(line, j, f)?.to_string());
        }
        Ok(())
    }

    /// Field `j` (bytes `f`) of the record on `line` as trimmed text.
    pub(super) fn field<'f>(&self, line: u64, j: usize, f: &'f [u8]) -> Result<&'f str> {
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
