//! Merge and linkage (MK403 p.17.1–17.2) and the deletion of identifiers right after it
//! (p.17.3).
//!
//! The Service IS supplies the subjects; the Information Centre answers per criminal
//! proceeding and the Prison Administration per ruling, each row naming its subject by personal
//! code. Rows are joined on a keyed blind index of the personal code — the current code or the
//! previous one (p.12.1) — never on the code itself, so the join works on values that say
//! nothing without the study's index key. The linked dataset carries no identifier at all: the
//! codes and proceeding, ruling and case numbers are left behind as the linkage finishes
//! (p.17.3). The report counts what was linked, what matched no subject and what matched more
//! than one, and never names an identifier.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use studyflow_spec::catalogue::{self, FieldClass, Source};

use crate::anonymise::Record;
use crate::vault::StudyKeys;

/// A subject from the Service IS: its key in the study, its codes, and its values by
/// catalogue key (identifiers among them are dropped by the linkage).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub key: String,
    pub personal_code: String,
    pub previous_personal_code: Option<String>,
    pub values: BTreeMap<String, Value>,
}

/// A row of an institution's answer: the personal code it names and its values by catalogue key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnswerRow {
    pub source: Source,
    pub personal_code: String,
    pub values: BTreeMap<String, Value>,
}

/// What linkage did, per source. Counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceReport {
    pub rows: usize,
    pub linked: usize,
    /// Rows whose personal code matched no subject of the study.
    pub unlinked: usize,
    /// Rows whose code matched more than one subject (a code that was another's previous
    /// one): not linked, since linking them to either could be wrong.
    pub ambiguous: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkageReport {
    pub subjects: usize,
    /// Subjects found by their previous personal code (p.12.1).
    pub linked_by_previous_code: usize,
    pub sources: BTreeMap<String, SourceReport>,
}

/// The linked study dataset: one record per subject and the rows of each source under their
/// subject's key, none of them carrying an identifier.
#[derive(Debug, Clone, Default)]
pub struct Linked {
    pub subjects: Vec<Record>,
    /// Source name → rows, each under its subject's key.
    pub rows: BTreeMap<String, Vec<Record>>,
    pub report: LinkageReport,
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::ServiceIs => "service_is",
        Source::InformationCentre => "information_centre",
        Source::PrisonRulings => "prison_rulings",
        Source::PrisonResocialisation => "prison_resocialisation",
    }
}

/// The values without identifiers (p.17.3): what the catalogue marks as an identifier of the
/// source, and whatever it does not know.
fn without_identifiers(
    source: Source,
    values: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    values
        .iter()
        .filter(|(k, _)| {
            catalogue::lookup(source, k).is_some_and(|f| f.class != FieldClass::Identifier)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Links the answers to the subjects through the blind index under `keys`.
pub fn link(keys: &StudyKeys, subjects: &[Subject], answers: &[AnswerRow]) -> Linked {
    let index = |code: &str| keys.blind_index("personal_code", code);
    let mut by_index: HashMap<[u8; 32], Vec<usize>> = HashMap::with_capacity(subjects.len() * 2);
    for (i, s) in subjects.iter().enumerate() {
        by_index.entry(index(&s.personal_code)).or_default().push(i);
        if let Some(prev) = &s.previous_personal_code {
            let e = by_index.entry(index(prev)).or_default();
            if !e.contains(&i) {
                e.push(i);
            }
        }
    }
    let mut report = LinkageReport {
        subjects: subjects.len(),
        ..LinkageReport::default()
    };
    let mut found_by_previous = vec![false; subjects.len()];
    let mut rows: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for a in answers {
        let name = source_name(a.source);
        let r = report.sources.entry(name.to_owned()).or_default();
        r.rows += 1;
        match by_index.get(&index(&a.personal_code)).map(Vec::as_slice) {
            None | Some([]) => r.unlinked += 1,
            Some([i]) => {
                r.linked += 1;
                let s = &subjects[*i];
                if s.previous_personal_code.as_deref().is_some_and(|p| {
                    keys.blind_index("personal_code", p) == index(&a.personal_code)
                }) && keys.blind_index("personal_code", &s.personal_code)
                    != index(&a.personal_code)
                {
                    found_by_previous[*i] = true;
                }
                rows.entry(name.to_owned()).or_default().push(Record {
                    subject: s.key.clone(),
                    values: without_identifiers(a.source, &a.values),
                });
            }
            Some(_) => r.ambiguous += 1,
        }
    }
    report.linked_by_previous_code = found_by_previous.iter().filter(|b| **b).count();
    let subjects = subjects
        .iter()
        .map(|s| Record {
            subject: s.key.clone(),
            values: without_identifiers(Source::ServiceIs, &s.values),
        })
        .collect();
    Linked {
        subjects,
        rows,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(v: serde_json::Value) -> BTreeMap<String, Value> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn rows_meet_their_subject_by_current_or_previous_code_and_lose_their_identifiers() {
        let keys = StudyKeys::generate("link-test");
        let subjects = vec![
            Subject {
                key: "s1".into(),
                personal_code: "290758-10403".into(),
                previous_personal_code: None,
                values: values(
                    json!({"personal_code": "290758-10403", "case_number": "R-1", "sex": "male"}),
                ),
            },
            Subject {
                key: "s2".into(),
                personal_code: "325035-11782".into(),
                previous_personal_code: Some("010180-10006".into()),
                values: values(json!({"personal_code": "325035-11782", "sex": "female"})),
            },
        ];
        let row = |code: &str, source: Source, v: serde_json::Value| AnswerRow {
            source,
            personal_code: code.into(),
            values: values(v),
        };
        let answers = vec![
            row(
                "29075810403",
                Source::InformationCentre,
                json!({"proceeding_number": "11826001234", "offence_date": "2024-02-01"}),
            ),
            row(
                "010180-10006",
                Source::InformationCentre,
                json!({"proceeding_number": "11826009999", "offence_date": "2019-05-05"}),
            ),
            row(
                "111111-11111",
                Source::InformationCentre,
                json!({"proceeding_number": "11826000001"}),
            ),
            row(
                "325035-11782",
                Source::PrisonRulings,
                json!({"prison_admission_date": "2020-01-01"}),
            ),
        ];
        let linked = link(&keys, &subjects, &answers);
        let ic = &linked.report.sources["information_centre"];
        assert_eq!(
            (ic.rows, ic.linked, ic.unlinked, ic.ambiguous),
            (3, 2, 1, 0)
        );
        assert_eq!(linked.report.sources["prison_rulings"].linked, 1);
        assert_eq!(linked.report.linked_by_previous_code, 1);
        let ic_rows = &linked.rows["information_centre"];
        assert_eq!(ic_rows[1].subject, "s2");
        let everything = format!(
            "{:?} {:?} {:?}",
            linked.subjects, linked.rows, linked.report
        );
        for id in ["290758", "325035", "010180", "11826", "R-1"] {
            assert!(!everything.contains(id), "{id} left in the linked dataset");
        }
        assert_eq!(linked.subjects[0].values["sex"], json!("male"));
    }

    #[test]
    fn a_code_shared_through_a_previous_code_is_ambiguous_not_guessed() {
        let keys = StudyKeys::generate("link-test-2");
        let s = |key: &str, code: &str, prev: Option<&str>| Subject {
            key: key.into(),
            personal_code: code.into(),
            previous_personal_code: prev.map(str::to_owned),
            values: BTreeMap::new(),
        };
        let subjects = vec![
            s("a", "290758-10403", None),
            s("b", "325035-11782", Some("290758-10403")),
        ];
        let answers = vec![AnswerRow {
            source: Source::InformationCentre,
            personal_code: "290758-10403".into(),
            values: BTreeMap::new(),
        }];
        let r = link(&keys, &subjects, &answers).report;
        assert_eq!(r.sources["information_centre"].ambiguous, 1);
    }
}
