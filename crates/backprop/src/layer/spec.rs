//! What `model.json` records of a layer: its kind and configuration, enough to rebuild
//! it ([`LayerSpec::layer`]) and to check it before any weights are read.
//!
//! A [`Dense`] layer is written as it always was (`{"inputs", "outputs",
//! "activation"}`), so the model files of fully connected networks stay bit-identical;
//! every other kind carries a `"kind"` field (`"conv2d"`, `"maxpool2d"`, ...).

use std::any::Any;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{AvgPool2d, Conv2d, Dense, Dropout, Flatten, Layer, MaxPool2d, Periodic, RandomShift};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Init;

/// One layer of a saved network: its kind and configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerSpec {
    /// A fully connected layer.
    Dense(Dense),
    /// A 2-d convolution.
    Conv2d(Conv2d),
    /// Max-pooling.
    MaxPool2d(MaxPool2d),
    /// Average pooling.
    AvgPool2d(AvgPool2d),
    /// Images to feature rows.
    Flatten(Flatten),
    /// Dropout.
    Dropout(Dropout),
    /// Random shifts of images while training (augmentation).
    RandomShift(RandomShift),
    /// Periodic embeddings of numeric features.
    Periodic(Periodic),
}

/// The kinds other than `Dense`, tagged by `"kind"`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tagged {
    Conv2d(Conv2d),
    #[serde(rename = "maxpool2d")]
    MaxPool2d(MaxPool2d),
    #[serde(rename = "avgpool2d")]
    AvgPool2d(AvgPool2d),
    Flatten(Flatten),
    Dropout(Dropout),
    #[serde(rename = "shift")]
    RandomShift(RandomShift),
    Periodic(Periodic),
}

impl Serialize for LayerSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match *self {
            LayerSpec::Dense(d) => d.serialize(s),
            LayerSpec::Conv2d(l) => Tagged::Conv2d(l).serialize(s),
            LayerSpec::MaxPool2d(l) => Tagged::MaxPool2d(l).serialize(s),
            LayerSpec::AvgPool2d(l) => Tagged::AvgPool2d(l).serialize(s),
            LayerSpec::Flatten(l) => Tagged::Flatten(l).serialize(s),
            LayerSpec::Dropout(l) => Tagged::Dropout(l).serialize(s),
            LayerSpec::RandomShift(l) => Tagged::RandomShift(l).serialize(s),
            LayerSpec::Periodic(l) => Tagged::Periodic(l).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LayerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        if v.get("kind").is_none() {
            return Dense::deserialize(v)
                .map(LayerSpec::Dense)
                .map_err(D::Error::custom);
        }
        Ok(match Tagged::deserialize(v).map_err(D::Error::custom)? {
            Tagged::Conv2d(l) => LayerSpec::Conv2d(l),
            Tagged::MaxPool2d(l) => LayerSpec::MaxPool2d(l),
            Tagged::AvgPool2d(l) => LayerSpec::AvgPool2d(l),
            Tagged::Flatten(l) => LayerSpec::Flatten(l),
            Tagged::Dropout(l) => LayerSpec::Dropout(l),
            Tagged::RandomShift(l) => LayerSpec::RandomShift(l),
            Tagged::Periodic(l) => LayerSpec::Periodic(l),
        })
    }
}

impl dyn Layer {
    /// What `model.json` records of this layer (kind and configuration), if it is one of
    /// the kinds [`LayerSpec`] knows; `None` makes the model writers refuse the network.
    /// (Found by the layer's type here, so that the kinds need not name `LayerSpec`,
    /// which names them.)
    pub fn spec(&self) -> Option<LayerSpec> {
        let any: &dyn Any = self;
        if let Some(l) = any.downcast_ref::<Dense>() {
            Some(LayerSpec::Dense(*l))
        } else if let Some(l) = any.downcast_ref::<Conv2d>() {
            Some(LayerSpec::Conv2d(*l))
        } else if let Some(l) = any.downcast_ref::<MaxPool2d>() {
            Some(LayerSpec::MaxPool2d(*l))
        } else if let Some(l) = any.downcast_ref::<AvgPool2d>() {
            Some(LayerSpec::AvgPool2d(*l))
        } else if let Some(l) = any.downcast_ref::<Flatten>() {
            Some(LayerSpec::Flatten(*l))
        } else if let Some(l) = any.downcast_ref::<Dropout>() {
            Some(LayerSpec::Dropout(*l))
        } else if let Some(l) = any.downcast_ref::<RandomShift>() {
            Some(LayerSpec::RandomShift(*l))
        } else {
            any.downcast_ref::<Periodic>()
                .map(|l| LayerSpec::Periodic(*l))
        }
    }
}

impl LayerSpec {
    /// The layer this spec describes.
    pub fn layer(&self) -> Box<dyn Layer> {
        match *self {
            LayerSpec::Dense(l) => Box::new(l),
            LayerSpec::Conv2d(l) => Box::new(l),
            LayerSpec::MaxPool2d(l) => Box::new(l),
            LayerSpec::AvgPool2d(l) => Box::new(l),
            LayerSpec::Flatten(l) => Box::new(l),
            LayerSpec::Dropout(l) => Box::new(l),
            LayerSpec::RandomShift(l) => Box::new(l),
            LayerSpec::Periodic(l) => Box::new(l),
        }
    }

    /// Checks the configuration on its own (sizes that make sense, counts that fit in
    /// memory); how layers chain is checked by [`crate::Network::from_specs`].
    pub fn validate(&self) -> Result<()> {
        match self {
            LayerSpec::Dense(d) => {
                // Zero widths are refused with the layer's index by the network's
                // own check; here only sizes too large to count.
                let ok = d.inputs.checked_mul(d.outputs).is_some_and(|n| n < 1 << 40);
                if ok {
                    Ok(())
                } else {
                    Err(Error::config(
                        "dense",
                        format!("{} x {} is not a usable size", d.outputs, d.inputs),
                    ))
                }
            }
            LayerSpec::Conv2d(c) => c.validate(),
            LayerSpec::MaxPool2d(m) => m.0.validate("maxpool2d").and_then(|()| {
                // The argmax is kept as an f32, exact up to 2^24.
                if m.0.input.len() > 1 << 24 {
                    Err(Error::config(
                        "maxpool2d",
                        "input image larger than 2^24 values",
                    ))
                } else {
                    Ok(())
                }
            }),
            LayerSpec::AvgPool2d(a) => a.0.validate("avgpool2d"),
            LayerSpec::Flatten(f) => match f.input.checked_len() {
                Some(n) if n > 0 && n < 1 << 40 => Ok(()),
                _ => Err(Error::config(
                    "flatten",
                    format!("input {} is empty", f.input),
                )),
            },
            LayerSpec::Dropout(d) => d.validate(),
            LayerSpec::RandomShift(r) => r.validate(),
            LayerSpec::Periodic(p) => p.validate(),
        }
    }

    /// A short description for people: `conv2d 1x28x28 -> 32x28x28 (3x3, stride 1,
    /// padding 1, relu)`.
    pub fn describe(&self) -> String {
        match self {
            LayerSpec::Dense(d) => format!(
                "dense {} -> {} ({})",
                d.inputs,
                d.outputs,
                d.activation.name()
            ),
            LayerSpec::Conv2d(c) => format!(
                "conv2d {} -> {} ({}x{}, stride {}, padding {}, {})",
                c.input,
                c.output(),
                c.kernel[0],
                c.kernel[1],
                c.stride,
                c.padding,
                c.activation.name()
            ),
            LayerSpec::MaxPool2d(MaxPool2d(p)) | LayerSpec::AvgPool2d(AvgPool2d(p)) => {
                let kind = if matches!(self, LayerSpec::MaxPool2d(_)) {
                    "maxpool2d"
                } else {
                    "avgpool2d"
                };
                format!(
                    "{kind} {} -> {} ({}x{}, stride {}, padding {})",
                    p.input,
                    p.output(),
                    p.kernel,
                    p.kernel,
                    p.stride,
                    p.padding
                )
            }
            LayerSpec::Flatten(f) => format!("flatten {} -> {}", f.input, f.input.len()),
            LayerSpec::Dropout(d) => format!("dropout {} (p = {})", d.width, d.p),
            LayerSpec::RandomShift(r) => {
                format!("shift {} (up to {} pixels while training)", r.image, r.max)
            }
            LayerSpec::Periodic(p) => format!(
                "periodic {} -> {} ({} features x {} frequencies -> {} each, relu, sigma {})",
                p.features,
                p.features * p.width,
                p.features,
                p.frequencies,
                p.width,
                p.sigma
            ),
        }
    }

    /// Fills this layer's parameters (`params`, its slice of the network's buffer)
    /// with `init` (resolved by the layer's activation, or `hidden`'s for an output
    /// layer whose activation is the identity or softmax, as
    /// [`crate::NetworkConfig::init`] does).
    pub fn init<R: Rng + ?Sized>(
        &self,
        init: Init,
        hidden: Activation,
        rng: &mut R,
        params: &mut [f32],
    ) {
        let for_init = |a: Activation| {
            if a == Activation::Identity || a == Activation::Softmax {
                hidden
            } else {
                a
            }
        };
        match self {
            LayerSpec::Dense(d) => {
                let (w, b) = d.split_mut(params);
                init.resolve(for_init(d.activation))
                    .fill(rng, d.inputs, d.outputs, w, b);
            }
            LayerSpec::Conv2d(c) => {
                // PyTorch's fans of a convolution: in/out channels times the kernel.
                let area = c.kernel[0] * c.kernel[1];
                let (fan_in, fan_out) = (c.input.channels * area, c.out_channels * area);
                let (w, b) = params.split_at_mut(c.out_channels * fan_in);
                init.resolve(for_init(c.activation))
                    .fill(rng, fan_in, fan_out, w, b);
            }
            LayerSpec::Periodic(p) => p.init(rng, params),
            _ => {}
        }
    }
}
