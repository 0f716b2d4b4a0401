//! The conversation pane: who the visitor is, the history, whether they are
//! typing, and the compose box.

use kefu_protocol::agent::ConversationStatus;
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{ago, bold, border, dim, history};
use crate::app::history::{INDENT, attachment_label, view_end};
use crate::app::{App, Conversation, Overlay};
use crate::keys::Focus;
use crate::layout::ConversationAreas;
use crate::wrap::truncate;

pub(super) fn draw(app: &App, frame: &mut Frame, areas: ConversationAreas) {
    let Some(conversation) = app.open_conversation() else {
        let block = Block::bordered().border_style(border(app, Focus::Compose));
        let hint = vec![
            Line::raw(""),
            Line::styled("Select a conversation and press Enter.", dim()),
            Line::styled("? lists every key.", dim()),
        ];
        frame.render_widget(Paragraph::new(hint).block(block), areas.pane);
        return;
    };
    let block = Block::bordered()
        .border_style(border(app, Focus::Compose))
        .title(title(app, conversation));
    frame.render_widget(block, areas.pane);
    frame.render_widget(
        Paragraph::new(details(conversation, areas.details.width)),
        areas.details,
    );
    draw_history(app, frame, conversation, areas.history);
    if conversation.visitor_is_typing(app.now) {
        let typing = format!("{} is typing…", conversation.summary.visitor.name);
        let line = Line::styled(typing, dim().add_modifier(Modifier::ITALIC));
        frame.render_widget(Paragraph::new(line), areas.typing);
    }
    attached(frame, conversation, areas.attached);
    compose(app, frame, conversation, areas.compose);
}

/// The files that go with the next message, above the compose box; the
/// last row counts what does not fit.
fn attached(frame: &mut Frame, conversation: &Conversation, area: Rect) {
    let draft = &conversation.draft;
    let width = usize::from(area.width);
    let mut rows: Vec<String> = draft
        .attachments
        .iter()
        .map(|file| format!("+ {}", attachment_label(file)))
        .chain((0..draft.uploading).map(|_| "+ 📎 uploading…".to_owned()))
        .collect();
    let fits = usize::from(area.height);
    if rows.len() > fits && fits > 0 {
        let hidden = rows.len() - fits + 1;
        rows.truncate(fits - 1);
        rows.push(format!("+ {hidden} more files (Alt-d drops the last)"));
    }
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|row| Line::styled(truncate(&row, width), Style::new().fg(Color::Green)))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// ` Ming · waiting 3m ` / ` Ming · alice ` / ` Ming · resolved `.
fn title(app: &App, conversation: &Conversation) -> Line<'static> {
    let summary = &conversation.summary;
    let state = match summary.status {
        ConversationStatus::Waiting => {
            let since = summary.waiting_since.unwrap_or(summary.updated_at);
            format!("waiting {}", ago(app.now - since))
        }
        ConversationStatus::Active => match summary.assignee.as_deref() {
            Some(id) if Some(id) == app.me_id() => "yours".to_owned(),
            Some(id) => format!("with {}", app.agent_name(id).unwrap_or("another agent")),
            None => "active".to_owned(),
        },
        ConversationStatus::Resolved => "resolved".to_owned(),
    };
    Line::from(vec![
        Span::raw(" "),
        Span::styled(summary.visitor.name.clone(), bold().fg(Color::Cyan)),
        Span::styled(format!(" · {state} "), Style::new()),
    ])
}

/// "now on /checkout — Checkout", then browser · language · email · client
/// address (or network) · where the visitor came from. Both follow the
/// visitor live (the summary moves with each page they open).
fn details(conversation: &Conversation, width: u16) -> Vec<Line<'static>> {
    let visitor = &conversation.summary.visitor;
    let width = usize::from(width);
    let page = match (visitor.page_url.as_deref(), visitor.page_title.as_deref()) {
        (Some(url), Some(title)) => format!("now on {} — {title}", path_of(url)),
        (Some(url), None) => format!("now on {}", path_of(url)),
        (None, _) => "(page unknown)".to_owned(),
    };
    let about: Vec<String> = [
        visitor.user_agent.as_deref().map(browser),
        visitor.lang.clone(),
        visitor.email.clone(),
        visitor.address.clone(),
        visitor
            .referrer
            .as_deref()
            .map(|from| format!("from {}", without_scheme(from))),
    ]
    .into_iter()
    .flatten()
    .collect();
    vec![
        Line::styled(truncate(&page, width), Style::new().fg(Color::Blue)),
        Line::styled(truncate(&about.join(" · "), width), dim()),
    ]
}

/// The path (query and fragment too) of a web address; the address itself
/// if it has none.
pub(super) fn path_of(url: &str) -> &str {
    let rest = without_scheme(url);
    match rest.find('/') {
        Some(slash) => &rest[slash..],
        None => url,
    }
}

/// `shop.example/page` from `https://shop.example/page`.
fn without_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// "Firefox 128" from a user agent string; the raw string's start otherwise.
fn browser(user_agent: &str) -> String {
    // Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    const BROWSERS: [(&str, &str); 5] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ];
    for (token, name) in BROWSERS {
        if let Some((_, rest)) = user_agent.split_once(token) {
            let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return format!("{name} {major}").trim_end().to_owned();
        }
    }
    truncate(user_agent, 24)
}

fn draw_history(app: &App, frame: &mut Frame, conversation: &Conversation, area: Rect) {
    let history::Lines {
        lines: rows,
        images,
    } = history::lines(app, conversation, area.width);
    let height = usize::from(area.height);
    let end = view_end(rows.len(), conversation.scroll, height);
    let scroll = rows.len() - end;
    let start = end.saturating_sub(height);
    let visible: Vec<Line> = rows[start..end].to_vec();
    // Newest next to the compose box, as in any chat: a short history sits
    // at the bottom.
    let blank = area.height.saturating_sub(visible.len() as u16);
    let text = Rect {
        y: area.y + blank,
        height: area.height - blank,
        ..area
    };
    frame.render_widget(Paragraph::new(visible), text);
    let marker = scroll > 0 && conversation.new_below > 0;
    // Under the marker's row, only what ends above it.
    let clear_end = if marker { end - 1 } else { end };
    // Graphics are drawn whole or not at all, over whatever else is drawn
    // in their cells: a preview is drawn only entirely in view, and never
    // under a popup.
    let clear = app.overlay == Overlay::None;
    for image in images {
        let Some(preview) = image.preview else {
            continue;
        };
        let (columns, rows) = image.cells;
        let last = image.first + usize::from(rows);
        if clear && image.first >= start && last <= clear_end {
            let at = Rect {
                x: area.x + INDENT as u16,
                y: text.y + (image.first - start) as u16,
                width: columns.min(area.width.saturating_sub(INDENT as u16)),
                height: rows,
            };
            frame.render_widget(ratatui_image::Image::new(&preview.0), at);
        } else if clear && last > start && image.first < end {
            hidden_preview(frame, image.first.max(start) - start, text);
        }
    }
    if marker {
        new_below_marker(frame, conversation.new_below, area);
    }
}

/// On the first row of a preview partly out of view, which it is not drawn
/// in.
fn hidden_preview(frame: &mut Frame, row: usize, text: Rect) {
    let at = Rect {
        x: text.x + INDENT as u16,
        y: text.y + row as u16,
        width: text.width.saturating_sub(INDENT as u16),
        height: 1,
    };
    let hint = truncate("(preview: scroll to see it whole)", usize::from(at.width));
    frame.render_widget(Paragraph::new(Line::styled(hint, dim())), at);
}

/// Over the history's bottom row while scrolled up: new messages came
/// (and the text being read stayed where it was).
fn new_below_marker(frame: &mut Frame, count: usize, area: Rect) {
    let what = if count == 1 { "message" } else { "messages" };
    let marker = truncate(
        &format!(" ↓ {count} new {what} below · PgDn "),
        usize::from(area.width),
    );
    let row = Rect {
        y: area.bottom().saturating_sub(1),
        height: 1.min(area.height),
        ..area
    };
    let style = Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD);
    frame.render_widget(
        Paragraph::new(Line::styled(marker, style)).alignment(ratatui::layout::Alignment::Right),
        row,
    );
}

fn compose(app: &App, frame: &mut Frame, conversation: &Conversation, area: Rect) {
    let draft = &conversation.draft;
    let (label, style) = if draft.internal {
        (
            " Internal note (agents only) ",
            Style::new().fg(Color::Yellow),
        )
    } else {
        (" Reply ", border(app, Focus::Compose))
    };
    let block = Block::bordered()
        .border_style(style)
        .title(Span::styled(label, style));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let focused = app.focus == Focus::Compose && app.overlay == Overlay::None;
    if draft.buffer.is_empty() {
        let hint = if focused {
            "Enter sends · Alt-Enter new line · Esc queue"
        } else {
            "Enter on a conversation to reply"
        };
        frame.render_widget(Paragraph::new(Line::styled(hint, dim())), inner);
    }
    let (rows, (row, column)) = draft.buffer.layout(usize::from(inner.width));
    // Keep the cursor's row in view when the text is taller than the box.
    let skip = (row + 1).saturating_sub(usize::from(inner.height));
    if !draft.buffer.is_empty() {
        let lines: Vec<Line> = rows.into_iter().skip(skip).map(Line::raw).collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
    if focused {
        let x = inner.x + column as u16;
        let y = inner.y + (row - skip) as u16;
        frame.set_cursor_position(Position::new(x, y));
    }
}

#[cfg(test)]
mod tests {
    use super::browser;

    #[test]
    fn names_common_browsers() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser(firefox), "Firefox 128");
        let edge = "Mozilla/5.0 … Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87";
        assert_eq!(browser(edge), "Edge 126");
        assert_eq!(browser("curl/8.5.0"), "curl/8.5.0");
    }
}
