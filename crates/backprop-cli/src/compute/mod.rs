//! The numbers behind `backprop explain`, computed with the library and returned as
//! plain values for `report::explain` to render: the learning-rate range test, gradient
//! descent on a brute-forced cost surface, and slices of a trained network's landscape
//! (with the training path `trajectory` records).

pub mod descent;
pub mod landscape;
pub mod lr;
pub mod trajectory;
