//! The data-driven spec tests: every file under `tests/specs/valid` validates clean, every file
//! under `tests/specs/invalid` reports the check its name starts with (`SF110-….yaml`), and the
//! rendered diagnostics of each are pinned as a snapshot. The studies in `specs/` validate clean.

use std::path::Path;

use studyflow_tests::{root, studyflow};

/// (code, severity) of each finding in one file, and the exit code, from `--format json`.
fn findings(rel: &str) -> (Vec<(String, String)>, u8) {
    let run = studyflow(&["validate", "--format", "json", rel]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json output parses");
    let found = doc["files"][0]["diagnostics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let field = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
                    (field("code"), field("severity"))
                })
                .collect()
        })
        .unwrap_or_default();
    (found, run.code)
}

/// The check a corpus file is named after (`SF110-….yaml` → `SF110`).
fn named_code(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let code = name.split('-').next().unwrap_or_default();
    assert!(
        code.starts_with("SF"),
        "{name} must be named after the code it triggers"
    );
    code.to_owned()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn valid_specs_validate_clean() {
    insta::glob!("specs/valid/*.yaml", |path| {
        let rel = relative(path);
        let run = studyflow(&["validate", "--deny-warnings", &rel]);
        assert_eq!(run.code, 0, "{rel} should validate clean:\n{}", run.stdout);
        assert!(
            run.stdout
                .ends_with("1 file checked: 0 errors, 0 warnings\n"),
            "{}",
            run.stdout
        );
    });
}

#[test]
fn invalid_specs_report_their_check() {
    insta::glob!("specs/invalid/*", |path| {
        let rel = relative(path);
        let code = named_code(path);
        let (found, exit) = findings(&rel);
        let codes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
        assert!(
            codes.contains(&code.as_str()),
            "{rel} should report {code}, reported {codes:?}"
        );
        assert_eq!(exit, 1, "{rel} should fail validation");
        let human = studyflow(&["validate", &rel]);
        insta::assert_snapshot!(human.transcript());
    });
}

#[test]
fn warning_specs_report_only_their_warning() {
    insta::glob!("specs/warnings/*.yaml", |path| {
        let rel = relative(path);
        let code = named_code(path);
        let (found, exit) = findings(&rel);
        assert!(!found.is_empty(), "{rel} reports nothing");
        for (c, severity) in &found {
            assert_eq!(
                (c.as_str(), severity.as_str()),
                (code.as_str(), "warning"),
                "{rel}"
            );
        }
        assert_eq!(exit, 0, "warnings alone pass");
        assert_eq!(
            studyflow(&["validate", "--deny-warnings", &rel]).code,
            1,
            "{rel} with --deny-warnings"
        );
        insta::assert_snapshot!(studyflow(&["validate", &rel]).transcript());
    });
}

#[test]
fn every_check_has_an_invalid_example() {
    let dir = root().join("tests/specs/invalid");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/specs/invalid exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let codes = studyflow_spec::rules::STRUCTURAL
        .iter()
        .map(|c| c.code)
        .chain(studyflow_spec::rules::RULES.iter().map(|r| r.code));
    for code in codes {
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{code}-"))),
            "no example in tests/specs/invalid for {code}"
        );
    }
}

#[test]
fn the_studies_in_specs_validate_clean() {
    let run = studyflow(&["validate", "--deny-warnings", "specs"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains(": 0 errors, 0 warnings"),
        "{}",
        run.stdout
    );
}
