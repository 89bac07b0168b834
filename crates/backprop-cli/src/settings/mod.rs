//! Validated settings of `backprop train`, from layers that each may leave a knob unset:
//! the command line (highest), the `--config` TOML file, the `--example` preset (or an
//! image folder's), then the defaults. [`Options`] is one such layer, keyed by flag
//! name; [`Settings`] is the resolved, checked whole. Both serialise, so a checkpoint
//! keeps the settings a run started with and `--resume` restores them as they were.
//!
//! [`keywords`] lists the same knobs as the Python estimators' keyword arguments.
//!
//! This module parses no command line: `args` turns flags into an [`Options`] layer (the
//! value enums derive `clap::ValueEnum` only so that flags can name them).

pub mod examples;
pub mod keywords;
mod options;
pub mod stack;
mod values;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use backprop::data::csv::CsvOptions;
use backprop::data::prep::{TargetTransform, Task};
use backprop::optim::Schedule;
use backprop::{Activation, BatchSize, Init, Loss, OptimizerKind, TrainConfig};
use serde::{Deserialize, Serialize};

pub use options::Options;
pub use values::{
    flag_value, parse_widths, Batch, ClassWeight, Example, Keep, Lr, Scale, ScheduleKind,
};

/// Below this many training rows the default batch is [`SMALL_DATA_BATCH`] rows, not 256.
pub const SMALL_DATA_ROWS: usize = 2560;
/// The default batch size for small tables.
pub const SMALL_DATA_BATCH: usize = 16;

/// Below this many training rows the default network's AdamW weight decay grows from
/// [`DEFAULT_DECAY`] as `sqrt(DECAY_ROWS / rows)`, up to [`MAX_DEFAULT_DECAY`]: the fewer
/// the rows, the more a 100,000-parameter network must be held back from fitting their
/// noise. On the tables of `bench/tabular.py` (BENCHMARKS.md, "Tables") this took the
/// 442-row diabetes table from test RMSE 70.1 to 59.7 and 546 house prices from 19,420 to
/// 17,150; at 10,000 rows and more (California) nothing changes.
pub const DECAY_ROWS: f64 = 10_000.0;
/// The default AdamW weight decay from [`DECAY_ROWS`] training rows up.
pub const DEFAULT_DECAY: f32 = 0.2;
/// The largest default weight decay (about 100 training rows).
pub const MAX_DEFAULT_DECAY: f32 = 2.0;

/// The default AdamW weight decay of the default network for `rows` training rows.
pub fn default_decay(rows: usize) -> f32 {
    let grow = (DECAY_ROWS / rows.max(1) as f64).sqrt().max(1.0) as f32;
    (DEFAULT_DECAY * grow).min(MAX_DEFAULT_DECAY)
}

/// The validated settings of a training run: every default filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `--batch-size` was not given: small data sets then get smaller batches.
    pub batch_default: bool,
    /// AdamW, the default network and no `--weight-decay`: the decay follows the number
    /// of training rows ([`default_decay`]).
    #[serde(default)]
    pub decay_default: bool,
    pub data: Option<PathBuf>,
    pub example: Option<Example>,
    /// `--delimiter` as given (see [`Settings::csv`]).
    pub delimiter: Option<String>,
    pub target: Option<String>,
    pub task: Option<Task>,
    pub features: Option<Vec<String>>,
    pub ignore: Vec<String>,
    pub scale: Scale,
    pub target_transform: TargetTransform,
    pub valid_fraction: f64,
    pub test_fraction: f64,
    pub test: Option<PathBuf>,
    pub hidden: Vec<usize>,
    /// `--layers` as given (parsed by [`stack::Stack::parse`]); replaces `hidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<String>,
    /// `--keep best` (the default when neither `--hidden` nor `--layers` is given):
    /// the run keeps the network without hidden layers when it validates better.
    #[serde(default)]
    pub keep_best: bool,
    /// `--class-weight`: weights of the classes in the training cost.
    #[serde(default)]
    pub class_weight: Option<ClassWeight>,
    pub activation: Activation,
    pub init: Init,
    /// `--loss` if given; else the task decides (see `run::prepare::plan`).
    pub loss: Option<Loss>,
    /// `--lr auto`: find the rate with a range test before training.
    pub lr_auto: bool,
    pub train: TrainConfig,
    /// `--threads` if given; else all cores of the machine it runs on.
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub metrics_json: Option<PathBuf>,
    pub dollars: Option<f64>,
    pub baseline: bool,
    pub quiet: bool,
    pub checkpoint_every: usize,
    /// The layer these settings were resolved from (flags over `--config` over the
    /// `--example` preset), before the defaults: what the run folder's `settings.toml`
    /// records (see [`Settings::given_toml`]).
    #[serde(default)]
    pub given: Options,
}

impl Settings {
    /// Resolves the command line's layer over the `--config` file (if any), the preset
    /// and the defaults.
    pub fn resolve(flags: Options, config: Option<&Path>) -> Result<Settings> {
        let mut o = match config {
            Some(path) => flags.over(Options::from_toml(path)?),
            None => flags,
        };
        examples::apply(&mut o)?;
        Settings::from_options(o)
    }

    /// Fills in the defaults and checks every value.
    pub fn from_options(o: Options) -> Result<Settings> {
        let given = o.clone();
        let train = train_config(&o)?;
        let threads = match o.threads {
            Some(0) => bail!("invalid --threads 0: use at least one thread"),
            t => t,
        };
        let checkpoint_every = o.checkpoint_every.unwrap_or(1);
        if checkpoint_every == 0 {
            bail!("invalid --checkpoint-every 0: checkpoint every N >= 1 epochs");
        }
        crate::input::csv_options(o.delimiter.as_deref())?;
        if let Some(text) = &o.layers {
            stack::Stack::parse(text)?;
            if o.hidden.is_some() {
                bail!("--layers and --hidden both describe the network; give one of them");
            }
        }
        let activation = o.activation.unwrap_or(Activation::Relu);
        if activation == Activation::Softmax {
            bail!("invalid --activation softmax: softmax is for the output layer, which classification sets up itself; pick relu, tanh, ...");
        }
        let keep_best = match o.keep {
            Some(k) => k == Keep::Best,
            None => o.hidden.is_none() && o.layers.is_none(),
        };
        Ok(Settings {
            batch_default: o.batch_size.is_none(),
            decay_default: o.weight_decay.is_none()
                && o.hidden.is_none()
                && o.layers.is_none()
                && o.optimizer.unwrap_or(OptimizerKind::Adamw) == OptimizerKind::Adamw,
            delimiter: o.delimiter,
            data: o.data,
            example: o.example,
            target: o.target,
            task: o.task,
            features: o.features,
            ignore: o.ignore.unwrap_or_default(),
            scale: o.scale.unwrap_or_default(),
            target_transform: o.target_transform.unwrap_or_default(),
            valid_fraction: o.valid_fraction.unwrap_or(0.1),
            test_fraction: if o.test.is_some() {
                0.0
            } else {
                o.test_fraction.unwrap_or(0.2)
            },
            test: o.test,
            hidden: o.hidden.unwrap_or_else(|| vec![256, 256, 128]),
            keep_best,
            class_weight: o.class_weight,
            layers: o.layers,
            activation,
            init: o.init.unwrap_or_default(),
            loss: o.loss,
            lr_auto: o.lr == Some(Lr::Auto),
            train,
            threads,
            out: o.out,
            metrics_json: o.metrics_json,
            dollars: o.dollars_per_unit,
            baseline: !o.no_baseline,
            quiet: o.quiet,
            checkpoint_every,
            given,
        })
    }

    /// The settings a run was given, as a `--config` file that trains the same model
    /// again (`backprop train --config RUN/settings.toml`): the knobs set by flags, the
    /// config file or the preset, with file paths absolute; what was left to the
    /// defaults stays unset, so data-dependent defaults are chosen the same way. The
    /// output folder, the metrics file and `--quiet` are left out (they change no model).
    pub fn given_toml(&self) -> Result<String> {
        let o = Options {
            out: None,
            metrics_json: None,
            quiet: false,
            ..self.absolute()?.given
        };
        let body = toml::to_string(&o).context("cannot write the settings as TOML")?;
        Ok(format!(
            "# The settings this run was given (flags over --config over --example); every\n\
             # other knob had its default. Train the same model again with\n\
             #   backprop train --config settings.toml\n{body}"
        ))
    }

    /// The CSV reading options `--delimiter` gives.
    pub fn csv(&self) -> Result<CsvOptions> {
        crate::input::csv_options(self.delimiter.as_deref())
    }

    /// Threads for the matrix products.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The same settings with every file path absolute (relative to the current
    /// folder), as a checkpoint keeps them: `--resume` works from any folder.
    pub fn absolute(&self) -> Result<Settings> {
        let abs = |p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
            match p {
                Some(p) if p.as_path() != Path::new("-") => Ok(Some(
                    std::path::absolute(p).with_context(|| format!("{}", p.display()))?,
                )),
                other => Ok(other.clone()),
            }
        };
        Ok(Settings {
            data: abs(&self.data)?,
            test: abs(&self.test)?,
            out: abs(&self.out)?,
            metrics_json: abs(&self.metrics_json)?,
            given: Options {
                data: abs(&self.given.data)?,
                test: abs(&self.given.test)?,
                out: abs(&self.given.out)?,
                metrics_json: abs(&self.given.metrics_json)?,
                ..self.given.clone()
            },
            ..self.clone()
        })
    }
}

/// The training configuration the layer gives (the loss and small-data batch are
/// settled later, once the data is read).
fn train_config(o: &Options) -> Result<TrainConfig> {
    let optimizer_kind = o.optimizer.unwrap_or(OptimizerKind::Adamw);
    let momentum = o.momentum.unwrap_or(match optimizer_kind {
        OptimizerKind::Sgd | OptimizerKind::Nesterov => 0.9,
        _ => 0.0,
    });
    if o.momentum.is_some()
        && matches!(optimizer_kind, OptimizerKind::Adam | OptimizerKind::Adamw)
        && !o.quiet
    {
        eprintln!(
            "warning: {} does not use --momentum (it keeps its own moving average of the gradient, beta1 = 0.9); pass --optimizer sgd, nesterov or rmsprop for momentum",
            flag_value(&optimizer_kind)
        );
    }
    let epochs = o.epochs.unwrap_or(60);
    if epochs == 0 {
        bail!("invalid --epochs 0: train for at least one epoch");
    }
    let lr = match o.lr {
        Some(Lr::Rate(v)) => v,
        _ => 0.02,
    };
    if !(lr > 0.0 && lr.is_finite()) {
        bail!("invalid --lr {lr}: the learning rate must be a positive number such as 0.001");
    }
    let weight_decay = o
        .weight_decay
        .unwrap_or(if optimizer_kind == OptimizerKind::Adamw {
            DEFAULT_DECAY
        } else {
            0.0
        });
    let train = TrainConfig {
        epochs,
        batch_size: o.batch_size.unwrap_or(Batch::Rows(256)).into(),
        shuffle: true,
        loss: o.loss.unwrap_or_default(),
        optimizer: optimizer_kind.build(momentum, weight_decay),
        lr,
        schedule: schedule(o.schedule.unwrap_or(ScheduleKind::OneCycle), epochs),
        clip_norm: o.clip_norm,
        patience: o.patience.unwrap_or(0),
        seed: o.seed.unwrap_or(42),
        record_steps: true,
    };
    train.validate()?;
    Ok(train)
}

impl From<Batch> for BatchSize {
    fn from(b: Batch) -> BatchSize {
        match b {
            Batch::Rows(n) => BatchSize::Mini(n),
            Batch::Full => BatchSize::Full,
        }
    }
}

/// The schedule `--schedule` names, with its settings for a run of `epochs`.
pub fn schedule(kind: ScheduleKind, epochs: usize) -> Schedule {
    match kind {
        ScheduleKind::Constant => Schedule::Constant,
        ScheduleKind::Step => Schedule::Step {
            every: (epochs / 4).max(1),
            gamma: 0.5,
        },
        ScheduleKind::Exponential => Schedule::Exponential { gamma: 0.95 },
        ScheduleKind::Cosine => Schedule::Cosine { min_lr: 0.0 },
        ScheduleKind::OneCycle => Schedule::OneCycle { pct_start: 0.3 },
        ScheduleKind::Plateau => Schedule::Plateau {
            factor: 0.1,
            patience: 5,
            min_lr: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    /// Reports and `inspect` name a schedule by `Schedule::name`: the value `--schedule`
    /// takes for it.
    #[test]
    fn schedule_names_are_the_command_line_values() {
        for &kind in ScheduleKind::value_variants() {
            assert_eq!(schedule(kind, 60).name(), flag_value(&kind));
        }
    }

    #[test]
    fn a_higher_layer_wins_and_switches_add_up() {
        let flags = Options {
            epochs: Some(3),
            quiet: true,
            ..Options::default()
        };
        let file: Options = toml::from_str(
            "epochs = 9\nhidden = \"4,2\"\nbatch-size = \"full\"\nlr = 0.5\nno-baseline = true",
        )
        .unwrap();
        let o = flags.over(file);
        assert_eq!(o.epochs, Some(3));
        assert_eq!(o.hidden, Some(vec![4, 2]));
        assert_eq!(o.batch_size, Some(Batch::Full));
        assert_eq!(o.lr, Some(Lr::Rate(0.5)));
        assert!(o.quiet && o.no_baseline);
        assert_eq!(
            o.given(),
            [
                "--batch-size",
                "--epochs",
                "--hidden",
                "--lr",
                "--no-baseline",
                "--quiet"
            ]
        );
    }

    #[test]
    fn settings_survive_a_round_trip_through_json() {
        let s = Settings::from_options(Options {
            hidden: Some(vec![8]),
            batch_size: Some(Batch::Rows(32)),
            lr: Some(Lr::Rate(0.003)),
            data: Some("d.csv".into()),
            ..Options::default()
        })
        .unwrap();
        let back: Settings = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(back.absolute().unwrap().data.unwrap().is_absolute());
    }
}
