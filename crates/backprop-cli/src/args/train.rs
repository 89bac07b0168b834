//! Flags of `backprop train`, and their layer of settings.

use std::path::PathBuf;

use backprop::data::prep::{TargetTransform, Task};
use backprop::{Activation, Init, Loss, OptimizerKind};
use clap::Args;

use crate::settings::{
    parse_widths, Batch, ClassWeight, Example, Keep, Lr, Options, Scale, ScheduleKind,
};

/// Flags of `backprop train`. Every knob may also come from a TOML file (`--config`),
/// whose keys are the flag names (e.g. `lr = 0.001`, `hidden = "64,64"`); flags given
/// on the command line win.
#[derive(Debug, Args, Default)]
pub struct TrainArgs {
    /// CSV file to learn from, a folder holding the four MNIST IDX files, or a folder of
    /// PNG/JPEG images with one sub-folder per class (default: the embedded California
    /// housing data).
    #[arg(long, value_name = "FILE|DIR")]
    pub data: Option<PathBuf>,
    /// Train on a data set that ships with backprop, with its documented settings
    /// (flags given still win): mnist (data/mnist) or digits (embedded).
    #[arg(long, value_enum, value_name = "NAME")]
    pub example: Option<Example>,
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
    /// Scaling of numeric features, fitted on the training rows [default: select:
    /// quantile and standard both tried, the one that validates better kept].
    #[arg(long, value_enum)]
    pub scale: Option<Scale>,
    /// Transformation of a regression target [default: none].
    #[arg(long, value_enum)]
    pub target_transform: Option<TargetTransform>,
    /// Share of rows held out for validation [default: 0.1].
    #[arg(long, value_name = "F")]
    pub valid_fraction: Option<f64>,
    /// Share of rows held out for testing, unless --test is given [default: 0.2].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// A separate CSV file (or image folder) to test on (then no test rows are taken
    /// from --data).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Hidden layer widths, e.g. `256,256,128`; empty (`--hidden ""`) for none, which
    /// makes the network linear (or logistic) regression [default: 256,256,128].
    #[arg(long, value_name = "WIDTHS", value_parser = parse_widths)]
    pub hidden: Option<::std::vec::Vec<usize>>,
    /// The network layer by layer, instead of --hidden, e.g. `conv 32 3x3 pad 1,
    /// relu, maxpool 2, flatten, dense 128 relu, dense 10` (grammar: README, "Layers").
    #[arg(long, value_name = "SPEC")]
    pub layers: Option<String>,
    /// Which model the run folder keeps: `best` keeps the network without hidden
    /// layers (trained beside it) when it validates better; `network` always the
    /// network [default: best, or network when --hidden or --layers is given].
    #[arg(long, value_enum)]
    pub keep: Option<Keep>,
    /// Weigh classes in the training cost: `balanced` makes every class weigh the same
    /// in total (for imbalanced classes) [default: every row the same].
    #[arg(long, value_enum)]
    pub class_weight: Option<ClassWeight>,
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
    pub lr: Option<Lr>,
    /// Momentum for sgd, nesterov and rmsprop [default: 0.9 for sgd/nesterov, 0 for rmsprop].
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub momentum: Option<f32>,
    /// Weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw) [default: 0.2 for
    /// adamw, where it is multiplied by the learning rate, growing as sqrt(10,000 / rows)
    /// up to 2 for the default network on fewer than 10,000 training rows; 0 for the
    /// others].
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// Observations per update: a number (1 = online SGD) or `full`; a number larger
    /// than the training rows means full batch, with a warning [default: 256, or 16
    /// when the training split has fewer than 2,560 rows].
    #[arg(long, value_name = "N|full")]
    pub batch_size: Option<Batch>,
    /// Passes over the training data [default: 60].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Learning-rate schedule [default: one-cycle].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleKind>,
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
    pub no_baseline: bool,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Read defaults for these flags from a TOML file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write a checkpoint into the run folder every N epochs (and before the first);
    /// `--resume` continues from the last one [default: 1].
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Continue the run in DIR from its last checkpoint, with the data and settings it
    /// started with; ends with the weights an uninterrupted run would have.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Test hook (hidden): after the checkpoint of epoch N is written, wait there until
    /// Ctrl-C or SIGTERM (or a kill), so a test can stop a run at a known epoch whatever
    /// the machine's speed.
    #[arg(long, value_name = "N", hide = true)]
    pub pause_after_epoch: Option<usize>,
}

impl TrainArgs {
    /// The layer of settings these flags give (over `--config`, the preset and the
    /// defaults).
    pub fn options(&self) -> Options {
        Options {
            data: self.data.clone(),
            example: self.example,
            target: self.target.clone(),
            task: self.task,
            features: self.features.clone(),
            ignore: self.ignore.clone(),
            delimiter: self.delimiter.clone(),
            scale: self.scale,
            target_transform: self.target_transform,
            valid_fraction: self.valid_fraction,
            test_fraction: self.test_fraction,
            test: self.test.clone(),
            hidden: self.hidden.clone(),
            layers: self.layers.clone(),
            keep: self.keep,
            class_weight: self.class_weight,
            activation: self.activation,
            loss: self.loss,
            optimizer: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            epochs: self.epochs,
            schedule: self.schedule,
            clip_norm: self.clip_norm,
            patience: self.patience,
            init: self.init,
            seed: self.seed,
            threads: self.threads,
            out: self.out.clone(),
            metrics_json: self.metrics_json.clone(),
            dollars_per_unit: self.dollars_per_unit,
            checkpoint_every: self.checkpoint_every,
            no_baseline: self.no_baseline,
            quiet: self.quiet,
        }
    }
}
