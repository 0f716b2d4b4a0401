//! What relays sharing one PostgreSQL tell each other.
//!
//! Two kinds of news travel between nodes on PostgreSQL `NOTIFY` channels:
//! - [`ChangeRef`]s, sent inside the writing transaction, so a node hears of
//!   a change exactly when it is committed. A new message travels whole
//!   with its conversation's summary ([`Carried`]) when that fits in one
//!   payload (limited to 8000 bytes), so no node reads it back (PostgreSQL's
//!   message writes carry it as the rows they wrote instead); otherwise,
//!   and for every other change, the reference names the change and each
//!   node reads the rows itself. Either way the hub gets it like any other
//!   committed [`Change`].
//! - [`Envelope`]s of ephemeral [`ClusterEvent`]s — typing, presence,
//!   broadcasts, heartbeats — which are never stored.
//!
//! A node that misses notifications (its listening connection dropped) tells
//! its hub to [`ClusterInput::Resync`]: the hub reloads its routing table and
//! asks every local client to reconnect and resume from the store, so a
//! missed notification makes a message late, never lost.
//!
//! [`Change`]: crate::store::Change

use std::time::Duration;

use kefu_protocol::agent::ConversationSummary;
use kefu_protocol::call::SignalFrom;
use kefu_protocol::{AgentState, AuthorKind, Broadcast, Message, PresenceKind, Seq, Typing};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Channel for committed changes.
pub const CHANGES_CHANNEL: &str = "kefu_changes";
/// Channel for ephemeral events.
pub const EVENTS_CHANNEL: &str = "kefu_events";
/// PostgreSQL refuses `NOTIFY` payloads from 8000 bytes on.
pub const MAX_PAYLOAD: usize = 7900;

/// Identifies a relay process in the cluster (random per start).
pub type NodeId = String;

/// A committed change, by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ChangeRef {
    Message {
        conversation_id: String,
        seq: Seq,
        /// The node and connection that sent it, which got an `ack`.
        node: NodeId,
        origin: Option<u64>,
        /// The message and summary themselves, when they fit in the payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carried: Option<Box<Carried>>,
        /// The same as the rows they are stored in (a `message` and a
        /// `summary` row), when they fit: what PostgreSQL's message writes,
        /// which build the notification in SQL, carry instead (see
        /// `store::postgres::bus`). A relay that does not know it reads
        /// the message back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<Box<serde_json::Value>>,
    },
    Summary {
        conversation_id: String,
    },
    /// Rows of `page_views` added to the trail of the conversation's visitor.
    PageViews {
        conversation_id: String,
        ids: Vec<i64>,
    },
    /// The visitor read.
    Read {
        conversation_id: String,
        reader: AuthorKind,
        up_to_seq: Seq,
    },
    /// An agent read: its own mark moved (`own`, which every node tells
    /// the agent's connections) and/or the one the visitor sees (`seen`).
    AgentRead {
        conversation_id: String,
        agent_id: String,
        up_to_seq: Seq,
        visitor_messages: u64,
        own: bool,
        seen: bool,
    },
}

/// A committed message and its conversation's summary as the writing
/// transaction left them, carried in the notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    pub message: Message,
    pub summary: ConversationSummary,
}

/// Ephemeral news from one node's hub to the others'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClusterEvent {
    /// Someone typing; `to_visitor` if the visitor should see it.
    Typing {
        typing: Typing,
        to_visitor: bool,
    },
    /// A visitor or agent came or went on the sending node.
    Presence {
        kind: PresenceKind,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        online: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<AgentState>,
    },
    Broadcast {
        broadcast: Broadcast,
    },
    /// A call signal for peer `to`, whose connection is on another node.
    CallSignal {
        to: String,
        signal: SignalFrom,
    },
    /// The sending node is alive.
    Beat,
    /// The sending node just started: everyone re-announces their presence.
    Hello,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub node: NodeId,
    #[serde(flatten)]
    pub event: ClusterEvent,
}

/// What the hub hears from the cluster.
#[derive(Debug)]
pub enum ClusterInput {
    Event(Envelope),
    /// Notifications may have been missed: here is the current state of the
    /// open conversations; clients must resume from the store.
    Resync(Vec<ConversationSummary>),
}

/// How often a node says it is alive, and after how much silence the
/// others count its visitors and agents as gone.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub every: Duration,
    pub expire_after: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            every: Duration::from_secs(5),
            expire_after: Duration::from_secs(15),
        }
    }
}

/// The hub's end of the cluster: events out (best effort: a full queue
/// drops ephemeral news rather than stall the hub) and input in.
#[derive(Debug)]
pub struct ClusterLink {
    pub node: NodeId,
    pub outgoing: mpsc::Sender<ClusterEvent>,
    pub incoming: mpsc::Receiver<ClusterInput>,
}
