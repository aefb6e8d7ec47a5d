//! The `studyflow` command line as a library: [`run`] takes the arguments and the output
//! streams and returns the exit code, so tests pin a command's whole behaviour in-process.
//! Only this crate and `studyflow-check` (the validator's commands, flattened in) render
//! diagnostics or know about terminals.

mod cli;
mod commands;
pub mod reference;

use std::ffi::OsString;
use std::io::Write;

pub use studyflow_check::{EXIT_FAILURE, EXIT_FINDINGS, EXIT_OK, render};

/// Runs one command line. `color` turns on ANSI colours in human output.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    studyflow_check::run_line(args, out, err, color, |cli: cli::Cli, ctx| {
        commands::run(cli, ctx)
    })
}
