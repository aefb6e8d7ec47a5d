//! The checked-in schema in the editor people use: the real yaml-language-server (npm, pinned
//! in `tests/yaml-ls/`, run with the machine's Node) over stdio, the schema found by each
//! spec's modeline. Completion offers every allowed key at the top level and at five nested
//! places, and every value of an enum; hover shows the field's MK403 point; the three specs
//! have no diagnostics; and a schema-level finding of `tests/specs/invalid/` is on the line
//! `studyflow validate` puts it. Without Node and the package the test says so loudly and
//! skips; with `CI` set that is a failure (`.ci/run` installs it).

use std::io::BufReader;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lsp_server::{Message, Notification, Request, RequestId, Response};
use serde_json::{Value, json};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Ls {
    child: Child,
    stdin: Arc<Mutex<std::process::ChildStdin>>,
    responses: Receiver<Response>,
    notifications: Receiver<Notification>,
    next: i32,
}

impl Drop for Ls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ls {
    fn start() -> Option<Ls> {
        let bin =
            root().join("tests/yaml-ls/node_modules/yaml-language-server/bin/yaml-language-server");
        let skip = |why: &str| {
            assert!(
                std::env::var_os("CI").is_none(),
                "yaml-language-server is required in CI: {why} (npm ci --prefix tests/yaml-ls)"
            );
            eprintln!(
                "\n*** SKIPPED the yaml-language-server test: {why} (npm ci --prefix tests/yaml-ls) ***\n"
            );
            None
        };
        if !bin.exists() {
            return skip("it is not installed");
        }
        let mut child = match Command::new("node")
            .arg(&bin)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return skip(&format!("node does not run: {e}")),
        };
        let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
        let stdout = child.stdout.take().unwrap();
        let (rtx, responses) = channel();
        let (ntx, notifications) = channel();
        let writer = stdin.clone();
        // The server's own requests (its configuration, registrations) are answered here.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Ok(Some(msg)) = Message::read(&mut reader) {
                match msg {
                    Message::Response(r) => {
                        let _ = rtx.send(r);
                    }
                    Message::Notification(n) => {
                        let _ = ntx.send(n);
                    }
                    Message::Request(req) => {
                        let result = if req.method == "workspace/configuration" {
                            let n = req.params["items"].as_array().map_or(1, Vec::len);
                            let mut items = vec![json!({}); n];
                            for (i, item) in req.params["items"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .enumerate()
                            {
                                if item["section"] == "yaml" {
                                    items[i] = json!({"validate": true, "hover": true, "completion": true, "schemaStore": {"enable": false}});
                                }
                            }
                            Value::Array(items)
                        } else {
                            Value::Null
                        };
                        let mut w = writer.lock().unwrap();
                        let _ = Message::Response(Response::new_ok(req.id, result)).write(&mut *w);
                    }
                }
            }
        });
        let mut ls = Ls {
            child,
            stdin,
            responses,
            notifications,
            next: 0,
        };
        let uri = format!("file://{}", root().display());
        ls.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri,
                "capabilities": {
                    "workspace": {"configuration": true},
                    "textDocument": {
                        "completion": {"completionItem": {"snippetSupport": true, "documentationFormat": ["markdown"]}},
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "publishDiagnostics": {},
                    },
                },
            }),
        );
        ls.notify("initialized", json!({}));
        ls.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"yaml": {"validate": true, "hover": true, "completion": true, "schemaStore": {"enable": false}}}}),
        );
        Some(ls)
    }

    fn send(&self, msg: Message) {
        let mut w = self.stdin.lock().unwrap();
        msg.write(&mut *w).unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.send(Message::Request(Request::new(
            id.clone(),
            method.into(),
            params,
        )));
        loop {
            let r = self
                .responses
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("no answer to {method}: {e}"));
            if r.id == id {
                assert!(r.error.is_none(), "{method}: {:?}", r.error);
                return r.result.unwrap_or(Value::Null);
            }
        }
    }

    fn notify(&self, method: &str, params: Value) {
        self.send(Message::Notification(Notification::new(
            method.into(),
            params,
        )));
    }

    fn open(&self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
        );
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&self, uri: &str) -> Vec<Value> {
        loop {
            let n = self
                .notifications
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("no diagnostics for {uri}: {e}"));
            if n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri {
                return n.params["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn completion(&mut self, uri: &str, line: usize, character: usize) -> Vec<String> {
        let r = self.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
        );
        let items = r.get("items").unwrap_or(&r);
        items
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["label"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The schema node at `path` (property names), through `$ref` and `allOf`.
fn node<'s>(schema: &'s Value, path: &[&str]) -> &'s Value {
    fn resolve<'s>(schema: &'s Value, mut n: &'s Value) -> &'s Value {
        loop {
            if let Some(r) = n.get("$ref").and_then(|r| r.as_str()) {
                n = schema.pointer(r.trim_start_matches('#')).unwrap();
            } else if let Some(first) = n.get("allOf").and_then(|a| a.get(0)) {
                n = first;
            } else {
                return n;
            }
        }
    }
    let mut n = resolve(schema, schema);
    for p in path {
        n = resolve(schema, &n["properties"][*p]);
    }
    n
}

fn keys(n: &Value) -> Vec<String> {
    n["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

const MODELINE: &str = "# yaml-language-server: $schema=../schemas/study-spec.schema.json\n";

#[test]
fn the_schema_completes_explains_and_checks_in_yaml_language_server() {
    let Some(mut ls) = Ls::start() else {
        return;
    };
    let schema = studyflow_spec::schema::schema_value();
    let specs = root().join("specs");
    let uri_of = |name: &str| format!("file://{}/{name}", specs.display());

    // Completion of keys: the top level, then five nested objects.
    for (n, path) in [
        vec![],
        vec!["publication"],
        vec!["methodology"],
        vec!["anonymisation"],
        vec!["follow_up"],
        vec!["retention"],
    ]
    .into_iter()
    .enumerate()
    {
        let mut text = MODELINE.to_owned();
        let mut indent = String::new();
        for p in &path {
            text.push_str(&format!("{indent}{p}:\n"));
            indent.push_str("  ");
        }
        text.push_str(&indent);
        text.push('\n');
        let uri = uri_of(&format!("_completion-{n}.yaml"));
        ls.open(&uri, &text);
        let offered = ls.completion(&uri, 1 + path.len(), indent.len());
        let want = keys(node(schema, &path));
        assert!(!want.is_empty(), "{path:?}");
        let missing: Vec<_> = want.iter().filter(|k| !offered.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "at {path:?} not offered: {missing:?}; offered {offered:?}"
        );
    }

    // Every value of an enum: the study design.
    let text = format!("{MODELINE}methodology:\n  design: \n");
    let uri = uri_of("_enum.yaml");
    ls.open(&uri, &text);
    let offered = ls.completion(&uri, 2, "  design: ".len());
    let design = node(schema, &["methodology", "design"]);
    for v in design["enum"].as_array().unwrap() {
        let v = v.as_str().unwrap();
        assert!(
            offered.iter().any(|o| o == v),
            "{v} not offered: {offered:?}"
        );
    }

    // The three specs: no diagnostics; hover on a key shows its MK403 point.
    for name in [
        "recidivism-2026-cohort",
        "probation-client-survey",
        "resocialisation-programmes-university",
    ] {
        let text = std::fs::read_to_string(specs.join(format!("{name}.yaml"))).unwrap();
        let uri = uri_of(&format!("{name}.yaml"));
        ls.open(&uri, &text);
        let found = ls.diagnostics(&uri);
        assert!(found.is_empty(), "{name}: {found:?}");
        let (line, col) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find("purpose:").filter(|c| *c == 0).map(|c| (i, c + 2)))
            .unwrap();
        let hover = ls.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}),
        );
        let shown = hover["contents"]["value"].as_str().unwrap_or_default();
        assert!(shown.contains("MK403 p."), "{name}: {hover}");
    }

    // The schema-level invalid specs: a finding on the line `validate` gives.
    let invalid = root().join("tests/specs/invalid");
    let mut differ = Vec::new();
    let mut compared = 0;
    for entry in std::fs::read_dir(&invalid).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !["SF010-", "SF011-", "SF012-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Opened where the modeline resolves (beside the specs), under its own name.
        let uri = uri_of(&format!("_invalid-{name}"));
        let text = if text.starts_with("# yaml-language-server") {
            text
        } else {
            format!("{MODELINE}{text}")
        };
        ls.open(&uri, &text);
        let found = ls.diagnostics(&uri);
        let checked = studyflow_spec::check(text.as_bytes());
        let code = &name[..5];
        let want: Vec<u64> = checked
            .diagnostics
            .iter()
            .filter(|d| d.code == code)
            .filter_map(|d| d.span.map(|s| s.line as u64 - 1))
            .collect();
        let lines: Vec<u64> = found
            .iter()
            .map(|d| d["range"]["start"]["line"].as_u64().unwrap())
            .collect();
        compared += 1;
        if !want.iter().any(|w| lines.contains(w)) {
            differ.push(format!(
                "{name}: validate at {want:?}, yaml-language-server at {lines:?}"
            ));
        }
    }
    assert!(compared >= 10, "{compared}");
    assert!(differ.is_empty(), "{differ:#?}");
}
