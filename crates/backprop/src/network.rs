//! The network: a stack of fully connected layers with one flat parameter buffer.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layer::Dense;
use crate::matrix::Matrix;

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
/// layer, the weight (`out x in`, row-major) and then the bias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    layers: Vec<Dense>,
    offsets: Vec<usize>,
    params: Vec<f32>,
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

    /// A network with the given layers and parameters (checked for shape).
    pub fn from_params(layers: Vec<Dense>, params: Vec<f32>) -> Result<Self> {
        for w in layers.windows(2) {
            if w[0].outputs != w[1].inputs {
                return Err(Error::ShapeMismatch {
                    op: "Network::from_params",
                    expected: format!("{} inputs", w[0].outputs),
                    got: format!("{} inputs", w[1].inputs),
                });
            }
        }
        let mut net = Network::zeros(layers);
        if params.len() != net.params.len() {
            return Err(Error::ShapeMismatch {
                op: "Network::from_params",
                expected: format!("{} parameters", net.params.len()),
                got: format!("{}", params.len()),
            });
        }
        net.params = params;
        Ok(net)
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
        let batch = x.rows();
        trace.prepare(&self.layers, batch);
        for (i, layer) in self.layers.iter().enumerate() {
            let (before, rest) = trace.a.split_at_mut(i);
            let input = if i == 0 {
                x.as_slice()
            } else {
                before[i - 1].as_slice()
            };
            let a = rest[0].as_mut_slice();
            let params = &self.params[self.offsets[i]..self.offsets[i + 1]];
            if layer.activation.needs_z() {
                layer.forward(params, input, batch, trace.z[i].as_mut_slice(), a);
            } else {
                layer.forward_in_place(params, input, batch, a);
            }
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
        assert_eq!(
            grads.len(),
            self.params.len(),
            "backward: gradient buffer vs parameters"
        );
        let batch = x.rows();
        let last = self.layers.len() - 1;
        trace.da[last].as_mut_slice().copy_from_slice(d_output);
        for i in (0..=last).rev() {
            let layer = self.layers[i];
            let params = &self.params[self.offsets[i]..self.offsets[i + 1]];
            let Trace { z, a, da, scratch } = trace;
            let (da_prev, da_rest) = da.split_at_mut(i);
            // dz = da ⊙ f'(z), overwriting da.
            let dz = da_rest[0].as_mut_slice();
            let input = if i == 0 {
                x.as_slice()
            } else {
                a[i - 1].as_slice()
            };
            let g = &mut grads[self.offsets[i]..self.offsets[i + 1]];
            let dx = da_prev.last_mut().map(|m| m.as_mut_slice());
            let za = (z[i].as_slice(), a[i].as_slice());
            layer.backward(params, input, batch, za, dz, g, dx, accumulate, scratch);
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
