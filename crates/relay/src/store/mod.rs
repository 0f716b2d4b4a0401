//! Durable state: agents, visitors, conversations and their messages.
//!
//! [`Store`] is what the rest of the relay sees; [`open`] picks the backend
//! from the database URL. Every write is committed (and fsync'd) before its
//! future resolves, so the transport may acknowledge it. Writes that change a
//! conversation are also published, in commit order, as [`Change`]s on the
//! feed handed to [`open`]: the hub fans them out to connected clients, so a
//! client never hears of a message that is not yet durable.
//!
//! # Layout
//! - `rows`: the rows both backends return, as protocol types; `reads`:
//!   the read queries both answer alike, each from its own SQL text;
//!   `rules`: who may do what to a conversation; `events`: timeline
//!   events as the messages they are stored as; `search`: search and the
//!   paged conversation list, as far as both backends share them;
//!   `files`: the rows of uploaded files, their reads and who may fetch
//!   one; `deletion`: what deleting a conversation removes; `lanes`: the
//!   writers' two queues, agents' writes ahead of visitors'.
//! - `sqlite`: the embedded default (a writer thread that commits in
//!   batches, reads on a pool); `postgres`: the store of a cluster, and
//!   its `LISTEN`/`NOTIFY` bus.

mod blocks;
mod deletion;
mod events;
mod files;
mod lanes;
mod postgres;
mod reads;
mod rows;
mod rules;
mod search;
mod sqlite;

use std::path::Path;

use async_trait::async_trait;
use kefu_protocol::agent::{AgentInfo, AgentReadMark, ConversationSummary, Role};
use kefu_protocol::trail::{LinkCard, PageView};
use kefu_protocol::visitor::VisitorProfile;
use kefu_protocol::{Message, ReadReceipt, Seq, TimelineEvent};
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub use blocks::Block;
pub use deletion::Deleted;
pub use files::{FileOwner, FileReader, FileReads, NewFile, StoredFile};
pub use postgres::PgStore;
pub use reads::Reads;
pub use search::{ListPage, ListQuery, MAX_TERMS, SearchPage, SearchQuery};
pub use sqlite::SqliteStore;

use crate::cluster::ClusterLink;
use crate::ids::ConnId;

/// A committed change to a conversation, for fan-out.
#[derive(Debug, Clone)]
pub enum Change {
    /// A message or a timeline event (claim, transfer, resolve, reopen:
    /// see [`Message::event`]); an event's `summary` is the state it left.
    Message {
        message: Message,
        summary: ConversationSummary,
        /// The connection that sent it: it got an `ack` and needs no echo.
        origin: Option<ConnId>,
    },
    /// A visitor profile update.
    Summary { summary: ConversationSummary },
    /// Pages added to the trail of the conversation's visitor, oldest
    /// first; `summary` shows the newest as the page the visitor is on.
    PageViews {
        summary: ConversationSummary,
        views: Vec<PageView>,
    },
    /// A read mark moved: the visitor's, or an agent's own (`mark`, for
    /// that agent's connections only) and, when that agent answers the
    /// visitor, the one the visitor sees (`receipt`, and the summary's
    /// `unread`). At least one of the two is there.
    Read {
        receipt: Option<ReadReceipt>,
        mark: Option<AgentMark>,
        summary: ConversationSummary,
    },
}

/// An agent's own read position, moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMark {
    pub agent_id: String,
    pub mark: AgentReadMark,
}

/// Which conversations a resolve ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveScope {
    /// Any open one.
    Open,
    /// Only a waiting one.
    Waiting,
}

/// Who read a conversation.
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    Visitor,
    Agent(&'a AgentInfo),
}

/// A visitor's `send`.
#[derive(Debug, Clone)]
pub struct VisitorSend {
    pub visitor_id: String,
    /// Saved on the visitor's row when this send creates it.
    pub details: VisitorDetails,
    pub client_id: String,
    pub text: String,
    /// Ids of the visitor's pending uploads to send with it.
    pub attachments: Vec<String>,
    pub origin: Option<ConnId>,
}

/// An agent's `send`.
#[derive(Debug, Clone)]
pub struct AgentSend {
    pub agent: AgentInfo,
    pub conversation_id: String,
    pub client_id: String,
    pub text: String,
    pub internal: bool,
    /// Makes it a link card (see [`Message::link`]).
    pub link: Option<LinkCard>,
    /// Ids of the agent's pending uploads to send with it.
    pub attachments: Vec<String>,
    pub origin: Option<ConnId>,
}

/// What the relay knows of a visitor besides the id: the page's profile plus
/// the browser's user agent, all bounded in length by the transport.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorDetails {
    pub profile: VisitorProfile,
    pub user_agent: Option<String>,
    /// The client address, as the `visitor_address` setting keeps it.
    pub address: Option<String>,
}

/// An agent account as `agent list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAccount {
    pub info: AgentInfo,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

/// Which messages of a conversation to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The oldest `limit` messages with `seq > after` (resume).
    After { after: Seq, limit: u32 },
    /// The newest `limit` messages with `seq < before` (scrolling back).
    Before { before: Option<Seq>, limit: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(&'static str),
    // The cause is in the message rather than `#[source]`, so that an error
    // chain printed with `{:#}` does not repeat it.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// From the SQLite writer, which uses rusqlite (see `sqlite::writer`).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("the database holds an unexpected value: {0}")]
    Corrupt(String),
    #[error("commit failed, nothing of this batch was stored: {0}")]
    CommitFailed(String),
    #[error("the store is shut down")]
    Closed,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Unsupported(&'static str),
    /// A search or list took longer than its budget and was stopped.
    #[error("the query took longer than its budget of {0:?}")]
    TimedOut(std::time::Duration),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(error)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}

/// Everything the relay asks of its database. The reads come from
/// [`Reads`], which both backends answer with the same code.
#[async_trait]
pub trait Store: Reads + FileReads + 'static {
    /// Stores a visitor's message, creating the visitor and the conversation
    /// on the first one and reopening a resolved conversation as waiting.
    /// A repeated `client_id` returns the original message and stores nothing.
    /// The named `attachments` must be the visitor's pending uploads; they
    /// are attached in the same transaction, or nothing is stored.
    async fn visitor_send(&self, send: VisitorSend) -> Result<Message, StoreError>;

    /// Stores an agent's message. A reply (not an internal note) to a waiting
    /// or resolved conversation assigns it to the agent; one to a
    /// conversation assigned to somebody else is a conflict.
    async fn agent_send(&self, send: AgentSend) -> Result<Message, StoreError>;

    /// Assigns a waiting or resolved conversation to `agent`. Exactly one of
    /// racing claims wins; the others get `Conflict`.
    async fn claim(
        &self,
        conversation_id: &str,
        agent: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError>;

    /// Hands a conversation to another agent (the assignee or an admin may).
    async fn transfer(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        to_agent: &str,
    ) -> Result<ConversationSummary, StoreError>;

    /// Resolves a conversation, if it is open and `by` may (see
    /// `rules::resolve`); answers its summary, resolved or not.
    async fn resolve(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError> {
        self.resolve_in(conversation_id, by, ResolveScope::Open)
            .await
    }

    /// [`Store::resolve`], only if the conversation is in `scope`: a bulk
    /// resolve of waiting conversations must not end one an agent claimed
    /// between the read that matched it and this write.
    async fn resolve_in(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        scope: ResolveScope,
    ) -> Result<ConversationSummary, StoreError>;

    /// Records that `reader` has seen everything up to `up_to_seq`. Read marks
    /// only move forward. An agent moves its own mark; it moves the mark the
    /// visitor sees as "seen" only if it answers the visitor (see
    /// `rules::reads_for_visitor`).
    async fn mark_read(
        &self,
        conversation_id: &str,
        reader: Reader<'_>,
        up_to_seq: Seq,
    ) -> Result<(), StoreError>;

    /// Appends `event` to the conversation's timeline when it changes
    /// nothing else (a call's start, joins, leaves and end), published
    /// with `origin` as the connection that made it happen. The
    /// conversation must exist; its status does not matter.
    async fn record_event(
        &self,
        conversation_id: &str,
        event: TimelineEvent,
        origin: Option<ConnId>,
    ) -> Result<(), StoreError>;

    /// Refreshes what agents see of a visitor who already has a conversation
    /// (e.g. the page they moved to). A visitor without one is not written.
    async fn update_visitor(
        &self,
        visitor_id: &str,
        details: VisitorDetails,
    ) -> Result<(), StoreError>;

    /// Adds `views` (oldest first) to a visitor's page trail, keeping the
    /// newest [`MAX_TRAIL`](kefu_protocol::trail::MAX_TRAIL), and shows the
    /// last as the page the visitor is on. Only a visitor with a
    /// conversation has a stored trail: for one without, nothing is written
    /// and the answer is `false` (the caller holds the views until then).
    async fn record_page_views(
        &self,
        visitor_id: &str,
        views: Vec<PageView>,
    ) -> Result<bool, StoreError>;

    async fn add_agent(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
    ) -> Result<AgentInfo, StoreError>;

    /// Disables an agent. Its open connections lose their rights at the
    /// next revocation check (transport::revocation).
    async fn disable_agent(&self, name: &str) -> Result<(), StoreError>;

    /// Gives an agent a new token; the old one stops working, on open
    /// connections too.
    async fn set_agent_token(&self, name: &str, token_hash: &str) -> Result<(), StoreError>;

    /// Blocks a range of client addresses, or replaces the block of that
    /// range (a new reason or expiry). Running relays refuse it within a
    /// second (transport::blocking).
    async fn block(&self, block: &Block) -> Result<(), StoreError>;

    /// Lifts the block of exactly `range`; `NotFound` if there is none.
    async fn unblock(&self, range: &str) -> Result<(), StoreError>;

    /// The key that signs visitor tokens, made on first use.
    async fn visitor_secret(&self) -> Result<Vec<u8>, StoreError>;

    /// Whether the database answers now, for `/readyz`: an error when it
    /// cannot be reached, or (a file) is gone or unreadable.
    async fn health(&self) -> Result<(), StoreError>;

    /// Writes a consistent copy of the database to `path`, which must not
    /// exist, while the store goes on serving. A backend whose data lives
    /// in a server says which tool to use instead.
    async fn backup(&self, path: &Path) -> Result<(), StoreError>;

    /// A page of messages and visitors matching `query`, newest first,
    /// read on the search's own connections within `query.budget`.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError>;

    /// A page of conversations, most recently changed first, read like
    /// [`Store::search`].
    async fn list_conversations(&self, query: &ListQuery) -> Result<ListPage, StoreError>;
    /// Records an uploaded file whose blob is already durable.
    async fn add_file(&self, file: NewFile) -> Result<(), StoreError>;

    /// Forgets pending uploads (never sent) made before `before`; returns
    /// how many. Their blobs go with the next sweep of unreferenced blobs.
    async fn prune_files(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Deletes the resolved conversations among `ids`, each with its
    /// messages, files' rows, search rows, read marks and visitor (see
    /// `deletion`); an id unknown or not resolved (checked in the deleting
    /// write) is skipped. The blobs the removed rows named are the
    /// caller's to remove once no row names them (`crate::prune`).
    async fn delete_conversations(&self, ids: &[String]) -> Result<Deleted, StoreError>;

    /// Finishes queued writes and closes the database.
    async fn close(&self);
}

/// Opens (creating and migrating if needed) the database named by `url`,
/// for commands that only read and write (admin subcommands, tests).
pub async fn open(
    url: &str,
    changes: Option<mpsc::Sender<Change>>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_node(url, changes).await.map(|(store, _)| store)
}

/// Opens the database for a serving relay. Committed conversation changes
/// are published on `changes`; with PostgreSQL they come from every node of
/// the cluster, and the returned link carries the cluster's ephemeral news.
pub async fn open_node(
    url: &str,
    changes: Option<mpsc::Sender<Change>>,
) -> Result<(std::sync::Arc<dyn Store>, Option<ClusterLink>), StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let store = SqliteStore::open(std::path::Path::new(path), changes).await?;
        Ok((std::sync::Arc::new(store), None))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (store, link) = PgStore::open(url, changes).await?;
        Ok((std::sync::Arc::new(store), link))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Now, at the millisecond precision the database keeps, so that a message's
/// `at` is the same whether it comes from the write or from a later read.
pub(crate) fn now_millis() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let millis = now.unix_timestamp_nanos() / 1_000_000;
    to_time(millis as i64)
}

pub(crate) fn to_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn to_time(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The first characters of a message, for the agents' queue; a message of
/// `files` alone says so, rather than leave the queue's line empty.
pub(crate) fn preview_of(text: &str, files: usize) -> String {
    const PREVIEW_CHARS: usize = 100;
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() && files > 0 {
        return match files {
            1 => "📎 1 file".to_owned(),
            _ => format!("📎 {files} files"),
        };
    }
    match flat.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// The name agents see for a visitor who did not give one.
pub(crate) fn default_visitor_name(visitor_id: &str) -> String {
    let tail: String = visitor_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("Visitor #{tail}")
}
