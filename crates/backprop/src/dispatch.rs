//! The one place where the fast paths of `kernels` are chosen, layer by layer (or for a
//! pair of layers that fuse), by shape alone.
//!
//! [`forward`] and [`backward`] compute one step of the network's loop: the layer's own
//! [`Layer::forward`] / [`Layer::backward`] (the reference), unless a kernel takes the
//! layer. Kernels take only [`Dense`] layers:
//!
//! | kernel | taken when |
//! |---|---|
//! | `head` (forward and backward) | a `Dense` layer whose activation is element-wise and needs no `z`, below a one-output `Dense` layer whose activation needs no `z` |
//! | `columns` (first layer) | the batch has enough input columns that are zero in every row (`InputColumns::select`) |
//! | `narrow` forward | at most 16 inputs, 16/32/48/64 outputs, 2 rows or more, no `z` kept, element-wise activation, FMA |
//! | `narrow` weight gradient | fewer than 16 inputs, more outputs than inputs, 2 rows or more |
//! | `patterns` input gradient | a ReLU layer below a fused one-output layer, on shapes and batches where its table pays |
//!
//! Every choice depends on the shapes (and, for `columns`, on the batch's zeros), never
//! on the thread count, so a seed gives the same model on any number of threads.

use crate::activation::Activation;
use crate::kernels::{gemm, head, narrow, patterns, Space};
use crate::layer::{Backward, Dense, Forward, Layer};
use crate::matrix::{Matrix, View};
use crate::trace::Trace;

/// The network as the dispatch sees it: its layers and the flat parameter buffer with
/// each layer's offset in it.
#[derive(Clone, Copy)]
pub(crate) struct Stack<'a> {
    pub layers: &'a [Box<dyn Layer>],
    pub offsets: &'a [usize],
    pub params: &'a [f32],
}

impl<'a> Stack<'a> {
    fn params(&self, i: usize) -> &'a [f32] {
        &self.params[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Layers `i` and `i + 1` when they take the fused `head` kernels: both `Dense`,
    /// the upper with one output, neither keeping `z`, the lower's activation
    /// element-wise.
    pub(crate) fn fused_head(&self, i: usize) -> Option<(Dense, Dense)> {
        let layer = *self.layers.get(i)?.as_dense()?;
        let head = *self.layers.get(i + 1)?.as_dense()?;
        let fuses = head.outputs == 1
            && !layer.activation.needs_z()
            && !head.activation.needs_z()
            && layer.activation != Activation::Softmax;
        fuses.then_some((layer, head))
    }
}

/// The input of layer `i`: the network's input `x` for the first, else the output of
/// the layer below.
fn input<'t>(x: &'t [f32], a: &'t [Matrix], i: usize) -> &'t [f32] {
    if i == 0 {
        x
    } else {
        a[i - 1].as_slice()
    }
}

/// Forward through layer `i` (and `i + 1` where the two fuse) for the `batch` rows of
/// the network's input `x`; returns how many layers it computed.
pub(crate) fn forward(net: &Stack<'_>, i: usize, x: &[f32], batch: usize, t: &mut Trace) -> usize {
    let Trace {
        saved,
        a,
        space,
        work,
        mode,
        ..
    } = t;
    let layer = &net.layers[i];
    let (below, rest) = a.split_at_mut(i);
    let input = input(x, below, i);
    let Some(&dense) = layer.as_dense() else {
        if i == 0 {
            space.columns.reset();
        }
        let out = rest[0].as_mut_slice();
        let saved = saved[i].as_mut_slice();
        let params = net.params(i);
        layer.forward(Forward {
            params,
            x: input,
            batch,
            out,
            saved,
            work,
            mode: mode.for_layer(i),
        });
        return 1;
    };
    // The first layer leaves out input columns that are zero throughout the batch.
    let cols = i == 0 && space.columns.select(x, batch, dense.inputs, dense.outputs);
    let (params, (w, b)) = (net.params(i), dense.split(net.params(i)));
    if let Some((_, head)) = net.fused_head(i) {
        // This layer's bias and activation, and the one-output layer's product, in one
        // pass; then that layer's bias and activation on its column.
        let (out, above) = rest.split_at_mut(1);
        let out = out[0].as_mut_slice();
        product(dense, w, input, batch, out, cols.then_some(space));
        let (hw, hb) = head.split(net.params(i + 1));
        let head_out = above[0].as_mut_slice();
        let pass = head::Forward {
            x: out,
            b,
            w: hw,
            out: &mut *head_out,
        };
        dense.activation.with_function(pass);
        head.activation.forward_bias_in_place(head_out, hb, 1);
        return 2;
    }
    let (out, saved) = (rest[0].as_mut_slice(), saved[i].as_mut_slice());
    if cols {
        product(dense, w, input, batch, out, Some(space));
        dense.bias_and_activation(b, out, saved);
    } else if takes_narrow_forward(dense, batch) {
        let mut wt = [0.0f32; narrow::MAX_WEIGHTS];
        let wt = &mut wt[..dense.inputs * dense.outputs];
        narrow::transpose(w, dense.inputs, dense.outputs, wt);
        let pass = narrow::Forward {
            x: input,
            k: dense.inputs,
            wt,
            b,
            out,
        };
        dense.activation.with_function(pass);
    } else {
        dense.forward(Forward {
            params,
            x: input,
            batch,
            out,
            saved,
            work,
            mode: mode.for_layer(i),
        });
    }
    1
}

/// Whether the `narrow` forward kernel takes `dense` on `batch` rows.
pub(crate) fn takes_narrow_forward(dense: Dense, batch: usize) -> bool {
    !dense.activation.needs_z()
        && dense.activation != Activation::Softmax
        && narrow::takes_forward(dense.inputs, dense.outputs, batch)
}

/// `out = x Wᵀ` over the input columns selected in `space` when given, else over all
/// of `x`.
fn product(
    dense: Dense,
    w: &[f32],
    x: &[f32],
    batch: usize,
    out: &mut [f32],
    cols: Option<&mut Space>,
) {
    match cols {
        Some(space) => space.columns.product(w, out),
        None => {
            let (k, n) = (dense.inputs, dense.outputs);
            gemm(
                1.0,
                View::new(x, batch, k),
                View::new(w, n, k).t(),
                0.0,
                out,
            );
        }
    }
}

/// What backward through one step needs besides the trace: the network's input and
/// batch, the gradient buffer (the network's layout) and whether to add to it.
pub(crate) struct Grads<'a> {
    pub x: &'a [f32],
    pub batch: usize,
    pub grads: &'a mut [f32],
    pub accumulate: bool,
}

/// Backward through layer `i` (and `i - 1` where the two fuse), given `dL/da` of layer
/// `i` in the trace; writes their gradients and the gradient passed below. Returns how
/// many layers it computed.
pub(crate) fn backward(net: &Stack<'_>, i: usize, t: &mut Trace, g: &mut Grads<'_>) -> usize {
    if i > 0 && net.fused_head(i - 1).is_some() {
        head_backward(net, i, t, g);
        return 2;
    }
    let Trace {
        saved,
        a,
        da,
        space,
        work,
        ..
    } = t;
    let layer = &net.layers[i];
    let (da_below, da_rest) = da.split_at_mut(i);
    let d_out = da_rest[0].as_mut_slice();
    let dx = da_below.last_mut().map(|m| m.as_mut_slice());
    let grads = &mut g.grads[net.offsets[i]..net.offsets[i + 1]];
    let x = input(g.x, a, i);
    let (out, saved) = (a[i].as_slice(), saved[i].as_slice());
    let (params, batch, accumulate) = (net.params(i), g.batch, g.accumulate);
    let pass = Backward {
        params,
        x,
        batch,
        out,
        saved,
        d_out,
        grads,
        dx,
        accumulate,
        work,
    };
    let cols = i == 0 && space.columns.in_use();
    match layer.as_dense() {
        Some(&dense) if cols || narrow::takes_gradient(dense.inputs, dense.outputs, batch) => {
            dense_backward(dense, pass, space, cols)
        }
        _ => layer.backward(pass),
    }
    1
}

/// [`Dense`]'s backward with the kernels of its products: as the reference, but the
/// weight gradient from the selected input columns (`cols`) or through its transpose.
fn dense_backward(dense: Dense, p: Backward<'_>, space: &mut Space, cols: bool) {
    let (w, _) = dense.split(p.params);
    let (gw, gb) = dense.split_mut(p.grads);
    if !p.accumulate {
        gb.fill(0.0);
    }
    dense
        .activation
        .backward_bias_in_place(p.saved, p.out, p.d_out, gb, dense.outputs);
    let products = Products {
        dense,
        w,
        x: p.x,
        batch: p.batch,
        dz: p.d_out,
        gw,
        accumulate: p.accumulate,
    };
    products.run(p.dx, space, cols);
}

/// The products of a [`Dense`] layer's backward, `dW (+)= dzᵀ x` and `dx = dz W`.
struct Products<'a> {
    dense: Dense,
    w: &'a [f32],
    x: &'a [f32],
    batch: usize,
    dz: &'a [f32],
    gw: &'a mut [f32],
    accumulate: bool,
}

impl Products<'_> {
    /// Computes `dW` (from the selected input columns when `cols`, through its
    /// transpose for narrow layers) and, when given, `dx`.
    fn run(self, dx: Option<&mut [f32]>, space: &mut Space, cols: bool) {
        let (k, n, batch) = (self.dense.inputs, self.dense.outputs, self.batch);
        let dz = View::new(self.dz, batch, n);
        let x = View::new(self.x, batch, k);
        if cols {
            space
                .columns
                .weight_gradient(self.dz, self.gw, self.accumulate);
        } else if narrow::takes_gradient(k, n, batch) {
            narrow::weight_gradient(x, dz, self.gw, self.accumulate, &mut space.scratch);
        } else {
            let beta = if self.accumulate { 1.0 } else { 0.0 };
            gemm(1.0, dz.t(), x, beta, self.gw);
        }
        if let Some(dx) = dx {
            gemm(1.0, dz, View::new(self.w, n, k), 0.0, dx);
        }
    }
}

/// Backward through the one-output layer `i` and the layer `i - 1` below it, fused
/// (see the `head` kernel): the head's derivative and bias gradient on its column, its
/// products fused with the lower layer's derivative pass, then the lower layer's own
/// products, its input gradient from the `patterns` table where that pays.
fn head_backward(net: &Stack<'_>, i: usize, t: &mut Trace, g: &mut Grads<'_>) {
    let (below, head) = net.fused_head(i - 1).expect("a fused pair");
    let Trace {
        saved,
        a,
        da,
        space,
        ..
    } = t;
    let (g_below, g_head) = g.grads.split_at_mut(net.offsets[i]);
    let g_below = &mut g_below[net.offsets[i - 1]..];
    let g_head = &mut g_head[..net.offsets[i + 1] - net.offsets[i]];
    let (gw, gb) = head.split_mut(g_head);
    if !g.accumulate {
        gb.fill(0.0);
    }
    let (da_below, da_head) = da.split_at_mut(i);
    let (da_below, da_prev) = da_below.split_last_mut().expect("i > 0");
    let s = da_head[0].as_mut_slice();
    // An identity output's bias gradient (the sum of `s`) is added in the fused pass;
    // any other activation's derivative comes first.
    let head_bias = if head.activation == Activation::Identity {
        Some(&mut gb[0])
    } else {
        let (z, out) = (saved[i].as_slice(), a[i].as_slice());
        head.activation.backward_bias_in_place(z, out, s, gb, 1);
        None
    };
    let (gw_below, gb_below) = below.split_mut(g_below);
    if !g.accumulate {
        gb_below.fill(0.0);
    }
    let dz = da_below.as_mut_slice();
    let h = head.split(net.params(i)).0;
    let pass = head::Backward {
        a: a[i - 1].as_slice(),
        s,
        w: h,
        g: &mut *dz,
        gb: gb_below,
        gw,
        head_bias,
        accumulate: g.accumulate,
    };
    below.activation.with_derivative(pass);
    let mut dx = da_prev.last_mut().map(|m| m.as_mut_slice());
    let w = below.split(net.params(i - 1)).0;
    // A ReLU layer's input gradient from the `patterns` table where that pays; with
    // `dx` taken, the products below leave that product out.
    if below.activation == Activation::Relu && patterns::pays(g.batch, below.outputs, below.inputs)
    {
        if let Some(dx) = dx.take() {
            patterns::input_gradient(a[i - 1].as_slice(), s, h, w, &mut space.patterns, dx);
        }
    }
    let cols = i == 1 && space.columns.in_use();
    let x = input(g.x, a, i - 1);
    let products = Products {
        dense: below,
        w,
        x,
        batch: g.batch,
        dz,
        gw: gw_below,
        accumulate: g.accumulate,
    };
    products.run(dx, space, cols);
}
