//! The finder over the panes: a query line (search) or a title (resolved
//! conversations) over the list found, one row each, the chosen one
//! reversed; and the words of a search highlighted in a history.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{clock, dim};
use crate::app::App;
use crate::app::finder::Mode;
use crate::wrap::truncate;

pub(super) fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let finder = &app.finder;
    let outer = Rect::new(
        area.x + area.width / 10,
        area.y + 1,
        area.width - area.width / 5,
        area.height.saturating_sub(3),
    );
    let room = usize::from(outer.width.saturating_sub(4));
    let (title, first) = match finder.mode {
        Mode::Search => (
            " Search ",
            Line::from(vec![
                Span::styled("› ", dim()),
                Span::raw(finder.query.clone()),
                Span::styled("▏", dim()),
            ]),
        ),
        Mode::Resolved => (
            " Resolved conversations ",
            Line::styled("newest first", dim()),
        ),
    };
    let rows: Vec<String> = match finder.mode {
        Mode::Search => finder
            .hits
            .iter()
            .map(|hit| {
                let note = if hit.internal { " [note]" } else { "" };
                format!(
                    "{}  {}{note}  {}",
                    clock(app, hit.at),
                    hit.conversation.visitor.name,
                    hit.snippet
                )
            })
            .collect(),
        Mode::Resolved => finder
            .resolved
            .iter()
            .map(|c| {
                format!(
                    "{}  {}  {}",
                    clock(app, c.updated_at),
                    c.visitor.name,
                    c.preview
                )
            })
            .collect(),
    };
    let height = usize::from(outer.height.saturating_sub(4));
    let start = finder.index.saturating_sub(height.saturating_sub(1));
    let mut lines = vec![first];
    for (i, row) in rows.iter().enumerate().skip(start).take(height) {
        let text = truncate(row, room.saturating_sub(2));
        lines.push(if i == finder.index {
            Line::styled(
                format!("› {text}"),
                Style::new().add_modifier(Modifier::REVERSED),
            )
        } else {
            Line::raw(format!("  {text}"))
        });
    }
    let status = if finder.awaited.is_some() || finder.due.is_some() {
        "searching…"
    } else if rows.is_empty() && (finder.mode == Mode::Resolved || !finder.query.is_empty()) {
        "nothing found"
    } else if finder.next_cursor.is_some() {
        "↓ at the end for more"
    } else {
        ""
    };
    lines.push(Line::styled(
        format!("{status}  Enter opens · Esc closes"),
        dim(),
    ));
    frame.render_widget(Clear, outer);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        outer,
    );
}

/// `text` with each occurrence of a term (ignoring case) highlighted.
pub(super) fn highlighted(text: String, terms: &[String], style: Style) -> Vec<Span<'static>> {
    let chars: Vec<char> = text.chars().collect();
    let folded: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut marked = vec![false; chars.len()];
    for term in terms {
        let term: Vec<char> = term.chars().collect();
        if term.is_empty() || term.len() > folded.len() {
            continue;
        }
        for start in 0..=folded.len() - term.len() {
            if folded[start..start + term.len()] == term[..] {
                marked[start..start + term.len()].fill(true);
            }
        }
    }
    let match_style = style.bg(Color::Yellow).fg(Color::Black);
    let mut spans = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let mark = marked[at];
        let end = (at..chars.len())
            .find(|&i| marked[i] != mark)
            .unwrap_or(chars.len());
        let piece: String = chars[at..end].iter().collect();
        spans.push(Span::styled(piece, if mark { match_style } else { style }));
        at = end;
    }
    spans
}
