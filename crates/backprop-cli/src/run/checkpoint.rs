//! Run folders that survive crashes, and `backprop train --resume DIR`.
//!
//! The run folder is claimed before training starts (a folder that already holds a
//! run is never reused, so a failing run cannot clobber an earlier one's files).
//! Every `--checkpoint-every` epochs, before the first, and where Ctrl-C stops a run
//! (within an epoch too), the network and the whole training state go into
//! `checkpoint/state.safetensors`, one file written atomically
//! (see [`backprop::checkpoint`]), together with what is needed to start the same run
//! again: the resolved settings (file paths made absolute), fingerprints of its input
//! files and the training configuration. `--resume DIR` restores those settings, checks
//! the inputs are unchanged and continues from the checkpoint; the weights it ends with
//! are bit-identical to those of an uninterrupted run. Nothing is parsed again and the
//! working folder is not changed.
//!
//! Checkpoints written before the settings were saved (record version 1) keep the command
//! line and the folder it ran in instead: `commands::train` parses that command line once
//! more (relative paths taken from that folder) and the run continues with those settings;
//! one that no longer parses is refused with the command that starts the run again.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use backprop::checkpoint::Checkpoint;
use backprop::{Callback, Control, Network, TrainConfig, TrainState};
use serde::{Deserialize, Serialize};

use crate::interrupt;
use crate::settings::Settings;

/// Sub-folder of a run folder holding the checkpoint.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The checkpoint file in [`CHECKPOINT_DIR`].
pub const CHECKPOINT_FILE: &str = "state.safetensors";
/// Layout of the record saved beside the checkpoint (1: command line and folder; 2:
/// resolved settings).
const RECORD_VERSION: u32 = 2;

/// The checkpoint file of run folder `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_DIR).join(CHECKPOINT_FILE)
}

/// What a run saves beside its checkpoint so that it can be started again.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    /// [`RECORD_VERSION`].
    version: u32,
    /// The settings the run started with, file paths absolute.
    settings: Settings,
    /// The files it read.
    inputs: Vec<Fingerprint>,
    /// The training configuration the settings gave with the data (checked again on
    /// resume).
    train_config: Option<serde_json::Value>,
}

/// The record of checkpoints written before the settings were saved: the command line,
/// the folder it ran in (relative paths are relative to it), the input files and the
/// training configuration.
#[derive(Deserialize)]
struct RecordV1 {
    argv: Vec<String>,
    cwd: PathBuf,
    inputs: Vec<Fingerprint>,
    train_config: Option<serde_json::Value>,
}

/// Size and FNV-1a hash of an input file's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    path: PathBuf,
    bytes: u64,
    fnv1a64: String,
}

impl Fingerprint {
    /// Streams the file (reading it whole took as much memory as the file: 1.9 GB for
    /// the 20-million-row table of `bench/memory.sh`, more than `train` needs for the
    /// data itself).
    fn of(path: &Path) -> Result<Fingerprint> {
        use std::io::Read;
        let cannot = || format!("cannot read {}", path.display());
        let mut file = std::fs::File::open(path).with_context(cannot)?;
        let mut buf = vec![0u8; 1 << 16];
        let (mut h, mut bytes): (u64, u64) = (0xcbf2_9ce4_8422_2325, 0);
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(cannot),
            };
            for &b in &buf[..n] {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            bytes += n as u64;
        }
        Ok(Fingerprint {
            path: path.to_path_buf(),
            bytes,
            fnv1a64: format!("{h:016x}"),
        })
    }
}

/// A checkpoint to continue from, with the record of the run that wrote it.
pub struct Resume {
    dir: PathBuf,
    checkpoint: Checkpoint,
    record: Record,
}

/// A checkpoint whose record keeps the command line instead of the settings: the caller
/// parses that command line (`args`) into settings, then [`Legacy::with_settings`].
pub struct Legacy {
    dir: PathBuf,
    checkpoint: Checkpoint,
    old: RecordV1,
}

/// What `--resume DIR` found.
pub enum Opened {
    /// A checkpoint with its settings.
    Current(Box<Resume>),
    /// A checkpoint of the earlier layout.
    Legacy(Box<Legacy>),
}

/// Opens the checkpoint of the run folder `given` (`--resume DIR`).
pub fn open(given: &Path) -> Result<Opened> {
    let dir =
        std::path::absolute(given).with_context(|| format!("--resume {}", given.display()))?;
    if !dir.is_dir() {
        bail!(
            "--resume {}: no such run folder; give a folder written by `backprop train`",
            given.display()
        );
    }
    let path = checkpoint_path(&dir);
    if !path.is_file() {
        bail!("--resume {}: holds no checkpoint ({} is missing); only runs of `backprop train` can be resumed", given.display(), Path::new(CHECKPOINT_DIR).join(CHECKPOINT_FILE).display());
    }
    let checkpoint = Checkpoint::load(&path)?;
    if let Ok(old) = serde_json::from_value::<RecordV1>(checkpoint.extra.clone()) {
        return Ok(Opened::Legacy(Box::new(Legacy {
            dir,
            checkpoint,
            old,
        })));
    }
    let record: Record = serde_json::from_value(checkpoint.extra.clone()).map_err(|e| {
        anyhow!(
            "{}: holds no readable run settings ({e}); train again",
            path.display()
        )
    })?;
    if record.version != RECORD_VERSION {
        bail!(
            "{}: run settings of version {} (this backprop reads version {RECORD_VERSION}); resume with the backprop that started the run, or train again",
            path.display(),
            record.version
        );
    }
    Ok(Opened::Current(Box::new(Resume {
        dir,
        checkpoint,
        record,
    })))
}

impl Resume {
    /// The settings the run started with, writing into its folder, with the switches
    /// that change neither the data nor the arithmetic taken from this command line.
    pub fn settings(&self, quiet: bool, threads: Option<usize>, every: Option<usize>) -> Settings {
        let mut s = self.record.settings.clone();
        s.out = Some(self.dir.clone());
        s.quiet |= quiet;
        s.threads = threads.or(s.threads);
        s.checkpoint_every = every.unwrap_or(s.checkpoint_every);
        s
    }
}

impl Legacy {
    /// The saved command line, program name first, and the folder it ran in.
    pub fn command_line(&self) -> (&[String], &Path) {
        (&self.old.argv, &self.old.cwd)
    }

    /// The checkpoint file.
    pub fn path(&self) -> PathBuf {
        checkpoint_path(&self.dir)
    }

    /// Why the saved command line cannot be used, and what to do instead.
    pub fn refuse(&self, why: &str) -> anyhow::Error {
        anyhow!(
            "{}: written by an earlier backprop, which saved the command line rather than the settings, and {why}; \
             start the run again with `{}` in {} (append `--out NEW_DIR`: a flag given twice takes the last value), or finish it with the backprop that started it",
            self.path().display(),
            std::iter::once("backprop".to_string())
                .chain(self.old.argv.iter().skip(1).map(|a| shell_word(a)))
                .collect::<Vec<_>>()
                .join(" "),
            self.old.cwd.display()
        )
    }

    /// Continues with the settings the saved command line gives (paths absolute), as
    /// a current checkpoint would; its input files are checked as they were recorded.
    pub fn with_settings(self, settings: Settings) -> Resume {
        let cwd = self.old.cwd;
        let inputs = self
            .old
            .inputs
            .into_iter()
            .map(|f| Fingerprint {
                path: cwd.join(&f.path),
                ..f
            })
            .collect();
        Resume {
            dir: self.dir,
            checkpoint: self.checkpoint,
            record: Record {
                version: RECORD_VERSION,
                settings,
                inputs,
                train_config: self.old.train_config,
            },
        }
    }
}

/// `a b` as `'a b'` for a command line to copy.
fn shell_word(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// The checkpointing side of a training run: claims the run folder, restores or
/// writes the first checkpoint, writes one every `every` epochs, and stops training
/// after the current step on Ctrl-C.
pub struct Run {
    record: Record,
    every: usize,
    resume: Option<Resume>,
    dir: PathBuf,
    epochs: usize,
    /// (epoch, step, steps) of the last step.
    position: (usize, usize, usize),
    /// Where the newest checkpoint on disk stands ("epoch 3", "epoch 4, step 7 of 12").
    saved: Option<String>,
    /// Whether this process writes the run folder (all but ranks 1.. of `mpirun`).
    writer: bool,
}

impl Run {
    /// Plans checkpointing for a run with these settings. Checks, on resume, that the
    /// input files are those the run started with.
    pub fn new(settings: &Settings, resume: Option<Resume>) -> Result<Run> {
        // Written only at the end: fail now rather than after a long run.
        if let Some(m) = &settings.metrics_json {
            let parent = m
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                bail!("--metrics-json {}: the folder {} does not exist; create it or give another path", m.display(), parent.display());
            }
        }
        let every = settings.checkpoint_every;
        let record = match &resume {
            Some(r) => {
                for f in &r.record.inputs {
                    let now = Fingerprint::of(&f.path).with_context(|| {
                        format!("--resume {}: an input of the run", r.dir.display())
                    })?;
                    if now != *f {
                        bail!("{}: changed since the run in {} started; resuming needs the same data (restore the file, or train anew)", f.path.display(), r.dir.display());
                    }
                }
                r.record.clone()
            }
            None => {
                let settings = settings.absolute()?;
                let inputs = [&settings.data, &settings.test]
                    .into_iter()
                    .flatten()
                    .filter(|p| p.as_path() != Path::new("-") && p.is_file())
                    .map(|p| Fingerprint::of(p))
                    .collect::<Result<_>>()?;
                Record {
                    version: RECORD_VERSION,
                    settings,
                    inputs,
                    train_config: None,
                }
            }
        };
        Ok(Run {
            record,
            every,
            resume,
            dir: PathBuf::new(),
            epochs: 0,
            position: (0, 0, 0),
            saved: None,
            writer: true,
        })
    }

    /// Creates the run folder, refusing one that already holds a run (unless resuming
    /// it), so that a failing run never clobbers an earlier run's files.
    pub fn claim(&mut self, dir: &Path) -> Result<()> {
        self.dir = dir.to_path_buf();
        if !self.writer {
            return Ok(());
        }
        if self.resume.is_none() {
            for held in [backprop::model::META_FILE, CHECKPOINT_DIR] {
                if dir.join(held).exists() {
                    bail!("--out {}: already holds a run ({held}); continue it with `backprop train --resume {}`, or choose another --out", dir.display(), dir.display());
                }
            }
        }
        let ck = dir.join(CHECKPOINT_DIR);
        std::fs::create_dir_all(&ck)
            .with_context(|| format!("cannot create the run folder {}", ck.display()))
    }

    /// Before training: on resume, replaces `net` and `state` with the checkpoint's
    /// (after checking it was made with the same configuration); otherwise writes the
    /// epoch-0 checkpoint, so that a run can be resumed from its first step.
    pub fn restore(
        &mut self,
        net: &mut Network,
        state: &mut TrainState,
        config: &TrainConfig,
    ) -> Result<()> {
        self.epochs = config.epochs;
        let config_json = serde_json::to_value(config)?;
        match self.resume.take() {
            Some(r) => {
                let path = checkpoint_path(&r.dir);
                if r.record.train_config.as_ref() != Some(&config_json) {
                    bail!("{}: the saved settings now give a different training configuration with this data; train anew", path.display());
                }
                if r.checkpoint.network.layers() != net.layers() {
                    bail!(
                        "{}: its network does not match the one the saved settings build; train anew",
                        path.display()
                    );
                }
                r.checkpoint
                    .state
                    .optimizer
                    .check(&config.optimizer, net.num_params())
                    .map_err(|e| {
                        anyhow!(
                            "{}: {e}; the checkpoint does not belong to the run its saved settings describe: train anew",
                            path.display()
                        )
                    })?;
                *net = r.checkpoint.network;
                *state = r.checkpoint.state;
                self.saved = Some(position(state));
            }
            None => {
                self.record.train_config = Some(config_json);
                self.save(net, state)?;
            }
        }
        Ok(())
    }

    /// For ranks other than 0 under `mpirun`: load the checkpoint to resume from, but
    /// leave claiming the folder and writing checkpoints to rank 0.
    pub fn read_only(&mut self) {
        self.writer = false;
    }

    fn save(&mut self, net: &Network, state: &TrainState) -> backprop::Result<()> {
        if !self.writer {
            self.saved = Some(position(state));
            return Ok(());
        }
        let extra = serde_json::to_value(&self.record).map_err(|e| backprop::Error::Format {
            path: checkpoint_path(&self.dir),
            reason: e.to_string(),
        })?;
        Checkpoint::save(&checkpoint_path(&self.dir), net, state, &extra)?;
        self.saved = Some(position(state));
        Ok(())
    }

    /// After the trainer returned: a run stopped within an epoch (Ctrl-C) saves its
    /// state there, which `--resume` continues exactly.
    pub fn stopped(&mut self, net: &Network, state: &TrainState) -> Result<()> {
        if state.partial.is_some() {
            self.save(net, state)?;
        }
        Ok(())
    }

    /// After training failed: points at what is left.
    pub fn note_failure(&self, quiet: bool) {
        if let (Some(at), false) = (&self.saved, quiet) {
            eprintln!(
                "note: the last good checkpoint ({at}) is kept in {}",
                checkpoint_path(&self.dir).display()
            );
        }
    }

    /// After training: the error to end the command with if Ctrl-C stopped it.
    pub fn interrupted(&self) -> Option<interrupt::Interrupted> {
        if !interrupt::requested() {
            return None;
        }
        let (epoch, step, steps) = self.position;
        let saved = self
            .saved
            .as_ref()
            .map_or("no checkpoint".to_string(), |at| {
                format!("the checkpoint ({at})")
            });
        let unrecorded = if step < steps {
            format!(" (epoch {epoch} is not recorded as an epoch: its steps so far are in the cost per step only)")
        } else {
            String::new()
        };
        Some(interrupt::Interrupted(format!(
            "stopped at epoch {epoch}, step {step} of {steps}; wrote the weights so far and the report to {}{unrecorded}; continue exactly from {saved} with `backprop train --resume {}`",
            self.dir.display(),
            self.dir.display()
        )))
    }
}

impl Callback for Run {
    fn on_step_end(&mut self, epoch: usize, step: usize, steps: usize, _loss: f32) -> Control {
        self.position = (epoch, step, steps);
        if interrupt::requested() {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn on_epoch_end(&mut self, net: &Network, state: &TrainState) -> backprop::Result<Control> {
        let (_, _, steps) = self.position;
        if let Some(r) = state.history.epochs.last() {
            if let Some(v) = r.valid_loss.filter(|v| !v.is_finite()) {
                return Err(backprop::Error::NonFinite {
                    epoch: r.epoch,
                    step: steps,
                    what: "validation loss",
                    value: v as f32,
                });
            }
        }
        // The trainer checks the loss and gradient; an update can still overflow.
        if let Some(&w) = net.params().iter().find(|w| !w.is_finite()) {
            return Err(backprop::Error::NonFinite {
                epoch: state.epoch,
                step: steps,
                what: "weights",
                value: w,
            });
        }
        if state.epoch.is_multiple_of(self.every)
            || state.epoch == self.epochs
            || interrupt::requested()
            || state.history.stopped_early
        {
            self.save(net, state)?;
        }
        Ok(Control::Continue)
    }
}

/// Where a training state stands: "epoch 3" at an epoch boundary, "epoch 4, step 7 of
/// 12" within one.
pub fn position(state: &TrainState) -> String {
    match &state.partial {
        Some(p) => format!(
            "epoch {}, step {} of {}",
            state.epoch + 1,
            p.steps_done,
            p.steps
        ),
        None => format!("epoch {}", state.epoch),
    }
}
