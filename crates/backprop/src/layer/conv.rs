//! The 2-d convolution, `a = f(W ⋆ x + b)`, computed as one matrix product over the
//! batch by im2col: every output position's receptive field becomes a row of a
//! `(image, position) x (channel, ky, kx)` matrix, and the convolution is that matrix
//! times `Wᵀ`. Images are NCHW (see the module documentation of `layer`).

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

    /// Writes the receptive fields of `batch` images `x` as rows of `cols`:
    /// `cols[(b, oy, ox), (c, ky, kx)] = x[b, c, oy s - p + ky, ox s - p + kx]`, zero
    /// outside the image.
    fn im2col(&self, x: &[f32], batch: usize, cols: &mut [f32]) {
        let (inp, out) = (self.input, self.output());
        let [kh, kw] = self.kernel;
        let (s, p) = (self.stride, self.padding as isize);
        let mut rows = cols.chunks_exact_mut(self.field());
        for image in x.chunks_exact(inp.len()).take(batch) {
            for oy in 0..out.height {
                for ox in 0..out.width {
                    let row = rows.next().expect("cols holds every position");
                    let mut v = row.iter_mut();
                    for channel in image.chunks_exact(inp.area()) {
                        for ky in 0..kh {
                            let y = (oy * s + ky) as isize - p;
                            for kx in 0..kw {
                                let xx = (ox * s + kx) as isize - p;
                                let inside = (0..inp.height as isize).contains(&y)
                                    && (0..inp.width as isize).contains(&xx);
                                *v.next().expect("a field value") = if inside {
                                    channel[y as usize * inp.width + xx as usize]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Conv2d::im2col`]: adds every row of `cols` back onto the pixels
    /// it was read from, into `dx` (zeroed first).
    fn col2im(&self, cols: &[f32], batch: usize, dx: &mut [f32]) {
        let (inp, out) = (self.input, self.output());
        let [kh, kw] = self.kernel;
        let (s, p) = (self.stride, self.padding as isize);
        dx.fill(0.0);
        let mut rows = cols.chunks_exact(self.field());
        for image in dx.chunks_exact_mut(inp.len()).take(batch) {
            for oy in 0..out.height {
                for ox in 0..out.width {
                    let mut v = rows.next().expect("cols holds every position").iter();
                    for channel in image.chunks_exact_mut(inp.area()) {
                        for ky in 0..kh {
                            let y = (oy * s + ky) as isize - p;
                            for kx in 0..kw {
                                let xx = (ox * s + kx) as isize - p;
                                let g = *v.next().expect("a field value");
                                if (0..inp.height as isize).contains(&y)
                                    && (0..inp.width as isize).contains(&xx)
                                {
                                    channel[y as usize * inp.width + xx as usize] += g;
                                }
                            }
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

/// `dst[b, c, p] = src[(b, p), c]`: from the product's `(image, position) x channel`
/// rows to NCHW, for `batch` images of `positions` pixels and `channels` channels.
fn to_nchw(src: &[f32], batch: usize, positions: usize, channels: usize, dst: &mut [f32]) {
    let (img_in, img_out) = (
        src.chunks_exact(positions * channels),
        dst.chunks_exact_mut(positions * channels),
    );
    for (s, d) in img_in.zip(img_out).take(batch) {
        for (p, row) in s.chunks_exact(channels).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                d[c * positions + p] = v;
            }
        }
    }
}

/// The inverse of [`to_nchw`]: `dst[(b, p), c] = src[b, c, p]`.
fn from_nchw(src: &[f32], batch: usize, positions: usize, channels: usize, dst: &mut [f32]) {
    let (img_in, img_out) = (
        src.chunks_exact(positions * channels),
        dst.chunks_exact_mut(positions * channels),
    );
    for (s, d) in img_in.zip(img_out).take(batch) {
        for (c, plane) in s.chunks_exact(positions).enumerate() {
            for (p, &v) in plane.iter().enumerate() {
                d[p * channels + c] = v;
            }
        }
    }
}

impl Layer for Conv2d {
    /// `cols = im2col(x)` (kept for backward), `y = cols Wᵀ` (`(b, p) x out`), then
    /// `z[b, o, p] = y[(b, p), o] + b[o]` in NCHW and `a = f(z)`.
    fn forward(&self, p: Forward<'_>) {
        let (w, b) = self.split(p.params);
        let (k, n) = (self.field(), self.out_channels);
        let positions = self.output().area();
        let rows = p.batch * positions;
        let (cols_w, _) = self.saved_parts();
        let (cols, z) = p.saved.split_at_mut(p.batch * cols_w);
        let cols = &mut cols[..rows * k];
        self.im2col(p.x, p.batch, cols);
        // y = cols Wᵀ                                 ((b, p) x out)
        let y = &mut p.work[..rows * n];
        gemm(
            1.0,
            View::new(cols, rows, k),
            View::new(w, n, k).t(),
            0.0,
            y,
        );
        // z = y + b, in NCHW
        to_nchw(y, p.batch, positions, n, p.out);
        for (i, plane) in p.out.chunks_exact_mut(positions).enumerate() {
            let bias = b[i % n];
            plane.iter_mut().for_each(|v| *v += bias);
        }
        // a = f(z)
        if !z.is_empty() {
            z.copy_from_slice(p.out);
        }
        self.activation.forward_bias_in_place(p.out, &[], positions);
    }

    /// From `dy = dL/da`: `dz = dy ⊙ f'(z)`, `db = Σ_{b,p} dz`, `dW = dzᵀ cols`,
    /// `dcols = dz W` and `dx = col2im(dcols)`, with `dz` as `(b, p) x out` rows.
    fn backward(&self, p: Backward<'_>) {
        let (w, _) = self.split(p.params);
        let (gw, gb) = self.split_mut(p.grads);
        let (k, n) = (self.field(), self.out_channels);
        let positions = self.output().area();
        let rows = p.batch * positions;
        let (cols_w, _) = self.saved_parts();
        let (cols, z) = p.saved.split_at(p.batch * cols_w);
        let cols = View::new(&cols[..rows * k], rows, k);
        // dz = dy ⊙ f'(z) (overwriting dy)
        self.activation
            .backward_in_place(z, p.out, p.d_out, positions);
        // db (+)= Σ over images and positions of dz
        if !p.accumulate {
            gb.fill(0.0);
        }
        for (i, plane) in p.d_out.chunks_exact(positions).enumerate() {
            gb[i % n] += plane.iter().sum::<f32>();
        }
        let (dz, dcols) = p.work.split_at_mut(rows * n);
        from_nchw(p.d_out, p.batch, positions, n, dz);
        let dz = View::new(dz, rows, n);
        // dW (+)= dzᵀ cols                             (out x field)
        let beta = if p.accumulate { 1.0 } else { 0.0 };
        gemm(1.0, dz.t(), cols, beta, gw);
        // dx = col2im(dz W)
        if let Some(dx) = p.dx {
            let dcols = &mut dcols[..rows * k];
            gemm(1.0, dz, View::new(w, n, k), 0.0, dcols);
            self.col2im(dcols, p.batch, dx);
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
