//! The `microframework` command. Exit codes: 0 success, 1 error, 2 bad command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Output piped into `head` ends quietly when `head` has read enough, as with any Unix
    // tool; Rust's default (ignore SIGPIPE) turns it into a panic with a backtrace.
    #[cfg(unix)]
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = microframework::cli::Cli::parse();
    match microframework::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

/// `message` on one line, every control character escaped: a name or path with a line break
/// or an escape code in it (`\n::error::`, a GitHub Actions command) is printed as text.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
