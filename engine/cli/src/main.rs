//! The `studyflow` binary: wires the process's streams to [`studyflow_cli::run`] and maps its
//! result to the exit code (0 success, 1 findings, 2 usage or IO failure).

use std::io::IsTerminal;
use std::process::ExitCode;

/// Validation allocates many small strings (YAML scalars, JSON values, the typed spec);
/// mimalloc serves them markedly faster than the system allocator (see the benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
