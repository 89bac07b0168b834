//! Running a command's work: load the data, train (with checkpoints and `--resume`),
//! write the run folder. Below `commands` and `args`, above `report`: it calls the
//! renderers, never the other way round.

pub mod checkpoint;
pub mod evaluate;
pub mod fit;
pub mod folder;
pub mod guard;
pub mod predict;
pub mod prepare;
pub mod select;
pub mod train;
