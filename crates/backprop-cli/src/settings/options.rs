//! One layer of settings: what the command line, a `--config` file or a preset sets.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use backprop::data::prep::{TargetTransform, Task};
use backprop::{Activation, Init, Loss, OptimizerKind};
use serde::{Deserialize, Serialize};

use super::values::{self, Batch, ClassWeight, Example, Keep, Lr, Scale, ScheduleKind};

/// One layer of settings, keyed by the flag names (`batch-size`, `lr`): what the command
/// line, a `--config` file or a preset sets. `None` leaves the knob to the layers below.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    pub data: Option<PathBuf>,
    pub example: Option<Example>,
    pub target: Option<String>,
    pub task: Option<Task>,
    pub features: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub delimiter: Option<String>,
    pub scale: Option<Scale>,
    pub target_transform: Option<TargetTransform>,
    pub valid_fraction: Option<f64>,
    pub test_fraction: Option<f64>,
    pub test: Option<PathBuf>,
    #[serde(default, deserialize_with = "values::widths_de")]
    pub hidden: Option<Vec<usize>>,
    /// `--layers`, the text as given (checked by `Settings::from_options`).
    pub layers: Option<String>,
    pub keep: Option<Keep>,
    pub class_weight: Option<ClassWeight>,
    pub activation: Option<Activation>,
    pub loss: Option<Loss>,
    pub optimizer: Option<OptimizerKind>,
    pub lr: Option<Lr>,
    #[serde(serialize_with = "values::typed_ser")]
    pub momentum: Option<f32>,
    #[serde(serialize_with = "values::typed_ser")]
    pub weight_decay: Option<f32>,
    pub batch_size: Option<Batch>,
    pub epochs: Option<usize>,
    pub schedule: Option<ScheduleKind>,
    #[serde(serialize_with = "values::typed_ser")]
    pub clip_norm: Option<f32>,
    pub patience: Option<usize>,
    pub init: Option<Init>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub metrics_json: Option<PathBuf>,
    pub dollars_per_unit: Option<f64>,
    pub checkpoint_every: Option<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_baseline: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
}

impl Options {
    /// This layer over `lower`: each knob set here wins; switches add up.
    pub fn over(self, lower: Options) -> Options {
        macro_rules! pick { ($($f:ident),*) => { Options { $($f: self.$f.or(lower.$f),)* no_baseline: self.no_baseline || lower.no_baseline, quiet: self.quiet || lower.quiet } } }
        pick!(
            data,
            example,
            target,
            task,
            features,
            ignore,
            delimiter,
            scale,
            target_transform,
            valid_fraction,
            test_fraction,
            test,
            hidden,
            layers,
            keep,
            class_weight,
            activation,
            loss,
            optimizer,
            lr,
            momentum,
            weight_decay,
            batch_size,
            epochs,
            schedule,
            clip_norm,
            patience,
            init,
            seed,
            threads,
            out,
            metrics_json,
            dollars_per_unit,
            checkpoint_every
        )
    }

    /// The layer a `--config` TOML file sets.
    pub fn from_toml(path: &Path) -> Result<Options> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " "))
        })
    }

    /// The flags this layer sets, as typed (`--lr`), sorted.
    pub fn given(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| format!("--{k}"))
                .collect(),
            _ => Vec::new(),
        }
    }
}
