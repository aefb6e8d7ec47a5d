//! `studyflow lsp` with a real editor: Debian's Neovim, headless, its built-in LSP client
//! attached as docs/editors.md sets it up (`tests/neovim/init.lua`), one server for every
//! buffer, the date checks counting from a fixed day (`initializationOptions.today`). On the
//! three specs as shipped and the recidivism spec with a field renamed: the findings Neovim
//! shows are exactly `studyflow validate`'s, at its lines (on the shipped specs no error, only
//! the warnings `validate` gives too); hover with the field's meaning and MK403 point; the
//! spec's sections as symbols; completion of a source's catalogue keys in a new spec. Without
//! Neovim the test says so loudly and skips; with `CI` set that is a failure (`.ci/run`
//! installs it).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_studyflow");
/// The day after the resocialisation study's p.8 notice day (2028-03-01): `validate` warns of
/// it (SF207), and so must the editor.
const TODAY: &str = "2028-03-02";

#[test]
fn neovim_shows_the_findings_and_explains_the_fields() {
    if Command::new("nvim").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Neovim is required in CI (apt-get install neovim)"
        );
        eprintln!(
            "\n*** SKIPPED the Neovim test: nvim is not installed (apt-get install neovim) ***\n"
        );
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("sf-nvim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    // The recidivism spec with a field renamed first (hover and symbols are asked of it), the
    // three specs as shipped, then a spec being started (completion is asked of it).
    let recidivism =
        std::fs::read_to_string(root.join("../../specs/recidivism-2026-cohort.yaml")).unwrap();
    let broken = recidivism.replacen("purpose:", "purpose_of_it:", 1);
    files.push(("broken.yaml".to_owned(), broken.clone()));
    for name in [
        "recidivism-2026-cohort",
        "probation-client-survey",
        "resocialisation-programmes-university",
    ] {
        let text = std::fs::read_to_string(root.join(format!("../../specs/{name}.yaml"))).unwrap();
        files.push((format!("{name}.yaml"), text));
    }
    let draft = "spec_version: 1\ndata_scope:\n  information_centre:\n    fields:\n      offence_date: dates new offences\n      \n";
    files.push(("draft.yaml".to_owned(), draft.to_owned()));
    let paths: Vec<String> = files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        })
        .collect();
    let out = dir.join("out.json");
    let (line, col) = broken
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("planned_date:").map(|c| (i, c + 2)))
        .unwrap();
    let run = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-u"])
        .arg(root.join("tests/neovim/init.lua"))
        .env("STUDYFLOW", BIN)
        .env("SPECS", paths.join("\n"))
        .env("OUT", &out)
        .env("TODAY", TODAY)
        .env("HOVER_LINE", line.to_string())
        .env("HOVER_COL", col.to_string())
        .env("COMPLETE_LINE", "5")
        .env("COMPLETE_COL", "6")
        .current_dir(&dir)
        .output()
        .unwrap();
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!(
                "Neovim wrote no result ({e}): {}\n{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            )
        });
    assert!(got.get("error").is_none(), "{got}");
    assert_eq!(got["clients"], 1, "one server for every buffer");
    let calendar = studyflow_calendar::Calendar::latvia();
    let today: jiff::civil::Date = TODAY.parse().unwrap();
    let shown_files = got["files"].as_array().unwrap();
    assert_eq!(shown_files.len(), files.len(), "{got}");
    for ((name, text), shown) in files.iter().zip(shown_files) {
        // The findings Neovim shows: those `validate --today` reports, at its lines (Neovim's
        // from 0), no more.
        let expected = studyflow_plan::check(text.as_bytes(), &calendar, Some(today));
        let shown: Vec<(String, u64, u64)> = shown["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["code"].as_str().unwrap_or("").to_owned(),
                    d["lnum"].as_u64().unwrap(),
                    d["severity"].as_u64().unwrap(),
                )
            })
            .collect();
        for d in &expected.checked.diagnostics {
            let at = d.span.unwrap().line as u64 - 1;
            assert!(
                shown.iter().any(|(c, l, _)| c == d.code && *l == at),
                "{name}: {} at {at} not among {shown:?}",
                d.code
            );
        }
        assert_eq!(
            shown.len(),
            expected.checked.diagnostics.len(),
            "{name}: {shown:?}"
        );
        if name.starts_with("broken") {
            // The renamed key: its error, on its line.
            let renamed = text
                .lines()
                .position(|l| l.starts_with("purpose_of_it:"))
                .unwrap() as u64;
            assert!(
                shown
                    .iter()
                    .any(|(c, l, s)| c == "SF010" && *l == renamed && *s == 1),
                "{shown:?}"
            );
        } else if name != "draft.yaml" {
            // A spec as shipped: no error (Neovim's severity 1), only what `validate` warns of.
            assert!(shown.iter().all(|(_, _, s)| *s > 1), "{name}: {shown:?}");
        }
        if name.starts_with("resocialisation") {
            assert!(
                shown.iter().any(|(c, _, s)| c == "SF207" && *s == 2),
                "the p.8 notice day passed: {shown:?}"
            );
        }
    }

    let hover = got["hover"].as_str().unwrap();
    assert!(
        hover.contains("planned_date") && hover.contains("p."),
        "{hover}"
    );
    let symbols: Vec<&str> = got["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        symbols.contains(&"publication") && symbols.contains(&"id"),
        "{symbols:?}"
    );

    // Completion under the new spec's Information Centre fields: its catalogue keys not yet
    // asked for, each with a place for why the study needs it (MK403 p.3.3).
    let offered: Vec<(&str, &str)> = got["completion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap(),
                i["insertText"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let judgment = offered
        .iter()
        .find(|(l, _)| *l == "judgment_date")
        .unwrap_or_else(|| panic!("{offered:?}"));
    assert!(
        judgment.1.starts_with("judgment_date: ${1:"),
        "{judgment:?}"
    );
    assert!(
        !offered.iter().any(|(l, _)| *l == "offence_date"),
        "asked for already"
    );
    assert!(
        !offered.iter().any(|(l, _)| *l == "birth_year"),
        "a Service IS field is not the Information Centre's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
