//! Progress display during training: an indicatif bar on a terminal, one line per epoch
//! otherwise.

use std::io::IsTerminal;

use backprop::{Callback, Control, Network, TrainState};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows training progress on standard error.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    epochs: usize,
    quiet: bool,
}

impl Progress {
    /// A display for a run of `epochs` epochs; `label` prefixes every line.
    pub fn new(label: &str, epochs: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(epochs as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] epoch {pos}/{len} {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            epochs,
            quiet,
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Callback for Progress {
    fn on_epoch_end(&mut self, _net: &Network, state: &TrainState) -> backprop::Result<Control> {
        let Some(r) = state.history.epochs.last() else {
            return Ok(Control::Continue);
        };
        let valid = r
            .valid_loss
            .map_or(String::new(), |v| format!("  valid {v:.4}"));
        let msg = format!("train {:.4}{valid}  lr {:.2e}", r.train_loss, r.lr);
        match &self.bar {
            Some(b) => {
                b.set_position(r.epoch as u64);
                b.set_message(msg);
            }
            None if !self.quiet => eprintln!(
                "{} epoch {:>3}/{}  {msg}  {:.2}s",
                self.label, r.epoch, self.epochs, r.seconds
            ),
            None => {}
        }
        Ok(Control::Continue)
    }
}
