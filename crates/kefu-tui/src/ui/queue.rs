//! The queue pane: tabs in the title, two rows per conversation.

use kefu_protocol::agent::ConversationStatus;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{ago, bold, border, dim};
use crate::app::{App, Conversation, Filter};
use crate::keys::Focus;
use crate::layout;
use crate::wrap::{truncate, width};

pub(super) fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let mut block = Block::bordered()
        .border_style(border(app, Focus::Queue))
        .title(tabs(app));
    if let Some(line) = filter_line(app) {
        block = block.title_bottom(line);
    }
    let inner = layout::queue_inner(area);
    frame.render_widget(block, area);
    let rows = app.rows();
    if rows.is_empty() {
        let empty = match app.filter {
            _ if !app.typed_filter.is_empty() => "No match; Ctrl-F searches all.",
            Filter::Waiting => "Nobody is waiting.",
            Filter::Mine => "No conversations of yours.",
            Filter::All => "No open conversations.",
        };
        frame.render_widget(Paragraph::new(Line::styled(empty, dim())), inner);
        return;
    }
    let selected = app.selected_index(&rows);
    let skip = layout::queue_offset(selected, inner.height);
    let mut lines = Vec::new();
    for (at, id) in rows.iter().enumerate().skip(skip) {
        let Some(conversation) = app.conversations.get(id) else {
            continue;
        };
        let highlight = if at == selected {
            Style::new().bg(Color::DarkGray)
        } else {
            Style::new()
        };
        let [first, second] = entry(app, conversation, usize::from(inner.width));
        lines.push(first.patch_style(highlight));
        lines.push(second.patch_style(highlight));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The typed filter on the pane's bottom border: `/olga▏` while typing,
/// `/olga (Esc clears)` once the agent moved on.
fn filter_line(app: &App) -> Option<Line<'static>> {
    let typing = app.focus == Focus::QueueFilter;
    if !typing && app.typed_filter.is_empty() {
        return None;
    }
    // Only typed keys reach it (not pastes), and those map control
    // characters to actions: it holds nothing that moves the cursor.
    let mut spans = vec![
        Span::styled("/", bold()),
        Span::styled(app.typed_filter.text.clone(), bold().fg(Color::Cyan)),
    ];
    if typing {
        spans.push(Span::styled("▏", Style::new().fg(Color::Cyan)));
    } else {
        spans.push(Span::styled(" (Esc clears)", dim()));
    }
    Some(Line::from(spans))
}

/// `[Waiting 2] Mine 1  All 3 `: the current tab in brackets (readable
/// without colour, and by screen readers) and reversed; the others keep
/// their places when it moves.
fn tabs(app: &App) -> Line<'static> {
    let me = app.me_id();
    let mut spans = Vec::new();
    for filter in Filter::ALL {
        let count = app
            .conversations
            .values()
            .filter(|c| filter.admits(c, me))
            .count();
        let label = format!("{} {count}", filter.label());
        if filter == app.filter {
            spans.push(Span::styled("[", bold()));
            spans.push(Span::styled(label, bold().add_modifier(Modifier::REVERSED)));
            spans.push(Span::styled("]", bold()));
        } else {
            spans.push(Span::raw(format!(" {label} ")));
        }
    }
    Line::from(spans)
}

/// The two rows of one conversation, padded to `columns` so that the
/// highlight covers the whole width.
fn entry(app: &App, conversation: &Conversation, columns: usize) -> [Line<'static>; 2] {
    let summary = &conversation.summary;
    let number = app
        .number(&summary.id)
        .map_or_else(|| " ".to_owned(), |n| n.to_string());
    let dot = if summary.visitor.online {
        Span::styled("●", Style::new().fg(Color::Green))
    } else {
        Span::styled("○", dim())
    };
    let mut right = Vec::new();
    let unread = conversation.unread();
    if unread > 0 {
        right.push(Span::styled(
            format!(" ({unread})"),
            bold().fg(Color::Yellow),
        ));
    }
    right.push(Span::raw(" "));
    right.push(state(app, conversation));
    let right_width: usize = right.iter().map(|s| width(&s.content)).sum();
    let name_room = columns.saturating_sub(4 + right_width);
    let name = truncate(&summary.visitor.name, name_room);
    let name_style = if app.open.as_deref() == Some(summary.id.as_str()) {
        bold().add_modifier(Modifier::UNDERLINED)
    } else if conversation.activity {
        bold()
    } else {
        Style::new()
    };
    let pad = columns.saturating_sub(4 + width(&name) + right_width);
    let mut first = vec![
        Span::styled(number, dim()),
        Span::raw(" "),
        dot,
        Span::raw(" "),
        Span::styled(name, name_style),
        Span::raw(" ".repeat(pad)),
    ];
    first.extend(right);
    let second = if conversation.visitor_is_typing(app.now) {
        Span::styled("typing…", dim().add_modifier(Modifier::ITALIC))
    } else {
        Span::styled(truncate(&summary.preview, columns.saturating_sub(4)), dim())
    };
    let used = 4 + width(&second.content);
    [
        Line::from(first),
        Line::from(vec![
            Span::raw("    "),
            second,
            Span::raw(" ".repeat(columns.saturating_sub(used))),
        ]),
    ]
}

/// Right-hand flag: how long a visitor waits, whose it is, or done.
fn state(app: &App, conversation: &Conversation) -> Span<'static> {
    let summary = &conversation.summary;
    match summary.status {
        ConversationStatus::Waiting => {
            let since = summary.waiting_since.unwrap_or(summary.updated_at);
            Span::styled(ago(app.now - since), Style::new().fg(Color::Yellow))
        }
        ConversationStatus::Active => match summary.assignee.as_deref() {
            Some(id) if Some(id) == app.me_id() => {
                Span::styled("mine", Style::new().fg(Color::Green))
            }
            Some(id) => Span::styled(truncate(app.agent_name(id).unwrap_or("agent"), 10), dim()),
            None => Span::raw("active"),
        },
        ConversationStatus::Resolved => Span::styled("done", dim()),
    }
}
