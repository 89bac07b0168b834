//! Scaling of numeric features, fitted on the training rows: standard, min-max, and the
//! quantile transform onto a normal distribution.

use super::collective::{order_statistics, Collective};
use serde::{Deserialize, Serialize};

/// How numeric features are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ScaleKind {
    /// `(x - mean) / std`.
    #[default]
    Standard,
    /// `(x - min) / (max - min)`, into `[0, 1]`.
    Minmax,
    /// Through the training distribution's quantiles onto a standard normal
    /// (scikit-learn's `QuantileTransformer(output_distribution="normal")`): robust to
    /// the extreme outliers of ratio features.
    Quantile,
    /// Unchanged.
    None,
    /// Chosen per column from its training values: [`ScaleKind::Quantile`] for a
    /// heavy-tailed column (excess kurtosis above [`HEAVY_TAILED_KURTOSIS`], such as the
    /// ratio features of house prices, with outliers 50-100 standard deviations out), else
    /// [`ScaleKind::Standard`], which keeps a linear relation to the target linear (the
    /// quantile transform bends it).
    Auto,
}

/// Excess kurtosis above which [`ScaleKind::Auto`] picks the quantile transform. A normal
/// column has 0, a uniform one -1.2, an exponential one 6, a log-normal one with sigma 1
/// about 110. Measured on the tables of `bench/tabular.py`: the four California ratio
/// features that need quantiles have 73-10,648; income, lot size and hard-disk size,
/// which keep linear effects, 2.4-5.
pub const HEAVY_TAILED_KURTOSIS: f64 = 10.0;

/// The kind [`ScaleKind::Auto`] picks from a column's count, sum of squared and sum of
/// fourth powers of deviations from the mean.
fn auto_kind(count: f64, m2: f64, m4: f64) -> ScaleKind {
    if m2 <= 0.0 || count < 2.0 {
        return ScaleKind::Standard;
    }
    let kurtosis = count * m4 / (m2 * m2) - 3.0;
    if kurtosis > HEAVY_TAILED_KURTOSIS {
        ScaleKind::Quantile
    } else {
        ScaleKind::Standard
    }
}

/// The kind [`ScaleKind::Auto`] picks for `values` (one process's).
fn auto_kind_of(values: &[f64]) -> ScaleKind {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    let m4 = values.iter().map(|v| (v - mean).powi(4)).sum::<f64>();
    auto_kind(values.len() as f64, m2, m4)
}

/// A fitted scaling of one numeric column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scaler {
    /// `(x - mean) / std`.
    Standard {
        /// Training mean.
        mean: f64,
        /// Training standard deviation (1 for a constant column).
        std: f64,
    },
    /// `(x - min) / (max - min)`.
    Minmax {
        /// Training minimum.
        min: f64,
        /// Training maximum minus minimum (1 for a constant column).
        range: f64,
    },
    /// Quantile transform to a standard normal.
    Quantile {
        /// Training values at evenly spaced quantile levels `0, 1/(n-1), ..., 1`.
        references: Vec<f64>,
    },
    /// Unchanged.
    None,
}

/// Number of quantile levels stored by the quantile scaler (scikit-learn's default).
pub const QUANTILES: usize = 1000;
/// Clipping of quantile levels before the inverse normal CDF (scikit-learn's bounds).
pub(crate) const QUANTILE_CLIP: f64 = 1e-7;

impl Scaler {
    /// Fits the scaler to `values` (no NaN).
    pub fn fit(kind: ScaleKind, values: &[f64]) -> Scaler {
        let n = values.len().max(1) as f64;
        match kind {
            ScaleKind::Auto => Scaler::fit(auto_kind_of(values), values),
            ScaleKind::Standard => {
                let mean = values.iter().sum::<f64>() / n;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                let std = var.sqrt();
                Scaler::Standard {
                    mean,
                    std: if std > 1e-12 { std } else { 1.0 },
                }
            }
            ScaleKind::Minmax => {
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let range = max - min;
                Scaler::Minmax {
                    min: if min.is_finite() { min } else { 0.0 },
                    range: if range > 1e-12 { range } else { 1.0 },
                }
            }
            ScaleKind::Quantile => {
                let mut sorted = values.to_vec();
                sorted.sort_by(f64::total_cmp);
                if sorted.is_empty() {
                    return Scaler::Quantile {
                        references: vec![0.0; 2],
                    };
                }
                Scaler::quantile_from(sorted.len(), |ks| ks.iter().map(|&k| sorted[k]).collect())
            }
            ScaleKind::None => Scaler::None,
        }
    }

    /// [`Scaler::fit`] to the values of all processes (`c`), each passing its own
    /// `values` (reordered here) and all passing `n`, the number of values in all.
    /// Alone, exactly [`Scaler::fit`]. Otherwise the mean and variance are sums over
    /// the processes (equal to one process's up to summation order), and the minimum,
    /// maximum and quantiles exact order statistics ([`order_statistics`]).
    pub fn fit_with(
        kind: ScaleKind,
        values: &mut [f64],
        n: usize,
        c: &mut dyn Collective,
    ) -> Scaler {
        if c.is_alone() {
            let kind = match kind {
                ScaleKind::Auto => auto_kind_of(values),
                k => k,
            };
            if kind == ScaleKind::Quantile && !values.is_empty() {
                // Sorted in place: the copy `fit` sorts would hold the column twice.
                values.sort_by(f64::total_cmp);
                return Scaler::quantile_from(values.len(), |ks| {
                    ks.iter().map(|&k| values[k]).collect()
                });
            }
            return Scaler::fit(kind, values);
        }
        let count = n.max(1) as f64;
        match kind {
            ScaleKind::Auto => {
                let mut sum = [values.iter().sum::<f64>()];
                c.sum_f64(&mut sum);
                let mean = sum[0] / count;
                let mut m = [
                    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>(),
                    values.iter().map(|v| (v - mean).powi(4)).sum::<f64>(),
                ];
                c.sum_f64(&mut m);
                Scaler::fit_with(auto_kind(n as f64, m[0], m[1]), values, n, c)
            }
            ScaleKind::Standard => {
                let mut sum = [values.iter().sum::<f64>()];
                c.sum_f64(&mut sum);
                let mean = sum[0] / count;
                let mut sq = [values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()];
                c.sum_f64(&mut sq);
                let std = (sq[0] / count).sqrt();
                Scaler::Standard {
                    mean,
                    std: if std > 1e-12 { std } else { 1.0 },
                }
            }
            ScaleKind::Minmax => {
                if n == 0 {
                    return Scaler::fit(kind, &[]);
                }
                values.sort_by(f64::total_cmp);
                let ends = order_statistics(c, values, &[0, n - 1]);
                let range = ends[1] - ends[0];
                Scaler::Minmax {
                    min: ends[0],
                    range: if range > 1e-12 { range } else { 1.0 },
                }
            }
            ScaleKind::Quantile => {
                if n == 0 {
                    return Scaler::fit(kind, &[]);
                }
                values.sort_by(f64::total_cmp);
                Scaler::quantile_from(n, |ks| order_statistics(c, values, ks))
            }
            ScaleKind::None => Scaler::None,
        }
    }

    /// The quantile scaler of `n > 0` values known through their order statistics:
    /// `kth(ks)` returns the `ks[i]`-th smallest values (0-based). The references are
    /// those [`Scaler::fit`] computes from the sorted values.
    pub fn quantile_from(n: usize, kth: impl FnOnce(&[usize]) -> Vec<f64>) -> Scaler {
        let q = QUANTILES.min(n).max(2);
        let positions: Vec<f64> = (0..q)
            .map(|i| i as f64 / (q - 1) as f64 * (n - 1) as f64)
            .collect();
        let ks: Vec<usize> = positions
            .iter()
            .flat_map(|p| [p.floor() as usize, p.ceil() as usize])
            .collect();
        let o = kth(&ks);
        let references = positions
            .iter()
            .zip(o.chunks_exact(2))
            .map(|(&pos, lh)| lh[0] + (lh[1] - lh[0]) * (pos - pos.floor()))
            .collect();
        Scaler::Quantile { references }
    }

    /// Scales one value.
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            Scaler::Standard { mean, std } => (x - mean) / std,
            Scaler::Minmax { min, range } => (x - min) / range,
            Scaler::Quantile { references } => {
                let r = references;
                let (lo, hi) = (r[0], r[r.len() - 1]);
                if hi - lo < 1e-12 {
                    return 0.0;
                }
                // Average of the rank found from below and from above, as scikit-learn
                // does, so repeated values map to the middle of their quantile range.
                let up = interp_level(r, x);
                let down = 1.0 - interp_level_rev(r, x);
                let level = (0.5 * (up + down)).clamp(QUANTILE_CLIP, 1.0 - QUANTILE_CLIP);
                let level = if x <= lo {
                    QUANTILE_CLIP
                } else if x >= hi {
                    1.0 - QUANTILE_CLIP
                } else {
                    level
                };
                inverse_normal_cdf(level)
            }
            Scaler::None => x,
        }
    }
}

impl Scaler {
    /// Checks a scaler read from a file: the values [`Scaler::apply`] divides by are
    /// positive, every statistic is finite, and the quantile references are at least two
    /// and in increasing order (the interpolation searches them). Says what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        let finite = |what: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("its {what} is {v}"))
            }
        };
        match self {
            Scaler::Standard { mean, std } => {
                finite("mean", *mean)?;
                finite("standard deviation", *std)?;
                if *std <= 0.0 {
                    return Err(format!("its standard deviation is {std}, not positive"));
                }
            }
            Scaler::Minmax { min, range } => {
                finite("minimum", *min)?;
                finite("range", *range)?;
                if *range <= 0.0 {
                    return Err(format!("its range is {range}, not positive"));
                }
            }
            Scaler::Quantile { references } => {
                if references.len() < 2 {
                    return Err(format!(
                        "it has {} quantile reference(s), fewer than 2",
                        references.len()
                    ));
                }
                if let Some(v) = references.iter().find(|v| !v.is_finite()) {
                    return Err(format!("a quantile reference is {v}"));
                }
                if let Some(i) = references.windows(2).position(|w| w[1] < w[0]) {
                    return Err(format!(
                        "its quantile references decrease at position {}",
                        i + 1
                    ));
                }
            }
            Scaler::None => {}
        }
        Ok(())
    }
}

/// Linear interpolation of `x` in the increasing `refs` onto levels `0..=1`, taking the
/// last of equal references.
fn interp_level(refs: &[f64], x: f64) -> f64 {
    let n = refs.len();
    let i = refs.partition_point(|&r| r <= x);
    if i == 0 {
        return 0.0;
    }
    if i >= n {
        return 1.0;
    }
    let (a, b) = (refs[i - 1], refs[i]);
    let t = if b > a { (x - a) / (b - a) } else { 0.0 };
    ((i - 1) as f64 + t) / (n - 1) as f64
}

/// The same interpolation done from the top (taking the first of equal references).
fn interp_level_rev(refs: &[f64], x: f64) -> f64 {
    let n = refs.len();
    let i = refs.partition_point(|&r| r < x);
    if i == 0 {
        return 1.0;
    }
    if i >= n {
        return 0.0;
    }
    let (a, b) = (refs[i - 1], refs[i]);
    let t = if b > a { (x - a) / (b - a) } else { 1.0 };
    1.0 - ((i - 1) as f64 + t) / (n - 1) as f64
}

/// Acklam's rational approximation of the normal quantile function: numerator (`A`)
/// and denominator (`B`) of the central region, and of the tails (`C`, `D`); shared
/// with the ONNX export, which builds the same formula from graph operations.
#[allow(clippy::excessive_precision)] // Acklam's published coefficients, kept verbatim.
pub(crate) const ACKLAM_A: [f64; 6] = [
    -3.969683028665376e1,
    2.209460984245205e2,
    -2.759285104469687e2,
    1.383577518672690e2,
    -3.066479806614716e1,
    2.506628277459239,
];
#[allow(clippy::excessive_precision)]
pub(crate) const ACKLAM_B: [f64; 5] = [
    -5.447609879822406e1,
    1.615858368580409e2,
    -1.556989798598866e2,
    6.680131188771972e1,
    -1.328068155288572e1,
];
#[allow(clippy::excessive_precision)]
pub(crate) const ACKLAM_C: [f64; 6] = [
    -7.784894002430293e-3,
    -3.223964580411365e-1,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
];
#[allow(clippy::excessive_precision)]
pub(crate) const ACKLAM_D: [f64; 4] = [
    7.784695709041462e-3,
    3.224671290700398e-1,
    2.445134137142996,
    3.754408661907416,
];
/// Below this level (and above one minus it) Acklam's tail form is used.
pub(crate) const ACKLAM_P_LOW: f64 = 0.02425;

/// The standard normal quantile function (Acklam's rational approximation refined by
/// one Halley step; relative error below 1e-12).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = ACKLAM_A;
    const B: [f64; 5] = ACKLAM_B;
    const C: [f64; 6] = ACKLAM_C;
    const D: [f64; 4] = ACKLAM_D;
    let p_low = ACKLAM_P_LOW;
    let x = if p < p_low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Halley step against the exact CDF.
    let e = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_quantiles_for_heavy_tails_only() {
        // Evenly spread values (kurtosis -1.2) keep a linear scale.
        let even: Vec<f64> = (0..500).map(|i| i as f64).collect();
        assert_eq!(
            Scaler::fit(ScaleKind::Auto, &even),
            Scaler::fit(ScaleKind::Standard, &even)
        );
        // One value 100x the rest (an occupancy ratio of a dormitory): quantiles.
        let mut tail = vec![2.0; 499];
        tail.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += (i % 7) as f64 * 0.1);
        tail.push(200.0);
        assert_eq!(
            Scaler::fit(ScaleKind::Auto, &tail),
            Scaler::fit(ScaleKind::Quantile, &tail)
        );
        // Constant and tiny columns are standard (no kurtosis to speak of).
        assert_eq!(
            Scaler::fit(ScaleKind::Auto, &[3.0; 10]),
            Scaler::fit(ScaleKind::Standard, &[3.0; 10])
        );
        assert_eq!(
            Scaler::fit(ScaleKind::Auto, &[]),
            Scaler::fit(ScaleKind::Standard, &[])
        );
        // Alone, the collective form is the same fit.
        let mut v = tail.clone();
        assert_eq!(
            Scaler::fit_with(
                ScaleKind::Auto,
                &mut v,
                tail.len(),
                &mut super::super::collective::Alone
            ),
            Scaler::fit(ScaleKind::Quantile, &tail)
        );
    }

    #[test]
    fn inverse_normal_cdf_matches_known_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959963984540054),
            (0.025, -1.959963984540054),
            (1e-7, -5.199337582605575),
            (0.8413447460685429, 1.0),
        ] {
            assert!(
                (inverse_normal_cdf(p) - z).abs() < 1e-9,
                "{p}: {}",
                inverse_normal_cdf(p)
            );
        }
    }

    #[test]
    fn quantile_scaler_is_monotone_and_centred() {
        let v: Vec<f64> = (0..101).map(|i| (i as f64).powi(3)).collect();
        let s = Scaler::fit(ScaleKind::Quantile, &v);
        assert!(s.apply(125_000.0).abs() < 1e-9, "median maps to 0");
        let mut prev = f64::NEG_INFINITY;
        for x in [-5.0, 0.0, 10.0, 1000.0, 500_000.0, 1e6, 2e6] {
            let y = s.apply(x);
            assert!(y >= prev && y.is_finite());
            prev = y;
        }
    }
}
