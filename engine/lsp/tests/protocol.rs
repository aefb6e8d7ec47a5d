//! The language server over its protocol, with an in-memory connection: the initialize
//! handshake, the diagnostics of every layer at the places `studyflow validate` reports them
//! (a change checked again, a fixed document clean, a closed one cleared), hover with the
//! field's meaning and its MK403 points, and the document's sections as symbols.

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{Value, json};

fn spec(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../specs/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct Client {
    conn: Connection,
    next: i32,
    /// What the server sent while the client waited for something else: its own requests
    /// and messages (diagnostics are waited for as they come).
    backlog: std::collections::VecDeque<Message>,
}

/// The day the servers' date checks count from (`validate --today`).
const TODAY: jiff::civil::Date = jiff::civil::date(2026, 12, 2);

/// A folder of this test's own for the files the commands write.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("studyflow-lsp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A server on an in-memory connection, initialized with the client's `capabilities`, its
/// shown files under `plans`.
fn start(capabilities: Value, plans: &std::path::Path) -> (Client, std::thread::JoinHandle<()>) {
    let (server, client) = Connection::memory();
    let options = studyflow_lsp::Options {
        plan_folder: Some(plans.to_owned()),
    };
    let thread = std::thread::spawn(move || studyflow_lsp::serve_with(&server, options).unwrap());
    let mut c = Client {
        conn: client,
        next: 0,
        backlog: Default::default(),
    };
    let init = c.request(
        "initialize",
        json!({"capabilities": capabilities, "processId": null, "rootUri": null,
            "initializationOptions": {"today": TODAY.to_string()}}),
    );
    assert_eq!(init["capabilities"]["hoverProvider"], true, "{init}");
    c.notify("initialized", json!({}));
    (c, thread)
}

impl Client {
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.answer(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    fn recv(&self, what: &str) -> Message {
        self.conn
            .receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("nothing came for {what}: {e}"))
    }

    /// A request's result, or its error.
    fn answer(&mut self, method: &str, params: Value) -> Result<Value, lsp_server::ResponseError> {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn
            .sender
            .send(Message::Request(Request::new(
                id.clone(),
                method.into(),
                params,
            )))
            .unwrap();
        loop {
            match self.recv(method) {
                Message::Response(r) if r.id == id => {
                    return match r.error {
                        Some(e) => Err(e),
                        None => Ok(r.result.unwrap_or(Value::Null)),
                    };
                }
                Message::Notification(n) if n.method == "textDocument/publishDiagnostics" => {}
                other => self.backlog.push_back(other),
            }
        }
    }

    /// The next request or notification `method` the server sent, however long ago.
    fn sent(&mut self, method: &str) -> Message {
        let is = |m: &Message| match m {
            Message::Request(r) => r.method == method,
            Message::Notification(n) => n.method == method,
            Message::Response(_) => false,
        };
        if let Some(i) = self.backlog.iter().position(is) {
            return self.backlog.remove(i).unwrap();
        }
        loop {
            let m = self.recv(method);
            if is(&m) {
                return m;
            }
            self.backlog.push_back(m);
        }
    }

    /// Answers the server's request `id`.
    fn reply(&self, id: RequestId, result: Value) {
        self.conn
            .sender
            .send(Message::Response(lsp_server::Response::new_ok(id, result)))
            .unwrap();
    }

    fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification::new(
                method.into(),
                params,
            )))
            .unwrap();
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            match self.recv(uri) {
                Message::Notification(n)
                    if n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri =>
                {
                    return n.params["diagnostics"].as_array().unwrap().clone();
                }
                Message::Notification(n) if n.method == "textDocument/publishDiagnostics" => {}
                other => self.backlog.push_back(other),
            }
        }
    }
}

#[test]
fn the_server_checks_while_typing_and_explains_fields() {
    let plans = scratch("plans-typing");
    let (mut c, thread) = start(json!({}), &plans);

    // A valid spec: no findings.
    let uri = "file:///work/specs/recidivism-2026-cohort.yaml";
    let text = spec("recidivism-2026-cohort");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let found = c.diagnostics(uri);
    let errors: Vec<_> = found.iter().filter(|d| d["severity"] == 1).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // A field renamed: the schema's finding, at the line and column `validate` gives it.
    let broken = text.replacen("purpose:", "purpose_of_it:", 1);
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": broken}]}),
    );
    let found = c.diagnostics(uri);
    let expected = studyflow_plan::check(
        broken.as_bytes(),
        &studyflow_calendar::Calendar::latvia(),
        Some(TODAY),
    );
    let expected_errors: Vec<_> = expected
        .checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == studyflow_spec::Severity::Error)
        .collect();
    let got_errors: Vec<_> = found.iter().filter(|d| d["severity"] == 1).collect();
    assert_eq!(got_errors.len(), expected_errors.len(), "{found:?}");
    for (got, want) in got_errors.iter().zip(&expected_errors) {
        assert_eq!(got["code"], want.code);
        let span = want.span.unwrap();
        // LSP counts lines from 0; these lines are ASCII, so columns agree.
        assert_eq!(got["range"]["start"]["line"], span.line - 1, "{got}");
        assert_eq!(got["range"]["start"]["character"], span.column - 1, "{got}");
    }
    let line_of_key = broken
        .lines()
        .position(|l| l.starts_with("purpose_of_it:"))
        .unwrap();
    assert!(
        got_errors
            .iter()
            .any(|d| d["range"]["start"]["line"] == line_of_key),
        "{got_errors:?}"
    );

    // A misspelt key: its finding says which was meant, and its quick fix puts it there.
    let typo_uri = "file:///work/specs/typo.yaml";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": typo_uri, "languageId": "yaml", "version": 1,
            "text": text.replacen("purpose:", "purpsoe:", 1)}}),
    );
    let typo = c.diagnostics(typo_uri);
    let unknown = typo
        .iter()
        .find(|d| d["code"] == "SF010")
        .unwrap_or_else(|| panic!("the unknown key: {typo:?}"));
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `purpose`?"),
        "{unknown}"
    );
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": typo_uri}, "range": unknown["range"],
            "context": {"diagnostics": [unknown]}}),
    );
    let fix = &actions.as_array().unwrap()[0];
    assert_eq!(fix["kind"], "quickfix", "{actions}");
    let edit = &fix["edit"]["changes"][typo_uri][0];
    assert_eq!(edit["newText"], "purpose", "{fix}");
    assert_eq!(edit["range"], unknown["range"]);

    // Hover on a key: the field's meaning with its MK403 point.
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("planned_date:").map(|c| (i, c + 2)))
        .unwrap();
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or("");
    assert!(
        shown.contains("planned_date") && shown.contains("p."),
        "{hover}"
    );
    // …the text of its point: the Latvian original, and the English digest of it.
    assert!(
        shown.contains("**MK403 p.8** (LV, the official text): 8. ")
            && shown.contains("10 darbdienas")
            && shown.contains("*Digest of p.8:*")
            && shown.contains("10 working days"),
        "{hover}"
    );
    // …and the day the p.8 notice is due, as the calendar counts it.
    let planned: jiff::civil::Date = text
        .lines()
        .nth(line)
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let due = studyflow_calendar::Calendar::latvia()
        .deadline_before(
            planned,
            10,
            studyflow_calendar::Reading::NthWorkingDayBefore,
        )
        .unwrap()
        .date;
    assert!(shown.contains(&format!("**{due}**")), "{hover}");
    // The same day as an inlay hint after the date.
    let hints = c.request(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 9999, "character": 0}}}),
    );
    let hint = &hints.as_array().unwrap()[0];
    assert_eq!(hint["label"], format!("p.8 notice by {due}"), "{hints}");
    assert_eq!(hint["position"]["line"], line, "{hint}");

    // Hover on the renamed key: the finding there.
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": line_of_key, "character": 2}}),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or("");
    // The finding, and what the rule reference says of its rule.
    assert!(
        shown.contains("SF010") && shown.contains("`unknown-property` —"),
        "{hover}"
    );

    // The sections as symbols.
    let symbols = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for section in ["id", "version", "publication"] {
        assert!(names.contains(&section), "{names:?}");
    }
    // Inside them, the data sources, the phases and the persons by name.
    let inside = |section: &str| -> Vec<String> {
        symbols
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == section)
            .and_then(|s| s["children"].as_array())
            .map(|c| {
                c.iter()
                    .map(|s| s["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(inside("data_scope").contains(&"information_centre".to_owned()));
    assert!(inside("phases").contains(&"cohort-baseline".to_owned()));
    assert!(inside("authorised_persons").contains(&"Inese Kalniņa".to_owned()));

    // The compiled plan: a code lens on the first line, whose command answers with the plan
    // as Mermaid (or DOT), the same text `studyflow plan` prints; a client that cannot open
    // files is told where the file is (the next test has one that can).
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": text}]}),
    );
    let lenses = c.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    let lens = &lenses.as_array().unwrap()[0];
    assert_eq!(lens["range"]["start"]["line"], 0);
    assert_eq!(lens["command"]["command"], studyflow_lsp::PLAN_COMMAND);
    let mermaid = c.request(
        "workspace/executeCommand",
        json!({"command": lens["command"]["command"], "arguments": lens["command"]["arguments"]}),
    );
    let plan = studyflow_plan::check(
        text.as_bytes(),
        &studyflow_calendar::Calendar::latvia(),
        Some(TODAY),
    )
    .plan
    .unwrap();
    assert_eq!(mermaid, studyflow_plan::render::mermaid(&plan));
    let Message::Notification(said) = c.sent("window/showMessage") else {
        unreachable!()
    };
    let shown = plans.join(format!(
        "recidivism-2026-cohort-{}.plan.mmd",
        said.params["message"]
            .as_str()
            .unwrap()
            .split("recidivism-2026-cohort-")
            .nth(1)
            .and_then(|rest| rest.split(".plan.mmd").next())
            .unwrap_or_else(|| panic!("{said:?}"))
    ));
    assert!(
        said.params["message"]
            .as_str()
            .unwrap()
            .contains(&shown.display().to_string()),
        "{said:?}"
    );
    assert_eq!(std::fs::read_to_string(&shown).unwrap(), mermaid);
    let dot = c.request(
        "workspace/executeCommand",
        json!({"command": studyflow_lsp::PLAN_COMMAND, "arguments": [uri, "dot"]}),
    );
    assert_eq!(dot, studyflow_plan::render::dot(&plan));

    // Completion under a source's fields: its catalogue keys not yet asked for, each with a
    // placeholder for why (MK403 p.3.3) — in a document too short to be a spec.
    let draft = "file:///work/specs/draft.yaml";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": draft, "languageId": "yaml", "version": 1,
            "text": "spec_version: 1\ndata_scope:\n  information_centre:\n    fields:\n      offence_date: dates new offences\n      \n"}}),
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": draft}, "position": {"line": 5, "character": 6}}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"judgment_date") && labels.contains(&"proceeding_number"),
        "{labels:?}"
    );
    assert!(!labels.contains(&"offence_date"), "asked for already");
    assert!(
        !labels.contains(&"birth_year"),
        "a Service IS field is not the Information Centre's"
    );
    let judgment = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "judgment_date")
        .unwrap();
    assert_eq!(judgment["insertTextFormat"], 2, "a snippet");
    assert!(
        judgment["insertText"]
            .as_str()
            .unwrap()
            .starts_with("judgment_date: ${1:")
    );
    assert!(
        judgment["detail"].as_str().unwrap().contains("p.13.19"),
        "{judgment}"
    );

    // Closed: its findings cleared.
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(c.diagnostics(uri).is_empty());

    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&plans);
}

/// The plan's changes since the approved version: the spec as committed at git's HEAD (a
/// repository of specs keeps what was approved), or a file given; said plainly when there is
/// nothing to compare with.
#[test]
fn the_plan_diff_compares_with_the_approved_version() {
    let dir = std::env::temp_dir().join(format!("studyflow-lsp-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let approved = spec("recidivism-2026-cohort");
    let file = dir.join("study.yaml");
    std::fs::write(&file, &approved).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "study.yaml"]);
    git(&["commit", "-q", "-m", "approved"]);

    let plans = dir.join("plans");
    let (mut c, thread) = start(
        json!({"window": {"showDocument": {"support": true}}}),
        &plans,
    );
    // The amendment moves the baseline phase's deadline and the version.
    let amended = approved
        .replacen("    deadline: 2027-04-30", "    deadline: 2027-05-28", 1)
        .replacen("version: 1", "version: 2", 1);
    let uri = format!("file://{}", file.display());
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": amended}}),
    );
    let lenses = c.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(
        lenses
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["command"]["command"] == studyflow_lsp::DIFF_COMMAND),
        "{lenses}"
    );
    let diff = c.request(
        "workspace/executeCommand",
        json!({"command": studyflow_lsp::DIFF_COMMAND, "arguments": [uri]}),
    );
    let diff = diff.as_str().unwrap();
    assert!(
        diff.starts_with("# recidivism-2026-cohort: the plan's changes since v1\n"),
        "{diff}"
    );
    // …and written beside the plans, for the editor to open.
    let Message::Request(show) = c.sent("window/showDocument") else {
        unreachable!()
    };
    let shown = show.params["uri"].as_str().unwrap();
    let path = shown.strip_prefix("file://").unwrap();
    assert!(
        path.starts_with(&plans.display().to_string()) && path.ends_with(".plan-changes.md"),
        "{shown}"
    );
    assert!(
        std::path::Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("study-"),
        "named after the spec: {shown}"
    );
    assert_eq!(std::fs::read_to_string(path).unwrap(), diff);
    c.reply(show.id, json!({"success": true}));
    assert!(diff.contains("## Changed steps"), "{diff}");
    assert!(diff.contains("`merge-link`"), "{diff}");
    assert!(diff.contains("  - deadline: 2027-04-30"), "{diff}");
    assert!(diff.contains("→ 2027-05-28"), "{diff}");

    // The approved file given by its path: the same changes; the amended text given: none.
    let same = c.request(
        "workspace/executeCommand",
        json!({"command": studyflow_lsp::DIFF_COMMAND, "arguments": [uri, file.display().to_string()]}),
    );
    assert!(same.as_str().unwrap().contains("## Changed steps"));
    std::fs::write(dir.join("approved.yaml"), &amended).unwrap();
    let same = c.request(
        "workspace/executeCommand",
        json!({"command": studyflow_lsp::DIFF_COMMAND, "arguments": [uri, dir.join("approved.yaml").display().to_string()]}),
    );
    assert!(
        same.as_str().unwrap().contains("The steps are the same"),
        "{same}"
    );

    // A file git does not hold: an error that says so.
    let loose = format!("file://{}", dir.join("new.yaml").display());
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": loose, "languageId": "yaml", "version": 1, "text": amended}}),
    );
    let refused = c
        .answer(
            "workspace/executeCommand",
            json!({"command": studyflow_lsp::DIFF_COMMAND, "arguments": [loose]}),
        )
        .unwrap_err();
    assert!(
        refused.message.contains("not committed at HEAD"),
        "{}",
        refused.message
    );

    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The plan's code lenses in a client that opens files (`window.showDocument`): each writes
/// the plan — Mermaid, or DOT — to a file of the user's own named after the spec and asks the
/// client to open it; a file the client did not open is said in a message; a link planted in
/// the file's place is replaced, not followed.
#[test]
fn the_plan_lenses_open_the_plan_in_the_editor() {
    let plans = scratch("plans-shown");
    let (mut c, thread) = start(
        json!({"window": {"showDocument": {"support": true}}}),
        &plans,
    );
    let uri = "file:///work/specs/recidivism-2026-cohort.yaml";
    let text = spec("recidivism-2026-cohort");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let plan = studyflow_plan::check(
        text.as_bytes(),
        &studyflow_calendar::Calendar::latvia(),
        Some(TODAY),
    )
    .plan
    .unwrap();
    let lenses = c.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    let lens = |title: &str| {
        lenses
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["command"]["title"].as_str().unwrap().contains(title))
            .unwrap_or_else(|| panic!("no lens {title}: {lenses}"))["command"]
            .clone()
    };
    // Runs a lens and returns the file the server asked the client to show, and the request.
    let run = |c: &mut Client, command: &Value| {
        c.request(
            "workspace/executeCommand",
            json!({"command": command["command"], "arguments": command["arguments"]}),
        );
        let Message::Request(show) = c.sent("window/showDocument") else {
            unreachable!()
        };
        assert_eq!(show.params["takeFocus"], true, "{show:?}");
        let path = std::path::PathBuf::from(
            show.params["uri"]
                .as_str()
                .unwrap()
                .strip_prefix("file://")
                .unwrap(),
        );
        (path, show)
    };

    let (mermaid, show) = run(&mut c, &lens("(Mermaid)"));
    assert_eq!(mermaid.parent().unwrap(), plans);
    let name = mermaid.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("recidivism-2026-cohort-") && name.ends_with(".plan.mmd"),
        "{name}"
    );
    assert_eq!(
        std::fs::read_to_string(&mermaid).unwrap(),
        studyflow_plan::render::mermaid(&plan)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&mermaid), 0o600, "the file is its owner's only");
        assert_eq!(mode(&plans), 0o700, "the folder is its owner's only");
    }
    // Opened: nothing more is said (the codeLens answer comes after anything the reply
    // caused).
    c.reply(show.id, json!({"success": true}));
    c.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(
        !c.backlog
            .iter()
            .any(|m| matches!(m, Message::Notification(n) if n.method == "window/showMessage")),
        "{:?}",
        c.backlog
    );

    // DOT: its own file; the client could not open it, so the server says where it is.
    let (dot, show) = run(&mut c, &lens("(DOT)"));
    assert_eq!(dot.parent().unwrap(), plans);
    assert!(
        dot.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with(".plan.dot"),
        "{}",
        dot.display()
    );
    assert_eq!(
        std::fs::read_to_string(&dot).unwrap(),
        studyflow_plan::render::dot(&plan)
    );
    c.reply(show.id, json!({"success": false}));
    let Message::Notification(said) = c.sent("window/showMessage") else {
        unreachable!()
    };
    assert!(
        said.params["message"]
            .as_str()
            .unwrap()
            .contains(&dot.display().to_string()),
        "{said:?}"
    );

    // A link planted where the plan goes is replaced by the plan; its target is untouched.
    #[cfg(unix)]
    {
        let target = plans.with_extension("elsewhere");
        std::fs::write(&target, "not the plan's").unwrap();
        std::fs::remove_file(&mermaid).unwrap();
        std::os::unix::fs::symlink(&target, &mermaid).unwrap();
        let (again, show) = run(&mut c, &lens("(Mermaid)"));
        c.reply(show.id, json!({"success": true}));
        assert_eq!(again, mermaid);
        assert!(!std::fs::symlink_metadata(&again).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(&again).unwrap(),
            studyflow_plan::render::mermaid(&plan)
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not the plan's");
        std::fs::remove_file(&target).unwrap();
    }

    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&plans);
}

/// Only study specs are checked: YAML that is not one — the repository's own GitHub workflow
/// example and pre-commit configuration — gets an empty list of findings, no hover, lenses,
/// hints, symbols or completion; a spec is marked by its top-level `spec_version` or by the
/// study-spec schema's modeline, and is checked even when it does not parse; a document
/// becomes a spec when the mark is written, and an empty one is offered the spec's keys.
#[test]
fn only_study_specs_are_checked() {
    let plans = scratch("plans-only-specs");
    let (mut c, thread) = start(json!({}), &plans);
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap();
    let position = json!({"line": 1, "character": 2});
    for (uri, text) in [
        (
            "file:///work/.github/workflows/specs.yml",
            read("examples/ci/github-workflow.yml"),
        ),
        (
            "file:///work/.pre-commit-config.yaml",
            read(".pre-commit-config.yaml"),
        ),
        // A `spec_version` that is not the document's own key.
        (
            "file:///work/other.yaml",
            "tool:\n  spec_version: 1\n  name: x\n".to_owned(),
        ),
    ] {
        // What the spec's checks would say of it: plenty.
        assert!(
            !studyflow_plan::check(
                text.as_bytes(),
                &studyflow_calendar::Calendar::latvia(),
                Some(TODAY)
            )
            .checked
            .diagnostics
            .is_empty(),
            "{uri}"
        );
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
        );
        assert_eq!(c.diagnostics(uri), Vec::<Value>::new(), "{uri}");
        let at = json!({"textDocument": {"uri": uri}, "position": position});
        assert_eq!(
            c.request("textDocument/hover", at.clone()),
            Value::Null,
            "{uri}"
        );
        assert_eq!(c.request("textDocument/completion", at), json!([]), "{uri}");
        let doc = json!({"textDocument": {"uri": uri}});
        assert_eq!(
            c.request("textDocument/codeLens", doc.clone()),
            json!([]),
            "{uri}"
        );
        assert_eq!(
            c.request("textDocument/documentSymbol", doc.clone()),
            json!([]),
            "{uri}"
        );
        let mut hints = doc.clone();
        hints["range"] =
            json!({"start": {"line": 0, "character": 0}, "end": {"line": 999, "character": 0}});
        assert_eq!(
            c.request("textDocument/inlayHint", hints),
            json!([]),
            "{uri}"
        );
    }

    // Specs: by `spec_version` (this one does not parse), by the modeline alone (this one
    // lacks `spec_version`, and hears of it), or both.
    let unparsed = "spec_version: 1\nid: [unclosed\n";
    let modeline_only =
        "# yaml-language-server: $schema=../schemas/study-spec.schema.json\nid: x\n";
    for (uri, text, code, says) in [
        ("file:///work/specs/a.yaml", unparsed, "SF001", ""),
        (
            "file:///work/specs/b.yaml",
            modeline_only,
            "SF011",
            "`spec_version`",
        ),
    ] {
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
        );
        let found = c.diagnostics(uri);
        assert!(
            found
                .iter()
                .any(|d| d["code"] == code && d["message"].as_str().unwrap().contains(says)),
            "{uri}: {found:?}"
        );
    }

    // An empty document: no findings, and the spec's keys offered, `spec_version` among them;
    // once it is written, the document is a spec and hears what it lacks.
    let new = "file:///work/specs/new.yaml";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": new, "languageId": "yaml", "version": 1, "text": ""}}),
    );
    assert_eq!(c.diagnostics(new), Vec::<Value>::new());
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": new}, "position": {"line": 0, "character": 0}}),
    );
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["label"] == "spec_version"),
        "{items}"
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": new, "version": 2}, "contentChanges": [{"text": "spec_version: 1\n"}]}),
    );
    let found = c.diagnostics(new);
    assert!(found.iter().any(|d| d["code"] == "SF011"), "{found:?}");

    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&plans);
}

/// Initialization options the server does not know are refused, naming the option, and the
/// server waits for the client's `exit`.
#[test]
fn unknown_initialization_options_are_refused() {
    let (server, client) = Connection::memory();
    let thread = std::thread::spawn(move || studyflow_lsp::serve(&server));
    let mut c = Client {
        conn: client,
        next: 0,
        backlog: Default::default(),
    };
    let refused = c
        .answer(
            "initialize",
            json!({"capabilities": {}, "processId": null, "rootUri": null,
                "initializationOptions": {"todya": "2026-12-02"}}),
        )
        .unwrap_err();
    assert!(refused.message.contains("`todya`"), "{}", refused.message);
    assert_eq!(refused.data, Some(json!({"retry": false})));
    let later = c.answer("textDocument/hover", json!({})).unwrap_err();
    assert_eq!(
        later.code,
        lsp_server::ErrorCode::ServerNotInitialized as i32
    );
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(thread.join().unwrap().is_err());
}
