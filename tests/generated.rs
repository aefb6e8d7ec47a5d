//! Generated files are checked in and must be fresh. Run with `STUDYFLOW_BLESS=1` to rewrite
//! them after changing the spec types, the catalogue or the rules.

use studyflow_tests::root;

fn check_fresh(relative: &str, expected: &str, command: &str) {
    let path = root().join(relative);
    if std::env::var_os("STUDYFLOW_BLESS").is_some() {
        std::fs::write(&path, expected).unwrap_or_else(|e| panic!("write {relative}: {e}"));
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{relative} is stale: regenerate it with `cargo run -p studyflow-cli -- {command} > {relative}` \
         (or STUDYFLOW_BLESS=1 cargo test -p studyflow-tests --test generated) and review the diff"
    );
}

#[test]
fn schema_is_fresh() {
    check_fresh(
        studyflow_spec::schema::SCHEMA_PATH,
        &studyflow_spec::schema::schema_text(),
        "schema",
    );
}

#[test]
fn rule_reference_is_fresh() {
    check_fresh(
        "docs/rules.md",
        &studyflow_plan::reference_markdown(),
        "rules",
    );
}

#[test]
fn catalogue_reference_is_fresh() {
    check_fresh(
        "docs/catalogue.md",
        &studyflow_spec::catalogue::reference_markdown(),
        "catalogue",
    );
}

#[test]
fn command_reference_is_fresh() {
    check_fresh(
        "docs/cli.md",
        &studyflow_cli::reference::markdown(),
        "commands",
    );
}

#[test]
fn openapi_document_is_fresh() {
    check_fresh(
        "docs/openapi.json",
        &studyflow_server::openapi_text(),
        "openapi",
    );
}

/// `docs/api.md` lists every route of the route table.
#[test]
fn the_api_page_lists_every_route() {
    let page = std::fs::read_to_string(root().join("docs/api.md")).expect("docs/api.md");
    for (doc, _) in studyflow_server::routes() {
        let row = format!("| {} | `{}` |", doc.method, doc.path);
        assert!(page.contains(&row), "docs/api.md has no row `{row}`");
    }
}

#[test]
fn every_spec_carries_the_schema_modeline() {
    let dir = root().join("specs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("specs/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).expect("readable spec");
            assert!(
                text.starts_with(
                    "# yaml-language-server: $schema=../schemas/study-spec.schema.json\n"
                ),
                "{} must start with the schema modeline",
                path.display()
            );
            n += 1;
        }
    }
    assert!(n >= 3, "specs/ holds at least three studies, found {n}");
}

/// The pure crates stay pure: nothing in the dependency closure of `studyflow-spec`,
/// `studyflow-calendar` or `studyflow-plan` does async or talks to a database
/// (docs/ARCHITECTURE.md).
#[test]
fn pure_crates_depend_on_neither_tokio_nor_sqlx() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock is committed");
    let mut deps: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned())
            .unwrap_or_default();
        let mut list = Vec::new();
        if let Some(start) = block.find("dependencies = [") {
            let rest = &block[start + "dependencies = [".len()..];
            let end = rest.find(']').unwrap_or(rest.len());
            for item in rest[..end].split(',') {
                let item = item.trim().trim_matches('"');
                if let Some(dep) = item.split_whitespace().next() {
                    list.push(dep.to_owned());
                }
            }
        }
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![
        "studyflow-spec".to_owned(),
        "studyflow-calendar".to_owned(),
        "studyflow-plan".to_owned(),
    ];
    while let Some(p) = stack.pop() {
        if seen.insert(p.clone()) {
            stack.extend(deps.get(&p).cloned().unwrap_or_default());
        }
    }
    for expected in ["jsonschema", "sha2", "petgraph"] {
        assert!(
            seen.contains(expected),
            "the walk found the pure crates' dependencies ({expected})"
        );
    }
    for forbidden in [
        "tokio",
        "sqlx",
        "sqlx-core",
        "reqwest",
        "hyper",
        "async-std",
    ] {
        assert!(
            !seen.contains(forbidden),
            "the pure crates (spec, calendar, plan) must not depend on {forbidden}"
        );
    }
}

/// The CLI (and later the server) reach the store only through the engine's typed API
/// (`Engine::status`, `Engine::studies`, …), never its `store` field: what a command shows is
/// decided in one place (issue #10). The CLI opens the store only to give it to an engine.
#[test]
fn the_cli_reaches_the_store_only_through_the_engine() {
    let mut stack = vec![root().join("engine/cli/src")];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("the CLI's sources") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("a source file");
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                assert!(
                    !code.contains(".store.") && !code.contains(".store;"),
                    "{}:{}: the CLI uses the engine's store directly; add a method to the engine",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    assert!(files > 8, "the walk found the CLI's sources ({files})");
}

/// The regulation's texts the binary carries (`docs/regulation/`) are the team's: where the
/// shared folder is beside the checkout (`../shared/regulation/`), each copy is the same as
/// its source, so a hover never quotes an outdated digest.
#[test]
fn the_regulation_texts_are_the_shared_ones() {
    let shared = root().join("../shared/regulation");
    if !shared.is_dir() {
        eprintln!("skipped: no ../shared/regulation beside this checkout to compare with");
        return;
    }
    for name in ["MK403-2025.lv.txt", "digest.md"] {
        let ours = std::fs::read(root().join("docs/regulation").join(name)).unwrap();
        let theirs = std::fs::read(shared.join(name)).unwrap();
        assert!(
            ours == theirs,
            "docs/regulation/{name} differs from ../shared/regulation/{name}: copy it again"
        );
    }
}
