//! Finite-difference gradient checking: the independent check of every derivative.

/// Result of comparing an analytic gradient with central differences.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheck {
    /// Largest `|analytic - numeric| / max(1, |analytic|, |numeric|)` over all entries.
    pub max_rel_error: f64,
    /// Index where it occurred.
    pub worst_index: usize,
    /// Analytic value there.
    pub analytic: f64,
    /// Numeric value there.
    pub numeric: f64,
}

impl GradCheck {
    /// Whether every entry agrees within `tol`.
    pub fn passes(&self, tol: f64) -> bool {
        self.max_rel_error <= tol
    }
}

/// Compares `analytic` (the claimed gradient of `f` at `x`) with central differences
/// `(f(x + h e_i) - f(x - h e_i)) / 2h`, computed in `f64`.
pub fn check_gradient(
    x: &[f64],
    analytic: &[f64],
    h: f64,
    mut f: impl FnMut(&[f64]) -> f64,
) -> GradCheck {
    assert_eq!(
        x.len(),
        analytic.len(),
        "check_gradient: x vs gradient length"
    );
    let mut point = x.to_vec();
    let mut worst = GradCheck {
        max_rel_error: 0.0,
        worst_index: 0,
        analytic: 0.0,
        numeric: 0.0,
    };
    for i in 0..x.len() {
        point[i] = x[i] + h;
        let up = f(&point);
        point[i] = x[i] - h;
        let down = f(&point);
        point[i] = x[i];
        let numeric = (up - down) / (2.0 * h);
        let a = analytic[i];
        let err = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
        if err > worst.max_rel_error || err.is_nan() {
            worst = GradCheck {
                max_rel_error: if err.is_nan() { f64::INFINITY } else { err },
                worst_index: i,
                analytic: a,
                numeric,
            };
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_right_gradient_and_rejects_a_wrong_one() {
        let f = |x: &[f64]| x[0] * x[0] * x[1] + x[1].sin();
        let x = [1.3f64, -0.7];
        let right = [2.0 * x[0] * x[1], x[0] * x[0] + x[1].cos()];
        assert!(check_gradient(&x, &right, 1e-5, f).passes(1e-7));
        let wrong = [2.0 * x[0] * x[1], x[0] * x[0] + 1.01 * x[1].cos()];
        let r = check_gradient(&x, &wrong, 1e-5, f);
        assert!(!r.passes(1e-3), "{r:?}");
        assert_eq!(r.worst_index, 1);
    }
}
