//! `--layers`: a network described layer by layer, e.g. `conv 32 3x3 pad 1, relu,
//! maxpool 2, flatten, dense 128 relu, dense 10`. [`Stack::parse`] checks the words
//! (when the settings are read); [`Stack::build`] checks the shapes against the data's
//! input and output (once the data is read) and gives the library's layer specs.
//!
//! Grammar (items separated by commas, words by spaces, case-insensitive):
//! - `input CxHxW`: first item only: the rows of the data are images of `C` channels of
//!   `H x W` pixels (needed for tables; image folders know their shape);
//! - `conv N KxK [stride S] [pad P] [ACT]` (or `conv N K`): a convolution with `N`
//!   filters;
//! - `maxpool K [stride S] [pad P]`, `avgpool K [stride S] [pad P]`: pooling (stride
//!   defaults to `K`);
//! - `flatten`: images to feature rows (needed before `dense` after image layers);
//! - `dropout P`: dropout with probability `P` in `[0, 1)`;
//! - `shift N`: while training, move each image by up to `N` pixels along each axis
//!   (augmentation; predicting passes images on);
//! - `periodic K D [sigma S]`: periodic embeddings of numeric features (Gorishniy et
//!   al. 2022): each value that reaches it (placed first: every input column, one-hot
//!   columns included) becomes `D` values, `relu(W_j [cos 2πc_j x, sin 2πc_j x] +
//!   b_j)` with `K` learned frequencies `c_j` drawn from `N(0, S²)` (`S` defaults to
//!   [`PERIODIC_SIGMA`]); the rows become `features x D` wide;
//! - `dense N [ACT]`: a fully connected layer of `N` units; the last item must be
//!   `dense` with as many units as the data has outputs (classes);
//! - `ACT` alone (`relu`, `tanh`, `sigmoid`, `gelu`, `elu`, `leaky_relu`): the
//!   activation of the `conv` or `dense` item just before it.

use anyhow::{bail, Result};
use backprop::layer::{
    AvgPool2d, Conv2d, Dense, Dropout, Flatten, Image, LayerSpec, MaxPool2d, Periodic, Pool,
    RandomShift,
};
use backprop::Activation;
use serde::{Deserialize, Serialize};

/// One item of `--layers`, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Item {
    Input(Image),
    Conv {
        filters: usize,
        kernel: [usize; 2],
        stride: usize,
        pad: usize,
        activation: Activation,
    },
    MaxPool {
        kernel: usize,
        stride: usize,
        pad: usize,
    },
    AvgPool {
        kernel: usize,
        stride: usize,
        pad: usize,
    },
    Flatten,
    Dropout(f32),
    Shift(usize),
    Periodic {
        frequencies: usize,
        width: usize,
        sigma: f32,
    },
    Dense {
        units: usize,
        activation: Activation,
    },
}

/// The items of `--layers` with the text of each, for messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    /// The items and the text each came from.
    pub items: Vec<(Item, String)>,
}

/// What flows between layers: images, or rows of features.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Image(Image),
    Flat(usize),
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Image(i) => write!(f, "{i} images"),
            Shape::Flat(n) => write!(f, "rows of {n} features"),
        }
    }
}

fn activation(word: &str) -> Option<Activation> {
    let w = word.replace('-', "_");
    Activation::ALL
        .into_iter()
        .find(|a| a.name() == w && *a != Activation::Softmax && *a != Activation::Identity)
}

fn number<T: std::str::FromStr>(item: &str, what: &str, word: Option<&str>) -> Result<T> {
    match word.map(|w| w.parse::<T>()) {
        Some(Ok(v)) => Ok(v),
        Some(Err(_)) => bail!(
            "--layers `{item}`: {what} `{}` is not a number",
            word.unwrap_or_default()
        ),
        None => bail!("--layers `{item}`: {what} is missing"),
    }
}

/// `3x3` or `3` as a kernel size.
fn kernel(item: &str, word: Option<&str>) -> Result<[usize; 2]> {
    let w = word.unwrap_or_default();
    let (h, v) = w.split_once('x').unwrap_or((w, w));
    match (h.parse(), v.parse()) {
        (Ok(h), Ok(v)) if h > 0 && v > 0 => Ok([h, v]),
        _ => bail!("--layers `{item}`: kernel `{w}` is not a size such as 3x3"),
    }
}

/// The options after a pooling or convolution item's sizes: `stride S`, `pad P` and,
/// for a convolution (`act` given), an activation. Returns (stride, pad).
fn options<'a>(
    item: &str,
    words: &mut impl Iterator<Item = &'a str>,
    mut act: Option<&mut Activation>,
    stride: usize,
) -> Result<(usize, usize)> {
    let (mut stride, mut pad) = (stride, 0);
    while let Some(w) = words.next() {
        match w {
            "stride" => stride = number(item, "stride", words.next())?,
            "pad" | "padding" => pad = number(item, "padding", words.next())?,
            w => match (activation(w), act.as_deref_mut()) {
                (Some(a), Some(slot)) => *slot = a,
                _ => bail!(
                    "--layers `{item}`: unexpected `{w}` (expected stride S or pad P{})",
                    if act.is_some() {
                        " or an activation"
                    } else {
                        ""
                    }
                ),
            },
        }
    }
    if stride == 0 {
        bail!("--layers `{item}`: stride must be at least 1");
    }
    Ok((stride, pad))
}

impl Stack {
    /// Parses `--layers` text, checking every word (not yet the shapes).
    pub fn parse(text: &str) -> Result<Stack> {
        let mut items: Vec<(Item, String)> = Vec::new();
        for raw in text.split(',') {
            let item = raw.trim().to_lowercase();
            if item.is_empty() {
                bail!("--layers: an empty item in `{text}` (items are separated by single commas)");
            }
            let first = item.split_whitespace().next().unwrap_or_default();
            if let Some(a) = activation(first).filter(|_| !item.contains(' ')) {
                match items.last_mut() {
                    Some((Item::Conv { activation, .. } | Item::Dense { activation, .. }, t))
                        if *activation == Activation::Identity =>
                    {
                        *activation = a;
                        t.push_str(", ");
                        t.push_str(&item);
                    }
                    _ => bail!("--layers `{item}`: an activation must follow a conv or dense item without one"),
                }
                continue;
            }
            let parsed = parse_item(&item, items.is_empty())?;
            items.push((parsed, item));
        }
        Ok(Stack { items })
    }

    /// The image shape `input` gives, if the first item is one.
    pub fn input(&self) -> Option<Image> {
        match self.items.first() {
            Some((Item::Input(i), _)) => Some(*i),
            _ => None,
        }
    }

    /// The layer specs for data of `inputs` features (images of shape `image` when
    /// known) and `outputs` outputs, checking that every layer fits what reaches it.
    pub fn build(
        &self,
        inputs: usize,
        image: Option<Image>,
        outputs: usize,
    ) -> Result<Vec<LayerSpec>> {
        let image = self.input().or(image);
        let mut shape = match image {
            Some(i) if i.len() == inputs => Shape::Image(i),
            Some(i) => bail!(
                "--layers: input {i} is {} values per row but the data has {inputs} features",
                i.len()
            ),
            None => Shape::Flat(inputs),
        };
        let mut specs = Vec::new();
        let layer_items: Vec<_> = self
            .items
            .iter()
            .filter(|(i, _)| !matches!(i, Item::Input(_)))
            .collect();
        if layer_items.is_empty() {
            bail!("--layers: no layers; end with dense {outputs}");
        }
        for (n, (item, text)) in layer_items.iter().enumerate() {
            let at = format!("--layers item {} `{text}`", n + 1);
            let spec = layer(item, shape, &at)?;
            spec.validate()
                .map_err(|e| anyhow::anyhow!("{at} does not fit {shape}: {}", reason(e)))?;
            shape = match spec {
                LayerSpec::Conv2d(c) => Shape::Image(c.output()),
                LayerSpec::MaxPool2d(MaxPool2d(p)) | LayerSpec::AvgPool2d(AvgPool2d(p)) => {
                    Shape::Image(p.output())
                }
                LayerSpec::Flatten(f) => Shape::Flat(f.input.len()),
                LayerSpec::Dropout(_) | LayerSpec::RandomShift(_) => shape,
                LayerSpec::Periodic(p) => Shape::Flat(p.features * p.width),
                LayerSpec::Dense(d) => Shape::Flat(d.outputs),
            };
            specs.push(spec);
        }
        match specs.last() {
            Some(LayerSpec::Dense(d)) if d.outputs == outputs && d.activation == Activation::Identity => Ok(specs),
            Some(LayerSpec::Dense(d)) if d.outputs == outputs => bail!("--layers: the last layer `dense {outputs}` takes no activation (the loss applies softmax or none)"),
            _ => bail!("--layers: the last item must be `dense {outputs}`, one unit per output of the data ({outputs}), not `{}`", layer_items.last().map_or("", |(_, t)| t.as_str())),
        }
    }
}

/// One item other than a lone activation; `first` says whether it comes first.
fn parse_item(item: &str, first: bool) -> Result<Item> {
    let mut words = item.split_whitespace();
    let kind = words.next().unwrap_or_default();
    let parsed = match kind {
        "input" => {
            let w = words.next().unwrap_or_default();
            let dims: Vec<usize> = w.split('x').filter_map(|d| d.parse().ok()).collect();
            match dims[..] {
                [_, _, _] if !first => bail!("--layers `{item}`: input must be the first item"),
                [c, h, w] if c > 0 && h > 0 && w > 0 => Item::Input(Image {
                    channels: c,
                    height: h,
                    width: w,
                }),
                _ => bail!("--layers `{item}`: expected input CxHxW, e.g. input 1x28x28"),
            }
        }
        "conv" => {
            let filters = number(item, "the number of filters", words.next())?;
            let kernel = kernel(item, words.next())?;
            let mut activation = Activation::Identity;
            let (stride, pad) = options(item, &mut words, Some(&mut activation), 1)?;
            Item::Conv {
                filters,
                kernel,
                stride,
                pad,
                activation,
            }
        }
        "maxpool" | "avgpool" => {
            let kernel: usize = number(item, "the window size", words.next())?;
            let (stride, pad) = options(item, &mut words, None, kernel)?;
            if kind == "maxpool" {
                Item::MaxPool { kernel, stride, pad }
            } else {
                Item::AvgPool { kernel, stride, pad }
            }
        }
        "flatten" => Item::Flatten,
        "dropout" => Item::Dropout(number(item, "the probability", words.next())?),
        "shift" => Item::Shift(number(item, "the largest shift in pixels", words.next())?),
        "periodic" => {
            let frequencies = number(item, "the number of frequencies", words.next())?;
            let width = number(item, "the embedding width", words.next())?;
            let sigma = match words.next() {
                None => PERIODIC_SIGMA,
                Some("sigma") => number(item, "sigma", words.next())?,
                Some(w) => bail!("--layers `{item}`: unexpected `{w}` (expected periodic K D [sigma S], e.g. periodic 16 24 sigma 0.1)"),
            };
            Item::Periodic {
                frequencies,
                width,
                sigma,
            }
        }
        "dense" => {
            let units = number(item, "the number of units", words.next())?;
            let activation = match words.next() {
                None => Activation::Identity,
                Some(w) => activation(w).ok_or_else(|| {
                    anyhow::anyhow!("--layers `{item}`: `{w}` is not an activation ({ACTIVATIONS})")
                })?,
            };
            Item::Dense { units, activation }
        }
        _ => bail!("--layers: unknown item `{item}` (expected input, conv, maxpool, avgpool, flatten, dropout, shift, periodic, dense or an activation: {ACTIVATIONS})"),
    };
    if words.next().is_some() {
        bail!("--layers `{item}`: unexpected words at the end");
    }
    Ok(parsed)
}

/// The default σ of `periodic` (the standard deviation of the initial frequencies).
pub const PERIODIC_SIGMA: f32 = 0.1;

/// The activations `--layers` takes.
const ACTIVATIONS: &str = "relu, tanh, sigmoid, gelu, elu, leaky_relu";

/// A library error's reason without its field prefix.
fn reason(e: backprop::Error) -> String {
    match e {
        backprop::Error::InvalidConfig { reason, .. } => reason,
        e => e.to_string(),
    }
}

/// The periodic embedding of the features of `shape` (rows, not images).
fn periodic(
    shape: Shape,
    at: &str,
    frequencies: usize,
    width: usize,
    sigma: f32,
) -> Result<LayerSpec> {
    match shape {
        Shape::Flat(n) => Ok(LayerSpec::Periodic(Periodic {
            features: n,
            frequencies,
            width,
            sigma,
        })),
        Shape::Image(i) => bail!(
            "{at}: periodic embeds numeric features but gets {i} images; put it first, on table rows"
        ),
    }
}

/// The spec of `item` given the `shape` that reaches it.
fn layer(item: &Item, shape: Shape, at: &str) -> Result<LayerSpec> {
    let image = |what: &str| {
        match shape {
        Shape::Image(i) => Ok(i),
        Shape::Flat(n) => Err(anyhow::anyhow!("{at}: {what} needs images but gets rows of {n} features; start --layers with `input CxHxW` (e.g. input 1x28x28), or move it before flatten")),
    }
    };
    Ok(match *item {
        Item::Input(_) => unreachable!("filtered out by build"),
        Item::Conv {
            filters,
            kernel,
            stride,
            pad,
            activation,
        } => {
            if filters == 0 {
                bail!("{at}: a convolution needs at least one filter");
            }
            LayerSpec::Conv2d(Conv2d {
                input: image("conv")?,
                out_channels: filters,
                kernel,
                stride,
                padding: pad,
                activation,
            })
        }
        Item::MaxPool {
            kernel,
            stride,
            pad,
        } => LayerSpec::MaxPool2d(MaxPool2d(Pool {
            input: image("maxpool")?,
            kernel,
            stride,
            padding: pad,
        })),
        Item::AvgPool {
            kernel,
            stride,
            pad,
        } => LayerSpec::AvgPool2d(AvgPool2d(Pool {
            input: image("avgpool")?,
            kernel,
            stride,
            padding: pad,
        })),
        Item::Flatten => LayerSpec::Flatten(Flatten {
            input: image("flatten")?,
        }),
        Item::Dropout(p) => LayerSpec::Dropout(Dropout {
            width: match shape {
                Shape::Image(i) => i.len(),
                Shape::Flat(n) => n,
            },
            p,
        }),
        Item::Shift(max) => LayerSpec::RandomShift(RandomShift {
            image: image("shift")?,
            max,
        }),
        Item::Periodic {
            frequencies,
            width,
            sigma,
        } => periodic(shape, at, frequencies, width, sigma)?,
        Item::Dense { units, activation } => match shape {
            Shape::Flat(n) if units > 0 => LayerSpec::Dense(Dense {
                inputs: n,
                outputs: units,
                activation,
            }),
            Shape::Flat(_) => bail!("{at}: a dense layer needs at least one unit"),
            Shape::Image(i) => bail!(
                "{at}: dense needs rows of features but gets {i} images; put `flatten` before it"
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST_CNN: &str = "conv 32 3x3 pad 1, relu, maxpool 2, conv 64 3x3 pad 1, relu, maxpool 2, flatten, dense 128 relu, dense 10";

    #[test]
    fn the_mnist_cnn_builds_with_pytorch_shapes() {
        let s = Stack::parse(MNIST_CNN).unwrap();
        let img = Image {
            channels: 1,
            height: 28,
            width: 28,
        };
        let specs = s.build(784, Some(img), 10).unwrap();
        let d: Vec<String> = specs.iter().map(|s| s.describe()).collect();
        assert_eq!(
            d[0],
            "conv2d 1x28x28 -> 32x28x28 (3x3, stride 1, padding 1, relu)"
        );
        assert_eq!(
            d[3],
            "maxpool2d 64x14x14 -> 64x7x7 (2x2, stride 2, padding 0)"
        );
        assert_eq!(d[5], "dense 3136 -> 128 (relu)");
        assert_eq!(specs.len(), 7);
    }

    #[test]
    fn shift_keeps_the_image_shape_and_needs_images() {
        let img = Some(Image {
            channels: 1,
            height: 8,
            width: 8,
        });
        let specs = Stack::parse("shift 2, conv 4 3x3, flatten, dense 3")
            .and_then(|s| s.build(64, img, 3))
            .unwrap();
        assert_eq!(
            specs[0].describe(),
            "shift 1x8x8 (up to 2 pixels while training)"
        );
        let m = Stack::parse("flatten, dense 4, shift 1, dense 3")
            .and_then(|s| s.build(64, img, 3))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("item 3 `shift 1`") && m.contains("needs images"),
            "{m}"
        );
        let m = Stack::parse("shift 8, flatten, dense 3")
            .and_then(|s| s.build(64, img, 3))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("item 1 `shift 8`") && m.contains("less than"),
            "{m}"
        );
    }

    #[test]
    fn shapes_that_do_not_fit_name_the_item_and_sizes() {
        let img = Some(Image {
            channels: 1,
            height: 8,
            width: 8,
        });
        let e = |t: &str| {
            Stack::parse(t)
                .and_then(|s| s.build(64, img, 10))
                .unwrap_err()
                .to_string()
        };
        let m = e("conv 8 3x3, maxpool 2, conv 8 5x5, flatten, dense 10");
        assert!(
            m.contains("item 3 `conv 8 5x5`") && m.contains("3x3"),
            "{m}"
        );
        let m = e("conv 8 3x3, dense 10");
        assert!(
            m.contains("item 2 `dense 10`") && m.contains("flatten"),
            "{m}"
        );
        let m = e("conv 8 3x3, flatten, dense 12");
        assert!(m.contains("dense 10"), "{m}");
        assert!(Stack::parse("conv 8 3y3")
            .unwrap_err()
            .to_string()
            .contains("3y3"));
        assert!(Stack::parse("maxpool 2, relu")
            .unwrap_err()
            .to_string()
            .contains("must follow"));
        let flat = Stack::parse("conv 4 3")
            .unwrap()
            .build(64, None, 10)
            .unwrap_err()
            .to_string();
        assert!(flat.contains("input CxHxW"), "{flat}");
    }

    #[test]
    fn input_gives_tables_an_image_shape() {
        let s = Stack::parse(
            "input 1x8x8, conv 4 3x3 relu, avgpool 2, flatten, dropout 0.25, dense 10",
        )
        .unwrap();
        let specs = s.build(64, None, 10).unwrap();
        assert_eq!(specs.len(), 5);
        assert!(Stack::parse("input 1x8x9, flatten, dense 10")
            .unwrap()
            .build(64, None, 10)
            .is_err());
    }

    #[test]
    fn periodic_embeds_every_input_column() {
        let s = Stack::parse("periodic 16 24, dense 64 relu, dense 1").unwrap();
        let specs = s.build(10, None, 1).unwrap();
        assert_eq!(
            specs[0].describe(),
            format!("periodic 10 -> 240 (10 features x 16 frequencies -> 24 each, relu, sigma {PERIODIC_SIGMA})")
        );
        assert_eq!(specs[1].describe(), "dense 240 -> 64 (relu)");
        let s = Stack::parse("periodic 4 2 sigma 0.5, dense 1").unwrap();
        match s.build(3, None, 1).unwrap()[0] {
            LayerSpec::Periodic(p) => assert_eq!((p.frequencies, p.width, p.sigma), (4, 2, 0.5)),
            ref other => panic!("{other:?}"),
        }
        assert!(Stack::parse("periodic 4 2 sigma x")
            .unwrap_err()
            .to_string()
            .contains("sigma `x`"));
    }
}
