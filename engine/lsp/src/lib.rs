//! `studyflow lsp`: a language server for study specs over stdio (issue #14).
//!
//! - Diagnostics of every layer — YAML, schema, the SF1xx legal rules, the SF2xx plan checks —
//!   for each open document, on open and on every change (full text sync). Changes that arrive
//!   while one is checked are taken together: only the latest text of each document is checked.
//! - Hover: the field under the cursor, as the schema describes it, with the words of the MK403
//!   points it cites; any finding at that place with its rule.
//! - Completion from the schema and the catalogue; quick fixes from the findings' typed
//!   [`Fix`]; inlay hints (the p.8 day, the waves' due dates); document symbols; code lenses
//!   and commands that show the compiled plan and its changes since the approved version in
//!   the editor (a file the client is asked to open: generic clients drop a command's answer).
//!
//! Positions are LSP's (lines from 0, columns in UTF-16 code units), converted from the
//! checker's byte offsets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{DocumentSymbolRequest, HoverRequest, Request as _};
use lsp_types::{
    Diagnostic, DiagnosticSeverity, DocumentSymbol, DocumentSymbolResponse, Hover, HoverContents,
    HoverProviderCapability, InitializeParams, MarkupContent, MarkupKind, NumberOrString, OneOf,
    Position, PublishDiagnosticsParams, Range, ServerCapabilities, SymbolKind,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};
use studyflow_calendar::Calendar;
use studyflow_spec::diagnostic::Fix;
use studyflow_spec::source::SourceText;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The command that shows a document's compiled plan (`arguments`: the document's URI, and
/// optionally `"dot"` for Graphviz DOT instead of Mermaid): it writes the plan to a file of the
/// user's own (see [`Options::plan_folder`]) and asks the client to open it
/// (`window/showDocument`), or says where it is (`window/showMessage`) when the client cannot;
/// it answers with the text too.
pub const PLAN_COMMAND: &str = "studyflow.plan";
/// The command that shows the plan's changes since the approved version of the spec
/// (Markdown), as [`PLAN_COMMAND`] shows the plan: arguments the document's URI and, optionally,
/// the approved spec's file; without it, the file as committed at git's `HEAD` (where a
/// repository of specs keeps what was approved).
pub const DIFF_COMMAND: &str = "studyflow.planDiff";

/// How a server is set up beyond what its client says.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where the commands write the plans and plan changes they show, one file per spec and
    /// kind, readable by its owner only. By default the user's cache folder:
    /// `$XDG_CACHE_HOME/studyflow/plans`, or `~/.cache/studyflow/plans` (`%LOCALAPPDATA%` on
    /// Windows), or `studyflow-plans-$USER` in the temporary folder when there is no home.
    pub plan_folder: Option<PathBuf>,
}

/// The server's capabilities: full text sync and what the module's doc lists.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(lsp_types::CompletionOptions::default()),
        code_action_provider: Some(lsp_types::CodeActionProviderCapability::Simple(true)),
        code_lens_provider: Some(lsp_types::CodeLensOptions {
            resolve_provider: Some(false),
        }),
        execute_command_provider: Some(lsp_types::ExecuteCommandOptions {
            commands: vec![PLAN_COMMAND.to_owned(), DIFF_COMMAND.to_owned()],
            ..lsp_types::ExecuteCommandOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Serves over stdio until the client says exit.
pub fn stdio() -> Result<(), Error> {
    let (connection, threads) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    threads.join()?;
    Ok(())
}

/// Serves one client on `connection`: the initialize handshake, then requests and
/// notifications until shutdown.
pub fn serve(connection: &Connection) -> Result<(), Error> {
    serve_with(connection, Options::default())
}

/// What the client may set in `initializationOptions`: what `studyflow validate` takes on its
/// command line, so the editor and CI say the same of a spec.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Initialization {
    /// The day the date checks count from (`validate --today`; by default today's date on
    /// this machine, read at each check).
    today: Option<jiff::civil::Date>,
    /// Calendar data files applied after the shipped data, in order
    /// (`validate --calendar-overrides`); a relative path is read from the workspace's root.
    #[serde(default)]
    calendar_overrides: Vec<PathBuf>,
}

impl Initialization {
    /// The options the client gave, and the calendar with their overrides applied; or why
    /// they cannot be used, naming the file and line that is refused.
    fn read(params: &InitializeParams) -> Result<(Self, Calendar), String> {
        let given = params
            .initialization_options
            .clone()
            .filter(|v| !v.is_null())
            .map(serde_json::from_value::<Initialization>)
            .transpose()
            .map_err(|e| format!("studyflow: initializationOptions: {e}"))?
            .unwrap_or_default();
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .map(|f| f.uri.as_str().to_owned())
            .or_else(|| params.root_uri.as_ref().map(|u| u.as_str().to_owned()))
            .map(|u| file_path(&u));
        let mut texts = Vec::new();
        for path in &given.calendar_overrides {
            let path = match &root {
                Some(root) if path.is_relative() => root.join(path),
                _ => path.clone(),
            };
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "studyflow: calendarOverrides: cannot read {}: {e}",
                    path.display()
                )
            })?;
            texts.push((path.display().to_string(), text));
        }
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let calendar = Calendar::with_overrides(&refs)
            .map_err(|e| format!("studyflow: calendarOverrides: {e}"))?;
        Ok((given, calendar))
    }
}

/// [`serve`] with `options`. Initialization options the server cannot use (an unknown one, a
/// calendar override file that cannot be read or is refused) fail the initialize request, as
/// `studyflow validate` refuses them, and the server then waits for the client's `exit`.
pub fn serve_with(connection: &Connection, options: Options) -> Result<(), Error> {
    let (id, params) = connection.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params)?;
    let (given, calendar) = match Initialization::read(&params) {
        Ok(read) => read,
        Err(why) => {
            connection.sender.send(Message::Response(Response {
                id,
                result: None,
                error: Some(lsp_server::ResponseError {
                    code: lsp_server::ErrorCode::InvalidParams as i32,
                    message: why.clone(),
                    data: Some(serde_json::json!({ "retry": false })),
                }),
            }))?;
            until_exit(connection)?;
            return Err(why.into());
        }
    };
    connection.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": capabilities(),
            "serverInfo": {"name": "studyflow", "version": env!("CARGO_PKG_VERSION")},
        }),
    )?;
    let show_document = params
        .capabilities
        .window
        .as_ref()
        .and_then(|w| w.show_document.as_ref())
        .is_some_and(|s| s.support);
    let mut server = Server {
        docs: HashMap::new(),
        published: HashMap::new(),
        calendar,
        today: given.today,
        show_document,
        plan_folder: options.plan_folder.unwrap_or_else(default_plan_folder),
        asked: HashMap::new(),
        next_request: 0,
    };
    while let Ok(msg) = connection.receiver.recv() {
        let mut dirty = Vec::new();
        let mut next = Some(msg);
        // This message and any that came meanwhile: the latest text of each document is
        // checked once.
        while let Some(msg) = next {
            match msg {
                Message::Request(req) => {
                    if connection.handle_shutdown(&req)? {
                        return Ok(());
                    }
                    let mut out = Vec::new();
                    let response = server.request(req, &mut out);
                    // What the request asks of the client goes first: the answer ends it.
                    for m in out {
                        connection.sender.send(m)?;
                    }
                    connection.sender.send(Message::Response(response))?;
                }
                Message::Notification(n) => {
                    if let Some(uri) = server.notification(n)? {
                        // Its findings are of an older text now.
                        server.published.remove(&uri);
                        if !dirty.contains(&uri) {
                            dirty.push(uri);
                        }
                    }
                }
                Message::Response(r) => {
                    if let Some(m) = server.answered(r) {
                        connection.sender.send(m)?;
                    }
                }
            }
            next = connection.receiver.try_recv().ok();
        }
        for uri in dirty {
            // A YAML file that is no spec gets none (an empty list clears what it had).
            let diagnostics = server
                .spec(&uri)
                .map(|text| findings(text, &server.calendar, server.today()))
                .unwrap_or_default();
            server.published.insert(uri.clone(), diagnostics.clone());
            let params = PublishDiagnosticsParams {
                uri,
                diagnostics,
                version: None,
            };
            connection
                .sender
                .send(Message::Notification(Notification::new(
                    PublishDiagnostics::METHOD.to_owned(),
                    params,
                )))?;
        }
    }
    Ok(())
}

struct Server {
    docs: HashMap<Uri, String>,
    /// The findings last published of each document's current text (hover reads them rather
    /// than checking the text again).
    published: HashMap<Uri, Vec<Diagnostic>>,
    calendar: Calendar,
    /// The day the date checks count from, when the client fixed it.
    today: Option<jiff::civil::Date>,
    /// Whether the client opens a file the server asks it to (`window/showDocument`).
    show_document: bool,
    /// Where the plans shown are written ([`Options::plan_folder`]).
    plan_folder: PathBuf,
    /// The files the client was asked to open, by the request's id: said in a message
    /// instead when it cannot.
    asked: HashMap<RequestId, PathBuf>,
    next_request: i32,
}

impl Server {
    /// The day the date checks count from: the client's, or today's date on this machine as
    /// `studyflow validate` reads it (at each check: an editor stays open past midnight).
    fn today(&self) -> jiff::civil::Date {
        self.today.unwrap_or_else(|| jiff::Zoned::now().date())
    }

    /// The text of the open document `uri` if it is a study spec ([`is_spec`]).
    fn spec(&self, uri: &Uri) -> Option<&String> {
        self.docs.get(uri).filter(|t| is_spec(t))
    }

    /// Takes a document's text; returns the document whose diagnostics are to be published.
    fn notification(&mut self, n: Notification) -> Result<Option<Uri>, Error> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
                let uri = p.text_document.uri;
                self.docs.insert(uri.clone(), p.text_document.text);
                Ok(Some(uri))
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
                let uri = p.text_document.uri;
                // Full sync: the last change is the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    self.docs.insert(uri.clone(), change.text);
                }
                Ok(Some(uri))
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
                self.docs.remove(&p.text_document.uri);
                // Published empty: a closed document shows no findings.
                Ok(Some(p.text_document.uri))
            }
            _ => Ok(None),
        }
    }

    fn request(&mut self, req: Request, out: &mut Vec<Message>) -> Response {
        let id = req.id.clone();
        if req.method == lsp_types::request::ExecuteCommand::METHOD {
            return match serde_json::from_value::<lsp_types::ExecuteCommandParams>(req.params) {
                Ok(p) => self.execute(id, &p, out),
                Err(e) => error(id, lsp_server::ErrorCode::InvalidParams, &e.to_string()),
            };
        }
        let result = match req.method.as_str() {
            HoverRequest::METHOD => serde_json::from_value::<lsp_types::HoverParams>(req.params)
                .map(|p| {
                    let doc = &p.text_document_position_params;
                    let uri = &doc.text_document.uri;
                    let hover = self.spec(uri).and_then(|t| {
                        let found = match self.published.get(uri) {
                            Some(found) => std::borrow::Cow::Borrowed(found),
                            None => {
                                std::borrow::Cow::Owned(findings(t, &self.calendar, self.today()))
                            }
                        };
                        self.hover(t, &found, doc.position)
                    });
                    serde_json::to_value(hover).unwrap_or_default()
                }),
            lsp_types::request::Completion::METHOD => {
                serde_json::from_value::<lsp_types::CompletionParams>(req.params).map(|p| {
                    let at = &p.text_document_position;
                    // In a spec, or a document with nothing else yet (a spec being started).
                    let items = self
                        .docs
                        .get(&at.text_document.uri)
                        .filter(|t| is_spec(t) || only_line(t, at.position.line))
                        .map(|t| completions(t, at.position))
                        .unwrap_or_default();
                    serde_json::to_value(lsp_types::CompletionResponse::Array(items))
                        .unwrap_or_default()
                })
            }
            lsp_types::request::CodeActionRequest::METHOD => {
                serde_json::from_value::<lsp_types::CodeActionParams>(req.params).map(|p| {
                    let text = self.docs.get(&p.text_document.uri).map(String::as_str);
                    serde_json::to_value(fixes(&p, text)).unwrap_or_default()
                })
            }
            lsp_types::request::InlayHintRequest::METHOD => {
                serde_json::from_value::<lsp_types::InlayHintParams>(req.params).map(|p| {
                    let hints = self
                        .spec(&p.text_document.uri)
                        .and_then(|t| Some((Lines::new(t), parse(t)?)))
                        .map(|(lines, doc)| {
                            let mut hints = self.notice_hint(&doc, &lines);
                            hints.extend(wave_hints(&doc, &lines));
                            hints
                        })
                        .unwrap_or_default();
                    serde_json::to_value(hints).unwrap_or_default()
                })
            }
            lsp_types::request::CodeLensRequest::METHOD => {
                serde_json::from_value::<lsp_types::CodeLensParams>(req.params).map(|p| {
                    let uri = p.text_document.uri;
                    let compiles = self.spec(&uri).is_some_and(|t| {
                        studyflow_plan::check(t.as_bytes(), &self.calendar, Some(self.today()))
                            .plan
                            .is_some()
                    });
                    let lens =
                        |title: &str, command: &str, how: Option<&str>| lsp_types::CodeLens {
                            range: Range::default(),
                            command: Some(lsp_types::Command {
                                title: title.into(),
                                command: command.into(),
                                arguments: Some(
                                    std::iter::once(uri.as_str())
                                        .chain(how)
                                        .map(|a| serde_json::json!(a))
                                        .collect(),
                                ),
                            }),
                            data: None,
                        };
                    let lenses: Vec<lsp_types::CodeLens> = if compiles {
                        vec![
                            lens("studyflow: the compiled plan (Mermaid)", PLAN_COMMAND, None),
                            lens(
                                "studyflow: the compiled plan (DOT)",
                                PLAN_COMMAND,
                                Some("dot"),
                            ),
                            lens(
                                "studyflow: changes since the approved version",
                                DIFF_COMMAND,
                                None,
                            ),
                        ]
                    } else {
                        Vec::new()
                    };
                    serde_json::to_value(lenses).unwrap_or_default()
                })
            }
            DocumentSymbolRequest::METHOD => {
                serde_json::from_value::<lsp_types::DocumentSymbolParams>(req.params).map(|p| {
                    let symbols = self
                        .spec(&p.text_document.uri)
                        .map(|t| symbols(t))
                        .unwrap_or_default();
                    serde_json::to_value(DocumentSymbolResponse::Nested(symbols))
                        .unwrap_or_default()
                })
            }
            _ => {
                return error(id, lsp_server::ErrorCode::MethodNotFound, "not supported");
            }
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err(e) => error(id, lsp_server::ErrorCode::InvalidParams, &e.to_string()),
        }
    }

    /// `studyflow.plan` and `studyflow.planDiff`: the plan (Mermaid or DOT) or its changes
    /// (Markdown) written to a file of the user's own, which the client is asked to open; the
    /// answer is the text.
    fn execute(
        &mut self,
        id: RequestId,
        p: &lsp_types::ExecuteCommandParams,
        out: &mut Vec<Message>,
    ) -> Response {
        let uri = p.arguments.first().and_then(|a| a.as_str()).unwrap_or("");
        let second = p.arguments.get(1).and_then(|a| a.as_str());
        let Some(text) = self
            .docs
            .iter()
            .find(|(u, _)| u.as_str() == uri)
            .map(|(_, t)| t)
        else {
            return error(
                id,
                lsp_server::ErrorCode::InvalidParams,
                "the document is not open",
            );
        };
        let shown = match p.command.as_str() {
            DIFF_COMMAND => plan_diff(text, uri, second, &self.calendar, self.today())
                .map(|markdown| (markdown, Shown::Diff)),
            PLAN_COMMAND => {
                studyflow_plan::check(text.as_bytes(), &self.calendar, Some(self.today()))
                    .plan
                    .map(|plan| match second {
                        Some("dot") => (studyflow_plan::render::dot(&plan), Shown::Dot),
                        _ => (studyflow_plan::render::mermaid(&plan), Shown::Mermaid),
                    })
                    .ok_or_else(|| {
                        "the spec does not compile into a plan; fix its errors first".into()
                    })
            }
            other => Err(format!("no command `{other}`")),
        };
        let (text, kind) = match shown {
            Ok(shown) => shown,
            Err(why) => return error(id, lsp_server::ErrorCode::RequestFailed, &why),
        };
        let name = format!("{}.{}", shown_name(uri), kind.suffix());
        match write_private(&self.plan_folder, &name, text.as_bytes()) {
            Ok(path) if self.show_document => {
                self.next_request += 1;
                let ask = RequestId::from(format!("studyflow-show-{}", self.next_request));
                out.push(Message::Request(Request::new(
                    ask.clone(),
                    lsp_types::request::ShowDocument::METHOD.to_owned(),
                    serde_json::json!({ "uri": file_uri(&path), "takeFocus": true }),
                )));
                self.asked.insert(ask, path);
            }
            Ok(path) => out.push(message(
                lsp_types::MessageType::INFO,
                format!(
                    "studyflow: {} is in {}; open it to see it",
                    kind.what(),
                    path.display()
                ),
            )),
            Err(e) => out.push(message(
                lsp_types::MessageType::ERROR,
                format!(
                    "studyflow: cannot write {} into {}: {e}",
                    kind.what(),
                    self.plan_folder.display()
                ),
            )),
        }
        Response::new_ok(id, text)
    }

    /// The client's answer to a request of the server's: a file it did not open is said in a
    /// message instead.
    fn answered(&mut self, r: Response) -> Option<Message> {
        let path = self.asked.remove(&r.id)?;
        let opened = r.error.is_none()
            && r.result
                .and_then(|v| serde_json::from_value::<lsp_types::ShowDocumentResult>(v).ok())
                .is_some_and(|s| s.success);
        (!opened).then(|| {
            message(
                lsp_types::MessageType::INFO,
                format!(
                    "studyflow: the editor did not open {}; open it to see it",
                    path.display()
                ),
            )
        })
    }

    /// The planned publication and the day the Prison Administration must have the results by
    /// (MK403 p.8), as the plan counts it.
    fn notice_day(
        &self,
        doc: &studyflow_spec::yaml::YamlDocument,
    ) -> Option<(jiff::civil::Date, studyflow_calendar::Deadline)> {
        let day = doc.value["publication"]["planned_date"]
            .as_str()?
            .parse::<jiff::civil::Date>()
            .ok()?;
        Some((
            day,
            studyflow_plan::prison_notice_day(&self.calendar, day).ok()?,
        ))
    }

    /// After `publication.planned_date`, the day the Prison Administration must have the
    /// results by (MK403 p.8).
    fn notice_hint(
        &self,
        doc: &studyflow_spec::yaml::YamlDocument,
        lines: &Lines<'_>,
    ) -> Vec<lsp_types::InlayHint> {
        let (Some(spans), Some((_, d))) = (
            doc.spans.get("/publication/planned_date"),
            self.notice_day(doc),
        ) else {
            return Vec::new();
        };
        vec![lsp_types::InlayHint {
            position: lines.position(spans.value.end),
            label: lsp_types::InlayHintLabel::String(format!(
                "p.8 notice by {}",
                d.date
            )),
            kind: None,
            text_edits: None,
            tooltip: Some(lsp_types::InlayHintTooltip::String(
                "Where Prison Administration information is used, it must have the results no later than 10 working days before publication (MK403 p.8).".into(),
            )),
            padding_left: Some(true),
            padding_right: None,
            data: None,
        }]
    }

    /// The field under the cursor as the schema describes it, and the findings there.
    fn hover(&self, text: &str, found: &[Diagnostic], at: Position) -> Option<Hover> {
        let lines = Lines::new(text);
        let offset = lines.offset(at)?;
        let mut parts = Vec::new();
        let doc = parse(text);
        if let Some(doc) = doc
            && let Some((pointer, _)) = doc.spans.at(offset)
        {
            if let Some(help) = studyflow_spec::schema::field_help(&pointer) {
                parts.push(format!("**`{pointer}`** — {help}"));
                parts.extend(point_texts(help));
            }
            // The planned publication: the day the Prison Administration must have the results
            // by, as the calendar counts it (MK403 p.8).
            if pointer == "/publication/planned_date"
                && let Some((day, d)) = self.notice_day(&doc)
            {
                parts.push(format!(
                    "Published on {day}: where Prison Administration information is used, it must have the results by **{}**, the 10th working day before (MK403 p.8; {} days off passed over).",
                    d.date,
                    d.skipped.len()
                ));
            }
        }
        for d in found {
            if d.range.start <= at && at <= d.range.end {
                let code = match &d.code {
                    Some(NumberOrString::String(c)) => c.clone(),
                    _ => String::new(),
                };
                parts.push(format!("**{code}** {}", d.message));
                if let Some(doc) = studyflow_plan::rule_doc(&code) {
                    parts.push(format!(
                        "`{}` — {} {}",
                        doc.name,
                        doc.summary,
                        doc.explanation.trim()
                    ));
                }
            }
        }
        (!parts.is_empty()).then(|| Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: parts.join("\n\n"),
            }),
            range: None,
        })
    }
}

/// A `file:` URI's path (percent-escapes decoded), or the text itself when it is a path.
fn file_path(uri: &str) -> std::path::PathBuf {
    let Some(rest) = uri.strip_prefix("file://") else {
        return uri.into();
    };
    // `file://localhost/…` is `file:///…`.
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// After a failed initialize: requests refused (`shutdown` answered) until the client says
/// `exit` or goes.
fn until_exit(connection: &Connection) -> Result<(), Error> {
    while let Ok(msg) = connection.receiver.recv() {
        match msg {
            Message::Request(req) if req.method == "shutdown" => {
                connection
                    .sender
                    .send(Message::Response(Response::new_ok(req.id, ())))?;
            }
            Message::Request(req) => {
                connection.sender.send(Message::Response(error(
                    req.id,
                    lsp_server::ErrorCode::ServerNotInitialized,
                    "the server did not start: see the answer to initialize",
                )))?;
            }
            Message::Notification(n) if n.method == "exit" => break,
            _ => {}
        }
    }
    Ok(())
}

/// What a command shows.
#[derive(Debug, Clone, Copy)]
enum Shown {
    Mermaid,
    Dot,
    Diff,
}

impl Shown {
    /// The end of the file's name: a Mermaid flowchart (`.mmd`, as `mmdc` reads it), Graphviz
    /// DOT, Markdown.
    fn suffix(self) -> &'static str {
        match self {
            Shown::Mermaid => "plan.mmd",
            Shown::Dot => "plan.dot",
            Shown::Diff => "plan-changes.md",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Shown::Mermaid => "the compiled plan (Mermaid)",
            Shown::Dot => "the compiled plan (DOT)",
            Shown::Diff => "the plan's changes since the approved version",
        }
    }
}

fn message(typ: lsp_types::MessageType, message: String) -> Message {
    Message::Notification(Notification::new(
        lsp_types::notification::ShowMessage::METHOD.to_owned(),
        lsp_types::ShowMessageParams { typ, message },
    ))
}

/// The user's cache folder for the plans shown ([`Options::plan_folder`]).
fn default_plan_folder() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("LOCALAPPDATA").filter(|_| cfg!(windows)))
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|cache| cache.join("studyflow").join("plans"))
        .unwrap_or_else(|| {
            let user = std::env::var("USER").unwrap_or_default();
            let user: String = user
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            std::env::temp_dir().join(format!("studyflow-plans-{user}"))
        })
}

/// The start of a shown file's name: the spec's file name without its extension (characters
/// other than letters, digits, `-`, `_` and `.` made `_`), and a hash of its URI, so specs of
/// the same name in two folders do not share a file.
fn shown_name(uri: &str) -> String {
    let path = file_path(uri);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    // FNV-1a: the same name for the same URI in every release.
    let hash = uri.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let stem = if stem.is_empty() { "spec".into() } else { stem };
    format!("{stem}-{:08x}", hash as u32)
}

/// Writes `bytes` to `name` in `folder`, both its owner's only (the folder 0700, the file
/// 0600 on Unix): the folder is made if missing and refused if it is a symbolic link or not
/// the user's (its mode cannot be set); the file is written under a fresh name and renamed
/// over the old one, so a link planted in its place is replaced, never followed.
fn write_private(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(folder)?;
    let meta = std::fs::symlink_metadata(folder)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("not a folder of its own"));
    }
    #[cfg(unix)]
    std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let path = folder.join(name);
    let fresh = folder.join(format!(
        ".{name}.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let written = open.open(&fresh).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&fresh, &path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&fresh);
    }
    renamed.map(|()| path)
}

/// The `file:` URI of an absolute path, percent-escaped.
fn file_uri(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let mut out = String::from("file://");
    if !text.starts_with('/') {
        out.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The plan of `text` against the approved version's: the spec at `approved` (a path or a
/// `file:` URI), or the document's file as committed at git's `HEAD`.
fn plan_diff(
    text: &str,
    uri: &str,
    approved: Option<&str>,
    calendar: &Calendar,
    today: jiff::civil::Date,
) -> Result<String, String> {
    let old = match approved {
        Some(a) => {
            let path = file_path(a);
            let cannot = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
            // A spec file, and no bigger than a spec may be: not a device or a pipe.
            let meta = std::fs::metadata(&path).map_err(|e| cannot(&e))?;
            if !meta.is_file()
                || meta.len() > studyflow_spec::yaml::Limits::default().max_bytes as u64
            {
                return Err(cannot(&"not a spec file"));
            }
            std::fs::read(&path).map_err(|e| cannot(&e))?
        }
        None => {
            let path = file_path(uri);
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(format!("{} is not a file", path.display()));
            };
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir)
                .arg("show")
                .arg(format!("HEAD:./{}", name.to_string_lossy()))
                .output()
                .map_err(|e| format!("git does not run: {e}"))?;
            if !out.status.success() {
                let said = String::from_utf8_lossy(&out.stderr);
                return Err(format!(
                    "no approved version to compare with: {} is not committed at HEAD (give the approved spec's file as the second argument); git: {}",
                    name.to_string_lossy(),
                    said.trim()
                ));
            }
            out.stdout
        }
    };
    let compile = |bytes: &[u8], what: &str| {
        studyflow_plan::check(bytes, calendar, Some(today))
            .plan
            .ok_or_else(|| format!("{what} does not compile into a plan; fix its errors first"))
    };
    let old = compile(&old, "the approved version")?;
    let new = compile(text.as_bytes(), "the spec")?;
    Ok(studyflow_plan::diff::markdown(&old, &new))
}

/// The regulation's words for the points `text` cites (three at most): the Latvian original
/// of each, which wins, and the English working digest of its top-level point.
fn point_texts(text: &str) -> Vec<String> {
    studyflow_spec::diagnostic::points_in(text)
        .iter()
        .take(3)
        .filter_map(|p| {
            let lv = studyflow_spec::regulation::latvian(p)?;
            let top = p.split('.').take(2).collect::<Vec<_>>().join(".");
            let en = studyflow_spec::regulation::digest(p)
                .map(|d| format!("\n\n*Digest of {top}:* {d}"))
                .unwrap_or_default();
            Some(format!("**MK403 {p}** (LV, the official text): {lv}{en}"))
        })
        .collect()
}

/// After each follow-up wave the spec asks for, when it falls due (MK403 p.19): `years` after
/// the start or the end of each subject's supervision, so, for a cohort whose supervision
/// started in `methodology.sample.period`, from that period's first day plus the years — to
/// its last day plus the years for a wave after the start (a wave after the end comes later
/// for whoever's supervision is still running).
fn wave_hints(
    doc: &studyflow_spec::yaml::YamlDocument,
    lines: &Lines<'_>,
) -> Vec<lsp_types::InlayHint> {
    let period = &doc.value["methodology"]["sample"]["period"];
    let date = |v: &serde_json::Value| v.as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok());
    let (Some(from), Some(to)) = (date(&period["from"]), date(&period["to"])) else {
        return Vec::new();
    };
    let Some(waves) = doc.value["follow_up"]["waves"].as_array() else {
        return Vec::new();
    };
    waves
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let wave = studyflow_spec::model::WAVES
                .iter()
                .find(|x| Some(x.name) == w.as_str())?;
            let span = doc.spans.get(&format!("/follow_up/waves/{i}"))?;
            let add = |d: jiff::civil::Date| d.checked_add(jiff::Span::new().years(wave.years)).ok();
            let (first, last) = (add(from)?, add(to)?);
            let (label, edge) = if wave.from_end {
                (format!("due from {first}"), "end")
            } else {
                (format!("due {first} – {last}"), "start")
            };
            Some(lsp_types::InlayHint {
                position: lines.position(span.value.end),
                label: lsp_types::InlayHintLabel::String(label),
                kind: None,
                text_edits: None,
                tooltip: Some(lsp_types::InlayHintTooltip::String(format!(
                    "{} year{} after the {edge} of each subject's supervision (MK403 {}); the cohort's supervision started {from} – {to}.",
                    wave.years,
                    if wave.years == 1 { "" } else { "s" },
                    wave.point
                ))),
                padding_left: Some(true),
                padding_right: None,
                data: None,
            })
        })
        .collect()
}

/// Whether `text` is a study spec, which the server checks and explains: a YAML file that is
/// not (a GitHub workflow, `.pre-commit-config.yaml`) gets no findings, however many the
/// spec's schema would have. A spec is marked by either of what every spec carries:
/// - the top-level key `spec_version` (MK403 p.3: the application's format, its first key in
///   every spec), on a line of its own at the left margin, or in a flow mapping that is the
///   whole document;
/// - yaml-language-server's modeline naming the study-spec schema,
///   `# yaml-language-server: $schema=…/study-spec.schema.json`.
///
/// Read from the lines, so a spec that does not parse yet is still one.
pub fn is_spec(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let marked = text.lines().any(|line| {
        let key = ["spec_version", "\"spec_version\"", "'spec_version'"]
            .iter()
            .find_map(|k| line.strip_prefix(k));
        if let Some(rest) = key {
            let rest = rest.trim_start_matches([' ', '\t']);
            return rest
                .strip_prefix(':')
                .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t']));
        }
        line.trim_start()
            .strip_prefix('#')
            .map(str::trim_start)
            .and_then(|c| c.strip_prefix("yaml-language-server:"))
            .and_then(|c| c.split_once("$schema="))
            .is_some_and(|(_, schema)| {
                let schema = schema.split_whitespace().next().unwrap_or("");
                let schema = schema.split('#').next().unwrap_or(schema);
                schema.ends_with("study-spec.schema.json")
            })
    });
    // `{spec_version: 1, …}`: the parsed document's own key.
    marked
        || (text.contains("spec_version")
            && parse(text).is_some_and(|doc| doc.value.get("spec_version").is_some()))
}

/// Whether every line of `text` but `line` is blank or a comment: a document being started.
fn only_line(text: &str, line: u32) -> bool {
    text.lines()
        .enumerate()
        .all(|(i, l)| i == line as usize || l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// Every layer's findings of a spec's `text`, placed in it as LSP diagnostics (what the server
/// publishes; public for the benchmark): those of `studyflow validate --today today`, the date
/// checks among them (a p.8 notice day passed, an ethics permission dated after today).
pub fn findings(text: &str, calendar: &Calendar, today: jiff::civil::Date) -> Vec<Diagnostic> {
    let lines = Lines::new(text);
    studyflow_plan::check(text.as_bytes(), calendar, Some(today))
        .checked
        .diagnostics
        .into_iter()
        .map(|d| {
            let range = d.span.map_or_else(Range::default, |s| Range {
                start: lines.position(s.start),
                end: lines.position(s.end.max(s.start)),
            });
            let points = if d.regulation.is_empty() {
                String::new()
            } else {
                format!(" (MK403 {})", d.regulation.join(", "))
            };
            let help = d
                .help
                .as_deref()
                .map(|h| format!(" — {h}"))
                .unwrap_or_default();
            // What the quick fix does, handed back by the client with the finding.
            let data = d.fix.as_ref().map(|fix| match fix {
                Fix::Replace(x) => serde_json::json!({ "replace_with": x }),
                Fix::MoveTo(to) => serde_json::json!({ "move_to": to, "from": d.pointer }),
                Fix::Add => serde_json::json!({ "add": d.pointer }),
            });
            Diagnostic {
                range,
                severity: Some(match d.severity {
                    studyflow_spec::Severity::Error => DiagnosticSeverity::ERROR,
                    studyflow_spec::Severity::Warning => DiagnosticSeverity::WARNING,
                    studyflow_spec::Severity::Note => DiagnosticSeverity::INFORMATION,
                }),
                code: Some(NumberOrString::String(d.code.to_owned())),
                source: Some("studyflow".into()),
                message: format!("{}{points}{help}", d.message),
                data,
                ..Diagnostic::default()
            }
        })
        .collect()
}

/// The keys of the block mappings the line `line` sits in, outermost first, read from the
/// indentation of the lines above it (so a half-written document that does not parse still
/// has a place), and the indentation of that line.
fn place(text: &str, line: usize) -> (Vec<String>, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let here = lines.get(line).map_or(0, |l| indent(l));
    let mut path = Vec::new();
    let mut bound = here;
    for l in lines[..line.min(lines.len())].iter().rev() {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let i = indent(l);
        // A key's line may end in a comment, or carry an anchor or a tag for its value.
        let t = t.split(" #").next().unwrap_or(t).trim_end();
        let key = t.strip_suffix(':').or_else(|| {
            let (k, rest) = t.split_once(": ")?;
            let rest = rest.trim();
            (rest.starts_with(['&', '!']) && !rest.contains(' ')).then_some(k)
        });
        if i < bound
            && let Some(key) = key
        {
            path.push(key.trim_start_matches("- ").to_owned());
            bound = i;
            if i == 0 {
                break;
            }
        } else if i < bound {
            bound = i;
        }
    }
    path.reverse();
    (path, here)
}

/// What may be written at `at`, from the schema and the catalogue, in a document that need not
/// parse yet:
/// - after `key: `, the values the schema lists for the key (a phase's `kind`, a source's
///   `exchange`);
/// - on a `- ` line of a list of values, the values not yet listed (a phase's `covers` stages);
/// - under a source's `fields`, its catalogue keys not yet requested, each with a placeholder
///   for why the study needs it (MK403 p.3.3);
/// - elsewhere, the keys the mapping there may have and does not have yet, the required ones
///   first, each inserted as a skeleton of its shape (a mapping's or a list's first line below).
fn completions(text: &str, at: Position) -> Vec<lsp_types::CompletionItem> {
    use studyflow_spec::catalogue::Source;
    use studyflow_spec::schema::{Shape, allowed};
    let row = at.line as usize;
    let (path, indent) = place(text, row);
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    let line = text.lines().nth(row).unwrap_or("");
    let before: String = line.chars().take(at.character as usize).collect();
    let typed = before.trim_start();
    let item = typed.strip_prefix('-').map(str::trim_start);
    let value = |v: &str, detail: &str| lsp_types::CompletionItem {
        label: v.to_owned(),
        kind: Some(lsp_types::CompletionItemKind::ENUM_MEMBER),
        detail: Some(detail.to_owned()),
        ..lsp_types::CompletionItem::default()
    };
    // After `key:` on this line: the key's values.
    if let Some((key, _)) = item.unwrap_or(typed).split_once(':') {
        let mut at_key = keys.clone();
        at_key.push(key.trim());
        let (_, values) = allowed(&at_key);
        return values
            .into_iter()
            .map(|v| value(v, &format!("a value of `{}`", key.trim())))
            .collect();
    }
    let siblings = siblings(text, row, indent);
    let (fields, values) = allowed(&keys);
    // A `- ` item of a list of values.
    if item.is_some() && !values.is_empty() {
        let listed: Vec<String> = siblings
            .iter()
            .filter_map(|l| l.strip_prefix("- ").map(|v| v.trim().to_owned()))
            .collect();
        return values
            .into_iter()
            .filter(|v| !listed.iter().any(|l| l == v))
            .map(|v| value(v, &format!("an item of `{}`", keys.last().unwrap_or(&""))))
            .collect();
    }
    let dotted = path.join(".");
    if let Some(source) = Source::ALL.into_iter().find(|s| s.spec_path() == dotted) {
        return catalogue_keys(source, &siblings);
    }
    // A new `- ` item of a list of mappings has no keys yet.
    let present: Vec<&str> = siblings
        .iter()
        .filter(|_| item.is_none())
        .filter_map(|l| {
            l.trim_start_matches("- ")
                .split_once(':')
                .map(|(k, _)| k.trim())
        })
        .collect();
    let pad = " ".repeat(indent + if item.is_some() { 2 } else { 0 } + 2);
    fields
        .into_iter()
        .filter(|f| !present.contains(&f.key))
        .map(|f| {
            let insert = match f.shape {
                Shape::Mapping => format!("{}:\n{pad}$0", f.key),
                Shape::List if f.values.is_empty() => format!("{}:\n{pad}- $0", f.key),
                Shape::List => format!("{}:\n{pad}- ${{1|{}|}}", f.key, f.values.join(",")),
                Shape::Scalar if f.values.is_empty() => format!("{}: $0", f.key),
                Shape::Scalar => format!("{}: ${{1|{}|}}", f.key, f.values.join(",")),
            };
            lsp_types::CompletionItem {
                label: f.key.to_owned(),
                kind: Some(lsp_types::CompletionItemKind::PROPERTY),
                detail: Some(if f.required {
                    "required".into()
                } else {
                    "optional".into()
                }),
                documentation: f.description.map(|d| {
                    lsp_types::Documentation::MarkupContent(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: d.to_owned(),
                    })
                }),
                // The required keys first.
                sort_text: Some(format!("{}{}", u8::from(!f.required), f.key)),
                insert_text: Some(insert),
                insert_text_format: Some(lsp_types::InsertTextFormat::SNIPPET),
                insert_text_mode: Some(lsp_types::InsertTextMode::AS_IS),
                ..lsp_types::CompletionItem::default()
            }
        })
        .collect()
}

/// The lines of the block that line `row` (indented `indent`) belongs to, trimmed, at its
/// indentation (or as items `- ` two less): the keys and items written there already.
fn siblings(text: &str, row: usize, indent: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let depth = |l: &str| l.len() - l.trim_start().len();
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    let row = row.min(lines.len());
    // From the line that opens the block (less indented; a list item's `- ` line is the item's
    // own first line) to the one that closes it.
    let first = match lines[..row]
        .iter()
        .rposition(|l| !blank(l) && depth(l) < indent)
    {
        Some(i) if lines[i].trim_start().starts_with("- ") && depth(lines[i]) + 2 == indent => i,
        Some(i) => i + 1,
        None => 0,
    };
    let last = lines
        .get(row + 1..)
        .unwrap_or_default()
        .iter()
        .position(|l| !blank(l) && depth(l) < indent)
        .map_or(lines.len(), |i| row + 1 + i);
    lines[first..last]
        .iter()
        .enumerate()
        .filter(|(i, l)| first + i != row && !blank(l))
        .filter(|(_, l)| {
            depth(l) == indent || (depth(l) + 2 == indent && l.trim_start().starts_with("- "))
        })
        .map(|(_, l)| l.trim().to_owned())
        .collect()
}

/// A source's catalogue keys not yet under its `fields`, each with a placeholder for why the
/// study needs it (MK403 p.3.3).
fn catalogue_keys(
    source: studyflow_spec::catalogue::Source,
    siblings: &[String],
) -> Vec<lsp_types::CompletionItem> {
    use studyflow_spec::catalogue::{keys, lookup};
    let present: Vec<&str> = siblings
        .iter()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim()))
        .collect();
    keys(source)
        .filter(|k| !present.contains(k))
        .filter_map(|k| lookup(source, k))
        .map(|f| lsp_types::CompletionItem {
            label: f.key.to_owned(),
            kind: Some(lsp_types::CompletionItemKind::FIELD),
            detail: Some(format!(
                "{} ({})",
                f.meaning,
                f.point
                    .map_or_else(|| source.point().to_owned(), |p| format!("MK403 {p}"))
            )),
            insert_text: Some(format!(
                "{}: ${{1:why the study needs it (MK403 p.3.3)}}",
                f.key
            )),
            insert_text_format: Some(lsp_types::InsertTextFormat::SNIPPET),
            ..lsp_types::CompletionItem::default()
        })
        .collect()
}

/// Quick fixes for the findings the client sends back:
/// - "did you mean `x`?" puts `x` in place of the misspelt key or value;
/// - a catalogue key under a source that does not provide it is moved, with its reason, under
///   the `fields` of the source that does (MK403 p.9), when that source has `fields`;
/// - a missing required property is added at the end of its mapping as a skeleton: its key,
///   and its required keys below it, for the author to fill in (the findings then say what is
///   left).
fn fixes(
    p: &lsp_types::CodeActionParams,
    text: Option<&str>,
) -> Vec<lsp_types::CodeActionOrCommand> {
    let uri = &p.text_document.uri;
    p.context
        .diagnostics
        .iter()
        .filter_map(|d| {
            let data = d.data.as_ref()?;
            let mut preferred = false;
            // Only a one-line key or value is replaced: a block value's range runs into the
            // next key's line.
            let (title, edits) = if let Some(with) = data
                .get("replace_with")
                .and_then(|v| v.as_str())
                .filter(|_| d.range.start.line == d.range.end.line)
            {
                preferred = true;
                (
                    format!("Replace with `{with}`"),
                    vec![lsp_types::TextEdit {
                        range: d.range,
                        new_text: with.to_owned(),
                    }],
                )
            } else if let (Some(to), Some(from), Some(text)) = (
                data.get("move_to").and_then(|v| v.as_str()),
                data.get("from").and_then(|v| v.as_str()),
                text,
            ) {
                (
                    format!(
                        "Move it to `{}`",
                        to.trim_start_matches('/').replace('/', ".")
                    ),
                    move_field(text, from, to)?,
                )
            } else if let (Some(at), Some(text)) = (data.get("add").and_then(|v| v.as_str()), text)
            {
                let name = at.rsplit('/').next()?;
                (format!("Add `{name}`"), add_skeleton(text, at)?)
            } else {
                return None;
            };
            Some(lsp_types::CodeActionOrCommand::CodeAction(
                lsp_types::CodeAction {
                    title,
                    kind: Some(lsp_types::CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![d.clone()]),
                    edit: Some(lsp_types::WorkspaceEdit {
                        changes: Some(HashMap::from([(uri.clone(), edits)])),
                        ..lsp_types::WorkspaceEdit::default()
                    }),
                    // "Fix all" applies the replacements only: an added skeleton or a move
                    // is for the author to choose (a typo's key and its missing key are one gap).
                    is_preferred: Some(preferred),
                    ..lsp_types::CodeAction::default()
                },
            ))
        })
        .collect()
}

/// The lines `[first, last]` a node's key and value take, read from the indentation (a block
/// scalar's span, as the parser gives it, runs into the next key's line): from its key's line
/// to the last line indented deeper than the key, blank lines after it not counted. A list
/// item's mapping (no key) runs while lines are indented as deep as its first key.
fn node_lines(
    doc: &studyflow_spec::yaml::YamlDocument,
    lines: &Lines<'_>,
    text: &str,
    pointer: &str,
) -> Option<(u32, u32)> {
    let spans = doc.spans.get(pointer)?;
    let start = lines.position(spans.key.unwrap_or(spans.value).start);
    let column = match spans.key {
        Some(_) => start.character as usize,
        None => (start.character as usize).checked_sub(1)?,
    };
    let all: Vec<&str> = text.lines().collect();
    let first = start.line;
    let mut last = first;
    for (i, l) in all.iter().enumerate().skip(first as usize + 1) {
        if l.trim().is_empty() {
            continue;
        }
        if l.len() - l.trim_start().len() <= column {
            break;
        }
        last = i as u32;
    }
    Some((first, last))
}

/// Whether the node at `pointer` is written in flow style (`{a: b}`, `[a]`, also after an
/// anchor or a tag): no line can be added below it or cut out of it.
fn is_flow(doc: &studyflow_spec::yaml::YamlDocument, text: &str, pointer: &str) -> bool {
    let Some(value) = doc.spans.get(pointer).map(|s| s.value) else {
        return true;
    };
    let mut rest = text.get(value.start..).unwrap_or("").trim_start();
    // `&anchor` and `!tag` come before the value itself.
    while rest.starts_with(['&', '!']) {
        rest = rest
            .find(char::is_whitespace)
            .map_or("", |i| &rest[i..])
            .trim_start();
    }
    rest.starts_with(['{', '['])
}

/// Where to write a new key of the block mapping at `parent`, and its indentation: after the
/// mapping's last line, at the column of its keys (the document's end and column 0 for the
/// top level).
fn append_point(
    doc: &studyflow_spec::yaml::YamlDocument,
    lines: &Lines<'_>,
    text: &str,
    parent: &str,
) -> Option<(Position, usize)> {
    if parent.is_empty() {
        // The end of the text (a text without a final line break gets one first).
        return Some((lines.position(text.len()), 0));
    }
    let object = doc.value.pointer(parent)?.as_object()?;
    // A flow mapping (`{a: b}`) takes no line below it: no edit is offered there.
    if is_flow(doc, text, parent) {
        return None;
    }
    let child = object.keys().next()?;
    let child_pointer = format!("{parent}/{}", child.replace('~', "~0").replace('/', "~1"));
    let key = doc.spans.get(&child_pointer)?.key?;
    let indent = lines.position(key.start).character as usize;
    let (_, last) = node_lines(doc, lines, text, parent)?;
    Some((
        Position {
            line: last + 1,
            character: 0,
        },
        indent,
    ))
}

fn move_field(text: &str, from: &str, to: &str) -> Option<Vec<lsp_types::TextEdit>> {
    let doc = parse(text)?;
    let lines = Lines::new(text);
    // Only a field on lines of its own: not out of a flow mapping (`fields: {a: b}`), and
    // not where the target has it already.
    let (parent, key) = from.rsplit_once('/')?;
    if is_flow(&doc, text, parent) || doc.value.pointer(&format!("{to}/{key}")).is_some() {
        return None;
    }
    let (first, last) = node_lines(&doc, &lines, text, from)?;
    let (at, indent) = append_point(&doc, &lines, text, to)?;
    let moved: Vec<&str> = text
        .lines()
        .skip(first as usize)
        .take((last - first + 1) as usize)
        .collect();
    let base = moved.first().map_or(0, |l| l.len() - l.trim_start().len());
    let mut new_text = String::new();
    for l in &moved {
        new_text.push_str(&" ".repeat(indent));
        new_text.push_str(l.get(base..).unwrap_or(l.trim_start()));
        new_text.push('\n');
    }
    Some(vec![
        lsp_types::TextEdit {
            range: Range {
                start: Position {
                    line: first,
                    character: 0,
                },
                end: Position {
                    line: last + 1,
                    character: 0,
                },
            },
            new_text: String::new(),
        },
        lsp_types::TextEdit {
            range: Range { start: at, end: at },
            new_text,
        },
    ])
}

fn add_skeleton(text: &str, at: &str) -> Option<Vec<lsp_types::TextEdit>> {
    let doc = parse(text)?;
    let lines = Lines::new(text);
    let (parent, name) = at.rsplit_once('/')?;
    let (position, indent) = append_point(&doc, &lines, text, parent)?;
    let keys: Vec<&str> = parent
        .split('/')
        .skip(1)
        .filter(|s| s.parse::<usize>().is_err())
        .collect();
    let mut new_text = String::new();
    if position.character > 0 || (parent.is_empty() && !text.is_empty() && !text.ends_with('\n')) {
        new_text.push('\n');
    }
    skeleton(&keys, name, indent, 0, &mut new_text);
    Some(vec![lsp_types::TextEdit {
        range: Range {
            start: position,
            end: position,
        },
        new_text,
    }])
}

/// `name` under the mapping at `keys`, with its required keys below it, two levels at most.
fn skeleton(keys: &[&str], name: &str, indent: usize, depth: usize, out: &mut String) {
    use studyflow_spec::schema::{Shape, allowed};
    let (fields, _) = allowed(keys);
    let shape = fields
        .iter()
        .find(|f| f.key == name)
        .map_or(Shape::Scalar, |f| f.shape);
    let pad = " ".repeat(indent);
    match shape {
        Shape::Scalar => out.push_str(&format!("{pad}{name}: \n")),
        Shape::List => out.push_str(&format!("{pad}{name}:\n{pad}  - \n")),
        Shape::Mapping => {
            out.push_str(&format!("{pad}{name}:\n"));
            let mut inner: Vec<&str> = keys.to_vec();
            inner.push(name);
            let (children, _) = allowed(&inner);
            let required: Vec<_> = children.iter().filter(|c| c.required).collect();
            if depth >= 1 || required.is_empty() {
                return;
            }
            for c in required {
                skeleton(&inner, c.key, indent + 2, depth + 1, out);
            }
        }
    }
}

fn error(id: RequestId, code: lsp_server::ErrorCode, message: &str) -> Response {
    Response::new_err(id, code as i32, message.to_owned())
}

/// The spec's top-level sections as symbols, at their keys.
fn symbols(text: &str) -> Vec<DocumentSymbol> {
    let lines = Lines::new(text);
    let doc = parse(text);
    let Some(doc) = doc else {
        return Vec::new();
    };
    let Some(map) = doc.value.as_object() else {
        return Vec::new();
    };
    map.keys()
        .filter_map(|k| {
            let pointer = studyflow_spec::diagnostic::pointer_join("", k);
            let kind = if doc.value[k].is_object() {
                SymbolKind::OBJECT
            } else if doc.value[k].is_array() {
                SymbolKind::ARRAY
            } else {
                SymbolKind::FIELD
            };
            let mut s = symbol(&doc, &lines, &pointer, k.clone(), kind)?;
            s.detail =
                studyflow_spec::schema::field_help(&pointer).map(|h| h.chars().take(80).collect());
            s.children = children(&doc, &lines, k);
            Some(s)
        })
        .collect()
}

/// The document as the checker reads it (its values and where each node is), if it parses.
fn parse(text: &str) -> Option<studyflow_spec::yaml::YamlDocument> {
    studyflow_spec::yaml::parse(
        &SourceText::new(text),
        studyflow_spec::yaml::Limits::default(),
    )
    .0
}

/// The symbol of the node at `pointer`: from its key to the end of its value.
fn symbol(
    doc: &studyflow_spec::yaml::YamlDocument,
    lines: &Lines<'_>,
    pointer: &str,
    name: String,
    kind: SymbolKind,
) -> Option<DocumentSymbol> {
    let spans = doc.spans.get(pointer)?;
    let key = spans.key.unwrap_or(spans.value);
    #[allow(deprecated)]
    Some(DocumentSymbol {
        name,
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range: Range {
            start: lines.position(key.start),
            end: lines.position(spans.value.end.max(key.end)),
        },
        selection_range: Range {
            start: lines.position(key.start),
            end: lines.position(key.end),
        },
        children: None,
    })
}

/// The parts of a section an author looks for: the data sources, the phases, the persons and
/// the external team's members, by their names.
fn children(
    doc: &studyflow_spec::yaml::YamlDocument,
    lines: &Lines<'_>,
    section: &str,
) -> Option<Vec<DocumentSymbol>> {
    use studyflow_spec::diagnostic::pointer_join;
    let base = pointer_join("", section);
    let named =
        |pointer: String, name: String, kind: SymbolKind| symbol(doc, lines, &pointer, name, kind);
    let value = &doc.value[section];
    let out: Vec<DocumentSymbol> = match section {
        // Each source of the data scope (MK403 p.3.3).
        "data_scope" => value
            .as_object()?
            .keys()
            .filter_map(|k| named(pointer_join(&base, k), k.clone(), SymbolKind::MODULE))
            .collect(),
        // Each phase by its id; each person by name.
        "phases" | "authorised_persons" => value
            .as_array()?
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let name = item
                    .get("id")
                    .or_else(|| item.get("name"))
                    .and_then(|n| n.as_str())?
                    .to_owned();
                let kind = if section == "phases" {
                    SymbolKind::EVENT
                } else {
                    SymbolKind::CONSTRUCTOR
                };
                named(pointer_join(&base, i), name, kind)
            })
            .collect(),
        "external" => value
            .get("team")?
            .as_array()?
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let name = item.get("name").and_then(|n| n.as_str())?.to_owned();
                named(
                    pointer_join(&pointer_join(&base, "team"), i),
                    name,
                    SymbolKind::CONSTRUCTOR,
                )
            })
            .collect(),
        _ => return None,
    };
    (!out.is_empty()).then_some(out)
}

/// Byte offsets ⇄ LSP positions (UTF-16 columns).
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let prefix = self.text.get(start..offset).unwrap_or("");
        Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            character: u32::try_from(prefix.encode_utf16().count()).unwrap_or(u32::MAX),
        }
    }

    fn offset(&self, at: Position) -> Option<usize> {
        let start = *self.starts.get(at.line as usize)?;
        let end = self
            .starts
            .get(at.line as usize + 1)
            .copied()
            .unwrap_or(self.text.len());
        let line = &self.text[start..end];
        let mut units = 0u32;
        for (i, c) in line.char_indices() {
            if units >= at.character {
                return Some(start + i);
            }
            units += u32::try_from(c.len_utf16()).unwrap_or(2);
        }
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Next to a block value (`>-`, whose span runs into the next key's line), a fix keeps to
    /// its own node: the missing key goes into its mapping, a moved field takes its reason's
    /// lines and nothing of the next key.
    #[test]
    fn fixes_keep_to_their_node_next_to_block_values() {
        let calendar = Calendar::latvia();
        let spec = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../specs/resocialisation-programmes-university.yaml"
        ))
        .unwrap();
        let text = spec.replacen("      resources_assessed: true\n", "", 1);
        let at = "/data_scope/prison_administration/agreement/resources_assessed";
        let after = apply(&text, &add_skeleton(&text, at).unwrap());
        let doc = parse(&after).expect("still YAML");
        assert!(doc.value.pointer(at).is_some(), "added at {at}:\n{after}");
        assert!(
            !findings(&after, &calendar, jiff::civil::date(2026, 12, 2))
                .iter()
                .any(|d| d.message.contains("unknown property")),
            "{after}"
        );
        assert!(
            doc.value["data_scope"]["prison_administration"]["rulings"]
                .get("resources_assessed")
                .is_none(),
            "not under the next key"
        );

        let block = "data_scope:\n  service_is:\n    fields:\n      offence_date: >\n        time since the\n        offence\n  information_centre:\n    fields:\n      judgment_date: y\n";
        let edits = move_field(
            block,
            "/data_scope/service_is/fields/offence_date",
            "/data_scope/information_centre/fields",
        )
        .unwrap();
        let after = apply(block, &edits);
        let doc = parse(&after).expect("still YAML");
        assert_eq!(
            doc.value["data_scope"]["information_centre"]["fields"]["offence_date"],
            "time since the offence\n",
            "{after}"
        );
        assert_eq!(
            doc.value["data_scope"]["information_centre"]["fields"]["judgment_date"],
            "y"
        );
        assert!(
            doc.value["data_scope"]["service_is"]["fields"]
                .get("offence_date")
                .is_none()
        );
    }

    /// No fix writes lines into a flow mapping, or cuts a field out of one.
    #[test]
    fn no_fix_breaks_a_flow_mapping() {
        let text = "initiator: {kind: service}\ndata_scope:\n  service_is:\n    fields: {offence_date: x}\n  information_centre:\n    fields:\n      judgment_date: y\n";
        let doc = parse(text).unwrap();
        let lines = Lines::new(text);
        assert!(append_point(&doc, &lines, text, "/initiator").is_none());
        // Nor after an anchor or a tag.
        let anchored = "initiator: &i {kind: service}\n";
        assert!(add_skeleton(anchored, "/initiator/name").is_none());
        let tagged = "initiator: !!map {kind: service}\n";
        assert!(add_skeleton(tagged, "/initiator/name").is_none());
        assert!(add_skeleton(text, "/initiator/name").is_none());
        assert!(
            move_field(
                text,
                "/data_scope/service_is/fields/offence_date",
                "/data_scope/information_centre/fields"
            )
            .is_none()
        );
        // Into a block mapping it is offered.
        let block = "data_scope:\n  service_is:\n    fields:\n      offence_date: x\n  information_centre:\n    fields:\n      judgment_date: y\n";
        let edits = move_field(
            block,
            "/data_scope/service_is/fields/offence_date",
            "/data_scope/information_centre/fields",
        )
        .unwrap();
        assert_eq!(edits[1].new_text, "      offence_date: x\n");
    }

    #[test]
    fn each_follow_up_wave_shows_when_it_falls_due() {
        let text = "methodology:\n  sample:\n    period:\n      from: 2026-01-01\n      to: 2026-12-31\nfollow_up:\n  waves: [1y_after_start, 3y_after_end, nonsense]\n";
        let hints = wave_hints(&parse(text).unwrap(), &Lines::new(text));
        let labels: Vec<(u32, u32, String)> = hints
            .iter()
            .map(|h| match &h.label {
                lsp_types::InlayHintLabel::String(s) => {
                    (h.position.line, h.position.character, s.clone())
                }
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            labels,
            [
                (6, 24, "due 2027-01-01 – 2027-12-31".to_owned()),
                (6, 38, "due from 2029-01-01".to_owned()),
            ]
        );
        // Without the cohort's period there is nothing to count from, and nothing is said.
        let bare = "follow_up:\n  waves: [1y_after_start]\n";
        assert!(wave_hints(&parse(bare).unwrap(), &Lines::new(bare)).is_empty());
    }

    /// Applies a client's edits to `text` (each range in the original text).
    fn apply(text: &str, edits: &[lsp_types::TextEdit]) -> String {
        let lines = Lines::new(text);
        let mut edits: Vec<_> = edits
            .iter()
            .map(|e| {
                let start = lines.offset(e.range.start).unwrap_or(text.len());
                let end = lines.offset(e.range.end).unwrap_or(text.len());
                (start, end, e.new_text.as_str())
            })
            .collect();
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut out = text.to_owned();
        for (start, end, new) in edits {
            out.replace_range(start..end, new);
        }
        out
    }

    /// Every quick fix offered for the invalid specs of the corpus mends its finding: applied,
    /// the file no longer has that finding (the same code at the same pointer).
    #[test]
    fn every_quick_fix_mends_its_finding() {
        let calendar = Calendar::latvia();
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/specs/invalid");
        let mut mended = std::collections::BTreeMap::<String, usize>::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let uri: Uri = "file:///spec.yaml".parse().unwrap();
            for d in findings(&text, &calendar, jiff::civil::date(2026, 12, 2)) {
                let params = lsp_types::CodeActionParams {
                    text_document: lsp_types::TextDocumentIdentifier { uri: uri.clone() },
                    range: d.range,
                    context: lsp_types::CodeActionContext {
                        diagnostics: vec![d.clone()],
                        ..Default::default()
                    },
                    work_done_progress_params: Default::default(),
                    partial_result_params: Default::default(),
                };
                for action in fixes(&params, Some(&text)) {
                    let lsp_types::CodeActionOrCommand::CodeAction(a) = action else {
                        panic!()
                    };
                    let edits = &a.edit.unwrap().changes.unwrap()[&uri];
                    let after = apply(&text, edits);
                    // The finding as it was (its message names the key or value and the place)
                    // is gone; what the mend uncovers next may be another finding.
                    let still = findings(&after, &calendar, jiff::civil::date(2026, 12, 2))
                        .iter()
                        .any(|n| n.code == d.code && n.message == d.message);
                    assert!(
                        !still,
                        "{}: `{}` did not mend {:?} {}:\n{after}",
                        path.display(),
                        a.title,
                        d.code,
                        d.message
                    );
                    *mended
                        .entry(a.title.split(' ').next().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
        }
        // Each kind of fix was tried on the corpus.
        for kind in ["Replace", "Move", "Add"] {
            assert!(
                mended.get(kind).is_some_and(|n| *n > 0),
                "{kind}: {mended:?}"
            );
        }
    }

    /// Completion at `|` in each document: labels that must be offered, and labels that must not.
    #[test]
    fn completion_offers_what_the_schema_and_the_catalogue_allow_there() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            // The top level of an empty document: every section, required or not.
            (
                "|",
                &[
                    "spec_version",
                    "purpose",
                    "external",
                    "authorised_persons",
                    "follow_up",
                    "direct_contact",
                    "retention",
                    "publication",
                ],
                &[],
            ),
            // Keys written already are not offered again.
            (
                "id: x\ntitle: y\n|\n",
                &["purpose", "data_scope"],
                &["id", "title"],
            ),
            // A nested mapping.
            (
                "initiator:\n  kind: service\n  |\n",
                &["name"],
                &["kind", "purpose"],
            ),
            // A value after `key: `.
            (
                "initiator:\n  kind: |\n",
                &[
                    "service",
                    "external_natural_person",
                    "external_legal_person",
                ],
                &["name"],
            ),
            // A source's exchange.
            (
                "data_scope:\n  information_centre:\n    exchange: |\n",
                &["automated", "secure_electronic"],
                &[],
            ),
            // A new phase: its keys; a phase's covers: the stages not listed yet.
            (
                "phases:\n  - id: a\n    title: b\n  - |\n",
                &["id", "title", "start", "deadline", "covers"],
                &[],
            ),
            (
                "phases:\n  - id: a\n    |\n",
                &["title", "start", "deadline", "covers"],
                &["id"],
            ),
            (
                "phases:\n  - id: a\n    covers:\n      - acquisition\n      - |\n",
                &["linkage", "follow_up", "report"],
                &["acquisition", "id"],
            ),
            // A source's fields: its catalogue keys.
            (
                "data_scope:\n  information_centre:\n    fields:\n      offence_date: x\n      |\n",
                &["judgment_date"],
                &["offence_date", "birth_year", "exchange"],
            ),
        ];
        for (doc, offered, not) in cases {
            let cursor = doc.find('|').unwrap();
            let text = doc.replace('|', "");
            let line = doc[..cursor].matches('\n').count();
            let character = cursor - doc[..cursor].rfind('\n').map_or(0, |i| i + 1);
            let labels: Vec<String> = completions(
                &text,
                Position {
                    line: line as u32,
                    character: character as u32,
                },
            )
            .into_iter()
            .map(|i| i.label)
            .collect();
            for o in *offered {
                assert!(
                    labels.iter().any(|l| l == o),
                    "{doc:?}: {o} missing from {labels:?}"
                );
            }
            for n in *not {
                assert!(
                    !labels.iter().any(|l| l == n),
                    "{doc:?}: {n} offered in {labels:?}"
                );
            }
        }
    }

    #[test]
    fn a_completed_key_is_a_skeleton_of_its_shape() {
        let items = completions(
            "initiator:\n  kind: service\n",
            Position {
                line: 2,
                character: 0,
            },
        );
        let insert = |label: &str| {
            items
                .iter()
                .find(|i| i.label == label)
                .and_then(|i| i.insert_text.clone())
                .unwrap_or_else(|| panic!("{label}"))
        };
        assert_eq!(insert("data_scope"), "data_scope:\n  $0");
        assert_eq!(insert("phases"), "phases:\n  - $0");
        assert_eq!(insert("purpose"), "purpose: $0");
        let design = completions(
            "methodology:\n  \n",
            Position {
                line: 1,
                character: 2,
            },
        );
        let design = design.iter().find(|i| i.label == "design").expect("design");
        assert!(
            design
                .insert_text
                .as_deref()
                .unwrap()
                .starts_with("design: ${1|"),
            "{design:?}"
        );
        // Required keys sort first.
        let first = items.iter().min_by_key(|i| i.sort_text.clone()).unwrap();
        assert_eq!(first.detail.as_deref(), Some("required"));
    }

    /// What marks a spec: its own top-level `spec_version`, or the study-spec schema's modeline.
    #[test]
    fn a_spec_is_marked_by_spec_version_or_the_modeline() {
        for spec in [
            "spec_version: 1\n",
            "\u{feff}spec_version: 1\n",
            "# a comment\nid: x\nspec_version:\n",
            "\"spec_version\" : 1\n",
            "'spec_version':\t1\n",
            "{spec_version: 1, id: x}\n",
            "# yaml-language-server: $schema=../schemas/study-spec.schema.json\nid: x\n",
            "#yaml-language-server: $schema=https://example.org/s/study-spec.schema.json#v1\n",
            "id: [unclosed\nspec_version: 1\n",
        ] {
            assert!(is_spec(spec), "{spec:?}");
        }
        for other in [
            "",
            "on: push\njobs: {}\n",
            "tool:\n  spec_version: 1\n",
            "spec_versions: 1\n",
            "spec_version:1\n",
            "- spec_version: 1\n",
            "{tool: {spec_version: 1}}\n",
            "# yaml-language-server: $schema=https://json.schemastore.org/github-workflow.json\non: push\n",
            "# study-spec.schema.json is elsewhere\nrepos: []\n",
        ] {
            assert!(!is_spec(other), "{other:?}");
        }
    }

    #[test]
    fn positions_are_in_utf16_units_of_their_line() {
        let text = "a: ā\nb: 𝔁x\n";
        let l = Lines::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(
            l.position(x),
            Position {
                line: 1,
                character: 5
            }
        );
        assert_eq!(l.offset(l.position(x)), Some(x));
        assert_eq!(l.position(0), Position::default());
    }
}
