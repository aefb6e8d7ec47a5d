//! The `studyflow` binary: wires the process's streams to [`studyflow_cli::run`] and maps its
//! result to the exit code (0 success, 1 findings, 2 usage or IO failure).

use std::io::IsTerminal;
use std::process::ExitCode;

/// Validation allocates many small strings (YAML scalars, JSON values, the typed spec);
/// mimalloc serves them markedly faster than the system allocator (see the benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    init_logs();
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    // Neither stream is held locked for the whole run: the logs of the worker threads go to
    // stderr, and the language server's writer thread to stdout (`studyflow lsp`); each would
    // wait for a lock held here forever. Each write locks its stream.
    let code = studyflow_cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        color,
    );
    ExitCode::from(code)
}

/// Structured logs (`tracing`) on stderr, tuned by `RUST_LOG` (e.g. `RUST_LOG=info`,
/// `RUST_LOG=studyflow_runtime=debug`); warnings and errors only when it is not set, so the
/// commands' own output stays as it is. A `RUST_LOG` that does not parse falls back to that too.
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
        .from_env_lossy();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
