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

use crate::values::Values;
use std::collections::{BTreeMap, HashMap};

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
    pub values: Values,
}

/// A row of an institution's answer: the personal code it names and its values by catalogue key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnswerRow {
    pub source: Source,
    pub personal_code: String,
    pub values: Values,
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

pub fn source_name(s: Source) -> &'static str {
    match s {
        Source::ServiceIs => "service_is",
        Source::InformationCentre => "information_centre",
        Source::PrisonRulings => "prison_rulings",
        Source::PrisonResocialisation => "prison_resocialisation",
    }
}

/// The catalogue's field `key` of what `source` answers: the Prison Administration answers its
/// rulings (p.15) and the resocialisation (p.16) in one row.
pub fn answered_field(source: Source, key: &str) -> Option<&'static catalogue::Field> {
    catalogue::lookup(source, key).or_else(|| {
        (source == Source::PrisonRulings)
            .then(|| catalogue::lookup(Source::PrisonResocialisation, key))
            .flatten()
    })
}

/// The values without identifiers (p.17.3): what the catalogue marks as an identifier of the
/// source, and whatever it does not know.
fn without_identifiers(source: Source, values: &Values) -> Values {
    values
        .iter()
        .filter(|(k, _)| {
            answered_field(source, k).is_some_and(|f| f.class != FieldClass::Identifier)
        })
        .map(|(k, v)| (k, v.clone()))
        .collect()
}

/// Where a blind index leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// One subject; `true` when only through its previous code.
    One(u32, bool),
    /// More than one subject: never linked (a code that was another's previous one).
    Many,
}

/// What a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    None,
    /// The subject at this position; `by_previous` when it matched the previous code only.
    One {
        subject: u32,
        by_previous: bool,
    },
    Ambiguous,
}

/// The keyed blind index of the subjects' codes, current and previous (p.12.1): the linkage of
/// both the step bodies and the bulk path. It holds indexes, never a code.
pub struct Linker {
    indexer: crate::vault::BlindIndexer,
    slots: HashMap<[u8; 32], Slot>,
}

impl Linker {
    pub fn new(keys: &StudyKeys, capacity: usize) -> Linker {
        Linker {
            indexer: keys.blind_indexer("personal_code"),
            slots: HashMap::with_capacity(capacity),
        }
    }

    /// Adds subject `subject` with its code and previous code.
    pub fn add(&mut self, subject: u32, code: &str, previous: Option<&str>) {
        let mut put = |index: [u8; 32], by_previous: bool| {
            self.slots
                .entry(index)
                .and_modify(|slot| {
                    *slot = match *slot {
                        Slot::One(s, p) if s == subject => Slot::One(s, p && by_previous),
                        _ => Slot::Many,
                    }
                })
                .or_insert(Slot::One(subject, by_previous));
        };
        if !code.is_empty() {
            put(self.indexer.index(code), false);
        }
        if let Some(p) = previous.filter(|p| !p.is_empty()) {
            put(self.indexer.index(p), true);
        }
    }

    pub fn find(&self, code: &str) -> Found {
        match self.slots.get(&self.indexer.index(code)) {
            None => Found::None,
            Some(Slot::One(subject, by_previous)) => Found::One {
                subject: *subject,
                by_previous: *by_previous,
            },
            Some(Slot::Many) => Found::Ambiguous,
        }
    }

    /// How many indexes it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Links the answers to the subjects through the blind index under `keys`.
pub fn link(keys: &StudyKeys, subjects: &[Subject], answers: &[AnswerRow]) -> Linked {
    let mut linker = Linker::new(keys, subjects.len() * 2);
    for (i, s) in subjects.iter().enumerate() {
        linker.add(
            i as u32,
            &s.personal_code,
            s.previous_personal_code.as_deref(),
        );
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
        match linker.find(&a.personal_code) {
            Found::None => r.unlinked += 1,
            Found::One {
                subject,
                by_previous,
            } => {
                r.linked += 1;
                let s = &subjects[subject as usize];
                found_by_previous[subject as usize] |= by_previous;
                rows.entry(name.to_owned()).or_default().push(Record {
                    subject: s.key.clone(),
                    values: without_identifiers(a.source, &a.values),
                });
            }
            Found::Ambiguous => r.ambiguous += 1,
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

    fn values(v: serde_json::Value) -> Values {
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
            values: Values::new(),
        };
        let subjects = vec![
            s("a", "290758-10403", None),
            s("b", "325035-11782", Some("290758-10403")),
        ];
        let answers = vec![AnswerRow {
            source: Source::InformationCentre,
            personal_code: "290758-10403".into(),
            values: Values::new(),
        }];
        let r = link(&keys, &subjects, &answers).report;
        assert_eq!(r.sources["information_centre"].ambiguous, 1);
    }
}
