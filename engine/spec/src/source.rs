//! Positions in a source file: from the YAML parser's (character index, line, column) to
//! byte offsets and 1-based columns, and back from a byte offset.

use crate::diagnostic::Span;

/// A file's text with the byte offset of each line start.
pub struct SourceText<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// In ASCII text a character index is a byte offset, which spares a walk per position.
    ascii: bool,
    /// Per line: whether it is ASCII, so a column is its byte count.
    ascii_lines: Vec<bool>,
}

impl<'a> SourceText<'a> {
    pub fn new(text: &'a str) -> Self {
        // One pass over the bytes: line starts, and which lines are ASCII.
        let mut line_starts = vec![0];
        let mut ascii_lines = Vec::new();
        let mut line_ascii = true;
        for (i, &b) in text.as_bytes().iter().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
                ascii_lines.push(line_ascii);
                line_ascii = true;
            } else if b >= 0x80 {
                line_ascii = false;
            }
        }
        ascii_lines.push(line_ascii);
        let ascii = ascii_lines.iter().all(|&a| a);
        SourceText {
            text,
            line_starts,
            ascii,
            ascii_lines,
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Byte offset of a (1-based line, 0-based character column) position, clamped to the
    /// line's end.
    pub fn offset(&self, line: usize, char_col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let line_ascii = self.ascii
            || self
                .ascii_lines
                .get(line.saturating_sub(1))
                .copied()
                .unwrap_or(false);
        if line_ascii {
            let end = self
                .line_starts
                .get(line)
                .map_or(self.text.len(), |&next| next - 1);
            return (start + char_col).min(end.max(start));
        }
        let rest = &self.text[start..];
        let line_text = rest.split('\n').next().unwrap_or("");
        start
            + line_text
                .char_indices()
                .nth(char_col)
                .map_or(line_text.len(), |(i, _)| i)
    }

    /// (1-based line, 1-based character column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line_idx + 1, col + 1)
    }

    /// A span from two parser positions: (character index, 1-based line, 0-based character
    /// column). Lines and columns are taken as the parser counted them.
    pub fn span(&self, start: (usize, usize, usize), end: (usize, usize, usize)) -> Span {
        let byte = |(index, line, col): (usize, usize, usize)| {
            if self.ascii {
                index.min(self.text.len())
            } else {
                self.offset(line, col)
            }
        };
        let s = byte(start);
        let e = byte(end).max(s);
        let (end_line, end_col) = if e == s {
            (start.1, start.2)
        } else {
            (end.1, end.2)
        };
        Span {
            start: s,
            end: e,
            line: start.1,
            column: start.2 + 1,
            end_line,
            end_column: end_col + 1,
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
    fn parser_positions_become_byte_spans() {
        let text = "a: 1\nb: Pē x\n";
        let src = SourceText::new(text);
        // `x` is character 11, line 2, column 6 (0-based).
        let s = src.span((11, 2, 6), (12, 2, 7));
        assert_eq!(&text[s.start..s.end], "x");
        assert_eq!((s.line, s.column, s.end_line, s.end_column), (2, 7, 2, 8));
        let ascii = SourceText::new("a: 1\nb: xy\n");
        let s = ascii.span((8, 2, 3), (10, 2, 5));
        assert_eq!((s.start, s.end), (8, 10));
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let src = SourceText::new("a: 1\nnosaukums: Pētījums\nc: 3\n");
        assert_eq!(src.offset(2, 11), "a: 1\nnosaukums: ".len());
        let after_e = "a: 1\nnosaukums: Pē".len();
        assert_eq!(src.offset(2, 13), after_e);
        assert_eq!(src.line_col(after_e), (2, 14));
        assert_eq!(src.line_col(0), (1, 1));
    }
}
