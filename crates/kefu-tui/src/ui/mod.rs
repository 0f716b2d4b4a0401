//! Drawing: a pure function of the state. [`draw`] reads the [`App`] and
//! fills a frame; it changes nothing and waits on nothing.
//!
//! - `queue`: the left pane. - `conversation`: the right pane.
//! - `history`: a conversation's history rows, styled.
//! - `overlay`: help, pickers, the quit question. - `status`: the bottom bar.
//! - `visitor`: the visitor panel (profile, conversations, page trail).
//! - `finder`: search and the resolved conversations.

mod conversation;
mod finder;
mod history;
mod overlay;
mod queue;
mod status;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_assist;
#[cfg(test)]
mod tests_attention;
#[cfg(test)]
mod tests_files;
#[cfg(test)]
mod tests_finder;
#[cfg(test)]
mod tests_inline;
#[cfg(test)]
mod tests_sift;
mod visitor;

use ratatui::Frame;
use ratatui::style::{Color, Modifier, Style};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::app::App;
use crate::app::clock::ago;
use crate::keys::Focus;

/// Draws the whole screen.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let screen = app.screen(area);
    if let Some(queue) = screen.queue {
        queue::draw(app, frame, queue);
    }
    if let Some(areas) = screen.conversation {
        conversation::draw(app, frame, areas);
    }
    status::draw(app, frame, screen.status);
    overlay::draw(app, frame, area);
}

/// Border style of a pane: bright when it has the focus.
fn border(app: &App, pane: Focus) -> Style {
    let focused = match pane {
        Focus::Queue | Focus::QueueFilter => app.focus.in_queue(),
        Focus::Compose => app.focus == Focus::Compose,
    };
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// `HH:MM` today, `MM-DD HH:MM` before, in the agent's offset.
fn clock(app: &App, at: OffsetDateTime) -> String {
    let at = at.to_offset(app.utc_offset);
    let today = app.now.to_offset(app.utc_offset).date();
    let format = if at.date() == today {
        format_description!("[hour]:[minute]")
    } else {
        format_description!("[month]-[day] [hour]:[minute]")
    };
    at.format(format).unwrap_or_default()
}
