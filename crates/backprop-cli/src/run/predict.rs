//! `backprop predict`'s run: the input rows with the model's predictions added, read,
//! scored and written a chunk at a time.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use backprop::data::csv::{Column, Table};
use backprop::data::prep::Target;
use backprop::model::{atomic_write, Model};

use crate::input;
use crate::summary::predict_units;

/// Where `backprop predict` reads and writes.
pub struct Predict<'a> {
    /// CSV file (`-` for standard input), IDX images, or PNG/JPEG images.
    pub data: &'a Path,
    /// Where to write (`-` for standard output).
    pub out: &'a Path,
    /// `--delimiter` as given.
    pub delimiter: Option<&'a str>,
    /// Rows read, scored and written at a time.
    pub chunk_rows: usize,
}

/// Writes the rows of `a.data` with `model`'s predictions to `a.out`.
///
/// A CSV file is read twice: a survey checks every row and types the columns as a
/// whole-file read would, so bad input is refused before anything is written; then
/// chunks of `--chunk-rows` rows are encoded, scored and written one after another, so
/// memory stays the same whatever the file's size (see BENCHMARKS.md, "Memory").
pub fn predict(a: &Predict, model: &Model) -> Result<()> {
    let opts = input::csv_options(a.delimiter)?;
    if crate::images::is_image_source(a.data) {
        return predict_images(a, model, opts);
    }
    if crate::image_folder::is_folder(a.data) || crate::image_folder::is_image_file(a.data) {
        return predict_image_files(a, model, opts);
    }
    let data = input::CsvInput::open(a.data)?;
    let src = data.source();
    let survey = Table::survey(src, opts)?;
    let prep = &model.meta.preprocessor;
    let cols = prep.locate_in_survey(&survey)?;
    let mut chunks = survey.chunks(src, opts, a.chunk_rows)?;

    let mut w = csv::WriterBuilder::new()
        .delimiter(opts.delimiter)
        .from_writer(input::Output::create(a.out)?);
    let mut header = survey.headers.clone();
    match &prep.target {
        Target::Regression { name, .. } => header.push(format!("{name}_predicted")),
        Target::Classification { name, classes } => {
            header.push(format!("{name}_predicted"));
            header.extend(classes.iter().map(|c| format!("p_{c}")));
        }
    }
    w.write_record(&header)?;
    let mut unseen: Vec<(String, usize)> = Vec::new();
    let mut rows = 0;
    let mut rec: Vec<String> = Vec::new();
    while let Some(table) = chunks.next_chunk()? {
        let all: Vec<usize> = (0..table.rows()).collect();
        let (x, report) = prep.transform_features(&table, &cols, &all)?;
        add_counts(&mut unseen, &report.unseen);
        let pred = predict_units(&model.network, &prep.target, &x);
        for r in 0..table.rows() {
            rec.clear();
            rec.extend(table.columns.iter().map(|c| cell(c, r)));
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
        rows += table.rows();
    }
    // In feature order, as one whole-file report lists them.
    unseen.sort_by_key(|(n, _)| prep.features.iter().position(|f| f.name() == n));
    for (name, n) in &unseen {
        eprintln!("warning: {n} row(s) have a category of `{name}` not seen in training; encoded as all zeros");
    }
    let out = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the predictions: {}", e.error()))?;
    out.finish()?;
    if a.out != Path::new("-") {
        eprintln!("wrote {rows} predictions to {}", a.out.display());
    }
    Ok(())
}

/// Adds per-column counts `more` into `total` (by name, first-seen order).
pub fn add_counts(total: &mut Vec<(String, usize)>, more: &[(String, usize)]) {
    for (name, n) in more {
        match total.iter_mut().find(|(t, _)| t == name) {
            Some((_, m)) => *m += n,
            None => total.push((name.clone(), *n)),
        }
    }
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
fn predict_images(a: &Predict, model: &Model, opts: backprop::data::csv::CsvOptions) -> Result<()> {
    let prep = &model.meta.preprocessor;
    let Target::Classification { name, classes } = &prep.target else {
        anyhow::bail!("{}: image data, but the model predicts a number; give it a CSV file like the one it was trained on", a.data.display());
    };
    let (images, _) = crate::images::read_for_model(a.data)?;
    let x = crate::images::inputs_for_model(prep, &images, a.data)?;
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
    write_out(a.out, &bytes, images.count)
}

/// Predictions for PNG/JPEG images (a file, or a folder's images at any depth): one row
/// per image with its name (its path within the folder), the predicted class and the
/// probability of every class. Every image's size is checked before anything is
/// written; then the images are decoded, scored and written a chunk at a time.
fn predict_image_files(
    a: &Predict,
    model: &Model,
    opts: backprop::data::csv::CsvOptions,
) -> Result<()> {
    let prep = &model.meta.preprocessor;
    let files = crate::image_folder::files_to_predict(a.data)?;
    let paths: Vec<_> = files.iter().map(|(p, _)| p.clone()).collect();
    let classes = crate::image_folder::check_for_model(prep, &paths, a.data)?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(opts.delimiter)
        .from_writer(input::Output::create(a.out)?);
    let mut header = vec![
        "image".to_string(),
        format!("{}_predicted", prep.target.name()),
    ];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header)?;
    for (chunk, names) in paths
        .chunks(a.chunk_rows.max(1))
        .zip(files.chunks(a.chunk_rows.max(1)))
    {
        let x = crate::image_folder::inputs_for_model(prep, chunk)?;
        let pred = predict_units(&model.network, &prep.target, &x);
        for (i, best) in backprop::metrics::argmax_rows(&pred)
            .into_iter()
            .enumerate()
        {
            let mut rec = vec![names[i].1.clone(), classes[best].clone()];
            rec.extend(pred.row(i).iter().map(|v| v.to_string()));
            w.write_record(&rec)?;
        }
    }
    let out = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the predictions: {}", e.error()))?;
    out.finish()?;
    if a.out != Path::new("-") {
        eprintln!("wrote {} predictions to {}", files.len(), a.out.display());
    }
    Ok(())
}

fn cell(c: &Column, r: usize) -> String {
    match c {
        Column::Numeric(v) if v.get(r).is_nan() => String::new(),
        Column::Numeric(v) => v.get(r).to_string(),
        Column::Text(v) => v[r].clone(),
    }
}
