//! Saved models: the weights as safetensors (`layers.N.weight` and `layers.N.bias`
//! with PyTorch's layouts: `[out, in]` for `nn.Linear`, `[out, in, kh, kw]` for
//! `nn.Conv2d`; layers without parameters have no tensors) beside a versioned JSON
//! file holding the architecture (each layer's [`LayerSpec`]), the preprocessing and
//! the training configuration. A network of `Dense` layers is written as it always
//! was, byte for byte.
//! Every file is written atomically, so a crash never leaves a torn model.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::prep::Preprocessor;
use crate::error::{Error, Result};
use crate::layer::LayerSpec;
use crate::network::Network;
use crate::train::TrainConfig;

/// Identifies our model files.
pub const FORMAT: &str = "backprop-model";
/// Version of the model file layout; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the weights in a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the metadata in a model folder.
pub const META_FILE: &str = "model.json";

/// The metadata saved beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The layers (kinds, sizes and activations).
    pub layers: Vec<LayerSpec>,
    /// How table rows become inputs and targets.
    pub preprocessor: Preprocessor,
    /// How it was trained (loss, optimizer, schedule, batch size, epochs, seed).
    pub training: TrainConfig,
}

/// A trained network with everything needed to use it on new data.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The weights.
    pub network: Network,
    /// Architecture, preprocessing and training configuration.
    pub meta: ModelMeta,
}

impl Model {
    /// Bundles a network with its preprocessing and training configuration.
    pub fn new(network: Network, preprocessor: Preprocessor, training: TrainConfig) -> Self {
        let meta = ModelMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            // A network with a layer without a spec cannot be saved:
            // `weights_to_safetensors` says so.
            layers: network.specs().unwrap_or_default(),
            preprocessor,
            training,
        };
        Model { network, meta }
    }

    /// Writes `model.safetensors` and `model.json` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bytes = weights_to_safetensors(&self.network)?;
        atomic_write(&dir.join(WEIGHTS_FILE), &bytes)?;
        let json = serde_json::to_vec_pretty(&self.meta).map_err(|e| Error::Format {
            path: dir.join(META_FILE),
            reason: e.to_string(),
        })?;
        atomic_write(&dir.join(META_FILE), &json)
    }

    /// Reads a model folder, checking the format version and that the weights match
    /// the architecture.
    pub fn load(dir: &Path) -> Result<Model> {
        let meta_path = dir.join(META_FILE);
        if !dir.is_dir() {
            return Err(Error::Format { path: dir.into(), reason: "is not a model folder (expected a folder holding model.json and model.safetensors, as written by `backprop train`)".into() });
        }
        let text = std::fs::read(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta = ModelMeta::from_json(&meta_path, &text)?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
        Model::from_parts(meta, &meta_path, &weights_path, &bytes)
    }

    /// Pairs metadata with the bytes of its weights file (`meta_path` and
    /// `weights_path` name them in errors), checking that they belong together and
    /// that the result can predict: the layers make a network
    /// ([`Network::param_count`]), the preprocessing is usable
    /// ([`Preprocessor::check`]) and as wide as the network's input and output, the
    /// training configuration is valid, and the weights have the layers' shapes and
    /// finite values. Never panics, whatever the bytes.
    pub fn from_parts(
        meta: ModelMeta,
        meta_path: &Path,
        weights_path: &Path,
        weights: &[u8],
    ) -> Result<Model> {
        let corrupt = |what: String| Error::Format {
            path: meta_path.into(),
            reason: format!("{what}; the file is corrupted, retrain or restore it"),
        };
        Network::spec_param_count(&meta.layers)
            .map_err(|e| corrupt(format!("describes no usable network ({e})")))?;
        meta.preprocessor
            .check()
            .map_err(|e| corrupt(format!("holds unusable preprocessing: {e}")))?;
        meta.training
            .validate()
            .map_err(|e| corrupt(format!("holds an invalid training configuration ({e})")))?;
        let (inputs, outputs) = (
            meta.layers.first().map_or(0, |l| l.layer().inputs()),
            meta.layers.last().map_or(0, |l| l.layer().outputs()),
        );
        let (features, targets) = (
            meta.preprocessor.input_width(),
            meta.preprocessor.target.width(),
        );
        if features != inputs || targets != outputs {
            return Err(corrupt(format!("the preprocessing makes {features} input(s) and {targets} output(s) but the network has {inputs} and {outputs}")));
        }
        let network = weights_from_safetensors(weights_path, weights, &meta.layers)?;
        Ok(Model { network, meta })
    }
}

impl ModelMeta {
    /// Parses `model.json` bytes (`path` names them in errors), checking the format and
    /// its version first. Never panics, whatever the bytes.
    pub fn from_json(path: &Path, text: &[u8]) -> Result<ModelMeta> {
        let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| Error::Format {
            path: path.into(),
            reason: format!(
                "is not valid JSON ({e}); the file is corrupted, retrain or restore it"
            ),
        })?;
        if value.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
            return Err(Error::Format {
                path: path.into(),
                reason: format!("is not a backprop model file (no \"format\": \"{FORMAT}\")"),
            });
        }
        let version = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version != FORMAT_VERSION as u64 {
            return Err(Error::IncompatibleModel {
                found: format!("{} format version {version}", path.display()),
                expected: format!(
                    "version {FORMAT_VERSION}; retrain the model with this version of backprop"
                ),
            });
        }
        serde_json::from_value(value).map_err(|e| Error::Format {
            path: path.into(),
            reason: format!(
                "has an unexpected structure ({e}); the file is corrupted, retrain or restore it"
            ),
        })
    }
}

/// Serialises a network's parameters as safetensors.
pub fn weights_to_safetensors(net: &Network) -> Result<Vec<u8>> {
    let mut bytes: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for (i, layer) in net.layers().iter().enumerate() {
        if layer.spec().is_none() {
            return Err(unsavable(net, i));
        }
        let mut rest = net.layer_params(i);
        for (name, shape) in layer.tensors() {
            let (t, r) = rest.split_at(shape.iter().product());
            bytes.push((format!("layers.{i}.{name}"), to_le(t), shape));
            rest = r;
        }
    }
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, d, s)| TensorView::new(Dtype::F32, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Format {
            path: WEIGHTS_FILE.into(),
            reason: e.to_string(),
        })?;
    let info: Option<HashMap<String, String>> =
        Some(HashMap::from([("format".to_string(), FORMAT.to_string())]));
    safetensors::serialize(views, &info).map_err(|e| Error::Format {
        path: WEIGHTS_FILE.into(),
        reason: e.to_string(),
    })
}

/// The error for a network whose layer `i` is not `Dense` (only `Dense` layers have a
/// file format).
pub(crate) fn unsavable(net: &Network, i: usize) -> Error {
    Error::config(
        "network",
        format!(
            "layer {i} is a {} layer, a kind that cannot be saved",
            net.layers()[i].kind()
        ),
    )
}

/// Reads parameters for the layers `specs` describe from safetensors bytes, checking
/// every tensor's name, type, shape and values.
pub fn weights_from_safetensors(path: &Path, bytes: &[u8], specs: &[LayerSpec]) -> Result<Network> {
    let bad = |reason: String| Error::Format {
        path: path.into(),
        reason,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("is not a readable safetensors file ({e}); it may be truncated or corrupted, retrain or restore it")))?;
    let mut params = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        spec.validate()
            .map_err(|e| bad(format!("layer {i}: {e}")))?;
        for (suffix, shape) in spec.layer().tensors() {
            let name = format!("layers.{i}.{suffix}");
            let t = st.tensor(&name).map_err(|_| {
                bad(format!(
                    "has no tensor `{name}`; it does not match model.json"
                ))
            })?;
            if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            for c in t.data().chunks_exact(4) {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if !v.is_finite() {
                    return Err(bad(format!(
                        "tensor `{name}` holds a non-finite value; the model is corrupted"
                    )));
                }
                params.push(v);
            }
        }
    }
    Network::from_specs(specs, params)
}

fn to_le(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The temporary file beside `path` that an atomic write fills before renaming it over
/// `path`: `.NAME.tmpPID` in the same folder, so the rename never crosses file systems.
pub fn temp_path(path: &Path) -> std::path::PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed
/// to disk, then renamed over the target. A crash leaves the old file or the new one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Some(Ok(d)) = tmp.parent().map(std::fs::File::open) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
