//! `studyflow plan`: each spec in `specs/` in every format, pinned as snapshots; DOT rendered
//! by Graphviz when it is installed; errors and warnings on stderr, never in the plan.

#[path = "../engine/server/tests/browser/mod.rs"]
mod browser;

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

/// Every step of every shipped and valid test spec's plan has its title in Latvian for the
/// pages (issue #13): not empty, not the English one, and without the English words every
/// English title has one of (" to " is a Latvian word too); so is each deadline's rule, with
/// the same dates and MK403 points as its English.
#[test]
fn every_step_is_titled_in_latvian() {
    let mut files: Vec<String> = specs().into_iter().map(|n| format!("specs/{n}")).collect();
    files.extend(
        std::fs::read_dir(root().join("tests/specs/valid"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .map(|n| format!("tests/specs/valid/{n}")),
    );
    let english = [" the ", "The ", " and ", " of ", " from ", " with "];
    let (mut steps, mut rules) = (0, 0);
    for file in &files {
        let run = studyflow(&["plan", "--format", "json", file]);
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        for node in doc["nodes"].as_array().unwrap() {
            let (en, lv) = (
                node["title"].as_str().unwrap(),
                node["title_lv"].as_str().unwrap(),
            );
            assert!(!lv.is_empty() && lv != en, "{file} {}: {lv}", node["id"]);
            // Another institution's system is named as the spec names it.
            let ours = match node["kind"].as_str() {
                Some("other_system") => lv.split(':').next().unwrap(),
                _ => lv,
            };
            for w in english {
                assert!(!ours.contains(w), "{file} {}: {lv:?} has {w:?}", node["id"]);
            }
            steps += 1;
            // The deadline's rule too, with the same dates and MK403 points as the English
            // (a phase's name, in backquotes, is the spec's own).
            if let Some(d) = node["deadline"].as_object() {
                let (en, lv) = (d["rule"].as_str().unwrap(), d["rule_lv"].as_str().unwrap());
                let ours: String = lv.split('`').step_by(2).collect();
                assert!(!lv.is_empty() && lv != en, "{file} {}: {lv}", node["id"]);
                for w in english {
                    assert!(!ours.contains(w), "{file} {}: {lv:?} has {w:?}", node["id"]);
                }
                // The dates, and the points however each language writes them.
                let facts = |s: &str| {
                    let mut v: Vec<String> = s
                        .split(|c: char| c.is_whitespace() || ",;()".contains(c))
                        .filter(|w| {
                            w.len() >= 10
                                && w.as_bytes()[4] == b'-'
                                && w[..4].parse::<u16>().is_ok()
                        })
                        .map(str::to_owned)
                        .chain(studyflow_spec::regulation::cited_points(s))
                        .collect();
                    v.sort();
                    v
                };
                assert_eq!(facts(en), facts(lv), "{file} {}: {en} / {lv}", node["id"]);
                // A follow-up's rule names the study's own anchor event in both (MK403 p.19).
                let events = [
                    (
                        "after the start of sentence execution",
                        "uzsākta soda izpilde dienestā",
                    ),
                    (
                        "after the end of sentence execution",
                        "pabeigta soda izpilde dienestā",
                    ),
                    (
                        "after the start of the compulsory educational measure",
                        "uzsākta audzinoša rakstura piespiedu līdzekļa piemērošana",
                    ),
                    (
                        "after the end of the compulsory educational measure",
                        "pabeigta audzinoša rakstura piespiedu līdzekļa piemērošana",
                    ),
                    (
                        "after the start of the mediation",
                        "uzsākts izlīguma process",
                    ),
                    (
                        "after the end of the mediation",
                        "pabeigts izlīguma process",
                    ),
                ];
                for (event_en, event_lv) in events {
                    assert_eq!(
                        en.contains(event_en),
                        lv.contains(event_lv),
                        "{file} {}: {en} / {lv}",
                        node["id"]
                    );
                }
                rules += 1;
            }
        }
    }
    assert!(steps > 100, "{steps} steps");
    assert!(rules > 30, "{rules} deadlines");
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
        "one-off 2028-03-01 A day off by a future law (Brīvdiena ar nākotnes likumu)\n",
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

/// The plan's drawing for the pages, chosen by how it reads (issue #13): each shipped spec's
/// plan drawn by the pages' own SVG (`studyflow_plan::svg`, rendered on the server), by
/// Graphviz from `plan --format dot`, and by Mermaid (npm, pinned by `tests/browser`) from
/// `plan --format mermaid`, each shown as a browser shows it (Debian's Chromium, 1280×800, no
/// zoom). Measured: the size of a step's name's letters on the screen and the drawing's size in
/// screens; written to `target/screenshots/graph-*.png` and `target/graph-comparison.md`. The
/// pages' drawing must keep every name at 12 px or more on every plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_drawings_compared_in_the_browser() {
    let Some(b) = browser::Browser::start().await else {
        return;
    };
    let mermaid = root().join("tests/browser/node_modules/mermaid/dist/mermaid.min.js");
    let graphviz = std::process::Command::new("dot").arg("-V").output().is_ok();
    if std::env::var_os("CI").is_some() {
        assert!(
            mermaid.exists() && graphviz,
            "Mermaid (npm ci --prefix tests/browser) and Graphviz are needed under CI"
        );
    }
    let dir = TempDir::new("graphs");
    let mut report = String::from(
        "| plan | steps | drawing | a step's name, font size on screen | drawing (px) | screens at 1280×800 |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    // The size of the drawing and the median height of its step names, as laid out.
    const MEASURE: &str = r#"
        const svg = document.querySelector('svg');
        if (!svg) { return null; }
        const r = svg.getBoundingClientRect();
        const names = [...document.querySelectorAll(arguments[0])]
            .filter(e => e.textContent.trim().length > 0)
            .map(e => parseFloat(getComputedStyle(e).fontSize) * (e.closest('svg').getScreenCTM() || {a: 1}).a)
            .filter(h => h > 0)
            .sort((a, b) => a - b);
        return {w: r.width, h: r.height, name: names.length ? names[Math.floor(names.length / 2)] : 0, n: names.length};
    "#;
    // The three shipped specs, and a plan of 60 steps (the largest a spec of today makes is 45).
    let mut files: Vec<String> = specs().into_iter().map(|n| format!("specs/{n}")).collect();
    files.push("tests/plans/sixty-step-plan.yaml".into());
    for file in &files {
        let stem = file.rsplit('/').next().unwrap().trim_end_matches(".yaml");
        let bytes = std::fs::read(root().join(file)).unwrap();
        let spec = studyflow_spec::check(&bytes).spec.unwrap();
        let plan =
            studyflow_plan::compile(&spec, &bytes, &studyflow_calendar::Calendar::latvia(), None).0;
        let steps = plan.graph.node_count();
        if file.starts_with("tests/plans/") {
            assert_eq!(steps, 60, "{file}");
        }
        let class = |c: studyflow_plan::DataClass| format!("{c:?}");
        let ours = studyflow_plan::svg::svg(
            &plan,
            &studyflow_plan::svg::Words {
                title: stem,
                legend: "Data written",
                task: "a person's task",
                class: &class,
                latvian: false,
            },
        );
        // Each with where its step names are: the pages' first line of a box, Graphviz's first
        // line of a node, Mermaid's node label.
        let mut pages = vec![(
            "studyflow-svg",
            "svg g > text[font-weight='600']",
            format!("<!doctype html><body style=\"margin:0\">{ours}</body>"),
        )];
        if graphviz {
            let dot = studyflow(&["plan", "--format", "dot", file]).stdout;
            let path = dir.file(&format!("{stem}.dot"), &dot);
            let out = std::process::Command::new("dot")
                .args(["-Tsvg", &path])
                .output()
                .unwrap();
            let svg = String::from_utf8_lossy(&out.stdout);
            let svg = &svg[svg.find("<svg").unwrap_or(0)..];
            pages.push((
                "graphviz",
                "svg g.node text:first-of-type",
                format!("<!doctype html><body style=\"margin:0\">{svg}</body>"),
            ));
        }
        if mermaid.exists() {
            let text = studyflow(&["plan", "--format", "mermaid", file]).stdout;
            let text = text.replace('&', "&amp;").replace('<', "&lt;");
            // As `plan` writes it (natural size), and at Mermaid's default (fit to the width).
            let fitted = text.replace("useMaxWidth: false", "useMaxWidth: true");
            for (label, text) in [("mermaid", text), ("mermaid-fitted", fitted)] {
                pages.push((
                    label,
                    "svg g.node .nodeLabel",
                    format!(
                        "<!doctype html><body style=\"margin:0\"><pre class=\"mermaid\">{text}</pre><script src=\"file://{}\"></script><script>mermaid.initialize({{startOnLoad: true}});</script></body>",
                        mermaid.display()
                    ),
                ));
            }
        }
        for (renderer, names, html) in pages {
            let page = dir.file(&format!("{stem}-{renderer}.html"), &html);
            b.go(&format!("file://{page}")).await;
            let mut m = serde_json::Value::Null;
            for _ in 0..100 {
                m = b.run(MEASURE, serde_json::json!([names])).await;
                if m["n"].as_u64().unwrap_or(0) > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let (w, h, px, n) = (
                m["w"].as_f64().unwrap_or(0.0),
                m["h"].as_f64().unwrap_or(0.0),
                m["name"].as_f64().unwrap_or(0.0),
                m["n"].as_u64().unwrap_or(0),
            );
            assert!(
                n as usize >= steps,
                "{renderer} drew {n} names of {steps} steps for {stem}: {m}"
            );
            b.screenshot(&format!("graph-{renderer}-{stem}"), 1280, 800)
                .await;
            report.push_str(&format!(
                "| {stem} | {steps} | {renderer} | {px:.1} px | {w:.0} × {h:.0} | {:.1} × {:.1} |\n",
                w / 1280.0,
                h / 800.0
            ));
            if renderer == "studyflow-svg" {
                assert!(
                    px >= 12.0,
                    "the pages' drawing of {stem}: a step's name is {px:.1} px high"
                );
            }
        }
    }
    let out = root().join("target/graph-comparison.md");
    std::fs::write(&out, &report).unwrap();
    eprintln!("{report}");
}
