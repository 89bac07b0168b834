//! Command-line flags, as the user types them: clap types only. Values are typed by
//! their parsers (`--hidden` is a `Vec<usize>`, `--batch-size` a `Batch`); `train`'s
//! flags become one layer of [`crate::settings::Options`]. A flag given twice takes the
//! last value (`args_override_self`), as in ripgrep and curl, so a script can append
//! overrides to a command line; list flags (`--features`, `--ignore`) add up.

mod explain;
mod train;

use std::path::PathBuf;

use backprop::onnx::InputMode;
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Write a saved model, preprocessing included, as an ONNX file.
    Export(ExportArgs),
}

/// Formats `backprop export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// ONNX (opset 17, IR version 8): raw feature columns in, predictions out.
    #[default]
    Onnx,
}

/// Flags of `backprop export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Model folder written by `backprop train`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    pub format: Format,
    /// Where to write the file [default: DIR/model.onnx].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Graph inputs: one per feature column (`columns`, named after it), one `[N, F]`
    /// float tensor `pixels` (`pixels`, for image models), or chosen by the model
    /// (`auto`).
    #[arg(long, value_enum, default_value_t = InputMode::Auto)]
    pub inputs: InputMode,
}

/// Flags of `backprop evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model folder written by `backprop train`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Labelled CSV file (with the target column); for a model trained on images, a
    /// folder of MNIST IDX files (its t10k test set is evaluated) or of PNG/JPEG images
    /// in one sub-folder per class.
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
    /// on images, an IDX image file (gzipped or not), a PNG/JPEG file, or a folder of
    /// them (in it or its sub-folders).
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
