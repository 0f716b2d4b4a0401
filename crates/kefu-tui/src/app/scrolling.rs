//! Scrolling: the history by pages (PgUp/PgDn) or by the wheel, the help
//! when it does not fit, and the history kept still under new messages.
//!
//! `Conversation::scroll` counts rows up from the newest message, so a new
//! message at the bottom would push the text the agent is reading up by
//! its height; the scroll grows by that much instead, and the message is
//! counted as new below until the agent scrolls back down.
//!
//! Where the view is also decides which images' inline previews are
//! fetched ([`super::thumbnails`]).

use kefu_protocol::{Attachment, Message};
use ratatui::layout::Rect;

use super::requests::history_request;
use super::thumbnails::Cells;
use super::{App, Conversation, Effect, Overlay, Preview, Thumbnails, history};
use crate::keys;

/// Rows one notch of the mouse wheel scrolls the history.
const WHEEL_ROWS: usize = 3;

impl App {
    /// The open conversation's history area, as drawn now.
    pub(super) fn history_area(&self) -> Option<Rect> {
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        self.screen(area).conversation.map(|areas| areas.history)
    }

    /// PgUp / PgDn by a screenful.
    pub(super) fn scroll(&mut self, up: bool) {
        if let Some(area) = self.history_area() {
            self.scroll_history(up, usize::from(area.height.saturating_sub(1).max(1)));
        }
    }

    /// Scrolls the open history by `rows`, asking for an older page once
    /// the top of what is held is reached.
    fn scroll_history(&mut self, up: bool, rows: usize) {
        let online = self.online();
        let Some(area) = self.history_area() else {
            return;
        };
        let Some(conversation) = self.open_conversation() else {
            return;
        };
        let total = history::rows(conversation, area.width, &self.thumbnails).len();
        let top = total.saturating_sub(usize::from(area.height));
        let Some(id) = self.open.clone() else { return };
        let Some(conversation) = self.conversations.get_mut(&id) else {
            return;
        };
        if !up {
            conversation.scroll = conversation.scroll.saturating_sub(rows).min(top);
            if conversation.scroll == 0 {
                conversation.new_below = 0;
            }
            return;
        }
        conversation.scroll = (conversation.scroll + rows).min(top);
        let older = conversation.scroll == top
            && !conversation.complete()
            && !conversation.loading_older
            && online;
        if older {
            conversation.loading_older = true;
            let before = conversation.oldest_seq();
            self.request(history_request(&id, before));
        }
    }

    /// The help, by `step` rows, within what does not fit on screen.
    pub(super) fn scroll_help(&mut self, step: isize) {
        let visible = usize::from(self.size.1.saturating_sub(2));
        let hidden = keys::help_height(self.size.0).saturating_sub(visible);
        self.help_scroll = self.help_scroll.saturating_add_signed(step).min(hidden);
    }

    /// The wheel scrolls what is under the pointer: the queue's highlight,
    /// the history, or the help.
    pub(super) fn wheel(&mut self, column: u16, row: u16, up: bool) {
        let step = if up { -1 } else { 1 };
        match self.overlay {
            Overlay::None => {}
            Overlay::Help => return self.scroll_help(step * WHEEL_ROWS as isize),
            _ => return,
        }
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        let screen = self.screen(area);
        let at = ratatui::layout::Position::new(column, row);
        if screen.queue.is_some_and(|queue| queue.contains(at)) {
            self.move_cursor(step);
        } else if screen
            .conversation
            .is_some_and(|areas| areas.history.contains(at))
        {
            self.scroll_history(up, WHEEL_ROWS);
        }
    }
}

impl App {
    /// Asks for the thumbnails of the images within a screen above and
    /// one below the open history's view that are not ready (as many as
    /// may load at once). Called after every input: it is what starts
    /// them, as the view moves or a conversation opens.
    pub(super) fn want_thumbnails(&mut self) {
        if !self.online() {
            return;
        }
        let Some(area) = self.history_area() else {
            return;
        };
        let Some(conversation) = self.open_conversation() else {
            return;
        };
        if !self.thumbnails.enabled() {
            return;
        }
        let rows = history::rows(conversation, area.width, &self.thumbnails);
        let height = usize::from(area.height);
        let end = history::view_end(rows.len(), conversation.scroll, height);
        let near = end.saturating_sub(2 * height)..(end + height).min(rows.len());
        let images: Vec<(Attachment, Cells)> = rows[near]
            .iter()
            .filter_map(|row| match row {
                history::Row::Image {
                    attachment,
                    cells,
                    part: 0,
                    ..
                } => Some(((*attachment).clone(), *cells)),
                _ => None,
            })
            .collect();
        for (attachment, cells) in images {
            if self.thumbnails.wanted(&attachment, cells) {
                self.effects.push(Effect::Thumbnail { attachment, cells });
            }
        }
    }

    /// The runtime's answer to [`Effect::Thumbnail`]. A thumbnail that
    /// cannot be had gives its rows back: those below a history scrolled
    /// up come off the scroll, so the text being read stays put.
    pub(super) fn thumbnail_arrived(
        &mut self,
        id: String,
        cells: Cells,
        image: Result<Preview, String>,
    ) {
        let area = self.history_area();
        let below = match (image.is_err(), area, self.open_conversation()) {
            (true, Some(area), Some(conversation)) if conversation.scroll > 0 => {
                let rows = history::rows(conversation, area.width, &self.thumbnails);
                let height = usize::from(area.height);
                let end = history::view_end(rows.len(), conversation.scroll, height);
                (rows[end..].iter())
                    .filter(|row| {
                        matches!(row, history::Row::Image { attachment, .. } if attachment.id == id)
                    })
                    .count()
            }
            _ => 0,
        };
        self.thumbnails.arrived(id, cells, image);
        let open = self.open.as_ref();
        if let Some(conversation) = open.and_then(|id| self.conversations.get_mut(id)) {
            conversation.scroll = conversation.scroll.saturating_sub(below);
        }
    }
}

impl Conversation {
    /// Stores `message` (as [`Conversation::insert`]) without moving the
    /// text of a history scrolled up in a pane `width` columns wide (its
    /// images' previews as `thumbnails` lays them out): a
    /// message newer than any held grows the scroll by the rows it adds
    /// below, and is counted for the "new below" marker. (An older one,
    /// from a page of history, goes above: the scroll counts from the
    /// bottom, so the text stays put by itself.)
    pub fn insert_below_reader(
        &mut self,
        message: Message,
        width: u16,
        thumbnails: &Thumbnails,
    ) -> bool {
        let newest = self.messages.keys().next_back().copied();
        let below = newest.is_none_or(|newest| message.seq > newest);
        if self.scroll == 0 || !below {
            return self.insert(message);
        }
        let before = history::rows(self, width, thumbnails).len();
        let new = self.insert(message);
        let after = history::rows(self, width, thumbnails).len();
        self.scroll += after.saturating_sub(before);
        if new {
            self.new_below += 1;
        }
        new
    }
}
