//! `backprop`: train, evaluate and use feed-forward neural networks from the command line.
//! The modules live in the crate's library target (`lib.rs`, which lists the layers);
//! this is the entry: parse the flags, dispatch, map errors to exit codes.

use std::process::ExitCode;

use backprop_cli::{args, commands, errors, interrupt};

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    return_freed_memory();
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

/// Makes glibc hand every allocation of 4 MiB or more back to the system when it is
/// freed. By default glibc raises that threshold to the size of each large block freed
/// (up to 32 MiB) and keeps freed memory below it for reuse, so the buffers `train`
/// frees while it turns a table into matrices (columns, split lists, fitting copies)
/// stayed resident: 40 MB of the 153 MB peak on 2 million rows (issue 19, BENCHMARKS.md
/// "Memory"). Steps allocate nothing once training runs, so this costs no speed there.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any thread exists; mallopt only sets
    // allocator parameters and reports failure by its return value (ignored: then
    // glibc's default stays).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
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
