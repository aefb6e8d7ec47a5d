//! `studyflow plan`: each spec in `specs/` in every format, pinned as snapshots; DOT rendered
//! by Graphviz when it is installed; errors and warnings on stderr, never in the plan.

use studyflow_tests::{TempDir, root, studyflow};

const FORMATS: [&str; 4] = ["table", "json", "dot", "mermaid"];

fn specs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("specs"))
        .expect("specs/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 3);
    v
}

#[test]
fn every_spec_in_every_format() {
    for name in specs() {
        let stem = name.trim_end_matches(".yaml");
        for format in FORMATS {
            let run = studyflow(&["plan", "--format", format, &format!("specs/{name}")]);
            assert_eq!(run.code, 0, "{name} {format}: {}", run.stderr);
            assert_eq!(
                run.stderr, "",
                "{name} {format}: a clean spec prints no findings"
            );
            // Deterministic: the same spec gives the same bytes.
            let again = studyflow(&["plan", "--format", format, &format!("specs/{name}")]);
            assert_eq!(run.stdout, again.stdout);
            insta::assert_snapshot!(format!("{stem}.{format}"), run.stdout);
        }
    }
}

#[test]
fn json_carries_the_contract_fields() {
    let run = studyflow(&[
        "plan",
        "--format",
        "json",
        "specs/resocialisation-programmes-university.yaml",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json parses");
    assert_eq!(doc["format"], "studyflow-plan/1");
    assert_eq!(doc["study"], "resocialisation-programmes-university");
    assert!(doc["plan_hash"].as_str().unwrap().starts_with("sha256:"));
    let notice = doc["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "prison_administration_notice")
        .expect("the p.8 notice is a deadline");
    assert_eq!(notice["date"], "2028-03-01");
    assert_eq!(notice["id"], "prison-administration-notice");
    let node = &doc["nodes"][0];
    for key in [
        "id",
        "kind",
        "actor",
        "data_in",
        "data_out",
        "regulation",
        "due",
    ] {
        assert!(node.get(key).is_some(), "node without {key}");
    }
    let ids: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    for edge in doc["edges"].as_array().unwrap() {
        let (a, b) = (edge[0].as_str().unwrap(), edge[1].as_str().unwrap());
        let pos = |x| ids.iter().position(|i| *i == x).unwrap();
        assert!(
            pos(a) < pos(b),
            "nodes are in topological order: {a} -> {b}"
        );
    }
}

/// Graphviz accepts every DOT file; skipped, saying so, where `dot` is not installed.
#[test]
fn graphviz_renders_every_dot() {
    let Ok(version) = std::process::Command::new("dot").arg("-V").output() else {
        eprintln!("SKIPPED graphviz_renders_every_dot: Graphviz `dot` is not installed");
        return;
    };
    assert!(version.status.success());
    for name in specs() {
        let run = studyflow(&["plan", "--format", "dot", &format!("specs/{name}")]);
        let mut child = std::process::Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("dot runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(run.stdout.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("<svg"),
            "{name}"
        );
        assert!(
            out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_spec_with_errors_prints_findings_and_no_plan() {
    let run = studyflow(&[
        "plan",
        "tests/specs/invalid/SF120-covers-stage-the-study-lacks.yaml",
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn warnings_go_to_stderr_and_the_plan_is_printed() {
    // The notice day (2028-03-01) already past: a warning, and the plan all the same.
    let run = studyflow(&[
        "plan",
        "--today",
        "2028-03-02",
        "specs/resocialisation-programmes-university.yaml",
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("plan of "), "{}", run.stdout);
    assert!(run.stderr.contains("warning[SF207]"), "{}", run.stderr);
}

#[test]
fn today_moves_the_notice_into_the_past() {
    let spec = "specs/resocialisation-programmes-university.yaml";
    let on_time = studyflow(&["validate", "--today", "2028-03-01", "--deny-warnings", spec]);
    assert_eq!(on_time.code, 0, "{}", on_time.stdout);
    let late = studyflow(&["validate", "--today", "2028-03-02", spec]);
    assert_eq!(late.code, 0);
    assert!(
        late.stdout
            .contains("warning[SF207]: the Prison Administration notice was due by 2028-03-01"),
        "{}",
        late.stdout
    );
    let bad = studyflow(&["plan", "--today", "2028-02-30", spec]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn calendar_overrides_change_the_notice_date_and_the_hash() {
    let spec = "specs/resocialisation-programmes-university.yaml";
    let dir = TempDir::new("plan-overrides");
    let order = dir.file(
        "order.txt",
        "one-off 2028-03-01 A day off by a future law\n",
    );
    let plain = studyflow(&["plan", "--format", "json", spec]);
    let moved = studyflow(&[
        "plan",
        "--format",
        "json",
        "--calendar-overrides",
        &order,
        spec,
    ]);
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&plain.stdout).unwrap(),
        serde_json::from_str(&moved.stdout).unwrap(),
    );
    assert_ne!(a["plan_hash"], b["plan_hash"]);
    let notice = |doc: &serde_json::Value| {
        doc["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == "prison_administration_notice")
            .unwrap()["date"]
            .clone()
    };
    assert_eq!(notice(&a), "2028-03-01");
    assert_eq!(notice(&b), "2028-02-29");
}

/// Mermaid legible as `mmdc` draws it by default (issue #14): at its natural size rather than
/// shrunk to 800 px, top to bottom, a box per follow-up wave and per stage, due dates, the p.8
/// notice day in the title, and a legend of the colours, the dashed edges and the per-subject
/// shape; DOT's legend explains its dashed edges and double borders too.
#[test]
fn mermaid_and_dot_are_legible_with_a_legend() {
    let plan = |spec: &str, format: &str| {
        let run = studyflow(&["plan", "--format", format, &format!("specs/{spec}.yaml")]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let mermaid = plan("recidivism-2026-cohort", "mermaid");
    assert!(mermaid.starts_with("---\ntitle: \"recidivism-2026-cohort v1\"\n"));
    assert!(mermaid.contains("    useMaxWidth: false\n"));
    assert!(mermaid.contains("\nflowchart TB\n"));
    assert_eq!(mermaid.matches("  subgraph wave_").count(), 6, "{mermaid}");
    assert!(mermaid.contains(
        "  subgraph wave_1y_after_start[\"follow-up 1 year after the start of supervision (p.19.1)\"]"
    ));
    assert!(mermaid.contains("  subgraph stage_acquisition[\"stage: acquisition\"]"));
    assert!(mermaid.contains("<b>acquire-service-is</b>"));
    assert!(mermaid.contains("<br/>due 2027-04-30\"]"));
    // Every wave step is drawn once per subject, and nothing else is.
    let per_subject = mermaid.lines().filter(|l| l.contains("[[\"<b>")).count();
    assert_eq!(per_subject, 6 * 4, "{mermaid}");
    for legend in [
        "legend_none[\"none\"]:::none ~~~ legend_identifying",
        "-->|\"reads what it wrote\"|",
        "-.->|\"only waits for it\"| legend_d[[\"once per subject\"]]",
    ] {
        assert!(mermaid.contains(legend), "{legend}");
    }
    let notice = plan("resocialisation-programmes-university", "mermaid");
    assert!(notice.starts_with(
        "---\ntitle: \"resocialisation-programmes-university v1 · p.8 notice to the Prison Administration by 2028-03-01\"\n"
    ));
    let dot = plan("recidivism-2026-cohort", "dot");
    assert!(dot.contains(
        "label=\"once per subject\\n(double border)\", fillcolor=\"#ffffff\", peripheries=2"
    ));
    assert!(dot.contains("[label=\"only waits for it (dashed)\", fontsize=9, style=dashed]"));
}
