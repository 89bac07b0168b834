//! Export of a trained [`Model`] to ONNX, preprocessing included, so that any ONNX
//! runtime scores the raw feature columns exactly as `backprop predict` does.
//!
//! The graph (opset [`OPSET`], IR version [`IR_VERSION`], read by ONNX Runtime 1.16
//! and later) has a symbolic batch dimension `N` and:
//! - **inputs**: in [`InputMode::Columns`] one per feature column, named after it,
//!   `[N, 1]`, `double` for numeric columns (NaN for a missing cell) and `string`
//!   for text columns (the trimmed cell; the empty string or another of the CSV
//!   reader's missing texts for a missing cell), the convention skl2onnx uses for data
//!   frames, with doubles (a data frame's numbers) rather than floats so the graph
//!   sees the values `backprop predict` parses: the quantile transform jumps at values
//!   tied in training, and a float can land on the other side of the jump;
//!   in [`InputMode::Pixels`] one `float` input `pixels`, `[N, F]`, the features in
//!   order (the raw pixel values 0-255 of an image model, exact as floats);
//! - **preprocessing**: median imputation, the fitted scaling, one-hot encoding (a
//!   missing cell is the category `"missing"`, an unseen category all zeros);
//! - **layers**: `Gemm` with `transB = 1` on the `[out, in]` weights, then the
//!   activation;
//! - **outputs**: `prediction` (`[N, 1]`, regression, in the target's units), or
//!   `label` (`[N]`, string) and `probabilities` (`[N, K]`, softmax) for
//!   classification;
//! - **metadata**: the feature columns, the target, the classes and the version of
//!   backprop that wrote it.

mod graph;
mod preprocess;

use std::path::Path;

use onnx_protobuf::{GraphProto, Message, OperatorSetIdProto, StringStringEntryProto};

pub use graph::{Dim, Elem};
pub use onnx_protobuf::ModelProto;
pub use preprocess::{InputMode, PIXELS_INPUT};

use crate::activation::{ELU_ALPHA, LEAKY_SLOPE};
use crate::data::prep::{Feature, Preprocessor, Target, TargetTransform};
use crate::error::{Error, Result};
use crate::layer::{AvgPool2d, Conv2d, Image, LayerSpec, MaxPool2d, Pool};
use crate::model::{atomic_write, Model};
use crate::{Activation, Network};
use graph::{value_info, Attr, Graph};

/// The ONNX operator set the graph uses.
pub const OPSET: i64 = 17;
/// The ONNX-ML operator set, imported by models with text columns (`LabelEncoder`).
pub const ML_OPSET: i64 = 2;
/// The ONNX IR version written (ONNX Runtime reads 8 from version 1.10 on).
pub const IR_VERSION: i64 = 8;
/// Output of a regression model: the prediction in the target's units.
pub const PREDICTION: &str = "prediction";
/// Output of a classifier: the predicted class.
pub const LABEL: &str = "label";
/// Output of a classifier: the probability of every class.
pub const PROBABILITIES: &str = "probabilities";

/// An input or output of the exported graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Its name.
    pub name: String,
    /// Element type ([`Elem::Float`] or [`Elem::String`]).
    pub elem: Elem,
    /// Its shape; [`Dim::Batch`] is the symbolic batch dimension `N`.
    pub shape: Vec<Dim>,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let elem = match self.elem {
            Elem::Float => "float",
            Elem::Double => "double",
            Elem::Int64 => "int64",
            Elem::String => "string",
            Elem::Bool => "bool",
        };
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| match d {
                Dim::Batch => graph::BATCH.to_string(),
                Dim::Fixed(n) => n.to_string(),
            })
            .collect();
        write!(f, "{} {elem}[{}]", self.name, dims.join(", "))
    }
}

/// The inputs and outputs a model exports to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Graph inputs, in order.
    pub inputs: Vec<Port>,
    /// Graph outputs, in order.
    pub outputs: Vec<Port>,
}

/// Whether `prep` is an image model's: every feature numeric and named
/// `pixel_<row>_<col>`.
fn is_image_model(prep: &Preprocessor) -> bool {
    prep.features.iter().all(|f| {
        matches!(f, Feature::Numeric { .. })
            && f.name().strip_prefix("pixel_").is_some_and(|rc| {
                rc.split_once('_')
                    .is_some_and(|(r, c)| r.parse::<usize>().is_ok() && c.parse::<usize>().is_ok())
            })
    })
}

/// The concrete input mode for `prep` (`Auto` resolved), checked to fit it.
pub fn resolve(prep: &Preprocessor, mode: InputMode) -> Result<InputMode> {
    match mode {
        InputMode::Auto if is_image_model(prep) => Ok(InputMode::Pixels),
        InputMode::Auto | InputMode::Columns => Ok(InputMode::Columns),
        InputMode::Pixels => match prep.features.iter().find(|f| !matches!(f, Feature::Numeric { .. })) {
            Some(f) => Err(export(format!("--inputs pixels needs every feature numeric, but `{}` is a text column; use --inputs columns", f.name()))),
            None => Ok(InputMode::Pixels),
        },
    }
}

fn export(reason: String) -> Error {
    Error::Export { reason }
}

/// The inputs and outputs `model` exports to in `mode`.
pub fn signature(model: &Model, mode: InputMode) -> Result<Signature> {
    let prep = &model.meta.preprocessor;
    let mode = resolve(prep, mode)?;
    let inputs: Vec<Port> = preprocess::inputs(prep, mode)
        .into_iter()
        .map(|(name, elem, shape)| Port { name, elem, shape })
        .collect();
    let outputs = match &prep.target {
        Target::Regression { .. } => vec![Port {
            name: PREDICTION.into(),
            elem: Elem::Float,
            shape: vec![Dim::Batch, Dim::Fixed(1)],
        }],
        Target::Classification { classes, .. } => vec![
            Port {
                name: LABEL.into(),
                elem: Elem::String,
                shape: vec![Dim::Batch],
            },
            Port {
                name: PROBABILITIES.into(),
                elem: Elem::Float,
                shape: vec![Dim::Batch, Dim::Fixed(classes.len())],
            },
        ],
    };
    for p in &inputs {
        if p.name.is_empty() {
            return Err(export("a feature column has an empty name, which cannot name a graph input; name the column and retrain".into()));
        }
        if outputs.iter().any(|o| o.name == p.name) {
            return Err(export(format!("the feature column `{}` has the name of a graph output; rename the column and retrain", p.name)));
        }
    }
    Ok(Signature { inputs, outputs })
}

/// One layer as the export reads it.
enum LayerView<'a> {
    /// `f(x Wᵀ + b)`, `W` `[outputs, inputs]` row-major.
    Dense {
        inputs: usize,
        outputs: usize,
        weight: &'a [f32],
        bias: &'a [f32],
        activation: Activation,
    },
    /// `f(W ⋆ x + b)`, `W` `[out, in, kh, kw]` (ONNX's `Conv` layout too).
    Conv {
        conv: Conv2d,
        weight: &'a [f32],
        bias: &'a [f32],
    },
    /// Max- or average pooling (`true`: max).
    Pool(Pool, bool),
    /// Images to rows (NCHW order, as ONNX's `Flatten`).
    Flatten,
    /// Nothing when predicting (dropout, random shifts).
    Identity,
}

/// The network's layers, read through their specs: the one place the export depends
/// on how layers are stored. A layer kind that cannot be exported is refused here,
/// naming it.
fn layers(net: &Network) -> Result<Vec<LayerView<'_>>> {
    let refuse = |i: usize| Error::Export {
        reason: format!(
            "layers.{i} is a {} layer, which the ONNX export does not write yet",
            net.layers()[i].kind()
        ),
    };
    (0..net.layers().len())
        .map(|i| {
            let params = net.layer_params(i);
            Ok(match net.layers()[i].spec().ok_or_else(|| refuse(i))? {
                LayerSpec::Dense(d) => {
                    let (weight, bias) = d.split(params);
                    LayerView::Dense {
                        inputs: d.inputs,
                        outputs: d.outputs,
                        weight,
                        bias,
                        activation: d.activation,
                    }
                }
                LayerSpec::Conv2d(conv) => {
                    let (weight, bias) = conv.split(params);
                    LayerView::Conv { conv, weight, bias }
                }
                LayerSpec::MaxPool2d(MaxPool2d(p)) => LayerView::Pool(p, true),
                LayerSpec::AvgPool2d(AvgPool2d(p)) => LayerView::Pool(p, false),
                LayerSpec::Flatten(_) => LayerView::Flatten,
                LayerSpec::Dropout(_) | LayerSpec::RandomShift(_) => LayerView::Identity,
                LayerSpec::Periodic(_) => return Err(refuse(i)),
            })
        })
        .collect()
}

/// The network's layers as nodes over `x` (`[N, inputs]`); returns the output's name.
/// Image layers see `[N, C, H, W]` (a `Reshape` before the first), dense layers rows (a
/// `Flatten` before a dense layer over images).
fn network(g: &mut Graph, net: &Network, mut x: String) -> Result<String> {
    let mut image = false;
    let to_image = |g: &mut Graph, x: &str, image: &mut bool, shape: Image| -> String {
        if *image {
            return x.to_string();
        }
        *image = true;
        let dims = [
            -1,
            shape.channels as i64,
            shape.height as i64,
            shape.width as i64,
        ];
        let dims = g.i64s("image_shape", &[4], &dims);
        g.op("Reshape", &[x, &dims], &[])
    };
    for (i, l) in layers(net)?.into_iter().enumerate() {
        x = match l {
            LayerView::Dense {
                inputs,
                outputs,
                weight,
                bias,
                activation: f,
            } => {
                if image {
                    x = g.op("Flatten", &[&x], &[Attr::Int("axis", 1)]);
                    image = false;
                }
                let w = g.f32s(&format!("layers.{i}.weight"), &[outputs, inputs], weight);
                let b = g.f32s(&format!("layers.{i}.bias"), &[outputs], bias);
                let z = g.op("Gemm", &[&x, &w, &b], &[Attr::Int("transB", 1)]);
                activation(g, &z, f)
            }
            LayerView::Conv { conv, weight, bias } => {
                let x = to_image(g, &x, &mut image, conv.input);
                convolution(g, i, &x, &conv, weight, bias)
            }
            LayerView::Pool(p, max) => {
                let x = to_image(g, &x, &mut image, p.input);
                pool(g, &x, &p, max)
            }
            LayerView::Flatten if image => {
                image = false;
                g.op("Flatten", &[&x], &[Attr::Int("axis", 1)])
            }
            LayerView::Flatten | LayerView::Identity => x,
        };
    }
    if image {
        x = g.op("Flatten", &[&x], &[Attr::Int("axis", 1)]);
    }
    Ok(x)
}

/// `[k, k]`, an ONNX attribute of both axes.
fn square(k: usize) -> [i64; 2] {
    [k as i64, k as i64]
}

/// Layer `i`, a convolution, over the images `x`, then its activation.
fn convolution(
    g: &mut Graph,
    i: usize,
    x: &str,
    conv: &Conv2d,
    weight: &[f32],
    bias: &[f32],
) -> String {
    let [kh, kw] = conv.kernel;
    let (o, c) = (conv.out_channels, conv.input.channels);
    let w = g.f32s(&format!("layers.{i}.weight"), &[o, c, kh, kw], weight);
    let b = g.f32s(&format!("layers.{i}.bias"), &[o], bias);
    let pads = [conv.padding as i64; 4];
    let attrs = [
        Attr::Ints("kernel_shape", &[kh as i64, kw as i64]),
        Attr::Ints("strides", &square(conv.stride)),
        Attr::Ints("pads", &pads),
    ];
    let z = g.op("Conv", &[x, &w, &b], &attrs);
    activation(g, &z, conv.activation)
}

/// Max- (`max`) or average pooling of the images `x`.
fn pool(g: &mut Graph, x: &str, pool: &Pool, max: bool) -> String {
    let (k, s, pads) = (
        square(pool.kernel),
        square(pool.stride),
        [pool.padding as i64; 4],
    );
    let mut attrs = vec![
        Attr::Ints("kernel_shape", &k),
        Attr::Ints("strides", &s),
        Attr::Ints("pads", &pads),
    ];
    if max {
        g.op("MaxPool", &[x], &attrs)
    } else {
        // Padding counts as zeros, as in `AvgPool2d`.
        attrs.push(Attr::Int("count_include_pad", 1));
        g.op("AveragePool", &[x], &attrs)
    }
}

/// `f(x)` for activation `a`, as [`Activation::forward`] computes it.
fn activation(g: &mut Graph, x: &str, a: Activation) -> String {
    match a {
        Activation::Identity => x.to_string(),
        Activation::Sigmoid => g.op("Sigmoid", &[x], &[]),
        Activation::Tanh => g.op("Tanh", &[x], &[]),
        Activation::Relu => g.op("Relu", &[x], &[]),
        Activation::LeakyRelu => g.op("LeakyRelu", &[x], &[Attr::Float("alpha", LEAKY_SLOPE)]),
        Activation::Elu => g.op("Elu", &[x], &[Attr::Float("alpha", ELU_ALPHA)]),
        Activation::Gelu => {
            // z Φ(z) = z (0.5 (1 + erf(z / √2))), in the Rust code's order.
            let r = g.f32(std::f32::consts::FRAC_1_SQRT_2);
            let s = g.bin("Mul", x, &r);
            let e = g.op("Erf", &[&s], &[]);
            let one = g.f32(1.0);
            let e = g.bin("Add", &one, &e);
            let half = g.f32(0.5);
            let cdf = g.bin("Mul", &half, &e);
            g.bin("Mul", x, &cdf)
        }
        Activation::Softmax => g.op("Softmax", &[x], &[Attr::Int("axis", -1)]),
    }
}

/// The ONNX model of `model` with inputs in `mode`.
pub fn build(model: &Model, mode: InputMode) -> Result<ModelProto> {
    let prep = &model.meta.preprocessor;
    let sig = signature(model, mode)?;
    let mode = resolve(prep, mode)?;
    let mut g = Graph::new(
        sig.inputs
            .iter()
            .chain(&sig.outputs)
            .map(|p| p.name.clone()),
    );
    let x = preprocess::build(&mut g, prep, mode);
    let x = network(&mut g, &model.network, x)?;
    match &prep.target {
        Target::Regression {
            transform,
            mean,
            std,
            ..
        } => {
            // z * std + mean in double, then exp for a log target (Target::inverse).
            let z = g.cast(&x, Elem::Double);
            let s = g.f64(*std);
            let m = g.f64(*mean);
            let t = g.bin("Mul", &z, &s);
            let mut t = g.bin("Add", &t, &m);
            if *transform == TargetTransform::Log {
                t = g.op("Exp", &[&t], &[]);
            }
            g.op_into("Cast", &[&t], &[Attr::Int("to", 1)], PREDICTION);
        }
        Target::Classification { classes, .. } => {
            g.op_into("Softmax", &[&x], &[Attr::Int("axis", -1)], PROBABILITIES);
            // The first of equal probabilities, as `backprop predict` picks it.
            let best = g.op(
                "ArgMax",
                &[PROBABILITIES],
                &[Attr::Int("axis", 1), Attr::Int("keepdims", 0)],
            );
            let names = g.strings("classes", &[classes.len()], classes);
            g.op_into("Gather", &[&names, &best], &[Attr::Int("axis", 0)], LABEL);
        }
    }
    let mut graph = GraphProto::new();
    graph.name = "backprop".into();
    graph.doc_string = "Preprocessing and network of a backprop model".into();
    graph.input = sig
        .inputs
        .iter()
        .map(|p| value_info(&p.name, p.elem, &p.shape, ""))
        .collect();
    graph.output = sig
        .outputs
        .iter()
        .map(|p| value_info(&p.name, p.elem, &p.shape, ""))
        .collect();
    let uses_ml = g.uses_ml;
    graph.node = g.nodes;
    graph.initializer = g.initializers;

    let mut m = ModelProto::new();
    m.ir_version = IR_VERSION;
    let mut opset = OperatorSetIdProto::new();
    opset.domain = String::new();
    opset.version = OPSET;
    m.opset_import = vec![opset];
    if uses_ml {
        let mut ml = OperatorSetIdProto::new();
        ml.domain = graph::ML_DOMAIN.into();
        ml.version = ML_OPSET;
        m.opset_import.push(ml);
    }
    m.producer_name = "backprop".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    m.doc_string = format!(
        "{} of `{}` by a feed-forward network trained with backprop",
        match prep.target {
            Target::Regression { .. } => "Regression",
            Target::Classification { .. } => "Classification",
        },
        prep.target.name()
    );
    m.metadata_props = metadata(prep, mode);
    m.graph = Some(graph).into();
    Ok(m)
}

fn metadata(prep: &Preprocessor, mode: InputMode) -> Vec<StringStringEntryProto> {
    let names: Vec<&str> = prep.features.iter().map(Feature::name).collect();
    let json = |v: &[&str]| serde_json::to_string(v).unwrap_or_default();
    let mut props = vec![
        ("backprop_version", env!("CARGO_PKG_VERSION").to_string()),
        ("feature_columns", json(&names)),
        ("target", prep.target.name().to_string()),
        (
            "inputs",
            match mode {
                InputMode::Pixels => "pixels",
                _ => "columns",
            }
            .to_string(),
        ),
    ];
    match &prep.target {
        Target::Regression { transform, .. } => {
            props.push(("task", "regression".into()));
            let t = match transform {
                TargetTransform::None => "none",
                TargetTransform::Log => "log",
            };
            props.push(("target_transform", t.into()));
        }
        Target::Classification { classes, .. } => {
            props.push(("task", "classification".into()));
            let c: Vec<&str> = classes.iter().map(String::as_str).collect();
            props.push(("classes", json(&c)));
        }
    }
    props
        .into_iter()
        .map(|(k, v)| {
            let mut e = StringStringEntryProto::new();
            e.key = k.into();
            e.value = v;
            e
        })
        .collect()
}

/// The serialised bytes of `proto`.
pub fn to_bytes(proto: &ModelProto) -> Result<Vec<u8>> {
    proto
        .write_to_bytes()
        .map_err(|e| export(format!("cannot serialise the ONNX model ({e})")))
}

/// Writes `model` as ONNX (inputs in `mode`) to `path`, atomically: a temporary file
/// beside it renamed over it, so a failure leaves nothing half-written.
pub fn save(model: &Model, mode: InputMode, path: &Path) -> Result<()> {
    let bytes = to_bytes(&build(model, mode)?)?;
    atomic_write(path, &bytes)
}
