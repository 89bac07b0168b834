//! One module per sub-command.

pub mod evaluate;
pub mod explain;
pub mod export;
pub mod inspect;
pub mod predict;
pub mod train;
