//! # studyflow-spec
//!
//! The study spec of studyflow: its types, its JSON Schema, the MK403 data catalogue and the
//! legal rules, with every finding placed at a file, line and column.
//!
//! This crate is pure: no IO, no async, no database. It takes bytes and returns a spec *and*
//! all diagnostics, never stopping at the first:
//!
//! ```
//! let yaml = b"spec_version: 1\nid: demo-study\nversion: 1\ninitiator: {kind: service, name: VPD}\n";
//! let checked = studyflow_spec::check(yaml);
//! assert!(checked.spec.is_some());
//! // Missing purpose, methodology, data scope, phases, ... each reported with its MK403 point.
//! let d = checked.diagnostics.iter().find(|d| d.pointer == "/purpose").unwrap();
//! assert_eq!(d.code, "SF101");
//! assert_eq!(d.regulation, ["p.3.1"]);
//! ```
//!
//! The layers, in order (see `docs/ARCHITECTURE.md`):
//! 1. [`yaml`]: size cap, UTF-8, YAML 1.2 core schema with spans, duplicate keys, alias and
//!    depth limits (SF001–SF005);
//! 2. [`schema`]: the generated JSON Schema, violations at the offending node (SF010–SF012);
//! 3. [`rules`]: the legal rules on the typed [`model::Spec`] (SF1xx).

pub mod catalogue;
pub mod diagnostic;
pub mod model;
pub mod regulation;
pub mod rules;
pub mod schema;
pub mod source;
pub mod suggest;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity, Span};
pub use model::Spec;

use serde::Deserialize as _;

use source::SourceText;
use yaml::{Limits, YamlDocument};

const ENCODING: (&str, &str) = ("SF005", "encoding");
const STRUCTURE: (&str, &str) = ("SF013", "structure");

/// The outcome of checking one file.
#[derive(Debug)]
pub struct Checked {
    /// The typed spec, when the structure allowed building it (even with rule findings).
    pub spec: Option<Spec>,
    /// Every finding, ordered by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }
}

/// Checks one spec file's bytes with the default [`Limits`].
pub fn check(bytes: &[u8]) -> Checked {
    check_with(bytes, Limits::default())
}

/// Checks one spec file's bytes.
pub fn check_with(bytes: &[u8], limits: Limits) -> Checked {
    check_extended(bytes, limits, &mut |_| Vec::new())
}

/// Checks one spec file's bytes, and runs `extra` on the typed spec when there is one: the
/// checks of a later layer (the plan's, SF2xx) whose findings, reported by JSON pointer, are
/// placed, masked and sorted with the others.
pub fn check_extended(
    bytes: &[u8],
    limits: Limits,
    extra: &mut dyn FnMut(&Spec) -> Vec<Diagnostic>,
) -> Checked {
    if bytes.len() > limits.max_bytes {
        let d = Diagnostic::new(
            yaml::YAML_LIMIT.0,
            yaml::YAML_LIMIT.1,
            Severity::Error,
            format!(
                "the file is {} bytes, over the {} byte limit for a spec",
                bytes.len(),
                limits.max_bytes
            ),
        )
        .with_latvian(format!(
            "fails ir {} baitu, vairāk par specifikācijai atļautajiem {} baitiem",
            bytes.len(),
            limits.max_bytes
        ))
        .with_span(Span::START)
        .with_help("a study spec is a few hundred lines; the file was not read further");
        return Checked {
            spec: None,
            diagnostics: vec![d],
        };
    }
    // A byte-order mark is legal in YAML but is no character of the spec: positions count
    // from after it.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.valid_up_to();
            // The prefix is valid UTF-8, so positions in it can be computed.
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or("");
            let span = SourceText::new(prefix).span_bytes(valid, valid);
            let d = Diagnostic::new(
                ENCODING.0,
                ENCODING.1,
                Severity::Error,
                format!("the file is not valid UTF-8: bad byte at offset {valid}"),
            )
            .with_latvian(format!(
                "fails nav derīgā UTF-8 kodējumā: nederīgs baits pozīcijā {valid}"
            ))
            .with_span(span)
            .with_help("save the file as UTF-8 (Latvian letters such as ā, č, ņ are welcome)");
            return Checked {
                spec: None,
                diagnostics: vec![d],
            };
        }
    };
    let src = SourceText::new(text);
    let (doc, mut diagnostics) = yaml::parse(&src, limits);
    // Comments are no part of the document; SF180 reads them in the text.
    diagnostics.extend(rules::no_identifiers::in_comments(&src, text));
    let Some(doc) = doc else {
        return finish(None, diagnostics, None, &src);
    };
    diagnostics.extend(schema::validate(&doc));
    let mut removed = Vec::new();
    let spec = match typed(&doc.value, &diagnostics, &mut removed) {
        Ok(spec) => Some(spec),
        Err(e) => {
            // What serde refused: reported here unless the schema already placed an error on it.
            let pointer = path_to_pointer(e.path());
            // (Not when the schema found an error at it or around it: a list where a mapping
            // belongs makes serde complain about items the schema already explained.)
            // (Nor when the schema placed an error inside it: serde refuses the mapping that
            // lacks a required key, the schema names the key — one finding, not two.)
            let covered = diagnostics.iter().any(|d| {
                d.is_error()
                    && (d.pointer == pointer
                        || d.pointer.is_empty()
                        || pointer.starts_with(&format!("{}/", d.pointer))
                        || d.pointer.starts_with(&format!("{pointer}/")))
            });
            if !covered {
                let detail = e.inner().to_string();
                // (serde's detail stays in English.)
                let (message, message_lv) = if diagnostic::looks_like_personal_code(&detail) {
                    ("invalid value".to_owned(), "nederīga vērtība".to_owned())
                } else {
                    (
                        format!("invalid value: {detail}"),
                        format!("nederīga vērtība: {detail}"),
                    )
                };
                diagnostics.push(
                    Diagnostic::new(
                        schema::INVALID_VALUE.0,
                        schema::INVALID_VALUE.1,
                        Severity::Error,
                        message,
                    )
                    .with_latvian(message_lv)
                    .at(pointer),
                );
            }
            diagnostics.push(
                Diagnostic::new(
                    STRUCTURE.0,
                    STRUCTURE.1,
                    Severity::Note,
                    "the legal rules that read the typed spec were not checked because its structure is invalid",
                )
                .with_latvian("juridiskās pārbaudes, kas lasa specifikācijas saturu, netika veiktas, jo tās struktūra nav derīga")
                .with_span(Span::START)
                .with_help("fix the errors reported here and run again"),
            );
            None
        }
    };
    let mut found = rules::run(spec.as_ref(), &doc.value);
    // A member left out for the rules was reported precisely by the schema; a rule would only
    // see it as missing, so its finding there goes (an invalid date is not "no date").
    // Document rules read the file as written and keep theirs.
    found.retain(|r| {
        rules::reads_document(r.code)
            || !removed
                .iter()
                .any(|p| r.pointer == *p || r.pointer.starts_with(&format!("{p}/")))
    });
    // A rule that explains a node better replaces the schema's generic finding about it: a
    // missing property, an unknown property, a value outside an enum.
    // Document rules (SF180) look at every value, not at what the schema expected, so they
    // replace nothing.
    diagnostics.retain(|d| {
        !(d.replaceable
            && found
                .iter()
                .any(|r| r.pointer == d.pointer && !rules::reads_document(r.code)))
    });
    diagnostics.extend(found);
    if let Some(spec) = &spec {
        diagnostics.extend(extra(spec));
    }
    finish(spec, diagnostics, Some(&doc), &src)
}

/// The typed spec. Unknown properties (SF010) and invalid values (SF012) are already
/// reported, so when they stand in the way the mapping members holding them are left out and
/// the legal rules still run, as long as what is left is a spec. Unknown catalogue keys stay:
/// the field rules explain them.
fn typed(
    value: &serde_json::Value,
    diagnostics: &[Diagnostic],
    removed: &mut Vec<String>,
) -> Result<Spec, serde_path_to_error::Error<serde_json::Error>> {
    // The plain deserializer is faster; the tracking one runs only to say where it failed.
    let first = match Spec::deserialize(value) {
        Ok(spec) => Ok(spec),
        Err(_) => serde_path_to_error::deserialize::<_, Spec>(value),
    };
    let unknown: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d.code == schema::UNKNOWN_PROPERTY.0 || d.code == schema::INVALID_VALUE.0)
        .map(|d| d.pointer.as_str())
        .filter(|p| {
            !diagnostic::pointer_parent(p).is_some_and(|parent| parent.ends_with("/fields"))
        })
        .collect();
    if first.is_ok() || unknown.is_empty() {
        return first;
    }
    let mut cleaned = value.clone();
    for pointer in unknown {
        if let (Some(parent), key) = (
            diagnostic::pointer_parent(pointer),
            diagnostic::pointer_last(pointer),
        ) && let Some(serde_json::Value::Object(map)) = cleaned.pointer_mut(parent)
            // Order does not matter for a struct's members; `shift_remove` would make many
            // unknown keys quadratic.
            && map.swap_remove(&key).is_some()
        {
            removed.push(pointer.to_owned());
        }
    }
    serde_path_to_error::deserialize::<_, Spec>(&cleaned).or(first)
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut p = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => p = diagnostic::pointer_join(&p, index),
            Segment::Map { key } => p = diagnostic::pointer_join(&p, key),
            Segment::Enum { variant } => p = diagnostic::pointer_join(&p, variant),
            Segment::Unknown => {}
        }
    }
    p
}

/// Places every diagnostic that has no span yet, masks personal codes, and sorts.
fn finish(
    spec: Option<Spec>,
    mut diagnostics: Vec<Diagnostic>,
    doc: Option<&YamlDocument>,
    src: &SourceText<'_>,
) -> Checked {
    for d in &mut diagnostics {
        if d.span.is_none() {
            d.span = Some(doc.map_or(Span::START, |doc| locate(doc, src, &d.pointer)));
        }
        // Whatever a layer echoed, no personal code leaves in a finding.
        for text in [
            Some(&mut d.pointer),
            Some(&mut d.message),
            d.message_lv.as_mut(),
            d.help.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let std::borrow::Cow::Owned(masked) = diagnostic::mask_personal_codes(text) {
                *text = masked;
            }
        }
    }
    diagnostics.sort_by(|a, b| {
        let (sa, sb) = (a.span.unwrap_or(Span::START), b.span.unwrap_or(Span::START));
        (sa.line, sa.column, a.severity, a.code).cmp(&(sb.line, sb.column, b.severity, b.code))
    });
    diagnostics.dedup();
    Checked { spec, diagnostics }
}

/// The span a finding about `pointer` is shown at: for an existing entry, its key through the
/// end of a one-line value; for a missing one, the key of the mapping it belongs in.
fn locate(doc: &YamlDocument, src: &SourceText<'_>, pointer: &str) -> Span {
    match doc.spans.nearest(pointer) {
        Some((s, true)) => match s.key {
            Some(k) if s.value.line == k.line && s.value.end_line == k.line => {
                src.span_bytes(k.start, s.value.end)
            }
            Some(k) => k,
            None => s.value,
        },
        Some((s, false)) => {
            // Missing: point at the parent's key, or at the first line of the parent value.
            match s.key {
                Some(k) => k,
                None => {
                    let v = s.value;
                    src.span_bytes(v.start, v.end.min(src.end_of_line(v.start)).max(v.start))
                }
            }
        }
        None => Span::START,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![b'#'; Limits::default().max_bytes + 1];
        let checked = check(&big);
        assert_eq!(checked.diagnostics.len(), 1);
        assert_eq!(checked.diagnostics[0].code, "SF003");
        assert!(checked.spec.is_none());
        let wrong = testing::latvian_problems(&checked.diagnostics[0]);
        assert!(wrong.is_empty(), "{wrong:?}");
    }

    /// A value that looks like a personal code is no more shown in the Latvian than in the
    /// English: neither as the value a message names, nor anywhere else in it.
    #[test]
    fn the_latvian_never_shows_a_personal_code() {
        let yaml = rules::test_support::BASE.replace(
            "  - {name: A. Bērziņa, login: a.berzina, role: service_researcher, access: [service_is, identifying_data]}\n",
            "  - {name: 010190-12345, login: a.berzina, role: service_researcher, access: [service_is, identifying_data]}\n  - {name: 010190-12345, login: b.berzina, role: approver, access: [service_is]}\n",
        );
        let checked = check(yaml.as_bytes());
        let twice = checked
            .diagnostics
            .iter()
            .find(|d| d.code == "SF141" && d.pointer == "/authorised_persons/1/name")
            .expect("the person listed twice");
        assert!(
            twice
                .message_lv
                .as_deref()
                .is_some_and(|lv| lv.contains("izskatās pēc personas koda (netiek rādīta)")),
            "{twice:?}"
        );
        assert!(checked.diagnostics.len() > 1);
        for d in &checked.diagnostics {
            let lv = d.message_lv.as_deref().unwrap_or_default();
            assert!(!lv.is_empty(), "{d:?}");
            assert!(!lv.contains("010190") && !lv.contains("12345"), "{lv}");
        }
    }

    /// Issue #13: every finding of every layer this crate checks (YAML, schema, legal rules) on
    /// the spec corpus is said in Latvian too, for the Latvian pages: not blank, not the
    /// English, citing the same MK403 points and naming the same spec keys and values (in
    /// backquotes) as the English, without common English words — each code the corpus
    /// provokes, down to its every message.
    #[test]
    fn every_finding_is_said_in_latvian_too() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/specs");
        let mut dirs: Vec<_> = std::fs::read_dir(&corpus)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        assert!(dirs.len() >= 3, "{dirs:?}");
        let mut codes = std::collections::BTreeSet::new();
        let mut said = 0;
        let mut wrong = Vec::new();
        for dir in dirs {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let bytes = std::fs::read(entry.path()).unwrap();
                for d in check(&bytes).diagnostics {
                    said += 1;
                    codes.insert(d.code);
                    for w in testing::latvian_problems(&d) {
                        wrong.push(format!(
                            "{}: {}: {}\n    {w}",
                            entry.path().display(),
                            d.code,
                            d.message
                        ));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // The YAML and schema layers and every legal rule, each provoked by the corpus.
        for code in [
            "SF001", "SF002", "SF003", "SF004", "SF005", "SF010", "SF011", "SF012",
        ] {
            assert!(codes.contains(code), "{code}: {codes:?}");
        }
        for rule in rules::RULES {
            assert!(codes.contains(rule.code), "{}: {codes:?}", rule.code);
        }
        assert!(said > 150, "{said} findings");
    }

    #[test]
    fn bad_utf8_is_reported_at_the_first_bad_byte() {
        let checked = check(b"spec_version: 1\ntitle: P\xe2t\n");
        let d = &checked.diagnostics[0];
        assert_eq!(d.code, "SF005");
        let s = d.span.unwrap();
        assert_eq!((s.line, s.column), (2, 9));
    }

    #[test]
    fn positions_count_from_after_a_bom() {
        let checked = check("\u{feff}spec_version: 1\nid: x-study\nversion: 1\ninitiator: {kind: service, name: A}\nbogus: 1\n".as_bytes());
        let d = checked
            .diagnostics
            .iter()
            .find(|d| d.code == "SF010")
            .unwrap();
        let s = d.span.unwrap();
        assert_eq!((s.line, s.column), (5, 1));
        assert_eq!(
            s.start,
            "spec_version: 1\nid: x-study\nversion: 1\ninitiator: {kind: service, name: A}\n".len()
        );
        let bad = check(b"\xEF\xBB\xBFab: \xff\n");
        let s = bad.diagnostics[0].span.unwrap();
        assert_eq!((bad.diagnostics[0].code, s.line, s.column), ("SF005", 1, 5));
    }

    #[test]
    fn invalid_values_are_not_reported_as_missing() {
        // An impossible date must stay an SF012 error, not become SF121's "no date" warning.
        let yaml = br#"
spec_version: 1
id: date-study
version: 1
initiator: {kind: service, name: A}
publication: {planned_date: 2027-11-31}
"#;
        let checked = check(yaml);
        let at: Vec<(&str, &str)> = checked
            .diagnostics
            .iter()
            .filter(|d| d.pointer.starts_with("/publication"))
            .map(|d| (d.code, d.pointer.as_str()))
            .collect();
        assert_eq!(at, [("SF012", "/publication/planned_date")]);
        assert!(checked.errors() > 0);
    }
}
