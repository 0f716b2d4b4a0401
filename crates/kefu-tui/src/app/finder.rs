//! Finding conversations the queue does not hold: search (Ctrl-F) with
//! results as the agent types, and the resolved conversations (`H`), both
//! paged from the relay.
//!
//! Typing asks nothing at once: the search goes out once the query has been
//! still for [`DEBOUNCE`] (the clock wakes the client for it, see
//! `wake`), and only the answer to the latest request is taken — one to a
//! query since replaced is stale and dropped by its `request_id`. Enter on a
//! hit opens its conversation, pages back until the hit is loaded, and
//! scrolls it into view with the match highlighted.

use kefu_protocol::agent::search::{
    ConversationsPage, ConversationsRequest, SearchHit, SearchRequest, SearchResults,
};
use kefu_protocol::agent::{AgentRequest, ConversationStatus, ConversationSummary};
use time::OffsetDateTime;

use super::conversation::Hit;
use super::requests::history_request;
use super::{App, Conversation, Overlay, history};
use crate::keys::Action;

/// How long the query must be still before it is searched.
pub const DEBOUNCE: time::Duration = time::Duration::milliseconds(250);
/// Rows asked for per page.
const PAGE: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Search,
    /// The resolved conversations, newest first.
    Resolved,
}

/// The finder's state while it is open (and what it found, kept until it
/// is opened again).
#[derive(Debug, Clone)]
pub struct Finder {
    pub mode: Mode,
    pub query: String,
    pub hits: Vec<SearchHit>,
    pub resolved: Vec<ConversationSummary>,
    pub index: usize,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
    /// The `request_id` whose answer is awaited; any other is stale.
    pub awaited: Option<String>,
    /// Requests made so far, for fresh `request_id`s.
    sent: u64,
    /// The query changed: search it at this time.
    pub due: Option<OffsetDateTime>,
}

impl Default for Finder {
    fn default() -> Self {
        Finder {
            mode: Mode::Search,
            query: String::new(),
            hits: Vec::new(),
            resolved: Vec::new(),
            index: 0,
            next_cursor: None,
            awaited: None,
            sent: 0,
            due: None,
        }
    }
}

impl Finder {
    /// Rows listed in the current mode.
    pub fn len(&self) -> usize {
        match self.mode {
            Mode::Search => self.hits.len(),
            Mode::Resolved => self.resolved.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn next_request_id(&mut self) -> String {
        self.sent += 1;
        let id = format!("f{}", self.sent);
        self.awaited = Some(id.clone());
        id
    }
}

impl App {
    /// Ctrl-F / `H`: opens the finder in `mode`.
    pub(super) fn open_finder(&mut self, mode: Mode) {
        self.overlay = Overlay::Finder;
        let finder = &mut self.finder;
        finder.mode = mode;
        finder.index = 0;
        if mode == Mode::Resolved {
            finder.resolved.clear();
            finder.next_cursor = None;
            self.ask_page(None);
        }
    }

    /// A key while the finder is open (Esc is the overlay's).
    pub(super) fn finder_act(&mut self, action: Action) {
        let searching = self.finder.mode == Mode::Search;
        let finder = &mut self.finder;
        let edited = match action {
            Action::Up => {
                finder.index = finder.index.saturating_sub(1);
                false
            }
            Action::Down => {
                finder.index = (finder.index + 1).min(finder.len().saturating_sub(1));
                // The last row: the next page, if any.
                if finder.index + 1 >= finder.len() {
                    self.ask_next_page();
                }
                false
            }
            Action::ScrollDown => {
                self.ask_next_page();
                false
            }
            Action::Open => {
                self.open_found();
                false
            }
            Action::Insert(ch) if searching => {
                finder.query.push(ch);
                true
            }
            Action::Backspace if searching => finder.query.pop().is_some(),
            Action::KillToLineStart if searching => {
                finder.query.clear();
                true
            }
            _ => false,
        };
        if edited {
            self.finder.due = Some(self.now + DEBOUNCE);
            // Answers to the old query are stale from now on.
            self.finder.awaited = None;
        }
    }

    fn ask_next_page(&mut self) {
        if self.finder.awaited.is_none()
            && let Some(cursor) = self.finder.next_cursor.take()
        {
            self.ask_page(Some(cursor));
        }
    }

    /// The clock moved: search a query that has been still long enough.
    pub(super) fn finder_tick(&mut self) {
        if self.finder.due.is_some_and(|due| due <= self.now) {
            self.finder.due = None;
            self.finder.hits.clear();
            self.finder.index = 0;
            self.finder.next_cursor = None;
            self.ask_page(None);
        }
    }

    /// Asks for the first page (`cursor` `None`) or the next.
    fn ask_page(&mut self, cursor: Option<String>) {
        if !self.online() {
            self.flash = Some("offline: cannot search now".into());
            return;
        }
        let query = self.finder.query.trim().to_owned();
        let mode = self.finder.mode;
        if mode == Mode::Search && query.is_empty() {
            self.finder.awaited = None;
            return;
        }
        let request_id = Some(self.finder.next_request_id());
        let limit = Some(PAGE);
        self.request(match mode {
            Mode::Search => AgentRequest::Search(SearchRequest {
                request_id,
                query,
                cursor,
                limit,
                ..SearchRequest::default()
            }),
            Mode::Resolved => AgentRequest::Conversations(ConversationsRequest {
                request_id,
                status: Some(ConversationStatus::Resolved),
                cursor,
                limit,
            }),
        });
    }

    pub(super) fn search_results(&mut self, results: SearchResults) {
        if results.request_id.is_none() || results.request_id != self.finder.awaited {
            return;
        }
        self.finder.awaited = None;
        self.finder.hits.extend(results.hits);
        self.finder.next_cursor = results.next_cursor;
    }

    pub(super) fn conversation_page(&mut self, page: ConversationsPage) {
        if page.request_id.is_none() || page.request_id != self.finder.awaited {
            return;
        }
        self.finder.awaited = None;
        self.finder.resolved.extend(page.conversations);
        self.finder.next_cursor = page.next_cursor;
    }

    /// Enter: opens the chosen conversation, at the hit for a search.
    fn open_found(&mut self) {
        let finder = &self.finder;
        let (summary, seq) = match finder.mode {
            Mode::Search => match finder.hits.get(finder.index) {
                Some(hit) => (hit.conversation.clone(), hit.seq),
                None => return,
            },
            Mode::Resolved => match finder.resolved.get(finder.index) {
                Some(summary) => (summary.clone(), None),
                None => return,
            },
        };
        let terms: Vec<String> = finder
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let id = summary.id.clone();
        let conversation = self
            .conversations
            .entry(id.clone())
            .or_insert_with(|| Conversation::new(summary));
        conversation.hit = seq.map(|seq| Hit { seq, terms });
        self.overlay = Overlay::None;
        self.open(&id);
        self.show_hit(&id);
    }

    /// Scrolls `id`'s hit into view once it is loaded, paging back until
    /// it is.
    pub(super) fn show_hit(&mut self, id: &str) {
        let online = self.online();
        let area = self.history_area();
        let Some(conversation) = self.conversations.get_mut(id) else {
            return;
        };
        let Some(seq) = conversation.hit.as_ref().map(|hit| hit.seq) else {
            return;
        };
        if !conversation.messages.contains_key(&seq) {
            let page_back = !conversation.messages.is_empty()
                && !conversation.complete()
                && !conversation.loading_older
                && online;
            if page_back {
                conversation.loading_older = true;
                let before = conversation.oldest_seq();
                self.request(history_request(id, before));
            }
            return;
        }
        let Some(area) = area else { return };
        let rows = history::rows(conversation, area.width, &self.thumbnails);
        let at = rows.iter().position(
            |row| matches!(row, history::Row::Header { message, .. } if message.seq == seq),
        );
        if let Some(at) = at {
            // `scroll` counts rows up from the bottom: put the hit on top.
            let total = rows.len();
            conversation.scroll = total.saturating_sub(at + usize::from(area.height));
        }
    }
}
