//! Chart axes: range, linear or log scale, and tick marks with readable labels.

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Evenly spaced values.
    Linear,
    /// Evenly spaced powers of ten (values must be positive).
    Log,
}

/// One axis: its label (with units), range and scale.
#[derive(Clone, Debug)]
pub struct Axis {
    pub(super) label: String,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) scale: Scale,
}

impl Axis {
    /// An axis spanning `lo..hi`, widened a little if the range is empty; a log axis
    /// clamps to positive values.
    pub fn new(label: &str, lo: f64, hi: f64, scale: Scale) -> Axis {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if scale == Scale::Log {
            hi = hi.max(1e-300);
            lo = if lo > 0.0 { lo } else { hi / 10.0 };
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            if scale == Scale::Log {
                lo /= 2.0;
                hi *= 2.0;
            } else {
                lo -= pad;
                hi += pad;
            }
        }
        Axis {
            label: label.to_string(),
            lo,
            hi,
            scale,
        }
    }

    /// An axis covering `values` (finite ones; positive ones on a log axis) with a
    /// margin of `pad` of the span on each side (a factor on a log axis).
    pub fn fit(label: &str, values: impl IntoIterator<Item = f64>, scale: Scale, pad: f64) -> Axis {
        let ok = |v: &f64| v.is_finite() && (scale == Scale::Linear || *v > 0.0);
        let (lo, hi) = values
            .into_iter()
            .filter(ok)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return Axis::new(label, 0.0, 1.0, scale);
        }
        match scale {
            Scale::Linear => {
                let span = (hi - lo).max(hi.abs() * 1e-9);
                Axis::new(label, lo - pad * span, hi + pad * span, scale)
            }
            Scale::Log => {
                let f = (hi / lo).powf(pad).max(1.0);
                Axis::new(label, lo / f, hi * f, scale)
            }
        }
    }

    /// The range shown.
    pub fn range(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    /// Where `v` falls, 0 at `lo` and 1 at `hi` (None off a log axis's domain).
    pub(super) fn frac(&self, v: f64) -> Option<f64> {
        match self.scale {
            Scale::Linear => Some((v - self.lo) / (self.hi - self.lo)),
            Scale::Log if v > 0.0 => Some((v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())),
            Scale::Log => None,
        }
    }

    /// Tick values and their labels.
    pub(super) fn ticks(&self) -> Vec<(f64, String)> {
        match self.scale {
            Scale::Linear => {
                let step = nice_step((self.hi - self.lo) / 6.0);
                let mut v = (self.lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= self.hi + step * 1e-9 {
                    let t = if v.abs() < step * 1e-9 { 0.0 } else { v };
                    out.push((t, fmt_tick(t, step)));
                    v += step;
                }
                out
            }
            Scale::Log => {
                let (a, b) = (
                    self.lo.log10().floor() as i32,
                    self.hi.log10().ceil() as i32,
                );
                let decades = (b - a).max(1);
                let every = (decades as f64 / 7.0).ceil().max(1.0) as i32;
                let mults: &[f64] = if decades <= 2 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let mut out = Vec::new();
                for e in a..=b {
                    if (e - a) % every != 0 && mults.len() == 1 {
                        continue;
                    }
                    for &m in mults {
                        let v = m * 10f64.powi(e);
                        if v >= self.lo * (1.0 - 1e-9) && v <= self.hi * (1.0 + 1e-9) {
                            out.push((v, fmt_log_tick(m, e)));
                        }
                    }
                }
                out
            }
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 2.5 {
        2.5
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * p
}

fn fmt_tick(v: f64, step: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        return format!("{v:.1e}");
    }
    // The fewest decimals that show the step exactly (0.25 needs two, 5 needs none).
    let decimals = (0..10).find(|&d| {
        let scaled = step * 10f64.powi(d);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    });
    let decimals = decimals.unwrap_or(10) as usize;
    format!("{v:.decimals$}")
}

fn fmt_log_tick(m: f64, e: i32) -> String {
    if (-3..=4).contains(&e) {
        let v = m * 10f64.powi(e);
        let decimals = (-e).max(0) as usize;
        return format!("{v:.decimals$}");
    }
    let sup: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            d => ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹']
                [d.to_digit(10).unwrap_or(0) as usize],
        })
        .collect();
    if m == 1.0 {
        format!("10{sup}")
    } else {
        format!("{m}·10{sup}")
    }
}
