//! OSC 8 hyperlinks over text already drawn. A ratatui cell holds one
//! symbol, not an escape sequence around several, so after a draw the
//! terminal loop finds where a link's address landed on the screen and
//! writes the same characters there again inside `ESC ] 8 ; ; URL BEL` …
//! `ESC ] 8 ; ; BEL`: the screen looks the same (ratatui's idea of it stays
//! true) and terminals that know OSC 8 make it a link to the whole address,
//! even where the status line cut it short.

use ratatui::buffer::Buffer;

/// Where some of `url` is drawn in `buffer`: the cell it starts at and the
/// text shown there (all of it, or the start that fitted on its row).
#[derive(Debug, PartialEq, Eq)]
pub struct Drawn {
    pub x: u16,
    pub y: u16,
    pub text: String,
}

/// The shortest start of an address worth linking: the scheme and a bit.
const MIN_SHOWN: usize = 10;

/// Finds `url`, or the longest start of it that fits, on one row of
/// `buffer`. None for an address that is not plain printable ASCII (it
/// would end the escape sequence early), or that is not on the screen.
pub fn find(buffer: &Buffer, url: &str) -> Option<Drawn> {
    if url.is_empty() || !url.bytes().all(|byte| byte.is_ascii_graphic()) {
        return None;
    }
    let area = buffer.area;
    (area.top()..area.bottom()).find_map(|y| {
        let row: String = (area.left()..area.right())
            .map(|x| single_char(buffer[(x, y)].symbol()))
            .collect();
        let shown = (MIN_SHOWN.min(url.len())..=url.len())
            .rev()
            .find_map(|len| row.find(&url[..len]).map(|at| (at, len)))?;
        let (at, len) = shown;
        Some(Drawn {
            x: area.left() + u16::try_from(at).ok()?,
            y,
            text: url[..len].to_owned(),
        })
    })
}

/// A cell's symbol as one character for searching: an ASCII address only
/// matches ASCII cells, so anything wider becomes a character no address has.
fn single_char(symbol: &str) -> char {
    let mut chars = symbol.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => c,
        _ => '\u{7f}',
    }
}

/// The bytes that write `drawn` again as a link to `url`, leaving the
/// cursor where it was.
pub fn sequence(drawn: &Drawn, url: &str) -> String {
    format!(
        "\x1b7\x1b[{};{}H\x1b]8;;{url}\x07{}\x1b]8;;\x07\x1b8",
        u32::from(drawn.y) + 1,
        u32::from(drawn.x) + 1,
        drawn.text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://relay.test/assist#code=a1.x.y";

    #[test]
    fn a_whole_address_is_found_where_it_is_drawn() {
        let buffer = Buffer::with_lines([
            "queue",
            "screen share: open once within 2 min: http://relay.test/assist#code=a1.x.y",
        ]);
        let drawn = find(&buffer, URL).expect("on screen");
        assert_eq!(
            drawn,
            Drawn {
                x: 38,
                y: 1,
                text: URL.to_owned()
            }
        );
        assert_eq!(
            sequence(&drawn, URL),
            format!("\x1b7\x1b[2;39H\x1b]8;;{URL}\x07{URL}\x1b]8;;\x07\x1b8")
        );
    }

    #[test]
    fn a_cut_address_links_what_is_shown_to_the_whole_address() {
        let buffer = Buffer::with_lines(["share: http://relay.test/assist#co…"]);
        let drawn = find(&buffer, URL).expect("its start is on screen");
        assert_eq!(
            (drawn.x, drawn.text.as_str()),
            (7, "http://relay.test/assist#co")
        );
        assert!(sequence(&drawn, URL).contains(&format!("\x1b]8;;{URL}\x07")));
    }

    #[test]
    fn no_link_for_an_address_not_shown_or_not_plain() {
        let buffer = Buffer::with_lines(["nothing to see here"]);
        assert_eq!(find(&buffer, URL), None);
        let shown = Buffer::with_lines(["http://evil.test/\u{7}x"]);
        assert_eq!(find(&shown, "http://evil.test/\u{7}x"), None);
    }
}
