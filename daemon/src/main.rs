//! `shieldx`: the command line of shieldx (DESIGN.md section 5).
//!
//! Every command is a thin layer over `shieldx-core`. Exit codes follow the
//! design's contract: 0 for success (or "valid"), 1 for a well-formed input that
//! is cryptographically invalid (with the reason on stderr), 2 for malformed input
//! (bad hex, wrong length, bad usage), always with one clear line, never a panic.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;

fn main() -> ExitCode {
    let arguments = cli::Arguments::parse();
    match cli::run(arguments, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shieldx: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
