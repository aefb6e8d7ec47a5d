//! One module per command; each is glue over library functions.

mod client;
mod demo;
mod engine;
mod setup;
mod users;
mod witness;

pub use studyflow_check::Context;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(check) => studyflow_check::run(check, ctx),
        Command::Openapi => studyflow_check::print(ctx, &studyflow_server::openapi_text()),
        Command::Commands => studyflow_check::print(ctx, &crate::reference::markdown()),
        Command::Demo(args) => demo::run(&args, ctx),
        other => engine::run(other, ctx),
    }
}
