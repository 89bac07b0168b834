//! Reading a CSV table: header, typed columns, and errors that name the line and column.

use std::path::{Path, PathBuf};

use super::cells::Decimals;
pub use super::cells::{Lines, Numbers};
use super::collective::Collective;
use super::records::{all_whitespace, empty_file, no_rows, Records};
pub use super::records::{CsvOptions, CsvSource};
use crate::error::{Error, Result};

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
