//! Line wrapping by display width.
//!
//! A CJK character or an emoji takes two terminal columns, a combining mark
//! none; counting `char`s would overflow rows and misplace the cursor. The
//! history view needs the exact number of rows a message takes (to scroll by
//! rows and to know when the top is reached), so wrapping is done here rather
//! than left to the widget.
//!
//! The unit is the grapheme cluster, measured as a whole — the way ratatui
//! fills its cells and modern terminals draw: a flag (two regional
//! indicators), a ZWJ family, a skin-toned hand or a `❤️` (VS16) is one
//! two-column symbol. Measuring `char` by `char` would count a ZWJ family as
//! six columns and could break a flag between rows, leaving a stray `🇳`.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Columns `text` takes on screen.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// The symbols `text` is drawn as (grapheme clusters), with their columns.
/// Clusters of no width (a stray combining mark) count as nothing.
pub fn graphemes(text: &str) -> impl Iterator<Item = (&str, usize)> {
    text.graphemes(true).map(|g| (g, width(g)))
}

/// Splits `text` into rows of at most `max` columns. Explicit newlines are
/// kept; a row breaks after the last space that fits, or inside a word when
/// none does (CJK text has no spaces). Always returns at least one row.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut rows = Vec::new();
    for paragraph in text.split('\n') {
        wrap_paragraph(paragraph, max, &mut rows);
    }
    rows
}

fn wrap_paragraph(paragraph: &str, max: usize, rows: &mut Vec<String>) {
    let mut row = String::new();
    let mut row_width = 0;
    // Byte index in `row` just after its last space, and the width up to it.
    let mut last_space: Option<(usize, usize)> = None;
    for (symbol, w) in graphemes(paragraph) {
        if row_width + w > max && !row.is_empty() {
            match last_space {
                Some((at, width_before)) if at < row.len() => {
                    let rest = row.split_off(at);
                    rows.push(row.trim_end().to_owned());
                    row = rest;
                    row_width -= width_before;
                }
                _ => {
                    rows.push(std::mem::take(&mut row).trim_end().to_owned());
                    row_width = 0;
                }
            }
            last_space = None;
            if symbol == " " {
                // A space at a break point is the break itself.
                continue;
            }
        }
        row.push_str(symbol);
        row_width += w;
        if symbol == " " {
            last_space = Some((row.len(), row_width));
        }
    }
    rows.push(row);
}

/// Cuts `text` to at most `max` columns, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for (symbol, w) in graphemes(text) {
        if used + w + 1 > max {
            break;
        }
        out.push_str(symbol);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_at_spaces() {
        assert_eq!(wrap("the quick brown fox", 10), ["the quick", "brown fox"]);
    }

    #[test]
    fn breaks_long_words_and_keeps_newlines() {
        assert_eq!(wrap("abcdefgh\nij", 3), ["abc", "def", "gh", "ij"]);
    }

    #[test]
    fn cjk_counts_two_columns_and_never_splits_a_character() {
        let rows = wrap("你好世界和平", 5);
        assert_eq!(rows, ["你好", "世界", "和平"]);
        assert!(rows.iter().all(|row| width(row) <= 5));
    }

    #[test]
    fn emoji_wrap_by_width() {
        let rows = wrap("ok 👍👍👍", 4);
        assert_eq!(rows, ["ok", "👍👍", "👍"]);
    }

    /// Issue 16, repro 6: a flag must never be cut in two (a lone `🇳`
    /// left at the start of a row), and emoji sequences are one symbol of
    /// two columns, as ratatui draws them.
    #[test]
    fn emoji_sequences_are_never_split_and_take_two_columns() {
        let flag = "🇨🇳";
        assert_eq!(wrap(&format!("abc{flag}{flag}"), 4), ["abc", "🇨🇳🇨🇳"]);
        assert_eq!(wrap(&format!("a{flag}{flag}"), 4), ["a🇨🇳", "🇨🇳"]);
        for sequence in [
            "👨\u{200d}👩\u{200d}👧",
            "👋🏽",
            "❤\u{fe0f}",
            "🏳\u{fe0f}\u{200d}🌈",
        ] {
            let rows = wrap(&format!("{sequence}{sequence}{sequence}"), 5);
            assert_eq!(
                rows,
                [sequence.repeat(2), sequence.to_owned()],
                "{sequence}"
            );
        }
        assert_eq!(truncate("🇨🇳🇨🇳🇨🇳", 4), "🇨🇳…");
    }

    #[test]
    fn truncates_by_width_with_an_ellipsis() {
        assert_eq!(truncate("你好世界", 5), "你好…");
        assert_eq!(truncate("short", 10), "short");
    }
}
