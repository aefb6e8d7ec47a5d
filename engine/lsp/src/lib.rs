//! `studyflow lsp`: a language server for study specs over stdio (issue #14, first part).
//!
//! - Diagnostics of every layer — YAML, schema, the SF1xx legal rules, the SF2xx plan checks —
//!   for each open document, on open and on every change (full text sync). Changes that arrive
//!   while one is checked are taken together: only the latest text of each document is checked.
//! - Hover: the field under the cursor, as the schema describes it with the MK403 points it
//!   cites; and any finding at that place with its rule and points.
//! - Document symbols: the spec's top-level sections.
//!
//! Positions are LSP's (lines from 0, columns in UTF-16 code units), converted from the
//! checker's byte offsets.

use std::collections::HashMap;

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
use studyflow_spec::source::SourceText;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The command that answers with a document's compiled plan as Mermaid (`arguments`: the
/// document's URI, and optionally `"dot"` for Graphviz).
pub const PLAN_COMMAND: &str = "studyflow.plan";

/// The server's capabilities: full text sync, hover, document symbols.
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
            commands: vec![PLAN_COMMAND.to_owned()],
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
    let caps = serde_json::to_value(capabilities())?;
    let params = connection.initialize(caps)?;
    let _params: InitializeParams = serde_json::from_value(params)?;
    let mut server = Server {
        docs: HashMap::new(),
        calendar: Calendar::latvia(),
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
                    let response = server.request(req);
                    connection.sender.send(Message::Response(response))?;
                }
                Message::Notification(n) => {
                    if let Some(uri) = server.notification(n)?
                        && !dirty.contains(&uri)
                    {
                        dirty.push(uri);
                    }
                }
                Message::Response(_) => {}
            }
            next = connection.receiver.try_recv().ok();
        }
        for uri in dirty {
            let diagnostics = server
                .docs
                .get(&uri)
                .map(|text| server.diagnostics(text))
                .unwrap_or_default();
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
    calendar: Calendar,
}

impl Server {
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

    fn request(&self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            HoverRequest::METHOD => serde_json::from_value::<lsp_types::HoverParams>(req.params)
                .map(|p| {
                    let doc = &p.text_document_position_params;
                    let hover = self
                        .docs
                        .get(&doc.text_document.uri)
                        .and_then(|t| self.hover(t, doc.position));
                    serde_json::to_value(hover).unwrap_or_default()
                }),
            lsp_types::request::Completion::METHOD => {
                serde_json::from_value::<lsp_types::CompletionParams>(req.params).map(|p| {
                    let at = &p.text_document_position;
                    let items = self
                        .docs
                        .get(&at.text_document.uri)
                        .map(|t| completions(t, at.position))
                        .unwrap_or_default();
                    serde_json::to_value(lsp_types::CompletionResponse::Array(items))
                        .unwrap_or_default()
                })
            }
            lsp_types::request::CodeActionRequest::METHOD => {
                serde_json::from_value::<lsp_types::CodeActionParams>(req.params)
                    .map(|p| serde_json::to_value(fixes(&p)).unwrap_or_default())
            }
            lsp_types::request::InlayHintRequest::METHOD => {
                serde_json::from_value::<lsp_types::InlayHintParams>(req.params).map(|p| {
                    let hints = self
                        .docs
                        .get(&p.text_document.uri)
                        .map(|t| self.notice_hint(t))
                        .unwrap_or_default();
                    serde_json::to_value(hints).unwrap_or_default()
                })
            }
            lsp_types::request::CodeLensRequest::METHOD => {
                serde_json::from_value::<lsp_types::CodeLensParams>(req.params).map(|p| {
                    let uri = p.text_document.uri;
                    let compiles = self.docs.get(&uri).is_some_and(|t| {
                        studyflow_plan::check(t.as_bytes(), &self.calendar, None)
                            .plan
                            .is_some()
                    });
                    let lenses: Vec<lsp_types::CodeLens> = if compiles {
                        vec![lsp_types::CodeLens {
                            range: Range::default(),
                            command: Some(lsp_types::Command {
                                title: "studyflow: the compiled plan (Mermaid)".into(),
                                command: PLAN_COMMAND.into(),
                                arguments: Some(vec![serde_json::json!(uri.as_str())]),
                            }),
                            data: None,
                        }]
                    } else {
                        Vec::new()
                    };
                    serde_json::to_value(lenses).unwrap_or_default()
                })
            }
            lsp_types::request::ExecuteCommand::METHOD => {
                serde_json::from_value::<lsp_types::ExecuteCommandParams>(req.params).map(|p| {
                    let uri = p.arguments.first().and_then(|a| a.as_str()).unwrap_or("");
                    let dot = p.arguments.get(1).and_then(|a| a.as_str()) == Some("dot");
                    let plan = (p.command == PLAN_COMMAND)
                        .then(|| self.docs.iter().find(|(u, _)| u.as_str() == uri))
                        .flatten()
                        .and_then(|(_, t)| {
                            studyflow_plan::check(t.as_bytes(), &self.calendar, None).plan
                        });
                    match plan {
                        Some(plan) if dot => serde_json::json!(studyflow_plan::render::dot(&plan)),
                        Some(plan) => serde_json::json!(studyflow_plan::render::mermaid(&plan)),
                        None => serde_json::Value::Null,
                    }
                })
            }
            DocumentSymbolRequest::METHOD => {
                serde_json::from_value::<lsp_types::DocumentSymbolParams>(req.params).map(|p| {
                    let symbols = self
                        .docs
                        .get(&p.text_document.uri)
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

    fn diagnostics(&self, text: &str) -> Vec<Diagnostic> {
        findings(text, &self.calendar)
    }

    /// After `publication.planned_date`, the day the Prison Administration must have the
    /// results by (MK403 p.8), as the calendar counts it.
    fn notice_hint(&self, text: &str) -> Vec<lsp_types::InlayHint> {
        let lines = Lines::new(text);
        let doc = parse(text);
        let Some(doc) = doc else {
            return Vec::new();
        };
        let Some(day) = doc.value["publication"]["planned_date"]
            .as_str()
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        else {
            return Vec::new();
        };
        let Some(spans) = doc.spans.get("/publication/planned_date") else {
            return Vec::new();
        };
        let Ok(d) = self.calendar.deadline_before(
            day,
            10,
            studyflow_calendar::Reading::NthWorkingDayBefore,
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
    fn hover(&self, text: &str, at: Position) -> Option<Hover> {
        let lines = Lines::new(text);
        let offset = lines.offset(at)?;
        let mut parts = Vec::new();
        let doc = parse(text);
        if let Some(doc) = doc
            && let Some((pointer, _)) = doc.spans.at(offset)
        {
            if let Some(help) = studyflow_spec::schema::field_help(&pointer) {
                parts.push(format!("**`{pointer}`** — {help}"));
            }
            // The planned publication: the day the Prison Administration must have the results
            // by, as the calendar counts it (MK403 p.8).
            if pointer == "/publication/planned_date"
                && let Some(day) = doc.value["publication"]["planned_date"]
                    .as_str()
                    .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                && let Ok(d) = self.calendar.deadline_before(
                    day,
                    10,
                    studyflow_calendar::Reading::NthWorkingDayBefore,
                )
            {
                parts.push(format!(
                    "Published on {day}: where Prison Administration information is used, it must have the results by **{}**, the 10th working day before (MK403 p.8; {} days off passed over).",
                    d.date,
                    d.skipped.len()
                ));
            }
        }
        for d in self.diagnostics(text) {
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

/// Every layer's findings of a spec's `text`, placed in it as LSP diagnostics (what the server
/// publishes; public for the benchmark).
pub fn findings(text: &str, calendar: &Calendar) -> Vec<Diagnostic> {
    let lines = Lines::new(text);
    studyflow_plan::check(text.as_bytes(), calendar, None)
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
            // "did you mean `x`?": the quick fix's replacement.
            let data = d
                .help
                .as_deref()
                .and_then(|h| h.strip_prefix("did you mean `"))
                .and_then(|h| h.split('`').next())
                .map(|x| serde_json::json!({ "replace_with": x }));
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
        if i < bound
            && let Some(key) = t.strip_suffix(':')
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

/// What may be written at `at`: under a source's `fields`, its catalogue keys not yet
/// requested, each with a placeholder for why the study needs it (MK403 p.3.3).
fn completions(text: &str, at: Position) -> Vec<lsp_types::CompletionItem> {
    use studyflow_spec::catalogue::{Source, keys, lookup};
    let (path, indent) = place(text, at.line as usize);
    let dotted = path.join(".");
    let Some(source) = Source::ALL.into_iter().find(|s| s.spec_path() == dotted) else {
        return Vec::new();
    };
    // The keys already under this `fields`: the lines below its key at this indentation.
    let lines: Vec<&str> = text.lines().collect();
    let mut present = Vec::new();
    let start = lines[..(at.line as usize).min(lines.len())]
        .iter()
        .rposition(|l| l.trim() == "fields:")
        .map_or(0, |i| i + 1);
    for l in lines.iter().skip(start) {
        let i = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && i < indent {
            break;
        }
        if let Some((k, _)) = l.trim().split_once(':') {
            present.push(k.trim().to_owned());
        }
    }
    keys(source)
        .filter(|k| !present.iter().any(|p| p == k))
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

/// Quick fixes for the findings the client sends back: "did you mean `x`?" replaces the
/// misspelt key or value with `x`.
fn fixes(p: &lsp_types::CodeActionParams) -> Vec<lsp_types::CodeActionOrCommand> {
    p.context
        .diagnostics
        .iter()
        .filter_map(|d| {
            let with = d.data.as_ref()?.get("replace_with")?.as_str()?.to_owned();
            let edit = lsp_types::TextEdit {
                range: d.range,
                new_text: with.clone(),
            };
            Some(lsp_types::CodeActionOrCommand::CodeAction(
                lsp_types::CodeAction {
                    title: format!("Replace with `{with}`"),
                    kind: Some(lsp_types::CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![d.clone()]),
                    edit: Some(lsp_types::WorkspaceEdit {
                        changes: Some(HashMap::from([(p.text_document.uri.clone(), vec![edit])])),
                        ..lsp_types::WorkspaceEdit::default()
                    }),
                    is_preferred: Some(true),
                    ..lsp_types::CodeAction::default()
                },
            ))
        })
        .collect()
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
