//! rustc-like output: the source line, a caret, the MK403 citation and help.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use studyflow_spec::Severity;

use super::{FileReport, citation, span, totals};

pub fn render(reports: &[FileReport], color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for report in reports {
        // A spec must not hold personal codes (SF180); if one does, its source lines are shown
        // with the code masked, byte for byte.
        let source = studyflow_spec::diagnostic::mask_personal_codes(&report.source);
        for d in &report.checked.diagnostics {
            let s = span(d);
            let len = source.len();
            let start = s.start.min(len);
            let mut end = s.end.min(len).max(start);
            if end == start && start < len {
                // Widen an empty span to the character under it, so the caret shows.
                end = start + source[start..].chars().next().map_or(0, char::len_utf8);
            }
            // Only the lines the span covers go to the renderer: handing it the whole file
            // for every finding would make many findings in a large file quadratic.
            let excerpt_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            let excerpt_end = source[end..].find('\n').map_or(len, |i| end + i);
            let excerpt = &source[excerpt_start..excerpt_end];
            let (start, end) = (start - excerpt_start, end - excerpt_start);
            let level = match d.severity {
                Severity::Error => Level::ERROR,
                Severity::Warning => Level::WARNING,
                Severity::Note => Level::NOTE,
            };
            let cite = citation(d);
            let label = if cite.is_empty() {
                d.name.to_owned()
            } else {
                format!("{} ({cite})", d.name)
            };
            let mut group: Group<'_> = level.primary_title(d.message.as_str()).id(d.code).element(
                Snippet::source(excerpt)
                    .line_start(s.line)
                    .path(report.path.as_str())
                    .annotation(AnnotationKind::Primary.span(start..end).label(label)),
            );
            if let Some(help) = &d.help {
                group = group.element(Level::HELP.message(help.as_str()));
            }
            out.push_str(&renderer.render(&[group]));
            out.push_str("\n\n");
        }
    }
    let t = totals(reports);
    out.push_str(&format!(
        "{} file{} checked: {} error{}, {} warning{}\n",
        t.files,
        plural(t.files),
        t.errors,
        plural(t.errors),
        t.warnings,
        plural(t.warnings)
    ));
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
