//! When the clock alone next changes what the agent sees or hears.
//!
//! The terminal loop draws only after an input and sleeps until the next
//! input or [`App::next_wake`], so an idle client costs nothing: it wakes
//! for a wait label turning from `4m` to `5m`, a typing indicator running
//! out, a bell held back by the quiet period — and for nothing else.

use kefu_protocol::agent::ConversationStatus;
use time::OffsetDateTime;

use super::App;
use super::clock::ago_changes_in;
use super::conversation::TYPING_STALE;

impl App {
    /// The next time the state read at that time would draw or ring
    /// differently than now; `None` while only an event can change it.
    pub fn next_wake(&self) -> Option<OffsetDateTime> {
        let now = self.now;
        let typing_ends = self
            .conversations
            .values()
            .filter_map(|c| c.visitor_typing)
            .map(|since| since + TYPING_STALE)
            .filter(|end| *end > now);
        // Waiting times show on the tab's rows and in the open chat's title.
        let waiting_labels = self
            .rows()
            .into_iter()
            .chain(self.open.clone())
            .filter_map(|id| self.conversations.get(&id))
            .filter(|c| c.summary.status == ConversationStatus::Waiting)
            .map(|c| {
                let since = c.summary.waiting_since.unwrap_or(c.summary.updated_at);
                now + ago_changes_in(now - since)
            });
        let held_bell = self.attention.next_due(self.quiet());
        typing_ends
            .chain(waiting_labels)
            .chain(held_bell)
            .chain(self.midnight())
            .chain(self.finder.due)
            .min()
    }

    /// History times gain a date when the day they are from is over.
    fn midnight(&self) -> Option<OffsetDateTime> {
        let open = self.open_conversation()?;
        if open.messages.is_empty() {
            return None;
        }
        let local = self.now.to_offset(self.utc_offset);
        let tomorrow = local.date().next_day()?;
        Some(tomorrow.midnight().assume_offset(self.utc_offset))
    }
}
