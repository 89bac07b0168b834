//! Flags of `backprop explain` and its pictures.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::TrainArgs;
use crate::compute::landscape::SplitArg;

/// Flags of `backprop explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Which picture.
    #[command(subcommand)]
    pub command: ExplainCommand,
}

/// The pictures.
#[derive(Debug, Subcommand)]
pub enum ExplainCommand {
    /// Gradient descent on a cost surface found by brute force: one- and two-weight
    /// linear models of house prices, good and bad learning rates, full-batch vs
    /// mini-batch vs online updates.
    Descent(DescentArgs),
    /// The cost of a trained network along random filter-normalised directions through
    /// its weights (Li et al. 2018), and its training path.
    Landscape(LandscapeArgs),
    /// Learning-rate range test (Smith 2017): cost while the rate grows exponentially,
    /// and a suggested rate. Takes the data and network flags of `train`.
    Lr(Box<LrArgs>),
}

/// Flags of `backprop explain descent`.
#[derive(Debug, Args)]
pub struct DescentArgs {
    /// Feature of the embedded California data to predict the price from.
    #[arg(long, default_value = "MedInc", value_name = "COLUMN")]
    pub feature: String,
    /// Grid points per weight of the brute-force search.
    #[arg(long, default_value_t = 81, value_name = "N")]
    pub grid: usize,
    /// Gradient-descent updates per path.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub steps: usize,
    /// Seed of the shuffling of mini-batch and online paths.
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// Folder to write [default: runs/explain-descent].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Flags of `backprop explain landscape`.
#[derive(Debug, Args)]
pub struct LandscapeArgs {
    /// Run (model) folder written by `backprop train`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The CSV file the model was trained on (default: the embedded California data,
    /// when the model predicts MedHouseVal).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Field separator of the CSV file: a single character, or `tab`.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Rows to evaluate the cost on (the run's split is rebuilt from its seed).
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,
    /// Use at most this many rows of the split (0 = all); the cost is evaluated
    /// once per grid point, so this sets the run time.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub rows: usize,
    /// Points along each one-dimensional direction (odd, so 0 is one of them).
    #[arg(long, default_value_t = 41, value_name = "N")]
    pub points: usize,
    /// Grid points per axis of the two-dimensional maps.
    #[arg(long, default_value_t = 21, value_name = "N")]
    pub grid: usize,
    /// Largest step along a direction, in units of the filter-normalised direction
    /// (1 = as far again as the weights' own norm).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub span: f64,
    /// Seed of the random directions.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Folder to write [default: runs/explain-landscape].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Flags of `backprop explain lr`: the range test's own, then every flag of `train`
/// (data, network, optimizer, batch size; `--out` names the output folder).
#[derive(Debug, Args)]
pub struct LrArgs {
    /// Smallest learning rate tried.
    #[arg(long, default_value_t = 1e-6, value_name = "RATE")]
    pub lr_min: f32,
    /// Largest learning rate tried.
    #[arg(long, default_value_t = 1.0, value_name = "RATE")]
    pub lr_max: f32,
    /// Updates, one per rate, the rate growing by the same factor each time.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub steps: usize,
    /// Data, network and optimizer, as for `backprop train`.
    #[command(flatten)]
    pub train: TrainArgs,
}
