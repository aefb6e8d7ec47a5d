//! YAML → JSON value plus a table of source spans per JSON pointer.
//!
//! Built on `saphyr-parser`'s event stream rather than a DOM so that this module owns every
//! safety decision: duplicate keys are errors at the second key, nesting depth and the number
//! of nodes after alias expansion are capped (no "billion laughs"), only the YAML 1.2 core
//! schema is resolved, and custom tags are refused. The builder keeps an explicit stack, so
//! deep input cannot overflow the native stack.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan, Tag};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, Severity, Span, pointer_join};
use crate::source::SourceText;

/// Caps that make hostile input fail fast.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes the document may contain after aliases are expanded.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A realistic spec is a few hundred lines, tens of kilobytes and a few thousand nodes;
        // these leave two orders of magnitude of room.
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_nodes: 100_000,
        }
    }
}

/// Where a node sits in the file: its key (when it is a mapping value) and the value itself.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpans {
    pub key: Option<Span>,
    pub value: Span,
}

/// JSON pointer → spans. Nodes inside an expanded alias have no entry of their own; they
/// resolve to the alias through their nearest ancestor.
///
/// Entries are recorded as (parent, segment) while parsing; the pointer strings and their
/// index are built on the first lookup only, since a clean file never needs a position.
#[derive(Debug, Default)]
pub struct SpanTable {
    entries: Vec<Entry>,
    index: std::cell::OnceCell<HashMap<String, usize>>,
}

#[derive(Debug)]
struct Entry {
    /// Index of the parent entry; `None` for the root. Parents precede their children.
    parent: Option<usize>,
    segment: Segment,
    spans: NodeSpans,
}

#[derive(Debug, Clone)]
enum Segment {
    Root,
    Key(String),
    Index(usize),
}

impl SpanTable {
    fn push(&mut self, parent: Option<usize>, segment: Segment, spans: NodeSpans) -> usize {
        self.entries.push(Entry {
            parent,
            segment,
            spans,
        });
        self.entries.len() - 1
    }

    fn index(&self) -> &HashMap<String, usize> {
        self.index.get_or_init(|| {
            let mut pointers: Vec<String> = Vec::with_capacity(self.entries.len());
            for e in &self.entries {
                let base = e
                    .parent
                    .and_then(|p| pointers.get(p))
                    .map_or("", String::as_str);
                let pointer = match &e.segment {
                    Segment::Root => String::new(),
                    Segment::Key(k) => pointer_join(base, k),
                    Segment::Index(i) => pointer_join(base, i),
                };
                pointers.push(pointer);
            }
            pointers
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, i))
                .collect()
        })
    }

    /// The line of the key `key` in the mapping recorded as entry `parent`.
    fn key_line(&self, parent: usize, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .skip(parent + 1)
            .find(|e| e.parent == Some(parent) && matches!(&e.segment, Segment::Key(k) if k == key))
            .and_then(|e| e.spans.key.map(|k| k.line))
    }

    pub fn get(&self, pointer: &str) -> Option<&NodeSpans> {
        self.index().get(pointer).map(|&i| &self.entries[i].spans)
    }

    /// The pointer of the innermost node whose key or value holds the byte `offset`, and
    /// whether `offset` is on its key (an editor's hover).
    pub fn at(&self, offset: usize) -> Option<(String, bool)> {
        let holds = |s: &Span| s.start <= offset && offset <= s.end;
        let mut best: Option<(usize, bool, usize)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            let found = match e.spans.key.filter(holds) {
                Some(k) => Some((true, k.end - k.start)),
                None => {
                    holds(&e.spans.value).then(|| (false, e.spans.value.end - e.spans.value.start))
                }
            };
            if let Some((on_key, width)) = found
                && best.is_none_or(|(_, _, w)| width <= w)
            {
                best = Some((i, on_key, width));
            }
        }
        let (entry, on_key, _) = best?;
        let pointer = self
            .index()
            .iter()
            .find(|(_, i)| **i == entry)
            .map(|(p, _)| p.clone())?;
        Some((pointer, on_key))
    }

    /// The spans of the node at `pointer`, or of its nearest ancestor that has spans, and
    /// whether the match was exact.
    pub fn nearest(&self, pointer: &str) -> Option<(&NodeSpans, bool)> {
        let mut p = pointer;
        let mut exact = true;
        loop {
            if let Some(s) = self.get(p) {
                return Some((s, exact));
            }
            exact = false;
            p = crate::diagnostic::pointer_parent(p)?;
        }
    }
}

/// A parsed document.
#[derive(Debug)]
pub struct YamlDocument {
    pub value: Value,
    pub spans: SpanTable,
}

pub(crate) const YAML_SYNTAX: (&str, &str) = ("SF001", "yaml-syntax");
pub(crate) const YAML_DUPLICATE_KEY: (&str, &str) = ("SF002", "duplicate-key");
pub(crate) const YAML_LIMIT: (&str, &str) = ("SF003", "input-limit");
pub(crate) const YAML_UNSUPPORTED: (&str, &str) = ("SF004", "unsupported-yaml");

/// A finding of this layer, said in English and in Latvian.
fn diag(
    kind: (&'static str, &'static str),
    message: impl Into<String>,
    message_lv: impl Into<String>,
    span: Span,
) -> Diagnostic {
    Diagnostic::new(kind.0, kind.1, Severity::Error, message)
        .with_latvian(message_lv)
        .with_span(span)
}

struct Frame {
    container: Container,
    /// This container's span-table entry; `None` inside an ignored (duplicate) subtree.
    entry: Option<usize>,
    /// Byte offset where the collection starts.
    start: usize,
    anchor: usize,
    nodes: usize,
    /// End (byte offset) of the last child read, for block collections whose end event sits
    /// at the next token.
    last_child_end: Option<usize>,
    /// Height of the tallest child (0 for scalars).
    height: usize,
}

/// A finished node: its value, its node count and its height, alias expansion included.
#[derive(Debug, Clone)]
struct Built {
    value: Value,
    nodes: usize,
    height: usize,
}

impl Built {
    fn leaf(value: Value) -> Self {
        Built {
            value,
            nodes: 1,
            height: 0,
        }
    }
}

enum Container {
    Seq(Vec<Value>),
    Map {
        map: Map<String, Value>,
        /// Key awaiting its value, its span, and whether it duplicates an earlier key.
        pending: Option<(String, Span, bool)>,
    },
}

struct Builder<'s, 'a> {
    src: &'s SourceText<'a>,
    limits: Limits,
    stack: Vec<Frame>,
    spans: SpanTable,
    anchors: HashMap<usize, Built>,
    total_nodes: usize,
    root: Option<Value>,
    diagnostics: Vec<Diagnostic>,
}

enum Flow {
    Continue,
    Stop,
}

/// Parses one YAML document. Returns the document when the syntax allowed building one
/// (duplicate keys are reported but do not prevent it), and every problem found.
pub fn parse(src: &SourceText<'_>, limits: Limits) -> (Option<YamlDocument>, Vec<Diagnostic>) {
    let text = src.text();
    let mut b = Builder {
        src,
        limits,
        stack: Vec::new(),
        spans: SpanTable::default(),
        anchors: HashMap::new(),
        total_nodes: 0,
        root: None,
        diagnostics: Vec::new(),
    };
    let mut documents = 0usize;
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(e) => e,
            Err(e) => {
                let m = e.marker();
                let at = src.span(m.index(), m.index() + 1);
                // saphyr's scanner has its own nesting guard, which trips before ours on
                // flow collections; report it as the limit it is.
                let d = if e.info().contains("recursion limit") {
                    diag(
                        YAML_LIMIT,
                        "nesting too deep",
                        "ligzdojums ir pārāk dziļš",
                        at,
                    )
                    .with_help(
                        "a study spec never needs this depth; the input is refused as unsafe",
                    )
                } else {
                    // (The parser's detail stays in English.)
                    diag(
                        YAML_SYNTAX,
                        format!("YAML syntax error: {}", e.info()),
                        format!("YAML sintakses kļūda: {}", e.info()),
                        at,
                    )
                    .with_help("fix the YAML syntax at this position; nothing after it was checked")
                };
                b.diagnostics.push(d.at(""));
                return (None, b.diagnostics);
            }
        };
        let flow = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    b.diagnostics.push(
                        diag(
                            YAML_UNSUPPORTED,
                            "a study spec is one YAML document, but a second document starts here",
                            "pētījuma specifikācija ir viens YAML dokuments, bet šeit sākas otrs dokuments",
                            b.span_of(&span),
                        )
                        .with_help("split the file in two, one study per file"),
                    );
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let span = b.span_of(&span);
                if value == "<<" && style == ScalarStyle::Plain && b.is_key_position() {
                    b.diagnostics.push(
                        diag(
                            YAML_UNSUPPORTED,
                            "merge keys (`<<`) are not part of YAML 1.2 and are not supported",
                            "apvienošanas atslēgas (`<<`) nav YAML 1.2 daļa un netiek atbalstītas",
                            span,
                        )
                        .with_help(
                            "write the keys out, or use an alias as a whole value (`key: *anchor`)",
                        ),
                    );
                    return (None, b.diagnostics);
                }
                match resolve_scalar(value, style, tag.as_deref()) {
                    Ok(v) => b.complete(Built::leaf(v), 1, anchor, span),
                    Err((msg, msg_lv)) => {
                        b.diagnostics
                            .push(diag(YAML_UNSUPPORTED, msg, msg_lv, span).with_help(
                                "write plain values; studyflow reads the YAML 1.2 core schema only",
                            ));
                        b.complete(Built::leaf(Value::Null), 1, anchor, span)
                    }
                }
            }
            Event::Alias(id) => {
                let span = b.span_of(&span);
                match b.anchors.get(&id) {
                    Some(built) => {
                        // An alias adds its whole subtree to the document.
                        let built = built.clone();
                        let added = built.nodes;
                        b.complete(built, added, 0, span)
                    }
                    None => {
                        b.diagnostics.push(diag(
                            YAML_SYNTAX,
                            "alias to an unknown anchor",
                            "aizstājvārds norāda uz nezināmu enkuru",
                            span,
                        ));
                        Flow::Stop
                    }
                }
            }
            Event::SequenceStart(anchor, tag) => {
                b.open(Container::Seq(Vec::new()), anchor, tag, &span)
            }
            Event::MappingStart(anchor, tag) => b.open(
                Container::Map {
                    map: Map::new(),
                    pending: None,
                },
                anchor,
                tag,
                &span,
            ),
            Event::SequenceEnd | Event::MappingEnd => b.close(&span),
            Event::StreamEnd => break,
            _ => Flow::Continue,
        };
        if let Flow::Stop = flow {
            return (None, b.diagnostics);
        }
    }
    match b.root.take().filter(|v| !v.is_null()) {
        Some(value) => (
            Some(YamlDocument {
                value,
                spans: b.spans,
            }),
            b.diagnostics,
        ),
        None => {
            let at = src.span_bytes(0, 0);
            b.diagnostics.push(
                diag(
                    YAML_SYNTAX,
                    "the file holds no YAML document, or only an empty one",
                    "failā nav YAML dokumenta vai ir tikai tukšs dokuments",
                    at,
                )
                .with_help("a study spec starts with `spec_version: 1`; see `studyflow schema`"),
            );
            (None, b.diagnostics)
        }
    }
}

impl Builder<'_, '_> {
    fn span_of(&self, s: &YamlSpan) -> Span {
        self.src.span(s.start.index(), s.end.index())
    }

    /// Records the next child of the top container (not a key) with its spans; returns its
    /// entry, or `None` inside an ignored subtree.
    fn record_child(&mut self, value: Span) -> Option<usize> {
        let (parent, segment, key) = match self.stack.last() {
            None => (None, Segment::Root, None),
            Some(f) => {
                let base = f.entry?;
                match &f.container {
                    Container::Seq(items) => (Some(base), Segment::Index(items.len()), None),
                    Container::Map { pending, .. } => match pending {
                        Some((k, ks, false)) => (Some(base), Segment::Key(k.clone()), Some(*ks)),
                        // A duplicate's value, or a key: keys get their spans through their values.
                        Some((_, _, true)) | None => return None,
                    },
                }
            }
        };
        Some(self.spans.push(parent, segment, NodeSpans { key, value }))
    }

    fn open(
        &mut self,
        container: Container,
        anchor: usize,
        tag: Option<std::borrow::Cow<'_, Tag>>,
        span: &YamlSpan,
    ) -> Flow {
        let at = self.span_of(span);
        if let Some(tag) = tag.as_deref()
            && !(tag.is_yaml_core_schema() && (tag.suffix == "map" || tag.suffix == "seq"))
        {
            self.diagnostics.push(diag(
                YAML_UNSUPPORTED,
                format!("unsupported YAML tag `{}{}`", tag.handle, tag.suffix),
                format!("neatbalstīts YAML tags `{}{}`", tag.handle, tag.suffix),
                at,
            ));
        }
        if self.is_key_position() {
            self.diagnostics.push(
                diag(
                    YAML_UNSUPPORTED,
                    "a mapping key must be a plain string, not a mapping or sequence",
                    "kartējuma atslēgai jābūt vienkāršam tekstam, nevis kartējumam vai sarakstam",
                    at,
                )
                .with_help("write the key as a plain word such as `title`"),
            );
            return Flow::Stop;
        }
        if self.stack.len() >= self.limits.max_depth {
            self.diagnostics.push(
                diag(
                    YAML_LIMIT,
                    format!("nesting deeper than {} levels", self.limits.max_depth),
                    format!("ligzdojums dziļāks par {} līmeņiem", self.limits.max_depth),
                    at,
                )
                .with_help("a study spec never needs this depth; the input is refused as unsafe"),
            );
            return Flow::Stop;
        }
        let key_position = self.is_key_position();
        let entry = if key_position {
            None
        } else {
            self.record_child(at)
        };
        self.stack.push(Frame {
            container,
            entry,
            start: at.start,
            anchor,
            nodes: 1,
            last_child_end: None,
            height: 0,
        });
        Flow::Continue
    }

    fn close(&mut self, span: &YamlSpan) -> Flow {
        let Some(frame) = self.stack.pop() else {
            return Flow::Continue;
        };
        let event = self.span_of(span);
        let start = frame.start;
        // A flow collection ends at its bracket; a block one where its last child ends.
        let end = match frame.last_child_end {
            Some(child_end) if event.start == event.end => child_end,
            _ => event.end,
        };
        let full = self.src.span_bytes(start, end.max(start));
        let value = match frame.container {
            Container::Seq(items) => Value::Array(items),
            Container::Map { map, .. } => Value::Object(map),
        };
        if let Some(e) = frame.entry {
            self.spans.entries[e].spans.value = full;
        }
        let built = Built {
            value,
            nodes: frame.nodes,
            height: frame.height + 1,
        };
        if frame.anchor != 0 {
            self.anchors.insert(frame.anchor, built.clone());
        }
        // The children were counted as they were read; the collection adds itself.
        self.attach(built, 1, full)
    }

    fn is_key_position(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                container: Container::Map { pending: None, .. },
                ..
            })
        )
    }

    /// A scalar or alias has been read.
    fn complete(&mut self, built: Built, added: usize, anchor: usize, span: Span) -> Flow {
        if anchor != 0 {
            self.anchors.insert(anchor, built.clone());
        }
        if !self.is_key_position() {
            self.record_child(span);
        }
        self.attach(built, added, span)
    }

    /// Attaches a finished node to its parent; `added` is how many nodes it adds to the
    /// document's count.
    fn attach(&mut self, built: Built, added: usize, span: Span) -> Flow {
        let Built {
            value,
            nodes,
            height,
        } = built;
        // An alias can bring a deep node into a deep place; the expanded tree obeys the same
        // depth limit as the written one, so nothing downstream recurses without bound.
        if self.stack.len() + height > self.limits.max_depth {
            self.diagnostics.push(
                diag(
                    YAML_LIMIT,
                    format!(
                        "nesting deeper than {} levels once aliases are expanded",
                        self.limits.max_depth
                    ),
                    format!(
                        "pēc aizstājvārdu izvēršanas ligzdojums dziļāks par {} līmeņiem",
                        self.limits.max_depth
                    ),
                    span,
                )
                .with_help("a study spec never needs this depth; the input is refused as unsafe"),
            );
            return Flow::Stop;
        }
        self.total_nodes += added;
        if self.total_nodes > self.limits.max_nodes {
            self.diagnostics.push(
                diag(
                    YAML_LIMIT,
                    format!(
                        "the document expands to more than {} nodes (aliases included)",
                        self.limits.max_nodes
                    ),
                    format!(
                        "dokumentā pēc izvēršanas ir vairāk nekā {} mezglu (ieskaitot aizstājvārdus)",
                        self.limits.max_nodes
                    ),
                    span,
                )
                .with_help("nested aliases multiply the document (\"billion laughs\"); the input is refused as unsafe"),
            );
            return Flow::Stop;
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(value);
            return Flow::Continue;
        };
        top.nodes += nodes;
        top.height = top.height.max(height);
        top.last_child_end = Some(span.end);
        match &mut top.container {
            Container::Seq(items) => items.push(value),
            Container::Map { map, pending } => match pending.take() {
                None => {
                    let key = match value {
                        Value::String(s) => s,
                        Value::Null => "null".to_owned(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => {
                            self.diagnostics.push(diag(
                                YAML_UNSUPPORTED,
                                "a mapping key must be a plain string",
                                "kartējuma atslēgai jābūt vienkāršam tekstam",
                                span,
                            ));
                            return Flow::Stop;
                        }
                    };
                    // The first key's value is complete by the time the second key is read,
                    // so the mapping itself knows every earlier key.
                    let duplicate = map.contains_key(&key);
                    if duplicate {
                        let line = top.entry.and_then(|e| self.spans.key_line(e, &key));
                        let first =
                            line.map_or_else(|| "earlier".to_owned(), |l| format!("on line {l}"));
                        let first_lv =
                            line.map_or_else(|| "iepriekš".to_owned(), |l| format!("{l}. rindā"));
                        self.diagnostics.push(
                            diag(
                                YAML_DUPLICATE_KEY,
                                format!(
                                    "duplicate key {}; it was first given {first}",
                                    crate::diagnostic::shown(&key)
                                ),
                                format!(
                                    "atslēga {} atkārtojas; pirmo reizi tā norādīta {first_lv}",
                                    crate::diagnostic::shown_in(&key, crate::diagnostic::Lang::Lv)
                                ),
                                span,
                            )
                            .with_help("remove one of the two; YAML keeps neither reliably"),
                        );
                    }
                    *pending = Some((key, span, duplicate));
                }
                Some((key, _, duplicate)) => {
                    if !duplicate {
                        map.insert(key, value);
                    }
                }
            },
        }
        Flow::Continue
    }
}

/// YAML 1.2 core schema resolution of one scalar. The parser hands over an owned string,
/// which a string value takes without a copy.
fn resolve_scalar(
    text: std::borrow::Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
) -> Result<Value, (String, String)> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            if tag.handle == "!" && tag.suffix.is_empty() {
                return Ok(Value::String(text.into_owned()));
            }
            return Err((
                format!("unsupported YAML tag `{}{}`", tag.handle, tag.suffix),
                format!("neatbalstīts YAML tags `{}{}`", tag.handle, tag.suffix),
            ));
        }
        return match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.into_owned())),
            "int" | "float" | "bool" | "null" => Ok(resolve_plain(text)),
            other => Err((
                format!("unsupported YAML tag `!!{other}` on a scalar"),
                format!("neatbalstīts YAML tags `!!{other}` skalārai vērtībai"),
            )),
        };
    }
    Ok(match style {
        ScalarStyle::Plain => resolve_plain(text),
        _ => Value::String(text.into_owned()),
    })
}

fn resolve_plain(text: std::borrow::Cow<'_, str>) -> Value {
    match text.as_ref() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = resolve_number(&text) {
        return Value::Number(n);
    }
    Value::String(text.into_owned())
}

/// An integer or float of the core schema, if the text is one.
fn resolve_number(text: &str) -> Option<Number> {
    let bytes = text.as_bytes();
    let digits = bytes
        .strip_prefix(b"-")
        .or_else(|| bytes.strip_prefix(b"+"))
        .unwrap_or(bytes);
    if !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && let Ok(i) = text.parse::<i64>()
    {
        return Some(i.into());
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Some(i.into());
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Some(i.into());
    }
    if looks_like_float(digits)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Some(n);
    }
    None
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` of the core schema, sign stripped.
fn looks_like_float(s: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_str(text: &str) -> (Option<YamlDocument>, Vec<Diagnostic>) {
        parse(&SourceText::new(text), Limits::default())
    }

    #[test]
    fn core_schema_scalars() {
        let (doc, d) = parse_str(
            "a: 1\nb: -2.5\nc: true\nd: ~\ne: 2026-06-30\nf: '7'\ng: 0x1F\nh: yes\ni: 1e3\nj: 1.2.3\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            doc.unwrap().value,
            json!({"a":1,"b":-2.5,"c":true,"d":null,"e":"2026-06-30","f":"7","g":31,"h":"yes","i":1000.0,"j":"1.2.3"})
        );
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let (doc, _) = parse_str("study:\n  title: Pētījums\n  phases:\n    - id: x\n");
        let doc = doc.unwrap();
        let title = doc.spans.get("/study/title").unwrap();
        assert_eq!((title.key.unwrap().line, title.key.unwrap().column), (2, 3));
        assert_eq!((title.value.line, title.value.column), (2, 10));
        let id = doc.spans.get("/study/phases/0/id").unwrap();
        assert_eq!((id.value.line, id.value.column), (4, 11));
        let (near, exact) = doc.spans.nearest("/study/phases/0/missing").unwrap();
        assert!(!exact);
        assert_eq!(near.value.line, 4);
    }

    #[test]
    fn duplicate_key_is_reported_at_the_second_key() {
        let (doc, d) = parse_str("a: 1\nb:\n  c: 1\n  c: 2\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "SF002");
        let s = d[0].span.unwrap();
        assert_eq!((s.line, s.column), (4, 3));
        assert!(d[0].message.contains("line 3"));
        assert_eq!(doc.unwrap().value, json!({"a":1,"b":{"c":1}}));
    }

    #[test]
    fn block_collections_end_at_their_last_child() {
        let (doc, _) = parse_str("team:\n  - name: A\n    role: lead\n  - name: B\n");
        let first = doc.unwrap().spans.get("/team/0").unwrap().value;
        assert_eq!((first.line, first.end_line), (2, 3));
    }

    #[test]
    fn syntax_error_has_a_position() {
        let (doc, d) = parse_str("a: [1, 2\nb: 3\n");
        assert!(doc.is_none());
        assert_eq!(d[0].code, "SF001");
        assert!(d[0].span.unwrap().line >= 1);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let (doc, d) = parse_str(&text);
        assert!(doc.is_none());
        assert_eq!(d.last().unwrap().code, "SF003");
    }

    #[test]
    fn small_aliases_are_expanded() {
        let (doc, d) = parse_str("x: &p {name: A}\ny: *p\n");
        assert!(d.is_empty());
        let doc = doc.unwrap();
        assert_eq!(doc.value["y"], json!({"name":"A"}));
        // Nodes inside the alias resolve to the alias.
        let (s, exact) = doc.spans.nearest("/y/name").unwrap();
        assert!(!exact);
        assert_eq!(s.value.line, 2);
    }

    #[test]
    fn aliases_cannot_build_deep_trees() {
        // Each anchor nests the previous one 30 levels deeper: depth grows past any limit
        // while the node count stays small.
        let mut text = String::new();
        let nest = |inner: &str| format!("{}{}{}", "[".repeat(30), inner, "]".repeat(30));
        text.push_str(&format!("a0: &a0 {}\n", nest("x")));
        for i in 1..10 {
            text.push_str(&format!("a{i}: &a{i} {}\n", nest(&format!("*a{}", i - 1))));
        }
        let (doc, d) = parse_str(&text);
        assert!(doc.is_none());
        assert!(d[0].message.contains("once aliases are expanded"), "{d:?}");
    }

    #[test]
    fn nodes_are_counted_once_whatever_their_depth() {
        let items = vec!["1"; 30_000].join(", ");
        let (doc, d) = parse_str(&format!("x: {{y: [{items}]}}\n"));
        assert!(d.is_empty(), "{d:?}");
        assert!(doc.is_some());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(10_000);
        let (doc, d) = parse_str(&text);
        assert!(doc.is_none());
        assert_eq!(d[0].code, "SF003", "{d:?}");
        let mut block = String::new();
        for depth in 0..100 {
            block.push_str(&"  ".repeat(depth));
            block.push_str("a:\n");
        }
        let (doc, d) = parse_str(&block);
        assert!(doc.is_none());
        assert_eq!(d[0].code, "SF003", "{d:?}");
        assert!(d[0].message.contains("64"));
    }

    #[test]
    fn complex_keys_tags_and_second_documents_are_refused() {
        assert_eq!(parse_str("? [a]\n: 1\n").1[0].code, "SF004");
        assert_eq!(parse_str("a: !custom 1\n").1[0].code, "SF004");
        assert_eq!(parse_str("a: 1\n---\nb: 2\n").1[0].code, "SF004");
        assert_eq!(parse_str("a: &x {b: 1}\nc:\n  <<: *x\n").1[0].code, "SF004");
        assert_eq!(parse_str("---\n").1[0].code, "SF001");
        let (doc, d) = parse_str("a: !!str 12\n");
        assert!(d.is_empty());
        assert_eq!(doc.unwrap().value, json!({"a":"12"}));
    }

    #[test]
    fn empty_file_is_an_error() {
        let (doc, d) = parse_str("# only a comment\n");
        assert!(doc.is_none());
        assert_eq!(d[0].code, "SF001");
    }
}
