//! A test hook: `backprop train --pause-after-epoch N` (a hidden flag) waits after the
//! checkpoint of epoch N is written until Ctrl-C or SIGTERM arrives (or the process is
//! killed). Tests that stop a run and resume it use it to stop at a known epoch: waiting
//! for a checkpoint and then sending a signal races the run, which on a fast machine
//! can finish first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backprop::network::Network;
use backprop::train::{Callback, Control, TrainState};

/// The epoch to pause after; 0 = never.
static AFTER: AtomicUsize = AtomicUsize::new(0);

/// The longest pause: a test that failed before sending its signal leaves no process
/// behind for good.
const LONGEST: Duration = Duration::from_secs(300);

/// Sets the epoch to pause after (`None`: never).
pub fn set(epoch: Option<usize>) {
    AFTER.store(epoch.unwrap_or(0), Ordering::SeqCst);
}

/// The callback that pauses; place it after the checkpoint writer.
pub struct Pause;

impl Callback for Pause {
    fn on_epoch_end(&mut self, _net: &Network, state: &TrainState) -> backprop::Result<Control> {
        let after = AFTER.load(Ordering::SeqCst);
        if after == 0 || state.epoch != after {
            return Ok(Control::Continue);
        }
        let started = Instant::now();
        // Under mpirun no handler is installed and SIGTERM ends the rank here.
        while !crate::interrupt::requested() && started.elapsed() < LONGEST {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Control::Continue)
    }
}
