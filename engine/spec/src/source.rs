//! Positions in a source file: from the YAML parser's (character index, line, column) to
//! byte offsets and 1-based columns, and back from a byte offset.

use crate::diagnostic::Span;

/// A file's text with, per line, where it starts in bytes and in characters.
///
/// Lines end at `\n` only. Positions from the parser are converted by their character index
/// alone, so a line break the parser counts differently (a lone `\r`) or a position past the
/// last line cannot make the formats disagree: every line and column is this table's.
pub struct SourceText<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// Characters before each line.
    line_char_starts: Vec<usize>,
    /// Per line: whether it is ASCII, so a column is its byte count.
    ascii_lines: Vec<bool>,
    /// The line of the last position asked for: the parser asks in order, so the next answer
    /// is usually on it or the next line.
    last_line: std::cell::Cell<usize>,
}

impl<'a> SourceText<'a> {
    pub fn new(text: &'a str) -> Self {
        // Line by line with the library's SIMD-backed searches; characters are counted only
        // on lines that are not ASCII.
        let bytes = text.as_bytes();
        let lines_hint = bytes.len() / 32 + 1;
        let mut line_starts = Vec::with_capacity(lines_hint);
        let mut line_char_starts = Vec::with_capacity(lines_hint);
        let mut ascii_lines = Vec::with_capacity(lines_hint);
        let (mut start, mut chars) = (0usize, 0usize);
        loop {
            let end = text[start..].find('\n').map_or(bytes.len(), |i| start + i);
            let line = &bytes[start..end];
            let ascii = line.is_ascii();
            line_starts.push(start);
            line_char_starts.push(chars);
            ascii_lines.push(ascii);
            chars += if ascii {
                line.len()
            } else {
                line.iter().filter(|&&b| b & 0xC0 != 0x80).count()
            };
            if end == bytes.len() {
                break;
            }
            chars += 1; // the `\n`
            start = end + 1;
        }
        SourceText {
            text,
            line_starts,
            line_char_starts,
            ascii_lines,
            last_line: std::cell::Cell::new(0),
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The byte offset where the line holding `offset` ends (its `\n`, or the end of the text).
    pub fn end_of_line(&self, offset: usize) -> usize {
        let line_idx = match self.line_starts.binary_search(&offset.min(self.text.len())) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        self.line_end(line_idx)
    }

    fn line_end(&self, line_idx: usize) -> usize {
        self.line_starts
            .get(line_idx + 1)
            .map_or(self.text.len(), |&next| next - 1)
    }

    /// Characters on line `line_idx`, without its `\n`.
    fn line_char_len(&self, line_idx: usize) -> usize {
        let next = self.line_char_starts.get(line_idx + 1).map_or_else(
            || {
                self.line_char_starts[line_idx]
                    + self.text[self.line_starts[line_idx]..].chars().count()
            },
            |&n| n - 1,
        );
        next - self.line_char_starts[line_idx]
    }

    /// The line holding a character index.
    fn line_of_char(&self, char_index: usize) -> usize {
        let starts = &self.line_char_starts;
        let on =
            |i: usize| starts[i] <= char_index && starts.get(i + 1).is_none_or(|&n| char_index < n);
        let hint = self.last_line.get();
        if hint < starts.len() && on(hint) {
            return hint;
        }
        if hint + 1 < starts.len() && on(hint + 1) {
            return hint + 1;
        }
        match starts.binary_search(&char_index) {
            Ok(i) => i,
            Err(i) => i - 1,
        }
    }

    /// (byte offset, 1-based line, 1-based column) of a character index.
    pub fn position(&self, char_index: usize) -> (usize, usize, usize) {
        let line_idx = self.line_of_char(char_index);
        self.last_line.set(line_idx);
        let start = self.line_starts[line_idx];
        let end = self.line_end(line_idx);
        let col = char_index - self.line_char_starts[line_idx];
        let byte = if self.ascii_lines[line_idx] {
            (start + col).min(end.max(start))
        } else {
            let line_text = &self.text[start..end.max(start)];
            start
                + line_text
                    .char_indices()
                    .nth(col)
                    .map_or(line_text.len(), |(i, _)| i)
        };
        // The column counts characters, which `col` already is (clamped to the line).
        let col = col.min(self.line_char_len(line_idx));
        (byte, line_idx + 1, col + 1)
    }

    /// (1-based line, 1-based character column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx];
        let col = if self.ascii_lines[line_idx] {
            offset - start
        } else {
            self.text
                .get(start..offset)
                .map_or(0, |s| s.chars().count())
        };
        (line_idx + 1, col + 1)
    }

    /// A span between two character indices from the parser.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let (s, line, column) = self.position(start);
        let (e, end_line, end_column) = self.position(end.max(start));
        Span {
            start: s,
            end: e,
            line,
            column,
            end_line,
            end_column,
        }
    }

    /// A span from byte offsets.
    pub fn span_bytes(&self, start: usize, end: usize) -> Span {
        let (line, column) = self.line_col(start);
        let (end_line, end_column) = self.line_col(end);
        Span {
            start,
            end,
            line,
            column,
            end_line,
            end_column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_indices_become_byte_spans() {
        let text = "a: 1\nb: Pē x\n";
        let src = SourceText::new(text);
        // `x` is character 11.
        let s = src.span(11, 12);
        assert_eq!(&text[s.start..s.end], "x");
        assert_eq!((s.line, s.column, s.end_line, s.end_column), (2, 7, 2, 8));
        let ascii = SourceText::new("a: 1\nb: xy\n");
        let s = ascii.span(8, 10);
        assert_eq!((s.start, s.end, s.line, s.column), (8, 10, 2, 4));
    }

    #[test]
    fn positions_past_the_end_stay_on_the_last_line() {
        let src = SourceText::new("a: 1\n-1");
        // Seven bytes; the end of the file is line 2, column 3.
        assert_eq!(src.position(7), (7, 2, 3));
        assert_eq!(src.position(99), (7, 2, 3));
    }

    #[test]
    fn a_lone_carriage_return_is_not_a_line_break() {
        let src = SourceText::new("a: 1\rbogus: 1\r");
        assert_eq!(src.position(5), (5, 1, 6));
    }

    #[test]
    fn byte_offsets_map_back_to_lines_and_columns() {
        let src = SourceText::new("a: 1\nnosaukums: Pētījums\nc: 3\n");
        let after_e = "a: 1\nnosaukums: Pē".len();
        assert_eq!(src.line_col(after_e), (2, 14));
        assert_eq!(src.line_col(0), (1, 1));
    }
}
