//! The `backprop` command as a library: the binary (`main.rs`) parses the flags and
//! dispatches to `commands`; the Python package (`python/`) binds the layers below it
//! (`settings`, `run`, `compute`) without the argument parser.
//!
//! Everything the command-line user sees is printed in this crate, never in the library.
//! The modules are layers, each importing only those below it (checked by `tests/architecture.rs`):
//!
//! - `commands`: one thin module per sub-command, wiring the layers below;
//! - `args`: the flags, clap types only, which give a layer of settings;
//! - `run`: loads the data, trains (with checkpoints and `--resume`), writes a run folder;
//! - `report`: renders numbers as text, JSON, SVG and HTML (run reports, `explain` pages);
//! - `compute`: the numbers behind `explain` (range test, descent paths, landscapes);
//! - `settings`: defaults, `--config` files and `--example` presets, resolved into
//!   validated, serialisable [`settings::Settings`];
//! - helpers at the bottom: `input`, `images`, `image_folder`, `cluster` (MPI), `interrupt`, `errors`, ...

pub mod args;
pub mod cluster;
pub mod commands;
pub mod compute;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod errors;
pub mod image_folder;
pub mod images;
pub mod input;
pub mod interrupt;
pub mod pause;
pub mod progress;
pub mod report;
pub mod run;
pub mod settings;
pub mod summary;
