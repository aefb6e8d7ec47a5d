//! `studyflow-check`: the author's and CI's commands of studyflow alone (validate, plan,
//! calendar, schema, rules, catalogue, lsp), built without the engine's dependencies. Exit 0
//! success, 1 findings, 2 usage or IO failure — as `studyflow`'s same commands.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    let code = studyflow_check::main(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        color,
    );
    ExitCode::from(code)
}
