//! The client's whole state, and the one function that changes it.
//!
//! [`App::update`] takes an [`Input`] — a key, a click, a frame from the
//! relay, the clock — changes the state and returns [`Effect`]s for the
//! runtime to carry out (requests to send, notifications, quitting). It does
//! no I/O and never waits, which is what lets the tests drive it event by
//! event, and the screen stay responsive whatever the network does.
//!
//! - [`conversation`]: one conversation's messages, pending replies, draft.
//! - [`queue`]: the queue's tabs and order.
//! - [`history`]: a conversation's history as screen rows, which drawing
//!   styles and scrolling counts.
//! - `frames`: what the relay's frames do to the state.
//! - `commands`: what the agent's actions do; `link`: its `/link` command;
//!   `bulk`: an admin's `/resolve-waiting`;
//!   `files`: opening, attaching and completing files.
//! - `requests`: the requests both of those build.
//! - `failed`: replies the relay refused — retry, edit or drop them.
//! - [`sift`]: the queue's type-to-filter, and the waiting conversations
//!   beyond a bounded welcome, paged in at the end of the list.
//! - [`finder`]: search and the resolved conversations, paged from the
//!   relay; opening a conversation at a search hit.
//! - `scrolling`: the history's scroll, kept still under new messages;
//!   the mouse wheel; which inline previews to fetch, near the view.
//! - [`thumbnails`]: images' previews inline in the history, asked for
//!   near the view and kept in a small LRU.
//! - [`numbers`]: the rows' `Alt-n` numbers, kept while the list changes.
//! - `attention`: which events ring, counted and coalesced.
//! - [`clock`], `wake`: time labels, and when the clock alone next changes
//!   the screen (the only time the client wakes without an event).

pub mod assist;
mod attention;
mod bulk;
pub mod clock;
mod commands;
pub mod conversation;
mod failed;
mod files;
pub mod finder;
mod frames;
pub mod history;
mod link;
pub mod numbers;
pub mod queue;
mod requests;
mod scrolling;
pub mod sift;
pub mod thumbnails;
mod wake;

use std::collections::HashMap;
use std::time::Duration;

use crossterm::event::KeyEvent;
use kefu_protocol::agent::VisitorRecord;
use kefu_protocol::agent::{AgentEvent, AgentInfo, AgentPresence, AgentRequest};
use kefu_protocol::{AgentState, Attachment};
use time::{OffsetDateTime, UtcOffset};

pub use attention::{Attention, Kind};
pub use conversation::{Conversation, Draft, Outgoing, SendState};
pub use numbers::Numbers;
pub use queue::Filter;
pub use sift::{MoreWaiting, TypedFilter};
pub use thumbnails::Thumbnails;

use crate::config::{Canned, Notify, Settings};
use crate::keys::{self, Focus, Layer};
use crate::layout;

/// Messages asked for per `history` request.
pub const PAGE: u32 = 50;

/// Everything that can change the state.
#[derive(Debug, Clone)]
pub enum Input {
    Key(KeyEvent),
    /// Bracketed paste: text to insert as it is, newlines included.
    Paste(String),
    /// A left click at a terminal cell.
    Click {
        column: u16,
        row: u16,
    },
    /// The mouse wheel turned over a terminal cell.
    Wheel {
        column: u16,
        row: u16,
        up: bool,
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// The clock moved (wait times, typing expiry, held bells). The
    /// runtime sends one before every other input, so the state's `now`
    /// is current whenever something happens.
    Tick(OffsetDateTime),
    Net(NetEvent),
    /// What a file task reports.
    File(FileEvent),
    /// The runtime's answer to [`Effect::Complete`]: the path completed,
    /// and the matches when there are several.
    Completed {
        text: String,
        candidates: Vec<String>,
    },
    /// A bracketed paste that is just the path of an existing file (the
    /// runtime looks): the agent is asked whether to attach it.
    PastedFile {
        text: String,
        path: String,
    },
}

/// An image ready to draw in this terminal (kitty, iTerm2 or sixel
/// graphics): opaque to the state, drawn by `ui`.
#[derive(Clone)]
pub struct Preview(pub std::sync::Arc<ratatui_image::protocol::Protocol>);

impl std::fmt::Debug for Preview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Preview({:?})", self.0.size())
    }
}

/// The same image, not an equal one: enough for the overlay's comparisons.
impl PartialEq for Preview {
    fn eq(&self, other: &Preview) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Preview {}

/// What the file tasks report (see `crate::files`).
#[derive(Debug, Clone)]
pub enum FileEvent {
    /// `done` of `total` bytes moved; `what` names the transfer
    /// ("uploading shot.png").
    Progress {
        what: String,
        done: u64,
        total: u64,
    },
    /// Stored on the relay: it goes with the conversation's next message.
    Uploaded {
        conversation_id: String,
        attachment: Attachment,
    },
    UploadFailed {
        conversation_id: String,
        error: String,
    },
    /// Downloaded to `path`; `opened` says whether the opener took it,
    /// or why not.
    Saved {
        path: String,
        opened: Result<(), String>,
    },
    /// An image to show (see [`Effect::Preview`]).
    Preview {
        attachment: Attachment,
        image: Preview,
    },
    /// Attachment `id`'s inline preview in `cells` (see
    /// [`Effect::Thumbnail`]), or why there is none.
    Thumbnail {
        id: String,
        cells: thumbnails::Cells,
        image: Result<Preview, String>,
    },
    Failed {
        what: String,
        error: String,
    },
}

/// What the network task reports.
#[derive(Debug, Clone)]
pub enum NetEvent {
    Connecting {
        attempt: u32,
    },
    /// Boxed: frames are large and most events are small.
    Frame(Box<AgentEvent>),
    /// The connection is gone; the next attempt is in `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// The relay refused the token; the network task has stopped.
    Rejected(String),
}

/// What the runtime must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Request(AgentRequest),
    Notify(Notification),
    /// Clear the terminal and draw every cell again (Ctrl-L).
    Redraw,
    /// Open a link with the desktop's opener, if there is one.
    OpenLink(String),
    /// Download a file sent in a conversation, then open it.
    Download(Attachment),
    /// Fetch an image and make it ready to draw in at most `cells`
    /// (columns, rows); answered with [`FileEvent::Preview`].
    Preview {
        attachment: Attachment,
        cells: (u16, u16),
    },
    /// Fetch an image's thumbnail and make it ready to draw in `cells`
    /// (columns, rows) inline; answered with [`FileEvent::Thumbnail`].
    Thumbnail {
        attachment: Attachment,
        cells: thumbnails::Cells,
    },
    /// Upload the file at `path` (as typed) for the conversation's next
    /// message.
    Upload {
        conversation_id: String,
        path: String,
    },
    /// Complete the path typed after `/attach`; answered with
    /// [`Input::Completed`].
    Complete(String),
    Quit,
}

/// Something to ring the bell (and maybe pop a desktop notification) for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting { attempt: u32 },
    Online,
    Offline { reason: String, retry_in: Duration },
    Rejected(String),
}

/// What is drawn over the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    /// Online colleagues to hand `conversation` to: (agent id, name).
    Transfer {
        conversation: String,
        choices: Vec<(String, String)>,
        index: usize,
    },
    Canned {
        index: usize,
    },
    ConfirmQuit,
    /// The files sent in the open conversation, newest first: Enter
    /// downloads and opens one.
    Files {
        choices: Vec<Attachment>,
        index: usize,
    },
    /// An image drawn in the terminal: Enter saves and opens it.
    Preview {
        attachment: Attachment,
        image: Preview,
    },
    /// A pasted `path` of an existing file: attach it (y), or paste `text`.
    ConfirmAttach {
        path: String,
        text: String,
    },
    /// The visitor panel: who `visitor_id` is, their conversations (`index`
    /// the highlighted one; Enter opens it) and their page trail, live.
    /// `record` is `None` until the relay answers.
    Visitor {
        visitor_id: String,
        record: Option<Box<VisitorRecord>>,
        index: usize,
    },
    /// Search or the resolved conversations: see [`App::finder`].
    Finder,
    /// Resolving a conversation the agent is not looking at, or that is
    /// not theirs, is asked about first.
    ConfirmResolve {
        conversation: String,
        name: String,
        why: &'static str,
    },
}

/// A command the relay has not answered yet, so that its answer can name
/// the visitor it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Claim,
    Resolve,
    Transfer { to_agent: String },
}

/// The settings the state needs (the rest are the runtime's).
#[derive(Debug, Clone, Default)]
pub struct Prefs {
    pub notify: Notify,
    pub enter_sends: bool,
    pub canned: Vec<Canned>,
    /// The relay's pages (`http://host:port`), for its relative links.
    pub relay_page: String,
    /// The terminal can show images: Alt-o previews one before saving it.
    pub previews: bool,
    /// The terminal's cell in pixels, when images are previewed inline in
    /// the history as well (see [`thumbnails`]).
    pub inline_cell: Option<thumbnails::Cells>,
}

impl From<&Settings> for Prefs {
    fn from(settings: &Settings) -> Self {
        Prefs {
            notify: settings.notify.clone(),
            enter_sends: settings.keys.enter_sends,
            canned: settings.canned.clone(),
            relay_page: assist::relay_page(&settings.url),
            // Known once the terminal was asked (see `Core::start`).
            previews: false,
            inline_cell: None,
        }
    }
}

#[derive(Debug)]
pub struct App {
    pub prefs: Prefs,
    pub me: Option<AgentInfo>,
    /// Availability as the relay last reported it.
    pub my_state: AgentState,
    /// Availability the agent asked for; restored after a relay restart.
    wanted_state: AgentState,
    /// Every colleague account, with presence.
    pub agents: Vec<AgentPresence>,
    pub conversations: HashMap<String, Conversation>,
    pub filter: Filter,
    /// The queue's cursor, by id so that it stays put when rows reorder.
    pub selected: Option<String>,
    /// The conversation on screen.
    pub open: Option<String>,
    pub focus: Focus,
    pub overlay: Overlay,
    pub connection: Connection,
    pub now: OffsetDateTime,
    /// Times are shown in this offset.
    pub utc_offset: UtcOffset,
    /// The terminal's size, for mouse hits and scrolling.
    pub size: (u16, u16),
    /// A one-line notice (an error, a hint) until the next key.
    pub flash: Option<String>,
    /// The address in `flash`, if it shows one: the terminal makes it a
    /// link (OSC 8) where it is drawn.
    pub flash_link: Option<String>,
    /// Rows the help is scrolled down by, when it does not fit.
    pub help_scroll: usize,
    /// A welcome came before: later ones are reconnects.
    welcomed: bool,
    /// When `typing: true` was last sent, to send it at most every few seconds.
    typing_sent: Option<OffsetDateTime>,
    effects: Vec<Effect>,
    /// Claims, resolves and transfers sent, by conversation, until the
    /// summary (or error) that answers them.
    asked: HashMap<String, Asked>,
    /// The queue rows' `Alt-n` numbers.
    numbers: Numbers,
    /// What has rung, what is held back, how much is unseen.
    pub attention: Attention,
    /// Search and the resolved conversations (the `Finder` overlay).
    pub finder: finder::Finder,
    /// Conversations that were waiting at sign-in beyond those the relay's
    /// bounded `welcome` listed (its `totals`), paged in on request.
    pub more_waiting: MoreWaiting,
    /// What the agent typed after `/` in the queue.
    pub typed_filter: TypedFilter,
    /// Images' inline previews: their sizes, and those ready to draw.
    pub thumbnails: Thumbnails,
}

impl App {
    pub fn new(prefs: Prefs, now: OffsetDateTime, utc_offset: UtcOffset) -> App {
        App {
            thumbnails: Thumbnails::new(prefs.inline_cell),
            prefs,
            me: None,
            my_state: AgentState::Available,
            wanted_state: AgentState::Available,
            agents: Vec::new(),
            conversations: HashMap::new(),
            filter: Filter::All,
            selected: None,
            open: None,
            focus: Focus::Queue,
            overlay: Overlay::None,
            connection: Connection::Connecting { attempt: 0 },
            now,
            utc_offset,
            size: (80, 24),
            flash: None,
            flash_link: None,
            help_scroll: 0,
            welcomed: false,
            typing_sent: None,
            effects: Vec::new(),
            asked: HashMap::new(),
            numbers: Numbers::default(),
            attention: Attention::default(),
            finder: finder::Finder::default(),
            more_waiting: MoreWaiting::default(),
            typed_filter: TypedFilter::default(),
        }
    }

    /// Applies one input; returns what the runtime must do about it.
    pub fn update(&mut self, input: Input) -> Vec<Effect> {
        if matches!(
            input,
            Input::Key(_) | Input::Paste(_) | Input::PastedFile { .. } | Input::Click { .. }
        ) {
            self.attention_seen();
        }
        match input {
            Input::Key(key) => {
                let action = keys::action(key, self.focus, self.layer(), self.prefs.enter_sends);
                if let Some(action) = action {
                    self.flash = None;
                    self.act(action);
                }
            }
            Input::Paste(text) => self.paste(&text),
            Input::Click { column, row } => self.click(column, row),
            Input::Wheel { column, row, up } => self.wheel(column, row, up),
            Input::Resize { width, height } => self.size = (width, height),
            Input::Tick(now) => {
                self.now = now;
                self.ring_held();
                self.finder_tick();
            }
            Input::Net(event) => self.net(event),
            Input::File(event) => self.file_event(event),
            Input::Completed { text, candidates } => self.completed(&text, &candidates),
            Input::PastedFile { text, path } => self.pasted_file(text, path),
        }
        self.renumber();
        self.want_thumbnails();
        std::mem::take(&mut self.effects)
    }

    /// Which layer takes the keys.
    pub fn layer(&self) -> Layer {
        match self.overlay {
            Overlay::None => Layer::None,
            Overlay::Help => Layer::Help,
            Overlay::Transfer { .. }
            | Overlay::Canned { .. }
            | Overlay::Visitor { .. }
            | Overlay::Files { .. }
            | Overlay::Preview { .. } => Layer::Picker,
            Overlay::ConfirmQuit
            | Overlay::ConfirmResolve { .. }
            | Overlay::ConfirmAttach { .. } => Layer::Confirm,
            Overlay::Finder => Layer::Finder,
        }
    }

    pub fn me_id(&self) -> Option<&str> {
        self.me.as_ref().map(|me| me.id.as_str())
    }

    /// The queue's rows under the current tab and typed filter, in order.
    /// The highlighted conversation stays among them even when it no longer
    /// belongs under the tab (claimed from Waiting, say): the highlight
    /// never jumps to another customer on its own, since commands act on
    /// it. The typed filter is the agent's own choice, and does hide it.
    pub fn rows(&self) -> Vec<String> {
        let mut rows = queue::rows(&self.conversations, self.filter, self.me_id());
        let typed = &self.typed_filter;
        if !typed.is_empty() {
            rows.retain(|id| (self.conversations.get(id)).is_some_and(|c| typed.matches(c)));
        }
        let pinned = self
            .selected
            .as_ref()
            .and_then(|id| self.conversations.get(id))
            .filter(|c| typed.is_empty() || typed.matches(c));
        if let Some(pinned) = pinned
            && !rows.contains(&pinned.summary.id)
        {
            let at = rows
                .iter()
                .position(|id| {
                    self.conversations
                        .get(id)
                        .is_some_and(|c| queue::urgency(pinned, c, self.me_id()).is_lt())
                })
                .unwrap_or(rows.len());
            rows.insert(at, pinned.summary.id.clone());
        }
        rows
    }

    /// Gives the current tab's rows their `Alt-n` numbers (see [`numbers`]).
    fn renumber(&mut self) {
        let rows = self.rows();
        self.numbers.refresh(self.filter, &rows);
    }

    /// The number (from 1) shown on `id`'s row, which `Alt-n` opens.
    pub fn number(&self, id: &str) -> Option<usize> {
        self.numbers.of(id)
    }

    /// Where the queue's cursor is among `rows` (the first row when nothing
    /// is selected, or the selection was forgotten).
    pub fn selected_index(&self, rows: &[String]) -> usize {
        self.selected
            .as_ref()
            .and_then(|id| rows.iter().position(|row| row == id))
            .unwrap_or(0)
    }

    /// The visitor's name as the queue shows it (already sanitized).
    pub fn visitor_name(&self, id: &str) -> String {
        self.conversations
            .get(id)
            .map_or_else(|| id.to_owned(), |c| c.summary.visitor.name.clone())
    }

    /// Where everything goes on a terminal of `area`, as drawn now.
    pub fn screen(&self, area: ratatui::layout::Rect) -> layout::Screen {
        let draft = self.open_conversation().map(|c| &c.draft);
        layout::screen(
            area,
            self.focus,
            draft.map(|d| &d.buffer),
            draft.map_or(0, |d| d.attachments.len() + d.uploading),
        )
    }

    pub fn open_conversation(&self) -> Option<&Conversation> {
        self.open.as_ref().and_then(|id| self.conversations.get(id))
    }

    pub fn waiting_count(&self) -> usize {
        self.conversations
            .values()
            .filter(|c| Filter::Waiting.admits(c, None))
            .count()
    }

    pub fn online(&self) -> bool {
        self.connection == Connection::Online
    }

    pub fn agent_name(&self, id: &str) -> Option<&str> {
        self.agents
            .iter()
            .find(|agent| agent.id == id)
            .map(|agent| agent.name.as_str())
    }

    /// Queues a request for the relay. Requests are only made while online;
    /// replies made offline stay pending and go out after the next welcome.
    fn request(&mut self, request: AgentRequest) {
        self.effects.push(Effect::Request(request));
    }
}

#[cfg(test)]
pub(crate) mod tests;
