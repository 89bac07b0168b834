//! Ctrl-C (SIGINT) and SIGTERM during training: the first one asks training to stop
//! after the current step, so the run can save a checkpoint and its outputs; a second
//! one quits at once (every file is written atomically, so nothing is torn).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Exit code of a run stopped by Ctrl-C (the shell's 128 + SIGINT).
pub const EXIT_CODE: u8 = 130;

/// Starts listening for Ctrl-C / SIGTERM. Safe to call more than once.
pub fn install() {
    // Fails only when a handler is already installed, which is then ours.
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: quitting now");
            std::process::exit(i32::from(EXIT_CODE));
        }
        eprintln!(
            "\ninterrupted: finishing the current step and saving (Ctrl-C again to quit at once)"
        );
    });
}

/// Whether Ctrl-C (or SIGTERM) has been received.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The error a training run ends with after Ctrl-C, once it has saved what it could.
/// `main` prints it as `interrupted: ...` and exits with [`EXIT_CODE`].
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}
