//! SF180: a spec never carries a personal code (MK403 p.21, p.25.3).

use serde_json::Value;

use super::{Check, Findings, Rule};
use crate::diagnostic::{Severity, looks_like_personal_code, pointer_join};

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
written, so it also runs when the spec's structure is invalid.",
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
