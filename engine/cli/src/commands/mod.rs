//! One module per command; each is glue over library functions.

mod calendar;
mod client;
mod demo;
mod engine;
mod plan;
mod setup;
mod users;
mod validate;

use std::io::Write;

use crate::cli::{Cli, Command};

/// Where a command writes.
pub struct Context<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub color: bool,
}

pub fn run(cli: Cli, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, ctx),
        Command::Lsp => {
            studyflow_lsp::stdio()
                .map_err(|e| anyhow::anyhow!("the language server stopped: {e}"))?;
            Ok(crate::EXIT_OK)
        }
        Command::Schema => print(ctx, &studyflow_spec::schema::schema_text()),
        Command::Rules => print(ctx, &studyflow_plan::reference_markdown()),
        Command::Openapi => print(ctx, &studyflow_server::openapi_text()),
        Command::Catalogue => print(ctx, &studyflow_spec::catalogue::reference_markdown()),
        Command::Calendar(args) => calendar::run(&args, ctx),
        Command::Plan(args) => plan::run(&args, ctx),
        Command::Demo(args) => demo::run(&args, ctx),
        other => engine::run(other, ctx),
    }
}

/// The calendar and the day the date checks count from.
fn dates(
    args: &crate::cli::DateArgs,
) -> anyhow::Result<(studyflow_calendar::Calendar, jiff::civil::Date)> {
    let calendar = calendar::load(&args.calendar_overrides)?;
    let today = match args.today {
        Some(d) => d,
        None => jiff::Zoned::now().date(),
    };
    Ok((calendar, today))
}

fn print(ctx: &mut Context<'_>, text: &str) -> anyhow::Result<u8> {
    ctx.out.write_all(text.as_bytes())?;
    ctx.out.flush()?;
    Ok(crate::EXIT_OK)
}
