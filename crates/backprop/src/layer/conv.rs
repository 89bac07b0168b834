//! The 2-d convolution, `a = f(W ⋆ x + b)`, computed as one matrix product over the
//! batch by im2col: every output position's receptive field becomes a column of a
//! `(channel, ky, kx) x (image, position)` matrix `cols`, and the convolution is `W`
//! times that matrix. Images are NCHW (see the module documentation of `layer`).
//!
//! `cols` is field-major (Caffe's layout) rather than position-major because then every
//! copy between images and matrices is a run along an image row: a row of `cols` at a
//! fixed `(channel, ky, kx)` holds, for each image and output row, `out_w` neighbouring
//! input pixels, and the product's output `channel x (image, position)` becomes NCHW by
//! copying whole planes. The position-major layout needed a transpose per image and a
//! gather of `kw` values at a time: 3.3x more time in the copies than in the products.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Layer};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::kernels::gemm;
use crate::matrix::View;

/// The shape of one image: `channels x height x width`, stored in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Image {
    /// Channels (1 for grey, 3 for colour, the filters of a convolution).
    pub channels: usize,
    /// Rows of pixels.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
}

impl Image {
    /// Values per image, `channels x height x width` (saturating: shapes are checked
    /// with [`Image::checked_len`]).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Whether the image has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per image, `None` when the count overflows.
    pub fn checked_len(&self) -> Option<usize> {
        self.channels
            .checked_mul(self.height)?
            .checked_mul(self.width)
    }

    /// Pixels per channel.
    pub fn area(&self) -> usize {
        self.height * self.width
    }
}

impl std::fmt::Display for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// The size of a sliding window's output along one axis: `(n + 2 pad - k) / stride +
/// 1`, or `None` when the window does not fit (or a size is zero).
pub(crate) fn out_size(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = n.checked_add(pad.checked_mul(2)?)?;
    (k > 0 && stride > 0 && padded >= k).then(|| (padded - k) / stride + 1)
}

/// A 2-d convolution (PyTorch's `nn.Conv2d` with `dilation = 1`, `groups = 1`)
/// followed by an element-wise activation. Parameters: the weight
/// `[out_channels, channels, kh, kw]` (PyTorch's layout) then the bias
/// `[out_channels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    /// The input image's shape.
    pub input: Image,
    /// Filters, one output channel each.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Step of the window, both axes.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
    /// Applied to each output value.
    pub activation: Activation,
}

impl Conv2d {
    /// The output image's shape (meaningful once [`Conv2d::validate`] passed).
    pub fn output(&self) -> Image {
        let [kh, kw] = self.kernel;
        let (s, p) = (self.stride, self.padding);
        Image {
            channels: self.out_channels,
            height: out_size(self.input.height, kh, s, p).unwrap_or(0),
            width: out_size(self.input.width, kw, s, p).unwrap_or(0),
        }
    }

    /// Values of one receptive field: `channels x kh x kw`.
    fn field(&self) -> usize {
        self.input.channels * self.kernel[0] * self.kernel[1]
    }

    /// Checks the configuration: sizes at least 1, the kernel fitting the padded
    /// input, an element-wise activation, and counts that fit in memory.
    pub fn validate(&self) -> Result<()> {
        let [kh, kw] = self.kernel;
        let bad = |reason: String| Err(Error::config("conv2d", reason));
        if self.input.checked_len().is_none_or(|n| n == 0) || self.out_channels == 0 {
            return bad(format!(
                "needs a non-empty input and at least one filter, got input {} and {} filters",
                self.input, self.out_channels
            ));
        }
        if self.stride == 0 || kh == 0 || kw == 0 {
            return bad("kernel and stride must be at least 1".into());
        }
        let (h, w) = (self.input.height, self.input.width);
        let (s, p) = (self.stride, self.padding);
        if out_size(h, kh, s, p).is_none() || out_size(w, kw, s, p).is_none() {
            return bad(format!(
                "a {kh}x{kw} kernel with padding {p} does not fit a {h}x{w} input"
            ));
        }
        if self.activation == Activation::Softmax {
            return bad("softmax is for the output layer only".into());
        }
        let counts = [
            self.out_channels.checked_mul(self.field()),
            self.output().checked_len(),
            self.output().area().checked_mul(self.field()),
        ];
        if counts.iter().any(|c| c.is_none_or(|c| c > 1 << 40)) {
            return bad("is too large to hold in memory".into());
        }
        Ok(())
    }

    /// Splits this layer's parameters into (weight, bias).
    pub fn split<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        params.split_at(self.out_channels * self.field())
    }

    fn split_mut<'a>(&self, params: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        params.split_at_mut(self.out_channels * self.field())
    }

    /// The output columns `ox` whose pixel `ox s - p + kx` lies inside the image.
    fn inside_columns(&self, kx: usize) -> std::ops::Range<usize> {
        let (s, p, w) = (self.stride, self.padding, self.input.width);
        let out_w = self.output().width;
        // ox s + kx >= p  and  ox s + kx - p < w
        let lo = p.saturating_sub(kx).div_ceil(s).min(out_w);
        let hi = (w + p).saturating_sub(kx).div_ceil(s).min(out_w).max(lo);
        lo..hi
    }

    /// The input row read by kernel row `ky` at output row `oy`, when inside the image.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&y| y < self.input.height)
    }

    /// Writes row `f = (c, ky, kx)` of `cols` for `images` (NCHW, one per chunk):
    /// `row[(b, oy, ox)] = x[b, c, oy s - p + ky, ox s - p + kx]`, zero outside the
    /// image.
    fn im2col_row(&self, f: usize, images: &[f32], row: &mut [f32]) {
        let (inp, out) = (self.input, self.output());
        let [kh, kw] = self.kernel;
        let (c, ky, kx) = (f / (kh * kw), f / kw % kh, f % kw);
        let xs = self.inside_columns(kx);
        let (s, first) = (
            self.stride,
            (xs.start * self.stride + kx).wrapping_sub(self.padding),
        );
        for (image, dst) in images
            .chunks_exact(inp.len())
            .zip(row.chunks_exact_mut(out.area()))
        {
            let channel = &image[c * inp.area()..][..inp.area()];
            for (oy, dst) in dst.chunks_exact_mut(out.width).enumerate() {
                match self.input_row(oy, ky) {
                    Some(y) if !xs.is_empty() => {
                        let src = &channel[y * inp.width + first..];
                        dst[..xs.start].fill(0.0);
                        if s == 1 {
                            dst[xs.clone()].copy_from_slice(&src[..xs.len()]);
                        } else {
                            for (d, &v) in dst[xs.clone()].iter_mut().zip(src.iter().step_by(s)) {
                                *d = v;
                            }
                        }
                        dst[xs.end..].fill(0.0);
                    }
                    _ => dst.fill(0.0),
                }
            }
        }
    }

    /// The adjoint of [`Conv2d::im2col_row`] over all rows for one image `b`: adds its
    /// part of every row of `cols` (`rows` values a row) back onto the pixels it was
    /// read from, into `dx` (zeroed first).
    fn col2im(&self, cols: &[f32], rows: usize, b: usize, dx: &mut [f32]) {
        let (inp, out) = (self.input, self.output());
        let [kh, kw] = self.kernel;
        dx.fill(0.0);
        for (f, row) in cols.chunks_exact(rows).enumerate() {
            let (c, ky, kx) = (f / (kh * kw), f / kw % kh, f % kw);
            let xs = self.inside_columns(kx);
            if xs.is_empty() {
                continue;
            }
            let (s, first) = (
                self.stride,
                (xs.start * self.stride + kx).wrapping_sub(self.padding),
            );
            let channel = &mut dx[c * inp.area()..][..inp.area()];
            let src = &row[b * out.area()..][..out.area()];
            for (oy, src) in src.chunks_exact(out.width).enumerate() {
                if let Some(y) = self.input_row(oy, ky) {
                    let dst = &mut channel[y * inp.width + first..];
                    let src = &src[xs.clone()];
                    if s == 1 {
                        for (d, &g) in dst.iter_mut().zip(src) {
                            *d += g;
                        }
                    } else {
                        for (d, &g) in dst.iter_mut().step_by(s).zip(src) {
                            *d += g;
                        }
                    }
                }
            }
        }
    }

    /// Widths (per image) of the saved receptive fields and of `z` when kept.
    fn saved_parts(&self) -> (usize, usize) {
        let positions = self.output().area();
        let z = if self.activation.needs_z() {
            self.output().len()
        } else {
            0
        };
        (positions * self.field(), z)
    }
}

impl Layer for Conv2d {
    /// `cols = im2col(x)` (kept for backward), `y = W cols` (`out x (b, p)`), then
    /// `z[b, o, p] = y[o, (b, p)] + b[o]` in NCHW and `a = f(z)`. The copies and the
    /// activation are shared between the pool's threads (rows of `cols`, then images).
    fn forward(&self, p: Forward<'_>) {
        let (w, b) = self.split(p.params);
        let (k, n) = (self.field(), self.out_channels);
        let n_out = self.output().len();
        let positions = self.output().area();
        let rows = p.batch * positions;
        let (cols_w, _) = self.saved_parts();
        let (cols, z) = p.saved.split_at_mut(p.batch * cols_w);
        let cols = &mut cols[..k * rows];
        let x = &p.x[..p.batch * self.input.len()];
        cols.par_chunks_exact_mut(rows)
            .enumerate()
            .for_each(|(f, row)| self.im2col_row(f, x, row));
        // y = W cols                                  (out x (b, p))
        let y = &mut p.work[..n * rows];
        gemm(1.0, View::new(w, n, k), View::new(cols, k, rows), 0.0, y);
        // z = y + b, in NCHW; a = f(z), plane by plane while the plane is in cache
        let (y, f) = (&*y, self.activation);
        let image = |i: usize, a: &mut [f32], mut z: Option<&mut [f32]>| {
            for (c, plane) in a.chunks_exact_mut(positions).enumerate() {
                let src = &y[c * rows + i * positions..][..positions];
                for (v, &s) in plane.iter_mut().zip(src) {
                    *v = s + b[c];
                }
                if let Some(z) = z.as_deref_mut() {
                    z[c * positions..][..positions].copy_from_slice(plane);
                }
                f.forward_bias_in_place(plane, &[], positions);
            }
        };
        let images = p.out[..p.batch * n_out]
            .par_chunks_exact_mut(n_out)
            .enumerate();
        if z.is_empty() {
            images.for_each(|(i, a)| image(i, a, None));
        } else {
            images
                .zip(z.par_chunks_exact_mut(n_out))
                .for_each(|((i, a), z)| image(i, a, Some(z)));
        }
    }

    /// From `dy = dL/da`: `dz = dy ⊙ f'(z)`, `db = Σ_{b,p} dz`, `dW = dz colsᵀ`,
    /// `dcols = Wᵀ dz` and `dx = col2im(dcols)`, with `dz` as `out x (b, p)`. The
    /// copies go image by image or channel by channel (the bias gradient summing its
    /// images in order), shared between the pool's threads.
    fn backward(&self, p: Backward<'_>) {
        let (w, _) = self.split(p.params);
        let (gw, gb) = self.split_mut(p.grads);
        let (k, n) = (self.field(), self.out_channels);
        let (n_in, n_out) = (self.input.len(), self.output().len());
        let positions = self.output().area();
        let rows = p.batch * positions;
        let (cols_w, _) = self.saved_parts();
        let (cols, z) = p.saved.split_at(p.batch * cols_w);
        let cols = View::new(&cols[..k * rows], k, rows);
        // dz = dy ⊙ f'(z) (overwriting dy)
        let f = self.activation;
        let d_out = &mut p.d_out[..p.batch * n_out];
        let images = d_out
            .par_chunks_exact_mut(n_out)
            .zip(p.out.par_chunks_exact(n_out));
        if z.is_empty() {
            images.for_each(|(d, a)| f.backward_in_place(&[], a, d, positions));
        } else {
            images
                .zip(z.par_chunks_exact(n_out))
                .for_each(|((d, a), z)| f.backward_in_place(z, a, d, positions));
        }
        // db (+)= Σ over images and positions of dz; dz as out x (b, p)
        let d_out = &*d_out;
        let (dz, dcols) = p.work.split_at_mut(n * rows);
        dz.par_chunks_exact_mut(rows)
            .zip(gb.par_iter_mut())
            .enumerate()
            .for_each(|(c, (dz, g))| {
                if !p.accumulate {
                    *g = 0.0;
                }
                for (image, dst) in d_out
                    .chunks_exact(n_out)
                    .zip(dz.chunks_exact_mut(positions))
                {
                    let plane = &image[c * positions..][..positions];
                    *g += plane.iter().sum::<f32>();
                    dst.copy_from_slice(plane);
                }
            });
        let dz = View::new(dz, n, rows);
        // dW (+)= dz colsᵀ                             (out x field)
        let beta = if p.accumulate { 1.0 } else { 0.0 };
        gemm(1.0, dz, cols.t(), beta, gw);
        // dx = col2im(Wᵀ dz)
        if let Some(dx) = p.dx {
            let dcols = &mut dcols[..k * rows];
            gemm(1.0, View::new(w, n, k).t(), dz, 0.0, dcols);
            let (dx, rest) = dx.split_at_mut(p.batch * n_in);
            rest.fill(0.0);
            let dcols = &*dcols;
            dx.par_chunks_exact_mut(n_in)
                .enumerate()
                .for_each(|(b, dx)| self.col2im(dcols, rows, b, dx));
        }
    }

    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn inputs(&self) -> usize {
        self.input.len()
    }

    fn outputs(&self) -> usize {
        self.output().len()
    }

    fn num_params(&self) -> usize {
        self.out_channels * self.field() + self.out_channels
    }

    fn saved_width(&self) -> usize {
        let (cols, z) = self.saved_parts();
        cols + z
    }

    fn work_width(&self) -> usize {
        let positions = self.output().area();
        positions * self.out_channels + positions * self.field()
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        let [kh, kw] = self.kernel;
        let (o, c) = (self.out_channels, self.input.channels);
        vec![("weight", vec![o, c, kh, kw]), ("bias", vec![o])]
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}
