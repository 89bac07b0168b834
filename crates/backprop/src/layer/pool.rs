//! Pooling: each output pixel summarises a `k x k` window of its channel, by its
//! maximum ([`MaxPool2d`]) or its mean ([`AvgPool2d`]). No parameters.

use serde::{Deserialize, Serialize};

use super::conv::out_size;
use super::{Backward, Forward, Image, Layer, LayerSpec};
use crate::error::{Error, Result};

/// The window of a pooling layer (PyTorch's `kernel_size`, `stride`, `padding`, with
/// `ceil_mode = False`; [`AvgPool2d`] counts the padding, `count_include_pad = True`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The input image's shape.
    pub input: Image,
    /// Window height and width.
    pub kernel: usize,
    /// Step of the window, both axes.
    pub stride: usize,
    /// Padding on every side (at most half the kernel, as in PyTorch).
    pub padding: usize,
}

impl Pool {
    /// The output image's shape.
    pub fn output(&self) -> Image {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        Image {
            channels: self.input.channels,
            height: out_size(self.input.height, k, s, p).unwrap_or(0),
            width: out_size(self.input.width, k, s, p).unwrap_or(0),
        }
    }

    /// Checks the window: sizes at least 1, padding at most half the kernel, and the
    /// window fitting the padded input.
    pub fn validate(&self, kind: &'static str) -> Result<()> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let bad = |reason: String| Err(Error::config(kind, reason));
        if self.input.checked_len().is_none_or(|n| n == 0 || n > 1 << 40) {
            return bad(format!("needs a non-empty input, got {}", self.input));
        }
        if k == 0 || s == 0 {
            return bad("kernel and stride must be at least 1".into());
        }
        if 2 * p > k {
            return bad(format!(
                "padding {p} is more than half the kernel {k} (as PyTorch, refused)"
            ));
        }
        let (h, w) = (self.input.height, self.input.width);
        if out_size(h, k, s, p).is_none() || out_size(w, k, s, p).is_none() {
            return bad(format!(
                "a {k}x{k} window with padding {p} does not fit a {h}x{w} input"
            ));
        }
        Ok(())
    }

    /// Calls `f(output index, input indices of its window within the padded input
    /// that lie inside the image)` for every output value of one image, in order.
    fn windows(&self, mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>)) {
        let (inp, out) = (self.input, self.output());
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let mut o = 0;
        for c in 0..inp.channels {
            for oy in 0..out.height {
                for ox in 0..out.width {
                    let (y0, x0) = ((oy * s) as isize - p as isize, (ox * s) as isize - p as isize);
                    let mut idx = (0..k as isize)
                        .flat_map(move |dy| (0..k as isize).map(move |dx| (y0 + dy, x0 + dx)))
                        .filter(|&(y, x)| {
                            (0..inp.height as isize).contains(&y)
                                && (0..inp.width as isize).contains(&x)
                        })
                        .map(|(y, x)| (c * inp.height + y as usize) * inp.width + x as usize);
                    f(o, &mut idx);
                    o += 1;
                }
            }
        }
    }
}

/// Max-pooling: `a = max` over the window. The index of the maximum (the first, in
/// row-major order, on ties) is kept for backward, which routes the gradient there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxPool2d(pub Pool);

/// Average pooling: `a = Σ window / k²` (padding counts as zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AvgPool2d(pub Pool);

impl Layer for MaxPool2d {
    /// `a[o] = max_{i ∈ window(o)} x[i]`, keeping `argmax` (as `f32`, exact below
    /// 2²⁴ values per image, which `validate` of the layer stack guarantees).
    fn forward(&self, p: Forward<'_>) {
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let images = p.x.chunks_exact(n_in).zip(p.out.chunks_exact_mut(n_out));
        for ((x, out), arg) in images.zip(p.saved.chunks_exact_mut(n_out)).take(p.batch) {
            self.0.windows(|o, idx| {
                let (mut best, mut at) = (f32::NEG_INFINITY, usize::MAX);
                for i in idx {
                    if at == usize::MAX || x[i] > best || x[i].is_nan() {
                        (best, at) = (x[i], i);
                    }
                }
                out[o] = best;
                arg[o] = at as f32;
            });
        }
    }

    /// `dx[argmax(o)] += dy[o]`, zero elsewhere.
    fn backward(&self, p: Backward<'_>) {
        let Some(dx) = p.dx else { return };
        dx.fill(0.0);
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let images = dx.chunks_exact_mut(n_in).zip(p.d_out.chunks_exact(n_out));
        for ((dx, dy), arg) in images.zip(p.saved.chunks_exact(n_out)).take(p.batch) {
            for (&g, &i) in dy.iter().zip(arg) {
                dx[i as usize] += g;
            }
        }
    }

    fn kind(&self) -> &'static str {
        "maxpool2d"
    }
    fn inputs(&self) -> usize {
        self.0.input.len()
    }
    fn outputs(&self) -> usize {
        self.0.output().len()
    }
    fn num_params(&self) -> usize {
        0
    }
    fn saved_width(&self) -> usize {
        self.0.output().len()
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::MaxPool2d(*self))
    }
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}

impl Layer for AvgPool2d {
    /// `a[o] = Σ_{i ∈ window(o)} x[i] / k²`.
    fn forward(&self, p: Forward<'_>) {
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let scale = 1.0 / (self.0.kernel * self.0.kernel) as f32;
        let images = p.x.chunks_exact(n_in).zip(p.out.chunks_exact_mut(n_out));
        for (x, out) in images.take(p.batch) {
            self.0.windows(|o, idx| out[o] = idx.map(|i| x[i]).sum::<f32>() * scale);
        }
    }

    /// `dx[i] += dy[o] / k²` for every `i` in `window(o)`.
    fn backward(&self, p: Backward<'_>) {
        let Some(dx) = p.dx else { return };
        dx.fill(0.0);
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let scale = 1.0 / (self.0.kernel * self.0.kernel) as f32;
        let images = dx.chunks_exact_mut(n_in).zip(p.d_out.chunks_exact(n_out));
        for (dx, dy) in images.take(p.batch) {
            self.0.windows(|o, idx| idx.for_each(|i| dx[i] += dy[o] * scale));
        }
    }

    fn kind(&self) -> &'static str {
        "avgpool2d"
    }
    fn inputs(&self) -> usize {
        self.0.input.len()
    }
    fn outputs(&self) -> usize {
        self.0.output().len()
    }
    fn num_params(&self) -> usize {
        0
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::AvgPool2d(*self))
    }
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}
