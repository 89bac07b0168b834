//! Helpers shared by the unit tests.

/// `len` values spread over [-1, 1) in a fixed, seed-dependent order.
pub(crate) fn grid(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|x| ((x * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}
