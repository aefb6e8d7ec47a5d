//! One module per command; each is glue over library functions.

mod client;
mod demo;
mod engine;
mod setup;
mod users;

pub use studyflow_check::Context;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(check) => studyflow_check::run(check, ctx),
        Command::Openapi => {
            ctx.out
                .write_all(studyflow_server::openapi_text().as_bytes())?;
            ctx.out.flush()?;
            Ok(crate::EXIT_OK)
        }
        Command::Demo(args) => demo::run(&args, ctx),
        other => engine::run(other, ctx),
    }
}
