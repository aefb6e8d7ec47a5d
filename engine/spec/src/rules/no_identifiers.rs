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
    summary_lv: "Nevienā specifikācijas vērtībā nav nekā, kas izskatās pēc personas koda.",
    explanation: "A spec is read by approvers, by CI and, for external studies, by the external \
researcher; identifying information is processed by service researchers (p.21) with access \
controlled by the Service (p.25.3). A spec names fields, never data subjects: any text \
that looks like a Latvian personal code (`DDMMYY-NNNNN` or an eleven-digit `32…` code), or a \
number that does (YAML reads an unquoted code as an integer), is an error. The diagnostic does not repeat the value (codes in a pointer are masked as `X`s), and \
`studyflow validate` masks it in the source lines it shows. This rule reads the document as \
written, so it also runs when the spec's structure is invalid, and it reads the comments too: \
a spec is kept for as long as its study, and a code in a comment is as much in the file as one \
in a value. A code is found whether its sixth and seventh digits are separated by a hyphen, a \
space, a slash, a dot, an en dash, a no-break space, \" - \" or nothing.",
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
            f.report(&pointer(path), "this value looks like a personal code; a spec must not contain data about data subjects (MK403 p.21, p.25.3)")
                .lv("šī vērtība izskatās pēc personas koda; specifikācijā nedrīkst būt informācija par datu subjektiem (MK403 21., 25.3. p.)")
                .help("remove it; personal codes come from the Service IS during acquisition, never from the spec");
        }
        Value::Number(n) if crate::diagnostic::number_looks_like_personal_code(n) => {
            f.report(&pointer(path), "this number looks like a personal code; a spec must not contain data about data subjects (MK403 p.21, p.25.3)")
                .lv("šis skaitlis izskatās pēc personas koda; specifikācijā nedrīkst būt informācija par datu subjektiem (MK403 21., 25.3. p.)")
                .help("remove it; personal codes come from the Service IS during acquisition, never from the spec");
        }
        Value::Object(map) => {
            for (k, child) in map {
                path.push(Segment::Key(k));
                if looks_like_personal_code(k) {
                    f.report(&pointer(path), "this key looks like a personal code; a spec must not contain data about data subjects (MK403 p.21, p.25.3)")
                        .lv("šī atslēga izskatās pēc personas koda; specifikācijā nedrīkst būt informācija par datu subjektiem (MK403 21., 25.3. p.)");
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
                .with_latvian("šķiet, ka šajā komentārā ir personas kods; specifikācijā nedrīkst būt informācija par datu subjektiem, pat ne komentārā (MK403 21., 25.3. p.)")
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
/// whitespace, outside a quoted scalar (which may run over several lines, with `\"` escaped in
/// double quotes), to the end of the line. A quote opens a quoted scalar only where a value
/// starts (after `: `, `- `, `[`, `{`, `,` or at the start of a line), never inside plain text
/// such as `the '90s`. The lines of a block scalar (`|`, `>`) are its content, not comments:
/// those indented deeper than its key, up to the first line less indented than the content.
fn comments(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // Inside a block scalar: the indentation of its key, and of its content once known.
    let mut block: Option<(usize, Option<usize>)> = None;
    // Inside a quoted scalar that goes on over lines: its quote.
    let mut quote: Option<u8> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches([' ', '\t']).len();
        let blank = content.trim().is_empty();
        if let Some((parent, inner)) = block {
            let inside = blank
                || match inner {
                    Some(inner) => indent >= inner,
                    None => indent > parent,
                };
            if inside {
                if !blank && inner.is_none() {
                    block = Some((parent, Some(indent)));
                }
                offset += line.len();
                continue;
            }
            block = None;
        }
        let bytes = content.as_bytes();
        let mut comment_at = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(b'"') if b == b'\\' => i += 1,
                Some(q) if b == q => {
                    // '' inside single quotes is an escaped quote
                    if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        quote = None;
                    }
                }
                Some(_) => {}
                None if b == b'\'' || b == b'"' => {
                    let before = content[..i].trim_end_matches([' ', '\t']);
                    if before.is_empty() || before.ends_with([':', '-', '[', '{', ',', '?']) {
                        quote = Some(b);
                    }
                }
                None if b == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')) => {
                    comment_at = Some(i);
                    break;
                }
                None => {}
            }
            i += 1;
        }
        if let Some(i) = comment_at {
            out.push((offset + i, offset + content.len()));
        }
        // A block scalar starts after `key: |`, `- >-`, `key: !!str |` (with its indicators):
        // its content is indented deeper than the key.
        let code = comment_at.map_or(content, |i| &content[..i]).trim_end();
        if quote.is_none()
            && let Some((key_indent, value)) = value_of(code, indent)
        {
            let value = match value.strip_prefix('!') {
                Some(tagged) => tagged
                    .split_once([' ', '\t'])
                    .map_or("", |(_, v)| v.trim_start()),
                None => value,
            };
            if let Some(rest) = value.strip_prefix(['|', '>'])
                && rest.chars().all(|c| matches!(c, '+' | '-' | '1'..='9'))
            {
                block = Some((key_indent, None));
            }
        }
        offset += line.len();
    }
    out
}

/// The value part of a line and the indentation of the key it belongs to: after `key:` (a
/// space or tab after the colon), or a list item's `- ` (whose entries are indented past the
/// dash).
fn value_of(code: &str, indent: usize) -> Option<(usize, &str)> {
    let rest = code.trim_start_matches([' ', '\t']);
    let (item_indent, rest) = match rest.strip_prefix("- ") {
        Some(r) => (
            indent + 2 + (r.len() - r.trim_start().len()),
            r.trim_start(),
        ),
        None if rest == "-" => return None,
        None => (indent, rest),
    };
    for (i, _) in rest.match_indices(':') {
        let after = &rest[i + 1..];
        if after.starts_with([' ', '\t']) {
            return Some((item_indent, after.trim_start_matches([' ', '\t'])));
        }
    }
    // A list item that is itself a block scalar (`- |`): its content is deeper than the dash.
    (item_indent != indent).then_some((indent, rest))
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

        // What an adversarial review found missed: a block scalar in a list item and the
        // comment after it, an apostrophe in plain text, a quoted value over two lines, an
        // escaped quote, a tagged block scalar and a tab after the colon.
        let text = "phases:\n\
- purpose: |\n    text # content\n  # reviewed A\n  id: x # B\n\
note: cohort of '90s # C\n\
title: \"Recidivism of the\n  '90s cohort\" # D\n\
key: \"a\\\" 'b\" # E\n\
tagged: !!str |\n  # content too\nsingle: 'it''s' # F\n\
tab:\t|\n  # content\nend: 1 # G\n";
        let found: Vec<&str> = comments(text).iter().map(|(s, e)| &text[*s..*e]).collect();
        assert_eq!(
            found,
            ["# reviewed A", "# B", "# C", "# D", "# E", "# F", "# G"],
            "{text}"
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
