//! One module per command; each parses nothing and calls library functions.

mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema => print(&studyflow_spec::schema::schema_text()),
        Command::Rules => print(&studyflow_spec::rules::reference_markdown()),
        Command::Catalogue => print(&studyflow_spec::catalogue::reference_markdown()),
    }
}

fn print(text: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
