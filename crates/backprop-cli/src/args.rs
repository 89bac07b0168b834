//! Command-line flags, as the user types them. Validated into settings by the commands.

use std::path::PathBuf;

use backprop::data::prep::{ScaleKind, TargetTransform, Task};
use backprop::{Activation, Init, Loss, OptimizerKind};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// A flag's value as it is typed on the command line (`adamw`, `log`, `valid`), for
/// messages.
pub fn flag_value(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_owned())
}

/// Feed-forward neural networks that learn by backpropagation, from a CSV file.
#[derive(Debug, Parser)]
#[command(name = "backprop", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a network (default: house prices from the embedded California data).
    Train(Box<TrainArgs>),
    /// Print a saved model's metrics on new labelled data.
    Evaluate(EvaluateArgs),
    /// Add the model's predictions to the rows of a CSV file.
    Predict(PredictArgs),
    /// Describe a saved model.
    Inspect(InspectArgs),
    /// Pictures of how a network learns: cost surfaces, gradient descent, learning rates.
    Explain(crate::commands::explain::ExplainArgs),
    /// Write a saved model, preprocessing included, as an ONNX file.
    Export(crate::commands::export::ExportArgs),
}

/// Learning-rate schedules on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleArg {
    /// The same rate throughout.
    Constant,
    /// Halve the rate every quarter of the epochs.
    Step,
    /// Multiply the rate by 0.95 every epoch.
    Exponential,
    /// Cosine annealing to zero over the epochs.
    Cosine,
    /// One-cycle: warm up over 30% of the steps, then anneal.
    OneCycle,
    /// Divide the rate by 10 when the validation loss stalls for 5 epochs.
    Plateau,
}

/// Flags of `backprop train`. Every knob may also come from a TOML file (`--config`),
/// whose keys are the flag names (e.g. `lr = 0.001`, `hidden = "64,64"`); flags given
/// on the command line win.
#[derive(Debug, Args, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainArgs {
    /// CSV file to learn from, or a folder holding the four MNIST IDX files (default:
    /// the embedded California housing data).
    #[arg(long, value_name = "FILE|DIR")]
    pub data: Option<PathBuf>,
    /// Train on a data set that ships with backprop, with its documented settings
    /// (flags given still win): mnist (data/mnist) or digits (embedded).
    #[arg(long, value_enum, value_name = "NAME")]
    pub example: Option<crate::examples::Example>,
    /// Column to predict (default for the embedded data: MedHouseVal).
    #[arg(long, value_name = "COLUMN")]
    pub target: Option<String>,
    /// Regression or classification (default: detected from the target column).
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// Use only these feature columns (comma-separated).
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Leave these columns out (comma-separated).
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub ignore: Option<Vec<String>>,
    /// Field separator of the CSV file: a single character, or `tab`.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Scaling of numeric features, fitted on the training rows [default: quantile].
    #[arg(long, value_enum)]
    pub scale: Option<ScaleKind>,
    /// Transformation of a regression target [default: none].
    #[arg(long, value_enum)]
    pub target_transform: Option<TargetTransform>,
    /// Share of rows held out for validation [default: 0.1].
    #[arg(long, value_name = "F")]
    pub valid_fraction: Option<f64>,
    /// Share of rows held out for testing, unless --test is given [default: 0.2].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// A separate CSV file to test on (then no test rows are taken from --data).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Hidden layer widths, e.g. `256,256,128`; empty (`--hidden ""`) for none, which
    /// makes the network linear (or logistic) regression [default: 256,256,128].
    #[arg(long, value_name = "WIDTHS")]
    pub hidden: Option<String>,
    /// Activation of the hidden layers [default: relu].
    #[arg(long, value_enum)]
    pub activation: Option<Activation>,
    /// Cost function [default: mse for regression, cross-entropy for classification].
    #[arg(long, value_enum)]
    pub loss: Option<Loss>,
    /// Update rule [default: adamw].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate, or `auto` to pick it with a learning-rate range test on the
    /// training rows (see `backprop explain lr`) [default: 0.02].
    #[arg(long, value_name = "RATE|auto", allow_negative_numbers = true)]
    pub lr: Option<LrArg>,
    /// Momentum for sgd, nesterov and rmsprop [default: 0.9 for sgd/nesterov, 0 for rmsprop].
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub momentum: Option<f32>,
    /// Weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw) [default: 0.2 for
    /// adamw, where it is multiplied by the learning rate; 0 for the others].
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// Observations per update: a number (1 = online SGD) or `full`; a number larger
    /// than the training rows means full batch, with a warning [default: 256, or 16
    /// when the training split has fewer than 2,560 rows].
    #[arg(long, value_name = "N|full")]
    pub batch_size: Option<String>,
    /// Passes over the training data [default: 60].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Learning-rate schedule [default: one-cycle].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Clip the gradient's global norm to this value.
    #[arg(long, value_name = "NORM", allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
    /// Stop when the validation loss has not improved for N epochs, keeping the best
    /// weights (0 = off) [default: 0].
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Weight initialisation [default: auto: He for ReLU-like, Xavier otherwise].
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// Seed of all randomness (split, initialisation, shuffling) [default: 42].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Threads for the matrix products [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Run folder to write [default: runs/<data name>, numbered if it exists].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the final metrics as one JSON object to this file.
    #[arg(long, value_name = "FILE")]
    pub metrics_json: Option<PathBuf>,
    /// Dollars per unit of the target, for the dollar column of the summary (the
    /// embedded data is in $100,000s).
    #[arg(long, value_name = "X")]
    pub dollars_per_unit: Option<f64>,
    /// Skip the no-hidden-layer baseline.
    #[arg(long)]
    #[serde(default)]
    pub no_baseline: bool,
    /// Print only the final summary.
    #[arg(long, short)]
    #[serde(default)]
    pub quiet: bool,
    /// Read defaults for these flags from a TOML file.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Write a checkpoint into the run folder every N epochs (and before the first);
    /// `--resume` continues from the last one [default: 1].
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Continue the run in DIR from its last checkpoint, with the data and settings it
    /// started with; ends with the weights an uninterrupted run would have.
    #[arg(long, value_name = "DIR")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Test hook (hidden): after the checkpoint of epoch N is written, wait there until
    /// Ctrl-C or SIGTERM (or a kill), so a test can stop a run at a known epoch whatever
    /// the machine's speed.
    #[arg(long, value_name = "N", hide = true)]
    #[serde(skip)]
    pub pause_after_epoch: Option<usize>,
}

/// Flags of `backprop evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model folder written by `backprop train`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Labelled CSV file (with the target column); for a model trained on images, a
    /// folder of MNIST IDX files (its t10k test set is evaluated).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Field separator: a single character, or `tab`.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Rows read, scored and written at a time (memory stays constant whatever the
    /// file's size); a multiple of 4,096 gives the same bytes as any other.
    #[arg(long, value_name = "N", default_value_t = crate::input::CHUNK_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), hide = true)]
    pub chunk_rows: usize,
}

/// Flags of `backprop predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model folder written by `backprop train`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// CSV file with the feature columns (`-` for standard input); for a model trained
    /// on images, an IDX image file (gzipped or not).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Where to write the rows with predictions (`-` for standard output) [default: -].
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,
    /// Field separator: a single character, or `tab`.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Rows read, scored and written at a time (memory stays constant whatever the
    /// file's size); a multiple of 4,096 gives the same bytes as any other.
    #[arg(long, value_name = "N", default_value_t = crate::input::CHUNK_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), hide = true)]
    pub chunk_rows: usize,
}

/// Flags of `backprop inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Model folder written by `backprop train`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
}

/// `--lr`: a rate, or `auto` for the range test's suggestion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrArg {
    /// Find the rate with a learning-rate range test.
    Auto,
    /// This rate.
    Value(f32),
}

impl std::str::FromStr for LrArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(LrArg::Auto),
            t => t
                .parse()
                .map(LrArg::Value)
                .map_err(|_| format!("expected a number such as 0.001, or `auto`, got `{s}`")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for LrArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Ok(LrArg::Value(v)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}
