//! What `report.html` shows of a training run.

use backprop::data::prep::Target;
use backprop::layer::Image;
use backprop::{History, Matrix, Network, NetworkConfig, PartialEpoch, TrainConfig};
use serde_json::Value;

/// File name in the run folder.
pub const FILE: &str = "report.html";

/// Points drawn at most per series or scatter (more are averaged or sampled).
pub(super) const MAX_POINTS: usize = 3000;

/// Everything the report shows.
pub struct RunReport<'a> {
    /// Name of the data set.
    pub name: &'a str,
    /// The network's shape.
    pub net_config: &'a NetworkConfig,
    /// How it was trained (after `--lr auto` resolved the rate).
    pub train_config: &'a TrainConfig,
    /// What training recorded.
    pub history: &'a History,
    /// The weights before training.
    pub initial: &'a [f32],
    /// The trained network.
    pub network: &'a Network,
    /// The target encoding (units, classes).
    pub target: &'a Target,
    /// The network's predictions for the test rows, in the target's units.
    pub test_pred: &'a Matrix,
    /// The test rows' targets, encoded.
    pub test_y: &'a Matrix,
    /// The test rows' inputs as the network sees them (scaled); under mpirun, this
    /// process's rows only (rank 0's come first in `test_pred` and `test_y`).
    pub test_x: &'a Matrix,
    /// The shape of each input row as an image, for image data (IDX files, or
    /// features named `pixel_<row>_<col>`); the first layer's input when it is an
    /// image layer takes precedence.
    pub image: Option<Image>,
    /// Training rows (for steps per epoch).
    pub train_rows: usize,
    /// The run's metrics.json.
    pub metrics: &'a Value,
    /// The baseline's history, if one was trained.
    pub baseline: Option<&'a History>,
    /// Dollars per target unit, if known.
    pub dollars: Option<f64>,
    /// How the learning rate was chosen, if by the range test.
    pub lr_note: Option<String>,
    /// How far the epoch Ctrl-C stopped got, if it stopped one part-way.
    pub partial: Option<&'a PartialEpoch>,
    /// What the run compared on its validation rows before keeping this model
    /// (`--scale select`, `--keep best`), one sentence each.
    pub choice: &'a [String],
}
