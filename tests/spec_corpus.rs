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

/// The points a text cites, each spelt out (`p.30–33` → 30, 31, 32, 33), by the same parser
/// that reads the diagnostics' messages ([`studyflow_spec::diagnostic::points_in`]).
fn points_of(text: &str) -> Vec<String> {
    let mut out: Vec<String> = studyflow_spec::diagnostic::points_in(text)
        .iter()
        .flat_map(|p| studyflow_spec::diagnostic::expand_point(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The MK403 points a corpus file is a case of: those its leading comment names (the comment
/// before a schema modeline: what a file copied from `specs/` carries after it is that study's).
fn cited_points(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let head: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#') && !l.contains("yaml-language-server:"))
        .collect();
    points_of(&head.join(" "))
}

/// `cited` names `point` itself or a sub-point of it (p.19.1 is a case of p.19).
fn names(cited: &[String], point: &str) -> bool {
    cited
        .iter()
        .any(|c| c == point || c.starts_with(&format!("{point}.")))
}

/// As [`names`], or a point above it: a complete valid spec citing p.4 is a case of 4.1–4.4.
fn covers(cited: &[String], point: &str) -> bool {
    names(cited, point) || cited.iter().any(|c| point.starts_with(&format!("{c}.")))
}

/// Points no spec can be an invalid case of, and why.
const NO_INVALID_CASE: &[(&str, &str)] = &[
    (
        "2",
        "it says who does research; the schema's `initiator.kind` holds only those two, and no finding rests on p.2 alone",
    ),
    (
        "6",
        "by construction: a spec states the Service's own requests and cannot name another requester",
    ),
    (
        "22.3",
        "SF204: the compiler follows every linkage by the deletion of identifiers; SF204 is tested on plans altered by hand (`engine/plan/tests/plan.rs`: `sf204_answers_must_be_linked_and_identifiers_deleted`)",
    ),
    ("22.4", "SF204: as p.22.3"),
    (
        "23",
        "SF211: the compiler puts identifying processing before other systems; SF211 is tested on a plan altered by hand (`sf211_identifying_processing_comes_before_other_systems`)",
    ),
    ("24", "SF211: as p.23"),
    (
        "30.1",
        "SF205: the compiler puts every transfer after the approval and the contract; SF205 is tested on plans altered by hand (`sf205_transfer_without_the_contract_gate`)",
    ),
];

/// Each point a check enforces, with those checks: the checks the point's row of the coverage
/// table names, and every rule whose own list of points covers it.
fn checked_points() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(root().join("docs/regulation-coverage.md")).unwrap();
    let section = doc
        .split("## Coverage")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the coverage table");
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [point, _, now, ..] = cells[..] else {
            continue;
        };
        let point = point.split_whitespace().next().unwrap_or_default();
        if !point.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let rules: Vec<String> = now
            .match_indices("SF")
            .filter_map(|(i, _)| now.get(i..i + 5))
            .filter(|c| c[2..].bytes().all(|b| b.is_ascii_digit()) && matches!(&c[2..3], "1" | "2"))
            .map(str::to_owned)
            .collect();
        if !rules.is_empty() {
            out.entry(point.to_owned()).or_default().extend(rules);
        }
    }
    let lists = studyflow_spec::rules::RULES
        .iter()
        .map(|r| (r.code, r.points))
        .chain(
            studyflow_plan::checks::RULES
                .iter()
                .map(|r| (r.code, r.points)),
        );
    for (code, points) in lists {
        for point in points.iter().flat_map(|p| points_of(p)) {
            out.entry(point).or_default().push(code.to_owned());
        }
    }
    // A rule listing p.19 checks 19.1–19.6 too, and a rule checking p.30.2 checks p.30.
    let all: Vec<String> = out.keys().cloned().collect();
    for point in &all {
        let related: Vec<String> = out
            .iter()
            .filter(|(p, _)| {
                point.starts_with(&format!("{p}.")) || p.starts_with(&format!("{point}."))
            })
            .flat_map(|(_, r)| r.clone())
            .collect();
        out.get_mut(point).unwrap().extend(related);
    }
    out.into_iter()
        .map(|(p, mut r)| {
            r.sort();
            r.dedup();
            (p, r)
        })
        .collect()
}

/// A corpus file: its path, the points it names, and its findings as (code, severity, the
/// points its `regulation` field cites, spelt out).
struct Case {
    file: String,
    cited: Vec<String>,
    findings: Vec<(String, String, Vec<String>)>,
}

fn cases(dir: &str) -> Vec<Case> {
    let mut paths: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file = relative(&path);
            let run = studyflow(&["validate", "--format", "json", &file]);
            let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            let findings = doc["files"][0]["diagnostics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let field = d["regulation"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    (
                        d["code"].as_str().unwrap_or_default().to_owned(),
                        d["severity"].as_str().unwrap_or_default().to_owned(),
                        points_of(&field),
                    )
                })
                .collect();
            Case {
                cited: cited_points(&path),
                file,
                findings,
            }
        })
        .collect()
}

/// The cases of each point, as the coverage doc lists them; the gaps.
fn matrix() -> (String, Vec<String>) {
    let valid = cases("tests/specs/valid");
    let invalid = cases("tests/specs/invalid");
    let warnings = cases("tests/specs/warnings");
    // A case of `point` of `severity`: the file names the point, and it has a finding of that
    // severity from one of the point's checks whose field cites the point (or a sub-point).
    let failing = |set: &[Case], point: &str, rules: &[String], severity: &str| -> Vec<String> {
        set.iter()
            .filter(|c| {
                names(&c.cited, point)
                    && c.findings.iter().any(|(code, sev, field)| {
                        sev == severity && rules.contains(code) && names(field, point)
                    })
            })
            .map(|c| c.file.trim_start_matches("tests/specs/").to_owned())
            .collect()
    };
    let mut md = String::from(
        "| Point | Checks | Valid cases | Invalid cases (an error citing the point) | Warning cases |\n|---|---|---|---|---|\n",
    );
    let mut gaps = Vec::new();
    for (point, rules) in checked_points() {
        let v: Vec<String> = valid
            .iter()
            .filter(|c| covers(&c.cited, &point))
            .map(|c| c.file.trim_start_matches("tests/specs/").to_owned())
            .collect();
        let i = failing(&invalid, &point, &rules, "error");
        let w = failing(&warnings, &point, &rules, "warning");
        let exempt = NO_INVALID_CASE
            .iter()
            .find(|(p, _)| *p == point)
            .map(|(_, why)| *why);
        if v.is_empty() {
            gaps.push(format!("p.{point}: no valid case"));
        }
        if i.is_empty() && w.is_empty() && exempt.is_none() {
            gaps.push(format!(
                "p.{point}: no invalid or warning case with a finding of {} citing it",
                rules.join(", ")
            ));
        }
        let list = |l: &[String]| {
            l.iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let invalid_cell = match (exempt, i.is_empty()) {
            (Some(why), true) => format!("none can exist: {why}"),
            _ => list(&i),
        };
        md.push_str(&format!(
            "| {point} | {} | {} | {invalid_cell} | {} |\n",
            rules.join(", "),
            list(&v),
            list(&w)
        ));
    }
    (md, gaps)
}

/// Every point a check enforces has a valid case and an invalid (or, for a warning, a warning)
/// case whose finding cites it, and the coverage doc lists them (a generated section:
/// `STUDYFLOW_BLESS=1` rewrites it).
#[test]
fn every_checked_point_has_a_valid_and_an_invalid_case() {
    const BEGIN: &str = "<!-- cases:begin (generated by tests/spec_corpus.rs) -->\n";
    const END: &str = "<!-- cases:end -->\n";
    let (table, gaps) = matrix();
    assert!(
        gaps.is_empty(),
        "the test matrix has gaps (issue #11: per checked point of MK403 a valid spec and an invalid one whose finding cites the point, each naming it in its first lines):\n{}",
        gaps.join("\n")
    );
    let path = root().join("docs/regulation-coverage.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (before, rest) = doc
        .split_once(BEGIN)
        .expect("the cases section's begin marker");
    let (_, after) = rest
        .split_once(END)
        .expect("the cases section's end marker");
    let fresh = format!("{before}{BEGIN}{table}{END}{after}");
    if std::env::var_os("STUDYFLOW_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        doc == fresh,
        "docs/regulation-coverage.md's cases are stale: STUDYFLOW_BLESS=1 cargo test -p studyflow-tests --test spec_corpus"
    );
}

#[test]
fn cited_points_read_ranges_and_sub_points() {
    assert_eq!(
        points_of("# a case (MK403 p.4, p.30–32, p.19.1–19.3; p.8) and p.25.1, p.31-32, p.33.3–5"),
        [
            "19.1", "19.2", "19.3", "25.1", "30", "31", "32", "33.3", "33.4", "33.5", "4", "8"
        ]
    );
    let c = points_of("p.4, p.19.1, p.31");
    assert!(covers(&c, "4.2") && covers(&c, "19") && covers(&c, "31"));
    assert!(
        names(&c, "19") && !names(&c, "4.2"),
        "a point above is not named"
    );
    assert!(!covers(&c, "19.4") && !covers(&c, "3") && !covers(&c, "9"));
}

/// Issue #11: a diagnostic's `regulation` field names the points its message names — on every
/// finding the corpus produces.
#[test]
fn every_finding_cites_in_its_field_what_its_message_cites() {
    let mut wrong = Vec::new();
    for dir in ["tests/specs/invalid", "tests/specs/warnings"] {
        let mut files: Vec<_> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let rel = relative(&path);
            let run = studyflow(&["validate", "--format", "json", &rel]);
            let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            for d in doc["files"][0]["diagnostics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let message = d["message"].as_str().unwrap_or_default();
                let field = points_of(
                    &d["regulation"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                let said = points_of(message);
                // A message that names no point (a YAML or schema error) says nothing to agree
                // with; one that names some names those of its field.
                if !said.is_empty() && said != field {
                    wrong.push(format!(
                        "{rel}: {} says {said:?}, its field {field:?}: {message}",
                        d["code"]
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A spec written from the top (issue #14): at every line of each shipped spec, a section not
/// written yet is reported once — by the schema (SF011) or by the rule that asks for it
/// (SF130) — and the rules that would only repeat the gap stay silent: no "no anonymisation
/// before" the analysis (SF203) before `anonymisation` is written, no "no external
/// researcher to transfer to" (SF120) before an external study's `external` is written.
#[test]
fn a_half_written_spec_hears_of_each_gap_once() {
    let calendar = studyflow_calendar::Calendar::latvia();
    let today = "2026-11-28".parse().unwrap();
    for name in [
        "recidivism-2026-cohort",
        "resocialisation-programmes-university",
        "probation-client-survey",
    ] {
        let text = std::fs::read_to_string(root().join(format!("specs/{name}.yaml"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut reported_gap = [false; 2];
        for n in 1..lines.len() {
            let prefix = format!("{}\n", lines[..n].join("\n"));
            let checked = studyflow_plan::check(prefix.as_bytes(), &calendar, Some(today)).checked;
            let has = |code: &str, text: &str| {
                checked
                    .diagnostics
                    .iter()
                    .any(|d| d.code == code && d.message.contains(text))
            };
            let top = |key: &str| prefix.lines().any(|l| l.starts_with(&format!("{key}:")));
            if !top("anonymisation") {
                assert!(
                    !has("SF203", "no anonymisation before it"),
                    "{name}, {n} lines: SF203 before `anonymisation` is written"
                );
                if has("SF011", "missing required property `anonymisation`") {
                    reported_gap[0] = true;
                }
            }
            if !top("external") && prefix.contains("kind: external") {
                assert!(
                    !has("SF120", "no external researcher to transfer to"),
                    "{name}, {n} lines: SF120 before `external` is written"
                );
                if has("SF130", "must state the p.4 items") {
                    reported_gap[1] = true;
                }
            }
        }
        assert!(
            reported_gap[0],
            "{name}: the missing `anonymisation` is reported"
        );
        if text.contains("kind: external") {
            assert!(
                reported_gap[1],
                "{name}: the missing `external` is reported"
            );
        }
    }
}
