//! Wire types of kefu's protocol v1, shared by the relay, the agents' TUI and
//! the load generator so that the three can never drift apart.
//!
//! # Layout
//! - [`visitor`]: frames a visitor's page sends (`hello`, `send`, `typing`,
//!   `read`) and the frames the relay sends back to it.
//! - [`files`]: what a message says of the files attached to it.
//! - [`agent`]: the same for agents (`/ws/agent`), plus the conversation
//!   summaries that drive an agent's queue.
//!   Its [`agent::search`]: the `search` and paged `conversations` requests.
//! - [`trail`]: the visitor's page trail and the `visitor` record agents
//!   ask for.
//! - [`call`]: remote-assistance calls: the WebRTC signalling the relay
//!   forwards between a call's participants, and the assist page's frames.
//! - This module: the objects both sides share — [`Message`] (and the
//!   [`TimelineEvent`] one may carry), [`Author`],
//!   [`Ack`], [`ErrorFrame`] and friends.
//!
//! Every frame is one JSON object whose `"type"` names it in snake_case.
//! Times are RFC 3339 in UTC. IDs are opaque strings. The normative
//! description, with an example exchange, is `docs/protocol.md`.

pub mod agent;
pub mod call;
pub mod files;
pub mod trail;
pub mod visitor;

pub use files::Attachment;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Position of a message inside its conversation: gap-free, from 1.
pub type Seq = u64;

/// Who wrote a message or is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    Visitor,
    Agent,
    System,
}

impl AuthorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorKind::Visitor => "visitor",
            AuthorKind::Agent => "agent",
            AuthorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visitor" => Some(AuthorKind::Visitor),
            "agent" => Some(AuthorKind::Agent),
            "system" => Some(AuthorKind::System),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub kind: AuthorKind,
    pub id: String,
    pub name: String,
}

/// A stored chat message. `seq` orders it inside its conversation; `client_id`
/// is the sender's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub conversation_id: String,
    pub seq: Seq,
    pub id: String,
    pub client_id: String,
    pub author: Author,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// An agents-only note: never sent to the visitor, not even in history.
    #[serde(default)]
    pub internal: bool,
    /// Set on a timeline event (a claim, transfer, resolve or reopen): then
    /// `author` is the system, `internal` is true and `text` is an English
    /// rendering for clients that do not know events. Boxed: most
    /// messages have none, and need not carry its room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<TimelineEvent>>,
    /// Set on an agent's link card: the page the visitor's chat offers to
    /// open; `text` is its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Box<trail::LinkCard>>,
    /// Files sent with the message (see [`files`]); none on most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// Whether this is a timeline event rather than something somebody wrote.
    pub fn is_event(&self) -> bool {
        self.event.is_some()
    }
}

/// Something that happened to a conversation, kept in its timeline with the
/// messages (it takes a `seq` like an internal note, and agents get it in
/// `history` and live as a `message`; visitors never do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// `by` took a waiting or resolved conversation with `claim` (a reply
    /// that takes one records no event: the reply shows who took it).
    Claimed { by: Author },
    /// `by` handed the conversation to `to` (both agents).
    Transferred { by: Author, to: Author },
    /// `by` resolved the conversation.
    Resolved { by: Author },
    /// The visitor (`by`) wrote to a resolved conversation, which is
    /// waiting again.
    Reopened { by: Author },
    /// `by` asked the visitor to share their screen.
    CallStarted { call_id: String, by: Author },
    /// `who` joined the call as peer `peer`.
    CallJoined {
        call_id: String,
        peer: String,
        who: Author,
    },
    /// `who` (peer `peer`) left a call that goes on.
    CallLeft {
        call_id: String,
        peer: String,
        who: Author,
    },
    /// The call is over, `duration_secs` after it started.
    CallEnded {
        call_id: String,
        duration_secs: u64,
        reason: call::CallEndReason,
        by: Author,
    },
}

impl TimelineEvent {
    /// Who made it happen: an agent, or the visitor for a reopen.
    pub fn by(&self) -> &Author {
        match self {
            TimelineEvent::Claimed { by }
            | TimelineEvent::Transferred { by, .. }
            | TimelineEvent::Resolved { by }
            | TimelineEvent::Reopened { by }
            | TimelineEvent::CallStarted { by, .. }
            | TimelineEvent::CallEnded { by, .. } => by,
            TimelineEvent::CallJoined { who, .. } | TimelineEvent::CallLeft { who, .. } => who,
        }
    }

    /// A plain English line, e.g. "alice transferred the conversation to bob".
    pub fn describe(&self) -> String {
        match self {
            TimelineEvent::Claimed { by } => format!("{} claimed the conversation", by.name),
            TimelineEvent::Transferred { by, to } => {
                format!("{} transferred the conversation to {}", by.name, to.name)
            }
            TimelineEvent::Resolved { by } => format!("{} resolved the conversation", by.name),
            TimelineEvent::Reopened { by } => {
                format!("{} wrote again: the conversation is reopened", by.name)
            }
            TimelineEvent::CallStarted { by, .. } => {
                format!("{} asked to see the visitor's screen", by.name)
            }
            TimelineEvent::CallJoined { who, .. } => format!("{} joined the call", who.name),
            TimelineEvent::CallLeft { who, .. } => format!("{} left the call", who.name),
            TimelineEvent::CallEnded {
                duration_secs,
                reason,
                ..
            } => format!(
                "the call ended ({}) after {}m {:02}s",
                reason.as_str(),
                duration_secs / 60,
                duration_secs % 60
            ),
        }
    }
}

/// The relay's promise that a `send` is durably stored. A resend with the same
/// `client_id` gets the very same ack back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub client_id: String,
    pub conversation_id: String,
    pub seq: Seq,
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl From<&Message> for Ack {
    fn from(message: &Message) -> Self {
        Ack {
            client_id: message.client_id.clone(),
            conversation_id: message.conversation_id.clone(),
            seq: message.seq,
            id: message.id.clone(),
            at: message.at,
        }
    }
}

/// Someone started or stopped typing in a conversation. Clients should treat
/// an `active: true` older than about six seconds as stopped, because a peer
/// that vanishes never sends `active: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    pub conversation_id: String,
    pub author: Author,
    pub active: bool,
}

/// A read receipt: `reader` has seen every message up to `up_to_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReceipt {
    pub conversation_id: String,
    pub reader: AuthorKind,
    pub up_to_seq: Seq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceKind {
    Visitor,
    Agent,
}

/// Whether an agent takes new conversations. Only `available` agents count as
/// online for visitors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    #[default]
    Available,
    Away,
}

/// Someone came online, went offline or changed availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub kind: PresenceKind,
    pub id: String,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AgentState>,
    /// Sent to visitors only: how many available agents are online now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents_online: Option<u32>,
}

/// An announcement from an admin to every online visitor. Not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcast {
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why a request failed. The set is closed: clients may match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    TooLarge,
    RateLimited,
    Conflict,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A request was refused. `ref` echoes the request's `client_id` (for `send`)
/// or `conversation_id` so the client can tell which request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            code,
            message: message.into(),
            reference: None,
        }
    }

    pub fn with_ref(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }
}

/// The relay asks the client to reconnect (after about `after_ms`), because it
/// is shutting down or because the client fell behind and must resync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconnect {
    pub after_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
