//! The multi-line text being written in the compose box, with its cursor.
//!
//! Hand-rolled rather than `tui-textarea` (which trails ratatui's releases):
//! a reply box needs little — insert, delete, move — but it must place the
//! cursor right after CJK and emoji, which it does through [`crate::wrap`].
//!
//! The cursor moves and deletes by grapheme cluster, so a flag or an emoji
//! sequence is never half deleted (which would leave a stray `🇳` in the
//! reply). Readline's line and word keys are here too.

use unicode_segmentation::UnicodeSegmentation;

use crate::wrap::{graphemes, shown};

/// Text plus a cursor, which is a byte offset always on a grapheme boundary.
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

    /// Inserts pasted or canned text; line breaks are normalised to `\n`
    /// and other control characters dropped (a terminal's escapes or a
    /// U+0000, which the relay refuses in any frame, would fail the send).
    pub fn insert_str(&mut self, text: &str) {
        let text: String = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter(|&ch| !ch.is_control() || ch == '\n' || ch == '\t')
            .collect();
        self.text.insert_str(self.cursor, &text);
        self.cursor += text.len();
    }

    pub fn backspace(&mut self) {
        let start = self.previous_boundary();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    pub fn delete(&mut self) {
        let end = self.next_boundary();
        self.text.replace_range(self.cursor..end, "");
    }

    pub fn left(&mut self) {
        self.cursor = self.previous_boundary();
    }

    pub fn right(&mut self) {
        self.cursor = self.next_boundary();
    }

    /// Ctrl-W: deletes back to the start of the word before the cursor
    /// (words end at whitespace, as readline's `unix-word-rubout`).
    pub fn delete_word_back(&mut self) {
        let start = self.word_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Alt-b: to the start of this word, or of the one before.
    pub fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    /// Alt-f: to the end of this word, or of the next one.
    pub fn word_right(&mut self) {
        let rest = &self.text[self.cursor..];
        let word = rest.trim_start();
        let skipped = rest.len() - word.len();
        let end = word.find(char::is_whitespace).unwrap_or(word.len());
        self.cursor += skipped + end;
    }

    /// Ctrl-U: deletes to the start of the line; at the start of a line,
    /// joins it to the one above.
    pub fn kill_to_line_start(&mut self) {
        let start = match self.line_start(self.cursor) {
            start if start == self.cursor => start.saturating_sub(1),
            start => start,
        };
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-K: deletes to the end of the line; at the end of a line, joins
    /// the next one to it.
    pub fn kill_to_line_end(&mut self) {
        let end = match self.line_end(self.cursor) {
            end if end == self.cursor && end < self.text.len() => end + 1,
            end => end,
        };
        self.text.replace_range(self.cursor..end, "");
    }

    fn previous_boundary(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(at, _)| at)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    /// Where the word before the cursor starts, whitespace before the
    /// cursor skipped first.
    fn word_start(&self) -> usize {
        let before = self.text[..self.cursor].trim_end();
        before
            .trim_end_matches(|ch: char| !ch.is_whitespace())
            .len()
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
        let column = self.text[start..self.cursor].graphemes(true).count();
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
            .graphemes(true)
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

    /// `columns` symbols on from `start`, stopping at the line's end.
    fn advance(&self, start: usize, columns: usize) -> usize {
        let end = self.line_end(start);
        self.text[start..end]
            .grapheme_indices(true)
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
        let mut at = 0;
        for (symbol, w) in graphemes(&self.text) {
            if at == self.cursor {
                cursor = (rows.len() - 1, used);
            }
            at += symbol.len();
            if symbol == "\n" {
                rows.push(String::new());
                used = 0;
                continue;
            }
            if used + w > width {
                rows.push(String::new());
                used = 0;
            }
            if let Some(row) = rows.last_mut() {
                row.push_str(&shown(symbol));
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

    /// Issue 16, repro 6: backspace after a flag removes the whole flag;
    /// a lone regional indicator is never left behind.
    #[test]
    fn emoji_sequences_are_edited_as_one_symbol() {
        let mut buffer = typed("ok 🇨🇳");
        buffer.backspace();
        assert_eq!(buffer.text(), "ok ");
        let family = "👨\u{200d}👩\u{200d}👧";
        let mut buffer = typed(&format!("a{family}b"));
        buffer.left();
        buffer.left();
        buffer.delete();
        assert_eq!(buffer.text(), "ab");
        let (rows, cursor) = typed(&format!("ab🇨🇳{family}")).layout(4);
        assert_eq!(rows, ["ab", "[CN]", family], "a flag is drawn as letters");
        assert_eq!(cursor, (2, 2));
    }

    #[test]
    fn readline_line_and_word_keys() {
        let mut buffer = typed("hello big world");
        buffer.delete_word_back();
        assert_eq!(buffer.text(), "hello big ");
        buffer.word_left();
        buffer.word_left();
        buffer.insert('_');
        assert_eq!(buffer.text(), "_hello big ");
        buffer.word_right();
        buffer.insert('!');
        assert_eq!(buffer.text(), "_hello! big ");
        buffer.kill_to_line_end();
        assert_eq!(buffer.text(), "_hello!");
        buffer.left();
        buffer.kill_to_line_start();
        assert_eq!(buffer.text(), "!");

        let mut buffer = typed("one\ntwo");
        buffer.home();
        buffer.kill_to_line_start();
        assert_eq!(buffer.text(), "onetwo", "at a line's start, joins lines");
        buffer.kill_to_line_end();
        assert_eq!(buffer.text(), "one");
        let mut buffer = typed("one\ntwo");
        buffer.up();
        buffer.end();
        buffer.kill_to_line_end();
        assert_eq!(buffer.text(), "onetwo", "at a line's end, joins lines");
    }

    #[test]
    fn pasted_line_breaks_are_normalised_and_controls_dropped() {
        let mut buffer = Buffer::default();
        buffer.insert_str("a\r\nb\rc\0\u{1b}[2J\td");
        assert_eq!(buffer.text(), "a\nb\nc[2J\td");
    }
}
