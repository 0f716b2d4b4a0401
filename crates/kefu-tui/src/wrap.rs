//! Line wrapping by display width.
//!
//! A CJK character or an emoji takes two terminal columns, a combining mark
//! none; counting `char`s would overflow rows and misplace the cursor. The
//! history view needs the exact number of rows a message takes (to scroll by
//! rows and to know when the top is reached), so wrapping is done here rather
//! than left to the widget.
//!
//! The unit is the grapheme cluster, measured as a whole — the way ratatui
//! fills its cells — and never cut in two. Where terminals disagree with
//! that measure, a symbol is drawn in a form they all agree on
//! ([`shown`]): ratatui takes a flag (two regional indicators) for one
//! two-column cell and, when it later overwrites the first column, trusts
//! the terminal to clear the second; tmux 3.3 keeps a flag as two
//! one-column letters, so its second half stayed on screen as a stray `🇳`.

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Columns `text` takes on screen.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// The symbols `text` is drawn as (grapheme clusters), with the columns
/// each takes as [`shown`]. Clusters of no width (a stray combining mark)
/// count as nothing.
pub fn graphemes(text: &str) -> impl Iterator<Item = (&str, usize)> {
    text.graphemes(true).map(|g| (g, width(&shown(g))))
}

/// How one grapheme cluster is drawn. A flag becomes its region's letters
/// in brackets (`🇨🇳` → `[CN]`); the emoji presentation selector and
/// skin-tone modifiers are dropped (`❤️` → `❤`, `👋🏽` → `👋`), since tmux
/// 3.3 draws those one and four columns wide where ratatui counts two.
/// ZWJ sequences stay: tmux and modern terminals draw them two wide, as
/// counted.
pub fn shown(symbol: &str) -> Cow<'_, str> {
    let mut chars = symbol.chars();
    if let (Some(first), Some(second), None) = (chars.next(), chars.next(), chars.next())
        && let (Some(first), Some(second)) = (region_letter(first), region_letter(second))
    {
        return Cow::Owned(format!("[{first}{second}]"));
    }
    if symbol.chars().any(is_disputed) {
        Cow::Owned(symbol.chars().filter(|&ch| !is_disputed(ch)).collect())
    } else {
        Cow::Borrowed(symbol)
    }
}

/// `text` with every symbol as [`shown`].
pub fn plain(text: &str) -> String {
    text.graphemes(true).map(shown).collect()
}

/// `A`…`Z` for the regional indicator symbols 🇦…🇿.
fn region_letter(ch: char) -> Option<char> {
    let offset = u32::from(ch).checked_sub(0x1f1e6)?;
    (offset < 26).then(|| char::from(b'A' + offset as u8))
}

/// VS16 and the skin-tone modifiers.
fn is_disputed(ch: char) -> bool {
    matches!(ch, '\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}')
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
        row.push_str(&shown(symbol));
        row_width += w;
        if symbol == " " {
            last_space = Some((row.len(), row_width));
        }
    }
    rows.push(row);
}

/// Cuts `text` to at most `max` columns, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if graphemes(text).map(|(_, w)| w).sum::<usize>() <= max {
        return plain(text);
    }
    let mut out = String::new();
    let mut used = 0;
    for (symbol, w) in graphemes(text) {
        if used + w + 1 > max {
            break;
        }
        out.push_str(&shown(symbol));
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

    /// Issue 16, repro 6: no regional indicator reaches the screen, and
    /// ZWJ sequences are one symbol of two columns, never cut in two.
    #[test]
    fn flags_are_letters_and_sequences_are_never_split() {
        let flag = "🇨🇳";
        assert_eq!(wrap(&format!("ab{flag}{flag}"), 6), ["ab[CN]", "[CN]"]);
        assert_eq!(truncate(&format!("{flag}{flag}"), 6), "[CN]…");
        let family = "👨\u{200d}👩\u{200d}👧";
        let rows = wrap(&family.repeat(3), 5);
        assert_eq!(rows, [family.repeat(2), family.to_owned()]);
        assert_eq!(wrap("👋🏽👋🏽👋🏽", 5), ["👋👋", "👋"]);
        assert_eq!(wrap("❤\u{fe0f}❤\u{fe0f}❤\u{fe0f}", 2), ["❤❤", "❤"]);
        assert_eq!(plain("Ming 🇨🇳 👍🏿"), "Ming [CN] 👍");
        // Not a pair: a lone indicator is left as it is.
        assert_eq!(shown("🇨"), "🇨");
    }

    #[test]
    fn truncates_by_width_with_an_ellipsis() {
        assert_eq!(truncate("你好世界", 5), "你好…");
        assert_eq!(truncate("short", 10), "short");
    }
}
