//! What is drawn over the panes: the help, the pickers, the quit question.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{bold, dim};
use crate::app::history::attachment_label;
use crate::app::{App, Overlay, Preview};
use crate::keys::{HELP, HELP_COLUMNS, help_height, help_side_by_side};
use crate::wrap::{truncate, width};
use kefu_protocol::Attachment;

pub(super) fn draw(app: &App, frame: &mut Frame, area: Rect) {
    match &app.overlay {
        Overlay::None => {}
        Overlay::Finder => super::finder::draw(app, frame, area),
        Overlay::Help => help(frame, area, app.help_scroll),
        Overlay::Transfer {
            conversation,
            choices,
            index,
        } => {
            let names: Vec<&str> = choices.iter().map(|(_, name)| name.as_str()).collect();
            let visitor = truncate(&app.visitor_name(conversation), 30);
            let title = format!(" Transfer {visitor} to… ");
            picker(frame, area, &title, &names, *index);
        }
        Overlay::Canned { index } => {
            let entries: Vec<String> = app
                .prefs
                .canned
                .iter()
                .map(|c| format!("/{}  {}", c.shortcut, c.text.replace('\n', " ")))
                .collect();
            let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
            picker(frame, area, " Canned replies ", &entries, *index);
        }
        Overlay::Files { choices, index } => {
            let entries: Vec<String> = choices.iter().map(attachment_label).collect();
            let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
            picker(frame, area, " Open a file ", &entries, *index);
        }
        Overlay::Preview { attachment, image } => preview(frame, area, attachment, image),
        Overlay::ConfirmAttach { path, .. } => {
            let room = usize::from(area.width.saturating_sub(6));
            let lines = vec![
                Line::raw(truncate(path, room)),
                Line::from(vec![
                    Span::styled("y", bold()),
                    Span::raw(" attaches it · any other key pastes the text"),
                ]),
            ];
            popup(frame, area, " Attach this file? ", lines, area.width);
        }
        Overlay::Visitor { record, index, .. } => {
            super::visitor::draw(app, frame, area, record.as_deref(), *index);
        }
        Overlay::ConfirmQuit => {
            let lines = vec![
                Line::raw("Unsent text would be lost."),
                Line::from(vec![
                    Span::raw("Quit anyway? "),
                    Span::styled("y", bold()),
                    Span::raw(" / any other key"),
                ]),
            ];
            popup(frame, area, " Quit? ", lines, 34);
        }
        Overlay::ConfirmResolve { name, why, .. } => {
            let name = truncate(name, 40);
            let lines = vec![
                Line::raw(format!("Resolve {name}?")),
                Line::raw(*why),
                Line::from(vec![
                    Span::styled("y", bold()),
                    Span::raw(" resolves · "),
                    Span::styled("n", bold()),
                    Span::raw(" / any other key keeps it"),
                ]),
            ];
            popup(frame, area, " Resolve? ", lines, area.width);
        }
    }
}

/// An image in a box of its size, its name above and what Enter does below.
fn preview(frame: &mut Frame, area: Rect, attachment: &Attachment, image: &Preview) {
    let size = image.0.size();
    let hint = "Enter saves and opens · Esc closes";
    let inner_width = size.width.max(width(hint) as u16);
    let outer = centered(area, inner_width + 2, size.height + 3);
    frame.render_widget(Clear, outer);
    let title = format!(" {} ", truncate(&attachment.name, usize::from(inner_width)));
    let block = Block::bordered().title(title);
    let inner = block.inner(outer);
    frame.render_widget(block, outer);
    let [picture, footer] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    frame.render_widget(ratatui_image::Image::new(&image.0), picture);
    frame.render_widget(Paragraph::new(Line::styled(hint, dim())), footer);
}

/// Every key, in two columns when the screen is wide enough for them;
/// scrolled by `scroll` rows when it is taller than the screen.
fn help(frame: &mut Frame, area: Rect, scroll: usize) {
    let column = |names: &[&str]| -> Vec<Line<'static>> {
        let in_column = |section: &&str| names.contains(section);
        let key_width = HELP
            .iter()
            .filter(|(section, _, _)| in_column(section))
            .map(|(_, key, _)| width(key))
            .max()
            .unwrap_or(0);
        let mut lines = Vec::new();
        for name in names {
            if !lines.is_empty() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(name.to_string(), bold().fg(Color::Cyan)));
            for (_, key, what) in HELP.iter().filter(|(section, _, _)| section == name) {
                let pad = " ".repeat(key_width - width(key) + 1);
                lines.push(Line::from(vec![
                    Span::styled(format!("{key}{pad}"), bold()),
                    Span::raw(what.to_string()),
                ]));
            }
        }
        lines
    };
    let [left, right] = HELP_COLUMNS.map(column);
    let height = help_height(area.width);
    let visible = usize::from(area.height.saturating_sub(2));
    let scroll = scroll.min(height.saturating_sub(visible));
    let below = height.saturating_sub(visible + scroll);
    let block = if height > visible {
        let more = match (scroll, below) {
            (0, below) => format!(" ↓ {below} more "),
            (above, 0) => format!(" ↑ {above} more "),
            (above, below) => format!(" ↑ {above} · ↓ {below} more "),
        };
        Block::bordered()
            .title(" Keys (↑↓ scroll, Esc closes) ")
            .title_bottom(Line::styled(more, dim()))
    } else {
        Block::bordered().title(" Keys (any key closes) ")
    };
    let offset = (u16::try_from(scroll).unwrap_or(u16::MAX), 0);
    if help_side_by_side(area.width) {
        let outer = centered(area, 80, height as u16 + 2);
        frame.render_widget(Clear, outer);
        let inner = block.inner(outer);
        frame.render_widget(block, outer);
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(inner);
        frame.render_widget(Paragraph::new(left).scroll(offset), l);
        frame.render_widget(Paragraph::new(right).scroll(offset), r);
    } else {
        let mut lines = left;
        lines.push(Line::raw(""));
        lines.extend(right);
        let content = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
        let outer = centered(area, (content + 2).max(34), height as u16 + 2);
        frame.render_widget(Clear, outer);
        let paragraph = Paragraph::new(lines).scroll(offset).block(block);
        frame.render_widget(paragraph, outer);
    }
}

fn picker(frame: &mut Frame, area: Rect, title: &str, entries: &[&str], index: usize) {
    let room = usize::from(area.width.saturating_sub(8)).min(60);
    let lines: Vec<Line> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let text = truncate(entry, room);
            if i == index {
                Line::styled(
                    format!("› {text}"),
                    Style::new().add_modifier(Modifier::REVERSED),
                )
            } else {
                Line::raw(format!("  {text}"))
            }
        })
        .chain([Line::styled("Enter chooses · Esc cancels", dim())])
        .collect();
    popup(frame, area, title, lines, room as u16 + 4);
}

/// A bordered box in the middle of `area`, as small as its lines allow.
fn popup(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, max_width: u16) {
    let content = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
    let width = (content + 2).max(width(title) as u16 + 4).min(max_width);
    let outer = centered(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, outer);
    let paragraph = Paragraph::new(lines).block(Block::bordered().title(title.to_owned()));
    frame.render_widget(paragraph, outer);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}
