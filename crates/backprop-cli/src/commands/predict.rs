//! `backprop predict`: the input rows with the model's predictions added.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use backprop::data::csv::Column;
use backprop::data::prep::Target;
use backprop::model::{atomic_write, Model};

use crate::args::PredictArgs;
use crate::input;
use crate::summary::predict_units;

/// Runs `backprop predict`.
pub fn run(a: PredictArgs) -> Result<()> {
    let model = Model::load(&a.model)?;
    let opts = input::csv_options(a.delimiter.as_deref())?;
    if crate::images::is_image_source(&a.data) {
        return predict_images(&a, &model, opts);
    }
    let table = input::read_table(&a.data, opts)?;
    let prep = &model.meta.preprocessor;
    let cols = prep.locate_features(&table)?;
    let rows: Vec<usize> = (0..table.rows()).collect();
    let (x, report) = prep.transform_features(&table, &cols, &rows)?;
    for (name, n) in &report.unseen {
        eprintln!("warning: {n} row(s) have a category of `{name}` not seen in training; encoded as all zeros");
    }
    let pred = predict_units(&model.network, &prep.target, &x);

    let mut w = csv::WriterBuilder::new()
        .delimiter(opts.delimiter)
        .from_writer(Vec::new());
    let mut header = table.headers.clone();
    match &prep.target {
        Target::Regression { name, .. } => header.push(format!("{name}_predicted")),
        Target::Classification { name, classes } => {
            header.push(format!("{name}_predicted"));
            header.extend(classes.iter().map(|c| format!("p_{c}")));
        }
    }
    w.write_record(&header)?;
    for r in 0..table.rows() {
        let mut rec: Vec<String> = table.columns.iter().map(|c| cell(c, r)).collect();
        let p = pred.row(r);
        match &prep.target {
            Target::Regression { .. } => rec.push(p[0].to_string()),
            Target::Classification { classes, .. } => {
                let best = p
                    .iter()
                    .enumerate()
                    .fold(0, |b, (i, &v)| if v > p[b] { i } else { b });
                rec.push(classes[best].clone());
                rec.extend(p.iter().map(|v| v.to_string()));
            }
        }
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().context("cannot format the predictions")?;
    write_out(&a.out, &bytes, table.rows())
}

fn write_out(out: &Path, bytes: &[u8], rows: usize) -> Result<()> {
    if out == Path::new("-") {
        std::io::stdout()
            .lock()
            .write_all(bytes)
            .context("cannot write to standard output")?;
    } else {
        atomic_write(out, bytes)?;
        eprintln!("wrote {rows} predictions to {}", out.display());
    }
    Ok(())
}

/// Predictions for IDX images (a file, or a folder's test images): one row per image
/// with its 0-based index, the predicted class and the probability of every class.
fn predict_images(
    a: &PredictArgs,
    model: &Model,
    opts: backprop::data::csv::CsvOptions,
) -> Result<()> {
    let prep = &model.meta.preprocessor;
    let Target::Classification { name, classes } = &prep.target else {
        anyhow::bail!("{}: image data, but the model predicts a number; give it a CSV file like the one it was trained on", a.data.display());
    };
    let (images, _) = crate::images::read_for_model(&a.data)?;
    let x = crate::images::inputs_for_model(prep, &images, &a.data)?;
    let pred = predict_units(&model.network, &prep.target, &x);
    let mut w = csv::WriterBuilder::new()
        .delimiter(opts.delimiter)
        .from_writer(Vec::new());
    let mut header = vec!["image".to_string(), format!("{name}_predicted")];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header)?;
    for (i, best) in backprop::metrics::argmax_rows(&pred)
        .into_iter()
        .enumerate()
    {
        let mut rec = vec![i.to_string(), classes[best].clone()];
        rec.extend(pred.row(i).iter().map(|v| v.to_string()));
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().context("cannot format the predictions")?;
    write_out(&a.out, &bytes, images.count)
}

fn cell(c: &Column, r: usize) -> String {
    match c {
        Column::Numeric(v) if v[r].is_nan() => String::new(),
        Column::Numeric(v) => v[r].to_string(),
        Column::Text(v) => v[r].clone(),
    }
}
