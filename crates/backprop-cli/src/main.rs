//! `backprop`: train, evaluate and use feed-forward neural networks from the command line.
//!
//! Raw flags (`args`) are validated into settings by each command, which calls the
//! library; everything the user sees is printed here, never in the library.

mod args;
mod checkpoint;
mod classify;
mod cluster;
mod commands;
#[cfg(feature = "distributed")]
mod distributed;
mod examples;
mod images;
mod input;
mod interrupt;
mod pause;
mod plot;
mod progress;
mod report;
mod summary;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = args::Cli::parse();
    let result = match cli.command {
        args::Command::Train(a) => commands::train::run(*a),
        args::Command::Evaluate(a) => commands::evaluate::run(a),
        args::Command::Predict(a) => commands::predict::run(a),
        args::Command::Inspect(a) => commands::inspect::run(a),
        args::Command::Explain(a) => commands::explain::run(a),
        args::Command::Export(a) => commands::export::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let label = if e.is::<interrupt::Interrupted>() {
                "interrupted"
            } else {
                "error"
            };
            eprintln!("{label}: {}", chain(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes on one line.
pub(crate) fn chain(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    }) {
        s.push_str("; check the path");
    }
    s
}

/// 1 when training itself failed (diverged), 2 for bad usage or bad input.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<interrupt::Interrupted>() {
        return interrupt::EXIT_CODE;
    }
    match e.downcast_ref::<backprop::Error>() {
        Some(backprop::Error::NonFinite { .. }) => 1,
        _ => 2,
    }
}

/// Lets a closed pipe end the process quietly, as it does other Unix tools
/// (`backprop predict ... | head`), instead of a panic in `println!`. Everything the
/// run saves is written before its summary is printed.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
