//! The one CSV dialect of studyflow, on the `csv` crate: RFC 4180 (comma, fields quoted with
//! `"` and quotes doubled, LF or CRLF between records), UTF-8, a byte-order mark skipped. One
//! reader for every file a person or an institution supplies (the manual extraction of
//! MK403 p.22.1, the consented contacts of p.32), one writer for every file the engine hands
//! out (releases, p.30; the contact list, p.32).
//!
//! The reader is strict where the `csv` crate is lenient: a quote left open, a quote inside an
//! unquoted field, text after a closing quote, a carriage return that does not end a line, and
//! any control character inside a cell refuse the file (a supplied file is refused whole, never
//! guessed at). Messages name the line and the column, never a cell: a cell may be a person's
//! name or code.
//!
//! The writer, for files people open in a spreadsheet, defuses formulas ([`for_spreadsheet`]):
//! a text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
//! (OWASP's advice against CSV injection), while a number stays a number.

use std::borrow::Cow;
use std::io::Write;

/// A supplied CSV file read whole: its records, each with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    pub records: Vec<Record>,
}

/// One record of a [`Sheet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line the record starts on (1-based).
    pub line: usize,
    pub cells: Vec<String>,
}

/// Why a supplied file is not CSV, or not clean: where, and what — never a cell's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {problem}", .column.map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct Malformed {
    pub line: usize,
    /// 1-based, when the problem is in one cell.
    pub column: Option<usize>,
    pub problem: String,
}

/// The reader's configuration: no header handling (callers check the header themselves),
/// records of any length (callers report a short row by its line rather than failing at it).
pub fn reader_builder() -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(false).flexible(true);
    b
}

/// The writer's configuration: LF after each record, fields quoted when they must be, every
/// record as long as the first.
pub fn writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

/// Reads supplied CSV text whole. A blank line is skipped; every other problem is reported,
/// all of them (up to the first structural one, after which lines cannot be trusted).
pub fn read(text: &str) -> Result<Sheet, Vec<Malformed>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The crate's own line numbers drift over blank lines, so each record's line comes
    // from the structure check, which sees the same records in the same order.
    let starts = structure(text).map_err(|m| vec![m])?;
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (i, record) in reader_builder()
        .from_reader(text.as_bytes())
        .records()
        .enumerate()
    {
        let line = starts.get(i).copied().unwrap_or(0);
        let record = record.map_err(|_| {
            vec![Malformed {
                line,
                column: None,
                problem: "the file is not CSV".into(),
            }]
        })?;
        for (i, cell) in record.iter().enumerate() {
            if let Some(what) = forbidden_char(cell) {
                problems.push(Malformed {
                    line,
                    column: Some(i + 1),
                    problem: format!("the cell holds {what}"),
                });
            }
        }
        records.push(Record {
            line,
            cells: record.iter().map(str::to_owned).collect(),
        });
    }
    if problems.is_empty() {
        Ok(Sheet { records })
    } else {
        Err(problems)
    }
}

/// Checks the quoting and line structure the `csv` crate would otherwise accept leniently
/// (it closes an open quote at the end of the file and reads `a"b` as text); it does not
/// split fields, the crate does. Returns the line each record starts on (blank lines hold
/// none).
fn structure(text: &str) -> Result<Vec<usize>, Malformed> {
    let mut s = Structure::new(true);
    s.feed(text.as_bytes())?;
    s.finish()
}

/// Where the structure check is within a record.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// The structure check of the one dialect, fed bytes as they come: a whole supplied file
/// ([`read`]), or a file of a million clients streamed through [`Checked`].
#[derive(Debug, Clone)]
pub struct Structure {
    at: At,
    line: usize,
    record_line: usize,
    between_records: bool,
    /// A carriage return outside quotes, waiting for the line feed it must come with.
    cr: bool,
    /// The line each record starts on, when kept.
    starts: Option<Vec<usize>>,
}

impl Structure {
    fn new(keep_starts: bool) -> Structure {
        Structure {
            at: At::FieldStart,
            line: 1,
            record_line: 1,
            between_records: true,
            cr: false,
            starts: keep_starts.then(Vec::new),
        }
    }

    fn bad(line: usize, problem: &str) -> Malformed {
        Malformed {
            line,
            column: None,
            problem: problem.to_owned(),
        }
    }

    const LONE_CR: &str = "a carriage return that does not end a line (CRLF or LF only)";

    fn feed(&mut self, bytes: &[u8]) -> Result<(), Malformed> {
        let mut i = 0;
        while i < bytes.len() {
            // Inside a field, what does not end it changes nothing: skipped with `memchr` (a file
            // of a million clients is mostly such bytes). Unquoted, commas are skipped too: what
            // follows one is a field's start, which matters only to a quote, and the byte before
            // the quote says whether it was a comma.
            let ordinary = match (self.at, self.cr) {
                (At::Unquoted, false) => {
                    let rest = &bytes[i..];
                    let n = memchr::memchr3(b'"', b'\r', b'\n', rest);
                    if let Some(n) = n
                        && n > 0
                        && rest[n - 1] == b','
                    {
                        self.at = At::FieldStart;
                    } else if n.is_none() && rest.last() == Some(&b',') {
                        self.at = At::FieldStart;
                    }
                    n
                }
                (At::Quoted, _) => memchr::memchr2(b'"', b'\n', &bytes[i..]),
                _ => Some(0),
            };
            match ordinary {
                Some(n) => i += n,
                None => break,
            }
            let b = bytes[i];
            i += 1;
            if self.cr {
                self.cr = false;
                if b != b'\n' {
                    return Err(Self::bad(self.line, Self::LONE_CR));
                }
            } else if b == b'\r' && self.at != At::Quoted {
                // Decided by the next byte: a CRLF ends a line (a blank one between records).
                self.cr = true;
                continue;
            }
            if self.between_records && b != b'\n' {
                if let Some(starts) = &mut self.starts {
                    starts.push(self.line);
                }
                self.record_line = self.line;
                self.between_records = false;
            }
            self.at = match (self.at, b) {
                (At::Quoted, b'"') => At::QuoteInQuoted,
                (At::Quoted, b'\n') => {
                    self.line += 1;
                    At::Quoted
                }
                (At::Quoted, _) => At::Quoted,
                (At::QuoteInQuoted, b'"') => At::Quoted,
                (At::FieldStart, b'"') => At::Quoted,
                (At::Unquoted, b'"') => {
                    return Err(Self::bad(self.line, "a quote inside an unquoted field"));
                }
                (_, b',') => At::FieldStart,
                (_, b'\n') => {
                    self.line += 1;
                    self.between_records = true;
                    At::FieldStart
                }
                (At::QuoteInQuoted, _) => {
                    return Err(Self::bad(self.line, "text after a closing quote"));
                }
                (_, _) => At::Unquoted,
            };
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<usize>, Malformed> {
        if self.cr {
            return Err(Self::bad(self.line, Self::LONE_CR));
        }
        if self.at == At::Quoted {
            return Err(Self::bad(
                self.record_line,
                "a quoted field is never closed",
            ));
        }
        Ok(self.starts.unwrap_or_default())
    }
}

/// A reader that passes its bytes through the structure check on their way to the `csv`
/// crate: a file too large to read whole is held to the same dialect as a supplied one. A
/// violation is an `InvalidData` error carrying the [`Malformed`] (see [`malformed`]).
pub struct Checked<R> {
    inner: R,
    structure: Option<Structure>,
    /// Whether the first bytes were read (a byte-order mark there is the file's, not a cell's:
    /// the `csv` crate skips it, and so does the check).
    started: bool,
}

impl<R: std::io::Read> Checked<R> {
    pub fn new(inner: R) -> Checked<R> {
        Checked {
            inner,
            structure: Some(Structure::new(false)),
            started: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let invalid = |m: Malformed| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        match (n, &mut self.structure) {
            (0, s) => {
                if let Some(s) = s.take() {
                    s.finish().map_err(invalid)?;
                }
            }
            (n, Some(s)) => {
                let first = !std::mem::replace(&mut self.started, true);
                let skip = if first && buf[..n].starts_with("\u{feff}".as_bytes()) {
                    3
                } else {
                    0
                };
                s.feed(&buf[skip..n]).map_err(invalid)?
            }
            (_, None) => {}
        }
        Ok(n)
    }
}

/// The structure problem a [`Checked`] reader met, if that is why the `csv` crate failed.
pub fn malformed(e: &csv::Error) -> Option<&Malformed> {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.get_ref()?.downcast_ref::<Malformed>(),
        _ => None,
    }
}

/// What forbidden character `text` holds, in words (`None` when clean): a NUL or any other
/// control character (a tab or a line break inside a cell included: no field of the
/// catalogue holds one), or a bidirectional-text control that could make a cell read other
/// than it is.
pub fn forbidden_char(text: &str) -> Option<String> {
    let c = text.chars().find(|c| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })?;
    Some(match c {
        '\0' => "a NUL character".to_owned(),
        c if c.is_control() => format!("a control character (U+{:04X})", u32::from(c)),
        c => format!("a text-direction control (U+{:04X})", u32::from(c)),
    })
}

/// Whether the whole cell is a number (`-3`, `12`, `0.5`): a spreadsheet reads it as a value,
/// never as a formula, so it is written as it is.
pub fn is_number(cell: &str) -> bool {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A cell as it goes into a file people open in a spreadsheet: a text cell that would start a
/// formula (`=`, `+`, `-`, `@`, a tab, a carriage return) gets a leading `'`, so a spreadsheet
/// shows it as text and never runs it (`=HYPERLINK(…)` in a supplied extraction stays inert);
/// a number (a relative day count of `-3`) stays as it is.
pub fn for_spreadsheet(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if !is_number(cell) => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-byte check the streaming one replaced, kept as the oracle.
    fn reference(text: &str) -> Result<Vec<usize>, Malformed> {
        #[derive(Clone, Copy, PartialEq)]
        enum At {
            FieldStart,
            Unquoted,
            Quoted,
            QuoteInQuoted,
        }
        let bad = |line, problem: &str| Malformed {
            line,
            column: None,
            problem: problem.to_owned(),
        };
        let bytes = text.as_bytes();
        let (mut at, mut line, mut record_line) = (At::FieldStart, 1, 1);
        let mut starts = Vec::new();
        let mut between_records = true;
        for (i, &b) in bytes.iter().enumerate() {
            if between_records {
                let blank = b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n'));
                if !blank {
                    starts.push(line);
                    record_line = line;
                    between_records = false;
                }
            }
            at = match (at, b) {
                (At::Quoted, b'"') => At::QuoteInQuoted,
                (At::Quoted, b'\n') => {
                    line += 1;
                    At::Quoted
                }
                (At::Quoted, _) => At::Quoted,
                (At::QuoteInQuoted, b'"') => At::Quoted,
                (At::FieldStart, b'"') => At::Quoted,
                (At::Unquoted, b'"') => return Err(bad(line, "a quote inside an unquoted field")),
                (_, b',') => At::FieldStart,
                (_, b'\r') if bytes.get(i + 1) == Some(&b'\n') => at,
                (_, b'\r') => {
                    return Err(bad(
                        line,
                        "a carriage return that does not end a line (CRLF or LF only)",
                    ));
                }
                (_, b'\n') => {
                    line += 1;
                    between_records = true;
                    At::FieldStart
                }
                (At::QuoteInQuoted, _) => return Err(bad(line, "text after a closing quote")),
                (_, _) => At::Unquoted,
            };
        }
        if at == At::Quoted {
            return Err(bad(record_line, "a quoted field is never closed"));
        }
        Ok(starts)
    }

    /// The streaming check, fed whole or in pieces of any size, finds what the per-byte one
    /// finds, on every short text of the characters that matter (and one that does not).
    #[test]
    fn the_streaming_check_agrees_with_the_per_byte_one() {
        let alphabet = [b'a', b',', b'"', b'\r', b'\n'];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 14) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % 5) as usize] as char)
                .collect();
            let expected = reference(&text);
            assert_eq!(structure(&text), expected, "{text:?}");
            for piece in [1, 2, 3, 5] {
                let mut s = Structure::new(true);
                let fed = text.as_bytes().chunks(piece).try_for_each(|c| s.feed(c));
                let got = fed.and_then(|()| s.finish());
                assert_eq!(got, expected, "{text:?} in pieces of {piece}");
            }
        }
    }

    fn cells(sheet: &Sheet) -> Vec<Vec<&str>> {
        sheet
            .records
            .iter()
            .map(|r| r.cells.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn rfc_4180_with_lines_of_each_record() {
        let s = read("\u{feff}a,\"b \"\"q\"\", c\"\r\n\r\n1,\"\"\n").unwrap();
        assert_eq!(cells(&s), [vec!["a", "b \"q\", c"], vec!["1", ""]]);
        assert_eq!(
            s.records.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 3],
            "a blank line is skipped but counted"
        );
        let s = read("a,b\n\n1,2\n\r\n\n3,4\r\n4,5").unwrap();
        assert_eq!(
            s.records.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 3, 6, 7]
        );
    }

    #[test]
    fn stray_quotes_and_bare_carriage_returns_refuse_the_file() {
        let problem = |t: &str| read(t).unwrap_err()[0].to_string();
        assert_eq!(
            problem("a\n\"open,1\n2\n"),
            "line 2: a quoted field is never closed"
        );
        assert_eq!(
            problem("a,b\nx\"y,1\n"),
            "line 2: a quote inside an unquoted field"
        );
        assert_eq!(
            problem("a,b\n\"x\"y,1\n"),
            "line 2: text after a closing quote"
        );
        assert!(problem("a,b\r1,2\n").contains("carriage return"));
    }

    #[test]
    fn control_characters_in_cells_are_named_by_line_and_column_only() {
        let e = read("a,b\nsecret\0name,ok\nx,\"two\nlines\"\ny,\u{202e}evil\n").unwrap_err();
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 2, column 1: the cell holds a NUL character",
                "line 3, column 2: the cell holds a control character (U+000A)",
                "line 5, column 2: the cell holds a text-direction control (U+202E)",
            ]
        );
        assert!(!shown.concat().contains("secret"));
    }

    #[test]
    fn formulas_are_defused_and_numbers_kept() {
        assert_eq!(
            for_spreadsheet("=HYPERLINK(\"http://x\",\"y\")"),
            "'=HYPERLINK(\"http://x\",\"y\")"
        );
        for (cell, out) in [
            ("+1+1", "'+1+1"),
            ("-1-1", "'-1-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("-3", "-3"),
            ("-0.5", "-0.5"),
            ("12", "12"),
            ("Rīga", "Rīga"),
            ("a=b", "a=b"),
            ("", ""),
            ("-", "'-"),
            ("-3.", "'-3."),
        ] {
            assert_eq!(for_spreadsheet(cell), out, "{cell:?}");
        }
    }

    #[test]
    fn the_writer_quotes_what_it_must() {
        let mut w = writer(Vec::new());
        w.write_record(["a", "b,c", "d\"e", "'=1"]).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text, "a,\"b,c\",\"d\"\"e\",'=1\n");
        assert_eq!(
            cells(&read(&text).unwrap()),
            [vec!["a", "b,c", "d\"e", "'=1"]]
        );
    }
}
