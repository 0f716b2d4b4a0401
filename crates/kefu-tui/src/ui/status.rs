//! The bottom bar: connection, who I am, how many wait; notices on the right.

use kefu_protocol::AgentState;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{bold, dim};
use crate::app::{App, Connection};
use crate::layout::NARROW;
use crate::wrap::{truncate, width};

pub(super) fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let (dot, text, color) = match &app.connection {
        Connection::Online => ("●", "online".to_owned(), Color::Green),
        Connection::Connecting { attempt: 0 } => ("◌", "connecting…".to_owned(), Color::Yellow),
        Connection::Connecting { attempt } => (
            "◌",
            format!("reconnecting (try {})…", attempt + 1),
            Color::Yellow,
        ),
        Connection::Offline { reason } => ("○", format!("offline: {reason}"), Color::Red),
        Connection::Rejected(reason) => ("✗", format!("refused: {reason}"), Color::Red),
    };
    let mut left = vec![
        Span::styled(format!(" {dot} {text}"), Style::new().fg(color)),
        Span::styled(" │ ", dim()),
    ];
    if let Some(me) = &app.me {
        let (state, color) = match app.my_state {
            AgentState::Available => ("available", Color::Green),
            AgentState::Away => ("away", Color::Yellow),
        };
        left.push(Span::styled(me.name.clone(), bold()));
        // Narrow screens only say so when the agent is away.
        if area.width >= NARROW || app.my_state == AgentState::Away {
            left.push(Span::styled(format!(" ({state})"), Style::new().fg(color)));
        }
        left.push(Span::styled(" │ ", dim()));
    }
    let waiting = app.waiting_count();
    let waiting_style = if waiting > 0 {
        bold().fg(Color::Yellow)
    } else {
        Style::new()
    };
    left.push(Span::styled(format!("{waiting} waiting"), waiting_style));
    if app.attention.unseen > 0 {
        left.push(Span::styled(" │ ", dim()));
        left.push(Span::styled(
            format!("{} new", app.attention.unseen),
            bold().fg(Color::Cyan),
        ));
    }
    let used: usize = left.iter().map(|span| width(&span.content)).sum();
    let room = usize::from(area.width).saturating_sub(used + 2);
    let (notice, style) = match &app.flash {
        Some(flash) => (flash.as_str(), Style::new().fg(Color::Yellow)),
        None => ("? help", dim()),
    };
    let notice = truncate(notice, room);
    let pad = room.saturating_sub(width(&notice));
    left.push(Span::raw(" ".repeat(pad + 1)));
    left.push(Span::styled(notice, style));
    frame.render_widget(Paragraph::new(Line::from(left)), area);
}
