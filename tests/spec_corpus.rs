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

/// The MK403 points of a corpus file: every `p.N` (and `p.N.M`) its leading comment names,
/// with ranges written `p.30–33` or `p.19.1–19.6` spelt out.
fn cited_points(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let head: String = text
        .lines()
        // The case's own comment: what a file copied from `specs/` carries after its schema
        // modeline is that study's, not the case's.
        .take_while(|l| l.starts_with('#') && !l.contains("yaml-language-server:"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = Vec::new();
    let bytes: Vec<char> = head.chars().collect();
    let number = |at: &mut usize| -> String {
        let mut s = String::new();
        while *at < bytes.len()
            && (bytes[*at].is_ascii_digit()
                || (bytes[*at] == '.' && bytes.get(*at + 1).is_some_and(char::is_ascii_digit)))
        {
            s.push(bytes[*at]);
            *at += 1;
        }
        s
    };
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == 'p' && bytes[i + 1] == '.' && bytes[i + 2].is_ascii_digit() {
            let mut at = i + 2;
            let from = number(&mut at);
            out.push(from.clone());
            // A range: `–` or `-`, then the last point (its leading parts as the first's).
            if matches!(bytes.get(at), Some('–' | '-')) {
                let mut end = at + 1;
                if bytes.get(end) == Some(&'p') && bytes.get(end + 1) == Some(&'.') {
                    end += 2;
                }
                let to = number(&mut end);
                let (fa, ta): (Vec<&str>, Vec<&str>) =
                    (from.split('.').collect(), to.split('.').collect());
                if fa.len() == ta.len()
                    && fa[..fa.len() - 1] == ta[..ta.len() - 1]
                    && let (Ok(a), Ok(b)) = (
                        fa[fa.len() - 1].parse::<u32>(),
                        ta[ta.len() - 1].parse::<u32>(),
                    )
                {
                    let stem = fa[..fa.len() - 1].join(".");
                    for n in a + 1..=b {
                        out.push(if stem.is_empty() {
                            n.to_string()
                        } else {
                            format!("{stem}.{n}")
                        });
                    }
                }
                at = end;
            }
            i = at;
        } else {
            i += 1;
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a file citing `cited` covers `point`: the point itself, a point above it (p.4 is the
/// whole of 4.1–4.4) or a sub-point of it (p.19.1 is a case of p.19).
fn covers(cited: &[String], point: &str) -> bool {
    cited.iter().any(|c| {
        c == point || point.starts_with(&format!("{c}.")) || c.starts_with(&format!("{point}."))
    })
}

/// Points whose checks only the plan compiler can fail: it builds every plan so, and the plan
/// rule checks the compiler (in `engine/plan`'s tests), so no spec is an invalid case of them.
const PLAN_ONLY: &[(&str, &str)] = &[
    (
        "24",
        "SF211: the compiler puts identifying processing before other systems; SF211 is tested on a plan altered by hand (`sf211_identifying_processing_comes_before_other_systems`)",
    ),
    (
        "30.1",
        "SF205: the compiler puts every transfer after the approval and the contract; SF205 is tested on plans altered by hand (`sf205_transfer_without_the_contract_gate`)",
    ),
];

/// A row of the coverage table: the point, and the checks (SF1xx, SF2xx) its "enforced now"
/// column names.
fn checked_points() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(root().join("docs/regulation-coverage.md")).unwrap();
    let section = doc
        .split("## Coverage")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the coverage table");
    let mut out = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [point, _, now, ..] = cells[..] else {
            continue;
        };
        let point = point.split_whitespace().next().unwrap_or_default();
        if !point.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let mut rules: Vec<String> = now
            .match_indices("SF")
            .filter_map(|(i, _)| now.get(i..i + 5))
            .filter(|c| c[2..].bytes().all(|b| b.is_ascii_digit()) && matches!(&c[2..3], "1" | "2"))
            .map(str::to_owned)
            .collect();
        rules.sort();
        rules.dedup();
        if !rules.is_empty() {
            out.push((point.to_owned(), rules));
        }
    }
    out
}

/// The cases of each point, as the coverage doc lists them.
fn cases_markdown() -> String {
    let files = |dir: &str| -> Vec<(String, Vec<String>)> {
        let mut v: Vec<(String, Vec<String>)> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| (relative(&p), cited_points(&p)))
            .collect();
        v.sort();
        v
    };
    let valid = files("tests/specs/valid");
    let invalid: Vec<_> = files("tests/specs/invalid")
        .into_iter()
        .chain(files("tests/specs/warnings"))
        .collect();
    let mut md =
        String::from("| Point | Checks | Valid cases | Invalid cases |\n|---|---|---|---|\n");
    let mut missing = Vec::new();
    for (point, rules) in checked_points() {
        let v: Vec<&str> = valid
            .iter()
            .filter(|(_, c)| covers(c, &point))
            .map(|(f, _)| f.as_str())
            .collect();
        // An invalid case of a point fails one of the point's own checks.
        let i: Vec<&str> = invalid
            .iter()
            .filter(|(f, c)| {
                covers(c, &point)
                    && rules.iter().any(|r| {
                        f.rsplit('/')
                            .next()
                            .is_some_and(|n| n.starts_with(&format!("{r}-")))
                    })
            })
            .map(|(f, _)| f.as_str())
            .collect();
        let plan_only = PLAN_ONLY
            .iter()
            .find(|(p, _)| *p == point)
            .map(|(_, why)| *why);
        if v.is_empty() {
            missing.push(format!("p.{point}: no valid case"));
        }
        if i.is_empty() && plan_only.is_none() {
            missing.push(format!(
                "p.{point}: no invalid case failing {}",
                rules.join(", ")
            ));
        }
        let list = |l: &[&str]| {
            l.iter()
                .map(|f| format!("`{}`", f.trim_start_matches("tests/specs/")))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        md.push_str(&format!(
            "| {point} | {} | {} | {} |\n",
            rules.join(", "),
            list(&v),
            plan_only.map_or_else(|| list(&i), |why| format!("none can exist — {why}"))
        ));
    }
    assert!(
        missing.is_empty(),
        "the test matrix has gaps (issue #11: a valid and an invalid spec per checked point of MK403, named in the file's first lines):\n{}",
        missing.join("\n")
    );
    md
}

/// Every point a check enforces has a valid and an invalid case in the corpus, and the coverage
/// doc lists them (a generated section: `STUDYFLOW_BLESS=1` rewrites it).
#[test]
fn every_checked_point_has_a_valid_and_an_invalid_case() {
    const BEGIN: &str = "<!-- cases:begin (generated by tests/spec_corpus.rs) -->\n";
    const END: &str = "<!-- cases:end -->\n";
    let path = root().join("docs/regulation-coverage.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let table = cases_markdown();
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
    let dir = std::env::temp_dir().join(format!("studyflow-cites-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("x.yaml");
    std::fs::write(
        &f,
        "# a case (MK403 p.4, p.30–32, p.19.1–19.3; p.8)\n# and p.25.1\nid: x # p.99\n",
    )
    .unwrap();
    assert_eq!(
        cited_points(&f),
        ["19.1", "19.2", "19.3", "25.1", "30", "31", "32", "4", "8"]
    );
    let c = cited_points(&f);
    assert!(covers(&c, "4.2") && covers(&c, "19") && covers(&c, "31"));
    assert!(!covers(&c, "19.4") && !covers(&c, "3") && !covers(&c, "9"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The points a message cites (`MK403 p.22.5`, `p.30–33`, `p.19.1–19.6`), ranges spelt out.
fn points_in(text: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!(
        "studyflow-points-{}-{}",
        std::process::id(),
        text.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("m.yaml");
    std::fs::write(&f, format!("# {text}\n")).unwrap();
    let points = cited_points(&f);
    std::fs::remove_dir_all(&dir).unwrap();
    points
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
                let mut field: Vec<String> = d["regulation"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str())
                    .flat_map(points_in)
                    .collect();
                field.sort();
                field.dedup();
                let said = points_in(message);
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
