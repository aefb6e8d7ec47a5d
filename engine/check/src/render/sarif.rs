//! `--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it (relative URIs, one run,
//! every rule described with its MK403 points).

use serde_json::{Value, json};
use studyflow_spec::Severity;
use studyflow_spec::rules::{RULES, STRUCTURAL};

use super::{FileReport, span};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// A SARIF artifact location: a relative path is a URI reference against the source root, an
/// absolute one a `file:` URI; either is percent-encoded (RFC 3986).
fn artifact_location(path: &str) -> Value {
    let encoded = percent_encode(path);
    if path.starts_with('/') {
        json!({"uri": format!("file://{encoded}")})
    } else {
        json!({"uri": encoded, "uriBaseId": "%SRCROOT%"})
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The anchor of a rule's section in `docs/rules.md` as GitHub makes it from its heading
/// (`### SF101 `application-complete``: `sf101-application-complete`).
fn anchor(code: &str, name: &str) -> String {
    format!("{}-{name}", code.to_lowercase())
}

/// A finding's identity across runs, for GitHub to follow it as lines move: the rule, the file
/// and the node it is about (not its line).
fn fingerprint(rule: &str, path: &str, pointer: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [rule, path, pointer] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// `path` as GitHub wants it: relative to the directory the validator runs in when it is under
/// it (an absolute input included), else absolute.
fn relative(path: &str) -> String {
    let p = std::path::Path::new(path);
    if p.is_absolute()
        && let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = p.strip_prefix(&cwd)
    {
        return rel.to_string_lossy().into_owned();
    }
    path.to_owned()
}

pub fn render(reports: &[FileReport], docs_url: &str) -> String {
    let mut rules: Vec<Value> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let docs = STRUCTURAL
        .iter()
        .map(|c| c.doc())
        .chain(RULES.iter().map(|r| r.doc()))
        .chain(studyflow_plan::checks::RULES.iter().map(|r| **r));
    for r in docs {
        ids.push(r.code);
        let cited = if r.points.is_empty() {
            String::new()
        } else {
            format!(" (MK403 {})", r.points.join(", "))
        };
        let url = format!("{docs_url}#{}", anchor(r.code, r.name));
        rules.push(json!({
            "id": r.code,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.explanation.trim()},
            "help": {
                "text": format!("{}{cited}. {}", r.summary.trim_end_matches('.'), r.explanation.trim()),
                "markdown": format!(
                    "**{}** `{}`{cited}: {}\n\n{}\n\n[The rule reference]({url})",
                    r.code,
                    r.name,
                    r.summary.trim_end_matches('.'),
                    r.explanation.trim()
                ),
            },
            "defaultConfiguration": {"level": level(r.severity)},
            "helpUri": url,
            "properties": {"tags": r.points.iter().map(|p| format!("MK403 {p}")).collect::<Vec<_>>()},
        }));
    }
    let mut results = Vec::new();
    for report in reports {
        let path = relative(&report.path);
        for d in &report.checked.diagnostics {
            let s = span(d);
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str(&format!(" Help: {h}"));
            }
            let mut result = json!({
                "ruleId": d.code,
                "level": level(d.severity),
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact_location(&path),
                        "region": {
                            "startLine": s.line,
                            "startColumn": s.column,
                            "endLine": s.end_line,
                            "endColumn": s.end_column.max(if s.end_line == s.line { s.column } else { 1 }),
                        }
                    }
                }],
                "partialFingerprints": {"studyflow/v1": fingerprint(d.code, &path, &d.pointer)},
                "properties": {"regulation": d.regulation, "pointer": d.pointer},
            });
            if let Some(i) = ids.iter().position(|id| *id == d.code) {
                result["ruleIndex"] = json!(i);
            }
            results.push(result);
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "studyflow",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded_and_absolute_paths_are_file_uris() {
        assert_eq!(
            artifact_location("specs/a b,c.yaml"),
            json!({"uri": "specs/a%20b%2Cc.yaml", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            artifact_location("specs/Pētījums.yaml")["uri"],
            "specs/P%C4%93t%C4%ABjums.yaml"
        );
        assert_eq!(
            artifact_location("/tmp/x%#.yaml"),
            json!({"uri": "file:///tmp/x%25%23.yaml"})
        );
    }
}
