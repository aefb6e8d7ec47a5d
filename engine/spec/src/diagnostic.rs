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

/// A region of the source file. Lines and columns are 1-based; columns count characters;
/// lines end at `\n`. `start`/`end` are byte offsets (end exclusive) into the file's text after
/// any byte-order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl Span {
    /// The empty span at the start of the file, for findings about the file as a whole.
    pub const START: Span = Span {
        start: 0,
        end: 0,
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 1,
    };
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
    /// The same message in Latvian, for a person who reads the pages in Latvian: every layer's
    /// findings give one (YAML, schema, legal rules, plan), masked like the message. Not part
    /// of the CLI's JSON.
    #[serde(skip)]
    pub message_lv: Option<String>,
    /// MK403 points this finding rests on, as `p.30.2`.
    pub regulation: Vec<String>,
    /// JSON pointer of the node the finding is about. For a missing property it is the
    /// pointer the property would have.
    pub pointer: String,
    /// Where in the file; resolved from `pointer` by [`crate::check`] when not set by the
    /// layer that found it.
    pub span: Option<Span>,
    pub help: Option<String>,
    /// Whether a legal rule's finding about the same node replaces this one (schema findings
    /// about missing or unknown properties and values outside an enum).
    #[serde(skip)]
    pub replaceable: bool,
    /// What would mend it, for an editor's quick fix; the help says the same in words.
    #[serde(skip)]
    pub fix: Option<Fix>,
}

/// A mend an editor can make for a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Write this in place of the node's key or value ("did you mean").
    Replace(String),
    /// Move the field to the mapping at this pointer (a catalogue key under the source that
    /// provides it, MK403 p.9).
    MoveTo(String),
    /// Add the missing property at the finding's pointer, as a skeleton of its shape.
    Add,
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
            message_lv: None,
            regulation: Vec::new(),
            pointer: String::new(),
            span: None,
            help: None,
            replaceable: false,
            fix: None,
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

    /// The message in Latvian too.
    pub fn with_latvian(mut self, message: impl Into<String>) -> Self {
        self.message_lv = Some(message.into());
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

/// A value from the spec as a message may show it: quoted, unless it is long text or looks like
/// a Latvian personal code (`DDMMYY-NNNNN`, `32NNNN-NNNNN`), which are never echoed.
pub fn shown(value: &str) -> String {
    shown_in(value, Lang::En)
}

/// The language of a message (the findings of the schema are said in both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Lv,
}

/// [`shown`], in `lang`.
pub fn shown_in(value: &str, lang: Lang) -> String {
    if looks_like_personal_code(value) {
        match lang {
            Lang::En => "a value that looks like a personal code (not shown)",
            Lang::Lv => "vērtība, kas izskatās pēc personas koda (netiek rādīta)",
        }
        .to_owned()
    } else if value.chars().count() > 40 {
        match lang {
            Lang::En => "this text",
            Lang::Lv => "šis teksts",
        }
        .to_owned()
    } else {
        format!("`{value}`")
    }
}

/// MK403 points as a Latvian message cites them, the way the regulation and the engine's
/// Latvian write them: `["p.3", "p.25.1"]` → `3., 25.1. p.`, a range `p.31–32` → `31.–32. p.`.
/// [`crate::regulation::cited_points`] reads back the same points from it as from the English
/// `p.3, p.25.1`.
pub fn points_lv(points: &[&str]) -> String {
    let each: Vec<String> = points
        .iter()
        .map(|p| {
            let p = p.trim_start_matches("p.");
            match p.split_once(['–', '-']) {
                Some((from, to)) => format!("{from}.–{}.", to.trim_start_matches("p.")),
                None => format!("{p}."),
            }
        })
        .collect();
    format!("{} p.", each.join(", "))
}

/// Whether a number, as YAML read it, may be a personal code: a plain `32123456789`, or an
/// old-format code written without its hyphen, whose leading zero the integer lost.
pub fn number_looks_like_personal_code(n: &serde_json::Number) -> bool {
    n.as_u64().is_some_and(|v| {
        (1_000_000_000..100_000_000_000).contains(&v)
            && looks_like_personal_code(&format!("{v:011}"))
    })
}

/// Eleven digits, optionally with one separator after the sixth — a hyphen as printed, or the
/// space, slash or dot people type instead — anywhere in the text.
pub fn looks_like_personal_code(value: &str) -> bool {
    enough_digits(value) && personal_code_at(value.as_bytes(), 0).is_some()
}

/// Every code starts with six consecutive digits (a date, or `32` and four more); most text
/// has no such run and is cleared in one pass.
fn enough_digits(value: &str) -> bool {
    let mut run = 0u8;
    for b in value.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            if run == 6 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// What may stand between a code's sixth and seventh digits: the hyphen as printed, or what
/// people type or paste for it — a space, a slash, a dot, an en dash, a no-break space, a
/// hyphen between spaces.
const SEPARATORS: &[&str] = &[" - ", "-", " ", "/", ".", "\u{2013}", "\u{a0}"];

/// The byte range of the first personal-code-like run at or after `from`.
pub(crate) fn personal_code_at(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut start = from;
    while start < bytes.len() {
        let preceded_by_digit = start > 0 && bytes[start - 1].is_ascii_digit();
        if bytes[start].is_ascii_digit() && !preceded_by_digit {
            let mut i = start;
            let mut count = 0;
            while i < bytes.len() && count < 11 {
                if bytes[i].is_ascii_digit() {
                    count += 1;
                    i += 1;
                } else if count == 6
                    && i == start + 6
                    && let Some(sep) = SEPARATORS
                        .iter()
                        .find(|sep| bytes[i..].starts_with(sep.as_bytes()))
                {
                    // the hyphen after the sixth digit, or what is typed for it
                    i += sep.len();
                } else {
                    break;
                }
            }
            let followed_by_digit = i < bytes.len() && bytes[i].is_ascii_digit();
            if count == 11 && !followed_by_digit && is_code_shape(&bytes[start..i]) {
                return Some((start, i));
            }
        }
        start += 1;
    }
    None
}

/// The shapes of Latvian personal codes: the newer `32NNNNNNNNN`, or the older `DDMMYY-CNNNN`
/// whose first six digits are a date and whose seventh is the century (0, 1, 2). Company
/// registration numbers (`4…`, `5…`, `9…`) have neither shape.
fn is_code_shape(run: &[u8]) -> bool {
    let d: Vec<u8> = run
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    if d.len() != 11 {
        return false;
    }
    if d[0] == 3 && d[1] == 2 {
        return true;
    }
    let day = d[0] * 10 + d[1];
    let month = d[2] * 10 + d[3];
    (1..=31).contains(&day) && (1..=12).contains(&month) && d[6] <= 2
}

/// The text with every personal-code-like run replaced by `X`s of the same length, so byte
/// offsets and spans into it stay valid. Used before showing source lines.
pub fn mask_personal_codes(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = personal_code_at(bytes, 0).filter(|_| enough_digits(text)) else {
        return std::borrow::Cow::Borrowed(text);
    };
    let mut out = bytes.to_vec();
    let mut next = Some(first);
    while let Some((s, e)) = next {
        for b in &mut out[s..e] {
            if b.is_ascii_digit() {
                *b = b'X';
            }
        }
        next = personal_code_at(bytes, e);
    }
    // Only ASCII digits were replaced by ASCII, so the bytes are still UTF-8.
    std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// Appends a segment to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub fn pointer_join(base: &str, segment: impl std::fmt::Display) -> String {
    let seg = segment.to_string();
    let mut out = String::with_capacity(base.len() + seg.len() + 1);
    out.push_str(base);
    pointer_push(&mut out, &seg);
    out
}

/// Appends a segment to the JSON pointer `pointer` in place (as [`pointer_join`]).
pub fn pointer_push(pointer: &mut String, segment: &str) {
    pointer.push('/');
    if !segment.bytes().any(|b| b == b'~' || b == b'/') {
        pointer.push_str(segment);
        return;
    }
    for c in segment.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
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

/// The MK403 points a text names (`p.12.1`, `p.30–33`), in order, each once, a range written
/// with an en dash or a hyphen, with or without a second `p.` (`p.30-p.33`), given back as
/// `p.30–33`: what a finding's `regulation` field says when its message names the points it
/// rests on. [`expand_point`] spells a range out.
pub fn points_in(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let number = |at: &mut usize| -> String {
        let mut n = String::new();
        while *at < chars.len()
            && (chars[*at].is_ascii_digit()
                || (chars[*at] == '.' && chars.get(*at + 1).is_some_and(char::is_ascii_digit)))
        {
            n.push(chars[*at]);
            *at += 1;
        }
        n
    };
    let mut i = 0;
    while i + 2 < chars.len() {
        let starts = chars[i] == 'p'
            && chars[i + 1] == '.'
            && chars[i + 2].is_ascii_digit()
            && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i + 2;
        let first = number(&mut end);
        let mut point = format!("p.{first}");
        if matches!(chars.get(end), Some('–' | '-')) {
            let mut at = end + 1;
            if chars.get(at) == Some(&'p') && chars.get(at + 1) == Some(&'.') {
                at += 2;
            }
            if chars.get(at).is_some_and(char::is_ascii_digit) {
                let last = number(&mut at);
                point = format!("p.{first}–{last}");
                end = at;
            }
        }
        if !out.contains(&point) {
            out.push(point);
        }
        i = end;
    }
    out
}

/// The points one citation of [`points_in`] stands for, without `p.`: `p.8` → `8`;
/// `p.30–33` → 30, 31, 32, 33; `p.19.1–19.6` and `p.33.3–5` → each sub-point.
pub fn expand_point(cited: &str) -> Vec<String> {
    let cited = cited.trim_start_matches("p.");
    let Some((from, to)) = cited.split_once('–') else {
        return vec![cited.to_owned()];
    };
    let from: Vec<&str> = from.split('.').collect();
    let to: Vec<&str> = to.split('.').collect();
    // `33.3–5`: the last part alone; `19.1–19.6`: the whole point again.
    let stem = &from[..from.len() - 1];
    let same_stem = to.len() == 1 || (to.len() == from.len() && to[..to.len() - 1] == *stem);
    match (
        from[from.len() - 1].parse::<u32>(),
        to[to.len() - 1].parse::<u32>(),
    ) {
        (Ok(a), Ok(b)) if same_stem && a <= b && b - a < 100 => (a..=b)
            .map(|n| {
                let mut parts: Vec<String> = stem.iter().map(|s| (*s).to_owned()).collect();
                parts.push(n.to_string());
                parts.join(".")
            })
            .collect(),
        _ => vec![from.join("."), to.join(".")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_in_reads_what_a_message_cites() {
        assert_eq!(
            points_in(
                "no `follow_up` (MK403 p.3.4, p.19); see p.30–33 and p.19.1–19.6, e.g. step. p.19"
            ),
            ["p.3.4", "p.19", "p.30–33", "p.19.1–19.6"]
        );
        assert_eq!(
            points_in("p.31-32, p.30–p.33, p.33.3–5; p.8."),
            ["p.31–32", "p.30–33", "p.33.3–5", "p.8"]
        );
        assert!(points_in("the step p. 1 of nothing, ap.3, e.g. this").is_empty());
        assert_eq!(expand_point("p.30–33"), ["30", "31", "32", "33"]);
        assert_eq!(expand_point("p.19.1–19.3"), ["19.1", "19.2", "19.3"]);
        assert_eq!(expand_point("p.33.3–5"), ["33.3", "33.4", "33.5"]);
        assert_eq!(expand_point("p.12.1"), ["12.1"]);
    }

    #[test]
    fn points_are_cited_the_latvian_way() {
        assert_eq!(points_lv(&["p.8"]), "8. p.");
        assert_eq!(points_lv(&["p.3", "p.25.1"]), "3., 25.1. p.");
        assert_eq!(points_lv(&["p.31–32"]), "31.–32. p.");
        assert_eq!(points_lv(&["p.3.4", "p.22.5–22.7"]), "3.4., 22.5.–22.7. p.");
        for points in [&["p.8"][..], &["p.3", "p.25.1"], &["p.33.3–33.5", "p.12.1"]] {
            let en = points.join(", ");
            assert_eq!(
                crate::regulation::cited_points(&en),
                crate::regulation::cited_points(&points_lv(points)),
                "{en}"
            );
        }
    }

    #[test]
    fn personal_codes_are_never_shown() {
        assert_eq!(shown("month"), "`month`");
        assert!(shown("010190-12345").contains("not shown"));
        assert!(shown("32123456789").contains("not shown"));
        assert!(shown("code 010190-12345 here").contains("not shown"));
        assert_eq!(shown("2026-06-30"), "`2026-06-30`");
        assert_eq!(shown("VPD/2027/15-3"), "`VPD/2027/15-3`");
        assert!(
            !looks_like_personal_code("123456789012"),
            "twelve digits are not a code"
        );
        assert!(
            !looks_like_personal_code("Reg. Nr. 90000076669"),
            "a company registration number"
        );
        assert!(!looks_like_personal_code("40003245752"));
        assert!(
            looks_like_personal_code("31129912345"),
            "old format without the hyphen"
        );
        assert_eq!(
            mask_personal_codes("a: 010190-12345, b: 32123456789\n"),
            "a: XXXXXX-XXXXX, b: XXXXXXXXXXX\n"
        );
        assert_eq!(mask_personal_codes("no codes"), "no codes");
        // Whatever stands for the hyphen, the code is found and masked.
        for written in [
            "010190 12345",
            "010190/12345",
            "010190.12345",
            "010190\u{2013}12345",
            "010190\u{a0}12345",
            "010190 - 12345",
            "32123456789",
        ] {
            assert!(looks_like_personal_code(written), "{written}");
            assert_eq!(
                mask_personal_codes(&format!("note: {written}.")),
                format!(
                    "note: {}.",
                    written.replace(|c: char| c.is_ascii_digit(), "X")
                )
            );
        }
        // Two separators, or one elsewhere, is not the shape of a code.
        assert!(!looks_like_personal_code("0101 90-12345"));
        assert!(!looks_like_personal_code("01019-012345"));
        assert!(!looks_like_personal_code("2026.06.30 12345"));
        let n = |v: u64| number_looks_like_personal_code(&serde_json::Number::from(v));
        assert!(
            n(32123456789) && n(1019012345),
            "a lost leading zero is restored"
        );
        assert!(!n(2400) && !n(90000076669));
    }

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
