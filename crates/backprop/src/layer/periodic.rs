//! Periodic embeddings of numeric features ("PLR", Gorishniy, Rubachev and Babenko
//! 2022, "On Embeddings for Numerical Features in Tabular Deep Learning"): each input
//! value `x_j` becomes a `width`-vector
//!
//! `v_j = ReLU(W_j [cos(2π c_j x_j), sin(2π c_j x_j)] + b_j)`
//!
//! with `k` learned frequencies `c_j` per feature and a linear layer `W_j` (`2k ->
//! width`) of its own for each feature; the layer's output is the concatenation
//! `[v_1, ..., v_n]` (`n x width` values per row, feature by feature). An MLP on these
//! embeddings can fit sharp and periodic functions of each feature that a ReLU network
//! on the raw value fits only with many units.
//!
//! # Which columns
//! The layer embeds every value that reaches it: placed first in `--layers`, every
//! input column of the preprocessed table, one-hot columns included (a 0/1 column's
//! embedding is two learned vectors, a harmless re-parametrisation of what a dense
//! layer does with it). Chosen over embedding only the columns the preprocessor marks
//! numeric because it needs no column map in the layer, keeps the layer a plain
//! function of its input row, and costs little on tables with few one-hot columns; on
//! tables with hundreds of categories the output is `width` times as wide.
//!
//! # Per-feature linear layers, not the "lite" shared one
//! The paper's "PLR" gives each feature its own `W_j`, `b_j`; its "lite" variant
//! (`PLR(lite)`, used by later work for speed) shares one linear layer. Per-feature is
//! the variant the paper reports as the stronger one, and the extra cost is small on
//! tables: `n x 2k x width` parameters and multiply-adds per row (8 features, `k` 16,
//! width 24: 6 thousand), a fraction of the dense layer that follows (`n x width x
//! 256`: 49 thousand).
//!
//! # Parameters and initialisation
//! In the network's buffer, with the reference implementation's names and layouts
//! (`rtdl_num_embeddings.PeriodicEmbeddings(lite=False)`): `periodic.weight` `c`
//! (`n x k`), `linear.weight` `W` (`n x 2k x width`, so `z_j = u_j W_j`) and
//! `linear.bias` `b` (`n x width`). Frequencies start from `N(0, σ²)` truncated at
//! `±3σ` (σ is [`Periodic::sigma`], the reference's `frequency_init_scale`), `W` and
//! `b` from `U(-1/√(2k), 1/√(2k))`, as the reference does.

use std::f32::consts::TAU;

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use super::{Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::kernels::gemm;
use crate::matrix::View;

/// `rows x cols` of `data` with rows `stride` apart (one feature's block of each row).
fn strided(data: &[f32], rows: usize, cols: usize, stride: usize) -> View<'_> {
    View {
        data,
        rows,
        cols,
        row_stride: stride as isize,
        col_stride: 1,
    }
}

/// Periodic embeddings with per-feature linear layers and ReLU. See the module
/// documentation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Periodic {
    /// Values embedded per row (`n`).
    pub features: usize,
    /// Learned frequencies per feature (`k`).
    pub frequencies: usize,
    /// Size of each feature's embedding (`width`).
    pub width: usize,
    /// Standard deviation of the frequencies' initial values (σ).
    pub sigma: f32,
}

impl Periodic {
    /// Checks sizes of at least 1, a finite positive σ, and counts that fit in memory.
    pub fn validate(&self) -> Result<()> {
        let err = |r: String| Err(Error::config("periodic", r));
        if self.features == 0 || self.frequencies == 0 || self.width == 0 {
            return err(format!(
                "features ({}), frequencies ({}) and width ({}) must be at least 1",
                self.features, self.frequencies, self.width
            ));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return err(format!(
                "sigma {} is not a positive number (try 0.1)",
                self.sigma
            ));
        }
        let (n, k, d) = (
            self.features as u128,
            self.frequencies as u128,
            self.width as u128,
        );
        if n * (k + 2 * k * d + d) >= 1 << 40 || n * d >= 1 << 40 {
            return err(format!(
                "{} features x {} frequencies x {} is not a usable size",
                self.features, self.frequencies, self.width
            ));
        }
        Ok(())
    }

    /// Splits this layer's parameters into (`c`, `W`, `b`).
    fn split<'a>(&self, p: &'a [f32]) -> (&'a [f32], &'a [f32], &'a [f32]) {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        let (c, rest) = p.split_at(n * k);
        let (w, b) = rest.split_at(n * 2 * k * d);
        (c, w, b)
    }

    /// Splits a parameter-shaped buffer mutably into (`c`, `W`, `b`).
    fn split_mut<'a>(&self, p: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32], &'a mut [f32]) {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        let (c, rest) = p.split_at_mut(n * k);
        let (w, b) = rest.split_at_mut(n * 2 * k * d);
        (c, w, b)
    }

    /// Fills the parameters as the reference implementation does (see the module
    /// documentation).
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R, params: &mut [f32]) {
        let (c, w, b) = self.split_mut(params);
        // σ > 0 and finite by `validate`.
        let normal = Normal::new(0.0, self.sigma).expect("validated sigma");
        for f in c.iter_mut() {
            *f = loop {
                let v: f32 = normal.sample(rng);
                if v.abs() <= 3.0 * self.sigma {
                    break v;
                }
            };
        }
        let bound = 1.0 / ((2 * self.frequencies) as f32).sqrt();
        let uniform = Uniform::new_inclusive(-bound, bound);
        for v in w.iter_mut().chain(b.iter_mut()) {
            *v = uniform.sample(rng);
        }
    }
}

impl Layer for Periodic {
    /// For each row and feature `j`: `u_j = [cos(2π c_j x_j), sin(2π c_j x_j)]` (kept
    /// for backward), `z_j = u_j W_j + b_j`, `v_j = max(z_j, 0)`. The products are one
    /// `U_j W_j` per feature over the batch (`U_j` a strided view of the kept `u`).
    fn forward(&self, p: Forward<'_>) {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        let (c, w, b) = self.split(p.params);
        for (at, (&x, u)) in p.x.iter().zip(p.saved.chunks_exact_mut(2 * k)).enumerate() {
            let cj = &c[(at % n) * k..][..k];
            let (cos, sin) = u.split_at_mut(k);
            for ((co, s), &f) in cos.iter_mut().zip(sin.iter_mut()).zip(cj) {
                (*s, *co) = (TAU * f * x).sin_cos();
            }
        }
        let z = &mut p.work[..p.batch * d];
        for j in 0..n {
            // Z_j = U_j W_j                            (batch x width)
            let u = strided(&p.saved[j * 2 * k..], p.batch, 2 * k, n * 2 * k);
            gemm(
                1.0,
                u,
                View::new(&w[j * 2 * k * d..][..2 * k * d], 2 * k, d),
                0.0,
                z,
            );
            // v_j = max(Z_j + b_j, 0), into the rows' j-th block
            let bj = &b[j * d..][..d];
            for (zr, v) in z.chunks_exact(d).zip(p.out.chunks_exact_mut(n * d)) {
                for ((o, &zv), &bv) in v[j * d..][..d].iter_mut().zip(zr).zip(bj) {
                    *o = (zv + bv).max(0.0);
                }
            }
        }
    }

    /// From `dv`: `dz = dv ⊙ [v > 0]`; `db_j (+)= Σ_rows dz_j`; `dW_j (+)= U_jᵀ dZ_j`;
    /// `dU_j = dZ_j W_jᵀ`; then with `θ = 2π c_j x_j`, `dθ = -sin θ ⊙ du_cos + cos θ ⊙
    /// du_sin`: `dc_j (+)= Σ_rows 2π x_j dθ` and `dx_j = Σ_i 2π c_ji dθ_i`.
    fn backward(&self, p: Backward<'_>) {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        let (c, w, _) = self.split(p.params);
        let (gc, gw, gb) = self.split_mut(p.grads);
        if !p.accumulate {
            gc.fill(0.0);
            gb.fill(0.0);
        }
        let beta = if p.accumulate { 1.0 } else { 0.0 };
        // dz = dv ⊙ [v > 0] (overwriting dv); db (+)= Σ_rows dz
        for (dz, v) in p
            .d_out
            .chunks_exact_mut(n * d)
            .zip(p.out.chunks_exact(n * d))
        {
            for ((g, &v), s) in dz.iter_mut().zip(v).zip(gb.iter_mut()) {
                if v <= 0.0 {
                    *g = 0.0;
                }
                *s += *g;
            }
        }
        let du = &mut p.work[..p.batch * 2 * k];
        let mut dx = p.dx;
        for j in 0..n {
            let u = strided(&p.saved[j * 2 * k..], p.batch, 2 * k, n * 2 * k);
            let dz = strided(&p.d_out[j * d..], p.batch, d, n * d);
            let wj = View::new(&w[j * 2 * k * d..][..2 * k * d], 2 * k, d);
            // dW_j (+)= U_jᵀ dZ_j                      (2k x width)
            gemm(1.0, u.t(), dz, beta, &mut gw[j * 2 * k * d..][..2 * k * d]);
            // dU_j = dZ_j W_jᵀ                         (batch x 2k)
            gemm(1.0, dz, wj.t(), 0.0, du);
            let cj = &c[j * k..][..k];
            let gcj = &mut gc[j * k..][..k];
            for (r, dur) in du.chunks_exact(2 * k).enumerate() {
                let at = r * n + j;
                let x = p.x[at];
                let (cos, sin) = p.saved[at * 2 * k..][..2 * k].split_at(k);
                let (dcos, dsin) = dur.split_at(k);
                let mut gx = 0.0;
                for i in 0..k {
                    let dtheta = TAU * (cos[i] * dsin[i] - sin[i] * dcos[i]);
                    gcj[i] += x * dtheta;
                    gx += cj[i] * dtheta;
                }
                if let Some(dx) = dx.as_deref_mut() {
                    dx[at] = gx;
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "periodic"
    }

    fn inputs(&self) -> usize {
        self.features
    }

    fn outputs(&self) -> usize {
        self.features * self.width
    }

    fn num_params(&self) -> usize {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        n * k + n * 2 * k * d + n * d
    }

    /// `u = [cos θ, sin θ]` per feature.
    fn saved_width(&self) -> usize {
        self.features * 2 * self.frequencies
    }

    /// One feature's `z` (forward) or `du` (backward) over the batch.
    fn work_width(&self) -> usize {
        self.width.max(2 * self.frequencies)
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        vec![
            ("periodic.weight", vec![n, k]),
            ("linear.weight", vec![n, 2 * k, d]),
            ("linear.bias", vec![n, d]),
        ]
    }

    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(*self)
    }
}
