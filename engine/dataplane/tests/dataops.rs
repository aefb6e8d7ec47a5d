//! The data operations together on the synthetic registries: the Service IS cohort and the
//! Punishment Register's proceedings are linked on the blind index, checked, anonymised with
//! the recidivism spec's policy and released; then every byte of the release is scanned for
//! each personal code, previous code, proceeding number and case number the generator made.
//! None may appear.

use jiff::civil::date;
use studyflow_dataplane::anonymise::{self, Policy};
use studyflow_dataplane::linkage::{self, AnswerRow, Subject};
use studyflow_dataplane::table::{Column, Table};
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
    let out = anonymise::anonymise_linked(linked, &policy, &secret)
        .expect("k reached with suppression allowed");
    // Proceedings: under the released subjects' study IDs, dates relative to each subject's
    // start of supervision.
    let proceedings = &out.tables[1];
    assert_eq!(proceedings.name, "information_centre");
    assert!(proceedings.rows > 1000);
    assert!(
        proceedings
            .subject
            .iter()
            .all(|s| (*s as usize) < out.study_ids.len())
    );
    assert!(matches!(
        proceedings.column("offence_date"),
        Some(Column::Int(_))
    ));

    let dir = std::env::temp_dir().join(format!("studyflow-dataops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tables: Vec<&Table> = out.tables.iter().collect();
    let written = release::write(&dir.join("release-1"), &out.study_ids, &tables, None).unwrap();
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
            out.tables
                .iter()
                .all(|t| !t.fields.iter().any(|c| c == f.key))
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
