//! Command-line flags, as the user types them: clap types only. Values are typed by
//! their parsers (`--hidden` is a `Vec<usize>`, `--batch-size` a `Batch`); `train`'s
//! flags become one layer of [`crate::settings::Options`]. A flag given twice takes the
//! last value (`args_override_self`), as in ripgrep and curl, so a script can append
//! overrides to a command line; list flags (`--features`, `--ignore`) add up.

mod explain;
mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use explain::{DescentArgs, ExplainArgs, ExplainCommand, LandscapeArgs, LrArgs};
pub use train::TrainArgs;

/// Feed-forward neural networks that learn by backpropagation, from a CSV file.
#[derive(Debug, Parser)]
#[command(
    name = "backprop",
    version,
    about,
    long_about = None,
    propagate_version = true,
    args_override_self = true
)]
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
    Explain(ExplainArgs),
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
