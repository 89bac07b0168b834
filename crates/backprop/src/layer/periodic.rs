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
    /// for backward), `z_j = u_j W_j + b_j`, `v_j = max(z_j, 0)`.
    fn forward(&self, p: Forward<'_>) {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        let (c, w, b) = self.split(p.params);
        for r in 0..p.batch {
            for j in 0..n {
                let x = p.x[r * n + j];
                let u = &mut p.saved[(r * n + j) * 2 * k..][..2 * k];
                let (cos, sin) = u.split_at_mut(k);
                for i in 0..k {
                    let (s, co) = (TAU * c[j * k + i] * x).sin_cos();
                    cos[i] = co;
                    sin[i] = s;
                }
                let v = &mut p.out[(r * n + j) * d..][..d];
                v.copy_from_slice(&b[j * d..][..d]);
                let wj = &w[j * 2 * k * d..][..2 * k * d];
                for (&ui, wrow) in u.iter().zip(wj.chunks_exact(d)) {
                    for (o, &wv) in v.iter_mut().zip(wrow) {
                        *o += ui * wv;
                    }
                }
                for o in v.iter_mut() {
                    *o = o.max(0.0);
                }
            }
        }
    }

    /// From `dv`: `dz = dv ⊙ [v > 0]`; `db_j (+)= Σ_rows dz_j`; `dW_j (+)= Σ_rows
    /// u_jᵀ dz_j`; `du_j = dz_j W_jᵀ`; then with `θ = 2π c_j x_j`, `dθ = -sin θ ⊙
    /// du_cos + cos θ ⊙ du_sin`: `dc_j (+)= Σ_rows 2π x_j dθ` and `dx_j = Σ_i 2π c_ji
    /// dθ_i`.
    fn backward(&self, p: Backward<'_>) {
        let (n, k, d) = (self.features, self.frequencies, self.width);
        let (c, w, _) = self.split(p.params);
        let (gc, gw, gb) = self.split_mut(p.grads);
        if !p.accumulate {
            gc.fill(0.0);
            gw.fill(0.0);
            gb.fill(0.0);
        }
        if p.batch == 0 {
            return;
        }
        let du = &mut p.work[..2 * k];
        let mut dx = p.dx;
        for r in 0..p.batch {
            for j in 0..n {
                let at = r * n + j;
                let x = p.x[at];
                let u = &p.saved[at * 2 * k..][..2 * k];
                let dz = &mut p.d_out[at * d..][..d];
                for (g, &v) in dz.iter_mut().zip(&p.out[at * d..][..d]) {
                    if v <= 0.0 {
                        *g = 0.0;
                    }
                }
                for (g, &z) in gb[j * d..][..d].iter_mut().zip(dz.iter()) {
                    *g += z;
                }
                let wj = &w[j * 2 * k * d..][..2 * k * d];
                let gwj = &mut gw[j * 2 * k * d..][..2 * k * d];
                for (i, (wrow, grow)) in wj.chunks_exact(d).zip(gwj.chunks_exact_mut(d)).enumerate()
                {
                    let mut s = 0.0;
                    for ((g, &wv), &z) in grow.iter_mut().zip(wrow).zip(dz.iter()) {
                        *g += u[i] * z;
                        s += wv * z;
                    }
                    du[i] = s;
                }
                let mut gx = 0.0;
                for i in 0..k {
                    let dtheta = TAU * (u[i] * du[k + i] - u[k + i] * du[i]);
                    gc[j * k + i] += x * dtheta;
                    gx += c[j * k + i] * dtheta;
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

    /// `du` of one feature of one row.
    fn work_width(&self) -> usize {
        2 * self.frequencies
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
