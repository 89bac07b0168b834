//! Dropout (Srivastava et al., 2014), inverted: while training each value is zeroed
//! with probability `p` and the others scaled by `1 / (1 - p)`, so that predicting
//! needs no rescaling and passes values through.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Layer, Mode};
use crate::error::{Error, Result};

/// Dropout over `width` values per row with drop probability `p`. The mask of a
/// training pass is drawn from [`Mode::Train`]'s seed (one per step, piece and layer),
/// so training is reproducible and independent of the thread count.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropout {
    /// Values per row.
    pub width: usize,
    /// Probability of zeroing a value while training, in `[0, 1)`.
    pub p: f32,
}

impl Dropout {
    /// Checks `0 <= p < 1` and a width of at least 1.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.p) {
            return Err(Error::config(
                "dropout",
                format!("probability {} is not in [0, 1)", self.p),
            ));
        }
        if self.width == 0 {
            return Err(Error::config("dropout", "needs at least one value per row"));
        }
        Ok(())
    }
}

impl Layer for Dropout {
    /// Training: `m_i = 1/(1-p)` with probability `1 - p`, else 0, kept; `a = x ⊙ m`.
    /// Inference: `a = x` (and `m = 1`).
    fn forward(&self, p: Forward<'_>) {
        let mask = &mut p.saved[..p.x.len()];
        match p.mode {
            Mode::Infer => mask.fill(1.0),
            Mode::Train { seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let keep = 1.0 / (1.0 - self.p);
                for m in mask.iter_mut() {
                    *m = if rng.gen::<f32>() < self.p { 0.0 } else { keep };
                }
            }
        }
        for ((a, &x), &m) in p.out.iter_mut().zip(p.x).zip(mask.iter()) {
            *a = x * m;
        }
    }

    /// `dx = dy ⊙ m`.
    fn backward(&self, p: Backward<'_>) {
        if let Some(dx) = p.dx {
            for ((d, &g), &m) in dx.iter_mut().zip(p.d_out.iter()).zip(p.saved) {
                *d = g * m;
            }
        }
    }

    fn kind(&self) -> &'static str {
        "dropout"
    }
    fn inputs(&self) -> usize {
        self.width
    }
    fn outputs(&self) -> usize {
        self.width
    }
    fn num_params(&self) -> usize {
        0
    }
    fn saved_width(&self) -> usize {
        self.width
    }
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}
