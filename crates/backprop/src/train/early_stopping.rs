//! Early stopping with best-weight restore, as an ordinary [`Callback`]: the trainer runs
//! one built from [`TrainConfig::patience`](super::TrainConfig::patience) before the
//! caller's callbacks, so a checkpoint written by them holds its state.

use super::{Callback, Control, TrainState};
use crate::network::Network;

/// Keeps the weights of the epoch with the lowest validation loss, stops once
/// `patience` epochs in a row have not improved on it, and puts those weights back
/// when training ends. Its memory (the best loss and weights, the epochs without
/// improvement) lives in the [`TrainState`], so a run resumed from a checkpoint goes on
/// exactly. Epochs without a validation loss, and a patience of 0, change nothing.
#[derive(Clone, Copy, Debug)]
pub struct EarlyStopping {
    patience: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement (0: never).
    pub fn new(patience: usize) -> Self {
        EarlyStopping { patience }
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_recorded(&mut self, net: &Network, state: &mut TrainState) -> Control {
        let valid_loss = state.history.epochs.last().and_then(|e| e.valid_loss);
        let (Some(v), true) = (valid_loss, self.patience > 0) else {
            return Control::Continue;
        };
        if state.best.as_ref().is_none_or(|(b, _)| v < *b) {
            state.best = Some((v, net.params().to_vec()));
            state.bad_epochs = 0;
            state.history.best_epoch = Some(state.epoch);
            return Control::Continue;
        }
        state.bad_epochs += 1;
        if state.bad_epochs >= self.patience {
            state.history.stopped_early = true;
            return Control::Stop;
        }
        Control::Continue
    }

    fn on_train_end(&mut self, net: &mut Network, state: &TrainState) {
        if let Some((_, best)) = &state.best {
            net.params_mut().copy_from_slice(best);
        }
    }
}
