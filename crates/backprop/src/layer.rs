//! The fully connected layer: `y = f(x Wᵀ + b)`.

use serde::{Deserialize, Serialize};

use multiversion::multiversion;

use crate::activation::{add_rows, Activation, WithFunction};
use crate::columns::InputColumns;
use crate::matrix::{gemm, View};

/// Shape and activation of one fully connected layer. Its parameters live in the
/// network's flat parameter buffer: the weight (`outputs x inputs`, PyTorch's
/// `nn.Linear` layout) followed by the bias (`outputs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dense {
    /// Inputs per observation (`fan_in`).
    pub inputs: usize,
    /// Perceptrons in the layer (`fan_out`).
    pub outputs: usize,
    /// What each perceptron applies to its weighted sum.
    pub activation: Activation,
}

impl Dense {
    /// Number of parameters: weights plus biases.
    pub fn num_params(&self) -> usize {
        self.outputs * self.inputs + self.outputs
    }

    /// Splits this layer's slice of the parameter buffer into (weight, bias).
    pub fn split<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        params.split_at(self.outputs * self.inputs)
    }

    /// Splits this layer's slice of a parameter-shaped buffer mutably.
    pub fn split_mut<'a>(&self, params: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        params.split_at_mut(self.outputs * self.inputs)
    }

    /// Forward: `z = x Wᵀ + b` then `a = f(z)`, for `x` of `batch x inputs`.
    pub fn forward(&self, params: &[f32], x: &[f32], batch: usize, z: &mut [f32], a: &mut [f32]) {
        self.forward_with(params, x, batch, z, a, None);
    }

    /// [`Dense::forward`], its product over the input columns `cols` selected (when
    /// given) instead of the whole of `x`.
    pub(crate) fn forward_with(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        z: &mut [f32],
        a: &mut [f32],
        cols: Option<&mut InputColumns>,
    ) {
        self.affine_with(params, x, batch, z, cols);
        self.activation.forward(z, a, self.outputs);
    }

    /// Forward without keeping `z`: `a = f(x Wᵀ + b)`, the bias and activation applied
    /// in one pass after the product. Enough for backward unless
    /// [`Activation::needs_z`].
    pub fn forward_in_place(&self, params: &[f32], x: &[f32], batch: usize, a: &mut [f32]) {
        self.forward_in_place_with(params, x, batch, a, None);
    }

    /// [`Dense::forward_in_place`] over the input columns `cols` selected, when given.
    pub(crate) fn forward_in_place_with(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        a: &mut [f32],
        cols: Option<&mut InputColumns>,
    ) {
        let (w, b) = self.split(params);
        if cols.is_none() && self.narrow_forward(w, b, x, batch, a) {
            return;
        }
        self.product_with(params, x, batch, a, cols);
        self.activation.forward_bias_in_place(a, b, self.outputs);
    }

    /// `a = f(x Wᵀ + b)` in one pass for a layer with at most 16 inputs and 16, 32, 48
    /// or 64 outputs (the first layer of a tabular network), on CPUs with fused
    /// multiply-add. Returns `false`, having written nothing, otherwise.
    ///
    /// With so few inputs the multiply kernel spends more time storing its output than
    /// computing it (8 multiply-adds per stored value for 8 inputs), and the bias and
    /// activation then take another pass. Here four rows' weighted sums stay in
    /// registers while their inputs are added in, and are stored once, activated. Each
    /// sum adds its terms in the kernel's order, one multiply-add at a time from zero,
    /// then the bias, so the results are the same bits as the kernel and the separate
    /// pass (`narrow_forward_matches_product_and_pass`).
    fn narrow_forward(&self, w: &[f32], b: &[f32], x: &[f32], batch: usize, a: &mut [f32]) -> bool {
        let (k, n) = (self.inputs, self.outputs);
        if k > NARROW_MAX_INPUTS || n % 16 != 0 || !(16..=64).contains(&n) || batch < 2 || !fma() {
            return false;
        }
        let mut wt = [0.0f32; NARROW_MAX_INPUTS * 64];
        for (o, row) in w.chunks_exact(k).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                wt[i * n + o] = v;
            }
        }
        let pass = NarrowForward {
            x,
            k,
            wt: &wt[..k * n],
            b,
            out: a,
        };
        self.activation.with_function(pass).is_some()
    }

    /// The affine part alone: `z = x Wᵀ + b`.
    pub fn affine(&self, params: &[f32], x: &[f32], batch: usize, z: &mut [f32]) {
        self.affine_with(params, x, batch, z, None);
    }

    /// [`Dense::affine`], its product as in [`Dense::product_with`].
    fn affine_with(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        z: &mut [f32],
        cols: Option<&mut InputColumns>,
    ) {
        self.product_with(params, x, batch, z, cols);
        let (_, b) = self.split(params);
        Activation::Identity.forward_bias_in_place(z, b, self.outputs);
    }

    /// `out = x Wᵀ` over the input columns `cols` selected when given (see the
    /// `columns` module; they were selected from this `x` for this layer), otherwise
    /// over all of `x`.
    pub(crate) fn product_with(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        out: &mut [f32],
        cols: Option<&mut InputColumns>,
    ) {
        match cols {
            Some(c) => c.product(self.split(params).0, out),
            None => self.product(params, x, batch, out),
        }
    }

    /// `out = x Wᵀ`, without the bias.
    pub(crate) fn product(&self, params: &[f32], x: &[f32], batch: usize, out: &mut [f32]) {
        let (w, _) = self.split(params);
        gemm(
            1.0,
            View::new(x, batch, self.inputs),
            View::new(w, self.outputs, self.inputs).t(),
            0.0,
            out,
        );
    }

    /// Backward through the whole layer, given `g = dL/da` for its output `a` (and its
    /// pre-activation `z` where [`Activation::needs_z`]): overwrites `g` with `dL/dz`,
    /// writes (or, when `accumulate`, adds) `dW` and `db` into `grads`, this layer's
    /// slice, and `dx = dz W` when `dx` is given. The activation's derivative and the
    /// bias gradient take one pass over the batch together. `scratch` is working memory
    /// kept between calls (see `Dense::backward_products`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        (z, a): (&[f32], &[f32]),
        g: &mut [f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
        accumulate: bool,
        scratch: &mut Vec<f32>,
    ) {
        self.backward_with(
            params,
            x,
            batch,
            (z, a),
            g,
            grads,
            dx,
            accumulate,
            scratch,
            None,
        );
    }

    /// [`Dense::backward`] for a forward pass that used the input columns `cols`
    /// selected, when given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_with(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        (z, a): (&[f32], &[f32]),
        g: &mut [f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
        accumulate: bool,
        scratch: &mut Vec<f32>,
        cols: Option<&mut InputColumns>,
    ) {
        let (gw, gb) = self.split_mut(grads);
        if !accumulate {
            gb.fill(0.0);
        }
        self.activation
            .backward_bias_in_place(z, a, g, gb, self.outputs);
        let scratch = Some(scratch);
        self.backward_products(params, x, batch, g, gw, dx, accumulate, scratch, cols);
    }

    /// Backward through the affine part, given `dz = dL/dz` (`batch x outputs`):
    /// `dW = dzᵀ x`, `db = Σ_rows dz` (written into `grads`, this layer's slice) and,
    /// when `dx` is given, `dx = dz W`.
    pub fn backward_affine(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        dz: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        self.backward_affine_add(params, x, batch, dz, grads, dx, false);
    }

    /// [`Dense::backward_affine`], adding `dW` and `db` to what `grads` holds when
    /// `accumulate` (to sum the gradients of several pieces of one batch).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_affine_add(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        dz: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
        accumulate: bool,
    ) {
        let (gw, gb) = self.split_mut(grads);
        if !accumulate {
            gb.fill(0.0);
        }
        add_rows(gb, dz);
        self.backward_products(params, x, batch, dz, gw, dx, accumulate, None, None);
    }

    /// The products of backward: `gw (+)= dzᵀ x` and `dx = dz W`.
    ///
    /// A layer with fewer than 16 inputs (one AVX-512 register) and more outputs, such
    /// as the first layer of a tabular network, has a weight gradient whose rows are
    /// too short for the multiply kernel, which runs along the output's contiguous
    /// side and would pad every 8-wide row to 16. Given `scratch`, such a layer computes
    /// the transpose `xᵀ dz` there, rows `outputs` long, and adds it into `gw`. Given
    /// `cols`, the input columns the forward pass used, the weight gradient is taken
    /// over those (zero in the others).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_products(
        &self,
        params: &[f32],
        x: &[f32],
        batch: usize,
        dz: &[f32],
        gw: &mut [f32],
        dx: Option<&mut [f32]>,
        accumulate: bool,
        scratch: Option<&mut Vec<f32>>,
        cols: Option<&mut InputColumns>,
    ) {
        let (w, _) = self.split(params);
        let dzv = View::new(dz, batch, self.outputs);
        let xv = View::new(x, batch, self.inputs);
        let beta = if accumulate { 1.0 } else { 0.0 };
        match (cols, scratch) {
            (Some(c), _) => c.weight_gradient(dz, gw, accumulate),
            (None, Some(t)) if self.inputs < 16 && self.outputs > self.inputs && batch > 1 => {
                t.resize(self.inputs * self.outputs, 0.0);
                gemm(1.0, xv.t(), dzv, 0.0, t);
                for (i, row) in t.chunks_exact(self.outputs).enumerate() {
                    for (o, &v) in row.iter().enumerate() {
                        let g = &mut gw[o * self.inputs + i];
                        *g = if accumulate { *g + v } else { v };
                    }
                }
            }
            _ => gemm(1.0, dzv.t(), xv, beta, gw),
        }
        if let Some(dx) = dx {
            gemm(1.0, dzv, View::new(w, self.outputs, self.inputs), 0.0, dx);
        }
    }
}

/// Layers with at most this many inputs take [`Dense::narrow_forward`].
const NARROW_MAX_INPUTS: usize = 16;

/// Whether this CPU has fused multiply-add, which [`narrow_forward`] needs to match
/// the multiply kernel's rounding (and to be fast).
fn fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The loop of [`Dense::narrow_forward`], run with the activation's function.
struct NarrowForward<'a> {
    x: &'a [f32],
    k: usize,
    wt: &'a [f32],
    b: &'a [f32],
    out: &'a mut [f32],
}

impl WithFunction for NarrowForward<'_> {
    type Output = ();
    fn apply(self, f: impl Fn(f32) -> f32 + Copy) {
        match self.b.len() {
            16 => narrow_forward::<16>(self.x, self.k, self.wt, self.b, self.out, f),
            32 => narrow_forward::<32>(self.x, self.k, self.wt, self.b, self.out, f),
            48 => narrow_forward::<48>(self.x, self.k, self.wt, self.b, self.out, f),
            _ => narrow_forward::<64>(self.x, self.k, self.wt, self.b, self.out, f),
        }
    }
}

/// `out = f(x wt + b)` for `x` (`rows x k`), `wt` (`k x N`, the weight transposed) and
/// `b` (`N`), four rows at a time. Compiled for AVX-512 and AVX2 with FMA (only called
/// where FMA exists: `mul_add` is one instruction there).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn narrow_forward<const N: usize>(
    x: &[f32],
    k: usize,
    wt: &[f32],
    b: &[f32],
    out: &mut [f32],
    f: impl Fn(f32) -> f32,
) {
    let b: &[f32; N] = b.try_into().expect("narrow forward: bias of N");
    assert_eq!(wt.len(), k * N, "narrow forward: weight vs {k}x{N}");
    assert_eq!(
        x.len() / k * N,
        out.len(),
        "narrow forward: rows of x vs out"
    );
    let one = |x: &[f32], out: &mut [f32]| {
        let mut acc = [0.0f32; N];
        for (&s, w) in x.iter().zip(wt.chunks_exact(N)) {
            for (a, &w) in acc.iter_mut().zip(w) {
                *a = s.mul_add(w, *a);
            }
        }
        for ((o, &a), &b) in out.iter_mut().zip(&acc).zip(b) {
            *o = f(a + b);
        }
    };
    // Four rows at a time: four independent chains of multiply-adds per register
    // column, enough to keep both multiply-add units busy.
    let mut quads = x.chunks_exact(4 * k).zip(out.chunks_exact_mut(4 * N));
    for (x4, out4) in &mut quads {
        let mut acc = [[0.0f32; N]; 4];
        for (i, w) in wt.chunks_exact(N).enumerate() {
            let s = [x4[i], x4[k + i], x4[2 * k + i], x4[3 * k + i]];
            for (acc, s) in acc.iter_mut().zip(s) {
                for (a, &w) in acc.iter_mut().zip(w) {
                    *a = s.mul_add(w, *a);
                }
            }
        }
        for (o, acc) in out4.chunks_exact_mut(N).zip(&acc) {
            for ((o, &a), &b) in o.iter_mut().zip(acc).zip(b) {
                *o = f(a + b);
            }
        }
    }
    let done = x.len() / k / 4 * 4;
    for (x, out) in x[done * k..]
        .chunks_exact(k)
        .zip(out[done * N..].chunks_exact_mut(N))
    {
        one(x, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, grid as data};

    /// The one-pass forward of narrow layers against the multiply kernel followed by the
    /// bias and activation pass: the same bits, for every width it takes, row counts
    /// with every remainder after groups of four, and each element-wise activation; and
    /// layers it does not take (too many inputs, an unsupported width, softmax) left to
    /// the kernel.
    #[test]
    fn narrow_forward_matches_product_and_pass() {
        for (inputs, outputs) in [(8, 64), (3, 16), (16, 48), (1, 32), (17, 64), (8, 40)] {
            for act in Activation::ALL {
                let layer = Dense {
                    inputs,
                    outputs,
                    activation: act,
                };
                let params = data(layer.num_params(), 1);
                let (w, b) = layer.split(&params);
                for batch in [2, 5, 6, 7, 8, 33] {
                    let x = data(batch * inputs, 2);
                    let mut want = vec![0.0; batch * outputs];
                    layer.product(&params, &x, batch, &mut want);
                    act.forward_bias_in_place(&mut want, b, outputs);
                    let mut got = vec![f32::NAN; batch * outputs];
                    layer.forward_in_place(&params, &x, batch, &mut got);
                    let what = format!("{inputs}x{outputs} {act} batch {batch}");
                    assert_eq!(got, want, "{what}");
                    let mut scratch = vec![f32::NAN; batch * outputs];
                    let taken = layer.narrow_forward(w, b, &x, batch, &mut scratch);
                    let takes = inputs <= 16 && outputs % 16 == 0 && act != Activation::Softmax;
                    assert_eq!(taken, takes && fma(), "{what}: taken");
                }
            }
        }
    }

    /// `Dense::backward` (derivative and bias gradient fused; for narrow layers the
    /// weight gradient through its transpose in scratch memory) against the activation's
    /// `backward` followed by `backward_affine_add`, overwriting and accumulating.
    #[test]
    fn fused_backward_matches_separate_passes() {
        for (inputs, outputs, act) in [
            (8, 64, Activation::Relu),
            (3, 5, Activation::Tanh),
            (20, 7, Activation::Sigmoid),
            (15, 16, Activation::Identity),
        ] {
            let layer = Dense {
                inputs,
                outputs,
                activation: act,
            };
            let batch = 33;
            let params = data(layer.num_params(), 1);
            let x = data(batch * inputs, 2);
            let da = data(batch * outputs, 3);
            let (mut z, mut a) = (vec![0.0; batch * outputs], vec![0.0; batch * outputs]);
            layer.forward(&params, &x, batch, &mut z, &mut a);
            let mut scratch = Vec::new();
            for accumulate in [false, true] {
                let start = if accumulate {
                    data(layer.num_params(), 4)
                } else {
                    vec![f32::NAN; layer.num_params()]
                };
                let mut dz = vec![0.0; da.len()];
                act.backward(&z, &a, &da, &mut dz, outputs);
                let mut want = start.clone();
                let mut want_dx = vec![f32::NAN; x.len()];
                layer.backward_affine_add(
                    &params,
                    &x,
                    batch,
                    &dz,
                    &mut want,
                    Some(&mut want_dx),
                    accumulate,
                );

                let mut g = da.clone();
                let mut got = start.clone();
                let mut got_dx = vec![f32::NAN; x.len()];
                layer.backward(
                    &params,
                    &x,
                    batch,
                    (&z, &a),
                    &mut g,
                    &mut got,
                    Some(&mut got_dx),
                    accumulate,
                    &mut scratch,
                );
                assert_eq!(g, dz, "{inputs}x{outputs} {act}: dz");
                for (name, got, want) in [("grads", &got, &want), ("dx", &got_dx, &want_dx)] {
                    let what = format!("{inputs}x{outputs} {act} accumulate {accumulate}: {name}");
                    assert_close(got, want, &what);
                }
            }
        }
    }
}
