//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Workflow engine for the research studies of Latvia's State Probation Service (MK403).
#[derive(Debug, Parser)]
#[command(name = "studyflow", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check study specs: YAML, JSON Schema and the MK403 rules. Exit 0 clean, 1 findings, 2 usage or IO failure.
    Validate(ValidateArgs),
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

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
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
