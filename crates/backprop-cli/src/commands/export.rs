//! `backprop export`: a saved model as a self-contained ONNX file, preprocessing
//! included, for ONNX Runtime and the other runtimes that read ONNX.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use backprop::model::Model;
use backprop::onnx::{self, InputMode};
use clap::{Args, ValueEnum};

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

/// Runs `backprop export`.
pub fn run(a: ExportArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let out = a.out.unwrap_or_else(|| a.model.join("model.onnx"));
    let start = Instant::now();
    match a.format {
        Format::Onnx => onnx::save(&model, a.inputs, &out)?,
    }
    let sig = onnx::signature(&model, a.inputs)?;
    let bytes = std::fs::metadata(&out).map_or(0, |m| m.len());
    eprintln!(
        "wrote {} ({bytes} bytes, {} input(s), outputs {}) in {:.0} ms",
        out.display(),
        sig.inputs.len(),
        sig.outputs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
