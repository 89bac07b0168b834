//! The learning-rate range test (Smith 2017) of `backprop explain lr` and
//! `train --lr auto`. The rate grows geometrically from tiny to huge, one mini-batch per
//! rate; the cost first barely moves, then falls fastest, then blows up. The suggestion
//! is the rate of the lowest smoothed cost divided by ten: the lowest point is already
//! where the steps start to overshoot, so a rate ten times smaller is still fast but
//! stable.

use anyhow::Result;
use backprop::explain::{lr_range_test, LrRange, LrRangeConfig};
use backprop::{Dataset, NetworkConfig, TrainConfig};

/// Lowest and highest rate and number of steps of the test `--lr auto` runs.
pub const AUTO_RANGE: (f32, f32, usize) = (1e-6, 1.0, 200);

/// Runs the range test for a network about to be trained with `config` on `train`,
/// from the same initial weights.
pub fn range_test(
    net_config: &NetworkConfig,
    config: &TrainConfig,
    train: &Dataset,
    lr_min: f32,
    lr_max: f32,
    steps: usize,
) -> Result<LrRange> {
    // The weights `backprop train` starts from with this seed.
    let mut rng = backprop::seed::rng(config.seed, backprop::seed::Stream::Init);
    let net = net_config.init(&mut rng)?;
    let cfg = LrRangeConfig {
        loss: config.loss,
        optimizer: config.optimizer,
        lr_min,
        lr_max,
        steps,
        batch_size: config.batch_size.rows(train.len()),
        seed: config.seed,
        ..LrRangeConfig::default()
    };
    Ok(lr_range_test(&net, train, &cfg)?)
}
