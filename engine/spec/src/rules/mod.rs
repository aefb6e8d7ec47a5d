//! Legal rules: one module per rule, each with a stable code, a default severity, the MK403
//! points it enforces, and tests. They run on the typed [`Spec`] and report by JSON pointer;
//! [`crate::check`] turns pointers into file positions.

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::Spec;

mod anonymisation;
mod application_complete;
mod authorised_persons;
mod contract_and_nda;
mod date_ranges;
mod direct_contact;
mod ethics_review;
mod external_application;
mod external_team;
mod field_justification;
mod field_source;
mod follow_up;
mod logins;
pub(crate) mod no_identifiers;
mod personal_data_types;
mod phases;
mod prison_notice;
mod request_identifiers;
mod research_programme;
mod retention;
mod secure_exchange;
mod security_measures;

/// A legal rule.
pub struct Rule {
    /// Stable code, `SF1xx`.
    pub code: &'static str,
    /// Stable kebab-case name.
    pub name: &'static str,
    /// The severity of its findings unless a finding says otherwise.
    pub severity: Severity,
    /// The MK403 points it enforces.
    pub points: &'static [&'static str],
    /// One line: what it checks.
    pub summary: &'static str,
    /// The same line in Latvian, for the Latvian pages and the reference.
    pub summary_lv: &'static str,
    /// What it checks in detail, and why, for `docs/rules.md`.
    pub explanation: &'static str,
    pub check: Check,
}

/// What a rule reads.
pub enum Check {
    /// The typed spec; runs when the structure allowed building it.
    Spec(fn(&Spec, &mut Findings)),
    /// The document as written (JSON form); always runs.
    Document(fn(&serde_json::Value, &mut Findings)),
}

/// A structural check (YAML and schema layers), for the reference and SARIF.
pub struct StructuralCheck {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    /// The same in Latvian.
    pub summary_lv: &'static str,
    /// What it finds, why it stops the other checks, and how to mend it, for `docs/rules.md`,
    /// SARIF's `help` and an editor's hover.
    pub explanation: &'static str,
}

/// The YAML and schema checks (SF0xx).
pub static STRUCTURAL: &[StructuralCheck] = &[
    StructuralCheck {
        code: "SF001",
        name: "yaml-syntax",
        severity: Severity::Error,
        summary: "YAML syntax error, at the line and column of the fault; also an empty file",
        summary_lv: "YAML sintakses kļūda, kļūdas rindā un kolonnā; arī tukšs fails",
        explanation: "A spec is a YAML document: this finding is where the YAML parser stopped — an indentation that does not line up, a `key: value` missing its colon or space, an unclosed quote or bracket, a tab where spaces are expected — at the line and column of the fault. An empty file, or one holding only comments, is reported here too: a study has at least its application. Nothing after a syntax error can be read reliably, so no schema check or legal rule runs on the file. Mend the line shown (the message names what the parser expected) and validate again.",
    },
    StructuralCheck {
        code: "SF002",
        name: "duplicate-key",
        severity: Severity::Error,
        summary: "a key given twice in one mapping, reported at the second",
        summary_lv: "atslēga vienā kartējumā norādīta divreiz, ziņots pie otrās",
        explanation: "A key given twice in one mapping — two `title:` lines in an application, a catalogue key listed twice under one source — is ambiguous: YAML readers disagree on which value wins, and an approver could read one value while the engine acts on the other. studyflow refuses the file rather than choose, and reports the second occurrence with the line of the first. Keep one of them; for a list of things, use a YAML sequence (`- item`) instead of repeating a key.",
    },
    StructuralCheck {
        code: "SF003",
        name: "input-limit",
        severity: Severity::Error,
        summary: "file over 1 MiB, nesting deeper than 64, or more than 100,000 nodes after alias expansion (\"billion laughs\")",
        summary_lv: "fails lielāks par 1 MiB, ligzdojums dziļāks par 64 vai vairāk nekā 100 000 mezglu pēc aizstājvārdu izvēršanas (\"billion laughs\")",
        explanation: "A spec is read with limits that keep a validator, an editor and the server safe from a hostile or broken file: at most 1 MiB, nesting at most 64 deep, and at most 100,000 nodes once anchors and aliases are expanded (the \"billion laughs\" attack, a few lines that expand to gigabytes). A real study's spec is a few hundred lines and far from each limit; a file over one of them is refused whole and nothing else is checked. Split out what does not belong in the spec (data, long annexes) and remove alias chains.",
    },
    StructuralCheck {
        code: "SF004",
        name: "unsupported-yaml",
        severity: Severity::Error,
        summary: "custom tags, mapping or sequence keys, merge keys (`<<`), more than one document",
        summary_lv: "pielāgoti tagi, atslēgas, kas ir kartējumi vai virknes, apvienošanas atslēgas (`<<`), vairāk nekā viens dokuments",
        explanation: "studyflow reads YAML 1.2's core schema as plain data and refuses what would let one file mean different things to different readers: custom tags (`!include`, `!!python/object`), keys that are mappings or sequences, merge keys (`<<: *defaults`, which YAML 1.2 dropped) and several documents in one file (`---` between them). Write each value out where it belongs, with plain keys, one study per file.",
    },
    StructuralCheck {
        code: "SF005",
        name: "encoding",
        severity: Severity::Error,
        summary: "bytes that are not UTF-8, at the first bad byte",
        summary_lv: "baiti, kas nav UTF-8, pie pirmā nederīgā baita",
        explanation: "A spec is UTF-8 text (Latvian names and the regulation's words need it). The file holds bytes that are not UTF-8 — typically a file saved as Windows-1257 or Latin-1 — and the position of the first such byte is reported. Nothing is checked further, since no text can be trusted after it. Save the file as UTF-8 (a byte-order mark at its start is accepted and ignored).",
    },
    StructuralCheck {
        code: "SF010",
        name: "unknown-property",
        severity: Severity::Error,
        summary: "a property the schema does not know, at its key, with \"did you mean\"",
        summary_lv: "shēmai nezināma īpašība, pie tās atslēgas, ar ieteikumu \"vai domājāt\"",
        explanation: "The JSON Schema of the spec (`schemas/study-spec.schema.json`) lists every property a spec may have; this property is none of them — often a typo (`purpouse`) or a key placed under the wrong section. It is reported at the key, with the nearest allowed name (\"did you mean\") and the MK403 points of the section it is in. An unknown property is never ignored: a misspelt key would otherwise silently leave out what the regulation requires. A catalogue key asked of the wrong source is reported by SF110 instead, which names the right source.",
    },
    StructuralCheck {
        code: "SF011",
        name: "missing-property",
        severity: Severity::Error,
        summary: "a required property is missing",
        summary_lv: "trūkst obligātas īpašības",
        explanation: "A property the schema requires is missing — an application item of MK403 p.3, a source's `fields`, a person's `login`. It is reported at the mapping that should hold it, with the MK403 points the property rests on. Where a legal rule explains a gap better (SF101 for the application's items), the rule's finding is given instead, and a plan check that needs the section waits for it rather than report its consequences. Add the property; an editor with the schema offers it with a skeleton.",
    },
    StructuralCheck {
        code: "SF012",
        name: "invalid-value",
        severity: Severity::Error,
        summary: "a value of the wrong type, not in the enum (with \"did you mean\"), a bad date, out of range",
        summary_lv: "nepareiza tipa vērtība, vērtība ārpus uzskaitījuma (ar ieteikumu \"vai domājāt\"), nederīgs datums, vērtība ārpus diapazona",
        explanation: "A value the schema does not accept: the wrong type (a list where a mapping is expected, text where a number is), a value outside an enumeration (with \"did you mean\" the nearest allowed one), a date that is not a real `YYYY-MM-DD` day (`2027-02-30`), or a number out of its range. Dates stay text in the YAML 1.2 core schema, and each is checked as a calendar day. The message never repeats a long value; it names the property, its allowed values or format, and the MK403 point it rests on.",
    },
    StructuralCheck {
        code: "SF013",
        name: "structure",
        severity: Severity::Note,
        summary: "the legal rules could not run because the spec's structure is invalid",
        summary_lv: "juridiskās pārbaudes nevarēja veikt, jo specifikācijas struktūra nav derīga",
        explanation: "The legal rules (SF1xx) read the spec as typed data; when its structure is too broken to build that — a section of the wrong type, a required mapping missing — they cannot run, and this note says so, so that a file with only schema findings is not mistaken for one that passed the legal checks. Mend the structural findings above it and validate again: the legal rules and the plan checks then run.",
    },
];

/// Every rule, in code order.
pub static RULES: &[&Rule] = &[
    &application_complete::RULE,
    &field_justification::RULE,
    &personal_data_types::RULE,
    &date_ranges::RULE,
    &field_source::RULE,
    &request_identifiers::RULE,
    &secure_exchange::RULE,
    &phases::RULE,
    &prison_notice::RULE,
    &external_application::RULE,
    &external_team::RULE,
    &research_programme::RULE,
    &ethics_review::RULE,
    &contract_and_nda::RULE,
    &security_measures::RULE,
    &anonymisation::RULE,
    &authorised_persons::RULE,
    &logins::RULE,
    &follow_up::RULE,
    &direct_contact::RULE,
    &retention::RULE,
    &no_identifiers::RULE,
];

/// Collects one rule's findings, filling in its code, name and points.
pub struct Findings {
    rule: &'static Rule,
    out: Vec<Diagnostic>,
}

impl Findings {
    fn push(&mut self, severity: Severity, pointer: &str, message: String) -> &mut Diagnostic {
        let d = Diagnostic::new(self.rule.code, self.rule.name, severity, message)
            .at(pointer)
            .citing(self.rule.points.iter().copied());
        self.out.push(d);
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    /// A finding at the rule's own severity.
    pub fn report(&mut self, pointer: &str, message: impl Into<String>) -> &mut Diagnostic {
        self.push(self.rule.severity, pointer, message.into())
    }

    /// Reports every item whose text is missing or blank, as "{lead} {what} (MK403 {point})",
    /// and in Latvian "{lead_lv} {what_lv} (MK403 N. p.)". Items are (key under `base`,
    /// value, what it must state, the same in Latvian).
    pub fn require_texts(
        &mut self,
        base: &str,
        items: &[(&str, Option<&str>, &str, &str)],
        (lead, lead_lv): (&str, &str),
        point: &str,
    ) {
        for (key, value, what, what_lv) in items {
            if blank(*value) {
                self.report(
                    &format!("{base}/{key}"),
                    format!("{lead} {what} (MK403 {point})"),
                )
                .lv(format!(
                    "{lead_lv} {what_lv} (MK403 {})",
                    crate::diagnostic::points_lv(&[point])
                ))
                .points(&[point]);
            }
        }
    }

    /// A finding at warning severity.
    pub fn warn(&mut self, pointer: &str, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Warning, pointer, message.into())
    }
}

impl Diagnostic {
    /// Replaces the cited points with the ones this finding rests on.
    pub fn points(&mut self, points: &[&str]) -> &mut Self {
        self.regulation = points.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Sets the message in Latvian (every rule's finding has one, for the Latvian pages).
    pub fn lv(&mut self, message: impl Into<String>) -> &mut Self {
        self.message_lv = Some(message.into());
        self
    }

    /// Sets the help text.
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the mend an editor can make.
    pub fn fix(&mut self, fix: crate::diagnostic::Fix) -> &mut Self {
        self.fix = Some(fix);
        self
    }
}

/// Whether the rule with this code reads the document as written rather than the typed spec.
pub fn reads_document(code: &str) -> bool {
    RULES
        .iter()
        .any(|r| r.code == code && matches!(r.check, Check::Document(_)))
}

/// Runs every rule that can run: document rules always, spec rules when there is a spec.
pub fn run(spec: Option<&Spec>, document: &serde_json::Value) -> Vec<Diagnostic> {
    RULES
        .iter()
        .flat_map(|rule| run_one(rule, spec, document))
        .collect()
}

fn run_one(
    rule: &'static Rule,
    spec: Option<&Spec>,
    document: &serde_json::Value,
) -> Vec<Diagnostic> {
    let mut f = Findings {
        rule,
        out: Vec::new(),
    };
    match (&rule.check, spec) {
        (Check::Spec(check), Some(spec)) => check(spec, &mut f),
        (Check::Document(check), _) => check(document, &mut f),
        (Check::Spec(_), None) => {}
    }
    f.out
}

/// Runs one rule on a spec (for its tests); a document rule reads the spec's JSON form. Every
/// finding a rule's test provokes is checked to be said in Latvian too.
#[cfg(test)]
pub(crate) fn run_rule(rule: &'static Rule, spec: &Spec) -> Vec<Diagnostic> {
    let document = serde_json::to_value(spec).unwrap_or_default();
    let found = run_one(rule, Some(spec), &document);
    for d in &found {
        let wrong = crate::testing::latvian_problems(d);
        assert!(wrong.is_empty(), "{}: {}: {wrong:?}", d.code, d.message);
    }
    found
}

/// Whether a required text says nothing: absent, or only whitespace and invisible format
/// characters (Unicode category Cf, e.g. U+200B ZERO WIDTH SPACE), which pass for text in an
/// editor and a diff and are none.
pub fn blank(text: Option<&str>) -> bool {
    use unicode_general_category::{GeneralCategory, get_general_category};
    text.is_none_or(|t| {
        t.chars()
            .all(|c| c.is_whitespace() || get_general_category(c) == GeneralCategory::Format)
    })
}

/// The rule reference (`docs/rules.md`).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Rule reference\n\n<!-- Generated from engine/spec/src/rules by `studyflow rules`; a test fails when it is stale. -->\n\n\
         `studyflow validate` reports three layers of findings. Codes are stable: a code is never reused \
         for a different check.\n\n\
         ## YAML and schema (SF0xx)\n\n\
         | code | name | severity | what |\n|---|---|---|---|\n",
    );
    for c in STRUCTURAL {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.code,
            c.name,
            c.severity.as_str(),
            c.summary
        ));
    }
    for c in STRUCTURAL {
        out.push_str(&c.doc().section());
    }
    out.push_str(
        "\nA schema finding cites the MK403 points of the property it is about. Where a legal rule \
         explains the same node better (a catalogue key asked of the wrong source, a wave that \
         MK403 p.19 does not know), the rule's finding replaces the schema's.\n\n\
         ## Legal rules (SF1xx)\n",
    );
    for rule in RULES {
        out.push_str(&rule.doc().section());
    }
    out
}

/// What the rule reference says about one rule, of any layer.
#[derive(Debug, Clone, Copy)]
pub struct RuleDoc<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub severity: Severity,
    pub points: &'a [&'a str],
    pub summary: &'a str,
    /// The summary in Latvian.
    pub summary_lv: &'a str,
    pub explanation: &'a str,
}

impl RuleDoc<'_> {
    /// The rule's section of `docs/rules.md` (a YAML or schema check cites no MK403 point of
    /// its own: its findings cite the property's).
    pub fn section(&self) -> String {
        let points = if self.points.is_empty() {
            String::new()
        } else {
            format!(" · **MK403:** {}", self.points.join(", "))
        };
        format!(
            "\n### {} `{}`\n\n**Severity:** {}{points}\n\n{}\n\n*Latviski:* {}\n\n{}\n",
            self.code,
            self.name,
            self.severity.as_str(),
            self.summary,
            self.summary_lv,
            self.explanation.trim()
        )
    }
}

impl StructuralCheck {
    pub fn doc(&self) -> RuleDoc<'_> {
        RuleDoc {
            code: self.code,
            name: self.name,
            severity: self.severity,
            points: &[],
            summary: self.summary,
            summary_lv: self.summary_lv,
            explanation: self.explanation,
        }
    }
}

impl Rule {
    pub fn doc(&self) -> RuleDoc<'_> {
        RuleDoc {
            code: self.code,
            name: self.name,
            severity: self.severity,
            points: self.points,
            summary: self.summary,
            summary_lv: self.summary_lv,
            explanation: self.explanation,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::model::Spec;

    /// A minimal valid Service study, as YAML, for rules to modify.
    pub const BASE: &str = r#"
spec_version: 1
id: base-study
title: Base study
version: 1
initiator: {kind: service, name: Research Unit}
purpose: Measure reoffending.
methodology:
  design: longitudinal
  description: Cohort analysis.
  sample:
    population: Probation clients
    inclusion_criteria: [Supervision started in 2026]
    period: {from: 2026-01-01, to: 2026-12-31}
    expected_size: 100
  acquisition: {methods: Register extraction, procedures: Automated requests}
data_scope:
  service_is:
    extraction: automated
    volume: {period: {from: 2026-01-01, to: 2026-12-31}, expected_records: 100}
    fields:
      personal_code: to request p.13 data
      proceeding_number: to request p.13 data
      supervision_start_date: anchor of the follow-ups
      supervision_end_date: anchor of the follow-ups
      sex: covariate
  information_centre:
    exchange: automated
    volume: {period: {from: 2020-01-01, to: 2026-12-31}, expected_records: 300}
    fields:
      offence_date: time to reoffence
personal_data_types: [personal_code, proceeding_identifiers, probation_records, demographics, criminal_records]
phases:
  - {id: acquisition, title: Acquisition, start: 2027-01-04, deadline: 2027-03-31}
  - {id: analysis, title: Analysis, start: 2027-04-01, deadline: 2027-09-30}
publication: {planned_date: 2027-11-30}
anonymisation:
  purpose_reachable_with_anonymised_data: true
  date_policy: month
  quasi_identifiers: [sex]
  k: 5
authorised_persons:
  - {name: A. Bērziņa, login: a.berzina, role: service_researcher, access: [service_is, identifying_data]}
retention:
  anonymised_data: {keep: permanent}
"#;

    /// BASE with `edit` applied to its JSON form.
    pub fn spec_with(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let src = crate::source::SourceText::new(BASE);
        let (doc, d) = crate::yaml::parse(&src, crate::yaml::Limits::default());
        assert!(d.is_empty(), "{d:?}");
        let mut value = doc.expect("base parses").value;
        edit(&mut value);
        serde_json::from_value(value).expect("edited base deserializes")
    }

    pub fn base() -> Spec {
        spec_with(|_| {})
    }

    /// Codes and pointers of the findings, for compact assertions.
    pub fn found(diags: &[crate::Diagnostic]) -> Vec<(String, &'static str)> {
        diags
            .iter()
            .map(|d| (d.pointer.clone(), d.severity.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    /// The code of `text` up to its tests, string and character literals left out.
    fn code(text: &str) -> String {
        let text = text.split("#[cfg(test)]").next().unwrap_or(text);
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            _ => {}
                        }
                    }
                    out.push_str("\"\"");
                }
                // A character literal ('x', '\n'), not a lifetime.
                '\'' => {
                    let rest: String = chars.clone().take(3).collect();
                    let skip = if rest.starts_with('\\') {
                        3
                    } else if rest.chars().nth(1) == Some('\'') {
                        2
                    } else {
                        0
                    };
                    for _ in 0..skip {
                        chars.next();
                    }
                    out.push_str(if skip > 0 { "' '" } else { "'" });
                }
                '/' if chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            out.push('\n');
                            break;
                        }
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// Every finding a rule reports is given its Latvian where it is reported: each
    /// `.report(…)` and `.warn(…)` of the rules' code chains `.lv(…)` (the tests and the corpus
    /// check what is said; this, that no branch they do not reach was forgotten).
    #[test]
    fn every_report_chains_its_latvian() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("anonymisation.rs", include_str!("anonymisation.rs")),
            (
                "application_complete.rs",
                include_str!("application_complete.rs"),
            ),
            (
                "authorised_persons.rs",
                include_str!("authorised_persons.rs"),
            ),
            ("contract_and_nda.rs", include_str!("contract_and_nda.rs")),
            ("date_ranges.rs", include_str!("date_ranges.rs")),
            ("direct_contact.rs", include_str!("direct_contact.rs")),
            ("ethics_review.rs", include_str!("ethics_review.rs")),
            (
                "external_application.rs",
                include_str!("external_application.rs"),
            ),
            ("external_team.rs", include_str!("external_team.rs")),
            (
                "field_justification.rs",
                include_str!("field_justification.rs"),
            ),
            ("field_source.rs", include_str!("field_source.rs")),
            ("follow_up.rs", include_str!("follow_up.rs")),
            ("logins.rs", include_str!("logins.rs")),
            ("no_identifiers.rs", include_str!("no_identifiers.rs")),
            (
                "personal_data_types.rs",
                include_str!("personal_data_types.rs"),
            ),
            ("phases.rs", include_str!("phases.rs")),
            ("prison_notice.rs", include_str!("prison_notice.rs")),
            (
                "request_identifiers.rs",
                include_str!("request_identifiers.rs"),
            ),
            (
                "research_programme.rs",
                include_str!("research_programme.rs"),
            ),
            ("retention.rs", include_str!("retention.rs")),
            ("secure_exchange.rs", include_str!("secure_exchange.rs")),
            ("security_measures.rs", include_str!("security_measures.rs")),
        ];
        assert_eq!(
            sources.len(),
            super::RULES.len() + 1,
            "a rule's file is not listed"
        );
        let mut reports = 0;
        let mut forgotten = Vec::new();
        for (file, text) in sources {
            let code = code(text);
            // (`Findings::push` makes the diagnostic each report then says.)
            let made = if file == "mod.rs" {
                "\0"
            } else {
                "Diagnostic::new("
            };
            let calls = code
                .match_indices(".report(")
                .chain(code.match_indices(".warn("))
                .chain(code.match_indices(made));
            for (at, call) in calls {
                // The chain: up to the `;`, `,` or `}` that ends it at the call's own depth.
                let mut depth = 0i32;
                let mut end = code.len();
                for (i, c) in code[at + call.len() - 1..].char_indices() {
                    match c {
                        '(' | '[' | '{' => depth += 1,
                        ')' | ']' => depth -= 1,
                        '}' if depth == 0 => {
                            end = at + call.len() - 1 + i;
                            break;
                        }
                        '}' => depth -= 1,
                        ';' | ',' if depth == 0 => {
                            end = at + call.len() - 1 + i;
                            break;
                        }
                        _ => {}
                    }
                }
                let chain = &code[at..end];
                reports += 1;
                if !chain.contains(".lv(") && !chain.contains(".with_latvian(") {
                    let line = code[..at].lines().count();
                    forgotten.push(format!("{file} (about line {line}): {chain}"));
                }
            }
        }
        assert!(forgotten.is_empty(), "{}", forgotten.join("\n\n"));
        assert!(reports > 100, "{reports}");
    }
}
