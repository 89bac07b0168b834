//! How good the predictions are: regression errors and classification scores.
//!
//! Argument order follows scikit-learn (`actual` first, then `predicted`), and so do the
//! conventions where a ratio is undefined: a class never predicted has precision 0, a
//! class absent from the data has recall 0, and R² of a constant target is 1 for a
//! perfect prediction and 0 otherwise. Sums are accumulated in `f64`.

use serde::{Deserialize, Serialize};

use crate::activation::{sigmoid, softmax_row};
use crate::matrix::Matrix;

/// Regression errors, in the target's units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Root mean squared error, `√(mean((p - y)²))`.
    pub rmse: f64,
    /// Mean absolute error, `mean(|p - y|)`.
    pub mae: f64,
    /// Coefficient of determination, `1 - Σ(y - p)² / Σ(y - ȳ)²`.
    pub r2: f64,
}

impl RegressionMetrics {
    /// All three figures for `predicted` against `actual`.
    pub fn compute(actual: &[f32], predicted: &[f32]) -> Self {
        RegressionMetrics {
            rmse: rmse(actual, predicted),
            mae: mae(actual, predicted),
            r2: r2(actual, predicted),
        }
    }
}

/// [`RegressionMetrics`] over rows that come in chunks, in constant memory.
///
/// The squared and absolute errors are summed in `f64` in row order, as [`rmse`] and
/// [`mae`] sum them, so RMSE and MAE equal theirs bit for bit. R² needs the mean of all
/// targets before their spread about it; here the spread comes from Welford's running
/// update, which is within about 1e-15 relative of the two-pass sum [`r2`] takes (so R²
/// agrees to about 1e-15 times `ss_res / ss_tot`, far below the digits anyone reads).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RegressionSums {
    rows: u64,
    sse: f64,
    sae: f64,
    mean: f64,
    /// Σ(y - mean)² so far (Welford).
    m2: f64,
}

impl RegressionSums {
    /// Adds rows: `predicted` against `actual`.
    pub fn update(&mut self, actual: &[f32], predicted: &[f32]) {
        check_lengths(actual.len(), predicted.len(), "RegressionSums::update");
        for (&y, &p) in actual.iter().zip(predicted) {
            let (y, p) = (y as f64, p as f64);
            self.sse += (p - y).powi(2);
            self.sae += (p - y).abs();
            self.rows += 1;
            let d = y - self.mean;
            self.mean += d / self.rows as f64;
            self.m2 += d * (y - self.mean);
        }
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The metrics of all rows added (zeros for none, as [`RegressionMetrics::compute`]).
    pub fn finish(&self) -> RegressionMetrics {
        if self.rows == 0 {
            return RegressionMetrics {
                rmse: 0.0,
                mae: 0.0,
                r2: 0.0,
            };
        }
        let n = self.rows as f64;
        let r2 = if self.m2 == 0.0 {
            if self.sse == 0.0 {
                1.0
            } else {
                0.0
            }
        } else {
            1.0 - self.sse / self.m2
        };
        RegressionMetrics {
            rmse: (self.sse / n).sqrt(),
            mae: self.sae / n,
            r2,
        }
    }
}

/// [`ClassificationMetrics`] over rows that come in chunks, in constant memory: the
/// confusion matrix and the log-loss sum (in row order, as [`log_loss`] sums it), from
/// which every figure follows, so the result equals [`ClassificationMetrics::compute`]
/// on all rows at once exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationSums {
    confusion: Vec<Vec<u64>>,
    log_loss: f64,
    rows: usize,
}

impl ClassificationSums {
    /// No rows yet, for probabilities with `cols` columns (one column: the probability
    /// of class 1 of a binary problem).
    pub fn new(cols: usize) -> Self {
        let classes = if cols == 1 { 2 } else { cols };
        ClassificationSums {
            confusion: vec![vec![0; classes]; classes],
            log_loss: 0.0,
            rows: 0,
        }
    }

    /// Adds rows: class probabilities `probs` against the actual classes.
    ///
    /// # Panics
    /// If `actual` and `probs` differ in length, `probs` has another width than given
    /// to [`ClassificationSums::new`], or a class is out of range.
    pub fn update(&mut self, actual: &[usize], probs: &Matrix) {
        check_lengths(actual.len(), probs.rows(), "ClassificationSums::update");
        let classes = if probs.cols() == 1 { 2 } else { probs.cols() };
        assert_eq!(
            classes,
            self.confusion.len(),
            "ClassificationSums::update: {classes} classes vs {}",
            self.confusion.len()
        );
        let predicted = argmax_rows(probs);
        let counts = confusion_matrix(actual, &predicted, classes);
        for (row, add) in self.confusion.iter_mut().zip(counts) {
            for (c, a) in row.iter_mut().zip(add) {
                *c += a;
            }
        }
        // Row by row into the running sum, so the order of additions is `log_loss`'s.
        for t in log_loss_terms(actual, probs) {
            self.log_loss += t;
        }
        self.rows += actual.len();
    }

    /// The metrics of all rows added.
    pub fn finish(&self) -> ClassificationMetrics {
        let mut m = ClassificationMetrics::from_confusion(self.confusion.clone(), self.rows);
        if self.rows > 0 {
            m.log_loss = self.log_loss / self.rows as f64;
        }
        m
    }
}

fn check_lengths(actual: usize, predicted: usize, op: &str) {
    assert_eq!(
        actual, predicted,
        "{op}: {actual} actual values vs {predicted} predictions"
    );
}

/// Root mean squared error (0 for no values).
pub fn rmse(actual: &[f32], predicted: &[f32]) -> f64 {
    check_lengths(actual.len(), predicted.len(), "rmse");
    if actual.is_empty() {
        return 0.0;
    }
    let sse: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(&y, &p)| (p as f64 - y as f64).powi(2))
        .sum();
    (sse / actual.len() as f64).sqrt()
}

/// Mean absolute error (0 for no values).
pub fn mae(actual: &[f32], predicted: &[f32]) -> f64 {
    check_lengths(actual.len(), predicted.len(), "mae");
    if actual.is_empty() {
        return 0.0;
    }
    let sae: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(&y, &p)| (p as f64 - y as f64).abs())
        .sum();
    sae / actual.len() as f64
}

/// Coefficient of determination R². When the actual values are all equal (no variance
/// to explain) it is 1 for a perfect prediction and 0 otherwise, as scikit-learn's
/// `r2_score` reports.
pub fn r2(actual: &[f32], predicted: &[f32]) -> f64 {
    check_lengths(actual.len(), predicted.len(), "r2");
    if actual.is_empty() {
        return 0.0;
    }
    let mean = actual.iter().map(|&y| y as f64).sum::<f64>() / actual.len() as f64;
    let ss_res: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(&y, &p)| (y as f64 - p as f64).powi(2))
        .sum();
    let ss_tot: f64 = actual.iter().map(|&y| (y as f64 - mean).powi(2)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// Row-wise softmax of logits (`batch x classes`): each row becomes probabilities.
pub fn softmax_rows(logits: &Matrix) -> Matrix {
    let mut out = Matrix::zeros(logits.rows(), logits.cols());
    if logits.cols() == 0 {
        return out;
    }
    for i in 0..logits.rows() {
        softmax_row(logits.row(i), out.row_mut(i));
    }
    out
}

/// Element-wise logistic sigmoid of logits: for a one-output binary classifier, the
/// probability of class 1.
pub fn sigmoid_all(logits: &Matrix) -> Matrix {
    let mut out = logits.clone();
    for v in out.as_mut_slice() {
        *v = sigmoid(*v);
    }
    out
}

/// The index of each row's largest value (the first one on ties, as NumPy's `argmax`).
/// A one-column matrix is read as the probability of class 1 of a binary problem:
/// class 1 where it exceeds 0.5.
pub fn argmax_rows(m: &Matrix) -> Vec<usize> {
    if m.cols() == 1 {
        return m.as_slice().iter().map(|&p| usize::from(p > 0.5)).collect();
    }
    (0..m.rows())
        .map(|i| {
            let row = m.row(i);
            let mut best = 0;
            for (j, &v) in row.iter().enumerate().skip(1) {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// One-hot rows: row `i` has a 1 in column `labels[i]` and 0 elsewhere.
///
/// # Panics
/// If a label is not below `classes` (labels are validated where they are read).
pub fn one_hot(labels: &[usize], classes: usize) -> Matrix {
    let mut m = Matrix::zeros(labels.len(), classes);
    for (i, &l) in labels.iter().enumerate() {
        assert!(
            l < classes,
            "one_hot: label {l} at row {i} is not below {classes} classes"
        );
        m.row_mut(i)[l] = 1.0;
    }
    m
}

/// Fraction of predictions equal to the actual class (0 for no values).
pub fn accuracy(actual: &[usize], predicted: &[usize]) -> f64 {
    check_lengths(actual.len(), predicted.len(), "accuracy");
    if actual.is_empty() {
        return 0.0;
    }
    actual.iter().zip(predicted).filter(|(a, p)| a == p).count() as f64 / actual.len() as f64
}

/// Mean negative log-probability of the actual class, `-mean(ln p[y])`, natural log.
///
/// `probs` is `rows x classes` probabilities, or one column holding the probability of
/// class 1 of a binary problem. Probabilities are clipped to `[ε, 1 - ε]` with `ε` the
/// machine epsilon of `f32` (what scikit-learn's `log_loss` does for `float32` input), so
/// a confident wrong answer costs about 15.9 rather than infinity.
pub fn log_loss(actual: &[usize], probs: &Matrix) -> f64 {
    check_lengths(actual.len(), probs.rows(), "log_loss");
    if actual.is_empty() {
        return 0.0;
    }
    let sum: f64 = log_loss_terms(actual, probs).sum();
    sum / actual.len() as f64
}

/// `-ln p[y]` of every row, clipped as [`log_loss`] says.
fn log_loss_terms<'a>(actual: &'a [usize], probs: &'a Matrix) -> impl Iterator<Item = f64> + 'a {
    let eps = f32::EPSILON as f64;
    actual.iter().enumerate().map(move |(i, &y)| {
        let p = if probs.cols() == 1 {
            let p1 = probs.get(i, 0) as f64;
            if y == 1 {
                p1
            } else {
                1.0 - p1
            }
        } else {
            probs.get(i, y) as f64
        };
        -p.clamp(eps, 1.0 - eps).ln()
    })
}

/// Counts by actual class (rows) and predicted class (columns), as scikit-learn's
/// `confusion_matrix`: entry `[a][p]` is how many rows of class `a` were predicted `p`.
///
/// # Panics
/// If a class is not below `classes`.
pub fn confusion_matrix(actual: &[usize], predicted: &[usize], classes: usize) -> Vec<Vec<u64>> {
    check_lengths(actual.len(), predicted.len(), "confusion_matrix");
    let mut m = vec![vec![0u64; classes]; classes];
    for (&a, &p) in actual.iter().zip(predicted) {
        assert!(
            a < classes && p < classes,
            "confusion_matrix: class {a} or {p} is not below {classes}"
        );
        m[a][p] += 1;
    }
    m
}

/// Precision, recall and F1 of one class, one-vs-rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The class's name (its index unless names were given).
    pub class: String,
    /// Of the rows predicted as this class, the fraction that are (0 if none predicted).
    pub precision: f64,
    /// Of the rows of this class, the fraction predicted as it (0 if there are none).
    pub recall: f64,
    /// Harmonic mean of precision and recall, `2tp / (2tp + fp + fn)` (0 if undefined).
    pub f1: f64,
    /// Rows of this class in the data.
    pub support: u64,
}

/// Precision, recall and F1 averaged over classes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// Mean precision.
    pub precision: f64,
    /// Mean recall.
    pub recall: f64,
    /// Mean F1.
    pub f1: f64,
}

/// Everything a classification report shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Fraction of rows classified correctly.
    pub accuracy: f64,
    /// Mean negative log-probability of the actual class (see [`log_loss`]).
    pub log_loss: f64,
    /// Unweighted mean over the classes that occur among the actual or predicted
    /// classes (scikit-learn's `average="macro"`).
    pub macro_avg: Averages,
    /// Mean over classes weighted by support (scikit-learn's `average="weighted"`).
    pub weighted_avg: Averages,
    /// One entry per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[actual][predicted]` counts (see [`confusion_matrix`]).
    pub confusion: Vec<Vec<u64>>,
    /// Rows evaluated.
    pub rows: usize,
}

impl ClassificationMetrics {
    /// Scores class probabilities `probs` (`rows x classes`, or one column holding the
    /// probability of class 1 of a binary problem) against the actual classes. The
    /// prediction is the most probable class.
    ///
    /// # Panics
    /// If `actual` and `probs` differ in length or a class is out of range.
    pub fn compute(actual: &[usize], probs: &Matrix) -> Self {
        let classes = if probs.cols() == 1 { 2 } else { probs.cols() };
        let predicted = argmax_rows(probs);
        let mut m = Self::from_predictions(actual, &predicted, classes);
        m.log_loss = log_loss(actual, probs);
        m
    }

    /// Scores hard predictions (no probabilities, so `log_loss` is left at 0).
    pub fn from_predictions(actual: &[usize], predicted: &[usize], classes: usize) -> Self {
        let m = Self::from_confusion(confusion_matrix(actual, predicted, classes), actual.len());
        debug_assert_eq!(m.accuracy, accuracy(actual, predicted));
        m
    }

    /// Scores a confusion matrix (`confusion[actual][predicted]` counts of `rows` rows;
    /// no probabilities, so `log_loss` is left at 0).
    pub fn from_confusion(confusion: Vec<Vec<u64>>, rows: usize) -> Self {
        let classes = confusion.len();
        let mut per_class = Vec::with_capacity(classes);
        let mut present = 0usize;
        let mut macro_sum = [0.0f64; 3];
        let mut weighted_sum = [0.0f64; 3];
        for c in 0..classes {
            let tp = confusion[c][c];
            let support: u64 = confusion[c].iter().sum();
            let predicted_c: u64 = confusion.iter().map(|row| row[c]).sum();
            let ratio = |num: u64, den: u64| {
                if den == 0 {
                    0.0
                } else {
                    num as f64 / den as f64
                }
            };
            let precision = ratio(tp, predicted_c);
            let recall = ratio(tp, support);
            // 2tp / (2tp + fp + fn), with fp = predicted_c - tp and fn = support - tp.
            let f1 = ratio(2 * tp, predicted_c + support);
            if support + predicted_c > 0 {
                present += 1;
                for (s, v) in macro_sum.iter_mut().zip([precision, recall, f1]) {
                    *s += v;
                }
            }
            for (s, v) in weighted_sum.iter_mut().zip([precision, recall, f1]) {
                *s += v * support as f64;
            }
            per_class.push(ClassMetrics {
                class: c.to_string(),
                precision,
                recall,
                f1,
                support,
            });
        }
        let avg = |sums: [f64; 3], n: f64| {
            let d = if n > 0.0 { n } else { 1.0 };
            Averages {
                precision: sums[0] / d,
                recall: sums[1] / d,
                f1: sums[2] / d,
            }
        };
        let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
        ClassificationMetrics {
            // As `accuracy`: correct rows over all rows, 0 for none.
            accuracy: if rows == 0 {
                0.0
            } else {
                correct as f64 / rows as f64
            },
            log_loss: 0.0,
            macro_avg: avg(macro_sum, present as f64),
            weighted_avg: avg(weighted_sum, rows as f64),
            per_class,
            confusion,
            rows,
        }
    }

    /// Replaces the class indices in `per_class` by names (`names[i]` for class `i`;
    /// classes beyond `names` keep their index).
    pub fn with_class_names<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        for (c, name) in self.per_class.iter_mut().zip(names) {
            c.class = name.as_ref().to_string();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    // Reference values in these tests were worked by hand and agree with scikit-learn
    // 1.9.1 (`sklearn.metrics`: confusion_matrix, precision_recall_fscore_support with
    // zero_division=0, accuracy_score, log_loss, root_mean_squared_error,
    // mean_absolute_error, r2_score) on the same inputs.

    #[test]
    fn regression_metrics_match_the_worked_example() {
        // scikit-learn's documentation example.
        let y = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        let m = RegressionMetrics::compute(&y, &p);
        // mse = (0.25 + 0.25 + 0 + 1) / 4 = 0.375
        assert!(close(m.rmse, 0.375f64.sqrt()), "{m:?}");
        assert!(close(m.mae, 0.5), "{m:?}");
        // ȳ = 2.875, Σ(y-ȳ)² = 29.1875, 1 - 1.5 / 29.1875
        assert!(close(m.r2, 1.0 - 1.5 / 29.1875), "{m:?}");
        assert!(close(m.r2, 0.9486081370449679), "{m:?}");
    }

    /// Summing over chunks gives the metrics of all rows at once: RMSE, MAE, accuracy,
    /// log-loss and the counts exactly, R² to Welford's rounding.
    #[test]
    fn sums_over_chunks_equal_the_whole() {
        // Deterministic pseudo-random values (an LCG), targets far from 0 so that a
        // naive Σy² - nȳ² would lose digits.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let n = 1000;
        let y: Vec<f32> = (0..n).map(|_| 1000.0 + next()).collect();
        let p: Vec<f32> = y.iter().map(|&v| v + 0.3 * (next() - 0.5)).collect();
        let whole = RegressionMetrics::compute(&y, &p);
        let k = 4;
        let logits: Vec<f32> = (0..n * k).map(|_| 8.0 * next() - 4.0).collect();
        let probs = softmax_rows(&Matrix::from_vec(n, k, logits).unwrap());
        let actual: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % k).collect();
        let cls = ClassificationMetrics::compute(&actual, &probs);
        for chunk in [1, 7, 999, 1000, 4096] {
            let mut r = RegressionSums::default();
            let mut c = ClassificationSums::new(k);
            for start in (0..n).step_by(chunk) {
                let end = (start + chunk).min(n);
                r.update(&y[start..end], &p[start..end]);
                let rows: Vec<usize> = (start..end).collect();
                let mut part = Matrix::zeros(0, 0);
                part.gather_rows(&probs, &rows);
                c.update(&actual[start..end], &part);
            }
            let got = r.finish();
            assert_eq!(r.rows(), n as u64);
            assert_eq!(got.rmse, whole.rmse, "{chunk}");
            assert_eq!(got.mae, whole.mae, "{chunk}");
            assert!(
                (got.r2 - whole.r2).abs() < 1e-12,
                "{chunk}: {got:?} vs {whole:?}"
            );
            assert_eq!(c.finish(), cls, "{chunk}");
        }
        assert_eq!(
            RegressionSums::default().finish(),
            RegressionMetrics::compute(&[], &[])
        );
        // A constant target: R² 1 for a perfect prediction, 0 otherwise, as `r2`.
        let mut r = RegressionSums::default();
        r.update(&[2.0, 2.0], &[2.0, 2.0]);
        assert_eq!(r.finish().r2, 1.0);
        r.update(&[2.0], &[3.0]);
        assert_eq!(r.finish().r2, 0.0);
        // One probability column: a binary problem.
        let p1 = Matrix::from_vec(3, 1, vec![0.9, 0.2, 0.6]).unwrap();
        let mut c = ClassificationSums::new(1);
        c.update(&[1, 0], &Matrix::from_vec(2, 1, vec![0.9, 0.2]).unwrap());
        c.update(&[0], &Matrix::from_vec(1, 1, vec![0.6]).unwrap());
        assert_eq!(c.finish(), ClassificationMetrics::compute(&[1, 0, 0], &p1));
    }

    #[test]
    fn r2_of_a_constant_target() {
        assert_eq!(r2(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(r2(&[1.0, 1.0, 1.0], &[1.0, 2.0, 1.0]), 0.0);
        // Predicting the mean gives 0; worse than the mean is negative.
        assert!(close(r2(&[1.0, 3.0], &[2.0, 2.0]), 0.0));
        assert!(close(r2(&[1.0, 3.0], &[3.0, 1.0]), -3.0));
    }

    /// 4 classes; class 3 occurs once and is never predicted.
    fn worked() -> (Vec<usize>, Vec<usize>) {
        (
            vec![0, 0, 0, 1, 1, 1, 1, 2, 2, 3],
            vec![0, 0, 1, 1, 1, 2, 0, 2, 2, 0],
        )
    }

    #[test]
    fn confusion_matrix_by_hand() {
        let (y, p) = worked();
        let cm = confusion_matrix(&y, &p, 4);
        assert_eq!(
            cm,
            vec![
                vec![2, 1, 0, 0],
                vec![1, 2, 1, 0],
                vec![0, 0, 2, 0],
                vec![1, 0, 0, 0]
            ]
        );
    }

    #[test]
    fn per_class_and_averages_by_hand() {
        let (y, p) = worked();
        let m = ClassificationMetrics::from_predictions(&y, &p, 4);
        assert!(close(m.accuracy, 0.6));
        // Column sums (predicted counts) 4, 3, 3, 0; row sums (support) 3, 4, 2, 1.
        let want = [
            (2.0 / 4.0, 2.0 / 3.0, 4.0 / 7.0, 3),
            (2.0 / 3.0, 2.0 / 4.0, 4.0 / 7.0, 4),
            (2.0 / 3.0, 2.0 / 2.0, 4.0 / 5.0, 2),
            // Never predicted: precision 0 (scikit-learn's zero_division=0), not NaN.
            (0.0, 0.0, 0.0, 1),
        ];
        for (c, (got, w)) in m.per_class.iter().zip(want).enumerate() {
            assert!(close(got.precision, w.0), "class {c}: {got:?}");
            assert!(close(got.recall, w.1), "class {c}: {got:?}");
            assert!(close(got.f1, w.2), "class {c}: {got:?}");
            assert_eq!(got.support, w.3, "class {c}");
            assert_eq!(got.class, c.to_string());
        }
        assert!(close(
            m.macro_avg.precision,
            (0.5 + 2.0 / 3.0 + 2.0 / 3.0) / 4.0
        ));
        assert!(close(m.macro_avg.recall, (2.0 / 3.0 + 0.5 + 1.0) / 4.0));
        assert!(close(m.macro_avg.f1, (8.0 / 7.0 + 0.8) / 4.0));
        assert!(close(m.macro_avg.f1, 0.4857142857142857));
        assert!(close(m.weighted_avg.precision, 0.55));
        // Weighted recall is always the accuracy.
        assert!(close(m.weighted_avg.recall, 0.6));
        assert!(close(m.weighted_avg.f1, 0.56));
        assert_eq!(m.rows, 10);
    }

    #[test]
    fn macro_average_skips_classes_that_never_occur() {
        // Class 1 is neither actual nor predicted: averaged over classes 0 and 2 only.
        let m = ClassificationMetrics::from_predictions(&[0, 0, 2], &[0, 2, 2], 3);
        assert!(close(m.macro_avg.precision, 0.75));
        assert!(close(m.macro_avg.recall, 0.75));
        assert!(close(m.macro_avg.f1, 2.0 / 3.0));
        assert_eq!(m.per_class[1].support, 0);
    }

    #[test]
    fn log_loss_by_hand_with_clipping() {
        let probs = Matrix::from_rows(&[
            [0.7, 0.2, 0.1],
            [0.1, 0.6, 0.3],
            [0.25, 0.25, 0.5],
            [1.0, 0.0, 0.0],
        ])
        .unwrap();
        let three = probs.select_rows(&[0, 1, 2]);
        let want3 = -((0.7f32 as f64).ln() + (0.3f32 as f64).ln() + 0.5f64.ln()) / 3.0;
        assert!(close(log_loss(&[0, 2, 2], &three), want3));
        assert!((want3 - 0.7512649687060278).abs() < 1e-7);
        // The zero probability is clipped to f32::EPSILON: -ln(2^-23) = 23 ln 2.
        let want4 = (3.0 * want3 + 23.0 * std::f64::consts::LN_2) / 4.0;
        assert!(close(log_loss(&[0, 2, 2, 1], &probs), want4));
        assert!((want4 - 4.549045085906982).abs() < 1e-6);
    }

    #[test]
    fn one_column_means_binary() {
        let probs = Matrix::from_vec(4, 1, vec![0.9, 0.2, 0.6, 0.4]).unwrap();
        let y = [1, 0, 0, 1];
        let m = ClassificationMetrics::compute(&y, &probs);
        assert_eq!(argmax_rows(&probs), vec![1, 0, 1, 0]);
        assert!(close(m.accuracy, 0.5));
        assert_eq!(m.confusion, vec![vec![1, 1], vec![1, 1]]);
        // Class-0 rows score 1 - p, computed in f64 from the f32 probability.
        let want = -((0.9f32 as f64).ln()
            + (1.0 - 0.2f32 as f64).ln()
            + (1.0 - 0.6f32 as f64).ln()
            + (0.4f32 as f64).ln())
            / 4.0;
        assert!(close(m.log_loss, want), "{} vs {want}", m.log_loss);
        assert!((want - 0.5402714014053345).abs() < 1e-6);
    }

    #[test]
    fn compute_uses_the_most_probable_class() {
        let logits =
            Matrix::from_rows(&[[2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 3.0, 3.0]]).unwrap();
        let probs = softmax_rows(&logits);
        // Ties go to the first.
        assert_eq!(argmax_rows(&probs), vec![0, 2, 1]);
        let m =
            ClassificationMetrics::compute(&[0, 2, 2], &probs).with_class_names(&["a", "b", "c"]);
        assert!(close(m.accuracy, 2.0 / 3.0));
        assert_eq!(m.per_class[2].class, "c");
        let e = (1.0f64).exp();
        let want = (-(e * e / (e * e + e + 1.0)).ln()
            - (1.0 / (1.0 + 2.0 * (-5.0f64).exp())).ln()
            - (1.0 / (e.powi(-2) + 2.0)).ln())
            / 3.0;
        assert!((m.log_loss - want).abs() < 1e-6, "{} vs {want}", m.log_loss);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_huge_logits() {
        let logits = Matrix::from_rows(&[[1e4, -1e4, 0.0], [-3.0, -3.0, -3.0]]).unwrap();
        let p = softmax_rows(&logits);
        assert_eq!(p.row(0), &[1.0, 0.0, 0.0]);
        for i in 0..2 {
            let s: f32 = p.row(i).iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
        assert!((p.get(1, 0) - 1.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn sigmoid_all_is_the_logistic_function() {
        let p = sigmoid_all(&Matrix::from_vec(3, 1, vec![0.0, 2.0, -100.0]).unwrap());
        assert_eq!(p.get(0, 0), 0.5);
        assert!((p.get(1, 0) as f64 - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-7);
        assert!(p.get(2, 0) >= 0.0 && p.get(2, 0) < 1e-40);
    }

    #[test]
    fn one_hot_rows() {
        let m = one_hot(&[2, 0, 1], 3);
        assert_eq!(m.as_slice(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(argmax_rows(&m), vec![2, 0, 1]);
    }

    #[test]
    #[should_panic(expected = "label 3 at row 1 is not below 3 classes")]
    fn one_hot_rejects_out_of_range() {
        one_hot(&[0, 3], 3);
    }

    #[test]
    fn metrics_serialise_with_the_documented_keys() {
        let (y, p) = worked();
        let m = ClassificationMetrics::from_predictions(&y, &p, 4);
        let v = serde_json::to_value(&m).unwrap();
        for key in [
            "accuracy",
            "log_loss",
            "macro_avg",
            "weighted_avg",
            "per_class",
            "confusion",
            "rows",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["per_class"][3]["precision"], 0.0);
        let r = serde_json::to_value(RegressionMetrics::compute(&[1.0], &[1.0])).unwrap();
        assert_eq!(r, serde_json::json!({"rmse": 0.0, "mae": 0.0, "r2": 1.0}));
    }
}
