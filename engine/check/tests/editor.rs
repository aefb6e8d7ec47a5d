//! The editor and `studyflow validate` say the same of a spec, the checks that need today's
//! date and the calendar among them: a spec whose p.8 notice day has passed (SF207, MK403 p.8)
//! and one whose ethics permission is dated after today (SF208, MK403 p.4.4), each with the
//! day fixed the same way in both (`validate --today`, the server's `initializationOptions`),
//! and a calendar override (`--calendar-overrides`, `calendarOverrides`) that moves the p.8
//! day: the same findings at the same lines and columns from the language server as from
//! `validate`'s JSON.

use std::path::{Path, PathBuf};

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// `studyflow-check validate --format json` of `spec` with `args`: (code, line, column,
/// message) of each finding, lines and columns from 1.
fn validate(spec: &Path, args: &[&str]) -> Vec<(String, u64, u64, String)> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let line = ["studyflow-check", "validate", "--format", "json"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(args.iter().map(|s| (*s).to_owned()))
        .chain([spec.display().to_string()]);
    let code = studyflow_check::main(line, &mut out, &mut err, false);
    assert!(code <= 1, "{}", String::from_utf8_lossy(&err));
    let report: Value = serde_json::from_slice(&out).unwrap();
    report["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The language server's findings of `spec`, started with `options` as its
/// `initializationOptions`: (code, line, column, message) as `validate` counts them (the
/// server's message carries the points and help after the finding's own).
fn editor(spec: &Path, options: Value) -> Vec<(String, u64, u64, String)> {
    let (server, client) = Connection::memory();
    let thread = std::thread::spawn(move || studyflow_lsp::serve(&server).unwrap());
    let send = |m: Message| client.sender.send(m).unwrap();
    let recv = || {
        client
            .receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the server answers")
    };
    send(Message::Request(Request::new(
        RequestId::from(1),
        "initialize".into(),
        json!({"capabilities": {}, "processId": null, "rootUri": null, "initializationOptions": options}),
    )));
    let Message::Response(init) = recv() else {
        panic!("not an answer")
    };
    assert!(init.error.is_none(), "{:?}", init.error);
    send(Message::Notification(Notification::new(
        "initialized".into(),
        json!({}),
    )));
    let uri = format!("file://{}", spec.display());
    let text = std::fs::read_to_string(spec).unwrap();
    send(Message::Notification(Notification::new(
        "textDocument/didOpen".into(),
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
    )));
    let published = loop {
        if let Message::Notification(n) = recv()
            && n.method == "textDocument/publishDiagnostics"
        {
            break n.params["diagnostics"].as_array().unwrap().clone();
        }
    };
    send(Message::Request(Request::new(
        RequestId::from(2),
        "shutdown".into(),
        Value::Null,
    )));
    send(Message::Notification(Notification::new(
        "exit".into(),
        Value::Null,
    )));
    thread.join().unwrap();
    published
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["range"]["start"]["line"].as_u64().unwrap() + 1,
                // The spec's lines are ASCII where these findings are: UTF-16 columns and
                // characters agree.
                d["range"]["start"]["character"].as_u64().unwrap() + 1,
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The same findings, in the same order: code, line, column, and the editor's message starting
/// with `validate`'s.
fn assert_agree(
    name: &str,
    validate: &[(String, u64, u64, String)],
    editor: &[(String, u64, u64, String)],
) {
    assert_eq!(
        validate.len(),
        editor.len(),
        "{name}: validate {validate:#?}\neditor {editor:#?}"
    );
    for (v, e) in validate.iter().zip(editor) {
        assert_eq!((&v.0, v.1, v.2), (&e.0, e.1, e.2), "{name}");
        assert!(e.3.starts_with(&v.3), "{name}: {e:?} is not {v:?}");
    }
}

/// The date checks: the p.8 notice day passed, the ethics permission after today.
#[test]
fn the_editor_runs_the_date_checks_validate_runs() {
    let spec = root().join("specs/resocialisation-programmes-university.yaml");
    for (today, code, says) in [
        // The publication is planned for 2028-03-15: the notice was due by 2028-03-01.
        (
            "2028-03-02",
            "SF207",
            "the Prison Administration notice was due by 2028-03-01",
        ),
        // The ethics committee's permission is dated 2026-02-18.
        (
            "2026-02-17",
            "SF208",
            "the research ethics committee's permission is dated 2026-02-18, after today (2026-02-17)",
        ),
    ] {
        let v = validate(&spec, &["--today", today]);
        let e = editor(&spec, json!({"today": today}));
        assert!(
            v.iter().any(|d| d.0 == code && d.3.starts_with(says)),
            "{today}: {v:#?}"
        );
        assert_agree(today, &v, &e);
    }
    // A day on which neither has passed: neither says it.
    let v = validate(&spec, &["--today", "2026-12-02"]);
    let e = editor(&spec, json!({"today": "2026-12-02"}));
    assert!(
        !v.iter().any(|d| d.0 == "SF207" || d.0 == "SF208"),
        "{v:#?}"
    );
    assert_agree("2026-12-02", &v, &e);
}

/// A calendar override moves the p.8 day in the editor as in `validate`: a day off on
/// 2028-03-10, between the notice day and the publication, makes the notice due a working day
/// earlier, 2028-02-29 — passed on 2028-03-01, when without the override it is due that day.
#[test]
fn the_editor_reads_the_calendar_overrides_validate_reads() {
    let spec = root().join("specs/resocialisation-programmes-university.yaml");
    let dir = std::env::temp_dir().join(format!("studyflow-editor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let overrides = dir.join("day-off.txt");
    std::fs::write(
        &overrides,
        "one-off   2028-03-10  A day off for the test (Brīvdiena testam)\n",
    )
    .unwrap();
    let today = "2028-03-01";
    let plain = validate(&spec, &["--today", today]);
    assert!(!plain.iter().any(|d| d.0 == "SF207"), "{plain:#?}");
    assert_agree("without", &plain, &editor(&spec, json!({"today": today})));

    let file = overrides.display().to_string();
    let moved = validate(&spec, &["--today", today, "--calendar-overrides", &file]);
    assert!(
        moved
            .iter()
            .any(|d| d.0 == "SF207" && d.3.contains("was due by 2028-02-29")),
        "{moved:#?}"
    );
    let e = editor(&spec, json!({"today": today, "calendarOverrides": [file]}));
    assert_agree("with the override", &moved, &e);

    // An override the calendar refuses fails the server's start as it fails `validate`.
    std::fs::write(&overrides, "one-off   2028-02-30  No such day\n").unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = studyflow_check::main(
        [
            "studyflow-check",
            "validate",
            "--calendar-overrides",
            &file,
            &spec.display().to_string(),
        ],
        &mut out,
        &mut err,
        false,
    );
    assert_eq!(code, 2, "{}", String::from_utf8_lossy(&err));
    let (server, client) = Connection::memory();
    let thread = std::thread::spawn(move || studyflow_lsp::serve(&server));
    client
        .sender
        .send(Message::Request(Request::new(
            RequestId::from(1),
            "initialize".into(),
            json!({"capabilities": {}, "processId": null, "rootUri": null,
                "initializationOptions": {"calendarOverrides": [file]}}),
        )))
        .unwrap();
    let Ok(Message::Response(init)) = client
        .receiver
        .recv_timeout(std::time::Duration::from_secs(60))
    else {
        panic!("no answer to initialize")
    };
    let refused = init.error.expect("initialize fails");
    // What `validate` said of the file, at its line.
    let said = String::from_utf8(err).unwrap();
    let said = said.trim().strip_prefix("studyflow: error: ").unwrap();
    assert!(said.starts_with(&format!("{file}:1: ")), "{said}");
    assert!(
        refused.message.ends_with(said),
        "{} is not {said}",
        refused.message
    );
    client
        .sender
        .send(Message::Notification(Notification::new(
            "exit".into(),
            Value::Null,
        )))
        .unwrap();
    assert!(
        thread.join().unwrap().is_err(),
        "the server says it did not start"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
