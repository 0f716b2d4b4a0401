//! The multi-line text being written in the compose box, with its cursor.
//!
//! Hand-rolled rather than `tui-textarea` (which trails ratatui's releases):
//! a reply box needs little — insert, delete, move — but it must place the
//! cursor right after CJK and emoji, which it does through [`crate::wrap`].

use crate::wrap::char_width;

/// Text plus a cursor, which is a byte offset always on a `char` boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buffer {
    text: String,
    cursor: usize,
}

impl Buffer {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether there is something worth sending (not only blanks).
    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    /// Replaces the whole text, cursor at its end.
    pub fn set(&mut self, text: &str) {
        self.text = text.to_owned();
        self.cursor = self.text.len();
    }

    /// Empties the buffer, returning what it held.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    pub fn insert(&mut self, ch: char) {
        self.text.insert(self.cursor, ch);
        self.cursor += ch.len_utf8();
    }

    /// Inserts pasted or canned text; line breaks are normalised to `\n`.
    pub fn insert_str(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        self.text.insert_str(self.cursor, &text);
        self.cursor += text.len();
    }

    pub fn backspace(&mut self) {
        if let Some(ch) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= ch.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        if let Some(ch) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= ch.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(ch) = self.text[self.cursor..].chars().next() {
            self.cursor += ch.len_utf8();
        }
    }

    /// To the start of the current line.
    pub fn home(&mut self) {
        self.cursor = self.line_start(self.cursor);
    }

    /// To the end of the current line.
    pub fn end(&mut self) {
        self.cursor = self.line_end(self.cursor);
    }

    /// One line up, keeping the column as far as the line allows.
    pub fn up(&mut self) {
        let start = self.line_start(self.cursor);
        if start == 0 {
            self.cursor = 0;
            return;
        }
        let column = self.text[start..self.cursor].chars().count();
        let above = self.line_start(start - 1);
        self.cursor = self.advance(above, column);
    }

    /// One line down, keeping the column as far as the line allows.
    pub fn down(&mut self) {
        let end = self.line_end(self.cursor);
        if end == self.text.len() {
            self.cursor = end;
            return;
        }
        let column = self.text[self.line_start(self.cursor)..self.cursor]
            .chars()
            .count();
        self.cursor = self.advance(end + 1, column);
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self, at: usize) -> usize {
        self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i)
    }

    /// `columns` characters on from `start`, stopping at the line's end.
    fn advance(&self, start: usize, columns: usize) -> usize {
        let end = self.line_end(start);
        self.text[start..end]
            .char_indices()
            .nth(columns)
            .map_or(end, |(i, _)| start + i)
    }

    /// The text cut into rows of `width` columns (hard wrap, no word breaks,
    /// so the cursor's row never moves as a word grows), and the cursor's
    /// (row, column).
    pub fn layout(&self, width: usize) -> (Vec<String>, (usize, usize)) {
        let width = width.max(2);
        let mut rows = vec![String::new()];
        let mut used = 0;
        let mut cursor = (0, 0);
        for (i, ch) in self.text.char_indices() {
            if i == self.cursor {
                cursor = (rows.len() - 1, used);
            }
            if ch == '\n' {
                rows.push(String::new());
                used = 0;
                continue;
            }
            let w = char_width(ch);
            if used + w > width {
                rows.push(String::new());
                used = 0;
            }
            if let Some(row) = rows.last_mut() {
                row.push(ch);
            }
            used += w;
        }
        if self.cursor >= self.text.len() {
            cursor = (rows.len() - 1, used);
        }
        // A cursor just past a full row shows at the start of the next one.
        if cursor.1 >= width {
            rows.push(String::new());
            cursor = (rows.len() - 1, 0);
        }
        (rows, cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Buffer {
        let mut buffer = Buffer::default();
        text.chars().for_each(|ch| buffer.insert(ch));
        buffer
    }

    #[test]
    fn edits_at_the_cursor_across_multibyte_characters() {
        let mut buffer = typed("你好");
        buffer.left();
        buffer.insert('们');
        assert_eq!(buffer.text(), "你们好");
        buffer.backspace();
        buffer.delete();
        assert_eq!(buffer.text(), "你");
        buffer.home();
        buffer.delete();
        assert!(buffer.is_empty());
    }

    #[test]
    fn up_and_down_keep_the_column() {
        let mut buffer = typed("first line\nab\nthird");
        buffer.up();
        buffer.up();
        buffer.insert('X');
        assert_eq!(buffer.text(), "fiXrst line\nab\nthird");
        buffer.down();
        buffer.insert('Y');
        assert_eq!(buffer.text(), "fiXrst line\nabY\nthird");
        buffer.down();
        buffer.end();
        buffer.insert('!');
        assert_eq!(buffer.text(), "fiXrst line\nabY\nthird!");
    }

    #[test]
    fn layout_places_the_cursor_by_display_width() {
        let buffer = typed("ab你好");
        let (rows, cursor) = buffer.layout(5);
        assert_eq!(rows, ["ab你", "好"]);
        assert_eq!(cursor, (1, 2));
        let (rows, cursor) = typed("abcd").layout(4);
        assert_eq!(rows, ["abcd", ""]);
        assert_eq!(cursor, (1, 0));
    }

    #[test]
    fn pasted_line_breaks_are_normalised() {
        let mut buffer = Buffer::default();
        buffer.insert_str("a\r\nb\rc");
        assert_eq!(buffer.text(), "a\nb\nc");
    }
}
