//! `backprop export`: a saved model as a self-contained ONNX file, preprocessing
//! included, for ONNX Runtime and the other runtimes that read ONNX.

use std::time::Instant;

use anyhow::Result;
use backprop::model::Model;
use backprop::onnx;

use crate::args::{ExportArgs, Format};

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
