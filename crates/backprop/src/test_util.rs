//! Helpers shared by the unit tests.

/// `len` values spread over [-1, 1) in a fixed, seed-dependent order.
pub(crate) fn grid(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|x| ((x * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// `got` equals `want` to a relative 1e-5, element by element.
pub(crate) fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}
