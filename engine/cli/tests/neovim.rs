//! `studyflow lsp` with a real editor: Debian's Neovim, headless, its built-in LSP client
//! (`tests/neovim/init.lua`) on the recidivism spec with a field renamed — the findings where
//! `studyflow validate` puts them, hover with the field's meaning and MK403 point, the spec's
//! sections as symbols. Without Neovim the test says so loudly and skips; with `CI` set that
//! is a failure (`.ci/run` installs it).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_studyflow");

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
    let text =
        std::fs::read_to_string(root.join("../../specs/recidivism-2026-cohort.yaml")).unwrap();
    let broken = text.replacen("purpose:", "purpose_of_it:", 1);
    let dir = std::env::temp_dir().join(format!("sf-nvim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("recidivism-2026-cohort.yaml");
    std::fs::write(&spec, &broken).unwrap();
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
        .env("SPEC", &spec)
        .env("OUT", &out)
        .env("HOVER_LINE", line.to_string())
        .env("HOVER_COL", col.to_string())
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
    // The findings Neovim shows: those `validate` reports, at its lines (Neovim's from 0).
    let expected = studyflow_plan::check(
        broken.as_bytes(),
        &studyflow_calendar::Calendar::latvia(),
        None,
    );
    let shown: Vec<(String, u64)> = got["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_owned(),
                d["lnum"].as_u64().unwrap(),
            )
        })
        .collect();
    for d in &expected.checked.diagnostics {
        let at = (d.code.to_owned(), d.span.unwrap().line as u64 - 1);
        assert!(shown.contains(&at), "{at:?} not among {shown:?}");
    }
    assert_eq!(shown.len(), expected.checked.diagnostics.len(), "{shown:?}");
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
    let _ = std::fs::remove_dir_all(&dir);
}
