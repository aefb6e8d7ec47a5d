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
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
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
