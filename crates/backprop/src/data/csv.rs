//! Reading a CSV table: header, typed columns, and errors that name the line and column.

use std::path::{Path, PathBuf};

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
    Numeric(Vec<f64>),
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
            Column::Numeric(v) => v[i].is_nan(),
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
    pub lines: Vec<u64>,
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
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Table::parse(path, &bytes, opts)
    }

    /// Parses CSV `bytes`; `source` names them in errors.
    pub fn parse(source: &Path, bytes: &[u8], opts: CsvOptions) -> Result<Table> {
        let err = |line: u64, column: usize, reason: String| Error::Csv {
            path: source.into(),
            line,
            column,
            reason,
        };
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(err(
                1,
                0,
                "the file is empty; a CSV file needs a header line and at least one row".into(),
            ));
        }
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(opts.delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(body);
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
        let width = headers.len();
        let mut cells: Vec<Vec<String>> = vec![Vec::new(); width];
        let mut lines = Vec::new();
        let mut record = ::csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(source, e)),
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
                continue; // a blank line
            }
            if record.len() != width {
                let what = if record.len() > width {
                    "too many"
                } else {
                    "too few"
                };
                return Err(err(line, record.len().min(width) + 1, format!("{what} fields: {} instead of {} as in the header; check for a missing or extra separator", record.len(), width)));
            }
            for (j, f) in record.iter().enumerate() {
                let s = utf8(f).map_err(|off| {
                    err(
                        line,
                        j + 1,
                        format!(
                            "invalid UTF-8 at byte {off} of this field; save the file as UTF-8"
                        ),
                    )
                })?;
                cells[j].push(s.trim().to_string());
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(err(
                1,
                0,
                "the file has a header but no rows of data".into(),
            ));
        }
        let columns = cells
            .into_iter()
            .enumerate()
            .map(|(j, c)| type_column(source, &headers[j], j, c, &lines))
            .collect::<Result<_>>()?;
        Ok(Table {
            source: source.into(),
            headers,
            columns,
            lines,
        })
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

/// Decides whether a column is numeric or text. A column whose present cells are
/// mostly numbers but not all is taken for a typo, reported with its first offenders.
fn type_column(
    source: &Path,
    name: &str,
    j: usize,
    cells: Vec<String>,
    lines: &[u64],
) -> Result<Column> {
    let mut values = Vec::with_capacity(cells.len());
    let mut offenders = Vec::new();
    let mut numeric = 0usize;
    for (i, c) in cells.iter().enumerate() {
        if is_missing_text(c) {
            values.push(f64::NAN);
            continue;
        }
        match c.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                numeric += 1;
                values.push(v);
            }
            Ok(v) => {
                return Err(Error::Csv { path: source.into(), line: lines[i], column: j + 1, reason: format!("column `{name}` holds `{c}` ({v}); numbers must be finite: leave the cell empty or write NA to mark it missing") });
            }
            Err(_) => {
                offenders.push(i);
                values.push(f64::NAN);
            }
        }
    }
    if offenders.is_empty() {
        return Ok(Column::Numeric(values));
    }
    if numeric >= 2 * offenders.len().max(1) && numeric >= 3 {
        let first = offenders[0];
        let shown: Vec<String> = offenders
            .iter()
            .take(3)
            .map(|&i| format!("`{}` on line {}", cells[i], lines[i]))
            .collect();
        return Err(Error::Csv {
            path: source.into(),
            line: lines[first],
            column: j + 1,
            reason: format!(
                "column `{name}` is numeric except for {} value(s): {}; fix them, or leave the cells empty / NA to mark them missing",
                offenders.len(),
                shown.join(", ")
            ),
        });
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
        assert_eq!(t.lines, [2, 3, 4]);
        match &t.columns[0] {
            Column::Numeric(v) => assert!(v[0] == 1.0 && v[1].is_nan() && v[2] == 3.0),
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
}
