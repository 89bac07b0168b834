//! The network: a stack of fully connected layers with one flat parameter buffer.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::columns::InputColumns;
use crate::error::{Error, Result};
use crate::head;
use crate::init::Init;
use crate::layer::Dense;
use crate::matrix::Matrix;
use crate::patterns::{self, PatternSpace};

/// What a network looks like before it has weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Features per observation (input nodes).
    pub inputs: usize,
    /// Width of each hidden layer; empty for none (linear or logistic regression).
    pub hidden: Vec<usize>,
    /// Output nodes.
    pub outputs: usize,
    /// Activation of every hidden layer.
    pub activation: Activation,
    /// Activation of the output layer (identity for regression and for logits).
    pub output_activation: Activation,
    /// Weight initialisation.
    pub init: Init,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            inputs: 1,
            hidden: vec![64, 64],
            outputs: 1,
            activation: Activation::Relu,
            output_activation: Activation::Identity,
            init: Init::Auto,
        }
    }
}

impl NetworkConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.inputs == 0 {
            return Err(Error::config(
                "inputs",
                "a network needs at least one input feature",
            ));
        }
        if self.outputs == 0 {
            return Err(Error::config(
                "outputs",
                "a network needs at least one output",
            ));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config(
                "hidden",
                format!(
                    "hidden layer {} has zero units; every layer needs at least one",
                    i + 1
                ),
            ));
        }
        if self.activation == Activation::Softmax {
            return Err(Error::config(
                "activation",
                "softmax is for the output layer only",
            ));
        }
        Ok(())
    }

    /// The layers this configuration describes.
    pub fn layers(&self) -> Vec<Dense> {
        let mut sizes = vec![self.inputs];
        sizes.extend(&self.hidden);
        sizes.push(self.outputs);
        let n = sizes.len() - 1;
        (0..n)
            .map(|i| Dense {
                inputs: sizes[i],
                outputs: sizes[i + 1],
                activation: if i + 1 == n {
                    self.output_activation
                } else {
                    self.activation
                },
            })
            .collect()
    }

    /// Builds the network with freshly initialised weights.
    pub fn init<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Network> {
        self.validate()?;
        let layers = self.layers();
        let mut net = Network::zeros(layers);
        for i in 0..net.layers.len() {
            let layer = net.layers[i];
            let scheme = self
                .init
                .resolve(layer.activation_for_init(self.activation));
            let (w, b) = layer.split_mut(net.layer_params_mut(i));
            scheme.fill(rng, layer.inputs, layer.outputs, w, b);
        }
        Ok(net)
    }
}

impl Dense {
    /// The activation that decides the default initialisation: a layer's own, except
    /// that the output layer takes the hidden layers' (it feeds no activation of note).
    fn activation_for_init(&self, hidden: Activation) -> Activation {
        if self.activation == Activation::Identity || self.activation == Activation::Softmax {
            hidden
        } else {
            self.activation
        }
    }
}

/// A feed-forward network: layers plus one flat parameter buffer holding, layer by
/// layer, the weight (`out x in`, row-major) and then the bias. Deserialising checks
/// it as [`Network::from_params`] does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SerializedNetwork")]
pub struct Network {
    layers: Vec<Dense>,
    offsets: Vec<usize>,
    params: Vec<f32>,
}

/// A [`Network`] as serialised, before it is checked.
#[derive(Deserialize)]
struct SerializedNetwork {
    layers: Vec<Dense>,
    offsets: Vec<usize>,
    params: Vec<f32>,
}

impl TryFrom<SerializedNetwork> for Network {
    type Error = Error;

    fn try_from(s: SerializedNetwork) -> Result<Network> {
        let net = Network::from_params(s.layers, s.params)?;
        if net.offsets != s.offsets {
            return Err(Error::ShapeMismatch {
                op: "Network (deserialise)",
                expected: format!("layer offsets {:?}", net.offsets),
                got: format!("{:?}", s.offsets),
            });
        }
        Ok(net)
    }
}

impl Network {
    /// A network with the given layers and all parameters zero.
    pub fn zeros(layers: Vec<Dense>) -> Self {
        let mut offsets = Vec::with_capacity(layers.len() + 1);
        let mut total = 0;
        offsets.push(0);
        for l in &layers {
            total += l.num_params();
            offsets.push(total);
        }
        Network {
            layers,
            offsets,
            params: vec![0.0; total],
        }
    }

    /// A network with the given layers and parameters, checked as a loaded model must
    /// be: at least one layer, every layer at least one unit wide and taking the
    /// previous one's outputs, and one parameter per weight and bias. (Every forward
    /// path indexes the first and last layer and cuts rows of a layer's width.)
    pub fn from_params(layers: Vec<Dense>, params: Vec<f32>) -> Result<Self> {
        let expected = Network::param_count(&layers)?;
        if params.len() != expected {
            return Err(Error::ShapeMismatch {
                op: "Network::from_params",
                expected: format!("{expected} parameters"),
                got: format!("{}", params.len()),
            });
        }
        let mut net = Network::zeros(layers);
        net.params = params;
        Ok(net)
    }

    /// The number of parameters of `layers`, after checking that they make a network:
    /// at least one layer, every width at least 1, each layer taking the previous
    /// one's outputs, and a count that fits in memory's address space.
    pub fn param_count(layers: &[Dense]) -> Result<usize> {
        let mismatch = |expected: String, got: String| Error::ShapeMismatch {
            op: "Network::from_params",
            expected,
            got,
        };
        if layers.is_empty() {
            return Err(mismatch(
                "at least one layer".into(),
                "a network without layers".into(),
            ));
        }
        let mut total = 0usize;
        for (i, l) in layers.iter().enumerate() {
            if l.inputs == 0 || l.outputs == 0 {
                return Err(mismatch(
                    format!("layer {i} at least 1 wide"),
                    format!("{} inputs and {} outputs", l.inputs, l.outputs),
                ));
            }
            if let Some(prev) = i.checked_sub(1).map(|p| layers[p]) {
                if prev.outputs != l.inputs {
                    return Err(mismatch(
                        format!("layer {i} with {} inputs", prev.outputs),
                        format!("{} inputs", l.inputs),
                    ));
                }
            }
            total = l
                .inputs
                .checked_mul(l.outputs)
                .and_then(|w| w.checked_add(l.outputs))
                .and_then(|p| total.checked_add(p))
                .ok_or_else(|| {
                    mismatch(
                        "layers whose parameters can be counted".into(),
                        format!("layer {i} of {} x {}", l.outputs, l.inputs),
                    )
                })?;
        }
        Ok(total)
    }

    /// The layers.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Features per observation.
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Outputs per observation.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// All parameters, flat.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// All parameters, flat and mutable.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Range of layer `i`'s parameters in the flat buffer.
    pub fn layer_range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// Layer `i`'s parameters (weight then bias).
    pub fn layer_params(&self, i: usize) -> &[f32] {
        &self.params[self.layer_range(i)]
    }

    /// Layer `i`'s parameters, mutably.
    pub fn layer_params_mut(&mut self, i: usize) -> &mut [f32] {
        let r = self.layer_range(i);
        &mut self.params[r]
    }

    /// Predicts for a batch `x` (`batch x inputs`), returning `batch x outputs`.
    pub fn predict(&self, x: &Matrix) -> Matrix {
        let mut trace = Trace::default();
        self.forward_train(x, &mut trace);
        let mut out = Matrix::zeros(0, 0);
        std::mem::swap(&mut out, &mut trace.a[self.layers.len() - 1]);
        out
    }

    /// Forward propagation keeping what backpropagation needs in `trace` (whose buffers
    /// are reused from call to call). The output is [`Trace::output`].
    pub fn forward_train(&self, x: &Matrix, trace: &mut Trace) {
        assert_eq!(
            x.cols(),
            self.inputs(),
            "forward: input width vs network inputs"
        );
        self.forward_rows(x.as_slice(), x.rows(), trace);
    }

    /// [`Network::forward_train`] on `batch` rows stored row-major in `x` (for example a
    /// range of a larger matrix's rows, without copying them).
    pub fn forward_rows(&self, x: &[f32], batch: usize, trace: &mut Trace) {
        assert_eq!(
            x.len(),
            batch * self.inputs(),
            "forward: input length vs {batch} rows of {} inputs",
            self.inputs()
        );
        trace.prepare(&self.layers, batch);
        // The first layer leaves out input columns that are zero throughout the batch.
        let first = self.layers[0];
        let selected = trace.columns.select(x, batch, first.inputs, first.outputs);
        let mut cols = selected.then_some(&mut trace.columns);
        let mut i = 0;
        while i < self.layers.len() {
            let layer = self.layers[i];
            let (before, rest) = trace.a.split_at_mut(i);
            let input = if i == 0 { x } else { before[i - 1].as_slice() };
            let cols = if i == 0 { cols.take() } else { None };
            let params = self.layer_params(i);
            if self.fuses_head(i) {
                // This layer's bias and activation, and the one-output layer's product,
                // in one pass; then that layer's bias and activation on its column.
                let (a, next) = rest.split_at_mut(1);
                let a = a[0].as_mut_slice();
                layer.product_with(params, input, batch, a, cols);
                let head = self.layers[i + 1];
                let (w, b) = head.split(self.layer_params(i + 1));
                let out = next[0].as_mut_slice();
                let pass = head::Forward {
                    x: a,
                    b: layer.split(params).1,
                    w,
                    out: &mut *out,
                };
                layer.activation.with_function(pass);
                head.activation.forward_bias_in_place(out, b, 1);
                i += 2;
                continue;
            }
            let a = rest[0].as_mut_slice();
            if layer.activation.needs_z() {
                let z = trace.z[i].as_mut_slice();
                layer.forward_with(params, input, batch, z, a, cols);
            } else {
                layer.forward_in_place_with(params, input, batch, a, cols);
            }
            i += 1;
        }
    }

    /// Whether layer `i` and the layer after it, which has one output, are computed in
    /// fused passes (see the `head` module): both keep no pre-activation, and layer `i`'s
    /// activation is element-wise.
    fn fuses_head(&self, i: usize) -> bool {
        match (self.layers.get(i), self.layers.get(i + 1)) {
            (Some(layer), Some(head)) => {
                head.outputs == 1
                    && !layer.activation.needs_z()
                    && !head.activation.needs_z()
                    && layer.activation != Activation::Softmax
            }
            _ => false,
        }
    }

    /// Backpropagation: given `d_output = dL/d(output)` for the batch traced by the last
    /// [`Network::forward_train`] on `x`, writes `dL/dθ` for every weight and bias into
    /// `grads` (same layout as [`Network::params`]).
    pub fn backward(&self, x: &Matrix, trace: &mut Trace, d_output: &[f32], grads: &mut [f32]) {
        self.backward_add(x, trace, d_output, grads, false);
    }

    /// [`Network::backward`], adding to what `grads` holds when `accumulate`: the
    /// gradient of a batch processed in several pieces is the sum of theirs.
    pub fn backward_add(
        &self,
        x: &Matrix,
        trace: &mut Trace,
        d_output: &[f32],
        grads: &mut [f32],
        accumulate: bool,
    ) {
        self.backward_rows(x.as_slice(), x.rows(), trace, d_output, grads, accumulate);
    }

    /// [`Network::backward_add`] for the `batch` rows `x` (row-major) traced by the
    /// last [`Network::forward_rows`].
    pub fn backward_rows(
        &self,
        x: &[f32],
        batch: usize,
        trace: &mut Trace,
        d_output: &[f32],
        grads: &mut [f32],
        accumulate: bool,
    ) {
        assert_eq!(
            grads.len(),
            self.params.len(),
            "backward: gradient buffer vs parameters"
        );
        assert_eq!(x.len(), batch * self.inputs(), "backward: input length");
        let last = self.layers.len() - 1;
        trace.da[last].as_mut_slice().copy_from_slice(d_output);
        let Trace {
            z,
            a,
            da,
            scratch,
            patterns,
            columns,
        } = trace;
        let mut i = last + 1;
        while i > 0 {
            i -= 1;
            let layer = self.layers[i];
            let params = self.layer_params(i);
            let input = |i: usize| if i == 0 { x } else { a[i - 1].as_slice() };
            if i > 0 && self.fuses_head(i - 1) {
                // Layer i has one output: its derivative and bias gradient on its column,
                // then its products fused with layer i-1's derivative pass, then layer
                // i-1's own products.
                let below = self.layers[i - 1];
                let (g_below, g_head) = grads.split_at_mut(self.offsets[i]);
                let g_below = &mut g_below[self.offsets[i - 1]..];
                let g_head = &mut g_head[..self.offsets[i + 1] - self.offsets[i]];
                let (gw, gb) = layer.split_mut(g_head);
                if !accumulate {
                    gb.fill(0.0);
                }
                let (da_below, da_head) = da.split_at_mut(i);
                let (da_below, da_prev) = da_below.split_last_mut().expect("i > 0");
                let s = da_head[0].as_mut_slice();
                // An identity output's bias gradient (the sum of `s`) is added in the
                // fused pass; any other activation's derivative comes first.
                let head_bias = if layer.activation == Activation::Identity {
                    Some(&mut gb[0])
                } else {
                    layer.activation.backward_bias_in_place(
                        z[i].as_slice(),
                        a[i].as_slice(),
                        s,
                        gb,
                        1,
                    );
                    None
                };
                let (gw_below, gb_below) = below.split_mut(g_below);
                if !accumulate {
                    gb_below.fill(0.0);
                }
                let dz = da_below.as_mut_slice();
                let pass = head::Backward {
                    a: a[i - 1].as_slice(),
                    s,
                    w: layer.split(params).0,
                    g: &mut *dz,
                    gb: gb_below,
                    gw,
                    head_bias,
                    accumulate,
                };
                below.activation.with_derivative(pass);
                let mut dx = da_prev.last_mut().map(|m| m.as_mut_slice());
                let params_below = self.layer_params(i - 1);
                // A ReLU layer's input gradient from the `patterns` table where that
                // pays; with `dx` taken, `backward_products` leaves that product out.
                if below.activation == Activation::Relu
                    && patterns::pays(batch, below.outputs, below.inputs)
                {
                    if let Some(dx) = dx.take() {
                        let (h, w) = (layer.split(params).0, below.split(params_below).0);
                        patterns::input_gradient(a[i - 1].as_slice(), s, h, w, patterns, dx);
                    }
                }
                let cols = (i == 1 && columns.in_use()).then_some(&mut *columns);
                below.backward_products(
                    params_below,
                    input(i - 1),
                    batch,
                    dz,
                    gw_below,
                    dx,
                    accumulate,
                    Some(scratch),
                    cols,
                );
                i -= 1;
                continue;
            }
            let (da_prev, da_rest) = da.split_at_mut(i);
            // dz = da ⊙ f'(z), overwriting da.
            let dz = da_rest[0].as_mut_slice();
            let g = &mut grads[self.offsets[i]..self.offsets[i + 1]];
            let dx = da_prev.last_mut().map(|m| m.as_mut_slice());
            let za = (z[i].as_slice(), a[i].as_slice());
            let cols = (i == 0 && columns.in_use()).then_some(&mut *columns);
            let x = input(i);
            layer.backward_with(params, x, batch, za, dz, g, dx, accumulate, scratch, cols);
        }
    }
}

/// What forward propagation keeps for backpropagation, plus backprop's scratch space.
/// Reused across steps so steady-state training allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Pre-activations per layer, kept only where the activation's derivative needs
    /// them ([`Activation::needs_z`]); empty elsewhere.
    z: Vec<Matrix>,
    /// Activations per layer (the last is the network's output).
    a: Vec<Matrix>,
    /// `dL/da` per layer, overwritten in place by `dL/dz` during backward.
    da: Vec<Matrix>,
    /// Working memory of a layer's backward products (see `Dense::backward`).
    scratch: Vec<f32>,
    /// Working memory of the gradient a ReLU layer below a one-output layer passes
    /// down (see the `patterns` module).
    patterns: PatternSpace,
    /// The first layer's input columns that are not zero throughout the batch, when
    /// the forward pass left the others out (see the `columns` module).
    columns: InputColumns,
}

impl Trace {
    fn prepare(&mut self, layers: &[Dense], batch: usize) {
        let n = layers.len();
        for v in [&mut self.z, &mut self.a, &mut self.da] {
            v.resize_with(n, Matrix::default);
        }
        for (i, l) in layers.iter().enumerate() {
            self.z[i].resize(if l.activation.needs_z() { batch } else { 0 }, l.outputs);
            self.a[i].resize(batch, l.outputs);
            self.da[i].resize(batch, l.outputs);
        }
    }

    /// The output of the last forward pass (`batch x outputs`).
    pub fn output(&self) -> &Matrix {
        self.a.last().expect("output() called before forward_train")
    }

    /// Activations of layer `i` from the last forward pass.
    pub fn activations(&self, i: usize) -> &Matrix {
        &self.a[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, grid as data};

    /// A network ending in one output takes the fused passes of the `head` module;
    /// computed layer by layer with `Dense`'s own forward and backward instead, the
    /// output and every gradient are the same bits, for batches with and without a
    /// remainder after groups of four rows, overwriting and accumulating.
    #[test]
    fn fused_head_matches_layer_by_layer() {
        for (sizes, act, out_act) in [
            (vec![8, 64, 64, 1], Activation::Relu, Activation::Identity),
            (vec![5, 9, 1], Activation::Tanh, Activation::Sigmoid),
            (vec![3, 16, 7, 1], Activation::Elu, Activation::Identity),
            (vec![4, 1], Activation::Relu, Activation::Identity),
            (vec![6, 32, 1], Activation::LeakyRelu, Activation::Identity),
            (vec![2, 16, 1], Activation::Sigmoid, Activation::Sigmoid),
        ] {
            let config = NetworkConfig {
                inputs: sizes[0],
                hidden: sizes[1..sizes.len() - 1].to_vec(),
                outputs: 1,
                activation: act,
                output_activation: out_act,
                init: Init::Auto,
            };
            let layers = config.layers();
            let net = Network::from_params(
                layers.clone(),
                data(Network::zeros(layers.clone()).num_params(), 1),
            )
            .unwrap();
            assert_eq!(net.fuses_head(sizes.len() - 3), sizes.len() > 2);
            for batch in [1, 3, 4, 13, 64, 150] {
                let x = Matrix::from_vec(batch, sizes[0], data(batch * sizes[0], 2)).unwrap();
                let d_out = data(batch, 3);
                let mut trace = Trace::default();
                net.forward_train(&x, &mut trace);

                // Layer by layer.
                let mut acts = vec![x.as_slice().to_vec()];
                for (i, l) in layers.iter().enumerate() {
                    let mut a = vec![0.0; batch * l.outputs];
                    l.forward_in_place(net.layer_params(i), &acts[i], batch, &mut a);
                    acts.push(a);
                }
                assert_eq!(
                    trace.output().as_slice(),
                    &acts[layers.len()][..],
                    "{sizes:?} batch {batch}: output"
                );
                for accumulate in [false, true] {
                    let start = start_gradient(net.num_params(), accumulate);
                    let want = layer_by_layer_gradients(
                        &net,
                        (&acts, None),
                        batch,
                        &d_out,
                        &start,
                        accumulate,
                    );
                    let mut got = start.clone();
                    net.forward_train(&x, &mut trace);
                    net.backward_add(&x, &mut trace, &d_out, &mut got, accumulate);
                    assert_eq!(
                        got, want,
                        "{sizes:?} batch {batch} accumulate {accumulate}: gradients"
                    );
                }
            }
        }
    }

    /// From `patterns::MIN_ROWS` rows, a ReLU layer below a one-output head passes its
    /// gradient down through the `patterns` table instead of a matrix product: that sum
    /// is taken in another order, so the gradients of the layers below it agree with
    /// layer by layer to rounding, and every other gradient is the same bits.
    #[test]
    fn relu_patterns_below_a_head_match_layer_by_layer() {
        use Activation::{Gelu, Identity, Relu, Sigmoid, Tanh};
        for (sizes, activations) in [
            (vec![8, 64, 64, 1], vec![Relu, Relu, Identity]),
            (vec![5, 32, 12, 1], vec![Relu, Relu, Sigmoid]),
            (vec![3, 40, 32, 8, 1], vec![Relu, Relu, Relu, Identity]),
            // Other layers below the ReLU layer, one whose derivative takes `z`.
            (vec![6, 32, 16, 1], vec![Tanh, Relu, Identity]),
            (vec![6, 64, 16, 1], vec![Gelu, Relu, Identity]),
            // The ReLU layer is the first: no gradient goes below it.
            (vec![32, 16, 1], vec![Relu, Identity]),
        ] {
            let layers: Vec<Dense> = sizes
                .windows(2)
                .zip(&activations)
                .map(|(w, &activation)| Dense {
                    inputs: w[0],
                    outputs: w[1],
                    activation,
                })
                .collect();
            let below = layers[layers.len() - 2];
            assert!(patterns::fits(below.outputs, below.inputs), "{sizes:?}");
            let net = Network::from_params(
                layers.clone(),
                data(Network::zeros(layers.clone()).num_params(), 5),
            )
            .unwrap();
            let rows_below = net.offsets[layers.len() - 2];
            for batch in [patterns::MIN_ROWS, patterns::MIN_ROWS + 45] {
                let x = Matrix::from_vec(batch, sizes[0], data(batch * sizes[0], 6)).unwrap();
                let d_out = data(batch, 7);
                let mut trace = Trace::default();
                net.forward_train(&x, &mut trace);
                let (acts, zs) = layer_by_layer_forward(&net, x.as_slice(), batch);
                for accumulate in [false, true] {
                    let start = start_gradient(net.num_params(), accumulate);
                    let want = layer_by_layer_gradients(
                        &net,
                        (&acts, Some(&zs)),
                        batch,
                        &d_out,
                        &start,
                        accumulate,
                    );
                    let mut got = start.clone();
                    net.backward_add(&x, &mut trace, &d_out, &mut got, accumulate);
                    let what = format!("{sizes:?} batch {batch} accumulate {accumulate}");
                    assert_eq!(got[rows_below..], want[rows_below..], "{what}: top layers");
                    if rows_below == 0 {
                        continue;
                    }
                    let scale = want[..rows_below]
                        .iter()
                        .fold(0.0f32, |m, &v| m.max(v.abs()));
                    assert!(scale > 0.0, "{what}: no gradient below");
                    let mut differs = false;
                    for (i, (&g, &w)) in got.iter().zip(&want).take(rows_below).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-5 * scale,
                            "{what}: parameter {i}: {g} vs {w} (largest {scale})"
                        );
                        differs |= g != w;
                    }
                    // The table's path was taken: its rounding differs from the product's.
                    assert!(differs, "{what}: same bits as the product");
                }
            }
        }
    }

    /// A batch whose input has columns that are zero in every row: the first layer
    /// leaves them out of its products (see the `columns` module), for a layer that
    /// keeps its pre-activation (GELU), one that does not, and one fused with a
    /// one-output head. Outputs and gradients against layer by layer over whole inputs.
    #[test]
    fn zero_input_columns_are_left_out_with_the_same_results() {
        for (sizes, act) in [
            (vec![48, 32, 3], Activation::Gelu),
            (vec![48, 32, 16, 4], Activation::Relu),
            (vec![48, 32, 1], Activation::Relu),
        ] {
            let config = NetworkConfig {
                inputs: sizes[0],
                hidden: sizes[1..sizes.len() - 1].to_vec(),
                outputs: sizes[sizes.len() - 1],
                activation: act,
                output_activation: Activation::Identity,
                init: Init::Auto,
            };
            let layers = config.layers();
            let n = Network::zeros(layers.clone()).num_params();
            let net = Network::from_params(layers.clone(), data(n, 1)).unwrap();
            let (batch, inputs) = (64, sizes[0]);
            let mut x = data(batch * inputs, 2);
            for (i, v) in x.iter_mut().enumerate() {
                if (i % inputs) % 4 != 1 || (i % inputs) > 40 {
                    *v = 0.0;
                }
            }
            let d_out = data(batch * config.outputs, 3);
            let mut trace = Trace::default();
            net.forward_rows(&x, batch, &mut trace);
            assert!(trace.columns.in_use(), "{sizes:?}: columns left out");

            let (acts, zs) = layer_by_layer_forward(&net, &x, batch);
            let what = format!("{sizes:?} output");
            assert_close(trace.output().as_slice(), &acts[layers.len()], &what);
            for accumulate in [false, true] {
                let start = start_gradient(n, accumulate);
                let layers_out = (&acts[..], Some(&zs[..]));
                let want =
                    layer_by_layer_gradients(&net, layers_out, batch, &d_out, &start, accumulate);
                let mut got = start.clone();
                net.forward_rows(&x, batch, &mut trace);
                net.backward_rows(&x, batch, &mut trace, &d_out, &mut got, accumulate);
                assert_close(&got, &want, &format!("{sizes:?} gradient"));
            }
        }
    }

    /// A gradient buffer to start from: NaN where it is to be overwritten (so that
    /// anything not written shows), values to add to when accumulating.
    fn start_gradient(n: usize, accumulate: bool) -> Vec<f32> {
        if accumulate {
            data(n, 4)
        } else {
            vec![f32::NAN; n]
        }
    }

    /// Forward propagation layer by layer with `Dense::forward`: each layer's input
    /// and output (`x` first) and each layer's pre-activation.
    fn layer_by_layer_forward(
        net: &Network,
        x: &[f32],
        batch: usize,
    ) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let (mut acts, mut zs) = (vec![x.to_vec()], vec![]);
        for (i, l) in net.layers().iter().enumerate() {
            let mut z = vec![0.0; batch * l.outputs];
            let mut a = vec![0.0; batch * l.outputs];
            l.forward(net.layer_params(i), &acts[i], batch, &mut z, &mut a);
            zs.push(z);
            acts.push(a);
        }
        (acts, zs)
    }

    /// Backpropagation layer by layer with `Dense::backward` from `d_out`, given each
    /// layer's input and output (`acts`, the network's input first) and, when given,
    /// pre-activations `zs`; starting from `start` as in `Network::backward_add`.
    fn layer_by_layer_gradients(
        net: &Network,
        (acts, zs): (&[Vec<f32>], Option<&[Vec<f32>]>),
        batch: usize,
        d_out: &[f32],
        start: &[f32],
        accumulate: bool,
    ) -> Vec<f32> {
        let mut want = start.to_vec();
        let mut g = d_out.to_vec();
        let mut scratch = Vec::new();
        for (i, l) in net.layers().iter().enumerate().rev() {
            let mut dx = vec![0.0; batch * l.inputs];
            let z = zs.map_or(&[][..], |zs| &zs[i][..]);
            l.backward(
                net.layer_params(i),
                &acts[i],
                batch,
                (z, &acts[i + 1]),
                &mut g,
                &mut want[net.layer_range(i)],
                (i > 0).then_some(&mut dx[..]),
                accumulate,
                &mut scratch,
            );
            g = dx;
        }
        want
    }
}
