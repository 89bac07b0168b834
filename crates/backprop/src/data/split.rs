//! Seeded train / validation / test splits.

use crate::error::{Error, Result};
use crate::seed::{self, Stream};
use rand::seq::SliceRandom;

/// Row indices of the three splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Rows to learn from.
    pub train: Vec<usize>,
    /// Rows for early stopping and model selection.
    pub valid: Vec<usize>,
    /// Rows held out for the final, honest error.
    pub test: Vec<usize>,
}

/// Shuffles `0..n` with the split stream of `seed` ([`Stream::Split`]) and cuts it into test, validation and training rows
/// (in that order), rounding each held-out part to the nearest row.
pub fn split_rows(n: usize, valid_fraction: f64, test_fraction: f64, seed: u64) -> Result<Split> {
    for (name, f) in [
        ("valid-fraction", valid_fraction),
        ("test-fraction", test_fraction),
    ] {
        if !(0.0..1.0).contains(&f) {
            return Err(Error::config(name, format!("must be in [0, 1), got {f}")));
        }
    }
    if valid_fraction + test_fraction >= 1.0 {
        return Err(Error::config(
            "valid-fraction",
            "validation and test fractions together must leave rows to train on",
        ));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut seed::rng(seed, Stream::Split));
    let n_test = (n as f64 * test_fraction).round() as usize;
    let n_valid = (n as f64 * valid_fraction).round() as usize;
    let need = usize::from(test_fraction > 0.0) + usize::from(valid_fraction > 0.0) + 1;
    if n < need
        || (test_fraction > 0.0 && n_test == 0)
        || (valid_fraction > 0.0 && n_valid == 0)
        || n_test + n_valid >= n
    {
        return Err(Error::config(
            "data",
            format!("{n} row(s) are too few for the requested splits (validation {valid_fraction}, test {test_fraction}); add rows or lower --valid-fraction / --test-fraction"),
        ));
    }
    // The training rows keep the shuffled list's buffer (the held-out parts are copied
    // out and the rest moved to its front), so the rows are never held twice.
    let test = idx[..n_test].to_vec();
    let valid = idx[n_test..n_test + n_valid].to_vec();
    idx.drain(..n_test + n_valid);
    idx.shrink_to_fit();
    Ok(Split {
        train: idx,
        valid,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_partition_the_rows_and_are_seeded() {
        let s = split_rows(100, 0.1, 0.2, 7).unwrap();
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (70, 10, 20));
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.valid)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(s, split_rows(100, 0.1, 0.2, 7).unwrap());
        assert_ne!(s, split_rows(100, 0.1, 0.2, 8).unwrap());
        assert!(split_rows(2, 0.1, 0.2, 0).is_err());
    }
}
