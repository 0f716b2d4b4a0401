//! Where each pane goes for a terminal size.
//!
//! Drawing and mouse clicks (and scrolling, which needs the history's height)
//! must agree on the geometry, so both compute it here from the same inputs.

use ratatui::layout::{Constraint, Layout, Margin, Rect};

use crate::compose::Buffer;
use crate::keys::Focus;

/// Below this width only one pane fits: the queue, or the open conversation.
pub const NARROW: u16 = 60;
/// Each queue entry takes two rows: name and flags, then the preview.
pub const QUEUE_ROW: u16 = 2;
/// The compose box grows with its text up to this many rows.
const COMPOSE_MAX_ROWS: usize = 5;
/// Visitor details above the history.
const DETAILS_ROWS: u16 = 2;
/// Files waiting to be sent are listed above the compose box, a row each,
/// up to this many (then a count).
pub const ATTACHED_MAX_ROWS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub queue: Option<Rect>,
    pub conversation: Option<ConversationAreas>,
    pub status: Rect,
}

/// The conversation pane: its border, and what is inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationAreas {
    pub pane: Rect,
    pub details: Rect,
    pub history: Rect,
    pub typing: Rect,
    /// The files that go with the next message (no rows when none).
    pub attached: Rect,
    pub compose: Rect,
}

/// Lays out a terminal of `area`. `draft` is the open conversation's draft
/// (the compose box is as tall as its text), `None` if none is open;
/// `attached` the files waiting to go with it.
pub fn screen(area: Rect, focus: Focus, draft: Option<&Buffer>, attached: usize) -> Screen {
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let (queue, pane) = if area.width < NARROW {
        match focus {
            Focus::Queue | Focus::QueueFilter => (Some(main), None),
            Focus::Compose => (None, Some(main)),
        }
    } else {
        let width = (area.width * 3 / 8).clamp(26, 40);
        let [queue, pane] =
            Layout::horizontal([Constraint::Length(width), Constraint::Min(1)]).areas(main);
        (Some(queue), Some(pane))
    };
    let conversation = pane.map(|pane| conversation(pane, draft, attached));
    Screen {
        queue,
        conversation,
        status,
    }
}

fn conversation(pane: Rect, draft: Option<&Buffer>, attached: usize) -> ConversationAreas {
    let inner = pane.inner(Margin::new(1, 1));
    let text_width = inner.width.saturating_sub(2) as usize;
    let rows = draft.map_or(1, |draft| draft.layout(text_width).0.len());
    let compose_height = rows.clamp(1, COMPOSE_MAX_ROWS) as u16 + 2;
    let attached_height = attached.min(ATTACHED_MAX_ROWS) as u16;
    let [details, history, typing, attached, compose] = Layout::vertical([
        Constraint::Length(DETAILS_ROWS),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(attached_height),
        Constraint::Length(compose_height),
    ])
    .areas(inner);
    ConversationAreas {
        pane,
        details,
        history,
        typing,
        attached,
        compose,
    }
}

/// The queue's inner area (inside its border).
pub fn queue_inner(queue: Rect) -> Rect {
    queue.inner(Margin::new(1, 1))
}

/// How many entries are scrolled off the top of a queue of `height` rows so
/// that entry `selected` is visible.
pub fn queue_offset(selected: usize, height: u16) -> usize {
    let visible = usize::from((height / QUEUE_ROW).max(1));
    (selected + 1).saturating_sub(visible)
}

/// The queue entry under a click at (`column`, `row`), given the entry
/// selected now (which fixes the scroll offset).
pub fn queue_hit(queue: Rect, selected: usize, column: u16, row: u16) -> Option<usize> {
    let inner = queue_inner(queue);
    let inside = column >= inner.x
        && column < inner.x + inner.width
        && row >= inner.y
        && row < inner.y + inner.height;
    inside.then(|| queue_offset(selected, inner.height) + usize::from((row - inner.y) / QUEUE_ROW))
}
