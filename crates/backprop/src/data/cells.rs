//! Compact storage for a table's numbers and line numbers (issue 19: `train` must hold
//! a big table in little more than twice its size as `f32`).
//!
//! * [`Numbers`] holds a numeric column as `f64`, or, when every cell of the column is a
//!   plain decimal such as `8.3252` or `-122.23` that fits, as an `i32` count of
//!   `10^-digits` (half the memory). Both give back exactly the `f64` that
//!   `str::parse::<f64>` gives for the cell's text: the stored integer `m` and `10^digits`
//!   are exact `f64`s, and IEEE division rounds `m / 10^digits` correctly, as the parser
//!   rounds the same rational number (Clinger's fast path). So fitted scalers, encoded
//!   inputs and model files are the same bits whichever way a column is held.
//! * [`Lines`] holds the file line of every row as runs of consecutive lines: nothing
//!   per row for an ordinary file, whose rows are on lines 2, 3, 4, ...

/// Decimal places a [`Numbers`] column may scale by: `10^9` and every count below
/// `2^31` are exact in `f64`, so the division that reads a cell back is exact-input.
const MAX_DIGITS: u32 = 9;
/// Largest magnitude a scaled cell may have (below `i32::MAX`, and `i32::MIN` is the
/// missing cell).
const MAX_SCALED: i64 = 2_000_000_000;
/// The missing cell of a scaled column (every real cell is within [`MAX_SCALED`]).
const MISSING: i32 = i32::MIN;
const POW10: [f64; MAX_DIGITS as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The cells of a numeric column; missing cells read as NaN.
#[derive(Clone, Debug)]
pub struct Numbers(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// Any finite numbers.
    Wide(Vec<f64>),
    /// Cell `i` is `cells[i] / 10^digits` ([`MISSING`]: NaN).
    Scaled { cells: Vec<i32>, digits: u32 },
}

impl Numbers {
    /// An empty column that stores its cells as `f64`, with room for `n`.
    pub fn wide(n: usize) -> Numbers {
        Numbers(Repr::Wide(Vec::with_capacity(n)))
    }

    /// An empty column of decimals with at most `digits` places ([`Decimals::digits`]),
    /// with room for `n` cells.
    pub fn scaled(digits: u32, n: usize) -> Numbers {
        assert!(digits <= MAX_DIGITS, "at most {MAX_DIGITS} decimal places");
        Numbers(Repr::Scaled {
            cells: Vec::with_capacity(n),
            digits,
        })
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Wide(v) => v.len(),
            Repr::Scaled { cells, .. } => cells.len(),
        }
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `i` (NaN if missing).
    pub fn get(&self, i: usize) -> f64 {
        match &self.0 {
            Repr::Wide(v) => v[i],
            Repr::Scaled { cells, digits } => match cells[i] {
                MISSING => f64::NAN,
                m => f64::from(m) / POW10[*digits as usize],
            },
        }
    }

    /// The cells in order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Appends a missing cell.
    pub fn push_missing(&mut self) {
        match &mut self.0 {
            Repr::Wide(v) => v.push(f64::NAN),
            Repr::Scaled { cells, .. } => cells.push(MISSING),
        }
    }

    /// Appends the cell whose text is `s`; `None` if `s` is not a finite number this
    /// column can hold (the text is parsed once: a scaled column reads its digits).
    pub fn push(&mut self, s: &str) -> Option<()> {
        match &mut self.0 {
            Repr::Wide(v) => v.push(s.parse::<f64>().ok().filter(|x| x.is_finite())?),
            Repr::Scaled { cells, digits } => cells.push(scaled(s, *digits)?),
        }
        Some(())
    }

    /// Bytes the cells take.
    pub fn bytes(&self) -> usize {
        match &self.0 {
            Repr::Wide(v) => v.len() * 8,
            Repr::Scaled { cells, .. } => cells.len() * 4,
        }
    }
}

impl From<Vec<f64>> for Numbers {
    fn from(v: Vec<f64>) -> Numbers {
        Numbers(Repr::Wide(v))
    }
}

impl FromIterator<f64> for Numbers {
    fn from_iter<I: IntoIterator<Item = f64>>(it: I) -> Numbers {
        Numbers(Repr::Wide(it.into_iter().collect()))
    }
}

/// Equal values cell by cell, as `Vec<f64>`'s equality (NaN is unequal to itself),
/// however each side is stored.
impl PartialEq for Numbers {
    fn eq(&self, other: &Numbers) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// A plain decimal's digits: `[+-]digits[.digits]`, at most 18 digits in all. Returns
/// the digits as an integer, the number of places after the point and whether a minus
/// sign came first; `None` for anything else (exponents, `inf`, long numbers).
fn plain_decimal(s: &str) -> Option<(u64, u32, bool)> {
    let b = s.as_bytes();
    let (neg, body) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut m, mut digits, mut places, mut point) = (0u64, 0u32, 0u32, false);
    for &c in body {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 18 {
                    return None;
                }
                m = m * 10 + u64::from(c - b'0');
                places += u32::from(point);
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    (digits > 0).then_some((m, places, neg))
}

/// Cell text `s` as a count of `10^-digits`, if it is a plain decimal with at most
/// `digits` places whose count fits (and not a negative zero, whose sign the count
/// would lose).
fn scaled(s: &str, digits: u32) -> Option<i32> {
    let (m, places, neg) = plain_decimal(s)?;
    if places > digits || (neg && m == 0) {
        return None;
    }
    let m = i64::try_from(m)
        .ok()?
        .checked_mul(10i64.pow(digits - places))?;
    if m > MAX_SCALED {
        return None;
    }
    let m = if neg { -m } else { m };
    i32::try_from(m).ok()
}

/// What the first pass over a column learns about whether it can be held scaled: the
/// most decimal places of its cells, their largest magnitude, and whether every present
/// cell was a plain decimal.
#[derive(Clone, Debug)]
pub struct Decimals {
    plain: bool,
    places: u32,
    largest: f64,
}

impl Default for Decimals {
    fn default() -> Self {
        Decimals {
            plain: true,
            places: 0,
            largest: 0.0,
        }
    }
}

impl Decimals {
    /// Notes a present numeric cell with text `s` and value `x`.
    pub fn add(&mut self, s: &str, x: f64) {
        if !self.plain {
            return;
        }
        match plain_decimal(s) {
            Some((m, places, neg)) if !(neg && m == 0) => {
                self.places = self.places.max(places);
                self.largest = self.largest.max(x.abs());
            }
            _ => self.plain = false,
        }
    }

    /// The decimal places to scale the column by, if every cell fits as an `i32`.
    pub fn digits(&self) -> Option<u32> {
        let fits = self.plain
            && self.places <= MAX_DIGITS
            && self.largest * POW10[self.places as usize] < 0.95 * MAX_SCALED as f64;
        fits.then_some(self.places)
    }
}

/// The file line of every row of a table, stored as runs of consecutive lines (see the
/// module docs); rows kept from all over a file (a process's shard) fall back to a
/// plain list once runs would take more room.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    len: usize,
    /// `(first row, its line)` of every run of rows on consecutive lines.
    runs: Vec<(usize, u64)>,
    /// Every row's line, once runs stopped paying.
    each: Option<Vec<u64>>,
}

impl Lines {
    /// No rows.
    pub fn new() -> Lines {
        Lines::default()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The line of row `i`.
    pub fn get(&self, i: usize) -> u64 {
        assert!(i < self.len, "row {i} of {}", self.len);
        if let Some(each) = &self.each {
            return each[i];
        }
        let k = self.runs.partition_point(|&(r, _)| r <= i) - 1;
        let (row, line) = self.runs[k];
        line + (i - row) as u64
    }

    /// The line of the last row.
    pub fn last(&self) -> Option<u64> {
        (self.len > 0).then(|| self.get(self.len - 1))
    }

    /// Appends a row on `line`.
    pub fn push(&mut self, line: u64) {
        if let Some(each) = &mut self.each {
            each.push(line);
        } else if self.len > 0 && self.get(self.len - 1) + 1 == line {
            // Continues the last run.
        } else if self.runs.len() * 2 > self.len + 8 {
            let mut each: Vec<u64> = self.iter().collect();
            each.push(line);
            self.each = Some(each);
            self.runs = Vec::new();
        } else {
            self.runs.push((self.len, line));
        }
        self.len += 1;
    }

    /// The lines in row order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    /// The lines in row order, as a vector.
    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }
}

impl FromIterator<u64> for Lines {
    fn from_iter<I: IntoIterator<Item = u64>>(it: I) -> Lines {
        let mut lines = Lines::new();
        for l in it {
            lines.push(l);
        }
        lines
    }
}

impl PartialEq for Lines {
    fn eq(&self, other: &Lines) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way a plain decimal can be written reads back as the parser's `f64`, bit
    /// for bit, including the worst cases for rounding (many digits, halfway-looking
    /// values) and the largest counts.
    #[test]
    fn scaled_cells_read_back_as_the_parser_reads_them() {
        let small = [
            "0",
            "+0",
            "0.0",
            "1",
            "-1",
            "8.3252",
            "-122.23",
            "41.0",
            "5.00001",
            "0.1",
            "0.3",
            "-0.7",
            "2.5",
            "007.50",
            ".5",
            "5.",
            "-.25",
            "12345.6789",
            "-18999.99999",
        ];
        let fine = [
            "0.000000001",
            "0.999999999",
            "1.000000001",
            "-1.5",
            "0.314159265",
        ];
        for (texts, places) in [(&small[..], 5), (&fine[..], 9)] {
            let mut d = Decimals::default();
            for s in texts {
                d.add(s, s.parse().unwrap());
            }
            assert_eq!(d.digits(), Some(places), "{texts:?}");
            let mut col = Numbers::scaled(places, 0);
            for s in texts {
                col.push(s).expect("fits");
            }
            col.push_missing();
            for (i, s) in texts.iter().enumerate() {
                let want: f64 = s.parse().unwrap();
                assert_eq!(col.get(i).to_bits(), want.to_bits(), "{s}");
            }
            assert!(col.get(texts.len()).is_nan());
            assert_eq!(col.bytes(), 4 * (texts.len() + 1));
        }
    }

    /// Pseudo-random decimals of every place count read back exactly.
    #[test]
    fn random_decimals_read_back_exactly() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for places in 0..=MAX_DIGITS {
            let mut col = Numbers::scaled(places, 0);
            let mut texts = Vec::new();
            for _ in 0..20_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let m = (state % 1_999_999_999) as i64 - 999_999_999;
                let s = if places == 0 {
                    m.to_string()
                } else {
                    let p = 10i64.pow(places);
                    let sign = if m < 0 { "-" } else { "" };
                    format!(
                        "{sign}{}.{:0w$}",
                        m.abs() / p,
                        m.abs() % p,
                        w = places as usize
                    )
                };
                if col.push(&s).is_some() {
                    texts.push(s);
                }
            }
            assert!(texts.len() > 19_000, "{places}: {}", texts.len());
            for (i, s) in texts.iter().enumerate() {
                let want: f64 = s.parse().unwrap();
                assert_eq!(col.get(i).to_bits(), want.to_bits(), "{s}");
            }
        }
    }

    #[test]
    fn columns_that_do_not_fit_stay_wide() {
        for bad in [
            ["1.5", "1e3"],
            ["1.5", "6.984126984126984"],
            ["1", "-0.0"],
            ["1", "3000000000"],
            ["1", "inf"],
        ] {
            let mut d = Decimals::default();
            for s in bad {
                d.add(s, s.parse().unwrap());
            }
            assert_eq!(d.digits(), None, "{bad:?}");
        }
        let mut col = Numbers::scaled(1, 0);
        assert_eq!(col.push("1.25"), None, "more places than surveyed");
        let mut wide = Numbers::wide(0);
        assert_eq!(wide.push("inf"), None);
        assert_eq!(wide.push("1e3"), Some(()));
        assert_eq!(wide.get(0), 1000.0);
    }

    #[test]
    fn lines_store_runs_and_fall_back_to_a_list() {
        let ordinary: Lines = (2..1002).collect();
        assert_eq!(ordinary.runs.len(), 1);
        assert_eq!(ordinary.get(999), 1001);
        let gaps = [2, 3, 5, 6, 7, 10, 11];
        let l: Lines = gaps.into_iter().collect();
        assert_eq!(l.to_vec(), gaps);
        assert_eq!(l.last(), Some(11));
        let scattered: Vec<u64> = (0..1000).map(|i| 2 + 3 * i).collect();
        let l: Lines = scattered.iter().copied().collect();
        assert!(l.each.is_some());
        assert_eq!(l.to_vec(), scattered);
        assert_eq!(l, scattered.into_iter().collect::<Lines>());
    }
}
