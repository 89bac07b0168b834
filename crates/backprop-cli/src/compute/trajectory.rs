//! The path the weights took during training, kept small: the run's initial weights
//! (for the report's histograms) and, in `trajectory.safetensors`, the two principal
//! directions of the per-epoch snapshots with every snapshot's coordinates in their
//! plane, which `backprop explain landscape` draws over the cost surface.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use backprop::explain::{trajectory_pca, TrajectoryPca};
use backprop::model::atomic_write;
use backprop::{Callback, Control, Network, TrainState};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// File name in the run folder.
pub const FILE: &str = "trajectory.safetensors";

/// At most this many snapshots are kept (every k-th epoch beyond it).
const MAX_SNAPSHOTS: usize = 100;

/// Records the weights before training and after every (k-th) epoch.
pub struct Recorder {
    /// The weights before the first update.
    pub initial: Vec<f32>,
    snapshots: Vec<Vec<f32>>,
    epochs: Vec<usize>,
    every: usize,
}

impl Recorder {
    /// Starts recording from `net`'s initial weights, for a run of `epochs` epochs.
    pub fn start(net: &Network, epochs: usize) -> Recorder {
        Recorder {
            initial: net.params().to_vec(),
            snapshots: vec![net.params().to_vec()],
            epochs: vec![0],
            every: epochs.div_ceil(MAX_SNAPSHOTS).max(1),
        }
    }
}

impl Callback for Recorder {
    fn on_epoch_end(&mut self, net: &Network, state: &TrainState) -> backprop::Result<Control> {
        if state.epoch.is_multiple_of(self.every) {
            self.snapshots.push(net.params().to_vec());
            self.epochs.push(state.epoch);
        }
        Ok(Control::Continue)
    }
}

/// Where the data of a run came from, so its split can be rebuilt later.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitInfo {
    /// Share of rows held out for validation.
    pub valid_fraction: f64,
    /// Share of rows held out for testing.
    pub test_fraction: f64,
}

/// A trajectory read back from a run folder.
#[derive(Clone, Debug)]
pub struct Trajectory {
    /// Principal directions, coordinates and explained shares.
    pub pca: TrajectoryPca,
    /// Epoch of each coordinate (0 = before training).
    pub epochs: Vec<usize>,
    /// How the run split its data.
    pub split: SplitInfo,
}

/// Projects the recorded snapshots onto their principal plane around `end` (the final
/// weights, which may be the best epoch's after early stopping) and writes the file.
/// Does nothing when the path has fewer than two independent moves.
pub fn save(dir: &Path, rec: &Recorder, end: &[f32], split: &SplitInfo) -> Result<()> {
    let Some(pca) = trajectory_pca(&rec.snapshots, end) else {
        return Ok(());
    };
    let le = |x: &[f32]| x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let coords: Vec<f32> = pca
        .coords
        .iter()
        .flat_map(|c| [c[0] as f32, c[1] as f32])
        .collect();
    let epochs: Vec<f32> = rec.epochs.iter().map(|&e| e as f32).collect();
    let bufs = [
        ("pca.0", le(&pca.directions[0]), vec![end.len()]),
        ("pca.1", le(&pca.directions[1]), vec![end.len()]),
        ("coords", le(&coords), vec![pca.coords.len(), 2]),
        ("epochs", le(&epochs), vec![epochs.len()]),
    ];
    let views = bufs
        .iter()
        .map(|(n, d, s)| TensorView::new(Dtype::F32, s.clone(), d).map(|v| (n.to_string(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))?;
    let meta = HashMap::from([
        (
            "explained".to_string(),
            format!("{} {}", pca.explained[0], pca.explained[1]),
        ),
        (
            "valid_fraction".to_string(),
            split.valid_fraction.to_string(),
        ),
        ("test_fraction".to_string(), split.test_fraction.to_string()),
    ]);
    let bytes = safetensors::serialize(views, &Some(meta)).map_err(|e| anyhow!("{e}"))?;
    atomic_write(&dir.join(FILE), &bytes)?;
    Ok(())
}

/// Reads `trajectory.safetensors` from a run folder (None when the run has none).
pub fn load(dir: &Path, params: usize) -> Result<Option<Trajectory>> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let bad = |why: String| anyhow!("{}: {why}; delete it or retrain the run", path.display());
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let floats = |name: &str| -> Result<Vec<f32>> {
        let t = st
            .tensor(name)
            .map_err(|_| bad(format!("no tensor `{name}`")))?;
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let (d0, d1) = (floats("pca.0")?, floats("pca.1")?);
    if d0.len() != params || d1.len() != params {
        return Err(bad(format!(
            "directions of {} weights do not match the model's {params}",
            d0.len()
        )));
    }
    let coords: Vec<[f64; 2]> = floats("coords")?
        .chunks_exact(2)
        .map(|c| [c[0] as f64, c[1] as f64])
        .collect();
    let epochs: Vec<usize> = floats("epochs")?.iter().map(|&e| e as usize).collect();
    let meta = header.metadata().clone().unwrap_or_default();
    let num = |k: &str| {
        meta.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| bad(format!("no `{k}` in its header")))
    };
    let explained: Vec<f64> = meta
        .get("explained")
        .map(|v| v.split(' ').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    if explained.len() != 2 || coords.len() != epochs.len() {
        return Err(bad("inconsistent header".into()));
    }
    Ok(Some(Trajectory {
        pca: TrajectoryPca {
            directions: [d0, d1],
            coords,
            explained: [explained[0], explained[1]],
        },
        epochs,
        split: SplitInfo {
            valid_fraction: num("valid_fraction")?,
            test_fraction: num("test_fraction")?,
        },
    }))
}
