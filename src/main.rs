//! The `microframework` command. Exit codes: 0 success, 1 error, 2 bad command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = microframework::cli::Cli::parse();
    match microframework::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
