//! Columns that name rows rather than describe them (customer numbers, car model
//! names, addresses), which the command line leaves out of the features.

use super::csv::Column;

/// A text column whose present cells are at least this share distinct values names
/// its rows (a customer number, a car's model name, a street address) rather than
/// describing them: one-hot encoded, it becomes one input per row that no test row can
/// share, which only lets the network memorise the training rows.
pub const IDENTIFIER_SHARE: f64 = 0.5;
/// Columns shorter than this are never called identifiers (too few rows to judge).
pub const IDENTIFIER_MIN_ROWS: usize = 20;

/// For a text column that looks like an identifier ([`IDENTIFIER_SHARE`]), its number
/// of distinct values and of present cells; `None` for numbers and ordinary text.
pub fn identifier_like(col: &Column) -> Option<(usize, usize)> {
    let Column::Text(v) = col else {
        return None;
    };
    let mut present: Vec<&str> = v
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let n = present.len();
    if n < IDENTIFIER_MIN_ROWS {
        return None;
    }
    present.sort_unstable();
    present.dedup();
    let distinct = present.len();
    (distinct as f64 >= IDENTIFIER_SHARE * n as f64).then_some((distinct, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_mostly_distinct_text() {
        let text = |f: &dyn Fn(usize) -> String| Column::Text((0..40).map(f).collect());
        // user0, user1, ...: every value distinct.
        assert_eq!(
            identifier_like(&text(&|i| format!("user{i}"))),
            Some((40, 40))
        );
        // 20 distinct names in 40 rows: at the share, an identifier.
        assert_eq!(
            identifier_like(&text(&|i| format!("n{}", i / 2))),
            Some((20, 40))
        );
        // 19 of 40 is a category.
        assert_eq!(
            identifier_like(&text(&|i| format!("n{}", i.min(37) / 2))),
            None
        );
        // Missing cells do not count; too few present cells are never judged.
        assert_eq!(
            identifier_like(&text(&|i| if i < 25 {
                String::new()
            } else {
                format!("u{i}")
            })),
            None
        );
        assert_eq!(
            identifier_like(&Column::Numeric((0..40).map(|i| i as f64).collect())),
            None
        );
    }
}
