//! Random shifts, a data augmentation written as a layer (as Keras'
//! `RandomTranslation`): while training, each image of a batch is moved by a whole
//! number of pixels, drawn anew for every image of every step, up to `max` rows and
//! `max` columns either way; the pixels that come in from outside are 0 (after the
//! input's scaling: black for pixels mapped to `[0, 1]`, the training mean for
//! standardised ones). The network sees a slightly different image each epoch, so it
//! learns features that do not depend on where exactly a digit sits, and overfits less.
//! Predicting passes images on unchanged, so a saved model predicts as without it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Image, Layer, Mode};
use crate::error::{Error, Result};

/// Shifts images of shape `image` by up to `max` pixels in each direction while
/// training (see the module documentation). The shifts of a step are drawn from
/// [`Mode::Train`]'s seed, so training is reproducible on any thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomShift {
    /// The images' shape.
    pub image: Image,
    /// The largest shift, in pixels, along each axis.
    pub max: usize,
}

impl RandomShift {
    /// Checks a non-empty image and a largest shift smaller than its sides.
    pub fn validate(&self) -> Result<()> {
        let Image { height, width, .. } = self.image;
        match self.image.checked_len() {
            Some(n) if n > 0 && n < 1 << 40 => {}
            _ => {
                return Err(Error::config(
                    "shift",
                    format!("input {} is empty", self.image),
                ))
            }
        }
        if self.max == 0 || self.max >= height.min(width) {
            return Err(Error::config(
                "shift",
                format!(
                    "the largest shift {} must be at least 1 and less than the image's sides ({height}x{width})",
                    self.max
                ),
            ));
        }
        Ok(())
    }

    /// Copies `from` (one image) to `to` moved by `dy` rows and `dx` columns
    /// (`to[c][y][x] = from[c][y - dy][x - dx]`, 0 where that is outside), or, when
    /// `back`, the reverse (`to[c][y - dy][x - dx] = from[c][y][x]`, the adjoint).
    fn moved(&self, from: &[f32], to: &mut [f32], (dy, dx): (isize, isize), back: bool) {
        let Image { height, width, .. } = self.image;
        let (dy, dx) = if back { (-dy, -dx) } else { (dy, dx) };
        to.fill(0.0);
        // Columns x of `to` whose source x - dx is inside: [x0, x1).
        let x0 = dx.max(0) as usize;
        let x1 = (width as isize + dx.min(0)) as usize;
        let from_x0 = (x0 as isize - dx) as usize;
        for c in 0..self.image.channels {
            let plane = c * height * width;
            for y in 0..height {
                let sy = y as isize - dy;
                if sy < 0 || sy >= height as isize {
                    continue;
                }
                let to_row = plane + y * width;
                let from_row = plane + sy as usize * width;
                to[to_row + x0..to_row + x1]
                    .copy_from_slice(&from[from_row + from_x0..from_row + from_x0 + (x1 - x0)]);
            }
        }
    }
}

/// The shift of one image as saved for backward: two values (rows, columns).
fn shift_of(saved: &[f32]) -> (isize, isize) {
    (saved[0] as isize, saved[1] as isize)
}

impl Layer for RandomShift {
    /// Training: for each image draw `dy, dx` uniformly from `-max..=max`, keep them,
    /// and `a[c][y][x] = x[c][y - dy][x - dx]` (0 outside). Inference: `a = x`.
    fn forward(&self, p: Forward<'_>) {
        let n = self.image.len();
        match p.mode {
            Mode::Infer => {
                p.out.copy_from_slice(p.x);
                p.saved[..2 * p.batch].fill(0.0);
            }
            Mode::Train { seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let m = self.max as isize;
                let rows = p.x.chunks_exact(n).zip(p.out.chunks_exact_mut(n));
                for ((x, a), s) in rows.zip(p.saved.chunks_exact_mut(2)) {
                    let d = (rng.gen_range(-m..=m), rng.gen_range(-m..=m));
                    (s[0], s[1]) = (d.0 as f32, d.1 as f32);
                    self.moved(x, a, d, false);
                }
            }
        }
    }

    /// `dx[c][y - dy][x - dx] = dy[c][y][x]`: each output pixel's gradient goes back to
    /// the input pixel it was copied from; pixels shifted out of the image get 0.
    fn backward(&self, p: Backward<'_>) {
        let n = self.image.len();
        if let Some(dx) = p.dx {
            let rows = p.d_out.chunks_exact(n).zip(dx.chunks_exact_mut(n));
            for ((g, d), s) in rows.zip(p.saved.chunks_exact(2)) {
                self.moved(g, d, shift_of(s), true);
            }
        }
    }

    fn kind(&self) -> &'static str {
        "shift"
    }
    fn inputs(&self) -> usize {
        self.image.len()
    }
    fn outputs(&self) -> usize {
        self.image.len()
    }
    fn num_params(&self) -> usize {
        0
    }
    fn saved_width(&self) -> usize {
        2
    }
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}
