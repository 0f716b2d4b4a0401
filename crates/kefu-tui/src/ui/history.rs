//! A conversation's history as styled lines, one for each of the rows
//! [`crate::app::history`] lays out (scrolling counts the same rows), and
//! where the images' inline previews go over them.

use kefu_protocol::{AuthorKind, Message, TimelineEvent};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::finder::highlighted;
use super::{bold, clock, dim};
use crate::app::history::{Row, rows};
use crate::app::thumbnails::Cells;
use crate::app::{App, Conversation, Outgoing, Preview, SendState};

/// A history ready to draw.
pub struct Lines<'a> {
    pub lines: Vec<Line<'static>>,
    pub images: Vec<Placed<'a>>,
}

/// An image's inline preview: the rows reserved for it start at line
/// `first`; `preview` is `None` while it loads.
pub struct Placed<'a> {
    pub first: usize,
    pub cells: Cells,
    pub preview: Option<&'a Preview>,
}

/// Every row of `conversation`'s history for a pane `width` columns wide,
/// oldest first; replies not yet acknowledged come last.
/// The search hit the conversation was opened at is marked, and the
/// searched words highlighted in its text.
pub fn lines<'a>(app: &'a App, conversation: &Conversation, width: u16) -> Lines<'a> {
    let mut in_hit = false;
    let mut images = Vec::new();
    let lines = rows(conversation, width, &app.thumbnails)
        .into_iter()
        .enumerate()
        .map(|(at, row)| {
            if let Row::Image {
                attachment,
                cells,
                part: 0,
                ..
            } = row
            {
                images.push(Placed {
                    first: at,
                    cells,
                    preview: app.thumbnails.get(&attachment.id, cells),
                });
            }
            let hit = conversation.hit.as_ref();
            match (&row, hit) {
                (Row::Header { message, .. }, Some(hit)) if message.seq == hit.seq => {
                    in_hit = true;
                    let mut line = line(app, row);
                    line.spans.push(Span::styled(
                        " · match",
                        Style::new().fg(Color::Black).bg(Color::Yellow),
                    ));
                    line
                }
                (Row::Body { text, internal }, Some(hit)) if in_hit => {
                    let (prefix, style) = body_style(*internal);
                    let mut spans = vec![Span::styled(prefix, style)];
                    spans.extend(highlighted(text.clone(), &hit.terms, style));
                    Line::from(spans)
                }
                _ => {
                    in_hit &= matches!(row, Row::Body { .. });
                    line(app, row)
                }
            }
        })
        .collect();
    Lines { lines, images }
}

fn body_style(internal: bool) -> (&'static str, Style) {
    if internal {
        ("┃ ", note())
    } else {
        ("  ", Style::new())
    }
}

fn line(app: &App, row: Row<'_>) -> Line<'static> {
    match row {
        Row::Notice(text) => Line::styled(text, dim()),
        Row::Header { message, seen } => {
            let mut header = vec![
                Span::styled(clock(app, message.at), dim()),
                Span::raw(" "),
                Span::styled(message.author.name.clone(), author_style(message)),
            ];
            if message.internal {
                header.push(Span::styled(" · internal note", note()));
            }
            if seen {
                header.push(Span::styled(" · seen", Style::new().fg(Color::Green)));
            }
            Line::from(header)
        }
        Row::Event { message, event } => event_line(app, message, event),
        Row::Pending(out) => pending_header(app, out),
        // Alt-r is offered only where a retry can succeed.
        Row::Failed { retry } => {
            let keys = if retry {
                "  Alt-r retry · Alt-e edit · Alt-x drop"
            } else {
                "  Alt-e edit · Alt-x drop"
            };
            Line::styled(keys, Style::new().fg(Color::Red))
        }
        Row::Body { text, internal } => {
            let (prefix, style) = body_style(internal);
            Line::from(vec![Span::styled(prefix, style), Span::styled(text, style)])
        }
        // The preview is drawn over these rows once it is ready and in
        // view; until then the first says why they are empty.
        Row::Image {
            attachment,
            cells,
            part,
            internal,
        } => {
            let (prefix, style) = body_style(internal);
            let loading = part == 0 && app.thumbnails.get(&attachment.id, cells).is_none();
            let text = if loading { "loading preview…" } else { "" };
            Line::from(vec![Span::styled(prefix, style), Span::styled(text, dim())])
        }
    }
}

/// A timeline event as one dim system line, e.g. "14:02 — alice claimed":
/// the time first, like a message's header, so that a narrow pane cuts
/// only the end of a long name.
fn event_line(app: &App, message: &Message, event: &TimelineEvent) -> Line<'static> {
    let what = describe(event);
    Line::styled(format!("{} — {what}", clock(app, message.at)), dim())
}

fn describe(event: &TimelineEvent) -> String {
    match event {
        TimelineEvent::Claimed { by } => format!("{} claimed", by.name),
        TimelineEvent::Transferred { by, to } => {
            format!("transferred to {} by {}", to.name, by.name)
        }
        TimelineEvent::Resolved { by } => format!("resolved by {}", by.name),
        TimelineEvent::Reopened { .. } => "reopened (visitor wrote again)".to_owned(),
        // Calls: the protocol's own wording (names already sanitized).
        other => other.describe(),
    }
}

fn pending_header(app: &App, out: &Outgoing) -> Line<'static> {
    let me = app
        .me
        .as_ref()
        .map_or("me", |me| me.name.as_str())
        .to_owned();
    let mark = match &out.state {
        SendState::Pending => Span::styled(" · sending…", dim()),
        SendState::Failed { reason, .. } => Span::styled(
            format!(" · not sent: {reason}"),
            Style::new().fg(Color::Red),
        ),
    };
    Line::from(vec![
        Span::styled("--:--", dim()),
        Span::raw(" "),
        Span::styled(me, bold().fg(Color::Green)),
        mark,
    ])
}

fn author_style(message: &Message) -> Style {
    match message.author.kind {
        AuthorKind::Visitor => bold().fg(Color::Cyan),
        AuthorKind::Agent => bold().fg(Color::Green),
        AuthorKind::System => Style::new().fg(Color::Magenta),
    }
}

/// Internal notes look apart: agents must never mistake one for a reply.
fn note() -> Style {
    Style::new()
        .fg(Color::Yellow)
        .add_modifier(Modifier::ITALIC)
}
