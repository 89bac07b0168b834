//! From settings to training rows: read the table (under `mpirun`, only this rank's
//! shard), pick the target and feature columns, split, fit the preprocessing on the
//! training rows and encode every split; then plan the network and the training
//! configuration the data allows.

use std::path::Path;

use anyhow::{bail, Context, Result};
use backprop::data::collective::Collective;
use backprop::data::csv::{CsvOptions, CsvSource, Table};
use backprop::data::identifier::identifier_like;
use backprop::data::prep::{
    detect_task_with, Feature, PrepOptions, PrepReport, Preprocessor, Target, Task, MAX_CATEGORIES,
    MIN_CATEGORY_ROWS, OTHER_CATEGORY,
};
use backprop::data::split::{split_rows, Split};
use backprop::{Activation, BatchSize, Dataset, Loss, NetworkConfig, TrainConfig};

use crate::input::{self, CALIFORNIA_DOLLARS, CALIFORNIA_TARGET};
use crate::settings::{
    default_decay, examples, Example, Settings, DEFAULT_DECAY, SMALL_DATA_BATCH, SMALL_DATA_ROWS,
};

/// Everything prepared from the data before training.
pub struct Prepared {
    /// Name of the data, for the run folder and the report.
    pub name: String,
    pub prep: Preprocessor,
    pub train: Dataset,
    pub valid: Option<Dataset>,
    pub test: Dataset,
    /// Dollars per unit of the target, for the summary.
    pub dollars: Option<f64>,
    /// The shape of each input row as an image, for image data.
    pub image: Option<backprop::layer::Image>,
}

/// The table this process reads, with its split when it was read as a shard.
struct Read {
    table: Table,
    split: Option<Split>,
    default_target: Option<&'static str>,
    dollars: Option<f64>,
}

/// Reads, splits and encodes the data the settings name.
pub fn prepare(s: &Settings) -> Result<Prepared> {
    if let Some(dir) = s
        .data
        .as_deref()
        .filter(|p| crate::images::is_image_folder(p))
    {
        let d = crate::images::load_folder(dir, s.scale.kind(), s.valid_fraction, s.train.seed)?;
        return image_prepared(s, dir, d);
    }
    if let Some(dir) = s
        .data
        .as_deref()
        .filter(|p| crate::image_folder::is_folder(p))
    {
        let d = crate::image_folder::load(&crate::image_folder::Load {
            dir,
            test: s.test.as_deref(),
            scale: s.scale.kind(),
            valid_fraction: s.valid_fraction,
            test_fraction: s.test_fraction,
            seed: s.train.seed,
            quiet: s.quiet,
        })?;
        return image_prepared(s, dir, d);
    }
    let mut collective = crate::cluster::collective();
    let c = &mut *collective;
    let read = if crate::cluster::size() > 1 {
        read_shard(s, c)?
    } else {
        read_whole(s)?
    };
    encode(s, read, c)
}

/// The prepared data of an image folder, named after the folder. Under mpirun, each
/// rank has read only its shard (see images.rs and image_folder).
fn image_prepared(s: &Settings, dir: &Path, d: crate::images::ImageData) -> Result<Prepared> {
    let name = std::path::absolute(dir)?
        .file_name()
        .map_or("images".to_string(), |n| n.to_string_lossy().into_owned());
    let mut p = Prepared {
        name,
        prep: d.prep,
        train: d.train,
        valid: d.valid,
        test: d.test,
        dollars: None,
        image: Some(d.shape),
    };
    weigh_classes(s, &mut p, &mut *crate::cluster::collective())?;
    Ok(p)
}

/// Splits and encodes a table already in memory (the Python package's `fit`), whose
/// column `target` is the one to predict, exactly as [`prepare`] does a file's; `name`
/// names the data in the run folder.
pub fn prepare_table(s: &Settings, table: Table, target: &str, name: &str) -> Result<Prepared> {
    let read = Read {
        table,
        split: None,
        default_target: None,
        dollars: None,
    };
    let s = Settings {
        target: Some(target.to_string()),
        ..s.clone()
    };
    let mut p = encode(&s, read, &mut *crate::cluster::collective())?;
    p.name = name.to_string();
    Ok(p)
}

/// One process parses the whole table.
fn read_whole(s: &Settings) -> Result<Read> {
    let digits = s.example == Some(Example::Digits);
    let (table, default_target, dollars) = match &s.data {
        Some(p) => (input::read_table(p, s.csv()?)?, None, s.dollars),
        None if digits => (examples::digits()?, Some(examples::DIGITS_TARGET), None),
        None => (
            input::california()?,
            Some(CALIFORNIA_TARGET),
            s.dollars.or(Some(CALIFORNIA_DOLLARS)),
        ),
    };
    Ok(Read {
        table,
        split: None,
        default_target,
        dollars,
    })
}

/// Under mpirun each rank streams the CSV twice: once to count its rows (so every rank
/// computes the same split), then keeping only its own shard of the training,
/// validation and test rows (see cluster.rs).
fn read_shard(s: &Settings, c: &mut dyn Collective) -> Result<Read> {
    let csv = s.csv()?;
    let (src, default_target, dollars) = match &s.data {
        Some(p) if p == Path::new("-") => bail!("under mpirun the data must be a file that every rank can read: --data - (standard input) is not supported"),
        Some(p) => (CsvSource::File(p), None, s.dollars),
        None if s.example == Some(Example::Digits) => (
            CsvSource::Bytes {
                name: Path::new(examples::DIGITS_NAME),
                bytes: examples::DIGITS,
            },
            Some(examples::DIGITS_TARGET),
            None,
        ),
        None => (
            CsvSource::Bytes {
                name: Path::new(input::CALIFORNIA_NAME),
                bytes: input::CALIFORNIA,
            },
            Some(CALIFORNIA_TARGET),
            s.dollars.or(Some(CALIFORNIA_DOLLARS)),
        ),
    };
    if let CsvSource::File(p) = src {
        if !p.exists() {
            bail!("{}: no such file; check the path", p.display());
        }
    }
    let n = Table::count_rows(src, csv)?;
    let split = split_rows(n, s.valid_fraction, s.test_fraction, s.train.seed)
        .with_context(|| src.name().display().to_string())?;
    let own = crate::cluster::shard_split(split);
    let mut keep: Vec<usize> = [&own.train, &own.valid, &own.test]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    keep.sort_unstable();
    let table = Table::read_rows(src, csv, &keep, c)?;
    // Rows of the shard's table are `keep` in file order.
    let local = |rows: &[usize]| -> Vec<usize> {
        rows.iter()
            .map(|r| keep.binary_search(r).expect("kept above"))
            .collect()
    };
    let split = Split {
        train: local(&own.train),
        valid: local(&own.valid),
        test: local(&own.test),
    };
    Ok(Read {
        table,
        split: Some(split),
        default_target,
        dollars,
    })
}

/// The target column's name and index, and the feature columns.
fn columns(
    s: &Settings,
    table: &Table,
    default_target: Option<&str>,
) -> Result<(String, usize, Vec<usize>)> {
    let target_name = match (&s.target, default_target) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.to_string(),
        (None, None) => bail!(
            "{}: name the column to predict with --target COLUMN (columns: {})",
            table.source.display(),
            table.headers.join(", ")
        ),
    };
    let target = table.require_column(&target_name, "target")?;
    let mut features: Vec<usize> = match &s.features {
        Some(names) => names
            .iter()
            .map(|n| table.require_column(n, "feature"))
            .collect::<Result<_, _>>()?,
        None => (0..table.headers.len()).filter(|&j| j != target).collect(),
    };
    for n in &s.ignore {
        let j = table.require_column(n, "--ignore")?;
        features.retain(|&f| f != j);
    }
    if s.features.is_none() && crate::cluster::size() == 1 {
        // Under mpirun each rank sees only its shard and could judge differently, so
        // identifiers are left out in one process only (name the features there).
        features.retain(|&j| match identifier_like(&table.columns[j]) {
            Some((distinct, present)) => {
                if !s.quiet {
                    eprintln!(
                        "note: text column `{}` has {distinct} distinct values in {present} rows: it names rows rather than describing them, so it is left out (list it in --features to use it)",
                        table.headers[j]
                    );
                }
                false
            }
            None => true,
        });
    }
    if features.contains(&target) {
        bail!("the target `{target_name}` cannot also be a feature; leave it out of --features");
    }
    if features.is_empty() {
        bail!(
            "{}: no feature columns are left to learn from; check --features / --ignore",
            table.source.display()
        );
    }
    Ok((target_name, target, features))
}

/// Splits the rows, fits the preprocessing on the training rows and encodes each split.
fn encode(s: &Settings, read: Read, c: &mut dyn Collective) -> Result<Prepared> {
    let Read {
        table,
        split,
        default_target,
        dollars,
    } = read;
    let (target_name, target, features) = columns(s, &table, default_target)?;
    let opts = PrepOptions {
        scale: s.scale.kind(),
        target_transform: s.target_transform,
        task: task(s, &table, target, &target_name, c),
    };
    let (split, has_valid, (prep, report)) = match split {
        Some(local) => {
            let has_valid = crate::cluster::totals([local.valid.len()])[0] > 0;
            let fitted = Preprocessor::fit_with(&table, &features, target, &local.train, &opts, c)?;
            (local, has_valid, fitted)
        }
        None => {
            let split = split_rows(
                table.rows(),
                s.valid_fraction,
                s.test_fraction,
                s.train.seed,
            )
            .with_context(|| table.source.display().to_string())?;
            let fitted = Preprocessor::fit(&table, &features, target, &split.train, &opts)?;
            let has_valid = !split.valid.is_empty();
            (split, has_valid, fitted)
        }
    };
    if !s.quiet && !report.constant.is_empty() {
        eprintln!(
            "note: constant in the training rows (kept, but they carry no information): {}",
            report.constant.join(", ")
        );
    }
    // The splits of the table are encoded from the table itself, which is consumed
    // (freed column by column) so that it and the matrices do not both exist in full.
    let mut lists: Vec<&[usize]> = vec![&split.train];
    if has_valid {
        lists.push(&split.valid);
    }
    if s.test.is_none() {
        lists.push(&split.test);
    }
    let mut encoded = prep
        .transform_splits(table, &features, target, &lists)?
        .into_iter()
        .map(|(x, y, r)| Dataset::new(x, y).map(|d| (d, r)));
    let (train, r_train) = encoded.next().expect("train is always encoded")?;
    let valid = if has_valid {
        Some(encoded.next().expect("encoded above")?.0)
    } else {
        None
    };
    let (test, r_test) = match &s.test {
        Some(p) => test_file(s, p, &prep, &target_name, c)?,
        None => encoded.next().expect("encoded above")?,
    };
    notes(s, &prep, &r_train, &r_test, c);
    let mut p = Prepared {
        name: data_name(s),
        prep,
        train,
        valid,
        test,
        dollars,
        image: None,
    };
    weigh_classes(s, &mut p, c)?;
    Ok(p)
}

/// `--class-weight balanced`: scales each training row's one-hot target by the weight of
/// its class, `rows / (classes x rows of the class)` over every process (scikit-learn's
/// "balanced"), so that each class weighs the same in the cross-entropy the network
/// minimises: its gradient, `(Σ_j y_j) softmax(z) - y`, is then the weighted one.
/// Validation and test rows keep their plain targets, so early stopping, the model
/// choice and the metrics see the real log-loss.
fn weigh_classes(s: &Settings, p: &mut Prepared, c: &mut dyn Collective) -> Result<()> {
    if s.class_weight.is_none() {
        return Ok(());
    }
    let Target::Classification { classes, .. } = &p.prep.target else {
        bail!("--class-weight balanced weighs classes, and `{}` is a numeric target: leave it out, or pass --task classify if its values name classes", p.prep.target.name());
    };
    let k = classes.len();
    let y = &mut p.train.y;
    let mut counts = vec![0.0f64; k];
    for class in backprop::metrics::argmax_rows(y) {
        counts[class] += 1.0;
    }
    c.sum_f64(&mut counts);
    let rows: f64 = counts.iter().sum();
    let weights: Vec<f32> = counts
        .iter()
        .map(|&n| {
            if n > 0.0 {
                (rows / (k as f64 * n)) as f32
            } else {
                0.0
            }
        })
        .collect();
    for row in y.as_mut_slice().chunks_exact_mut(k) {
        for (v, w) in row.iter_mut().zip(&weights) {
            *v *= w;
        }
    }
    if !s.quiet {
        let list: Vec<String> = classes
            .iter()
            .zip(&weights)
            .map(|(class, w)| format!("{class} {w:.3}"))
            .collect();
        eprintln!(
            "note: class weights (--class-weight balanced): {}",
            list.join(", ")
        );
    }
    Ok(())
}

/// `--task`, or the task the target column's values suggest.
fn task(
    s: &Settings,
    table: &Table,
    target: usize,
    target_name: &str,
    c: &mut dyn Collective,
) -> Task {
    match s.task {
        Some(t) => t,
        None => {
            let t = detect_task_with(&table.columns[target], c);
            if t == Task::Classify && !s.quiet {
                eprintln!("note: the target `{target_name}` holds text or a few whole numbers, so this is classification (pass --task regress to override)");
            }
            t
        }
    }
}

/// The rows of `--test FILE` (under mpirun, this rank's shard of them), encoded.
fn test_file(
    s: &Settings,
    p: &Path,
    prep: &Preprocessor,
    target_name: &str,
    c: &mut dyn Collective,
) -> Result<(Dataset, PrepReport)> {
    let csv: CsvOptions = s.csv()?;
    let tt = if crate::cluster::size() > 1 {
        if p == Path::new("-") {
            bail!("under mpirun the test data must be a file that every rank can read: --test - (standard input) is not supported");
        }
        if !p.exists() {
            bail!("{}: no such file; check the path", p.display());
        }
        let src = CsvSource::File(p);
        let n = Table::count_rows(src, csv)?;
        let keep = crate::cluster::shard_rows(&(0..n).collect::<Vec<_>>());
        Table::read_rows(src, csv, &keep, c)?
    } else {
        input::read_table(p, csv)?
    };
    let cols = prep.locate_features(&tt)?;
    let tcol = tt.require_column(target_name, "target")?;
    let rows: Vec<usize> = (0..tt.rows()).collect();
    let (x, r) = prep.transform_features(&tt, &cols, &rows)?;
    let y = prep.transform_target(&tt, tcol, &rows)?;
    Ok((Dataset::new(x, y)?, r))
}

/// Notes on missing cells and unseen categories, counted over all ranks (rank 0 prints
/// them).
fn notes(
    s: &Settings,
    prep: &Preprocessor,
    train: &PrepReport,
    test: &PrepReport,
    c: &mut dyn Collective,
) {
    let names: Vec<String> = prep.features.iter().map(|f| f.name().to_string()).collect();
    let imputed = summed(c, &names, &train.imputed);
    let unseen = summed(c, &names, &test.unseen);
    if !s.quiet {
        for f in &prep.features {
            if let Feature::Categorical {
                name,
                categories,
                other: true,
            } = f
            {
                eprintln!("note: `{name}` has more than {MAX_CATEGORIES} categories in the training rows: the {} most frequent (at least {MIN_CATEGORY_ROWS} rows each) get an input, the rest share one `{OTHER_CATEGORY}` input", categories.len());
            }
        }
        for (name, n) in &imputed {
            eprintln!("note: {n} missing cell(s) in `{name}` of the training rows filled with the training median (numbers) or the category \"missing\" (text)");
        }
        for (name, n) in &unseen {
            eprintln!("warning: {n} test row(s) have a category of `{name}` not seen in training; encoded as all zeros");
        }
    }
}

/// The data's name: the file's stem, or that of the embedded data.
fn data_name(s: &Settings) -> String {
    let fallback = if s.example == Some(Example::Digits) {
        "digits"
    } else {
        "california_housing"
    };
    s.data
        .as_ref()
        .and_then(|p| p.file_stem())
        .map_or(fallback.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Per-column counts (`local`, by column name) summed over the ranks, for the columns
/// `names` (in that order), leaving out zeros. One process: `local` itself.
fn summed(
    c: &mut dyn Collective,
    names: &[String],
    local: &[(String, usize)],
) -> Vec<(String, usize)> {
    if c.is_alone() {
        return local.to_vec();
    }
    let mut counts: Vec<u64> = names
        .iter()
        .map(|n| {
            local
                .iter()
                .find(|(m, _)| m == n)
                .map_or(0, |&(_, k)| k as u64)
        })
        .collect();
    c.sum_u64(&mut counts);
    names
        .iter()
        .zip(counts)
        .filter(|&(_, k)| k > 0)
        .map(|(n, k)| (n.clone(), k as usize))
        .collect()
}

/// The network and training configuration for the prepared data: the loss that fits
/// the task (checked against `--loss`), and the batch size the data allows.
pub fn plan(s: &Settings, p: &Prepared, train_rows: usize) -> Result<(NetworkConfig, TrainConfig)> {
    let classify = matches!(p.prep.target, Target::Classification { .. });
    let loss = s.loss.unwrap_or(if classify {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    });
    if classify && loss != Loss::CrossEntropy {
        bail!("--loss {loss} does not fit classification: use --loss cross-entropy (or --task regress)");
    }
    if !classify && loss.takes_logits() {
        bail!("--loss {loss} is for classification; for a numeric target use mse, mae or huber (or pass --task classify)");
    }
    let mut config = s.train.clone();
    config.loss = loss;
    if s.batch_default && train_rows < SMALL_DATA_ROWS {
        // Batches of 256 would leave a small table only a few updates per epoch.
        config.batch_size = BatchSize::Mini(SMALL_DATA_BATCH);
        if !s.quiet {
            eprintln!("note: {train_rows} training rows: using batches of {SMALL_DATA_BATCH} (pass --batch-size to choose)");
        }
    }
    if s.decay_default && default_decay(train_rows) != DEFAULT_DECAY {
        let decay = default_decay(train_rows);
        config.optimizer = config.optimizer.with_weight_decay(decay);
        if !s.quiet {
            eprintln!("note: {train_rows} training rows: using weight decay {decay:.3} (pass --weight-decay to choose)");
        }
    }
    if let BatchSize::Mini(b) = config.batch_size {
        if b > train_rows {
            if !s.quiet {
                eprintln!("warning: --batch-size {b} is larger than the {train_rows} training rows; using full-batch gradient descent");
            }
            config.batch_size = BatchSize::Full;
        }
    }
    let (inputs, outputs) = (p.prep.input_width(), p.prep.target.width());
    let stack = match &s.layers {
        Some(text) => {
            crate::settings::stack::Stack::parse(text)?.build(inputs, p.image, outputs)?
        }
        None => Vec::new(),
    };
    let net = NetworkConfig {
        inputs,
        hidden: if stack.is_empty() {
            s.hidden.clone()
        } else {
            Vec::new()
        },
        outputs,
        activation: s.activation,
        output_activation: Activation::Identity,
        init: s.init,
        stack,
    };
    Ok((net, config))
}
