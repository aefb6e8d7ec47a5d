//! `--format github`: GitHub Actions workflow commands, one line per finding.

use studyflow_spec::Severity;

use super::{FileReport, citation, span, totals};

/// Escapes a workflow command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for report in reports {
        for d in &report.checked.diagnostics {
            let s = span(d);
            let command = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            let mut message = d.message.clone();
            let cite = citation(d);
            if !cite.is_empty() && !message.contains("MK403") {
                message.push_str(&format!(" ({cite})"));
            }
            if let Some(h) = &d.help {
                message.push_str(&format!("\nhelp: {h}"));
            }
            out.push_str(&format!(
                "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
                property(&report.path),
                s.line,
                s.column,
                s.end_line,
                s.end_column,
                property(&format!("{} {}", d.code, d.name)),
                data(&message)
            ));
        }
    }
    let t = totals(reports);
    out.push_str(&format!(
        "studyflow: {} files checked, {} errors, {} warnings\n",
        t.files, t.errors, t.warnings
    ));
    out
}
