//! The CLI's contract: exit codes, and stdout and stderr of every output format, pinned.

use studyflow_tests::{TempDir, studyflow};

const INVALID: &str = "tests/cli/invalid.yaml";
const VALID: &str = "tests/cli/valid.yaml";
const WARNING: &str = "tests/cli/warning.yaml";

#[test]
fn human_format() {
    insta::assert_snapshot!(studyflow(&["validate", INVALID]).transcript());
}

#[test]
fn json_format() {
    let run = studyflow(&["validate", "--format", "json", INVALID, VALID]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(doc["summary"]["files"], 2);
    let d = &doc["files"][0]["diagnostics"][0];
    for key in [
        "code",
        "severity",
        "message",
        "regulation",
        "line",
        "column",
        "end_line",
        "end_column",
        "help",
    ] {
        assert!(d.get(key).is_some(), "diagnostic lacks `{key}`");
    }
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn sarif_format() {
    let run = studyflow(&["validate", "--format", "sarif", INVALID]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(doc["version"], "2.1.0");
    let run0 = &doc["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().expect("rules");
    for result in run0["results"].as_array().expect("results") {
        let i = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[i]["id"], result["ruleId"]);
        let region = &result["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap_or(0) >= 1);
        let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or("");
        assert!(
            !uri.starts_with('/') && !uri.contains('\\'),
            "GitHub wants relative URIs: {uri}"
        );
        assert!(
            result["partialFingerprints"]["studyflow/v1"]
                .as_str()
                .is_some_and(|f| f.len() == 32),
            "{result}"
        );
    }
    // Every rule of every layer, described whole, its help at its own section of the rule
    // reference.
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md")).unwrap();
    let anchors: Vec<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .replace(' ', "-")
        })
        .collect();
    assert!(rules.len() >= 40, "{}", rules.len());
    for code in ["SF001", "SF010", "SF013", "SF101", "SF201"] {
        assert!(rules.iter().any(|r| r["id"] == code), "{code}");
    }
    for r in rules {
        for key in ["fullDescription", "help", "shortDescription"] {
            assert!(
                r[key]["text"]
                    .as_str()
                    .is_some_and(|t| !t.trim().is_empty()),
                "{} lacks {key}",
                r["id"]
            );
        }
        let uri = r["helpUri"].as_str().unwrap();
        let anchor = uri.split_once('#').map(|(_, a)| a).unwrap_or("");
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{}: no section `{anchor}` in docs/rules.md",
            r["id"]
        );
        // Its own section, named by its code, and help that explains (the YAML and schema
        // checks included): more than its one-line summary, in text and in Markdown.
        let id = r["id"].as_str().unwrap();
        assert!(anchor.starts_with(&id.to_lowercase()), "{id}: {anchor}");
        let full = r["fullDescription"]["text"].as_str().unwrap();
        let short = r["shortDescription"]["text"].as_str().unwrap();
        assert!(full.len() > short.len() && full != short, "{id}: {full}");
        assert!(
            r["help"]["markdown"]
                .as_str()
                .is_some_and(|m| m.contains(full) && m.contains(uri)),
            "{id}: {}",
            r["help"]
        );
    }
    let mut seen: Vec<&str> = rules
        .iter()
        .map(|r| r["helpUri"].as_str().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rules.len(), "one section per rule");
    // Given as an absolute path under the directory it runs in: still a relative URI.
    let absolute = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(INVALID)
        .canonicalize()
        .unwrap();
    let again = studyflow(&[
        "validate",
        "--format",
        "sarif",
        "--docs-url",
        "https://docs.example.org/rules.md",
        absolute.to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    let uri = &doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(uri["uri"], INVALID, "{uri}");
    assert!(
        doc["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.example.org/rules.md#")
    );
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn github_format() {
    insta::assert_snapshot!(studyflow(&["validate", "--format", "github", INVALID]).transcript());
}

#[test]
fn exit_codes() {
    assert_eq!(studyflow(&["validate", VALID]).code, 0);
    assert_eq!(
        studyflow(&["validate", WARNING]).code,
        0,
        "warnings alone pass"
    );
    assert_eq!(studyflow(&["validate", "--deny-warnings", WARNING]).code, 1);
    assert_eq!(studyflow(&["validate", INVALID]).code, 1);
}

#[test]
fn io_failure_exits_2_and_still_reports_the_rest() {
    let run = studyflow(&["validate", "tests/cli/no-such-file.yaml", INVALID]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn usage_error_exits_2() {
    let run = studyflow(&["validate", "--format", "xml", VALID]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn directories_are_searched_for_yaml() {
    let run = studyflow(&["validate", "--format", "json", "tests/cli"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    let paths: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "tests/cli/invalid.yaml",
            "tests/cli/nested/other.yml",
            "tests/cli/valid.yaml",
            "tests/cli/warning.yaml"
        ]
    );
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let run = studyflow(&["schema"]);
    assert_eq!(run.code, 0);
    let checked_in =
        std::fs::read_to_string(studyflow_tests::root().join("schemas/study-spec.schema.json"))
            .unwrap_or_default();
    assert_eq!(run.stdout, checked_in);
}

#[test]
fn human_output_numbers_lines_far_down_a_large_file() {
    // Each finding is rendered from the lines it covers only; the numbering must still be
    // the file's.
    let dir = TempDir::new("far");
    let mut text = "\n".repeat(5000);
    text.push_str("spec_version: 1\nbogus_a: 1\nbogus_b: 2\n");
    let run = studyflow(&["validate", &dir.file("far.yaml", &text)]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("far.yaml:5002:1\n"), "{}", run.stdout);
    assert!(run.stdout.contains("5002 | bogus_a: 1\n"), "{}", run.stdout);
    assert!(run.stdout.contains("5003 | bogus_b: 2\n"), "{}", run.stdout);
}

#[test]
fn a_directory_without_specs_is_an_error() {
    let dir = TempDir::new("empty");
    let run = studyflow(&["validate", &dir.path()]);
    assert_eq!(
        run.code, 2,
        "a CI job pointed at the wrong folder must not pass"
    );
    assert!(
        run.stderr.contains("no *.yaml or *.yml files under"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_same_file_named_twice_is_checked_once() {
    let run = studyflow(&[
        "validate",
        "--format",
        "json",
        INVALID,
        "./tests/cli/invalid.yaml",
        "tests/cli",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(doc["summary"]["files"], 4, "{}", run.stdout);
}

#[test]
fn calendar_lists_a_year() {
    insta::assert_snapshot!(studyflow(&["calendar", "2026"]).transcript());
}

#[test]
fn calendar_counts_a_deadline() {
    insta::assert_snapshot!(
        studyflow(&[
            "calendar",
            "deadline",
            "--working-days",
            "10",
            "--before",
            "2026-06-30"
        ])
        .transcript()
    );
    let strict = studyflow(&[
        "calendar",
        "deadline",
        "--working-days",
        "10",
        "--before",
        "2026-06-30",
        "--strict",
    ]);
    assert!(
        strict
            .stdout
            .starts_with("2026-06-11 Thu is the latest allowed date"),
        "{}",
        strict.stdout
    );
}

#[test]
fn calendar_takes_override_files_and_names_their_faults() {
    let dir = TempDir::new("cal");
    let good = dir.file(
        "orders-2027.txt",
        "transfer 2027-05-03 2027-05-08 Cabinet order for 2027 (test)\n",
    );
    let bad = dir.file("bad.txt", "# header\ntransfer 2027-05-03 2027-05-07\n");
    let with = studyflow(&["calendar", "2027", "--overrides", &good]);
    let refused = studyflow(&["calendar", "2027", "--overrides", &bad]);
    assert_eq!(with.code, 0);
    assert!(
        with.stdout
            .contains("2027-05-08 Sat  working  working Saturday, in place of 2027-05-03"),
        "{}",
        with.stdout
    );
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("bad.txt:2: 2027-05-07 is a Friday, not a Saturday"),
        "{}",
        refused.stderr
    );
}

#[test]
fn calendar_refuses_bad_dates_and_years() {
    assert_eq!(
        studyflow(&[
            "calendar",
            "deadline",
            "--working-days",
            "10",
            "--before",
            "2026-02-30"
        ])
        .code,
        2
    );
    assert_eq!(
        studyflow(&[
            "calendar",
            "deadline",
            "--working-days",
            "0",
            "--before",
            "2026-06-30"
        ])
        .code,
        2
    );
    let run = studyflow(&["calendar", "1999"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("outside the calendar's years 2000–2100"),
        "{}",
        run.stderr
    );
}

/// `studyflow-check` — the validator pre-commit and CI build — needs none of the engine's
/// dependencies: no database, async runtime, HTTP, encryption or signatures (issue #14). Read
/// from cargo's own resolution of the locked dependencies.
#[test]
fn the_validator_builds_without_the_engine() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-p", "studyflow-check"])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for needed in [
        "studyflow-spec",
        "studyflow-plan",
        "studyflow-calendar",
        "studyflow-lsp",
    ] {
        assert!(crates.contains(needed), "{needed} missing from {crates:?}");
    }
    let engine = [
        "studyflow-store",
        "studyflow-runtime",
        "studyflow-server",
        "studyflow-identity",
        "studyflow-dataplane",
        "studyflow-sim",
        "sqlx",
        "tokio",
        "reqwest",
        "hyper",
        "axum",
        "rustls",
        "ring",
        "age",
        "argon2",
        "chacha20poly1305",
        "ed25519-dalek",
        "hmac",
        "jsonwebtoken",
        "minijinja",
    ];
    let found: Vec<&&str> = engine.iter().filter(|c| crates.contains(**c)).collect();
    assert!(found.is_empty(), "studyflow-check pulls in {found:?}");
}

/// The pre-commit hook that other repositories use builds this repository's root package with
/// `language: rust` and runs its binary: the hook's entry is `studyflow-check`'s command line,
/// and run as pre-commit runs it (the staged files appended), it passes the shipped specs and
/// fails an invalid one. The example GitHub workflow runs the same binary.
#[test]
fn the_pre_commit_hook_runs_the_validator_it_builds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let hooks = std::fs::read_to_string(root.join(".pre-commit-hooks.yaml")).unwrap();
    let field = |name: &str| {
        hooks
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in .pre-commit-hooks.yaml"))
            .to_owned()
    };
    assert_eq!(field("language"), "rust");
    let entry = field("entry");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let root_package = manifest.split("[workspace]").next().unwrap();
    assert!(root_package.contains("[[bin]]\nname = \"studyflow-check\""));
    let mut words = entry.split_whitespace();
    assert_eq!(words.next(), Some("studyflow-check"), "{entry}");
    let hook: Vec<String> = words.map(str::to_owned).collect();
    let workflow = std::fs::read_to_string(root.join("examples/ci/github-workflow.yml")).unwrap();
    assert!(workflow.contains("studyflow-check validate --format sarif"));
    assert!(workflow.contains("cargo install --locked --git"));

    let run = |files: &[&str]| {
        let mut args = vec!["studyflow-check".to_owned()];
        args.extend(hook.iter().cloned());
        // The suite's fixed day, so that the specs' dates do not age into findings.
        args.extend(["--today".to_owned(), studyflow_tests::TODAY.to_owned()]);
        args.extend(files.iter().map(|f| root.join(f).display().to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = studyflow_check::main(args, &mut out, &mut err, false);
        (code, String::from_utf8(out).unwrap())
    };
    let (code, out) = run(&[
        "specs/recidivism-2026-cohort.yaml",
        "specs/resocialisation-programmes-university.yaml",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["tests/specs/invalid/SF101-blank-purpose.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("SF101"), "{out}");
}

/// The SARIF as GitHub code scanning takes it, checked by Microsoft's SARIF multitool (npm,
/// pinned in `tests/sarif`; `.ci/run` installs it): the SARIF of every shipped spec and every
/// invalid one passes the SARIF 2.1.0 schema and GitHub's ingestion rules (`--rule-kind Gh`)
/// and the SARIF rules at error and warning level with nothing reported, and a broken copy is
/// reported (the check can fail). Without the tool the test skips; with `CI` set that fails.
#[test]
fn sarif_passes_the_sarif_multitool_for_github() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tool =
        root.join("tests/sarif/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool");
    if !tool.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the SARIF multitool is required in CI (npm ci --prefix tests/sarif)"
        );
        eprintln!("skipped: the SARIF multitool is not installed (npm ci --prefix tests/sarif)");
        return;
    }
    // npm leaves the binary as its package has it unless the install script ran.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tool).unwrap().permissions().mode();
        if mode & 0o100 == 0 {
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(mode | 0o700)).unwrap();
        }
    }
    let run = studyflow(&[
        "validate",
        "--format",
        "sarif",
        "specs",
        "tests/specs/invalid",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let dir = TempDir::new("sarif-multitool");
    let findings = |sarif: &str, kind: &str| -> Vec<String> {
        let input = std::path::Path::new(&dir.path()).join(format!("{kind}-in.sarif"));
        let output = std::path::Path::new(&dir.path()).join(format!("{kind}-out.sarif"));
        std::fs::write(&input, sarif).unwrap();
        let _ = std::fs::remove_file(&output);
        let status = std::process::Command::new(&tool)
            .args([
                "validate",
                "--rule-kind",
                kind,
                "--level",
                "Error;Warning",
                "-o",
            ])
            .arg(&output)
            .arg(&input)
            .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
            .output()
            .expect("the multitool runs");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stdout)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&output).expect("its report")).unwrap();
        report["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["results"].as_array().into_iter().flatten())
            .filter(|r| r["level"].as_str().unwrap_or("warning") != "note")
            .map(|r| format!("{} {}", r["ruleId"], r["message"]))
            .collect()
    };
    let results =
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()["runs"][0]["results"]
            .as_array()
            .map_or(0, Vec::len);
    assert!(
        results > 40,
        "the invalid specs' findings are in the SARIF ({results})"
    );
    for kind in ["Gh", "Sarif"] {
        let found = findings(&run.stdout, kind);
        assert!(found.is_empty(), "--rule-kind {kind}: {found:#?}");
    }
    let broken = run
        .stdout
        .replacen("\"startLine\": ", "\"startLine\": -", 1);
    assert!(
        !findings(&broken, "Gh").is_empty(),
        "a negative line is reported"
    );
}
