//! `--format json`: one object with every file's diagnostics and a summary.

use serde_json::{Value, json};

use super::{FileReport, span, totals};

pub fn render(reports: &[FileReport]) -> String {
    let files: Vec<Value> = reports
        .iter()
        .map(|r| {
            let diagnostics: Vec<Value> = r
                .checked
                .diagnostics
                .iter()
                .map(|d| {
                    let s = span(d);
                    json!({
                        "code": d.code,
                        "name": d.name,
                        "severity": d.severity.as_str(),
                        "message": d.message,
                        "regulation": d.regulation,
                        "line": s.line,
                        "column": s.column,
                        "end_line": s.end_line,
                        "end_column": s.end_column,
                        "help": d.help,
                        "pointer": d.pointer,
                    })
                })
                .collect();
            json!({"path": r.path, "diagnostics": diagnostics})
        })
        .collect();
    let t = totals(reports);
    let doc = json!({
        "files": files,
        "summary": {"files": t.files, "errors": t.errors, "warnings": t.warnings},
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
