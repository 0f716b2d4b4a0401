//! The bottom bar: connection, who I am, how many wait; notices on the right.
//!
//! When the bar is too narrow, the least useful parts go first — the
//! "(available)" state, then the "? help" hint, then the details of the
//! connection's state (an offline bar keeps "offline, retry in 2.0 s"),
//! then the agent's own name — so that what the agent must see (the
//! connection, how many wait, how many new events, a notice) stays whole.

use kefu_protocol::AgentState;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{bold, dim};
use crate::app::{App, Connection};
use crate::wrap::{truncate, width};

/// How much the bar says, most first; the first level that fits is drawn.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Detail {
    /// The connection in short, "away" if so, how many wait, the notice.
    Least,
    /// Plus the agent's name.
    Name,
    /// Plus the connection's state in full.
    Connection,
    /// Plus the "? help" hint.
    Hint,
    /// Plus "(available)".
    All,
}

const LEVELS: [Detail; 5] = [
    Detail::All,
    Detail::Hint,
    Detail::Connection,
    Detail::Name,
    Detail::Least,
];

pub(super) fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let room = usize::from(area.width);
    let (notice, notice_style) = match &app.flash {
        Some(flash) => (Some(flash.as_str()), Style::new().fg(Color::Yellow)),
        None => (None, dim()),
    };
    for detail in LEVELS {
        let mut spans = left(app, detail);
        let used: usize = spans.iter().map(|span| width(&span.content)).sum();
        let right = match notice {
            Some(flash) => flash,
            None if detail >= Detail::Hint => "? help",
            None => "",
        };
        let fits = used + width(right) + 2 <= room;
        if fits || detail == Detail::Least {
            let right = truncate(right, room.saturating_sub(used + 2));
            let pad = room.saturating_sub(used + 2 + width(&right));
            spans.push(Span::raw(" ".repeat(pad + 1)));
            spans.push(Span::styled(right, notice_style));
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
            return;
        }
    }
}

/// The left part of the bar at a level of detail.
fn left(app: &App, detail: Detail) -> Vec<Span<'static>> {
    let full = detail >= Detail::Connection;
    let (dot, text, color) = match &app.connection {
        Connection::Online => ("●", "online".to_owned(), Color::Green),
        Connection::Connecting { attempt: 0 } => ("◌", "connecting…".to_owned(), Color::Yellow),
        Connection::Connecting { attempt } if full => (
            "◌",
            format!("reconnecting (try {})…", attempt + 1),
            Color::Yellow,
        ),
        Connection::Connecting { .. } => ("◌", "reconnecting…".to_owned(), Color::Yellow),
        Connection::Offline { reason, retry_in } => {
            let retry = retry_in.as_secs_f32();
            let text = if full {
                format!("offline: {reason}; retrying in {retry:.1} s")
            } else {
                format!("offline, retry in {retry:.1} s")
            };
            ("○", text, Color::Red)
        }
        Connection::Rejected(reason) if full => ("✗", format!("refused: {reason}"), Color::Red),
        Connection::Rejected(_) => ("✗", "token refused".to_owned(), Color::Red),
    };
    let mut spans = vec![
        Span::styled(format!(" {dot} {text}"), Style::new().fg(color)),
        Span::styled(" │ ", dim()),
    ];
    if let Some(me) = &app.me
        && detail >= Detail::Name
    {
        let (state, color) = match app.my_state {
            AgentState::Available => ("available", Color::Green),
            AgentState::Away => ("away", Color::Yellow),
        };
        spans.push(Span::styled(me.name.clone(), bold()));
        if detail >= Detail::All || app.my_state == AgentState::Away {
            spans.push(Span::styled(format!(" ({state})"), Style::new().fg(color)));
        }
        spans.push(Span::styled(" │ ", dim()));
    } else if app.my_state == AgentState::Away {
        spans.push(Span::styled("away", Style::new().fg(Color::Yellow)));
        spans.push(Span::styled(" │ ", dim()));
    }
    let waiting = app.waiting_count();
    let waiting_style = if waiting > 0 {
        bold().fg(Color::Yellow)
    } else {
        Style::new()
    };
    spans.push(Span::styled(format!("{waiting} waiting"), waiting_style));
    let more = &app.more_waiting;
    if more.count > 0 {
        // Beyond what the relay's bounded welcome listed; ↓ past the last
        // row pages them in.
        let how = if more.loading() {
            "loading…"
        } else {
            "↓ at the end"
        };
        spans.push(Span::styled(
            format!(" │ {} more waiting ({how})", more.count),
            waiting_style,
        ));
    }
    if app.attention.unseen > 0 {
        spans.push(Span::styled(" │ ", dim()));
        spans.push(Span::styled(
            format!("{} new", app.attention.unseen),
            bold().fg(Color::Cyan),
        ));
    }
    spans
}
