//! The author's and CI's commands of studyflow without the engine: `validate`, `plan`,
//! `calendar`, `schema`, `rules`, `catalogue` and the language server `lsp`. They need the
//! spec, the calendar and the plan compiler only — no database, no async runtime, no HTTP, no
//! cryptography — so `studyflow-check` builds in seconds for pre-commit and CI
//! (`cargo install --path .` at the repository's root), and `studyflow` (`engine/cli`) offers
//! the very same commands by flattening [`Check`] into its own.
//!
//! Only this crate and `engine/cli` render diagnostics or know about terminals; the libraries
//! return data.

mod calendar;
mod plan;
pub mod render;
mod validate;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use calendar::load as load_calendar;

/// Exit code: no errors (warnings allowed unless `--deny-warnings`).
pub const EXIT_OK: u8 = 0;
/// Exit code: findings.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage or IO failure.
pub const EXIT_FAILURE: u8 = 2;

/// The commands that check, explain and compile a spec.
#[derive(Debug, Subcommand)]
pub enum Check {
    /// Check study specs: YAML, JSON Schema and the MK403 rules. Exit 0 clean, 1 findings, 2 usage or IO failure.
    Validate(ValidateArgs),
    /// A language server for editors over stdio: every layer's findings while typing, hover
    /// with each field's meaning and MK403 points, the spec's sections (docs/editors.md).
    Lsp,
    /// Print the JSON Schema of a study spec (draft-07).
    Schema,
    /// Print the rule reference (docs/rules.md).
    Rules,
    /// Print the data catalogue (docs/catalogue.md).
    Catalogue,
    /// The Latvian working-day calendar: a year's days off and working Saturdays, or a deadline
    /// counted in working days.
    Calendar(CalendarArgs),
    /// Compile a spec into its plan and print the steps in order, with actor, data class, MK403
    /// points and computed dates. Exit 0 (warnings on stderr), 1 when the spec has errors.
    Plan(PlanArgs),
}

/// The command line of `studyflow-check`.
#[derive(Debug, Parser)]
#[command(name = "studyflow-check", version)]
/// Study specs of MK403 checked, explained and compiled — studyflow's validator without the
/// engine (the same commands as `studyflow validate`, `studyflow plan`, …).
struct CheckLine {
    #[command(subcommand)]
    command: Check,
}

/// Runs one command line of `studyflow-check` (the first argument is the program's name).
pub fn main<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_line(args, out, err, color, |line: CheckLine, ctx| {
        run(line.command, ctx)
    })
}

/// Where a command writes.
pub struct Context<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub color: bool,
}

/// Runs one of the commands.
pub fn run(check: Check, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    match check {
        Check::Validate(args) => validate::run(&args, ctx),
        Check::Lsp => {
            studyflow_lsp::stdio()
                .map_err(|e| anyhow::anyhow!("the language server stopped: {e}"))?;
            Ok(EXIT_OK)
        }
        Check::Schema => print(ctx, &studyflow_spec::schema::schema_text()),
        Check::Rules => print(ctx, &studyflow_plan::reference_markdown()),
        Check::Catalogue => print(ctx, &studyflow_spec::catalogue::reference_markdown()),
        Check::Calendar(args) => calendar::run(&args, ctx),
        Check::Plan(args) => plan::run(&args, ctx),
    }
}

/// Runs one command line of a binary whose arguments are `C`: parses them (usage errors and
/// `--help` rendered as clap renders them), runs `command`, and turns its failure into a
/// message on `err` and the exit code. A reader that stopped reading (`| head`) is not a
/// failure of the command. Both binaries, `studyflow-check` and `studyflow`, run through here.
pub fn run_line<C, I, T>(
    args: I,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
    command: impl FnOnce(C, &mut Context<'_>) -> anyhow::Result<u8>,
) -> u8
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = match C::try_parse_from(args) {
        Ok(parsed) => parsed,
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
    let mut ctx = Context { out, err, color };
    match command(parsed, &mut ctx) {
        Ok(code) => code,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            EXIT_OK
        }
        Err(e) => {
            // One prefix for both binaries' messages, as the commands' own use.
            let _ = writeln!(ctx.err, "studyflow: error: {e:#}");
            EXIT_FAILURE
        }
    }
}

/// The calendar and the day the date checks count from.
fn dates(args: &DateArgs) -> anyhow::Result<(studyflow_calendar::Calendar, jiff::civil::Date)> {
    let calendar = calendar::load(&args.calendar_overrides)?;
    let today = match args.today {
        Some(d) => d,
        None => jiff::Zoned::now().date(),
    };
    Ok((calendar, today))
}

/// Writes `text` whole to the command's output (a generated document: the schema, the rules).
pub fn print(ctx: &mut Context<'_>, text: &str) -> anyhow::Result<u8> {
    ctx.out.write_all(text.as_bytes())?;
    ctx.out.flush()?;
    Ok(EXIT_OK)
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
    #[command(flatten)]
    pub dates: DateArgs,
    /// The spec file.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
}

/// What the plan checks count dates from.
#[derive(Debug, Clone, clap::Args)]
pub struct DateArgs {
    /// The day the date checks count from, YYYY-MM-DD (default: today's date on this machine).
    #[arg(long, value_name = "DATE")]
    pub today: Option<jiff::civil::Date>,
    /// Calendar data files applied after the shipped data, e.g. a new Cabinet order
    /// (format: engine/calendar/data/lv.txt).
    #[arg(long = "calendar-overrides", value_name = "FILE")]
    pub calendar_overrides: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// One row per step, then the deadlines.
    Table,
    /// Versioned JSON (`studyflow-plan/1`): nodes, edges, deadlines.
    Json,
    /// Graphviz DOT, nodes coloured by the data class they write.
    Dot,
    /// Mermaid flowchart, nodes coloured by the data class they write.
    Mermaid,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CalendarArgs {
    #[command(subcommand)]
    pub command: Option<CalendarCommand>,
    /// The year to list (2000–2100).
    pub year: Option<i16>,
    /// Calendar data files applied after the shipped data, e.g. a new Cabinet order
    /// (format: engine/calendar/data/lv.txt).
    #[arg(long = "overrides", value_name = "FILE", global = true)]
    pub overrides: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// The latest date allowed for something due no later than N working days before a date
    /// (e.g. the Prison Administration notice, MK403 p.8).
    Deadline {
        /// How many working days before (at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        working_days: u32,
        /// The date of the event, YYYY-MM-DD (e.g. the planned publication).
        #[arg(long, value_name = "DATE")]
        before: String,
        /// Count N clear working days between the deadline and the event (one day earlier).
        #[arg(long)]
        strict: bool,
    },
}

/// The rule reference as the repository publishes it (`docs/rules.md`), the default of
/// `validate --docs-url`.
pub const DOCS_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/rules.md");

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Where the rule reference is published: each SARIF rule's `helpUri` is this with the
    /// rule's anchor (`…/docs/rules.md#sf101-application-complete`).
    #[arg(long, env = "STUDYFLOW_DOCS_URL", value_name = "URL", default_value = DOCS_URL)]
    pub docs_url: String,
    #[command(flatten)]
    pub dates: DateArgs,
    /// Spec files, or directories to search for *.yaml and *.yml.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// rustc-like snippets with the source line and a caret.
    Human,
    /// One JSON object with every file's diagnostics and a summary.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// GitHub Actions workflow commands (::error file=…).
    Github,
}
