//! `backprop train`: flags -> validated settings -> the library's trainer -> a run folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use backprop::data::collective::Collective;
use backprop::data::csv::{CsvOptions, CsvSource, Table};
use backprop::data::prep::{
    detect_task_with, identifier_like, PrepOptions, Preprocessor, ScaleKind, Target,
    TargetTransform, Task,
};
use backprop::data::split::{split_rows, Split};
use backprop::model::{atomic_write, Model};
use backprop::optim::Schedule;
use backprop::{
    Activation, BatchSize, Callback, Dataset, History, Init, Loss, Matrix, Network, NetworkConfig,
    OptimizerKind, PartialEpoch, TrainConfig, TrainState, Trainer,
};
use serde_json::json;

use crate::args::{LrArg, ScheduleArg, TrainArgs};
use crate::input::{self, CALIFORNIA_DOLLARS, CALIFORNIA_TARGET};
use crate::progress::Progress;
use crate::report::trajectory::Recorder;
use crate::summary::{predict_units, regression_table, target_units, RegressionMetrics};

/// Below this many training rows the default batch is [`SMALL_DATA_BATCH`] rows, not 256.
const SMALL_DATA_ROWS: usize = 2560;
/// The default batch size for small tables.
const SMALL_DATA_BATCH: usize = 16;

/// Below this many training rows the default network's AdamW weight decay grows from
/// [`DEFAULT_DECAY`] as `sqrt(DECAY_ROWS / rows)`, up to [`MAX_DEFAULT_DECAY`]: the fewer
/// the rows, the more a 100,000-parameter network must be held back from fitting their
/// noise. On the development tables of `bench/tabular.py` (BENCHMARKS.md, Q1) this took
/// the 442-row diabetes table from test RMSE 70.1 to 60.0 and 546 house prices from
/// 19,420 to 17,060; at 10,000 rows and more (California) nothing changes.
const DECAY_ROWS: f64 = 10_000.0;
/// The default AdamW weight decay from [`DECAY_ROWS`] training rows up.
const DEFAULT_DECAY: f32 = 0.2;
/// The largest default weight decay (about 100 training rows).
const MAX_DEFAULT_DECAY: f32 = 2.0;

/// The default AdamW weight decay for `rows` training rows.
pub fn default_decay(rows: usize) -> f32 {
    let grow = (DECAY_ROWS / rows.max(1) as f64).sqrt().max(1.0) as f32;
    (DEFAULT_DECAY * grow).min(MAX_DEFAULT_DECAY)
}

/// Validated settings of a training run.
#[derive(Debug)]
pub struct Settings {
    /// `--batch-size` was not given: small data sets then get smaller batches.
    batch_default: bool,
    /// AdamW, the default network and no `--weight-decay`: the decay follows the number
    /// of training rows.
    decay_default: bool,
    data: Option<PathBuf>,
    csv: CsvOptions,
    target: Option<String>,
    task: Option<Task>,
    features: Option<Vec<String>>,
    ignore: Vec<String>,
    prep_scale: ScaleKind,
    target_transform: TargetTransform,
    valid_fraction: f64,
    test_fraction: f64,
    test: Option<PathBuf>,
    hidden: Vec<usize>,
    activation: Activation,
    init: Init,
    loss: Option<Loss>,
    train: TrainConfig,
    threads: usize,
    out: Option<PathBuf>,
    metrics_json: Option<PathBuf>,
    dollars: Option<f64>,
    baseline: bool,
    quiet: bool,
    lr_auto: bool,
    example: Option<crate::examples::Example>,
}

/// Merges flags over the `--config` TOML file (flags win).
fn merge_config(cli: TrainArgs) -> Result<TrainArgs> {
    let Some(path) = &cli.config else {
        return Ok(cli);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let file: TrainArgs = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " ")))?;
    macro_rules! merge { ($($f:ident),*) => { TrainArgs { $($f: cli.$f.or(file.$f),)* no_baseline: cli.no_baseline || file.no_baseline, quiet: cli.quiet || file.quiet, config: cli.config.clone(), resume: cli.resume.clone(), pause_after_epoch: cli.pause_after_epoch } } }
    Ok(merge!(
        data,
        target,
        task,
        features,
        ignore,
        delimiter,
        scale,
        target_transform,
        valid_fraction,
        test_fraction,
        test,
        hidden,
        activation,
        loss,
        optimizer,
        lr,
        momentum,
        weight_decay,
        batch_size,
        epochs,
        schedule,
        clip_norm,
        patience,
        init,
        seed,
        threads,
        out,
        metrics_json,
        dollars_per_unit,
        checkpoint_every,
        example
    ))
}

/// Parses `--hidden`: comma-separated positive widths, or empty for none.
pub fn parse_hidden(s: &str) -> Result<Vec<usize>> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(0) => bail!("invalid --hidden `{s}`: a layer of 0 units; use --hidden \"\" for no hidden layer"),
            Ok(n) => Ok(n),
            Err(_) => bail!("invalid --hidden `{s}`: expected comma-separated layer widths such as 64,64 (or \"\" for none)"),
        })
        .collect()
}

fn parse_batch(s: &str) -> Result<BatchSize> {
    match s.trim() {
        "full" => Ok(BatchSize::Full),
        t => match t.parse::<usize>() {
            Ok(0) | Err(_) => {
                bail!("invalid --batch-size `{s}`: expected a positive number of rows, or `full`")
            }
            Ok(n) => Ok(BatchSize::Mini(n)),
        },
    }
}

impl Settings {
    /// Validates raw flags.
    pub fn from_args(a: TrainArgs) -> Result<Settings> {
        let optimizer_kind = a.optimizer.unwrap_or(OptimizerKind::Adamw);
        let momentum = a.momentum.unwrap_or(match optimizer_kind {
            OptimizerKind::Sgd | OptimizerKind::Nesterov => 0.9,
            _ => 0.0,
        });
        if a.momentum.is_some()
            && matches!(optimizer_kind, OptimizerKind::Adam | OptimizerKind::Adamw)
            && !a.quiet
        {
            eprintln!(
                "warning: {} does not use --momentum (it keeps its own moving average of the gradient, beta1 = 0.9); pass --optimizer sgd, nesterov or rmsprop for momentum",
                crate::args::flag_value(&optimizer_kind)
            );
        }
        let epochs = a.epochs.unwrap_or(60);
        if epochs == 0 {
            bail!("invalid --epochs 0: train for at least one epoch");
        }
        let lr_auto = a.lr == Some(LrArg::Auto);
        let lr = match a.lr {
            Some(LrArg::Value(v)) => v,
            _ => 0.02,
        };
        if !(lr > 0.0 && lr.is_finite()) {
            bail!("invalid --lr {lr}: the learning rate must be a positive number such as 0.001");
        }
        let schedule = schedule(a.schedule.unwrap_or(ScheduleArg::OneCycle), epochs);
        let train = TrainConfig {
            epochs,
            batch_size: parse_batch(a.batch_size.as_deref().unwrap_or("256"))?,
            shuffle: true,
            loss: a.loss.unwrap_or_default(),
            optimizer: optimizer_kind.build(
                momentum,
                a.weight_decay
                    .unwrap_or(if optimizer_kind == OptimizerKind::Adamw {
                        DEFAULT_DECAY
                    } else {
                        0.0
                    }),
            ),
            lr,
            schedule,
            clip_norm: a.clip_norm,
            patience: a.patience.unwrap_or(0),
            seed: a.seed.unwrap_or(42),
            record_steps: true,
        };
        train.validate()?;
        let threads = match a.threads {
            Some(0) => bail!("invalid --threads 0: use at least one thread"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let s = Settings {
            batch_default: a.batch_size.is_none(),
            decay_default: a.weight_decay.is_none()
                && a.hidden.is_none()
                && optimizer_kind == OptimizerKind::Adamw,
            csv: input::csv_options(a.delimiter.as_deref())?,
            data: a.data,
            target: a.target,
            task: a.task,
            features: a.features,
            ignore: a.ignore.unwrap_or_default(),
            prep_scale: a.scale.unwrap_or(ScaleKind::Quantile),
            target_transform: a.target_transform.unwrap_or_default(),
            valid_fraction: a.valid_fraction.unwrap_or(0.1),
            test_fraction: if a.test.is_some() {
                0.0
            } else {
                a.test_fraction.unwrap_or(0.2)
            },
            test: a.test,
            hidden: parse_hidden(a.hidden.as_deref().unwrap_or("256,256,128"))?,
            activation: a.activation.unwrap_or(Activation::Relu),
            init: a.init.unwrap_or_default(),
            loss: a.loss,
            train,
            threads,
            out: a.out,
            metrics_json: a.metrics_json,
            dollars: a.dollars_per_unit,
            baseline: !a.no_baseline,
            quiet: a.quiet,
            lr_auto,
            example: a.example,
        };
        if s.activation == Activation::Softmax {
            bail!("invalid --activation softmax: softmax is for the output layer, which classification sets up itself; pick relu, tanh, ...");
        }
        Ok(s)
    }
}

/// Runs `backprop train`.
pub fn run(args: TrainArgs) -> Result<()> {
    // Under mpirun: one process per rank, only rank 0 talks (see cluster.rs).
    let _cluster = crate::cluster::start()?;
    // From this command line, never from a resumed run's saved flags.
    crate::pause::set(args.pause_after_epoch);
    crate::cluster::abort_on_error(run_rank(args))
}

fn run_rank(args: TrainArgs) -> Result<()> {
    let (args, resume) = crate::checkpoint::resume_args(args)?;
    let mut args = merge_config(args)?;
    crate::examples::apply(&mut args)?;
    args.quiet |= !crate::cluster::is_root();
    let mut run = crate::checkpoint::Run::new(&args, resume)?;
    if !crate::cluster::is_root() {
        run.read_only();
    }
    let s = Settings::from_args(args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(s.threads)
        .build()
        .context("cannot start the thread pool")?;
    pool.install(|| train(&s, &mut run))
}

/// The network shape, training configuration and training rows that `backprop train`
/// would use with these flags (for `backprop explain lr`).
pub fn setup(args: TrainArgs) -> Result<(NetworkConfig, TrainConfig, Dataset)> {
    let mut args = merge_config(args)?;
    crate::examples::apply(&mut args)?;
    let s = Settings::from_args(args)?;
    let p = prepare(&s)?;
    let (net, config) = plan(&s, &p, p.train.len())?;
    Ok((net, config, p.train))
}

/// Everything prepared from the data before training.
struct Prepared {
    name: String,
    prep: Preprocessor,
    train: Dataset,
    valid: Option<Dataset>,
    test: Dataset,
    dollars: Option<f64>,
}

fn prepare(s: &Settings) -> Result<Prepared> {
    if let Some(dir) = s
        .data
        .as_deref()
        .filter(|p| crate::images::is_image_folder(p))
    {
        let d = crate::images::load_folder(dir, s.prep_scale, s.valid_fraction, s.train.seed)?;
        let name = std::path::absolute(dir)?
            .file_name()
            .map_or("images".to_string(), |n| n.to_string_lossy().into_owned());
        // Under mpirun, each rank has read only its shard (see images.rs).
        return Ok(Prepared {
            name,
            prep: d.prep,
            train: d.train,
            valid: d.valid,
            test: d.test,
            dollars: None,
        });
    }
    let digits = s.example == Some(crate::examples::Example::Digits);
    let mut collective = crate::cluster::collective();
    let c = &mut *collective;
    // One process parses the whole table. Under mpirun each rank streams the CSV twice:
    // once to count its rows (so every rank computes the same split), then keeping only
    // its own shard of the training, validation and test rows (see cluster.rs).
    let sharded = crate::cluster::size() > 1;
    let (table, split, default_target, dollars) = if sharded {
        let (src, default_target, dollars) = match &s.data {
            Some(p) if p == Path::new("-") => bail!("under mpirun the data must be a file that every rank can read: --data - (standard input) is not supported"),
            Some(p) => (CsvSource::File(p), None, s.dollars),
            None if digits => (
                CsvSource::Bytes {
                    name: Path::new(crate::examples::DIGITS_NAME),
                    bytes: crate::examples::DIGITS,
                },
                Some(crate::examples::DIGITS_TARGET),
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
        let n = Table::count_rows(src, s.csv)?;
        let split = split_rows(n, s.valid_fraction, s.test_fraction, s.train.seed)
            .with_context(|| src.name().display().to_string())?;
        let own = crate::cluster::shard_split(split);
        let mut keep: Vec<usize> = [&own.train, &own.valid, &own.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        keep.sort_unstable();
        let table = Table::read_rows(src, s.csv, &keep, c)?;
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
        (table, Some(split), default_target, dollars)
    } else {
        match &s.data {
            Some(p) => (input::read_table(p, s.csv)?, None, None, s.dollars),
            None if digits => (
                crate::examples::digits()?,
                None,
                Some(crate::examples::DIGITS_TARGET),
                None,
            ),
            None => (
                input::california()?,
                None,
                Some(CALIFORNIA_TARGET),
                s.dollars.or(Some(CALIFORNIA_DOLLARS)),
            ),
        }
    };
    let target_name = match (&s.target, default_target) {
        (Some(t), _) => t.as_str(),
        (None, Some(t)) => t,
        (None, None) => bail!(
            "{}: name the column to predict with --target COLUMN (columns: {})",
            table.source.display(),
            table.headers.join(", ")
        ),
    };
    let target = table.require_column(target_name, "target")?;
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
            Some((distinct, present)) if j != target => {
                if !s.quiet {
                    eprintln!(
                        "note: text column `{}` has {distinct} distinct values in {present} rows: it names rows rather than describing them, so it is left out (list it in --features to use it)",
                        table.headers[j]
                    );
                }
                false
            }
            _ => true,
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
    let task = match s.task {
        Some(t) => t,
        None => {
            let t = detect_task_with(&table.columns[target], c);
            if t == Task::Classify && !s.quiet {
                eprintln!("note: the target `{target_name}` holds text or a few whole numbers, so this is classification (pass --task regress to override)");
            }
            t
        }
    };
    let opts = PrepOptions {
        scale: s.prep_scale,
        target_transform: s.target_transform,
        task,
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
    let build = |t: &Table,
                 feature_cols: &[usize],
                 target_col: usize,
                 rows: &[usize]|
     -> Result<(Dataset, backprop::data::prep::PrepReport)> {
        let (x, r) = prep.transform_features(t, feature_cols, rows)?;
        let y = prep.transform_target(t, target_col, rows)?;
        Ok((Dataset::new(x, y)?, r))
    };
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
        Some(p) if crate::cluster::size() > 1 => {
            if p == Path::new("-") {
                bail!("under mpirun the test data must be a file that every rank can read: --test - (standard input) is not supported");
            }
            if !p.exists() {
                bail!("{}: no such file; check the path", p.display());
            }
            let src = CsvSource::File(p);
            let n = Table::count_rows(src, s.csv)?;
            let keep = crate::cluster::shard_rows(&(0..n).collect::<Vec<_>>());
            let tt = Table::read_rows(src, s.csv, &keep, c)?;
            let cols = prep.locate_features(&tt)?;
            let tcol = tt.require_column(target_name, "target")?;
            build(&tt, &cols, tcol, &(0..tt.rows()).collect::<Vec<_>>())?
        }
        Some(p) => {
            let tt = input::read_table(p, s.csv)?;
            let cols = prep.locate_features(&tt)?;
            let tcol = tt.require_column(target_name, "target")?;
            build(&tt, &cols, tcol, &(0..tt.rows()).collect::<Vec<_>>())?
        }
        None => encoded.next().expect("encoded above")?,
    };
    // Counts over all ranks for the notes below (rank 0 prints them).
    let names: Vec<String> = prep.features.iter().map(|f| f.name().to_string()).collect();
    let r_train_imputed = summed(c, &names, &r_train.imputed);
    let r_test_unseen = summed(c, &names, &r_test.unseen);
    if !s.quiet {
        for (name, n) in &r_train_imputed {
            eprintln!("note: {n} missing cell(s) in `{name}` of the training rows filled with the training median (numbers) or the category \"missing\" (text)");
        }
        for (name, n) in &r_test_unseen {
            eprintln!("warning: {n} test row(s) have a category of `{name}` not seen in training; encoded as all zeros");
        }
    }
    let fallback = if digits {
        "digits"
    } else {
        "california_housing"
    };
    let name = s
        .data
        .as_ref()
        .and_then(|p| p.file_stem())
        .map_or(fallback.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Prepared {
        name,
        prep,
        train,
        valid,
        test,
        dollars,
    })
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
fn plan(s: &Settings, p: &Prepared, train_rows: usize) -> Result<(NetworkConfig, TrainConfig)> {
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
    let net = NetworkConfig {
        inputs: p.prep.input_width(),
        hidden: s.hidden.clone(),
        outputs: p.prep.target.width(),
        activation: s.activation,
        output_activation: Activation::Identity,
        init: s.init,
    };
    Ok((net, config))
}

fn train(s: &Settings, run: &mut crate::checkpoint::Run) -> Result<()> {
    let p = prepare(s)?;
    let [train_rows, valid_rows, test_rows] = crate::cluster::totals([
        p.train.len(),
        p.valid.as_ref().map_or(0, Dataset::len),
        p.test.len(),
    ]);
    let (net_config, mut config) = plan(s, &p, train_rows)?;
    let classify = matches!(p.prep.target, Target::Classification { .. });
    let loss = config.loss;
    if valid_rows == 0 && !s.quiet {
        // The trainer is handed no validation set (never an empty one, whose loss
        // would be NaN): say what that turns off.
        if config.patience > 0 {
            eprintln!("warning: --patience {} needs validation rows and there are none (--valid-fraction {}): training runs every epoch without early stopping; pass --valid-fraction 0.1 for early stopping", config.patience, s.valid_fraction);
        }
        if matches!(config.schedule, Schedule::Plateau { .. }) {
            eprintln!("note: no validation rows: the plateau schedule watches the training loss");
        }
    }
    if s.lr_auto && crate::cluster::size() > 1 {
        bail!("--lr auto is not available under mpirun with more than one rank; find the rate with `backprop explain lr` in one process and pass --lr");
    }
    let lr_note = if s.lr_auto {
        let (lr, note) = super::explain::lr::auto(&net_config, &config, &p.train)?;
        if !s.quiet {
            eprintln!("{note}");
        }
        config.lr = lr;
        Some(note)
    } else {
        None
    };
    let out_dir = run_dir(s.out.as_deref(), &p.name)?;
    run.claim(&out_dir)?;
    if !s.quiet {
        eprintln!(
            "training {} network ({} parameters) on {} rows, validating on {}, testing on {}: {} {} lr {} batch {} for {}, {} thread(s)",
            shape(&net_config),
            net_config.layers().iter().map(|l| l.num_params()).sum::<usize>(),
            train_rows,
            valid_rows,
            test_rows,
            config.loss,
            config.optimizer.name(),
            config.lr,
            config.batch_size,
            epochs(config.epochs),
            s.threads
        );
    }
    let mut path = None;
    if crate::cluster::size() == 1 {
        // Under mpirun, Ctrl-C goes to mpirun, which ends every rank; resume from the
        // last checkpoint.
        crate::interrupt::install();
    }
    let (net, history, seconds, partial) = fit(
        &net_config,
        &config,
        &p,
        "network ",
        s.quiet,
        Some(&mut path),
        Some(run),
    )?;
    let baseline = if s.baseline && !crate::interrupt::requested() {
        let cfg = NetworkConfig {
            hidden: Vec::new(),
            ..net_config.clone()
        };
        // Plain linear (or logistic) regression: a few weights a feature need no decay,
        // and decay would make the comparison unfair to the linear model.
        let base = TrainConfig {
            optimizer: config.optimizer.with_weight_decay(0.0),
            ..config.clone()
        };
        Some(fit(&cfg, &base, &p, "baseline", s.quiet, None, None)?)
    } else {
        None
    };

    // Every rank predicts its own validation and test rows; under mpirun rank 0 gathers
    // the predictions and targets (a few numbers per row, not the features) and alone
    // computes the metrics and writes.
    let target = &p.prep.target;
    let score = |net: &Network, d: &Dataset| Scored::gather(net, target, d);
    let test_scored = score(&net, &p.test);
    let valid_scored = p.valid.as_ref().map(|v| score(&net, v));
    let base_scored = baseline
        .as_ref()
        .map(|(n, _, _, _)| (score(n, &p.test), p.valid.as_ref().map(|v| score(n, v))));
    if !crate::cluster::is_root() {
        return Ok(());
    }
    let model = Model::new(net, p.prep.clone(), config.clone());
    let eval = |s: &Scored| s.metrics(target);
    let test = eval(&test_scored);
    let valid = valid_scored.as_ref().map(eval);
    let base_test = base_scored.as_ref().map(|(t, _)| eval(t));
    let base_valid = base_scored.as_ref().and_then(|(_, v)| v.as_ref().map(eval));
    let metrics = json!({
        "task": if classify { "classify" } else { "regress" },
        "target": p.prep.target.name(),
        "test": test,
        "valid": valid,
        "baseline": { "hidden": [], "test": base_test, "valid": base_valid, "train_seconds": baseline.as_ref().map(|b| b.2) },
        "epochs_run": history.epochs.len(),
        // Ctrl-C within an epoch: the weights are those after this many of its steps;
        // the epoch is in no count or record above.
        "interrupted_epoch": partial.as_ref().map(|p| json!({
            "epoch": history.epochs.len() + 1,
            "steps_done": p.steps_done,
            "steps": p.steps,
        })),
        "best_epoch": history.best_epoch,
        "train_seconds": seconds,
        "rows": { "train": train_rows, "valid": valid_rows, "test": test_rows },
        "architecture": shape(&net_config),
        "parameters": model.network.num_params(),
        "seed": config.seed,
        "threads": s.threads,
    });

    model.save(&out_dir)?;
    let metrics_text = serde_json::to_string_pretty(&metrics)?;
    atomic_write(&out_dir.join("metrics.json"), metrics_text.as_bytes())?;
    atomic_write(
        &out_dir.join("history.csv"),
        history_csv(&history).as_bytes(),
    )?;
    crate::plot::loss_curve(&history, loss.name(), &out_dir.join("loss_curve.svg"))?;
    if let Some(rec) = &path {
        let split = crate::report::trajectory::SplitInfo {
            valid_fraction: s.valid_fraction,
            test_fraction: s.test_fraction,
        };
        crate::report::trajectory::save(&out_dir, rec, model.network.params(), &split)?;
        let report = crate::report::RunReport {
            name: &p.name,
            net_config: &net_config,
            train_config: &config,
            history: &history,
            initial: &rec.initial,
            network: &model.network,
            target: &p.prep.target,
            test_pred: &test_scored.pred,
            test_y: &test_scored.y,
            train_rows,
            metrics: &metrics,
            baseline: baseline.as_ref().map(|b| &b.1),
            partial: partial.as_ref(),
            dollars: p.dollars,
            lr_note,
        };
        crate::report::write(&out_dir, &report)?;
    }
    if let Some(path) = &s.metrics_json {
        atomic_write(path, metrics_text.as_bytes())?;
    }

    println!();
    if let (Some(t), Target::Regression { name, .. }) = (regression(&test), &p.prep.target) {
        let mut rows = vec![(format!("network {}", shape(&net_config)), t)];
        if let Some(b) = base_test.as_ref().and_then(regression) {
            rows.push(("no hidden layer (linear regression)".to_string(), b));
        }
        let rows: Vec<(&str, RegressionMetrics)> =
            rows.iter().map(|(n, m)| (n.as_str(), *m)).collect();
        print!("{}", regression_table(name, p.dollars, &rows));
    } else {
        if let Ok(m) =
            serde_json::from_value::<backprop::metrics::ClassificationMetrics>(test.clone())
        {
            print!(
                "{}",
                crate::classify::table(&format!("test set ({})", p.prep.target.name()), &m)
            );
        }
        if let Some(b) = &base_test {
            println!(
                "no hidden layer (softmax regression): accuracy {:.4}, log-loss {:.4}",
                b["accuracy"].as_f64().unwrap_or(f64::NAN),
                b["log_loss"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(note) = linear_wins(valid.as_ref(), base_valid.as_ref(), &net_config) {
        println!("\n{note}");
    }
    println!(
        "\n{} in {seconds:.1}s; run folder: {}",
        epochs(history.epochs.len()),
        out_dir.display()
    );
    match run.interrupted() {
        Some(stopped) => Err(stopped.into()),
        None => Ok(()),
    }
}

/// A note when the network with hidden layers validated worse than the one without
/// (RMSE for regression, log-loss for classification): then the hidden layers only
/// fitted noise, and the user should know before using the model.
fn linear_wins(
    valid: Option<&serde_json::Value>,
    base_valid: Option<&serde_json::Value>,
    net: &NetworkConfig,
) -> Option<String> {
    if net.hidden.is_empty() {
        return None;
    }
    let key = if valid?.get("rmse").is_some() {
        "rmse"
    } else {
        "log_loss"
    };
    let (n, b) = (valid?.get(key)?.as_f64()?, base_valid?.get(key)?.as_f64()?);
    (b < n).then(|| {
        format!(
            "note: the network without hidden layers validated better ({} {b:.4} against {n:.4} for {}): with these rows its hidden layers fit noise; try --hidden \"\" (linear) or a smaller --hidden",
            key.replace('_', "-"),
            shape(net)
        )
    })
}

fn regression(v: &serde_json::Value) -> Option<RegressionMetrics> {
    Some(RegressionMetrics {
        rmse: v.get("rmse")?.as_f64()?,
        mae: v.get("mae")?.as_f64()?,
        r2: v.get("r2")?.as_f64()?,
    })
}

/// Test (or validation) metrics as JSON: RMSE/MAE/R² in target units, or accuracy,
/// log-loss, per-class precision/recall/F1 and the confusion matrix.
pub fn evaluate(net: &Network, target: &Target, d: &Dataset) -> serde_json::Value {
    metrics_of(target, &predict_units(net, target, &d.x), &d.y)
}

/// A network's predictions (in the target's units) for some rows, with their encoded
/// targets.
struct Scored {
    pred: Matrix,
    y: Matrix,
}

impl Scored {
    /// Predictions of `net` for this process's rows `d`; under mpirun, rank 0 gets every
    /// rank's (a collective), the other ranks empty matrices.
    fn gather(net: &Network, target: &Target, d: &Dataset) -> Scored {
        let pred = predict_units(net, target, &d.x);
        Scored {
            pred: crate::cluster::gather_matrix(&pred),
            y: crate::cluster::gather_matrix(&d.y),
        }
    }

    fn metrics(&self, target: &Target) -> serde_json::Value {
        metrics_of(target, &self.pred, &self.y)
    }
}

/// Metrics of predictions `pred` (target units) against encoded targets `y`.
fn metrics_of(target: &Target, pred: &Matrix, y: &Matrix) -> serde_json::Value {
    match target {
        Target::Regression { .. } => {
            let actual = target_units(target, y);
            serde_json::to_value(RegressionMetrics::compute(&actual, pred.as_slice()))
                .unwrap_or_default()
        }
        Target::Classification { classes, .. } => {
            let actual = backprop::metrics::argmax_rows(y);
            let m = backprop::metrics::ClassificationMetrics::compute(&actual, pred)
                .with_class_names(classes);
            serde_json::to_value(m).unwrap_or_default()
        }
    }
}

/// Trains one network; with `path`, also records its initial weights and per-epoch
/// snapshots there (for the report and the landscape).
/// With `run`, resumes from its checkpoint or writes the first, checkpoints during
/// training and stops on Ctrl-C.
#[allow(clippy::too_many_arguments)]
fn fit(
    cfg: &NetworkConfig,
    train: &TrainConfig,
    p: &Prepared,
    label: &str,
    quiet: bool,
    path: Option<&mut Option<Recorder>>,
    mut run: Option<&mut crate::checkpoint::Run>,
) -> Result<(Network, History, f64, Option<PartialEpoch>)> {
    let mut rng = backprop::seed::rng(train.seed, backprop::seed::Stream::Init);
    let mut net = cfg.init(&mut rng)?;
    let recorder = path.map(|slot| slot.insert(Recorder::start(&net, train.epochs)));
    let mut progress = Progress::new(label, train.epochs, quiet);
    let trainer = Trainer::new(train.clone())?;
    let mut state = TrainState::new(trainer.config(), &net);
    if let Some(r) = run.as_deref_mut() {
        r.restore(&mut net, &mut state, train)?;
    }
    let started = Instant::now();
    let mut pause = crate::pause::Pause;
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut progress];
    callbacks.extend(recorder.map(|r| r as &mut dyn Callback));
    let has_run = run.is_some();
    callbacks.extend(run.as_deref_mut().map(|r| r as &mut dyn Callback));
    // After the checkpoint callback, so the paused-at epoch is on disk.
    if has_run {
        callbacks.push(&mut pause);
    }
    let result = trainer.resume(
        &mut net,
        &p.train,
        p.valid.as_ref(),
        &mut state,
        &mut callbacks,
        &mut *crate::cluster::reducer(p.train.len()),
    );
    progress.finish();
    if let (Err(_), Some(r)) = (&result, &run) {
        r.note_failure(quiet);
    }
    result?;
    if let Some(r) = run {
        r.stopped(&net, &state)?;
    }
    Ok((
        net,
        state.history,
        started.elapsed().as_secs_f64(),
        state.partial,
    ))
}

/// `8-256-256-128-1`.
pub fn shape(c: &NetworkConfig) -> String {
    let mut parts = vec![c.inputs.to_string()];
    parts.extend(c.hidden.iter().map(|h| h.to_string()));
    parts.push(c.outputs.to_string());
    parts.join("-")
}

/// The run folder: `--out` as given, or `runs/<name>` numbered so that no earlier run
/// is overwritten.
fn run_dir(out: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(o) = out {
        if o.is_file() {
            bail!(
                "--out {}: is a file; give a folder for the run",
                o.display()
            );
        }
        return Ok(o.to_path_buf());
    }
    let base = Path::new("runs").join(name);
    if !base.exists() {
        return Ok(base);
    }
    (2..10_000)
        .map(|i| Path::new("runs").join(format!("{name}-{i}")))
        .find(|p| !p.exists())
        .context("runs/ holds too many runs of this name; pass --out DIR")
}

/// Per epoch: losses, learning rate, seconds, and per layer gradient norm and
/// update-to-weight ratio.
fn history_csv(h: &History) -> String {
    let layers = h.epochs.first().map_or(0, |e| e.grad_norms.len());
    let mut s = String::from("epoch,train_loss,valid_loss,lr,seconds");
    for l in 0..layers {
        s.push_str(&format!(",grad_norm_{l},update_ratio_{l}"));
    }
    s.push('\n');
    for e in &h.epochs {
        s.push_str(&format!(
            "{},{},{},{},{:.6}",
            e.epoch,
            e.train_loss,
            e.valid_loss.map_or(String::new(), |v| v.to_string()),
            e.lr,
            e.seconds
        ));
        for (g, r) in e.grad_norms.iter().zip(&e.update_ratios) {
            s.push_str(&format!(",{g},{r}"));
        }
        s.push('\n');
    }
    s
}

/// `1 epoch`, `2 epochs`.
pub(crate) fn epochs(n: usize) -> String {
    format!("{n} epoch{}", if n == 1 { "" } else { "s" })
}

/// The schedule `--schedule` names, with its settings for a run of `epochs`.
fn schedule(arg: ScheduleArg, epochs: usize) -> Schedule {
    match arg {
        ScheduleArg::Constant => Schedule::Constant,
        ScheduleArg::Step => Schedule::Step {
            every: (epochs / 4).max(1),
            gamma: 0.5,
        },
        ScheduleArg::Exponential => Schedule::Exponential { gamma: 0.95 },
        ScheduleArg::Cosine => Schedule::Cosine { min_lr: 0.0 },
        ScheduleArg::OneCycle => Schedule::OneCycle { pct_start: 0.3 },
        ScheduleArg::Plateau => Schedule::Plateau {
            factor: 0.1,
            patience: 5,
            min_lr: 0.0,
        },
    }
}

#[cfg(test)]
mod schedule_tests {
    use clap::ValueEnum;

    use super::*;

    /// Reports and `inspect` name a schedule by `Schedule::name`: the value `--schedule`
    /// takes for it.
    #[test]
    fn schedule_names_are_the_command_line_values() {
        for &arg in ScheduleArg::value_variants() {
            assert_eq!(schedule(arg, 60).name(), crate::args::flag_value(&arg));
        }
    }
}
