//! Renderers of validation results. Only the CLI renders; the library returns data.

pub mod github;
pub mod human;
pub mod json;
pub mod sarif;

use studyflow_spec::{Checked, Diagnostic, Span};

/// One checked file.
pub struct FileReport {
    pub path: String,
    pub source: String,
    pub checked: Checked,
}

/// The span of a diagnostic (every diagnostic from `check` has one).
pub fn span(d: &Diagnostic) -> Span {
    d.span.unwrap_or(Span::START)
}

/// "MK403 p.3.1, p.3.2" or empty.
pub fn citation(d: &Diagnostic) -> String {
    if d.regulation.is_empty() {
        String::new()
    } else {
        format!("MK403 {}", d.regulation.join(", "))
    }
}

pub struct Totals {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
}

pub fn totals(reports: &[FileReport]) -> Totals {
    Totals {
        files: reports.len(),
        errors: reports.iter().map(|r| r.checked.errors()).sum(),
        warnings: reports.iter().map(|r| r.checked.warnings()).sum(),
    }
}
