//! Positions in a source file: from the YAML parser's (character index, line, column) to
//! byte offsets and 1-based columns, and back from a byte offset.

use crate::diagnostic::Span;

/// A file's text with the byte offset of each line start.
pub struct SourceText<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText { text, line_starts }
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

    /// A span from two parser positions (1-based line, 0-based char column).
    pub fn span(&self, start: (usize, usize), end: (usize, usize)) -> Span {
        let s = self.offset(start.0, start.1);
        let e = self.offset(end.0, end.1).max(s);
        self.span_bytes(s, e)
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
    fn offsets_count_characters_not_bytes() {
        let src = SourceText::new("a: 1\nnosaukums: Pētījums\nc: 3\n");
        assert_eq!(src.offset(2, 11), "a: 1\nnosaukums: ".len());
        let after_e = "a: 1\nnosaukums: Pē".len();
        assert_eq!(src.offset(2, 13), after_e);
        assert_eq!(src.line_col(after_e), (2, 14));
        assert_eq!(src.line_col(0), (1, 1));
    }
}
