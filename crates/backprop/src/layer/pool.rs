//! Pooling: each output pixel summarises a `k x k` window of its channel, by its
//! maximum ([`MaxPool2d`]) or its mean ([`AvgPool2d`]). No parameters.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::conv::out_size;
use super::{Backward, Forward, Image, Layer};
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
        if self
            .input
            .checked_len()
            .is_none_or(|n| n == 0 || n > 1 << 40)
        {
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

    /// Calls `f(output index, window)` for every output value of one image, in
    /// order, with the window's input indices (row-major, inside the image: padding
    /// is left out) as a [`Window`].
    fn windows(&self, mut f: impl FnMut(usize, Window)) {
        let (inp, out) = (self.input, self.output());
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let clip =
            |start: usize, n: usize| start.saturating_sub(p)..(start + k).saturating_sub(p).min(n);
        let mut o = 0;
        for c in 0..inp.channels {
            for oy in 0..out.height {
                let ys = clip(oy * s, inp.height);
                for ox in 0..out.width {
                    let xs = clip(ox * s, inp.width);
                    let base = c * inp.area();
                    f(
                        o,
                        Window {
                            base,
                            width: inp.width,
                            ys: ys.clone(),
                            xs,
                        },
                    );
                    o += 1;
                }
            }
        }
    }
}

/// The input indices of one pooling window: rows `ys` and columns `xs` of the
/// channel starting at `base`, `width` pixels a row.
struct Window {
    base: usize,
    width: usize,
    ys: std::ops::Range<usize>,
    xs: std::ops::Range<usize>,
}

impl Window {
    /// Calls `f` with each index, row-major.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        for y in self.ys.clone() {
            let row = self.base + y * self.width;
            for i in row + self.xs.start..row + self.xs.end {
                f(i);
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

impl MaxPool2d {
    /// The forward pass of one image through any windows: `out[o]` the maximum of
    /// window `o`, `arg[o]` its index (the first, row-major; a NaN wins).
    fn max_windows(&self, x: &[f32], out: &mut [f32], arg: &mut [f32]) {
        self.0.windows(|o, w| {
            // Every window holds a pixel (padding is at most half the kernel).
            let first = w.base + w.ys.start * w.width + w.xs.start;
            let (mut best, mut at) = (x[first], first);
            w.for_each(|i| {
                if x[i] > best || x[i].is_nan() {
                    (best, at) = (x[i], i);
                }
            });
            out[o] = best;
            arg[o] = at as f32;
        });
    }

    /// Whether the windows are 2x2 with stride 2 and no padding, the usual case, which
    /// [`MaxPool2d::max_2x2`] and [`MaxPool2d::route_2x2`] compute without the general
    /// window walk (whose data-dependent branches cost more than the comparisons).
    fn is_2x2(&self) -> bool {
        (self.0.kernel, self.0.stride, self.0.padding) == (2, 2, 0)
    }

    /// The forward pass of one image through 2x2 windows: the general walk's
    /// comparisons in its order (top left, top right, bottom left, bottom right), as
    /// selects, so the same maxima and indices.
    fn max_2x2(&self, x: &[f32], out: &mut [f32], arg: &mut [f32]) {
        let (inp, o) = (self.0.input, self.0.output());
        let (w, ow) = (inp.width, o.width);
        for c in 0..inp.channels {
            for oy in 0..o.height {
                let top = c * inp.area() + 2 * oy * w;
                let (r0, r1) = (&x[top..][..2 * ow], &x[top + w..][..2 * ow]);
                let at = c * o.area() + oy * ow;
                let row = out[at..][..ow].iter_mut().zip(&mut arg[at..][..ow]);
                for (ox, (out, arg)) in row.enumerate() {
                    let i = 2 * ox;
                    let (mut best, mut k) = (r0[i], 0);
                    for (j, v) in [(1, r0[i + 1]), (2, r1[i]), (3, r1[i + 1])] {
                        let take = v > best || v.is_nan();
                        best = if take { v } else { best };
                        k = if take { j } else { k };
                    }
                    *out = best;
                    *arg = (top + (k >> 1) * w + i + (k & 1)) as f32;
                }
            }
        }
    }

    /// The backward pass of one image through 2x2 windows, which do not overlap: every
    /// pixel a window covers is written once (`dy` at the window's maximum, `+0.0`
    /// elsewhere, as `0 + dy` in the general path), the rest zeroed.
    fn route_2x2(&self, dy: &[f32], arg: &[f32], dx: &mut [f32]) {
        let (inp, o) = (self.0.input, self.0.output());
        let (w, ow) = (inp.width, o.width);
        if inp.height % 2 == 1 || w % 2 == 1 {
            dx.fill(0.0);
        }
        for c in 0..inp.channels {
            for oy in 0..o.height {
                let top = c * inp.area() + 2 * oy * w;
                let (r0, r1) = dx[top..][..2 * w].split_at_mut(w);
                let at = c * o.area() + oy * ow;
                for (ox, (&g, &a)) in dy[at..][..ow].iter().zip(&arg[at..][..ow]).enumerate() {
                    let (i, a) = (2 * ox, a as usize);
                    let pick = |j: usize| if a == j { 0.0 + g } else { 0.0 };
                    r0[i] = pick(top + i);
                    r0[i + 1] = pick(top + i + 1);
                    r1[i] = pick(top + w + i);
                    r1[i + 1] = pick(top + w + i + 1);
                }
            }
        }
    }
}

/// The backward pass of one image through any windows: `dx[arg[o]] += dy[o]`, zero
/// elsewhere.
fn route_to_max(dy: &[f32], arg: &[f32], dx: &mut [f32]) {
    dx.fill(0.0);
    for (&g, &i) in dy.iter().zip(arg) {
        dx[i as usize] += g;
    }
}

impl Layer for MaxPool2d {
    /// `a[o] = max_{i ∈ window(o)} x[i]`, keeping `argmax` (as `f32`, exact below
    /// 2²⁴ values per image, which `validate` of the layer stack guarantees). Images
    /// are shared between the pool's threads.
    fn forward(&self, p: Forward<'_>) {
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let images =
            p.x.par_chunks_exact(n_in)
                .zip(p.out.par_chunks_exact_mut(n_out));
        let images = images
            .zip(p.saved.par_chunks_exact_mut(n_out))
            .take(p.batch);
        images.for_each(|((x, out), arg)| {
            if self.is_2x2() {
                self.max_2x2(x, out, arg);
            } else {
                self.max_windows(x, out, arg);
            }
        });
    }

    /// `dx[argmax(o)] += dy[o]`, zero elsewhere.
    fn backward(&self, p: Backward<'_>) {
        let Some(dx) = p.dx else { return };
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let (dx, rest) = dx.split_at_mut(p.batch * n_in);
        rest.fill(0.0);
        let images = dx
            .par_chunks_exact_mut(n_in)
            .zip(p.d_out.par_chunks_exact(n_out));
        images
            .zip(p.saved.par_chunks_exact(n_out))
            .for_each(|((dx, dy), arg)| {
                if self.is_2x2() {
                    self.route_2x2(dy, arg, dx);
                } else {
                    route_to_max(dy, arg, dx);
                }
            });
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
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}

impl Layer for AvgPool2d {
    /// `a[o] = Σ_{i ∈ window(o)} x[i] / k²`, images shared between the pool's threads.
    fn forward(&self, p: Forward<'_>) {
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let scale = 1.0 / (self.0.kernel * self.0.kernel) as f32;
        let images =
            p.x.par_chunks_exact(n_in)
                .zip(p.out.par_chunks_exact_mut(n_out));
        images.take(p.batch).for_each(|(x, out)| {
            self.0.windows(|o, w| {
                let mut sum = -0.0f32; // where `Iterator::sum` starts
                w.for_each(|i| sum += x[i]);
                out[o] = sum * scale;
            });
        });
    }

    /// `dx[i] += dy[o] / k²` for every `i` in `window(o)`.
    fn backward(&self, p: Backward<'_>) {
        let Some(dx) = p.dx else { return };
        let (n_in, n_out) = (self.0.input.len(), self.0.output().len());
        let scale = 1.0 / (self.0.kernel * self.0.kernel) as f32;
        let (dx, rest) = dx.split_at_mut(p.batch * n_in);
        rest.fill(0.0);
        let images = dx
            .par_chunks_exact_mut(n_in)
            .zip(p.d_out.par_chunks_exact(n_out));
        images.for_each(|(dx, dy)| {
            dx.fill(0.0);
            self.0
                .windows(|o, w| w.for_each(|i| dx[i] += dy[o] * scale));
        });
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
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2x2 path against the general walk: odd and even sizes, ties (values from a
    /// small set) and NaNs, forward values, indices and routed gradients alike.
    #[test]
    fn the_2x2_path_matches_the_general_walk() {
        for (channels, height, width) in [(3, 6, 8), (2, 5, 7), (1, 2, 2), (2, 3, 2)] {
            let input = Image {
                channels,
                height,
                width,
            };
            let l = MaxPool2d(Pool {
                input,
                kernel: 2,
                stride: 2,
                padding: 0,
            });
            let x: Vec<f32> = (0..input.len())
                .map(|i| match (i * 7919) % 13 {
                    0 => f32::NAN,
                    r => (r % 4) as f32 - 1.5,
                })
                .collect();
            let n = l.0.output().len();
            let (mut out, mut arg) = (vec![0.0; n], vec![0.0; n]);
            let (mut out2, mut arg2) = (vec![0.0; n], vec![0.0; n]);
            l.max_2x2(&x, &mut out, &mut arg);
            l.max_windows(&x, &mut out2, &mut arg2);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&out2), "{input}");
            assert_eq!(arg, arg2, "{input}");
            let dy: Vec<f32> = (0..n).map(|i| i as f32 - 2.0).collect();
            let (mut dx, mut dx2) = (vec![7.0; input.len()], vec![7.0; input.len()]);
            l.route_2x2(&dy, &arg, &mut dx);
            route_to_max(&dy, &arg, &mut dx2);
            assert_eq!(bits(&dx), bits(&dx2), "{input}");
        }
    }
}
