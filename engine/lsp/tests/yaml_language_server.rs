//! The checked-in schema in the editor people use: the real yaml-language-server (npm, pinned
//! in `tests/yaml-ls/`, run with the machine's Node) over stdio, the schema found by each
//! spec's modeline. Completion offers every allowed key at the top level and at five nested
//! places, and every value of an enum; every item offered at ten places, accepted and its tab
//! stops gone through, leaves YAML `validate` reads, with the key where it was asked for and
//! no null; the skeletons (`defaultSnippets`: a source, a phase, a person) are offered and
//! have what the schema asks for; hover shows the field's MK403 point; the three specs have
//! no diagnostics; and each schema-level finding of `tests/specs/invalid/` is at the line and
//! column `studyflow validate` puts it. Without Node and the package the test says so loudly and
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

    /// The completion items offered at `line`, `character`.
    fn completion(&mut self, uri: &str, line: usize, character: usize) -> Vec<Value> {
        let r = self.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
        );
        let items = r.get("items").unwrap_or(&r);
        items.as_array().cloned().unwrap_or_default()
    }
}

fn labels(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["label"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// What a snippet becomes once the editor has inserted it and the author has gone through its
/// tab stops accepting what they offer: each placeholder its default, a choice its first value,
/// a tab stop without a default that of the same number elsewhere (the editor mirrors it), and
/// where nothing is offered — a bare tab stop, or the end of a key with no value yet — what
/// the author types, `x`.
fn expand(snippet: &str) -> String {
    #[derive(Debug)]
    enum Part {
        Text(String),
        Stop(u32, Option<Vec<Part>>),
        Choice(u32, String),
    }
    fn number(c: &[char], i: &mut usize) -> Option<u32> {
        let start = *i;
        while *i < c.len() && c[*i].is_ascii_digit() {
            *i += 1;
        }
        c[start..*i].iter().collect::<String>().parse().ok()
    }
    fn parse(c: &[char], i: &mut usize, nested: bool) -> Vec<Part> {
        let mut out = Vec::new();
        let mut text = String::new();
        while *i < c.len() {
            match c[*i] {
                '\\' if *i + 1 < c.len() => {
                    text.push(c[*i + 1]);
                    *i += 2;
                }
                '}' if nested => break,
                '$' => {
                    let at = *i;
                    *i += 1;
                    let part = if c.get(*i) == Some(&'{') {
                        *i += 1;
                        number(c, i).and_then(|n| match c.get(*i) {
                            Some('}') => {
                                *i += 1;
                                Some(Part::Stop(n, None))
                            }
                            Some(':') => {
                                *i += 1;
                                let inner = parse(c, i, true);
                                *i += 1;
                                Some(Part::Stop(n, Some(inner)))
                            }
                            Some('|') => {
                                *i += 1;
                                let mut first = String::new();
                                while *i < c.len() && c[*i] != ',' && c[*i] != '|' {
                                    first.push(c[*i]);
                                    *i += 1;
                                }
                                while *i < c.len() && !(c[*i] == '|' && c.get(*i + 1) == Some(&'}'))
                                {
                                    *i += 1;
                                }
                                *i += 2;
                                Some(Part::Choice(n, first))
                            }
                            _ => None,
                        })
                    } else {
                        number(c, i).map(|n| Part::Stop(n, None))
                    };
                    match part {
                        Some(p) => {
                            out.push(Part::Text(std::mem::take(&mut text)));
                            out.push(p);
                        }
                        None => {
                            *i = at + 1;
                            text.push('$');
                        }
                    }
                }
                ch => {
                    text.push(ch);
                    *i += 1;
                }
            }
        }
        out.push(Part::Text(text));
        out
    }
    fn defaults(parts: &[Part], out: &mut std::collections::HashMap<u32, String>) {
        for p in parts {
            match p {
                Part::Stop(n, Some(inner)) => {
                    let text = render(inner, &std::collections::HashMap::new());
                    out.entry(*n).or_insert(text);
                    defaults(inner, out);
                }
                Part::Choice(n, first) => {
                    out.entry(*n).or_insert_with(|| first.clone());
                }
                _ => {}
            }
        }
    }
    fn render(parts: &[Part], known: &std::collections::HashMap<u32, String>) -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Stop(_, Some(inner)) => render(inner, known),
                Part::Stop(n, None) => known.get(n).cloned().unwrap_or_else(|| "x".into()),
                Part::Choice(_, first) => first.clone(),
            })
            .collect()
    }
    let chars: Vec<char> = snippet.chars().collect();
    let parts = parse(&chars, &mut 0, false);
    let mut known = std::collections::HashMap::new();
    defaults(&parts, &mut known);
    let out = render(&parts, &known);
    // A key (or a list's item) left without its value: the author types it after it.
    let end = out.trim_end();
    if end.ends_with(':') || end.ends_with('-') {
        format!("{end} x{}", &out[end.len()..])
    } else {
        out
    }
}

/// `text` with the completion `item` accepted at `line`, `character`: its edit, or its insert
/// text at the cursor, expanded ([`expand`]); the lines after the first indented as the
/// cursor's line is (what VS Code does, `insertTextMode` adjustIndentation, which
/// yaml-language-server's multi-line inserts are written for).
fn accept(text: &str, line: usize, character: usize, item: &Value) -> String {
    let edit = item.get("textEdit");
    let new_text = edit
        .and_then(|e| e["newText"].as_str())
        .or_else(|| item["insertText"].as_str())
        .or_else(|| item["label"].as_str())
        .unwrap_or_default();
    let snippet = item["insertTextFormat"] == 2;
    let new_text = if snippet {
        expand(new_text)
    } else {
        new_text.to_owned()
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let offset =
        |l: usize, c: usize| -> usize { lines[..l].iter().map(|x| x.len() + 1).sum::<usize>() + c };
    let range = edit.map(|e| e.get("range").unwrap_or(&e["replace"]));
    let (start, end) = match range {
        Some(r) => (
            offset(
                r["start"]["line"].as_u64().unwrap() as usize,
                r["start"]["character"].as_u64().unwrap() as usize,
            ),
            offset(
                r["end"]["line"].as_u64().unwrap() as usize,
                r["end"]["character"].as_u64().unwrap() as usize,
            ),
        ),
        None => (offset(line, character), offset(line, character)),
    };
    let indent: String = lines[line].chars().take_while(|c| *c == ' ').collect();
    let new_text = new_text.replace('\n', &format!("\n{indent}"));
    format!("{}{new_text}{}", &text[..start], &text[end..])
}

/// Whether a null is anywhere in `v`.
fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(m) => m.values().any(has_null),
        _ => false,
    }
}

/// The document as `studyflow validate` reads it, or why it cannot be read.
fn read(text: &str) -> Result<Value, String> {
    let (doc, findings) = studyflow_spec::yaml::parse(
        &studyflow_spec::source::SourceText::new(text),
        studyflow_spec::yaml::Limits::default(),
    );
    match doc {
        Some(doc) if findings.is_empty() => Ok(doc.value),
        _ => Err(format!(
            "{:?}",
            findings
                .iter()
                .map(|f| (&f.code, &f.message))
                .collect::<Vec<_>>()
        )),
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

fn keys_of(n: &Value) -> Vec<String> {
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

    // Completion of keys: the top level, then nested mappings and new items of lists. At the
    // first six places every allowed key is offered; at every place every item offered, once
    // accepted and its tab stops gone through, leaves YAML that `validate` reads, with no null
    // in it, no key the schema does not know, and — for a key — that key where it was asked
    // for, with its value.
    let places: [(&[&str], bool); 10] = [
        (&[], true),
        (&["publication"], true),
        (&["methodology"], true),
        (&["anonymisation"], true),
        (&["follow_up"], true),
        (&["retention"], true),
        (&["data_scope"], false),
        (&["external"], false),
        (&["phases", "-"], false),
        (&["authorised_persons", "-"], false),
    ];
    let mut accepted = 0;
    for (n, (path, every_key)) in places.into_iter().enumerate() {
        let mut text = MODELINE.to_owned();
        let mut indent = String::new();
        let mut pointer = String::new();
        let keys: Vec<&str> = path.iter().copied().filter(|p| *p != "-").collect();
        for p in path.iter() {
            if *p == "-" {
                // A new item of the list: after its `- `.
                indent.push_str("- ");
                pointer.push_str("/0");
            } else {
                text.push_str(&format!("{indent}{p}:\n"));
                indent.push_str("  ");
                pointer.push('/');
                pointer.push_str(p);
            }
        }
        let (line, character) = (1 + keys.len(), indent.len());
        text.push_str(&indent);
        text.push('\n');
        let uri = uri_of(&format!("_completion-{n}.yaml"));
        ls.open(&uri, &text);
        let items = ls.completion(&uri, line, character);
        let offered = labels(&items);
        assert!(!offered.is_empty(), "nothing offered at {path:?}");
        if every_key {
            let want = keys_of(node(schema, &keys));
            assert!(!want.is_empty(), "{path:?}");
            let missing: Vec<_> = want.iter().filter(|k| !offered.contains(k)).collect();
            assert!(
                missing.is_empty(),
                "at {path:?} not offered: {missing:?}; offered {offered:?}"
            );
        }
        for item in &items {
            let label = item["label"].as_str().unwrap();
            let after = accept(&text, line, character, item);
            let said = || format!("{label:?} at {path:?}: {item}\n{after}");
            let value = read(&after).unwrap_or_else(|e| panic!("not YAML ({e}): {}", said()));
            assert!(!has_null(&value), "a null: {}", said());
            let place = value
                .pointer(&pointer)
                .unwrap_or_else(|| panic!("nothing at {pointer}: {}", said()));
            // A key (not a skeleton of several): that key, where it was asked for.
            if item["kind"] == 10 {
                assert!(
                    place.get(label).is_some(),
                    "no `{label}` at {pointer}: {}",
                    said()
                );
            }
            let unknown: Vec<_> = studyflow_spec::check(after.as_bytes())
                .diagnostics
                .into_iter()
                .filter(|d| d.code == "SF010")
                .map(|d| d.message)
                .collect();
            assert!(unknown.is_empty(), "{unknown:?}: {}", said());
            accepted += 1;
        }
    }
    assert!(accepted > 60, "{accepted} items tried");

    // The skeletons (`defaultSnippets`): offered as a source's value, a new phase, a new
    // person; accepted with their defaults they have the keys the schema asks for there, and
    // `validate` finds nothing wrong in them but the dates left to fill in.
    for (n, (doc, label, pointer, has)) in [
        (
            "data_scope:\n  information_centre:\n    |",
            "new Information Centre source",
            "/data_scope/information_centre",
            &["exchange", "volume", "fields"][..],
        ),
        (
            "data_scope:\n  service_is:\n    |",
            "new Service IS source",
            "/data_scope/service_is",
            &["extraction", "volume", "fields"],
        ),
        (
            "data_scope:\n  prison_administration:\n    |",
            "new Prison Administration source",
            "/data_scope/prison_administration",
            &["exchange", "rulings"],
        ),
        (
            "phases:\n  - |",
            "new phase",
            "/phases/0",
            &["id", "title", "start", "deadline", "covers"],
        ),
        (
            "phases: |",
            "new phase",
            "/phases/0",
            &["id", "title", "start", "deadline", "covers"],
        ),
        (
            "authorised_persons:\n  - |",
            "new authorised person",
            "/authorised_persons/0",
            &["name", "login", "role", "access"],
        ),
        (
            "external:\n  team:\n    - |",
            "new team member",
            "/external/team/0",
            &["name", "role", "processes_personal_data"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let doc = format!("{MODELINE}{doc}\n");
        let cursor = doc.find('|').unwrap();
        let text = doc.replacen('|', "", 1);
        let line = doc[..cursor].matches('\n').count();
        let character = cursor - doc[..cursor].rfind('\n').map_or(0, |i| i + 1);
        let uri = uri_of(&format!("_snippet-{n}.yaml"));
        ls.open(&uri, &text);
        let items = ls.completion(&uri, line, character);
        let item = items
            .iter()
            .find(|i| i["label"] == label)
            .unwrap_or_else(|| panic!("{label} not offered at {doc:?}: {:?}", labels(&items)));
        let after = accept(&text, line, character, item);
        let value = read(&after).unwrap_or_else(|e| panic!("{label}: not YAML ({e}):\n{after}"));
        let place = value
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{label}: nothing at {pointer}:\n{after}"));
        for key in has {
            assert!(place.get(key).is_some(), "{label}: no `{key}`:\n{after}");
        }
        if let Some(fields) = place
            .get("fields")
            .or_else(|| place.get("rulings").and_then(|r| r.get("fields")))
        {
            assert!(
                fields.as_object().is_some_and(|f| f.len() == 1),
                "{label}: a first field with its reason:\n{after}"
            );
        }
        let wrong: Vec<_> = studyflow_spec::check(after.as_bytes())
            .diagnostics
            .into_iter()
            .filter(|d| matches!(d.code, "SF010" | "SF012"))
            .filter(|d| {
                d.pointer.starts_with(pointer)
                    && !d.message.contains(studyflow_spec::schema::SNIPPET_DATE)
            })
            .map(|d| format!("{} {} {}", d.code, d.pointer, d.message))
            .collect();
        assert!(wrong.is_empty(), "{label}: {wrong:?}\n{after}");
    }

    // Every value of an enum: the study design.
    let text = format!("{MODELINE}methodology:\n  design: \n");
    let uri = uri_of("_enum.yaml");
    ls.open(&uri, &text);
    let offered = labels(&ls.completion(&uri, 2, "  design: ".len()));
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

    // The schema-level invalid specs: each finding `validate` makes of the file's own kind
    // (SF010–SF012) yaml-language-server makes at the same line and column. Every case agrees:
    // a missing property is placed by both at the start of the mapping that lacks it (for the
    // top level, its first key), an unknown one at its key, a wrong value at the value.
    // yaml-language-server may say more (SF010-misspelt-purpose: also the missing `purpose`,
    // which `validate` says through its rule SF101, at the same place); what it says beyond
    // the file's own kind is not compared.
    let invalid = root().join("tests/specs/invalid");
    let mut differ = Vec::new();
    let mut compared = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&invalid)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
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
        // (line, column) from 0, as LSP counts them; the files are ASCII where these are.
        let want: Vec<(u64, u64)> = checked
            .diagnostics
            .iter()
            .filter(|d| d.code == code)
            .filter_map(|d| d.span.map(|s| (s.line as u64 - 1, s.column as u64 - 1)))
            .collect();
        let got: Vec<(u64, u64)> = found
            .iter()
            .map(|d| {
                (
                    d["range"]["start"]["line"].as_u64().unwrap(),
                    d["range"]["start"]["character"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(!want.is_empty(), "{name}: validate finds no {code}");
        compared += 1;
        for w in &want {
            if !got.contains(w) {
                differ.push(format!(
                    "{name}: validate at {w:?}, yaml-language-server at {got:?}"
                ));
            }
        }
    }
    assert!(compared >= 10, "{compared}");
    assert!(differ.is_empty(), "{differ:#?}");
}
