//! The visitor panel (Alt-v): who the visitor is, their conversations
//! (Enter opens the highlighted one) and the pages they opened, newest
//! last, growing live while it is open.

use kefu_protocol::agent::VisitorRecord;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::conversation::path_of;
use super::{bold, clock, dim};
use crate::app::App;
use crate::wrap::truncate;

pub(super) fn draw(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    record: Option<&VisitorRecord>,
    index: usize,
) {
    let outer = Rect {
        x: area.x + area.width / 8,
        y: area.y + 1,
        width: area.width - area.width / 4,
        height: area.height.saturating_sub(2),
    };
    let room = usize::from(outer.width.saturating_sub(2));
    let lines = match record {
        None => vec![Line::styled("asking the relay…", dim())],
        Some(record) => lines(app, record, index, room, usize::from(outer.height)),
    };
    frame.render_widget(Clear, outer);
    let block = Block::bordered().title(" Visitor · Enter opens · Esc closes ");
    frame.render_widget(Paragraph::new(lines).block(block), outer);
}

fn lines(
    app: &App,
    record: &VisitorRecord,
    index: usize,
    room: usize,
    height: usize,
) -> Vec<Line<'static>> {
    let visitor = &record.visitor;
    let mut lines = vec![Line::styled(
        truncate(&visitor.name, room),
        bold().fg(Color::Cyan),
    )];
    for (label, value) in [
        ("email", &visitor.email),
        ("language", &visitor.lang),
        ("came from", &visitor.referrer),
        ("browser", &visitor.user_agent),
    ] {
        if let Some(value) = value {
            lines.push(Line::from(vec![
                Span::styled(format!("{label}: "), dim()),
                Span::raw(truncate(value, room.saturating_sub(label.len() + 2))),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Conversations", bold()));
    for (i, summary) in record.conversations.iter().enumerate() {
        let text = format!(
            "{} · {} messages · {} · {}",
            clock(app, summary.updated_at),
            summary.last_seq,
            summary.status.as_str(),
            summary.preview
        );
        let text = truncate(&text, room.saturating_sub(2));
        lines.push(if i == index {
            Line::styled(
                format!("› {text}"),
                Style::new().add_modifier(Modifier::REVERSED),
            )
        } else {
            Line::raw(format!("  {text}"))
        });
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("Pages ({})", record.trail.len()),
        bold(),
    ));
    // The newest pages that fit, oldest of them first.
    let fit = height.saturating_sub(lines.len() + 2);
    let skip = record.trail.len().saturating_sub(fit);
    for view in &record.trail[skip..] {
        let page = match &view.title {
            Some(title) => format!("{} — {title}", path_of(&view.url)),
            None => path_of(&view.url).to_owned(),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", clock(app, view.at)), dim()),
            Span::styled(
                truncate(&page, room.saturating_sub(6)),
                Style::new().fg(Color::Blue),
            ),
        ]));
    }
    lines
}
