//! Training checkpoints: everything needed to continue a run exactly where it stopped,
//! in one safetensors file written atomically.
//!
//! The tensors hold every `f32` vector bit for bit (the parameters, the optimizer's
//! moments and the best weights kept for early stopping); the file's metadata holds
//! the rest as JSON (epoch, optimizer step, schedule state, the shuffling generator,
//! the history, and whatever the caller adds, such as the settings of the run). Floats
//! that steer training (the best validation loss, the schedule's best loss and scale)
//! are stored as their bit patterns, so a resumed run makes the same decisions.
//!
//! The optimizer's state is stored by name (`optimizer.m`, `optimizer.v`, ...) beside
//! its kind, and a checkpoint is refused unless every buffer its kind needs is there,
//! one value per parameter and finite, and nothing else is; the caller then checks the
//! kind against the optimizer it resumes with ([`crate::OptimizerState::check`]).
//!
//! One file means one atomic rename: a crash at any instant leaves the previous
//! checkpoint or the new one, never a mix of two epochs.

use std::collections::HashMap;
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layer::LayerSpec;
use crate::model::atomic_write;
use crate::network::Network;
use crate::optim::{OptimizerState, ScheduleState, StateKind};
use crate::train::{History, PartialEpoch, TrainState};

/// Identifies checkpoint files (the `format` metadata entry).
pub const FORMAT: &str = "backprop-checkpoint";
/// Version of the checkpoint layout; bumped on incompatible change. Version 2 names
/// the optimizer's buffers (version 1 stored them by position, which could not tell
/// RMSprop's from momentum's, nor a missing buffer from a rule that keeps none) and
/// holds the position within an interrupted epoch (`partial`).
pub const FORMAT_VERSION: u32 = 2;

/// Prefix of the optimizer's buffers among the tensors (`optimizer.m`, ...).
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Versions [`Checkpoint::from_bytes`] reads.
const READABLE_VERSIONS: [&str; 1] = ["2"];

/// A network and its training state (at an epoch boundary or within an epoch), plus
/// caller data.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The weights.
    pub network: Network,
    /// Optimizer, schedule, generator, epoch and history.
    pub state: TrainState,
    /// Whatever the caller saved beside them (e.g. the settings of the run).
    pub extra: serde_json::Value,
}

/// The optimizer's state less its buffers, which are the tensors
/// `optimizer.<name>` for each of `kind`'s [`StateKind::buffer_names`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerMeta {
    kind: StateKind,
    step: u64,
}

/// The JSON part; every `f32` vector lives in the tensors.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    layers: Vec<LayerSpec>,
    epoch: usize,
    optimizer: OptimizerMeta,
    schedule_scale_bits: u32,
    schedule_best_bits: u64,
    schedule_bad_epochs: usize,
    rng: ChaCha8Rng,
    history: History,
    best_loss_bits: Option<u64>,
    bad_epochs: usize,
    /// Where an interrupted epoch stopped; `None` at an epoch boundary.
    partial: Option<PartialMeta>,
    extra: serde_json::Value,
}

/// [`PartialEpoch`] with its loss sum as a bit pattern, so the resumed epoch's loss is
/// the uninterrupted one's to the bit.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialMeta {
    steps_done: usize,
    steps: usize,
    rng: ChaCha8Rng,
    loss_sum_bits: u64,
    seconds: f64,
}

impl Checkpoint {
    /// Serialises `net` and `state` (and `extra`) into checkpoint bytes.
    pub fn to_bytes(
        net: &Network,
        state: &TrainState,
        extra: &serde_json::Value,
    ) -> Result<Vec<u8>> {
        // Destructured in full so that a new field in the state cannot be forgotten here.
        let TrainState {
            epoch,
            optimizer,
            schedule,
            rng,
            history,
            best,
            bad_epochs,
            partial,
        } = state;
        let ScheduleState {
            scale,
            best: schedule_best,
            bad_epochs: schedule_bad_epochs,
        } = schedule;
        let meta = Meta {
            layers: net.specs().ok_or_else(|| {
                let i = net.layers().iter().position(|l| l.spec().is_none());
                crate::model::unsavable(net, i.unwrap_or(0))
            })?,
            epoch: *epoch,
            optimizer: OptimizerMeta {
                kind: optimizer.kind(),
                step: optimizer.step(),
            },
            schedule_scale_bits: scale.to_bits(),
            schedule_best_bits: schedule_best.to_bits(),
            schedule_bad_epochs: *schedule_bad_epochs,
            rng: rng.clone(),
            history: history.clone(),
            best_loss_bits: best.as_ref().map(|(l, _)| l.to_bits()),
            bad_epochs: *bad_epochs,
            partial: partial.as_ref().map(|p| PartialMeta {
                steps_done: p.steps_done,
                steps: p.steps,
                rng: p.rng.clone(),
                loss_sum_bits: p.loss_sum.to_bits(),
                seconds: p.seconds,
            }),
            extra: extra.clone(),
        };
        let bad = |reason: String| Error::Format {
            path: "checkpoint".into(),
            reason,
        };
        let json = serde_json::to_string(&meta)
            .map_err(|e| bad(format!("cannot serialise the training state: {e}")))?;
        let n = net.num_params();
        let mut tensors: Vec<(String, Vec<u8>)> = vec![("params".into(), to_le(net.params()))];
        for (name, b) in optimizer.buffers() {
            if b.len() != n {
                return Err(bad(format!(
                    "optimizer buffer `{name}` holds {} values for {n} parameters",
                    b.len()
                )));
            }
            tensors.push((format!("{OPTIMIZER_PREFIX}{name}"), to_le(b)));
        }
        if let Some((_, p)) = best {
            if p.len() != n {
                return Err(bad(format!(
                    "the best weights hold {} values for {n} parameters",
                    p.len()
                )));
            }
            tensors.push(("best.params".into(), to_le(p)));
        }
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, d)| TensorView::new(Dtype::F32, vec![n], d).map(|v| (name.clone(), v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let info = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("state".to_string(), json),
        ]);
        safetensors::serialize(views, &Some(info)).map_err(|e| bad(e.to_string()))
    }

    /// Parses checkpoint bytes; `path` names them in errors. Never panics, whatever the
    /// bytes.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
        let bad = |reason: String| Error::Format {
            path: path.into(),
            reason,
        };
        let corrupted = "; the checkpoint is corrupted: delete the run folder and train again";
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("is not a readable checkpoint ({e}){corrupted}")))?;
        let info = header
            .metadata()
            .as_ref()
            .ok_or_else(|| bad(format!("has no checkpoint metadata{corrupted}")))?;
        if info.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!(
                "is not a backprop checkpoint (no format \"{FORMAT}\")"
            )));
        }
        let version = info
            .get("format_version")
            .map(String::as_str)
            .unwrap_or("?");
        if !READABLE_VERSIONS.contains(&version) {
            return Err(Error::IncompatibleModel {
                found: format!("{} checkpoint format version {version}", path.display()),
                expected: format!("version {}; resume it with the version of backprop that wrote it, or train again", READABLE_VERSIONS.join(" or ")),
            });
        }
        let json = info
            .get("state")
            .ok_or_else(|| bad(format!("has no training state{corrupted}")))?;
        let meta: Meta = serde_json::from_str(json).map_err(|e| {
            bad(format!(
                "holds an unreadable training state ({e}){corrupted}"
            ))
        })?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("is not a readable checkpoint ({e}){corrupted}")))?;
        let buffers = meta.optimizer.kind.buffer_names();
        for name in st.names() {
            let known = name == "params"
                || name == "best.params"
                || name
                    .strip_prefix(OPTIMIZER_PREFIX)
                    .is_some_and(|b| buffers.contains(&b));
            if !known {
                return Err(bad(format!(
                    "holds a tensor `{name}` that its training state ({} optimizer) does not describe{corrupted}",
                    meta.optimizer.kind.name()
                )));
            }
        }
        let n = Network::spec_param_count(&meta.layers)
            .map_err(|e| bad(format!("describes no usable network ({e}){corrupted}")))?;
        let read = |name: &str| -> Result<Vec<f32>> {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("has no tensor `{name}`{corrupted}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != [n] {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 [{n}]{corrupted}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!(
                    "tensor `{name}` holds a non-finite value{corrupted}"
                )));
            }
            Ok(v)
        };
        let network = Network::from_specs(&meta.layers, read("params")?)
            .map_err(|e| bad(format!("does not fit its layers ({e}){corrupted}")))?;
        let optimizer =
            OptimizerState::from_buffers(meta.optimizer.kind, meta.optimizer.step, |name| {
                read(&format!("{OPTIMIZER_PREFIX}{name}")).map_err(|e| match e {
                    Error::Format { reason, .. } => bad(format!(
                        "{} (the {} optimizer state needs {}){corrupted}",
                        reason.strip_suffix(corrupted).unwrap_or(&reason),
                        meta.optimizer.kind.name(),
                        meta.optimizer
                            .kind
                            .buffer_names()
                            .iter()
                            .map(|b| format!("`{OPTIMIZER_PREFIX}{b}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )),
                    e => e,
                })
            })?;
        let best = match meta.best_loss_bits {
            Some(bits) if f64::from_bits(bits).is_nan() => {
                return Err(bad(format!(
                    "holds a best validation loss of NaN{corrupted}"
                )))
            }
            Some(bits) => Some((f64::from_bits(bits), read("best.params")?)),
            None if st.tensor("best.params").is_ok() => {
                return Err(bad(format!(
                    "holds best weights without their validation loss{corrupted}"
                )))
            }
            None => None,
        };
        let scale = f32::from_bits(meta.schedule_scale_bits);
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(bad(format!(
                "holds a learning-rate scale of {scale}, where it must be positive{corrupted}"
            )));
        }
        // Counts of epochs without improvement, which the trainer increments.
        if meta.bad_epochs > meta.epoch || meta.schedule_bad_epochs > meta.epoch {
            return Err(bad(format!(
                "counts {} and {} epochs without improvement after {} epochs{corrupted}",
                meta.bad_epochs, meta.schedule_bad_epochs, meta.epoch
            )));
        }
        if f64::from_bits(meta.schedule_best_bits).is_nan() {
            return Err(bad(format!("holds a schedule best loss of NaN{corrupted}")));
        }
        let state = TrainState {
            epoch: meta.epoch,
            optimizer,
            schedule: ScheduleState {
                scale,
                best: f64::from_bits(meta.schedule_best_bits),
                bad_epochs: meta.schedule_bad_epochs,
            },
            rng: meta.rng,
            history: meta.history,
            best,
            bad_epochs: meta.bad_epochs,
            partial: meta.partial.map(|p| PartialEpoch {
                steps_done: p.steps_done,
                steps: p.steps,
                rng: p.rng,
                loss_sum: f64::from_bits(p.loss_sum_bits),
                seconds: p.seconds,
            }),
        };
        Ok(Checkpoint {
            network,
            state,
            extra: meta.extra,
        })
    }

    /// Writes a checkpoint to `path` atomically (temporary file, fsync, rename).
    pub fn save(
        path: &Path,
        net: &Network,
        state: &TrainState,
        extra: &serde_json::Value,
    ) -> Result<()> {
        let bytes = Checkpoint::to_bytes(net, state, extra).map_err(|e| match e {
            Error::Format { reason, .. } => Error::Format {
                path: path.into(),
                reason,
            },
            e => e,
        })?;
        atomic_write(path, &bytes)
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Checkpoint::from_bytes(path, &bytes)
    }
}

fn to_le(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{BatchSize, Dataset, TrainConfig, Trainer};
    use crate::{Activation, Matrix, NetworkConfig, OptimizerKind};
    use rand::SeedableRng;

    fn data() -> Dataset {
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|i| vec![(i % 7) as f32 / 7.0, (i % 5) as f32 / 5.0])
            .collect();
        let y: Vec<f32> = rows.iter().map(|r| r[0] - 2.0 * r[1]).collect();
        Dataset::new(
            Matrix::from_rows(&rows).unwrap(),
            Matrix::from_vec(40, 1, y).unwrap(),
        )
        .unwrap()
    }

    fn net() -> Network {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        NetworkConfig {
            inputs: 2,
            hidden: vec![5],
            outputs: 1,
            activation: Activation::Tanh,
            ..Default::default()
        }
        .init(&mut rng)
        .unwrap()
    }

    #[test]
    fn save_load_resume_is_bit_identical_to_an_uninterrupted_run() {
        let config = |epochs| TrainConfig {
            epochs,
            batch_size: BatchSize::Mini(8),
            optimizer: OptimizerKind::Adamw.build(0.0, 1e-3),
            patience: 3,
            schedule: crate::Schedule::Plateau {
                factor: 0.5,
                patience: 1,
                min_lr: 0.0,
            },
            lr: 0.05,
            record_steps: true,
            ..Default::default()
        };
        let d = data();
        let mut whole = net();
        Trainer::new(config(6))
            .unwrap()
            .fit(&mut whole, &d, Some(&d), &mut [])
            .unwrap();

        struct StopAt(usize);
        impl crate::train::Callback for StopAt {
            fn on_epoch_end(
                &mut self,
                _: &Network,
                s: &TrainState,
            ) -> Result<crate::train::Control> {
                Ok(if s.epoch == self.0 {
                    crate::train::Control::Stop
                } else {
                    crate::train::Control::Continue
                })
            }
        }
        let mut first = net();
        let trainer = Trainer::new(config(6)).unwrap();
        let mut state = TrainState::new(trainer.config(), &first);
        trainer
            .resume(
                &mut first,
                &d,
                Some(&d),
                &mut state,
                &mut [&mut StopAt(3)],
                &mut crate::train::LocalReducer,
            )
            .unwrap();
        assert_eq!(state.epoch, 3);
        let bytes =
            Checkpoint::to_bytes(&first, &state, &serde_json::json!({"note": "x"})).unwrap();
        let mut c = Checkpoint::from_bytes(Path::new("c"), &bytes).unwrap();
        assert_eq!(c.extra["note"], "x");
        assert_eq!(c.network.params(), first.params());
        assert_eq!(c.state.history, state.history);
        trainer
            .resume(
                &mut c.network,
                &d,
                Some(&d),
                &mut c.state,
                &mut [],
                &mut crate::train::LocalReducer,
            )
            .unwrap();
        let bits = |n: &Network| n.params().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&c.network), bits(&whole));
    }

    /// Stops after every `every`-th step counted over the whole run.
    struct StopEvery {
        every: usize,
        seen: usize,
    }
    impl crate::train::Callback for StopEvery {
        fn on_step_end(&mut self, _: usize, _: usize, _: usize, _: f32) -> crate::train::Control {
            self.seen += 1;
            if self.seen.is_multiple_of(self.every) {
                crate::train::Control::Stop
            } else {
                crate::train::Control::Continue
            }
        }
    }

    /// An epoch's figures without its wall-clock seconds, which no two runs share.
    fn figures(h: &History) -> Vec<crate::train::EpochRecord> {
        h.epochs
            .iter()
            .map(|e| crate::train::EpochRecord {
                seconds: 0.0,
                ..e.clone()
            })
            .collect()
    }

    /// Stopped by a callback every 3 steps (epochs of 5 steps: within epochs, twice
    /// in one epoch, at an epoch's last step) and resumed each time from checkpoint
    /// bytes, training ends with the uninterrupted run's parameters and history, bit
    /// for bit; no interrupted epoch is ever in the history.
    #[test]
    fn stops_within_epochs_resume_to_the_uninterrupted_run() {
        let config = TrainConfig {
            epochs: 6,
            batch_size: BatchSize::Mini(8),
            optimizer: OptimizerKind::Adamw.build(0.0, 1e-3),
            patience: 4,
            schedule: crate::Schedule::Plateau {
                factor: 0.5,
                patience: 1,
                min_lr: 0.0,
            },
            lr: 0.05,
            record_steps: true,
            ..Default::default()
        };
        let d = data();
        let trainer = Trainer::new(config).unwrap();
        let mut whole = net();
        let whole_history = trainer.fit(&mut whole, &d, Some(&d), &mut []).unwrap();
        assert!(!whole_history.stopped_early, "all 30 steps run");

        let mut network = net();
        let mut state = TrainState::new(trainer.config(), &network);
        let mut stop = StopEvery { every: 3, seen: 0 };
        let mut stops_within = 0;
        for _ in 0..30 {
            trainer
                .resume(
                    &mut network,
                    &d,
                    Some(&d),
                    &mut state,
                    &mut [&mut stop],
                    &mut crate::train::LocalReducer,
                )
                .unwrap();
            if let Some(p) = &state.partial {
                stops_within += 1;
                assert_eq!(p.steps, 5);
                assert_eq!(stop.seen, state.epoch * 5 + p.steps_done);
                // Only completed epochs are recorded, and they are the uninterrupted
                // run's.
                assert_eq!(state.history.epochs.len(), state.epoch);
                assert_eq!(
                    figures(&state.history),
                    figures(&whole_history)[..state.epoch]
                );
                assert_eq!(
                    state.history.step_losses,
                    whole_history.step_losses[..stop.seen]
                );
            }
            let bytes = Checkpoint::to_bytes(&network, &state, &serde_json::Value::Null).unwrap();
            let c = Checkpoint::from_bytes(Path::new("c"), &bytes).unwrap();
            assert_eq!(c.state.partial, state.partial);
            network = c.network;
            state = c.state;
            if state.epoch == 6 && state.partial.is_none() {
                break;
            }
        }
        // Run steps 15 and 30 end epochs; the other eight multiples of 3 do not.
        assert_eq!(stops_within, 8);
        let bits = |n: &Network| n.params().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&network), bits(&whole));
        assert_eq!(figures(&state.history), figures(&whole_history));
        assert_eq!(state.history.step_losses, whole_history.step_losses);
    }

    /// A checkpoint of an unknown version is refused with a message that says what to
    /// do (version 1 is refused too: see `a_version_1_checkpoint_is_refused_with_what_to_do`).
    #[test]
    fn refuses_unknown_versions() {
        let n = net();
        let trainer = Trainer::new(TrainConfig::default()).unwrap();
        let state = TrainState::new(trainer.config(), &n);
        let bytes = Checkpoint::to_bytes(&n, &state, &serde_json::Value::Null).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut info = header.metadata().clone().unwrap();
        info.insert("format_version".into(), "3".into());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let v3 = safetensors::serialize(st.tensors(), &Some(info)).unwrap();
        let e = Checkpoint::from_bytes(Path::new("c"), &v3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 3") && e.contains("version 2"), "{e}");
    }

    #[test]
    fn rejects_garbage_and_truncation_without_panicking() {
        let n = net();
        let trainer = Trainer::new(TrainConfig::default()).unwrap();
        let state = TrainState::new(trainer.config(), &n);
        let bytes = Checkpoint::to_bytes(&n, &state, &serde_json::Value::Null).unwrap();
        for cut in [0, 1, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let e = Checkpoint::from_bytes(Path::new("c.safetensors"), &bytes[..cut])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("c.safetensors: "), "{e}");
        }
        assert!(Checkpoint::from_bytes(Path::new("c"), b"{}").is_err());
    }

    /// The checkpoint `bytes` with its tensors and state rewritten by `edit`, as a
    /// damaged or hand-made file would hold them.
    fn rewrite(
        bytes: &[u8],
        edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>, &mut serde_json::Value),
    ) -> Vec<u8> {
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let mut info = header.metadata().clone().unwrap();
        let st = SafeTensors::deserialize(bytes).unwrap();
        let mut tensors: Vec<(String, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.data().to_vec()))
            .collect();
        let mut state: serde_json::Value = serde_json::from_str(&info["state"]).unwrap();
        edit(&mut tensors, &mut state);
        info.insert("state".into(), state.to_string());
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, vec![d.len() / 4], d).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, &Some(info)).unwrap()
    }

    fn adam_checkpoint() -> (Network, TrainState, Vec<u8>) {
        let n = net();
        let config = TrainConfig {
            optimizer: OptimizerKind::Adam.build(0.0, 0.0),
            ..Default::default()
        };
        let state = TrainState::new(&config, &n);
        let bytes = Checkpoint::to_bytes(&n, &state, &serde_json::Value::Null).unwrap();
        (n, state, bytes)
    }

    #[test]
    fn optimizer_buffers_are_stored_by_name_and_read_back() {
        let (n, mut state, _) = adam_checkpoint();
        if let OptimizerState::Adam { step, m, v } = &mut state.optimizer {
            *step = 7;
            m.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32);
            v.iter_mut().enumerate().for_each(|(i, x)| *x = -(i as f32));
        }
        let bytes = Checkpoint::to_bytes(&n, &state, &serde_json::Value::Null).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(names, ["optimizer.m", "optimizer.v", "params"]);
        let back = Checkpoint::from_bytes(Path::new("c"), &bytes).unwrap();
        assert_eq!(back.state.optimizer, state.optimizer);
    }

    #[test]
    fn a_missing_short_or_foreign_adam_buffer_is_refused() {
        let (n, _, bytes) = adam_checkpoint();
        let k = n.num_params();
        let refused = |bytes: Vec<u8>| {
            Checkpoint::from_bytes(Path::new("c.safetensors"), &bytes)
                .unwrap_err()
                .to_string()
        };
        let e = refused(rewrite(&bytes, |t, _| {
            t.retain(|(n, _)| n != "optimizer.v")
        }));
        assert!(
            e.contains("no tensor `optimizer.v`")
                && e.contains("Adam optimizer state needs `optimizer.m` and `optimizer.v`"),
            "{e}"
        );
        let e = refused(rewrite(&bytes, |t, _| {
            let m = t.iter_mut().find(|(n, _)| n == "optimizer.m").unwrap();
            m.1.truncate(m.1.len() - 4);
        }));
        assert!(
            e.contains(&format!(
                "`optimizer.m` is F32 [{}], expected F32 [{k}]",
                k - 1
            )),
            "{e}"
        );
        // A momentum buffer beside Adam's: the file does not say what it is.
        let e = refused(rewrite(&bytes, |t, _| {
            t.push(("optimizer.velocity".into(), vec![0; 4 * k]))
        }));
        assert!(e.contains("tensor `optimizer.velocity`"), "{e}");
        // No buffers at all for a state that claims to be Adam's.
        let e = refused(rewrite(&bytes, |t, _| t.retain(|(n, _)| n == "params")));
        assert!(e.contains("no tensor `optimizer.m`"), "{e}");
        // A non-finite moment.
        let e = refused(rewrite(&bytes, |t, _| {
            let v = t.iter_mut().find(|(n, _)| n == "optimizer.v").unwrap();
            v.1[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        }));
        assert!(e.contains("`optimizer.v` holds a non-finite value"), "{e}");
    }

    #[test]
    fn layerless_zero_width_and_unsteerable_states_are_refused() {
        let (_, _, bytes) = adam_checkpoint();
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            Checkpoint::from_bytes(Path::new("c"), &rewrite(&bytes, |_, s| edit(s)))
                .unwrap_err()
                .to_string()
        };
        let e = refused(&|s| s["layers"] = serde_json::json!([]));
        assert!(e.contains("at least one layer"), "{e}");
        let e = refused(&|s| {
            s["layers"][0]["outputs"] = 0.into();
            s["layers"][1]["inputs"] = 0.into();
        });
        assert!(e.contains("layer 0 at least 1 wide"), "{e}");
        let e = refused(&|s| s["schedule_scale_bits"] = f32::NAN.to_bits().into());
        assert!(e.contains("learning-rate scale of NaN"), "{e}");
    }

    #[test]
    fn a_version_1_checkpoint_is_refused_with_what_to_do() {
        let v1 = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/checkpoint/cls"),
        )
        .unwrap();
        let e = Checkpoint::from_bytes(Path::new("old.safetensors"), &v1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.safetensors checkpoint format version 1")
                && e.contains("expected version 2")
                && e.contains("train again"),
            "{e}"
        );
    }

    #[test]
    fn resuming_with_another_optimizers_state_is_an_error_not_a_no_op() {
        let d = data();
        let config = TrainConfig {
            epochs: 2,
            optimizer: OptimizerKind::Adam.build(0.0, 0.0),
            ..Default::default()
        };
        let trainer = Trainer::new(config).unwrap();
        let mut n = net();
        let before = n.params().to_vec();
        for optimizer in [
            OptimizerState::Sgd { step: 0 },
            OptimizerState::Adam {
                step: 0,
                m: vec![0.0; n.num_params()],
                v: vec![0.0; n.num_params() - 1],
            },
        ] {
            let mut state = TrainState::new(trainer.config(), &n);
            state.optimizer = optimizer;
            let e = trainer
                .resume(
                    &mut n,
                    &d,
                    None,
                    &mut state,
                    &mut [],
                    &mut crate::train::LocalReducer,
                )
                .unwrap_err();
            assert!(matches!(e, Error::IncompatibleState { .. }), "{e}");
            assert_eq!(n.params(), before.as_slice());
        }
    }
}
