//! A conversation's history as screen rows: one header row per message
//! (time, author, marks), then its text wrapped by display width.
//!
//! Public because scrolling needs the same row count the drawing produces.

use kefu_protocol::AuthorKind;
use kefu_protocol::Message;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::{bold, clock, dim};
use crate::app::{App, Conversation, Outgoing, SendState};
use crate::wrap::wrap;

/// Body rows are indented by this much; notes put a bar there.
const INDENT: usize = 2;

/// Every row of `conversation`'s history for a pane `width` columns wide,
/// oldest first; replies not yet acknowledged come last.
pub fn lines(app: &App, conversation: &Conversation, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let mut rows = Vec::new();
    if conversation.loading_older {
        rows.push(Line::styled("loading older messages…", dim()));
    } else if !conversation.complete() {
        rows.push(Line::styled("PgUp for older messages", dim()));
    } else if conversation.messages.is_empty() && conversation.outgoing.is_empty() {
        rows.push(Line::styled("No messages yet.", dim()));
    }
    let seen = last_seen(conversation);
    for message in conversation.messages.values() {
        let mut header = vec![
            Span::styled(clock(app, message.at), dim()),
            Span::raw(" "),
            Span::styled(message.author.name.clone(), author_style(message)),
        ];
        if message.internal {
            header.push(Span::styled(" · internal note", note()));
        }
        if Some(message.seq) == seen {
            header.push(Span::styled(" · seen", Style::new().fg(Color::Green)));
        }
        rows.push(Line::from(header));
        body(&mut rows, &message.text, message.internal, width);
    }
    for out in &conversation.outgoing {
        rows.push(pending_header(app, out));
        body(&mut rows, &out.text, out.internal, width);
    }
    rows
}

/// The newest reply the visitor has read: it carries the "seen" mark.
fn last_seen(conversation: &Conversation) -> Option<u64> {
    let read = conversation.summary.visitor_read_seq;
    conversation
        .messages
        .range(..=read)
        .rev()
        .find(|(_, m)| m.author.kind == AuthorKind::Agent && !m.internal)
        .map(|(seq, _)| *seq)
}

fn pending_header(app: &App, out: &Outgoing) -> Line<'static> {
    let me = app
        .me
        .as_ref()
        .map_or("me", |me| me.name.as_str())
        .to_owned();
    let mark = match &out.state {
        SendState::Pending => Span::styled(" · sending…", dim()),
        SendState::Failed(reason) => Span::styled(
            format!(" · failed: {reason} (Alt-r retries)"),
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

fn body(rows: &mut Vec<Line<'static>>, text: &str, internal: bool, width: usize) {
    let (prefix, style) = if internal {
        ("┃ ", note())
    } else {
        ("  ", Style::new())
    };
    for row in wrap(text, width.saturating_sub(INDENT)) {
        rows.push(Line::from(vec![
            Span::styled(prefix, style),
            Span::styled(row, style),
        ]));
    }
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
