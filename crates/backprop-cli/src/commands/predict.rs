//! `backprop predict`: the input rows with the model's predictions added.

use anyhow::Result;
use backprop::model::Model;

use crate::args::PredictArgs;
use crate::run::predict::{predict, Predict};

/// Runs `backprop predict`.
pub fn run(a: PredictArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let p = Predict {
        data: &a.data,
        out: &a.out,
        delimiter: a.delimiter.as_deref(),
        chunk_rows: a.chunk_rows,
    };
    predict(&p, &model)
}
