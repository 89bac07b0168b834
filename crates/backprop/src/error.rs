//! The library's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the library, with enough structure for the CLI to
/// name the file, line and column and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed value in a CSV (or other tabular) file.
    #[error("{path}:{line}:{column}: {reason}")]
    Csv {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: u64,
        /// 1-based column number (0 when the whole line is at fault).
        column: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A malformed file other than CSV (IDX, model files, ...).
    #[error("{path}: {reason}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation that detected it.
        op: &'static str,
        /// The shape it expected.
        expected: String,
        /// The shape it got.
        got: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The offending field, named as the user knows it.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The loss or a gradient became NaN or infinite during training.
    #[error(
        "training diverged at epoch {epoch}, step {step}: the {what} became {value}; \
         try a smaller learning rate (--lr) or gradient clipping (--clip-norm)"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// "loss" or "gradient".
        what: &'static str,
        /// The offending value.
        value: f32,
    },
    /// A saved model does not fit what it is used with.
    #[error("incompatible model: found {found}, expected {expected}")]
    IncompatibleModel {
        /// What the model file holds.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// Optimizer state that does not fit the optimizer or the network it would update
    /// (another rule's buffers, a missing or short buffer, a non-finite moment).
    #[error("optimizer state does not fit: found {found}, expected {expected}")]
    IncompatibleState {
        /// What the state holds.
        found: String,
        /// What the optimizer and the network need.
        expected: String,
    },
    /// A model cannot be exported (to ONNX), or its export cannot be encoded.
    #[error("cannot export the model: {reason}")]
    Export {
        /// What is wrong and what to do.
        reason: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::InvalidConfig`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
