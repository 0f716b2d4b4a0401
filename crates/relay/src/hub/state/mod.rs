//! The hub's state and the rules of who receives what. Only the hub task
//! touches it, so none of it is locked.
//!
//! [`cluster`] holds what concerns the other relays of a cluster,
//! [`assign`] the round-robin auto-assignment.

mod assign;
mod cluster;
#[cfg(test)]
mod tests;

use assign::Assigner;
use cluster::{Peers, recv_cluster};

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use kefu_protocol::agent::{
    AgentEvent, AgentInfo, AgentPresence, ConversationFrame, ConversationStatus,
    ConversationSummary,
};
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{AgentState, Author, AuthorKind, Broadcast, Presence, PresenceKind, Typing};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;

use super::{AgentSnapshot, Command, HubOptions, HubStats, Outbound, Outbox};
use crate::cluster::{ClusterEvent, ClusterInput};
use crate::frame::encode;
use crate::ids::ConnId;
use crate::store::Change;

/// Conversations an agent connection follows through `history`, at most.
const MAX_WATCHED: usize = 256;

/// How long a conversation's per-message changes (`last_seq`, `unread`,
/// `preview`, `updated_at`, read marks) may wait before reaching the agents
/// who do not see it ([`AgentConn::sees`]). To them it is a colleague's row
/// in the queue, where a count two seconds late costs nothing, whereas a
/// frame per message to every agent would multiply the relay's frames by the
/// number of agents. They get at most one frame per conversation per delay,
/// with its latest summary. Changes that move a conversation in the queue
/// ([`moved_in_queue`]) reach everybody at once.
const SUMMARY_DELAY: Duration = Duration::from_secs(2);

pub(super) struct HubState {
    grace: Duration,
    visitor_conns: HashMap<ConnId, VisitorConn>,
    agent_conns: HashMap<ConnId, AgentConn>,
    /// Visitors shown as online: connected, or gone for less than the grace.
    visitors: HashMap<String, VisitorPresence>,
    /// Every agent seen since start, so availability survives a reconnect.
    agents: HashMap<String, AgentEntry>,
    /// Waiting and active conversations, as last committed.
    conversations: HashMap<String, ConversationSummary>,
    /// Open conversations with per-message changes not yet sent to the agents
    /// who do not see them (see [`SUMMARY_DELAY`]); at most `conversations`.
    stale: HashSet<String>,
    /// When `stale` is flushed; `None` while it is empty, so an idle hub never
    /// wakes for it.
    flush_at: Option<Instant>,
    conversation_of_visitor: HashMap<String, String>,
    /// When visitors who left should be announced offline, oldest first
    /// (the grace is constant, so pushing at the back keeps the order).
    offline_deadlines: VecDeque<(Instant, String)>,
    /// Connections whose outbox overflowed or closed, to drop after the
    /// current fan-out.
    dead: Vec<ConnId>,
    /// The other relays of a cluster, and who is online on them.
    peers: Peers,
    assigner: Option<Assigner>,
}

struct VisitorConn {
    outbox: Outbox,
    visitor_id: String,
}

struct AgentConn {
    outbox: Outbox,
    agent_id: String,
    watched: VecDeque<String>,
}

impl AgentConn {
    /// Whether the connection follows a conversation: everybody while it
    /// waits, then its assignee and whoever opened it through `history`.
    fn sees(&self, summary: &ConversationSummary) -> bool {
        summary.status == ConversationStatus::Waiting
            || summary.assignee.as_deref() == Some(self.agent_id.as_str())
            || self.watched.contains(&summary.id)
    }
}

/// Whether a conversation changed in more than the counters every message
/// moves, i.e. in what places it in agents' queues: status, assignee, the
/// visitor. Destructured in full so that a new field must be placed here.
fn moved_in_queue(before: &ConversationSummary, after: &ConversationSummary) -> bool {
    let ConversationSummary {
        id: _,
        visitor,
        status,
        assignee,
        waiting_since,
        last_seq: _,
        unread: _,
        preview: _,
        visitor_read_seq: _,
        updated_at: _,
    } = after;
    before.visitor != *visitor
        || before.status != *status
        || before.assignee != *assignee
        || before.waiting_since != *waiting_since
}

fn summary_frame(summary: ConversationSummary) -> Outbound {
    Outbound::Frame(encode(&AgentEvent::Conversation(ConversationFrame {
        summary,
    })))
}

#[derive(Default)]
struct VisitorPresence {
    conns: Vec<ConnId>,
    offline_at: Option<Instant>,
}

pub(super) struct AgentEntry {
    info: AgentInfo,
    state: AgentState,
    conns: Vec<ConnId>,
}

impl AgentEntry {
    fn online(&self) -> bool {
        !self.conns.is_empty()
    }

    fn available(&self) -> bool {
        self.online() && self.state == AgentState::Available
    }
}

pub(super) async fn run(
    mut state: HubState,
    mut commands: mpsc::Receiver<Command>,
    mut changes: mpsc::Receiver<Change>,
    mut cluster: Option<mpsc::Receiver<ClusterInput>>,
) {
    let mut changes_open = true;
    let mut beat = tokio::time::interval(state.peers.heartbeat.every);
    if cluster.is_some() {
        state.peers.publish(ClusterEvent::Hello);
    }
    loop {
        let deadline = state.offline_deadlines.front().map(|(at, _)| *at);
        let flush_at = state.flush_at;
        tokio::select! {
            // Committed changes first: the store publishes a change before it
            // answers the write, so whatever a client asks after its ack
            // (e.g. a metrics scrape) finds the change applied.
            biased;
            change = changes.recv(), if changes_open => match change {
                Some(change) => state.apply(change),
                None => changes_open = false,
            },
            command = commands.recv() => match command {
                Some(command) => state.handle(command),
                None => break,
            },
            input = recv_cluster(&mut cluster), if cluster.is_some() => match input {
                Some(input) => state.hear(input),
                None => cluster = None,
            },
            _ = beat.tick(), if cluster.is_some() => state.beat(Instant::now()),
            () = sleep_until(deadline), if deadline.is_some() => state.expire(Instant::now()),
            () = sleep_until(flush_at), if flush_at.is_some() => state.flush(),
        }
        state.reap();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

impl HubState {
    pub(super) fn new(
        open_conversations: Vec<ConversationSummary>,
        outgoing: Option<mpsc::Sender<ClusterEvent>>,
        options: HubOptions,
    ) -> Self {
        let mut state = HubState {
            grace: options.presence_grace,
            assigner: options.auto_assign.map(|store| Assigner { store, turn: 0 }),
            visitor_conns: HashMap::new(),
            agent_conns: HashMap::new(),
            visitors: HashMap::new(),
            agents: HashMap::new(),
            conversations: HashMap::new(),
            stale: HashSet::new(),
            flush_at: None,
            conversation_of_visitor: HashMap::new(),
            offline_deadlines: VecDeque::new(),
            dead: Vec::new(),
            peers: Peers {
                outgoing,
                heartbeat: options.heartbeat,
                ..Peers::default()
            },
        };
        for summary in open_conversations {
            state.remember(summary);
        }
        state
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::RegisterVisitor {
                visitor_id,
                outbox,
                reply,
            } => {
                self.add_visitor(visitor_id, outbox);
                let _ = reply.send(self.agents_online());
            }
            Command::RegisterAgent {
                agent,
                outbox,
                reply,
            } => {
                self.add_agent(agent, outbox);
                let _ = reply.send(self.snapshot());
            }
            Command::Unregister { conn } => drop(self.remove(conn)),
            Command::Watch {
                conn,
                conversation_id,
                reply,
            } => {
                self.watch(conn, conversation_id);
                let _ = reply.send(());
            }
            Command::Typing {
                conn,
                conversation_id,
                active,
            } => self.typing(conn, conversation_id, active),
            Command::SetState { conn, state } => {
                let Some(agent_id) = self.agent_conns.get(&conn).map(|c| c.agent_id.clone()) else {
                    return;
                };
                if let Some(entry) = self.agents.get_mut(&agent_id)
                    && entry.state != state
                {
                    entry.state = state;
                    self.publish_local_agent(&agent_id);
                    self.announce_agent(&agent_id);
                }
            }
            Command::Broadcast { broadcast } => {
                self.deliver_broadcast(&broadcast);
                self.peers.publish(ClusterEvent::Broadcast { broadcast });
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
        }
    }

    /// Fans out a committed change.
    fn apply(&mut self, change: Change) {
        match change {
            Change::Message {
                message,
                summary,
                origin,
            } => {
                let (summary, before) = self.remember(summary);
                // Only the relay the visitor wrote to assigns, once per
                // conversation opening (new, or reopened after resolve).
                let opened = origin.is_some()
                    && summary.status == ConversationStatus::Waiting
                    && before
                        .as_ref()
                        .is_none_or(|before| before.status != ConversationStatus::Waiting);
                if opened {
                    self.auto_assign(&summary.id);
                }
                let frame = encode(&AgentEvent::Message(message.clone()));
                if !message.internal {
                    let visitors = self.visitor_targets(&summary.visitor.id, origin);
                    let item = Outbound::Message {
                        seq: message.seq,
                        frame: frame.clone(),
                    };
                    self.send_all(&visitors, &item);
                }
                let agents = self.agents_seeing(&summary, origin);
                self.send_all(&agents, &Outbound::Frame(frame));
                crate::telemetry::fanned_out(message.at);
                self.publish_summary(summary, before.as_ref());
            }
            Change::Summary { summary } => {
                let (summary, before) = self.remember(summary);
                self.publish_summary(summary, before.as_ref());
            }
            Change::Read { receipt, summary } => {
                let (summary, before) = self.remember(summary);
                let targets = match receipt.reader {
                    AuthorKind::Visitor => self.agents_seeing(&summary, None),
                    _ => self.visitor_targets(&summary.visitor.id, None),
                };
                self.send_all(
                    &targets,
                    &Outbound::Frame(encode(&AgentEvent::Read(receipt))),
                );
                self.publish_summary(summary, before.as_ref());
            }
        }
    }

    /// Updates the routing table from a committed summary; returns it with
    /// the visitor's presence filled in, and the open conversation's summary
    /// it replaces (`None` for a new, reopened or already resolved one).
    fn remember(
        &mut self,
        mut summary: ConversationSummary,
    ) -> (ConversationSummary, Option<ConversationSummary>) {
        summary.visitor.online = self.visitor_online(&summary.visitor.id);
        let before = if summary.status == ConversationStatus::Resolved {
            self.conversation_of_visitor.remove(&summary.visitor.id);
            self.conversations.remove(&summary.id)
        } else {
            self.conversation_of_visitor
                .insert(summary.visitor.id.clone(), summary.id.clone());
            self.conversations
                .insert(summary.id.clone(), summary.clone())
        };
        (summary, before)
    }

    /// Sends a committed summary to every agent at once if the conversation
    /// moved in the queue; otherwise at once only to the agents who see it,
    /// and to the others with the next [`flush`](Self::flush).
    fn publish_summary(
        &mut self,
        summary: ConversationSummary,
        before: Option<&ConversationSummary>,
    ) {
        let targets = if before.is_none_or(|before| moved_in_queue(before, &summary)) {
            // Everybody now holds the latest: nothing left to flush.
            self.stale.remove(&summary.id);
            self.agent_conns.keys().copied().collect()
        } else {
            let seeing = self.agents_seeing(&summary, None);
            if seeing.len() < self.agent_conns.len() {
                self.mark_stale(&summary.id);
            }
            seeing
        };
        self.send_all(&targets, &summary_frame(summary));
    }

    fn mark_stale(&mut self, conversation_id: &str) {
        if self.stale.is_empty() {
            self.flush_at = Some(Instant::now() + SUMMARY_DELAY);
        }
        if !self.stale.contains(conversation_id) {
            self.stale.insert(conversation_id.to_owned());
        }
    }

    /// Sends the agents who do not see them the latest summaries of the
    /// conversations that changed since the last flush, one frame each.
    fn flush(&mut self) {
        self.flush_at = None;
        for conversation_id in std::mem::take(&mut self.stale) {
            let Some(summary) = self.conversations.get(&conversation_id) else {
                continue;
            };
            let others: Vec<ConnId> = (self.agent_conns.iter())
                .filter(|(_, conn)| !conn.sees(summary))
                .map(|(id, _)| *id)
                .collect();
            let frame = summary_frame(summary.clone());
            self.send_all(&others, &frame);
        }
    }

    /// Subscribes an agent connection to a conversation's live messages. One
    /// it did not see may have changed since its last summary: it gets the
    /// current one, so that it follows from an up-to-date summary.
    fn watch(&mut self, conn: ConnId, conversation_id: String) {
        let Some(agent) = self.agent_conns.get_mut(&conn) else {
            return;
        };
        if agent.watched.contains(&conversation_id) {
            return;
        }
        let behind = match self.conversations.get(&conversation_id) {
            Some(summary) if self.stale.contains(&conversation_id) && !agent.sees(summary) => {
                Some(summary.clone())
            }
            _ => None,
        };
        if agent.watched.len() == MAX_WATCHED {
            agent.watched.pop_front();
        }
        agent.watched.push_back(conversation_id);
        if let Some(summary) = behind {
            self.send_all(&[conn], &summary_frame(summary));
        }
    }

    fn visitor_targets(&self, visitor_id: &str, except: Option<ConnId>) -> Vec<ConnId> {
        self.visitors
            .get(visitor_id)
            .map(|presence| {
                presence
                    .conns
                    .iter()
                    .copied()
                    .filter(|conn| Some(*conn) != except)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Agent connections that see a conversation (see [`AgentConn::sees`]).
    fn agents_seeing(&self, summary: &ConversationSummary, except: Option<ConnId>) -> Vec<ConnId> {
        self.agent_conns
            .iter()
            .filter(|(id, conn)| Some(**id) != except && conn.sees(summary))
            .map(|(id, _)| *id)
            .collect()
    }

    fn typing(&mut self, conn: ConnId, conversation_id: Option<String>, active: bool) {
        let (conversation, author, to_visitor) = if let Some(visitor) =
            self.visitor_conns.get(&conn)
        {
            let Some(summary) = self
                .conversation_of_visitor
                .get(&visitor.visitor_id)
                .and_then(|id| self.conversations.get(id))
            else {
                return;
            };
            let author = Author {
                kind: AuthorKind::Visitor,
                id: summary.visitor.id.clone(),
                name: summary.visitor.name.clone(),
            };
            (summary, author, false)
        } else if let Some(agent) = self.agent_conns.get(&conn) {
            let Some(summary) = conversation_id.and_then(|id| self.conversations.get(&id)) else {
                return;
            };
            let Some(entry) = self.agents.get(&agent.agent_id) else {
                return;
            };
            // The visitor sees only whoever answers them.
            let answering = summary.status == ConversationStatus::Waiting
                || summary.assignee.as_deref() == Some(entry.info.id.as_str());
            let author = Author {
                kind: AuthorKind::Agent,
                id: entry.info.id.clone(),
                name: entry.info.name.clone(),
            };
            (summary, author, answering)
        } else {
            return;
        };
        let typing = Typing {
            conversation_id: conversation.id.clone(),
            author,
            active,
        };
        self.deliver_typing(&typing, to_visitor, Some(conn));
        self.peers
            .publish(ClusterEvent::Typing { typing, to_visitor });
    }

    /// Shows `typing` to this node's agents following the conversation and,
    /// if `to_visitor`, to the visitor.
    fn deliver_typing(&mut self, typing: &Typing, to_visitor: bool, except: Option<ConnId>) {
        let Some(summary) = self.conversations.get(&typing.conversation_id) else {
            return;
        };
        let mut targets = self.agents_seeing(summary, except);
        if to_visitor {
            targets.extend(self.visitor_targets(&summary.visitor.id, None));
        }
        let frame = encode(&AgentEvent::Typing(typing.clone()));
        self.send_all(&targets, &Outbound::Frame(frame));
    }

    fn deliver_broadcast(&mut self, broadcast: &Broadcast) {
        let targets: Vec<ConnId> = self.visitor_conns.keys().copied().collect();
        let frame = encode(&VisitorEvent::Broadcast(broadcast.clone()));
        self.send_all(&targets, &Outbound::Frame(frame));
    }

    fn add_visitor(&mut self, visitor_id: String, outbox: Outbox) {
        let conn = outbox.id;
        let was_online = self.visitor_online(&visitor_id);
        let presence = self.visitors.entry(visitor_id.clone()).or_default();
        let newly_here = presence.conns.is_empty() && presence.offline_at.is_none();
        presence.conns.push(conn);
        presence.offline_at = None;
        self.visitor_conns.insert(
            conn,
            VisitorConn {
                outbox,
                visitor_id: visitor_id.clone(),
            },
        );
        if newly_here {
            self.publish_visitor(&visitor_id, true);
        }
        if !was_online {
            self.announce_visitor(&visitor_id, true);
        }
    }

    fn add_agent(&mut self, info: AgentInfo, outbox: Outbox) {
        let conn = outbox.id;
        let agent_id = info.id.clone();
        let entry = self.agents.entry(agent_id.clone()).or_insert(AgentEntry {
            info: info.clone(),
            state: AgentState::Available,
            conns: Vec::new(),
        });
        entry.info = info;
        let newly_online = !entry.online();
        entry.conns.push(conn);
        self.agent_conns.insert(
            conn,
            AgentConn {
                outbox,
                agent_id: agent_id.clone(),
                watched: VecDeque::new(),
            },
        );
        if newly_online {
            self.publish_local_agent(&agent_id);
            self.announce_agent(&agent_id);
        }
    }

    /// Forgets a connection, updating presence; returns its outbox.
    fn remove(&mut self, conn: ConnId) -> Option<Outbox> {
        if let Some(visitor) = self.visitor_conns.remove(&conn) {
            if let Some(presence) = self.visitors.get_mut(&visitor.visitor_id) {
                presence.conns.retain(|c| *c != conn);
                if presence.conns.is_empty() {
                    // Going offline is announced only after the grace, so a
                    // visitor moving to the next page does not flicker.
                    let at = Instant::now() + self.grace;
                    presence.offline_at = Some(at);
                    self.offline_deadlines
                        .push_back((at, visitor.visitor_id.clone()));
                }
            }
            Some(visitor.outbox)
        } else if let Some(agent) = self.agent_conns.remove(&conn) {
            if let Some(entry) = self.agents.get_mut(&agent.agent_id) {
                entry.conns.retain(|c| *c != conn);
                if !entry.online() {
                    self.publish_local_agent(&agent.agent_id);
                    self.announce_agent(&agent.agent_id);
                }
            }
            Some(agent.outbox)
        } else {
            None
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.offline_deadlines.front() {
            if *at > now {
                break;
            }
            let Some((at, visitor_id)) = self.offline_deadlines.pop_front() else {
                break;
            };
            let gone = self
                .visitors
                .get(&visitor_id)
                .is_some_and(|p| p.conns.is_empty() && p.offline_at == Some(at));
            if gone {
                self.visitors.remove(&visitor_id);
                self.publish_visitor(&visitor_id, false);
                if !self.visitor_online(&visitor_id) {
                    self.announce_visitor(&visitor_id, false);
                }
            }
        }
    }

    /// Tells agents that a visitor with an open conversation came or went.
    fn announce_visitor(&mut self, visitor_id: &str, online: bool) {
        let Some(conversation_id) = self.conversation_of_visitor.get(visitor_id) else {
            return;
        };
        if let Some(summary) = self.conversations.get_mut(conversation_id) {
            summary.visitor.online = online;
        }
        let presence = Presence {
            kind: PresenceKind::Visitor,
            id: visitor_id.to_owned(),
            online,
            state: None,
            agents_online: None,
        };
        let targets: Vec<ConnId> = self.agent_conns.keys().copied().collect();
        self.send_all(
            &targets,
            &Outbound::Frame(encode(&AgentEvent::Presence(presence))),
        );
    }

    /// Tells agents and visitors that an agent came, went or changed state,
    /// as seen across the cluster.
    fn announce_agent(&mut self, agent_id: &str) {
        let (online, state) = match self.agent_presence(agent_id) {
            Some((_, state)) => (true, state),
            None => (
                false,
                self.agents
                    .get(agent_id)
                    .map_or_else(AgentState::default, |entry| entry.state),
            ),
        };
        let mut presence = Presence {
            kind: PresenceKind::Agent,
            id: agent_id.to_owned(),
            online,
            state: Some(state),
            agents_online: None,
        };
        let agents: Vec<ConnId> = self.agent_conns.keys().copied().collect();
        self.send_all(
            &agents,
            &Outbound::Frame(encode(&AgentEvent::Presence(presence.clone()))),
        );
        presence.agents_online = Some(self.agents_online());
        let visitors: Vec<ConnId> = self.visitor_conns.keys().copied().collect();
        self.send_all(
            &visitors,
            &Outbound::Frame(encode(&VisitorEvent::Presence(presence))),
        );
    }

    /// An online agent's name and availability, here or on any node.
    fn agent_presence(&self, agent_id: &str) -> Option<(String, AgentState)> {
        let local = self.agents.get(agent_id).filter(|entry| entry.online());
        let remote = self.peers.agent_state(agent_id);
        let name = match (local, self.peers.agents.get(agent_id)) {
            (Some(entry), _) => entry.info.name.clone(),
            (None, Some(agent)) if remote.is_some() => agent.name.clone(),
            _ => return None,
        };
        let available =
            local.is_some_and(|entry| entry.available()) || remote == Some(AgentState::Available);
        let state = if available {
            AgentState::Available
        } else {
            AgentState::Away
        };
        Some((name, state))
    }

    fn visitor_online(&self, visitor_id: &str) -> bool {
        self.visitors.contains_key(visitor_id) || self.peers.visitor_online(visitor_id)
    }

    /// Counted when asked (a scrape), not kept up to date on every change.
    fn stats(&self) -> HubStats {
        HubStats {
            waiting: (self.conversations.values())
                .filter(|c| c.status == ConversationStatus::Waiting)
                .count(),
            agents_online: self.agents.values().filter(|a| a.online()).count(),
        }
    }

    fn agents_online(&self) -> u32 {
        let mut ids: HashSet<&str> = self
            .agents
            .values()
            .filter(|entry| entry.available())
            .map(|entry| entry.info.id.as_str())
            .collect();
        ids.extend(
            self.peers
                .agents
                .keys()
                .filter(|id| self.peers.agent_state(id) == Some(AgentState::Available))
                .map(String::as_str),
        );
        u32::try_from(ids.len()).unwrap_or(u32::MAX)
    }

    fn snapshot(&self) -> AgentSnapshot {
        let mut ids: Vec<&String> = self
            .agents
            .iter()
            .filter(|(_, entry)| entry.online())
            .map(|(id, _)| id)
            .collect();
        ids.extend(
            self.peers
                .agents
                .keys()
                .filter(|id| !self.agents.get(*id).is_some_and(AgentEntry::online)),
        );
        let online = ids
            .into_iter()
            .filter_map(|id| {
                let (name, state) = self.agent_presence(id)?;
                Some(AgentPresence {
                    id: id.clone(),
                    name,
                    online: true,
                    state,
                })
            })
            .collect();
        let mut conversations: Vec<ConversationSummary> =
            self.conversations.values().cloned().collect();
        conversations.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)));
        AgentSnapshot {
            online,
            conversations,
        }
    }

    fn send_all(&mut self, targets: &[ConnId], item: &Outbound) {
        for conn in targets {
            let outbox = self
                .visitor_conns
                .get(conn)
                .map(|c| &c.outbox)
                .or_else(|| self.agent_conns.get(conn).map(|c| &c.outbox));
            let Some(outbox) = outbox else { continue };
            match outbox.frames.try_send(item.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::info!(conn = %conn, "connection too slow, asking it to resync");
                    self.dead.push(*conn);
                }
                Err(TrySendError::Closed(_)) => self.dead.push(*conn),
            }
        }
    }

    /// Drops the connections that could not keep up; each is kicked so that
    /// it tells its client to resync. Dropping one may announce presence to
    /// others, which may find more dead connections, hence the loop.
    fn reap(&mut self) {
        while let Some(conn) = self.dead.pop() {
            if let Some(outbox) = self.remove(conn) {
                let _ = outbox.kick.send(());
            }
        }
    }
}
