//! # backprop
//!
//! Feed-forward neural networks that learn by backpropagation and gradient descent,
//! written out so you can see how it is done.
//!
//! The learning process: weights start as small random numbers near zero; each input
//! row is fed forward, layer by layer, through perceptrons that apply their weights and
//! activation; the prediction is compared with the actual value through a cost
//! function; backpropagation computes how much each weight is responsible for the
//! error; and the optimizer moves every weight against its gradient, by a step the
//! learning rate sets. Updates happen per observation (online), per mini-batch or per
//! full batch, and one pass over the training set is an epoch.
//!
//! # Where each step of learning lives
//!
//! | step | file |
//! |---|---|
//! | the network's shape, initial weights | `network/mod.rs` (`NetworkConfig::init`), `init.rs` (the schemes), `seed.rs` (the random streams) |
//! | a layer: forward and backward | `layer/mod.rs` (the [`Layer`] trait), `layer/dense.rs` ([`Dense`], the reference to read first) |
//! | activations and their derivatives | `activation.rs` |
//! | forward and backward through the network | `network/mod.rs` (`forward_rows`, `backward_rows`), `trace.rs` (what forward keeps) |
//! | the cost and its gradient | `loss.rs` |
//! | the update | `optim/mod.rs` (SGD, momentum, Adam, AdamW, RMSprop), `optim/schedule.rs` (learning rate) |
//! | batches, epochs, early stopping, callbacks | `train/trainer.rs` (the epoch loop), `train/batcher.rs` (shuffle, shards, pieces) |
//! | data: CSV, IDX images, scaling, splits | `data/` |
//! | saving, resuming, exporting | `model.rs`, `checkpoint.rs`, `onnx/` |
//! | checking gradients | `gradcheck.rs` |
//!
//! The fast paths (the matrix products, fused and table-driven passes, SIMD loops) are
//! in `kernels/`, behind the layers: `dispatch.rs` chooses them per layer by shape, and
//! each is tested against the layer-by-layer reference (`network/tests.rs`). The
//! numbers are the same whichever path computes them (to the bit, or to rounding where
//! a kernel sums in another order, as its docs say). All `unsafe` code is in
//! `kernels/`.
//!
//! ```
//! use backprop::{Activation, BatchSize, Dataset, Loss, Matrix, NetworkConfig,
//!                OptimizerKind, TrainConfig, Trainer};
//! use rand::SeedableRng;
//!
//! // y = 2 x0 - x1 + noise-free, eight features of which two matter.
//! let rows: Vec<Vec<f32>> = (0..64)
//!     .map(|i| (0..8).map(|j| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.5).collect())
//!     .collect();
//! let x = Matrix::from_rows(&rows).unwrap();
//! let y: Vec<f32> = rows.iter().map(|r| 2.0 * r[0] - r[1]).collect();
//! let data = Dataset::new(x, Matrix::from_vec(64, 1, y).unwrap()).unwrap();
//!
//! // An 8-64-64-1 ReLU network.
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
//! let mut net = NetworkConfig { inputs: 8, hidden: vec![64, 64], outputs: 1,
//!                               activation: Activation::Relu, ..Default::default() }
//!     .init(&mut rng).unwrap();
//!
//! let trainer = Trainer::new(TrainConfig {
//!     epochs: 200, batch_size: BatchSize::Mini(16), loss: Loss::Mse, lr: 0.05,
//!     optimizer: OptimizerKind::Sgd.build(0.9, 0.0), ..Default::default()
//! }).unwrap();
//! let history = trainer.fit(&mut net, &data, None, &mut []).unwrap();
//! assert!(history.epochs.last().unwrap().train_loss < 0.01);
//!
//! let prediction = net.predict(&data.x);
//! assert_eq!(prediction.rows(), 64);
//! ```
#![deny(missing_docs)]
// Everything but `kernels` is free of `unsafe` code (see `kernels` for why it has some).
#![deny(unsafe_code)]

pub mod activation;
pub mod checkpoint;
pub mod data;
mod dispatch;
pub mod error;
pub mod explain;
pub mod gradcheck;
pub mod init;
#[allow(unsafe_code)]
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod network;
pub mod onnx;
pub mod optim;
pub mod seed;
#[cfg(test)]
mod test_util;
mod trace;
pub mod train;

pub use activation::Activation;
pub use error::{Error, Result};
pub use init::Init;
pub use layer::{Dense, Layer};
pub use loss::Loss;
pub use matrix::Matrix;
pub use network::{Network, NetworkConfig, Trace};
pub use optim::{Optimizer, OptimizerKind, OptimizerState, Schedule, ScheduleState};
pub use train::{
    BatchSize, Callback, Control, Dataset, EarlyStopping, EpochRecord, History, PartialEpoch,
    TrainConfig, TrainState, Trainer,
};
