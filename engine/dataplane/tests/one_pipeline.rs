//! One pipeline, two readers: the sources' CSV files streamed from disk (a study of a million
//! clients, `bulk_bench`) and the engine's imported rows (the step bodies) feed the same
//! linkage core, anonymisation and release writer. On the same generated extraction and
//! answers they give the same linkage report, the same k-anonymity report, and releases with
//! the same rows under the same study IDs. Then the file reader's refusals: a blocked release
//! writes nothing, a bad file is named with its line and never echoes a cell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use studyflow_dataplane::anonymise::{AnonymisedTables, Policy, anonymise_linked};
use studyflow_dataplane::csv_import::{import, parse_csv};
use studyflow_dataplane::linkage::{self, AnswerRow};
use studyflow_dataplane::release;
use studyflow_dataplane::table::Table;
use studyflow_dataplane::vault::StudyKeys;
use studyflow_sim::{Config, IdentifierScan, generate};
use studyflow_spec::catalogue::Source;

fn spec(name: &str) -> studyflow_spec::Spec {
    let bytes = std::fs::read(format!(
        "{}/../../specs/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    studyflow_spec::check(&bytes).spec.unwrap()
}

fn fields(spec: &studyflow_spec::Spec, source: Source) -> Vec<&str> {
    spec.requested_fields()
        .iter()
        .filter(|f| {
            f.source == source
                || (source == Source::PrisonRulings && f.source == Source::PrisonResocialisation)
        })
        .map(|f| f.key)
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("studyflow-pipeline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An answer file as the step bodies see it.
fn answers(path: &Path, source: Source) -> Vec<AnswerRow> {
    let text = std::fs::read_to_string(path).unwrap();
    let records = parse_csv(&text).unwrap();
    let (header, rows) = records.split_first().unwrap();
    rows.iter()
        .filter(|r| !(r.len() == 1 && r[0].is_empty()))
        .map(|r| AnswerRow {
            source,
            personal_code: r[0].clone(),
            values: header[1..]
                .iter()
                .zip(&r[1..])
                .map(|(h, v)| {
                    let v = if v.is_empty() {
                        serde_json::Value::Null
                    } else {
                        v.clone().into()
                    };
                    (h.clone(), v)
                })
                .collect(),
        })
        .collect()
}

/// A release's table as a sorted list of rows (column → cell).
fn table(folder: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(folder.join(format!("{name}.csv"))).unwrap();
    let records = parse_csv(&text).unwrap();
    let (header, rows) = records.split_first().unwrap();
    let mut out: Vec<BTreeMap<String, String>> = rows
        .iter()
        .filter(|r| !(r.len() == 1 && r[0].is_empty()))
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect();
    out.sort();
    out
}

fn write(a: &AnonymisedTables, folder: &Path) {
    let tables: Vec<&Table> = a.tables.iter().collect();
    release::write(folder, &a.study_ids, &tables, None).unwrap();
}

#[test]
fn the_file_reader_and_the_engines_rows_give_the_same_release() {
    let recidivism = spec("recidivism-2026-cohort");
    let resocialisation = spec("resocialisation-programmes-university");
    let clients = generate(&Config {
        seed: 17,
        clients: 3000,
        ..Config::default()
    });
    let dir = scratch("same");
    let service = fields(&recidivism, Source::ServiceIs);
    let ic = fields(&recidivism, Source::InformationCentre);
    let pa = fields(&resocialisation, Source::PrisonRulings);
    let counts =
        studyflow_sim::export::write_csv(&clients, &dir, true, &service, &ic, &pa).unwrap();
    assert!(
        counts.proceedings > 3000 && counts.rulings > 100,
        "{counts:?}"
    );
    let keys = StudyKeys::generate("bulk-test");
    let policy = Policy::from_spec(recidivism.anonymisation.as_ref().unwrap());
    let secret = [7u8; 32];

    // The step bodies' path.
    let mut asked: Vec<&str> = service.clone();
    asked.push("previous_personal_code");
    let subjects = import(
        &std::fs::read(dir.join("clients.csv")).unwrap(),
        &asked,
        true,
    )
    .unwrap();
    let mut rows = answers(
        &dir.join("information_centre.csv"),
        Source::InformationCentre,
    );
    rows.extend(answers(
        &dir.join("prison_administration.csv"),
        Source::PrisonRulings,
    ));
    let linked = linkage::link(&keys, &subjects, &rows);
    let records_report = linked.report.clone();
    let study = anonymise_linked(linked, &policy, &secret).unwrap();
    write(&study, &dir.join("records"));

    // The file reader.
    let b = linkage::link_files(
        &keys,
        &dir.join("clients.csv"),
        &[
            (
                Source::InformationCentre,
                dir.join("information_centre.csv").as_path(),
            ),
            (
                Source::PrisonRulings,
                dir.join("prison_administration.csv").as_path(),
            ),
        ],
    )
    .unwrap();
    assert_eq!(b.report, records_report);
    assert!(b.report.linked_by_previous_code > 0, "{:?}", b.report);
    assert!(b.report.unreadable_dates.is_empty(), "{:?}", b.report);
    let a = anonymise_linked(b, &policy, &secret).unwrap();
    assert_eq!(a.report, study.report);
    assert!(
        a.report.suppressed > 0 && a.report.classes > 10,
        "{:?}",
        a.report
    );
    write(&a, &dir.join("bulk"));
    for name in ["subjects", "information_centre", "prison_rulings"] {
        let (x, y) = (
            table(&dir.join("records"), name),
            table(&dir.join("bulk"), name),
        );
        assert!(!x.is_empty(), "{name}");
        assert_eq!(x.len(), y.len(), "{name}");
        assert_eq!(x, y, "{name}: the same rows under the same study IDs");
    }
    // And nothing identifying in the bulk release.
    let scan = IdentifierScan::of(&clients);
    for f in std::fs::read_dir(dir.join("bulk")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert_eq!(scan.count_in(&bytes), 0);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_blocked_release_writes_nothing_and_bad_files_are_named() {
    let recidivism = spec("recidivism-2026-cohort");
    let clients = generate(&Config {
        seed: 3,
        clients: 200,
        ..Config::default()
    });
    let dir = scratch("blocked");
    let service = fields(&recidivism, Source::ServiceIs);
    let ic = fields(&recidivism, Source::InformationCentre);
    studyflow_sim::export::write_csv(&clients, &dir, true, &service, &ic, &[]).unwrap();
    let keys = StudyKeys::generate("bulk-blocked");
    let strict = Policy {
        k: 50,
        suppression_allowed: false,
        ..Policy::from_spec(recidivism.anonymisation.as_ref().unwrap())
    };
    let linked = linkage::link_files(
        &keys,
        &dir.join("clients.csv"),
        &[(
            Source::InformationCentre,
            dir.join("information_centre.csv").as_path(),
        )],
    )
    .unwrap();
    match anonymise_linked(linked, &strict, &[1; 32]) {
        Err(b) => {
            assert!(!b.0.offending.is_empty());
            assert!(b.to_string().contains("k = 50"), "{b}");
        }
        Ok(a) => panic!("not blocked: {:?}", a.report),
    }
    assert!(!dir.join("release").exists());
    // A row with a field too many is named by file and line.
    let bad = dir.join("bad.csv");
    let mut text = std::fs::read_to_string(dir.join("information_centre.csv")).unwrap();
    text.push_str(
        "290758-10403,x,y,z,extra,extra,extra,extra,extra,extra,extra,extra,extra,extra\n",
    );
    std::fs::write(&bad, text.as_bytes()).unwrap();
    let lines = text.lines().count();
    let e = linkage::link_files(
        &keys,
        &dir.join("clients.csv"),
        &[(Source::InformationCentre, bad.as_path())],
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().contains(&format!("bad.csv, line {lines}")),
        "{e}"
    );
    assert!(
        !e.to_string().contains("290758"),
        "no identifier in the error: {e}"
    );
    // A quote after a closed quote is refused as a supplied file would be, at its line.
    let mut text = std::fs::read_to_string(dir.join("information_centre.csv")).unwrap();
    let width = text.lines().next().unwrap().split(',').count();
    text.push_str(&format!("\"290758-10403\"x{}\n", ",".repeat(width - 1)));
    std::fs::write(&bad, text.as_bytes()).unwrap();
    let e = linkage::link_files(
        &keys,
        &dir.join("clients.csv"),
        &[(Source::InformationCentre, bad.as_path())],
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().contains(&format!(
            "bad.csv, line {}: text after a closing quote",
            text.lines().count()
        )),
        "{e}"
    );
    assert!(!e.to_string().contains("290758"), "{e}");
    // A byte-order mark before a quoted first header (R's write.csv with a BOM) is the file's.
    let clients = std::fs::read_to_string(dir.join("clients.csv")).unwrap();
    let (head, rest) = clients.split_once(',').unwrap();
    let bom = dir.join("bom.csv");
    std::fs::write(&bom, format!("\u{feff}\"{head}\",{rest}")).unwrap();
    let linked = linkage::link_files(&keys, &bom, &[]).unwrap();
    assert_eq!(linked.report.subjects, clients.lines().count() - 1);
    // A column the source does not have is refused.
    std::fs::write(&bad, "personal_code,population_register_id\n").unwrap();
    let e = linkage::link_files(
        &keys,
        &dir.join("clients.csv"),
        &[(Source::InformationCentre, bad.as_path())],
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("column 2 is not a field"), "{e}");
    assert!(
        !e.to_string().contains("population_register_id"),
        "never echoed: {e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
