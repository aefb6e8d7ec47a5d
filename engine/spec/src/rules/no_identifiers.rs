//! SF180: a spec never carries a personal code (MK403 p.21, p.25.3).

use serde_json::Value;

use super::{Check, Findings, Rule};
use crate::diagnostic::{Diagnostic, Severity, looks_like_personal_code, pointer_join};
use crate::source::SourceText;

pub static RULE: Rule = Rule {
    code: "SF180",
    name: "no-identifiers-in-spec",
    severity: Severity::Error,
    points: &["p.21", "p.25.3"],
    summary: "No value in the spec looks like a personal code.",
    explanation: "A spec is read by approvers, by CI and, for external studies, by the external \
researcher; identifying information is processed by service researchers (p.21) with access \
controlled by the Service (p.25.3). A spec names fields, never data subjects: any text \
that looks like a Latvian personal code (`DDMMYY-NNNNN` or an eleven-digit `32…` code), or a \
number that does (YAML reads an unquoted code as an integer), is an error. The diagnostic does not repeat the value (codes in a pointer are masked as `X`s), and \
`studyflow validate` masks it in the source lines it shows. This rule reads the document as \
written, so it also runs when the spec's structure is invalid, and it reads the comments too: \
a spec is kept for as long as its study, and a code in a comment is as much in the file as one \
in a value. A code is found whether its sixth and seventh digits are separated by a hyphen, a \
space, a slash, a dot or nothing.",
    check: Check::Document(check),
};

/// Runs on the document as written, so a code under an unknown property is caught too. The
/// walk keeps the path as segments and builds a pointer only for a finding.
fn check(value: &Value, f: &mut Findings) {
    walk(value, &mut Vec::new(), f);
}

fn walk<'v>(value: &'v Value, path: &mut Vec<Segment<'v>>, f: &mut Findings) {
    match value {
        Value::String(s) if looks_like_personal_code(s) => {
            f.report(&pointer(path), "this value looks like a personal code; a spec must not contain data about data subjects (MK403 p.21)")
                .help("remove it; personal codes come from the Service IS during acquisition, never from the spec");
        }
        Value::Number(n) if crate::diagnostic::number_looks_like_personal_code(n) => {
            f.report(&pointer(path), "this number looks like a personal code; a spec must not contain data about data subjects (MK403 p.21)")
                .help("remove it; personal codes come from the Service IS during acquisition, never from the spec");
        }
        Value::Object(map) => {
            for (k, child) in map {
                path.push(Segment::Key(k));
                if looks_like_personal_code(k) {
                    f.report(&pointer(path), "this key looks like a personal code; a spec must not contain data about data subjects (MK403 p.21)");
                }
                walk(child, path, f);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                walk(child, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

/// SF180 in the comments, which the document does not hold: each comment that looks like it
/// holds a personal code, at the code's place (the diagnostic shows the line masked).
pub(crate) fn in_comments(src: &SourceText<'_>, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (start, end) in comments(text) {
        let comment = &text[start..end];
        let mut from = 0;
        while let Some((s, e)) = crate::diagnostic::personal_code_at(comment.as_bytes(), from) {
            out.push(
                Diagnostic::new(
                    RULE.code,
                    RULE.name,
                    RULE.severity,
                    "this comment looks like it holds a personal code; a spec must not contain data about data subjects, not even in a comment (MK403 p.21, p.25.3)",
                )
                .citing(RULE.points.iter().copied())
                .with_span(src.span_bytes(start + s, start + e))
                .with_help("remove it from the comment; the file's history keeps it too, so rewrite that history if the spec is in version control"),
            );
            from = e;
        }
    }
    out
}

/// The byte ranges of the comments in a YAML text: from a `#` at the start of a line or after
/// whitespace, outside a quoted scalar, to the end of the line. The lines of a block scalar
/// (`|`, `>`) are its content, not comments.
fn comments(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // The indentation of the line that opened a block scalar, while inside one.
    let mut block: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches(' ').len();
        let blank = content.trim().is_empty();
        if let Some(parent) = block {
            if blank || indent > parent {
                offset += line.len();
                continue;
            }
            block = None;
        }
        let mut quote: Option<u8> = None;
        let mut comment_at = None;
        let bytes = content.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"')
                    if i == 0
                        || matches!(bytes[i - 1], b' ' | b'[' | b'{' | b',' | b':' | b'-') =>
                {
                    quote = Some(b)
                }
                (None, b'#') if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => {
                    comment_at = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let code = comment_at.map_or(content, |i| &content[..i]).trim_end();
        if let Some(i) = comment_at {
            out.push((offset + i, offset + content.len()));
        }
        // A block scalar starts after `key: |` or `- >-` (with its indicators).
        let value = code
            .rsplit_once(": ")
            .map(|(_, v)| v)
            .or_else(|| code.trim_start().strip_prefix("- "))
            .unwrap_or(code.trim_start());
        if let Some(rest) = value.strip_prefix(['|', '>'])
            && rest.chars().all(|c| matches!(c, '+' | '-' | '1'..='9'))
        {
            block = Some(indent);
        }
        offset += line.len();
    }
    out
}

enum Segment<'v> {
    Key(&'v str),
    Index(usize),
}

fn pointer(path: &[Segment<'_>]) -> String {
    path.iter().fold(String::new(), |p, s| match s {
        Segment::Key(k) => pointer_join(&p, k),
        Segment::Index(i) => pointer_join(&p, i),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    /// Comments are found at a line's start and after a value, never inside quotes or in a
    /// block scalar's content; a code in one is reported at its place, whatever its separator.
    #[test]
    fn codes_in_comments_are_found_at_their_place() {
        let text = "# reviewed with 010190 12345\n\
id: x # ask 32123456789\n\
title: 'not # a comment 010190-12345'\n\
purpose: >-\n  a text # 010190/12345 is content, SF180 reads the value\n\n  more\n\
phases: [] # 010190.12345\n\
note: \"a#b\" # plain\n";
        let found: Vec<&str> = comments(text).iter().map(|(s, e)| &text[*s..*e]).collect();
        assert_eq!(
            found,
            [
                "# reviewed with 010190 12345",
                "# ask 32123456789",
                "# 010190.12345",
                "# plain"
            ]
        );
        let src = SourceText::new(text);
        let d = in_comments(&src, text);
        let at: Vec<(usize, usize)> = d
            .iter()
            .map(|d| d.span.map(|s| (s.line, s.column)).unwrap())
            .collect();
        assert_eq!(at, [(1, 17), (2, 13), (8, 14)]);
        assert!(
            d.iter()
                .all(|d| d.code == "SF180" && !d.message.contains("0101"))
        );
    }

    #[test]
    fn personal_codes_are_refused_without_being_repeated() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["purpose"] = json!("Follow client 010190-12345 closely.");
            v["methodology"]["sample"]["inclusion_criteria"] = json!(["all", "32123456789"]);
        });
        let d = run_rule(&RULE, &spec);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/purpose", "/methodology/sample/inclusion_criteria/1"]
        );
        assert!(d.iter().all(|d| !d.message.contains("12345")));
    }

    #[test]
    fn codes_under_unknown_properties_are_found() {
        let checked = crate::check(
            b"spec_version: 1\nnotes: pilot client 010190-12345\n\"32123456789\": x\n",
        );
        let sf180: Vec<&str> = checked
            .diagnostics
            .iter()
            .filter(|d| d.code == "SF180")
            .map(|d| d.pointer.as_str())
            .collect();
        assert_eq!(sf180, ["/notes", "/XXXXXXXXXXX"]);
        assert!(
            checked
                .diagnostics
                .iter()
                .all(|d| !d.message.contains("12345") && !d.pointer.contains("2345"))
        );
    }
}
