//! `backprop explain`: pictures of how a network learns, each an HTML page with inline
//! SVG charts plus the SVG files and a JSON file of the numbers behind them. Each
//! sub-command computes its numbers (`compute`), renders them (`report::explain`), prints
//! the text and writes the files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::args::{DescentArgs, ExplainArgs, ExplainCommand, LandscapeArgs, LrArgs};
use crate::compute;
use crate::report::explain::{self as render, Rendered};
use crate::settings::Settings;

/// Runs `backprop explain ...`.
pub fn run(a: ExplainArgs) -> Result<()> {
    match a.command {
        ExplainCommand::Descent(d) => descent(d),
        ExplainCommand::Landscape(l) => landscape(l),
        ExplainCommand::Lr(l) => lr(*l),
    }
}

fn descent(a: DescentArgs) -> Result<()> {
    let p = compute::descent::Params {
        feature: a.feature,
        grid: a.grid,
        steps: a.steps,
        seed: a.seed,
    };
    p.validate()?;
    let out = out_dir(a.out.as_deref(), "descent")?;
    let numbers = compute::descent::compute(&p)?;
    publish(&out, render::descent::render(&numbers)?)
}

fn landscape(a: LandscapeArgs) -> Result<()> {
    let p = compute::landscape::Params {
        model: a.model,
        data: a.data,
        delimiter: a.delimiter,
        split: a.split,
        rows: a.rows,
        points: a.points,
        grid: a.grid,
        span: a.span,
        seed: a.seed,
    };
    p.validate()?;
    let numbers = compute::landscape::compute(&p)?;
    let out = out_dir(a.out.as_deref(), "landscape")?;
    publish(&out, render::landscape::render(&numbers)?)
}

/// The range test on the training rows `backprop train` would use with these flags.
fn lr(a: LrArgs) -> Result<()> {
    if !(a.lr_min > 0.0 && a.lr_max > a.lr_min && a.lr_max.is_finite()) || a.steps < 10 {
        bail!("invalid range: need 0 < --lr-min < --lr-max and --steps of at least 10");
    }
    let dir = a.train.out.clone();
    let s = Settings::resolve(a.train.options(), a.train.config.as_deref())?;
    let p = crate::run::prepare::prepare(&s)?;
    let (net_config, config) = crate::run::prepare::plan(&s, &p, p.train.len())?;
    let out = out_dir(dir.as_deref(), "lr")?;
    let r = compute::lr::range_test(&net_config, &config, &p.train, a.lr_min, a.lr_max, a.steps)?;
    let view = render::lr::LrView {
        range: &r,
        config: &config,
        shape: crate::summary::shape(&net_config),
        batch: config.batch_size.rows(p.train.len()),
        lr_min: a.lr_min,
        lr_max: a.lr_max,
        steps: a.steps,
    };
    publish(&out, render::lr::render(&view)?)
}

/// Prints the page's text and writes its files.
fn publish(dir: &Path, page: Rendered) -> Result<()> {
    print!("{}", page.text);
    for (name, text) in &page.files {
        backprop::model::atomic_write(&dir.join(name), text.as_bytes())?;
    }
    eprintln!("wrote {}", dir.join("index.html").display());
    Ok(())
}

/// The output folder: `--out` or `runs/explain-<name>`, created.
fn out_dir(out: Option<&Path>, name: &str) -> Result<PathBuf> {
    let dir = out.map_or_else(
        || Path::new("runs").join(format!("explain-{name}")),
        Path::to_path_buf,
    );
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    Ok(dir)
}
