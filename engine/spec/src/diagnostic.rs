//! The one diagnostic type every layer (YAML, schema, legal rules) reports with.

use serde::Serialize;

/// How bad a finding is. `studyflow validate` fails on errors, and on warnings with
/// `--deny-warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A region of the source file. Lines and columns are 1-based; columns count characters.
/// `start`/`end` are byte offsets into the file (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// One finding about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable code, e.g. `SF201`. Never reused for a different check.
    pub code: &'static str,
    /// Stable kebab-case name of the check, e.g. `contract-and-nda`.
    pub name: &'static str,
    pub severity: Severity,
    pub message: String,
    /// MK403 points this finding rests on, as `p.30.2`.
    pub regulation: Vec<String>,
    /// JSON pointer of the node the finding is about. For a missing property it is the
    /// pointer the property would have.
    pub pointer: String,
    /// Where in the file; resolved from `pointer` by [`crate::check`] when not set by the
    /// layer that found it.
    pub span: Option<Span>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(
        code: &'static str,
        name: &'static str,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            name,
            severity,
            message: message.into(),
            regulation: Vec::new(),
            pointer: String::new(),
            span: None,
            help: None,
        }
    }

    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = pointer.into();
        self
    }

    pub fn with_span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn citing<I, S>(mut self, points: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.regulation.extend(points.into_iter().map(Into::into));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Appends a segment to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub fn pointer_join(base: &str, segment: impl std::fmt::Display) -> String {
    let seg = segment.to_string();
    let mut out = String::with_capacity(base.len() + seg.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in seg.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// The parent of a JSON pointer (`""` for the root and its children).
pub fn pointer_parent(pointer: &str) -> Option<&str> {
    if pointer.is_empty() {
        None
    } else {
        Some(pointer.rfind('/').map_or("", |i| &pointer[..i]))
    }
}

/// The last segment of a pointer, unescaped.
pub fn pointer_last(pointer: &str) -> String {
    let raw = pointer.rfind('/').map_or(pointer, |i| &pointer[i + 1..]);
    raw.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_and_split() {
        let p = pointer_join("/a", "b/c~d");
        assert_eq!(p, "/a/b~1c~0d");
        assert_eq!(pointer_parent(&p), Some("/a"));
        assert_eq!(pointer_last(&p), "b/c~d");
        assert_eq!(pointer_parent("/a"), Some(""));
        assert_eq!(pointer_parent(""), None);
    }
}
