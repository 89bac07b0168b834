//! The fitted preprocessing as graph operations: imputation, scaling (standard,
//! min-max, none, quantile -> normal) and one-hot encoding, computed as
//! [`Preprocessor::transform_features`] computes them.
//!
//! Numeric columns come in as doubles, so the graph sees the value the CSV reader
//! parses; they are imputed and scaled in double precision, as the Rust code does in
//! `f64`, and cast to float at the end, so each scaled value rounds as Rust's does.
//! (With float inputs the quantile transform could not match: it jumps at values
//! tied in training, and a float a rounding away from the CSV's value can land on the
//! other side of the jump; measured 1.4% off a prediction.) The quantile transform
//! is the same interpolation, step for step, followed by Acklam's approximation of the
//! normal quantile function in the same operation order; the Halley refinement that
//! [`inverse_normal_cdf`](crate::data::scale::inverse_normal_cdf) adds needs `erfc` in
//! double precision, which ONNX runtimes do not provide, and changes the value by less
//! than 1.15e-9 relative (Acklam's bound), twenty times below a float's resolution.

use super::graph::{Attr, Dim, Elem, Graph};
use crate::data::csv::MISSING;
use crate::data::prep::{Feature, Preprocessor, MISSING_CATEGORY};
use crate::data::scale::{
    Scaler, ACKLAM_A, ACKLAM_B, ACKLAM_C, ACKLAM_D, ACKLAM_P_LOW, QUANTILE_CLIP,
};

/// A graph input: name, element type, shape.
pub(super) type Input = (String, Elem, Vec<Dim>);

/// The name of the single input of [`InputMode::Pixels`].
pub const PIXELS_INPUT: &str = "pixels";

/// The graph inputs of `prep` in `mode` (checked by the caller to fit).
pub(super) fn inputs(prep: &Preprocessor, mode: InputMode) -> Vec<Input> {
    match mode {
        InputMode::Pixels => vec![(
            PIXELS_INPUT.to_string(),
            Elem::Float,
            vec![Dim::Batch, Dim::Fixed(prep.features.len())],
        )],
        _ => {
            // A column used twice as a feature is still one input.
            let mut out: Vec<Input> = Vec::new();
            for f in &prep.features {
                if out.iter().any(|i| i.0 == f.name()) {
                    continue;
                }
                let elem = match f {
                    Feature::Numeric { .. } => Elem::Double,
                    Feature::Categorical { .. } => Elem::String,
                };
                out.push((f.name().to_string(), elem, vec![Dim::Batch, Dim::Fixed(1)]));
            }
            out
        }
    }
}

/// Adds the preprocessing of `prep` to `g`, reading the graph inputs of `mode`, and
/// returns the value holding the network inputs (`N x input_width`, float).
pub(super) fn build(g: &mut Graph, prep: &Preprocessor, mode: InputMode) -> String {
    let mut numeric = Vec::new();
    let mut pieces = Vec::new(); // (value, the features it holds in order)
    for (j, f) in prep.features.iter().enumerate() {
        match f {
            Feature::Numeric { median, scaler, .. } => numeric.push((j, *median, scaler)),
            Feature::Categorical {
                name,
                categories,
                other,
            } => pieces.push((one_hot(g, name, categories, *other), vec![j])),
        }
    }
    if !numeric.is_empty() {
        let raw = match mode {
            InputMode::Pixels => g.cast(PIXELS_INPUT, Elem::Double),
            _ => {
                let names: Vec<&str> = numeric.iter().map(|n| prep.features[n.0].name()).collect();
                if names.len() == 1 {
                    names[0].to_string()
                } else {
                    g.op("Concat", &names, &[Attr::Int("axis", 1)])
                }
            }
        };
        let medians: Vec<f64> = numeric.iter().map(|n| n.1).collect();
        let scalers: Vec<&Scaler> = numeric.iter().map(|n| n.2).collect();
        let x = impute(g, &raw, &medians);
        let scaled = scale(g, &x, &scalers);
        let block = g.cast(&scaled, Elem::Float);
        pieces.insert(0, (block, numeric.iter().map(|n| n.0).collect()));
    }
    let widths: Vec<usize> = prep.features.iter().map(Feature::width).collect();
    join(g, pieces, &widths)
}

/// Missing (NaN) cells of `x` (`N x F` double) take the medians. (NaN is the value
/// not equal to itself: tract has no `IsNaN` for doubles.)
fn impute(g: &mut Graph, x: &str, medians: &[f64]) -> String {
    let present = g.bin("Equal", x, x);
    let m = g.f64s("median", &[1, medians.len()], medians);
    g.op("Where", &[&present, x, &m], &[])
}

/// How one numeric column is scaled in the graph.
enum Plan<'a> {
    /// `(x - shift) / div`: standard, min-max and none.
    Affine(f64, f64),
    /// Quantile transform over these references.
    Quantile(&'a [f64]),
}

/// Scales the columns of `x` (`N x F` double) with `scalers`: the columns scaled alike
/// go through one vectorised group, and the groups are put back in column order.
fn scale(g: &mut Graph, x: &str, scalers: &[&Scaler]) -> String {
    let plans: Vec<Plan> = scalers
        .iter()
        .map(|s| match s {
            Scaler::Standard { mean, std } => Plan::Affine(*mean, *std),
            Scaler::Minmax { min, range } => Plan::Affine(*min, *range),
            Scaler::None => Plan::Affine(0.0, 1.0),
            Scaler::Quantile { references } => Plan::Quantile(references),
        })
        .collect();
    // Groups: the affine columns, then the quantile columns by reference count.
    let mut groups: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
    for (k, p) in plans.iter().enumerate() {
        let key = match p {
            Plan::Affine(..) => None,
            Plan::Quantile(r) => Some(r.len()),
        };
        match groups.iter_mut().find(|(gk, _)| *gk == key) {
            Some((_, cols)) => cols.push(k),
            None => groups.push((key, vec![k])),
        }
    }
    let whole = groups.len() == 1;
    let mut pieces = Vec::new();
    for (key, cols) in groups {
        let xg = if whole {
            x.to_string()
        } else {
            let idx: Vec<i64> = cols.iter().map(|&k| k as i64).collect();
            let idx = g.i64s("cols", &[idx.len()], &idx);
            g.op("Gather", &[x, &idx], &[Attr::Int("axis", 1)])
        };
        let out = match key {
            None => {
                let (shift, div): (Vec<f64>, Vec<f64>) = cols
                    .iter()
                    .map(|&k| match plans[k] {
                        Plan::Affine(s, d) => (s, d),
                        Plan::Quantile(_) => unreachable!("grouped as affine"),
                    })
                    .unzip();
                let s = g.f64s("shift", &[1, cols.len()], &shift);
                let d = g.f64s("div", &[1, cols.len()], &div);
                let centred = g.bin("Sub", &xg, &s);
                g.bin("Div", &centred, &d)
            }
            Some(_) => {
                let refs: Vec<&[f64]> = cols
                    .iter()
                    .map(|&k| match plans[k] {
                        Plan::Quantile(r) => r,
                        Plan::Affine(..) => unreachable!("grouped as quantile"),
                    })
                    .collect();
                quantile(g, &xg, &refs)
            }
        };
        pieces.push((out, cols));
    }
    let widths = vec![1; scalers.len()];
    join(g, pieces, &widths)
}

/// Concatenates `pieces` (value, the items it holds in order) along the columns and
/// puts the columns back in item order; item `i` is `widths[i]` columns wide.
fn join(g: &mut Graph, pieces: Vec<(String, Vec<usize>)>, widths: &[usize]) -> String {
    let mut start = vec![0; widths.len()];
    let mut at = 0;
    for (_, items) in &pieces {
        for &i in items {
            start[i] = at;
            at += widths[i];
        }
    }
    let order: Vec<i64> = (0..widths.len())
        .flat_map(|i| (start[i]..start[i] + widths[i]).map(|c| c as i64))
        .collect();
    let names: Vec<&str> = pieces.iter().map(|(v, _)| v.as_str()).collect();
    let joined = if names.len() == 1 {
        names[0].to_string()
    } else {
        g.op("Concat", &names, &[Attr::Int("axis", 1)])
    };
    if order.iter().enumerate().all(|(i, &c)| c == i as i64) {
        return joined;
    }
    let idx = g.i64s("order", &[order.len()], &order);
    g.op("Gather", &[&joined, &idx], &[Attr::Int("axis", 1)])
}

/// One-hot encoding of the text input `name` (`N x 1`) over `categories`: a cell
/// equal to a category sets its column; a missing cell (one of the CSV reader's
/// missing texts, such as the empty string) counts as the category `"missing"`; any
/// other text is all zeros, or, with `other`, sets the last column. ONNX-ML's
/// `LabelEncoder` maps the text to the category's index (-1 for none, `k` for `other`),
/// as skl2onnx encodes categories (the standard `Equal` takes strings only from opset
/// 19).
fn one_hot(g: &mut Graph, name: &str, categories: &[String], other: bool) -> String {
    let k = categories.len();
    let mut keys = categories.to_vec();
    let mut values: Vec<i64> = (0..k as i64).collect();
    if let Some(m) = categories.iter().position(|c| c == MISSING_CATEGORY) {
        for t in MISSING
            .iter()
            .filter(|t| !categories.iter().any(|c| c == *t))
        {
            keys.push(t.to_string());
            values.push(m as i64);
        }
    }
    let index = g.ml_op(
        "LabelEncoder",
        &[name],
        &[
            Attr::Strings("keys_strings", &keys),
            Attr::Ints("values_int64s", &values),
            Attr::Int("default_int64", if other { k as i64 } else { -1 }),
        ],
    );
    let width = k + usize::from(other);
    let all: Vec<i64> = (0..width as i64).collect();
    let all = g.i64s("categories", &[1, width], &all);
    let hot = g.bin("Equal", &index, &all);
    g.cast(&hot, Elem::Float)
}

/// The quantile transform of the columns of `x` (`N x G` double), column `c` over
/// `refs[c]` (all of one length `Q`), as `Scaler::apply` computes it.
///
/// The ranks are counts of references below the value (`N x G x Q` comparisons, so
/// memory grows with the batch: score large batches in chunks).
fn quantile(g: &mut Graph, x: &str, refs: &[&[f64]]) -> String {
    let (cols, q) = (refs.len(), refs[0].len());
    let flat: Vec<f64> = refs.concat();
    let rflat = g.f64s("quantiles", &[cols * q], &flat);
    let dims = g.i64s("shape", &[3], &[1, cols as i64, q as i64]);
    let r3 = g.op("Reshape", &[&rflat, &dims], &[]);
    let axis2 = g.i64s("axes", &[1], &[2]);
    let x3 = g.op("Unsqueeze", &[x, &axis2], &[]);
    let one = g.f64(1.0);
    let n1 = g.f64((q - 1) as f64);
    let top = g.f64((q - 1) as f64);
    let base: Vec<f64> = (0..cols).map(|c| (c * q) as f64).collect();
    let base = g.f64s("base", &[1, cols], &base);
    // interp_level (counting references <= x) and interp_level_rev (< x): the count
    // `i`, bounded to 1..=Q-1 (the ends are replaced below), and the interpolation
    // between references i-1 and i, with `t` taken as `flat` where they are equal.
    let level = |g: &mut Graph, cmp: &str, flat: f64| {
        let below = g.bin(cmp, &r3, &x3);
        let below = g.cast(&below, Elem::Float);
        let count = g.op("ReduceSum", &[&below, &axis2], &[Attr::Int("keepdims", 0)]);
        let count = g.cast(&count, Elem::Double);
        let i = g.bin("Min", &count, &top);
        let i = g.bin("Max", &i, &one);
        let hi = g.bin("Add", &i, &base);
        let lo = g.bin("Sub", &hi, &one);
        let (hi, lo) = (g.cast(&hi, Elem::Int64), g.cast(&lo, Elem::Int64));
        let b = g.op("Gather", &[&rflat, &hi], &[Attr::Int("axis", 0)]);
        let a = g.op("Gather", &[&rflat, &lo], &[Attr::Int("axis", 0)]);
        let rises = g.bin("Greater", &b, &a);
        let span = g.bin("Sub", &b, &a);
        let span = g.op("Where", &[&rises, &span, &one], &[]);
        let dx = g.bin("Sub", x, &a);
        let t = g.bin("Div", &dx, &span);
        let flat = g.f64(flat);
        let t = g.op("Where", &[&rises, &t, &flat], &[]);
        let i1 = g.bin("Sub", &i, &one);
        let s = g.bin("Add", &i1, &t);
        g.bin("Div", &s, &n1)
    };
    let up = level(g, "LessOrEqual", 0.0);
    let v = level(g, "Less", 1.0);
    let rev = g.bin("Sub", &one, &v);
    let down = g.bin("Sub", &one, &rev);
    let sum = g.bin("Add", &up, &down);
    let half = g.f64(0.5);
    let p = g.bin("Mul", &sum, &half);
    let clip = g.f64(QUANTILE_CLIP);
    let unclip = g.f64(1.0 - QUANTILE_CLIP);
    let p = g.bin("Min", &p, &unclip);
    let p = g.bin("Max", &p, &clip);
    let (los, his): (Vec<f64>, Vec<f64>) = refs.iter().map(|r| (r[0], r[q - 1])).unzip();
    let lo = g.f64s("lowest", &[1, cols], &los);
    let hi = g.f64s("highest", &[1, cols], &his);
    let at_hi = g.bin("GreaterOrEqual", x, &hi);
    let p = g.op("Where", &[&at_hi, &unclip, &p], &[]);
    let at_lo = g.bin("LessOrEqual", x, &lo);
    let p = g.op("Where", &[&at_lo, &clip, &p], &[]);
    let z = inverse_normal(g, &p);
    // A column constant in training (all references within 1e-12) scales to 0.
    let constant: Vec<bool> = refs.iter().map(|r| r[q - 1] - r[0] < 1e-12).collect();
    if !constant.contains(&true) {
        return z;
    }
    let mask = g.bools("constant", &[1, cols], &constant);
    let zero = g.f64(0.0);
    g.op("Where", &[&mask, &zero, &z], &[])
}

/// Horner's rule as the Rust code writes it: `((c0 q + c1) q + c2) ...`.
fn horner(g: &mut Graph, coefs: &[f64], q: &str) -> String {
    let c0 = g.f64(coefs[0]);
    let mut acc = g.bin("Mul", &c0, q);
    for (k, &c) in coefs[1..].iter().enumerate() {
        let c = g.f64(c);
        acc = g.bin("Add", &acc, &c);
        if k + 2 < coefs.len() {
            acc = g.bin("Mul", &acc, q);
        }
    }
    acc
}

/// Acklam's approximation of the normal quantile of `p` (in `[1e-7, 1 - 1e-7]`):
/// the tail form below `P_LOW` and above `1 - P_LOW`, the central form between. The
/// two tails are one computation on `u = min(p, 1 - p)`, negated for the upper tail:
/// Rust's upper-tail form is the lower one on `1 - p`, negated, so this is the same
/// arithmetic.
fn inverse_normal(g: &mut Graph, p: &str) -> String {
    let d1: Vec<f64> = ACKLAM_D.iter().copied().chain([1.0]).collect();
    let b1: Vec<f64> = ACKLAM_B.iter().copied().chain([1.0]).collect();
    let one = g.f64(1.0);
    let half = g.f64(0.5);
    // Tails.
    let lower = g.bin("Less", p, &half);
    let flip = g.bin("Sub", &one, p);
    let u = g.op("Where", &[&lower, p, &flip], &[]);
    let ln = g.op("Log", &[&u], &[]);
    let minus_two = g.f64(-2.0);
    let m = g.bin("Mul", &minus_two, &ln);
    let q = g.op("Sqrt", &[&m], &[]);
    let num = horner(g, &ACKLAM_C, &q);
    let den = horner(g, &d1, &q);
    let tail = g.bin("Div", &num, &den);
    let negated = g.op("Neg", &[&tail], &[]);
    let tail = g.op("Where", &[&lower, &tail, &negated], &[]);
    // Centre.
    let q = g.bin("Sub", p, &half);
    let r = g.bin("Mul", &q, &q);
    let num = horner(g, &ACKLAM_A, &r);
    let num = g.bin("Mul", &num, &q);
    let den = horner(g, &b1, &r);
    let mid = g.bin("Div", &num, &den);
    let p_low = g.f64(ACKLAM_P_LOW);
    let p_high = g.f64(1.0 - ACKLAM_P_LOW);
    let above = g.bin("GreaterOrEqual", p, &p_low);
    let below = g.bin("LessOrEqual", p, &p_high);
    let central = g.op("And", &[&above, &below], &[]);
    g.op("Where", &[&central, &mid, &tail], &[])
}

/// How the exported graph takes its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum InputMode {
    /// `pixels` for an image model (every feature a `pixel_<row>_<col>`), else
    /// `columns`.
    #[default]
    Auto,
    /// One `[N, 1]` input per feature column, named after it.
    Columns,
    /// One `[N, F]` float input `pixels` holding every feature (numeric models only).
    Pixels,
}
