//! Reading data and turning it into the matrices a network learns from.

mod blocks;
pub mod cells;
pub mod collective;
pub mod csv;
mod fit;
pub mod identifier;
pub mod idx;
pub mod prep;
mod records;
pub mod scale;
pub mod split;
