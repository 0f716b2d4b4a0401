//! Frames on `/ws/agent`.

pub mod bulk;
pub mod search;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use self::bulk::{ResolveWaitingRequest, ResolvedWaiting};
use self::search::{ConversationsPage, ConversationsRequest, SearchRequest, SearchResults};
use crate::call::CallLink;
use crate::trail::PageView;
use crate::{Ack, AgentState, ErrorFrame, Message, Presence, ReadReceipt, Reconnect, Seq, Typing};

/// Agent → relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentRequest {
    /// First frame of a connection: the bearer token from `kefu-relay agent add`.
    Hello {
        token: String,
    },
    /// A page of messages, oldest first, ending just before `before_seq` (or
    /// at the newest). Also subscribes this connection to the conversation's
    /// live messages, so an agent can follow a colleague's chat.
    History {
        conversation_id: String,
        #[serde(default)]
        before_seq: Option<Seq>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// A reply (or, with `internal`, a note for agents only). Replying to a
    /// waiting conversation claims it.
    Send {
        conversation_id: String,
        client_id: String,
        text: String,
        #[serde(default)]
        internal: bool,
        /// Makes the message a link card (not with `internal`); `text`
        /// is then its label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<crate::trail::LinkCard>,
        /// Ids of files this agent uploaded, sent with the message.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    Claim {
        conversation_id: String,
    },
    Transfer {
        conversation_id: String,
        to_agent: String,
    },
    Resolve {
        conversation_id: String,
    },
    Typing {
        conversation_id: String,
        active: bool,
    },
    Read {
        conversation_id: String,
        up_to_seq: Seq,
    },
    /// An announcement to every online visitor (admins only).
    Broadcast {
        text: String,
    },
    Status {
        state: AgentState,
    },
    /// A visitor's profile, conversations and page trail: answered with
    /// `visitor`.
    Visitor {
        visitor_id: String,
    },
    /// Messages and visitors matching a query (see [`search`]).
    Search(SearchRequest),
    /// A page of conversations, resolved ones included.
    Conversations(ConversationsRequest),
    /// Asks the conversation's visitor to share their screen (or, if a call
    /// is on, joins it): answered with a `call_link`.
    CallInvite {
        conversation_id: String,
    },
    /// Ends a call for everybody.
    CallHangup {
        call_id: String,
    },
    /// Resolves waiting conversations in bulk (admins only, see [`bulk`]):
    /// answered with `resolved_waiting`.
    ResolveWaiting(ResolveWaitingRequest),
}

/// Relay → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    Welcome(AgentWelcome),
    /// A conversation's summary changed (new message, claim, transfer,
    /// resolve, read…). Sent to every agent: it drives the queue.
    Conversation(ConversationFrame),
    History(HistoryPage),
    Ack(Ack),
    Message(Message),
    Typing(Typing),
    Read(ReadReceipt),
    /// This agent's own read position moved (its `read` here or on another
    /// connection, on any relay of a cluster). Sent only to that agent.
    ReadMark(AgentReadMark),
    Presence(Presence),
    Error(ErrorFrame),
    Reconnect(Reconnect),
    /// The visitor of a conversation this agent sees opened a page.
    PageView(PageViewFrame),
    /// The answer to a `visitor` request.
    Visitor(VisitorRecord),
    SearchResults(SearchResults),
    Conversations(ConversationsPage),
    /// The answer to `call_invite`: a one-time link to the assist page.
    CallLink(CallLink),
    ResolvedWaiting(ResolvedWaiting),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// A colleague as listed in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPresence {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub state: AgentState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentWelcome {
    pub agent: AgentInfo,
    pub agents: Vec<AgentPresence>,
    /// The most urgent waiting and active conversations, at most
    /// [`WELCOME_MAX_CONVERSATIONS`] (and [`WELCOME_MAX_CONVERSATION_BYTES`]
    /// of JSON): this agent's own first, then the waiting ones oldest
    /// first, then the others' newest first. `totals` says how many there
    /// are in all; resolved ones are reachable through `history`.
    pub conversations: Vec<ConversationSummary>,
    /// This agent's own read positions in those conversations; one it never
    /// read is absent (everything from the visitor is unread).
    #[serde(default)]
    pub read_marks: Vec<AgentReadMark>,
    /// How many waiting and active conversations there are in all, when
    /// `conversations` could not hold them all; absent (from older relays
    /// too) when it holds every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<ConversationTotals>,
}

/// The most conversations a `welcome` carries.
pub const WELCOME_MAX_CONVERSATIONS: usize = 500;
/// The most bytes of JSON the conversations of a `welcome` take: every
/// visitor field is bounded, but a summary full of escaped text can reach
/// tens of KiB, so the count alone would not bound the frame.
pub const WELCOME_MAX_CONVERSATION_BYTES: usize = 4 * 1024 * 1024;

/// Counts of the open conversations, for a `welcome` that holds only some.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationTotals {
    pub waiting: u64,
    pub active: u64,
}

/// How far one agent has read one conversation. Read positions are per
/// agent: an agent's unread count is [`ConversationSummary::unread_for`]
/// its own mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReadMark {
    pub conversation_id: String,
    /// The agent has seen every message up to this `seq`.
    pub up_to_seq: Seq,
    /// How many of the visitor's messages are at or below `up_to_seq`.
    pub visitor_messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationFrame {
    pub summary: ConversationSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub conversation_id: String,
    /// Oldest first.
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Nobody has claimed it: every agent sees its messages.
    Waiting,
    Active,
    Resolved,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Waiting => "waiting",
            ConversationStatus::Active => "active",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(ConversationStatus::Waiting),
            "active" => Some(ConversationStatus::Active),
            "resolved" => Some(ConversationStatus::Resolved),
            _ => None,
        }
    }
}

/// One row of an agent's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: String,
    pub visitor: VisitorSummary,
    pub status: ConversationStatus,
    /// The agent id the conversation is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    pub last_seq: Seq,
    /// Visitor messages the agent answering the visitor (the assignee, or
    /// one who replied while it waits) has not read: what the visitor's
    /// "seen" has not reached. The same for every agent; an agent's own
    /// count is [`ConversationSummary::unread_for`].
    pub unread: u32,
    /// How many messages the visitor has written in this conversation.
    #[serde(default)]
    pub visitor_messages: u64,
    /// The start of the last message visible to the visitor.
    pub preview: String,
    /// Highest `seq` the visitor has read, for "seen" marks.
    pub visitor_read_seq: Seq,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub waiting_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl ConversationSummary {
    /// The visitor's messages the agent holding `mark` (its own read
    /// position here, if it has one) has not read.
    pub fn unread_for(&self, mark: Option<&AgentReadMark>) -> u64 {
        let read = mark.map_or(0, |mark| mark.visitor_messages);
        self.visitor_messages.saturating_sub(read)
    }
}

/// What agents know of a visitor. Everything but `id` and `online` comes from
/// the visitor's page and is untrusted text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorSummary {
    pub id: String,
    pub name: String,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Where the visitor connects from, as the relay's `visitor_address`
    /// setting keeps it: an address (`203.0.113.7`) or its network
    /// (`203.0.113.0/24`, what `kefu-relay block` takes); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Relay → agent: the visitor of `conversation_id` opened a page. Sent, once
/// stored, to the agents who see the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageViewFrame {
    pub conversation_id: String,
    pub visitor_id: String,
    pub view: PageView,
}

/// Relay → agent: the answer to `visitor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorRecord {
    pub visitor: VisitorSummary,
    /// Newest first. A visitor has one conversation, reopened each time
    /// they write again, so this holds their whole history with kefu.
    pub conversations: Vec<ConversationSummary>,
    /// Oldest first, the newest [`MAX_TRAIL`](crate::trail::MAX_TRAIL) at most.
    pub trail: Vec<PageView>,
}
