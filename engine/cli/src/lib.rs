//! The `studyflow` command line as a library: [`run`] takes the arguments and the output
//! streams and returns the exit code, so tests pin a command's whole behaviour in-process.
//! Only this crate renders diagnostics or knows about terminals.

mod cli;
mod commands;
pub mod render;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

/// Exit code: no errors (warnings allowed unless `--deny-warnings`).
pub const EXIT_OK: u8 = 0;
/// Exit code: findings.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage or IO failure.
pub const EXIT_FAILURE: u8 = 2;

/// Runs one command line. `color` turns on ANSI colours in human output.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = if color {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            let (stream, code): (&mut dyn Write, u8) = if e.use_stderr() {
                (err, EXIT_FAILURE)
            } else {
                (out, EXIT_OK)
            };
            let _ = stream.write_all(text.as_bytes());
            return code;
        }
    };
    let mut ctx = commands::Context { out, err, color };
    match commands::run(cli, &mut ctx) {
        Ok(code) => code,
        // A reader that stopped reading (`| head`) is not a failure of the command.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(ctx.err, "studyflow: error: {e:#}");
            EXIT_FAILURE
        }
    }
}
