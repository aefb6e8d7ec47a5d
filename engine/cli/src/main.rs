//! `studyflow`: thin commands over the library crates. `main` maps a command's outcome to
//! the exit code: 0 success, 1 findings (errors, or warnings with `--deny-warnings`), 2 usage
//! or IO failure.

mod cli;
mod commands;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("studyflow: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
