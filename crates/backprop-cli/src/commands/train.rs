//! `backprop train`: flags -> settings (or, with `--resume`, the settings the run saved)
//! -> the run.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::args::{Cli, Command, TrainArgs};
use crate::run::checkpoint::{self, Legacy, Opened, Resume, Run};
use crate::settings::Settings;

/// Flags `--resume` accepts beside itself: they change neither the data nor the
/// arithmetic (results are bit-identical whatever the thread count).
const RESUME_FLAGS: [&str; 3] = ["--quiet", "--threads", "--checkpoint-every"];

/// Runs `backprop train`.
pub fn run(args: TrainArgs) -> Result<()> {
    // Under mpirun: one process per rank, only rank 0 talks (see cluster.rs).
    let _cluster = crate::cluster::start()?;
    // From this command line, never from a resumed run's saved settings.
    crate::pause::set(args.pause_after_epoch);
    crate::cluster::abort_on_error(run_rank(args))
}

fn run_rank(args: TrainArgs) -> Result<()> {
    let (mut settings, resume) = match &args.resume {
        Some(dir) => {
            refuse_other_flags(&args)?;
            let r = match checkpoint::open(dir)? {
                Opened::Current(r) => *r,
                Opened::Legacy(old) => legacy(*old)?,
            };
            (
                r.settings(args.quiet, args.threads, args.checkpoint_every),
                Some(r),
            )
        }
        None => {
            let mut flags = args.options();
            flags.quiet |= !crate::cluster::is_root();
            (Settings::resolve(flags, args.config.as_deref())?, None)
        }
    };
    settings.quiet |= !crate::cluster::is_root();
    let mut run = Run::new(&settings, resume)?;
    if !crate::cluster::is_root() {
        run.read_only();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads())
        .build()
        .context("cannot start the thread pool")?;
    pool.install(|| crate::run::train::train(&settings, &mut run))
}

/// `--resume` continues with the saved settings: any flag that would change them is an
/// error rather than silently ignored.
fn refuse_other_flags(args: &TrainArgs) -> Result<()> {
    let mut given = args.options().given();
    if args.config.is_some() {
        given.push("--config".into());
    }
    if let Some(flag) = given.iter().find(|f| !RESUME_FLAGS.contains(&f.as_str())) {
        bail!("--resume continues with the settings saved in the run's checkpoint; leave out {flag} (only --quiet, --threads and --checkpoint-every may be given)");
    }
    Ok(())
}

/// A checkpoint of the earlier layout keeps the command line and the folder it ran in:
/// its settings are those that command line gives, relative paths taken from that folder
/// (the working folder is not changed).
fn legacy(old: Legacy) -> Result<Resume> {
    let (argv, cwd) = old.command_line();
    let saved = match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Train(saved),
        }) => saved,
        Ok(_) => return Err(old.refuse("its command line is not `backprop train`")),
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            return Err(old.refuse(&format!("its command line no longer parses ({first})")));
        }
    };
    let rebase = |p: &Option<std::path::PathBuf>| {
        p.as_ref().map(|p| {
            if p.as_path() == Path::new("-") {
                p.clone()
            } else {
                cwd.join(p)
            }
        })
    };
    let mut flags = saved.options();
    flags.data = rebase(&flags.data);
    flags.test = rebase(&flags.test);
    flags.metrics_json = rebase(&flags.metrics_json);
    let config = rebase(&saved.config);
    let settings = Settings::resolve(flags, config.as_deref())
        .map_err(|e| old.refuse(&format!("its settings no longer resolve ({e})")))?;
    let settings = settings.absolute()?;
    Ok(old.with_settings(settings))
}
