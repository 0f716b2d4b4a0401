//! Rows as both backends return them, and their conversion to protocol
//! types. The two schemas have the same columns, so one set of `FromRow`
//! types (generic over the database) serves SQLite and PostgreSQL alike, and
//! the SQLite writer, which speaks rusqlite, builds the same rows by column
//! name.

use kefu_protocol::agent::{
    AgentInfo, AgentReadMark, ConversationStatus, ConversationSummary, Role, VisitorSummary,
};
use kefu_protocol::trail::{LinkCard, PageView};
use kefu_protocol::{Author, AuthorKind, Message, Seq, TimelineEvent};

use super::{AgentAccount, StoreError, default_visitor_name, to_time};

/// The columns of a [`SummaryRow`], from `conversations c` and `visitors v`.
macro_rules! summary_columns {
    () => {
        "c.id, c.status, c.assignee, c.last_seq, c.unread,
        c.visitor_messages, c.preview, c.visitor_read_seq, c.waiting_since, c.updated_at, v.id AS visitor_id, v.name,
        v.email, v.page_url, v.page_title, v.referrer, v.lang, v.user_agent, v.address"
    };
}

/// The columns of a [`SummaryRow`], for queries that join more tables.
pub(super) const SUMMARY_COLUMNS: &str = summary_columns!();

/// Selects a [`SummaryRow`]; callers append `WHERE …`.
pub(super) const SUMMARY_SELECT: &str = concat!(
    "SELECT ",
    summary_columns!(),
    " FROM conversations c JOIN visitors v ON v.id = c.visitor_id"
);

/// Selects a [`MessageRow`]; callers append `WHERE …`.
pub(super) const MESSAGE_SELECT: &str = "SELECT conversation_id, seq, id, client_id, author_kind,
        author_id, author_name, text, internal, at, event, link, attachments FROM messages";

/// Selects a [`PageViewRow`]; callers append `WHERE …`.
pub(super) const PAGE_VIEW_SELECT: &str = "SELECT url, title, referrer, at FROM page_views";

/// Selects an [`AgentRow`]; callers append `WHERE …`.
pub(super) const AGENT_SELECT: &str = "SELECT id, name, role, disabled, created_at FROM agents";

/// Declares a row type once for both drivers: sqlx's `FromRow` and a
/// `from_rusqlite` for the SQLite writer, both reading each field from the
/// column of its name, so the two cannot drift apart.
macro_rules! row {
    ($(#[$meta:meta])* pub(super) struct $row:ident { $($field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(sqlx::FromRow)]
        pub(super) struct $row {
            $($field: $ty,)*
        }

        impl $row {
            pub(super) fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok($row {
                    $($field: row.get(stringify!($field))?,)*
                })
            }
        }
    };
}

pub(super) use row;

row! {
    /// Also decoded from JSON: PostgreSQL's message writes carry the rows
    /// they wrote in their notification (`postgres::bus`).
    #[derive(serde::Deserialize)]
    pub(super) struct MessageRow {
        conversation_id: String,
        seq: i64,
        id: String,
        client_id: String,
        author_kind: String,
        author_id: String,
        author_name: String,
        text: String,
        internal: bool,
        at: i64,
        event: Option<String>,
        link: Option<String>,
        attachments: Option<String>,
    }
}

impl MessageRow {
    /// The message's id: a new one, or a resend's original's.
    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<Message, StoreError> {
        Ok(Message {
            conversation_id: row.conversation_id,
            seq: seq_from_sql(row.seq),
            id: row.id,
            client_id: row.client_id,
            author: Author {
                kind: AuthorKind::parse(&row.author_kind).ok_or_else(|| {
                    StoreError::Corrupt(format!("author kind {:?}", row.author_kind))
                })?,
                id: row.author_id,
                name: row.author_name,
            },
            text: row.text,
            at: to_time(row.at),
            internal: row.internal,
            event: (row.event.as_deref().map(event_from_sql).transpose()?).map(Box::new),
            link: (row.link.as_deref().map(link_from_sql).transpose()?).map(Box::new),
            attachments: match row.attachments.as_deref() {
                Some(json) => serde_json::from_str(json)
                    .map_err(|error| StoreError::Corrupt(format!("attachments: {error}")))?,
                None => Vec::new(),
            },
        })
    }
}

row! {
    /// Also decoded from JSON, as [`MessageRow`].
    #[derive(serde::Deserialize)]
    pub(super) struct SummaryRow {
        id: String,
        status: String,
        assignee: Option<String>,
        last_seq: i64,
        unread: i64,
        visitor_messages: i64,
        preview: String,
        visitor_read_seq: i64,
        waiting_since: Option<i64>,
        updated_at: i64,
        visitor_id: String,
        name: Option<String>,
        email: Option<String>,
        page_url: Option<String>,
        page_title: Option<String>,
        referrer: Option<String>,
        lang: Option<String>,
        user_agent: Option<String>,
        address: Option<String>,
    }
}

impl TryFrom<SummaryRow> for ConversationSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow) -> Result<ConversationSummary, StoreError> {
        let name = row
            .name
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| default_visitor_name(&row.visitor_id));
        Ok(ConversationSummary {
            id: row.id,
            visitor: VisitorSummary {
                id: row.visitor_id,
                name,
                // Presence is the hub's to know; it fills this in.
                online: false,
                page_url: row.page_url,
                page_title: row.page_title,
                email: row.email,
                lang: row.lang,
                referrer: row.referrer,
                user_agent: row.user_agent,
                address: row.address,
            },
            status: status_from_sql(&row.status)?,
            assignee: row.assignee,
            last_seq: seq_from_sql(row.last_seq),
            unread: u32::try_from(row.unread).unwrap_or(u32::MAX),
            visitor_messages: count_from_sql(row.visitor_messages),
            preview: row.preview,
            visitor_read_seq: seq_from_sql(row.visitor_read_seq),
            waiting_since: row.waiting_since.map(to_time),
            updated_at: to_time(row.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PageViewRow {
    url: String,
    title: Option<String>,
    referrer: Option<String>,
    at: i64,
}

impl From<PageViewRow> for PageView {
    fn from(row: PageViewRow) -> Self {
        PageView {
            url: row.url,
            title: row.title,
            referrer: row.referrer,
            at: to_time(row.at),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ReadMarkRow {
    conversation_id: String,
    read_seq: i64,
    visitor_messages: i64,
}

impl From<ReadMarkRow> for AgentReadMark {
    fn from(row: ReadMarkRow) -> Self {
        AgentReadMark {
            conversation_id: row.conversation_id,
            up_to_seq: seq_from_sql(row.read_seq),
            visitor_messages: count_from_sql(row.visitor_messages),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AgentRow {
    id: String,
    name: String,
    role: String,
    disabled: bool,
    created_at: i64,
}

impl TryFrom<AgentRow> for AgentAccount {
    type Error = StoreError;

    fn try_from(row: AgentRow) -> Result<AgentAccount, StoreError> {
        Ok(AgentAccount {
            info: AgentInfo {
                id: row.id,
                name: row.name,
                role: Role::parse(&row.role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", row.role)))?,
            },
            disabled: row.disabled,
            created_at: to_time(row.created_at),
        })
    }
}

/// Converts rows, failing on the first corrupt one.
pub(super) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

pub(super) fn status_from_sql(status: &str) -> Result<ConversationStatus, StoreError> {
    ConversationStatus::parse(status)
        .ok_or_else(|| StoreError::Corrupt(format!("conversation status {status:?}")))
}

/// A timeline event as the `event` column keeps it: its JSON on the wire.
pub(super) fn event_to_sql(event: Option<&TimelineEvent>) -> Option<String> {
    // Serialising a plain enum of strings cannot fail.
    event.and_then(|event| serde_json::to_string(event).ok())
}

/// A message's attachments as the `attachments` column keeps them: their
/// JSON on the wire, or NULL for none.
pub(super) fn attachments_to_sql(attachments: &[kefu_protocol::Attachment]) -> Option<String> {
    // Serialising plain strings and numbers cannot fail.
    (!attachments.is_empty())
        .then(|| serde_json::to_string(attachments).ok())
        .flatten()
}

fn event_from_sql(event: &str) -> Result<TimelineEvent, StoreError> {
    serde_json::from_str(event).map_err(|error| StoreError::Corrupt(format!("event: {error}")))
}

/// A link card as the `link` column keeps it: its JSON on the wire.
pub(super) fn link_to_sql(link: Option<&LinkCard>) -> Option<String> {
    // Serialising two strings cannot fail.
    link.and_then(|link| serde_json::to_string(link).ok())
}

fn link_from_sql(link: &str) -> Result<LinkCard, StoreError> {
    serde_json::from_str(link).map_err(|error| StoreError::Corrupt(format!("link: {error}")))
}

/// SQL integers are signed; `seq` never comes near `i64::MAX`.
pub(super) fn seq_to_sql(seq: Seq) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(super) fn seq_from_sql(seq: i64) -> Seq {
    Seq::try_from(seq).unwrap_or(0)
}

/// A count of messages, like `seq`.
pub(super) fn count_from_sql(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

pub(super) fn count_to_sql(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
