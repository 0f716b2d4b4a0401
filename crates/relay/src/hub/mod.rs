//! Routing and presence: who is connected, who sees which conversation.
//!
//! The hub is one task that owns all routing state ([`state::HubState`]) and
//! is driven by two bounded queues: commands from connections (register,
//! typing, availability…) and [`Change`]s the store publishes after each
//! commit. Because both arrive on one task, a connection's registration and
//! the message fan-out are totally ordered, which is what makes resume
//! gap-free.
//!
//! The hub never awaits a client: it `try_send`s pre-serialized frames into
//! each connection's bounded [`Outbox`]. A connection whose outbox refuses a
//! frame — its oldest frame waited too long, or it holds too many bytes
//! ([`OutboxBounds`]) — is dropped from the hub and kicked, and then tells
//! its client to resync.
//!
//! Ordering: a connection receives frames in the order the hub sent them,
//! with one exception that changes no meaning: a conversation's summary
//! still queued is replaced by the newer one, which takes its place at the
//! back ([`queue`]'s coalescing). A summary is a whole snapshot of the
//! conversation, so the newer one says everything the older did; and since
//! it goes to the back, it still comes after every message it counts.
//! Messages, and every other frame, are never dropped or moved.
//!
//! Remote-assistance calls ([`call`]): the hub knows each call's peers and
//! forwards WebRTC signalling between them only.

pub mod call;
mod queue;
mod state;

use std::sync::Arc;
use std::time::Duration;

use kefu_protocol::agent::{AgentInfo, AgentPresence, ConversationSummary};
use kefu_protocol::{AgentState, Broadcast, Seq};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::cluster::{ClusterLink, Heartbeat};
use crate::frame::Frame;
use crate::ids::ConnId;
use crate::store::{Change, Store};

/// Commands waiting for the hub before connections wait for room.
const COMMAND_QUEUE: usize = 4096;

/// A frame on its way to one connection, serialized once for all receivers.
#[derive(Debug, Clone)]
pub enum Outbound {
    Frame(Frame),
    /// A chat message: the visitor connection uses `seq` to skip what its
    /// replay already sent.
    Message {
        seq: Seq,
        frame: Frame,
    },
    /// A conversation's summary (agents only): superseded, while still
    /// queued, by the conversation's next one.
    Summary {
        conversation_id: Arc<str>,
        frame: Frame,
    },
}

impl Outbound {
    /// The frame to write.
    pub fn into_frame(self) -> Frame {
        match self {
            Outbound::Frame(frame)
            | Outbound::Message { frame, .. }
            | Outbound::Summary { frame, .. } => frame,
        }
    }

    fn frame(&self) -> &Frame {
        match self {
            Outbound::Frame(frame)
            | Outbound::Message { frame, .. }
            | Outbound::Summary { frame, .. } => frame,
        }
    }
}

/// Summaries are the only frames that coalesce.
///
/// What bounds how many summaries wait: at most one per conversation, of
/// those whose summaries this connection is sent, i.e. the open
/// conversations the hub holds in its routing table (`state::routes`) and
/// those resolved while the frames waited. Nothing in the relay caps open
/// conversations as such (each visitor has at most one at a time; new
/// visitors are limited only by the per-address connection and frame
/// limits), so the hard bound on what waits is the outbox's byte bound,
/// `limits.outbound_max_bytes`, and its wait, `limits.outbound_max_wait`.
impl queue::Item for Outbound {
    fn key(&self) -> Option<&Arc<str>> {
        match self {
            Outbound::Summary {
                conversation_id, ..
            } => Some(conversation_id),
            Outbound::Frame(_) | Outbound::Message { .. } => None,
        }
    }

    fn bytes(&self) -> usize {
        self.frame().len()
    }
}

/// When a connection is too slow for the hub (see the [`queue`] module).
pub type OutboxBounds = queue::Bounds;

/// Bounds the hub's unit tests never reach.
#[cfg(test)]
pub(crate) const ROOMY: OutboxBounds = OutboxBounds {
    max_wait: Some(Duration::from_secs(60)),
    max_bytes: usize::MAX,
};

/// The hub's end of a connection.
#[derive(Debug)]
pub struct Outbox {
    pub id: ConnId,
    frames: queue::Sender<Outbound>,
    /// Dropped (or fired) when the hub gives up on the connection.
    kick: oneshot::Sender<()>,
}

/// The connection's end: frames to write, and the signal that it was dropped.
#[derive(Debug)]
pub struct Inbox {
    pub frames: queue::Receiver<Outbound>,
    pub kicked: oneshot::Receiver<()>,
}

/// A bounded outbox/inbox pair for a new connection. Idle connections are
/// the many: the pair allocates nothing for frames until the first one.
pub fn mailbox(id: ConnId, bounds: OutboxBounds) -> (Outbox, Inbox) {
    let (frames_tx, frames) = queue::channel(bounds);
    let (kick, kicked) = oneshot::channel();
    (
        Outbox {
            id,
            frames: frames_tx,
            kick,
        },
        Inbox { frames, kicked },
    )
}

/// What an agent learns on connecting.
#[derive(Debug, Clone)]
pub struct AgentSnapshot {
    /// Agents connected now, with their availability.
    pub online: Vec<AgentPresence>,
    pub conversations: Vec<ConversationSummary>,
}

enum Command {
    RegisterVisitor {
        visitor_id: String,
        outbox: Outbox,
        reply: oneshot::Sender<u32>,
    },
    RegisterAgent {
        agent: AgentInfo,
        outbox: Outbox,
        reply: oneshot::Sender<AgentSnapshot>,
    },
    Unregister {
        conn: ConnId,
    },
    Watch {
        conn: ConnId,
        conversation_id: String,
        reply: oneshot::Sender<()>,
    },
    Typing {
        conn: ConnId,
        /// `None` for a visitor: the hub knows their conversation.
        conversation_id: Option<String>,
        active: bool,
    },
    SetState {
        conn: ConnId,
        state: AgentState,
    },
    Broadcast {
        broadcast: Broadcast,
    },
    Stats {
        reply: oneshot::Sender<HubStats>,
    },
    Call(call::CallCommand),
}

/// Gauges for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Conversations waiting for an agent (cluster-wide: all share the store).
    pub waiting: usize,
    /// Agents with a connection to this relay.
    pub agents_online: usize,
}

/// How the hub behaves.
pub struct HubOptions {
    /// How long a visitor may be gone before agents see them offline.
    pub presence_grace: Duration,
    /// How a clustered hub notices dead relays.
    pub heartbeat: Heartbeat,
    /// With a store, new and reopened conversations are claimed for the
    /// available agents in turn (round-robin auto-assignment).
    pub auto_assign: Option<Arc<dyn Store>>,
    /// Where the hub stores the calls' steps it takes itself (a
    /// participant gone, nobody answering); without one, such calls stay.
    pub store: Option<Arc<dyn Store>>,
    /// What the call pages are told to use for ICE.
    pub ice: crate::config::IceServers,
}

/// The hub has stopped (the relay is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the hub has stopped")]
pub struct HubClosed;

/// A cloneable handle to the hub task.
#[derive(Clone)]
pub struct Hub {
    commands: mpsc::Sender<Command>,
}

impl Hub {
    /// Starts the hub with the open conversations it routes from the start.
    ///
    /// With a cluster link, presence, typing and broadcasts are shared with
    /// the other relays, and silent relays' clients expire after
    /// `heartbeat.expire_after`.
    pub fn start(
        changes: mpsc::Receiver<Change>,
        open_conversations: Vec<ConversationSummary>,
        cluster: Option<ClusterLink>,
        options: HubOptions,
    ) -> (Hub, JoinHandle<()>) {
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        let (outgoing, incoming) = match cluster {
            Some(link) => (Some(link.outgoing), Some(link.incoming)),
            None => (None, None),
        };
        let state = state::HubState::new(open_conversations, outgoing, options);
        let task = tokio::spawn(state::run(state, queue, changes, incoming));
        (Hub { commands }, task)
    }

    /// Adds a visitor connection; answers how many agents are available.
    pub async fn register_visitor(
        &self,
        visitor_id: String,
        outbox: Outbox,
    ) -> Result<u32, HubClosed> {
        self.ask(|reply| Command::RegisterVisitor {
            visitor_id,
            outbox,
            reply,
        })
        .await
    }

    pub async fn register_agent(
        &self,
        agent: AgentInfo,
        outbox: Outbox,
    ) -> Result<AgentSnapshot, HubClosed> {
        self.ask(|reply| Command::RegisterAgent {
            agent,
            outbox,
            reply,
        })
        .await
    }

    pub async fn unregister(&self, conn: ConnId) {
        let _ = self.send(Command::Unregister { conn }).await;
    }

    /// Subscribes an agent connection to a conversation's live messages.
    /// Resolves once the subscription is in place, so a history read made
    /// afterwards cannot miss a message.
    pub async fn watch(&self, conn: ConnId, conversation_id: String) -> Result<(), HubClosed> {
        self.ask(|reply| Command::Watch {
            conn,
            conversation_id,
            reply,
        })
        .await
    }

    pub async fn typing(&self, conn: ConnId, conversation_id: Option<String>, active: bool) {
        let _ = self
            .send(Command::Typing {
                conn,
                conversation_id,
                active,
            })
            .await;
    }

    pub async fn set_state(&self, conn: ConnId, state: AgentState) {
        let _ = self.send(Command::SetState { conn, state }).await;
    }

    /// An announcement to every online visitor, on every node.
    pub async fn broadcast(&self, broadcast: Broadcast) {
        let _ = self.send(Command::Broadcast { broadcast }).await;
    }

    pub async fn stats(&self) -> Result<HubStats, HubClosed> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    async fn send(&self, command: Command) -> Result<(), HubClosed> {
        self.commands.send(command).await.map_err(|_| HubClosed)
    }

    /// Sends the command made with a reply channel and waits for the answer.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, HubClosed> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_| HubClosed)
    }
}
