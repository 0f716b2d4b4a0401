//! Narrowing the queue: type-to-filter (`/`), and the waiting conversations
//! beyond the relay's bounded `welcome`, paged in as the agent reaches the
//! end of the list.
//!
//! The filter runs here, over the conversations this client holds, so it
//! answers on every key without a round trip; `Ctrl-F` searches everything
//! the relay stored. Under a flood the welcome lists only the most urgent
//! waiting conversations (see `docs/protocol.md`, "Bounded welcome"); the
//! rest come a page at a time, only when asked for, so that a client is
//! never handed 20,000 conversations it did not scroll to.

use kefu_protocol::agent::search::{ConversationsPage, ConversationsRequest};
use kefu_protocol::agent::{AgentRequest, ConversationStatus};

use super::conversation::Conversation;
use super::{App, Filter};
use crate::keys::{Action, Focus};

/// Waiting conversations asked for per page beyond the welcome.
const WAITING_PAGE: u32 = 50;

/// What the agent typed after `/` in the queue: every word must appear,
/// ignoring case, in the visitor's name, email or address, the page they
/// are on, or the last message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedFilter {
    pub text: String,
}

impl TypedFilter {
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }

    pub fn matches(&self, conversation: &Conversation) -> bool {
        let summary = &conversation.summary;
        let visitor = &summary.visitor;
        let fields = [
            Some(visitor.name.as_str()),
            visitor.email.as_deref(),
            visitor.address.as_deref(),
            visitor.page_url.as_deref(),
            visitor.page_title.as_deref(),
            Some(summary.preview.as_str()),
        ];
        let haystack = fields
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
            .to_lowercase();
        self.text
            .to_lowercase()
            .split_whitespace()
            .all(|word| haystack.contains(word))
    }
}

/// The waiting conversations the welcome did not list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoreWaiting {
    /// How many, as far as this client knows: the welcome's total less
    /// those it listed, less those paged in since.
    pub count: u64,
    /// Where the next page starts; `None` before the first.
    cursor: Option<String>,
    /// The `request_id` of the page asked for and not yet come.
    awaited: Option<String>,
    /// Pages asked for so far, for fresh `request_id`s.
    asked: u64,
}

impl MoreWaiting {
    pub fn new(count: u64) -> MoreWaiting {
        MoreWaiting {
            count,
            ..MoreWaiting::default()
        }
    }

    pub fn loading(&self) -> bool {
        self.awaited.is_some()
    }
}

impl App {
    /// `/` in the queue: the filter line takes the keys.
    pub(super) fn start_filter(&mut self) {
        self.focus = Focus::QueueFilter;
    }

    /// A key while typing the filter.
    pub(super) fn filter_act(&mut self, action: Action) {
        let text = &mut self.typed_filter.text;
        let edited = match action {
            Action::Insert(ch) => {
                text.push(ch);
                true
            }
            Action::Backspace => text.pop().is_some(),
            Action::KillToLineStart => {
                text.clear();
                true
            }
            Action::Up => {
                self.move_cursor(-1);
                false
            }
            Action::Down => {
                self.move_cursor(1);
                false
            }
            Action::Open => {
                self.open_selected();
                false
            }
            Action::Back => {
                self.clear_filter();
                false
            }
            Action::Search => {
                // Nothing here matched, perhaps: search everything stored.
                self.finder.query = std::mem::take(&mut self.typed_filter.text);
                self.focus = Focus::Queue;
                self.open_finder(super::finder::Mode::Search);
                self.finder.due = Some(self.now);
                false
            }
            _ => false,
        };
        if edited {
            // The best match is on top: put the highlight there, as a
            // picker does, so that Enter opens it.
            self.selected = self.rows().first().cloned();
        }
    }

    /// Esc: the whole queue again, with the focus on it.
    pub(super) fn clear_filter(&mut self) {
        self.typed_filter = TypedFilter::default();
        self.focus = Focus::Queue;
    }

    /// The highlight reached the last row: page in more waiting visitors if
    /// the tab lists waiting ones and the welcome left some out.
    pub(super) fn at_end_of_queue(&mut self) {
        let lists_waiting = matches!(self.filter, Filter::Waiting | Filter::All);
        let more = &self.more_waiting;
        if !lists_waiting || more.count == 0 || more.loading() || !self.online() {
            return;
        }
        self.more_waiting.asked += 1;
        let request_id = format!("queue-{}", self.more_waiting.asked);
        self.more_waiting.awaited = Some(request_id.clone());
        self.request(AgentRequest::Conversations(ConversationsRequest {
            request_id: Some(request_id),
            status: Some(ConversationStatus::Waiting),
            cursor: self.more_waiting.cursor.clone(),
            limit: Some(WAITING_PAGE),
        }));
    }

    /// A `conversations` page: the queue's, if it asked for it (it returns
    /// `None` then); otherwise the page is handed back for the finder.
    pub(super) fn waiting_page(&mut self, page: ConversationsPage) -> Option<ConversationsPage> {
        if page.request_id.is_none() || page.request_id != self.more_waiting.awaited {
            return Some(page);
        }
        self.more_waiting.awaited = None;
        let mut added = 0;
        for summary in page.conversations {
            // Pages run newest first and the welcome listed the oldest, so
            // the last page overlaps the welcome; live frames add others.
            if !self.conversations.contains_key(&summary.id) {
                added += 1;
                self.summary(summary, false);
            }
        }
        self.more_waiting.count = match page.next_cursor {
            Some(_) => self.more_waiting.count.saturating_sub(added),
            None => 0,
        };
        self.more_waiting.cursor = page.next_cursor;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::summary;

    fn conversation(name: &str, preview: &str) -> Conversation {
        let mut summary = summary("c1", ConversationStatus::Waiting, 1);
        summary.visitor.name = name.into();
        summary.visitor.email = Some("olga@shop.example".into());
        summary.preview = preview.into();
        Conversation::new(summary)
    }

    #[test]
    fn every_word_must_match_somewhere_ignoring_case() {
        let c = conversation("Olga Petrova", "我的订单没到");
        let filter = |text: &str| TypedFilter { text: text.into() };
        assert!(filter("olga").matches(&c));
        assert!(filter("PETROVA 订单").matches(&c));
        assert!(filter("shop.example").matches(&c));
        assert!(!filter("olga refund").matches(&c));
        assert!(filter("  ").is_empty());
    }
}
