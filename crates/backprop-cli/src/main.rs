//! `backprop`: train, evaluate and use feed-forward neural networks from the command line.
//! The modules live in the crate's library target (`lib.rs`, which lists the layers);
//! this is the entry: parse the flags, dispatch, map errors to exit codes.

use std::process::ExitCode;

use backprop_cli::{args, commands, errors, interrupt};

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
            eprintln!("{label}: {}", errors::chain(&e));
            ExitCode::from(errors::exit_code(&e))
        }
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
