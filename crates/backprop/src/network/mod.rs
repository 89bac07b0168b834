//! The network: a sequence of layers over one flat parameter buffer, and the two loops
//! of a training step over it: forward propagation ([`Network::forward_rows`]) and
//! backpropagation ([`Network::backward_rows`]).

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::activation::Activation;
use crate::dispatch::{self, Grads, Stack};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layer::{Dense, Layer, LayerSpec};
use crate::matrix::Matrix;
pub use crate::trace::Trace;

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
    /// A stack of layers of any kinds (convolutions, pooling, ...) that replaces the
    /// dense layers `hidden` describes, when not empty; `inputs` and `outputs` must
    /// be its first layer's inputs and last layer's outputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<LayerSpec>,
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
            stack: Vec::new(),
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
        if !self.stack.is_empty() {
            let layers = spec_layers(&self.stack)?;
            count_params(&layers)?;
            let (first, last) = (&layers[0], &layers[layers.len() - 1]);
            if first.inputs() != self.inputs || last.outputs() != self.outputs {
                return Err(Error::config(
                    "stack",
                    format!(
                        "the layers take {} inputs and give {} outputs; the data has {} and {}",
                        first.inputs(),
                        last.outputs(),
                        self.inputs,
                        self.outputs
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The number of parameters of the network this configuration describes (0 when
    /// it describes none).
    pub fn num_params(&self) -> usize {
        if self.stack.is_empty() {
            self.layers().iter().map(Dense::num_params).sum()
        } else {
            Network::spec_param_count(&self.stack).unwrap_or(0)
        }
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
        if !self.stack.is_empty() {
            return Network::init_specs(&self.stack, self.init, self.activation, rng);
        }
        let layers = self.layers();
        let mut net = Network::zeros(layers.clone());
        for (i, layer) in layers.into_iter().enumerate() {
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

/// A feed-forward network: a sequence of layers (of any kinds, see [`Layer`]) plus one
/// flat parameter buffer holding, layer by layer, each layer's parameters (for a
/// [`Dense`] layer the weight, `out x in` row-major, then the bias). Serialises when
/// every layer has a [`LayerSpec`]; deserialising checks it as
/// [`Network::from_specs`] does.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    layers: Vec<Box<dyn Layer>>,
    offsets: Vec<usize>,
    params: Vec<f32>,
}

/// A [`Network`] as serialised (a network of [`Dense`] layers as it always was).
#[derive(Serialize, Deserialize)]
struct SerializedNetwork {
    layers: Vec<LayerSpec>,
    offsets: Vec<usize>,
    params: Vec<f32>,
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let layers = self.specs().ok_or_else(|| {
            serde::ser::Error::custom("a layer of this network has no spec to serialise")
        })?;
        SerializedNetwork {
            layers,
            offsets: self.offsets.clone(),
            params: self.params.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = SerializedNetwork::deserialize(d)?;
        let net = Network::from_specs(&s.layers, s.params).map_err(serde::de::Error::custom)?;
        if net.offsets != s.offsets {
            return Err(serde::de::Error::custom(Error::ShapeMismatch {
                op: "Network (deserialise)",
                expected: format!("layer offsets {:?}", net.offsets),
                got: format!("{:?}", s.offsets),
            }));
        }
        Ok(net)
    }
}

/// Boxes `Dense` layers as layers of a network.
fn boxed(layers: Vec<Dense>) -> Vec<Box<dyn Layer>> {
    layers
        .into_iter()
        .map(|l| Box::new(l) as Box<dyn Layer>)
        .collect()
}

impl Network {
    /// A network of the given `Dense` layers with all parameters zero.
    pub fn zeros(layers: Vec<Dense>) -> Self {
        Network::zeros_of(boxed(layers))
    }

    /// A network of the given layers with all parameters zero (unchecked: see
    /// [`Network::from_layers`]).
    fn zeros_of(layers: Vec<Box<dyn Layer>>) -> Self {
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

    /// A network of the given `Dense` layers and parameters, checked as a loaded model
    /// must be (see [`Network::from_layers`]).
    pub fn from_params(layers: Vec<Dense>, params: Vec<f32>) -> Result<Self> {
        Network::from_layers(boxed(layers), params)
    }

    /// A network of the given layers, of any kinds, and parameters, checked: at least
    /// one layer, every layer at least one unit wide and taking the previous one's
    /// outputs, and one parameter per parameter of the layers. (Every forward path
    /// indexes the first and last layer and cuts rows of a layer's width.)
    pub fn from_layers(layers: Vec<Box<dyn Layer>>, params: Vec<f32>) -> Result<Self> {
        let expected = count_params(&layers)?;
        if params.len() != expected {
            return Err(Error::ShapeMismatch {
                op: "Network::from_params",
                expected: format!("{expected} parameters"),
                got: format!("{}", params.len()),
            });
        }
        let mut net = Network::zeros_of(layers);
        net.params = params;
        Ok(net)
    }

    /// The number of parameters of `layers`, after checking that they make a network:
    /// at least one layer, every width at least 1, each layer taking the previous
    /// one's outputs, and a count that fits in memory's address space.
    pub fn param_count(layers: &[Dense]) -> Result<usize> {
        count_params(&boxed(layers.to_vec()))
    }

    /// A network of the layers `specs` describe and `params`, checked: each spec on its
    /// own ([`LayerSpec::validate`]), then as [`Network::from_layers`] checks.
    pub fn from_specs(specs: &[LayerSpec], params: Vec<f32>) -> Result<Self> {
        Network::from_layers(spec_layers(specs)?, params)
    }

    /// The number of parameters of the layers `specs` describe, checked as
    /// [`Network::from_specs`] checks them.
    pub fn spec_param_count(specs: &[LayerSpec]) -> Result<usize> {
        count_params(&spec_layers(specs)?)
    }

    /// A network of the layers `specs` describe, each layer's parameters filled by
    /// [`LayerSpec::init`] in order from the input, with `init` resolved by each
    /// layer's activation (`hidden` for identity and softmax layers).
    pub fn init_specs<R: Rng + ?Sized>(
        specs: &[LayerSpec],
        init: Init,
        hidden: Activation,
        rng: &mut R,
    ) -> Result<Self> {
        let n = Network::spec_param_count(specs)?;
        let mut net = Network::from_specs(specs, vec![0.0; n])?;
        for (i, spec) in specs.iter().enumerate() {
            spec.init(init, hidden, rng, net.layer_params_mut(i));
        }
        Ok(net)
    }

    /// Every layer's spec, when every layer has one (as every network that can be
    /// saved); `None` otherwise.
    pub fn specs(&self) -> Option<Vec<LayerSpec>> {
        self.layers.iter().map(|l| l.spec()).collect()
    }

    /// The layers, in order from the input.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers as `Dense` layers, when every one is (as every network that can be
    /// saved); `None` otherwise.
    pub fn dense_layers(&self) -> Option<Vec<Dense>> {
        self.layers.iter().map(|l| l.as_dense().copied()).collect()
    }

    /// Layer `i` as a `Dense` layer with its weight (`outputs x inputs`, row-major) and
    /// bias, when it is one.
    pub fn dense(&self, i: usize) -> Option<(Dense, &[f32], &[f32])> {
        let d = *self.layers.get(i)?.as_dense()?;
        let (w, b) = d.split(self.layer_params(i));
        Some((d, w, b))
    }

    /// Features per observation.
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs())
    }

    /// Outputs per observation.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs())
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

    /// Layer `i`'s parameters (for a `Dense` layer the weight then the bias).
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
        let mut i = 0;
        while i < self.layers.len() {
            // Layer i's forward (or a kernel's, for it and maybe layer i + 1).
            i += dispatch::forward(&self.stack(), i, x, batch, trace);
        }
    }

    /// Backpropagation: given `d_output = dL/d(output)` for the batch traced by the last
    /// [`Network::forward_train`] on `x`, writes `dL/dθ` for every parameter into
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
        let mut g = Grads {
            x,
            batch,
            grads,
            accumulate,
        };
        let mut i = self.layers.len();
        while i > 0 {
            // Layer i - 1's backward (or a kernel's, for it and maybe the one below),
            // which leaves dL/da of the layer below in `trace`.
            i -= dispatch::backward(&self.stack(), i - 1, trace, &mut g);
        }
    }

    /// The layers and parameters as the dispatch of kernels sees them.
    pub(crate) fn stack(&self) -> Stack<'_> {
        Stack {
            layers: &self.layers,
            offsets: &self.offsets,
            params: &self.params,
        }
    }
}

/// The layers of `specs`, each checked on its own.
fn spec_layers(specs: &[LayerSpec]) -> Result<Vec<Box<dyn Layer>>> {
    specs
        .iter()
        .map(|s| s.validate().map(|()| s.layer()))
        .collect()
}

/// The number of parameters of `layers`, checked as [`Network::param_count`] says.
fn count_params(layers: &[Box<dyn Layer>]) -> Result<usize> {
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
        let (inputs, outputs) = (l.inputs(), l.outputs());
        if inputs == 0 || outputs == 0 {
            return Err(mismatch(
                format!("layer {i} at least 1 wide"),
                format!("{inputs} inputs and {outputs} outputs"),
            ));
        }
        if let Some(prev) = i.checked_sub(1).map(|p| layers[p].outputs()) {
            if prev != inputs {
                return Err(mismatch(
                    format!("layer {i} with {prev} inputs"),
                    format!("{inputs} inputs"),
                ));
            }
        }
        // Checked for `Dense` layers, whose shapes may come from a file.
        let count = match l.as_dense() {
            Some(d) => d
                .inputs
                .checked_mul(d.outputs)
                .and_then(|w| w.checked_add(d.outputs)),
            None => Some(l.num_params()),
        };
        total = count.and_then(|p| total.checked_add(p)).ok_or_else(|| {
            mismatch(
                "layers whose parameters can be counted".into(),
                format!("layer {i} of {outputs} x {inputs}"),
            )
        })?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
