//! The `studyflow` binary: wires the process's streams to [`studyflow_cli::run`] and maps its
//! result to the exit code (0 success, 1 findings, 2 usage or IO failure).

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    let code = studyflow_cli::run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        color,
    );
    ExitCode::from(code)
}
