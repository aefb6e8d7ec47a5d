//! The data operations together on the synthetic registries: the Service IS cohort and the
//! Punishment Register's proceedings are linked on the blind index, checked, anonymised with
//! the recidivism spec's policy and released; then every byte of the release is scanned for
//! each personal code, previous code, proceeding number and case number the generator made.
//! None may appear.

use std::collections::BTreeMap;

use jiff::civil::date;
use serde_json::Value;
use studyflow_dataplane::anonymise::{self, Policy};
use studyflow_dataplane::linkage::{self, AnswerRow, Subject};
use studyflow_dataplane::vault::StudyKeys;
use studyflow_dataplane::{quality, release};
use studyflow_sim::{Config, generate};
use studyflow_spec::catalogue::{self, Source};

#[test]
fn link_check_anonymise_release_and_no_identifier_left() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../specs/recidivism-2026-cohort.yaml"
    ))
    .unwrap();
    let spec = studyflow_spec::check(&bytes).spec.unwrap();
    let clients = generate(&Config {
        seed: 11,
        clients: 1500,
        ..Config::default()
    });
    let is_keys: Vec<&str> = spec
        .requested_fields()
        .iter()
        .filter(|f| f.source == Source::ServiceIs)
        .map(|f| f.key)
        .collect();
    let ic_keys: Vec<&str> = spec
        .requested_fields()
        .iter()
        .filter(|f| f.source == Source::InformationCentre)
        .map(|f| f.key)
        .collect();
    let subjects: Vec<Subject> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| Subject {
            key: format!("row-{i}"),
            personal_code: c.personal_code.expose(),
            previous_personal_code: c.previous_personal_code.as_ref().map(|p| p.expose()),
            values: c.record(&is_keys).into_iter().collect(),
        })
        .collect();
    // The Punishment Register answers per proceeding, naming the subject by the code it knows
    // (for a subject whose code changed, sometimes the previous one).
    let mut answers = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        for p in &c.proceedings {
            let code = match (&c.previous_personal_code, i % 2) {
                (Some(prev), 0) => prev.expose(),
                _ => c.personal_code.expose(),
            };
            let values: studyflow_dataplane::values::Values = ic_keys
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), p.value(k)?)))
                .collect();
            answers.push(AnswerRow {
                source: Source::InformationCentre,
                personal_code: code,
                values,
            });
        }
    }
    // A row about someone outside the study.
    answers.push(AnswerRow {
        source: Source::InformationCentre,
        personal_code: "290758-10403".into(),
        values: Default::default(),
    });

    let keys = StudyKeys::generate(&spec.id);
    let linked = linkage::link(&keys, &subjects, &answers);
    let ic = &linked.report.sources["information_centre"];
    assert_eq!(ic.linked, answers.len() - 1);
    assert_eq!((ic.unlinked, ic.ambiguous), (1, 0));
    assert!(linked.report.linked_by_previous_code > 0);

    let expected: Vec<&str> = ["sex", "birth_year", "region", "supervision_start_date"].into();
    let q = quality::check(&linked.subjects, &expected, date(2033, 7, 1));
    assert_eq!(q.findings(), 0, "{q:?}");

    let policy = Policy::from_spec(spec.anonymisation.as_ref().unwrap());
    let secret = anonymise::random_secret();
    let subjects_out = anonymise::anonymise(&linked.subjects, &policy, &secret)
        .expect("k reached with suppression allowed");
    // Proceedings: the same study IDs, dates relative to each subject's start of supervision.
    let starts: BTreeMap<&str, &Value> = linked
        .subjects
        .iter()
        .filter_map(|s| Some((s.subject.as_str(), s.values.get("supervision_start_date")?)))
        .collect();
    let rows_with_anchor: Vec<_> = linked.rows["information_centre"]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(s) = starts.get(r.subject.as_str()) {
                r.values.insert("supervision_start_date", (*s).clone());
            }
            r
        })
        .collect();
    let no_k = Policy {
        quasi_identifiers: vec![],
        ..policy.clone()
    };
    let proceedings = anonymise::anonymise(&rows_with_anchor, &no_k, &secret).unwrap();
    assert!(
        proceedings
            .records
            .iter()
            .all(|r| subjects_out.vault.values().any(|id| *id == r.study_id))
    );
    assert!(
        proceedings
            .records
            .iter()
            .all(|r| r.values.get("offence_date").is_none_or(Value::is_i64))
    );

    let dir = std::env::temp_dir().join(format!("studyflow-dataops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let written = release::write(
        &dir.join("release-1"),
        &[
            release::Table {
                name: "subjects",
                records: &subjects_out.records,
            },
            release::Table {
                name: "proceedings",
                records: &proceedings.records,
            },
        ],
    )
    .unwrap();
    assert_eq!(written.files.len(), 3);

    // The scan: every window of every file, for every identifier the generator made; and
    // every word, for every surname.
    let identifiers = studyflow_sim::IdentifierScan::of(&clients);
    let surnames: std::collections::HashSet<&str> =
        clients.iter().map(|c| c.last_name.as_str()).collect();
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir.join("release-1")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        scanned += text.len();
        assert_eq!(
            identifiers.count_in(text.as_bytes()),
            0,
            "an identifier reached the release"
        );
        for token in text.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
            assert!(!surnames.contains(token), "a surname reached the release");
        }
    }
    assert!(scanned > 10_000);
    // Identifier fields were all dropped, by name.
    for f in catalogue::CATALOGUE
        .iter()
        .filter(|f| f.class == catalogue::FieldClass::Identifier)
    {
        assert!(
            subjects_out
                .records
                .iter()
                .all(|r| !r.values.contains_key(f.key))
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
