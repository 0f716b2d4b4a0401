//! The hub's state and the rules of who receives what. Only the hub task
//! touches it, so none of it is locked.
//!
//! [`HubState`] coordinates parts that each own their fields and keep their
//! own invariants:
//! - [`connections`]: the registry of connections and their bounded
//!   outboxes; sending, and the dead connections to reap.
//! - [`presence`]: who is on this relay, with the visitors' grace.
//! - [`routes`]: the open conversations and who sees which.
//! - [`throttle`]: which summaries reach other agents at once, and which
//!   wait for the next flush.
//! - [`peers`]: the other relays of a cluster and who is online on them.
//! - [`roster`]: presence here and on the peers, read together.
//! - [`assign`]: the round-robin auto-assignment.
//! - [`calls`]: the remote-assistance calls going on and their peers, as
//!   the committed call events describe them; [`calling`] holds the steps
//!   for calls (forwarding signals, applying call events, ending calls
//!   whose participants are gone).
//!
//! [`task`] is the hub task's loop: what wakes it, and in what order.
//!
//! The parts do not know each other (only the roster reads presence and
//! peers); the steps that span them — handling a command, applying a
//! committed change, expiring presence, and (in [`news`]) hearing from
//! the cluster — are here, and decide in what order they are told and
//! whom to send what.

mod assign;
mod calling;
mod calls;
mod connections;
mod news;
mod peers;
mod presence;
mod roster;
mod routes;
mod task;
#[cfg(test)]
mod tests;
mod throttle;

pub(super) use task::run;

use assign::Assigner;
use connections::{Connections, Removed};
use peers::Peers;
use presence::LocalPresence;
use roster::Roster;
use routes::Routes;
use throttle::{Audience, SummaryThrottle};

use std::sync::Arc;

use kefu_protocol::agent::{
    AgentEvent, AgentInfo, AgentReadMark, ConversationFrame, ConversationStatus,
    ConversationSummary, PageViewFrame,
};
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{Author, AuthorKind, Broadcast, Message, Presence, PresenceKind, Typing};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{AgentSnapshot, Command, HubOptions, HubStats, Outbound, Outbox};
use crate::cluster::ClusterEvent;
use crate::frame::encode;
use crate::ids::ConnId;
use crate::store::{AgentMark, Change};

pub(super) struct HubState {
    connections: Connections,
    presence: LocalPresence,
    routes: Routes,
    throttle: SummaryThrottle,
    /// The other relays of a cluster, and who is online on them.
    peers: Peers,
    assigner: Option<Assigner>,
    /// Remote-assistance calls (`calling`).
    calls: calls::Calls,
    store: Option<Arc<dyn crate::store::Store>>,
    ice: crate::config::IceServers,
}

/// A summary coalesces with the conversation's next one while it waits in
/// a connection's outbox (see the hub's ordering rules).
fn summary_frame(summary: ConversationSummary) -> Outbound {
    Outbound::Summary {
        conversation_id: Arc::from(summary.id.as_str()),
        frame: encode(&AgentEvent::Conversation(ConversationFrame { summary })),
    }
}

impl HubState {
    pub(super) fn new(
        open_conversations: Vec<ConversationSummary>,
        outgoing: Option<mpsc::Sender<ClusterEvent>>,
        options: HubOptions,
    ) -> Self {
        let mut state = HubState {
            connections: Connections::default(),
            presence: LocalPresence::new(options.presence_grace),
            routes: Routes::default(),
            throttle: SummaryThrottle::default(),
            peers: Peers::new(outgoing, options.heartbeat),
            assigner: options.auto_assign.map(Assigner::new),
            calls: calls::Calls::default(),
            store: options.store,
            ice: options.ice,
        };
        for summary in open_conversations {
            state.remember(summary);
        }
        state
    }

    fn roster(&self) -> Roster<'_> {
        Roster {
            here: &self.presence,
            peers: &self.peers,
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::RegisterVisitor {
                visitor_id,
                outbox,
                reply,
            } => {
                self.add_visitor(visitor_id, outbox);
                let _ = reply.send(self.roster().available_count());
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
                let Some(agent_id) = self.connections.agent_of(conn).map(str::to_owned) else {
                    return;
                };
                if self.presence.set_agent_state(&agent_id, state) {
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
            Command::Call(command) => self.handle_call(command),
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
                self.call_event(&message, &summary.visitor.id, origin);
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
                    self.connections.send_all(&visitors, &item);
                }
                // A timeline event is internal: it reaches the agents who
                // see the conversation as it is now, like a note.
                let agents = self.agents_seeing(&summary, origin);
                self.connections.send_all(&agents, &Outbound::Frame(frame));
                if !message.is_event() {
                    crate::telemetry::fanned_out(message.at);
                }
                self.writers_mark(&message, &summary);
                self.publish_summary(summary, before.as_ref());
            }
            Change::Summary { summary } => {
                let (summary, before) = self.remember(summary);
                self.publish_summary(summary, before.as_ref());
            }
            Change::PageViews { summary, views } => {
                let (summary, before) = self.remember(summary);
                // Like a note: the agents who see the conversation now.
                let agents = self.agents_seeing(&summary, None);
                for view in views {
                    let frame = encode(&AgentEvent::PageView(PageViewFrame {
                        conversation_id: summary.id.clone(),
                        visitor_id: summary.visitor.id.clone(),
                        view,
                    }));
                    self.connections.send_all(&agents, &Outbound::Frame(frame));
                }
                self.publish_summary(summary, before.as_ref());
            }
            Change::Read {
                receipt,
                mark,
                summary,
            } => {
                let (summary, before) = self.remember(summary);
                if let Some(AgentMark { agent_id, mark }) = mark {
                    self.send_own_mark(&agent_id, mark);
                }
                // Only a read the visitor may see changes the summary.
                let Some(receipt) = receipt else {
                    return;
                };
                let targets = match receipt.reader {
                    AuthorKind::Visitor => self.agents_seeing(&summary, None),
                    _ => self.visitor_targets(&summary.visitor.id, None),
                };
                self.connections.send_all(
                    &targets,
                    &Outbound::Frame(encode(&AgentEvent::Read(receipt))),
                );
                self.publish_summary(summary, before.as_ref());
            }
        }
    }

    /// An agent who writes has read what came before: its own mark moved
    /// with the message (the store moved it), which its connections learn
    /// here. Only when the summary is the one right after the message (a
    /// cluster node may read a later one) does it say how many of the
    /// visitor's messages that covers; otherwise the next `welcome` tells.
    fn writers_mark(&mut self, message: &Message, summary: &ConversationSummary) {
        if message.author.kind != AuthorKind::Agent || summary.last_seq != message.seq {
            return;
        }
        let mark = AgentReadMark {
            conversation_id: summary.id.clone(),
            up_to_seq: message.seq,
            visitor_messages: summary.visitor_messages,
        };
        self.send_own_mark(&message.author.id, mark);
    }

    /// Sends an agent's own read mark to its connections only.
    fn send_own_mark(&mut self, agent_id: &str, mark: AgentReadMark) {
        let own: Vec<ConnId> = (self.connections.agents())
            .filter(|(_, agent)| *agent == agent_id)
            .map(|(conn, _)| conn)
            .collect();
        let frame = Outbound::Frame(encode(&AgentEvent::ReadMark(mark)));
        self.connections.send_all(&own, &frame);
    }

    /// Updates the routing table from a committed summary (see
    /// [`Routes::remember`]), with the visitor's presence filled in.
    fn remember(
        &mut self,
        summary: ConversationSummary,
    ) -> (ConversationSummary, Option<ConversationSummary>) {
        let online = self.roster().visitor_online(&summary.visitor.id);
        self.routes.remember(summary, online)
    }

    /// Sends a committed summary to every agent at once if the conversation
    /// moved in the queue; otherwise at once only to the agents who see it,
    /// and to the others with the next [`flush`](Self::flush).
    fn publish_summary(
        &mut self,
        summary: ConversationSummary,
        before: Option<&ConversationSummary>,
    ) {
        let targets = match self.throttle.audience(before, &summary) {
            Audience::Everybody => self.connections.agent_conns(),
            Audience::Seeing => {
                let seeing = self.agents_seeing(&summary, None);
                if seeing.len() < self.connections.agent_count() {
                    self.throttle.hold(&summary.id, Instant::now());
                }
                seeing
            }
        };
        self.connections.send_all(&targets, &summary_frame(summary));
    }

    /// Sends the agents who do not see them the latest summaries of the
    /// conversations that changed since the last flush, one frame each.
    fn flush(&mut self) {
        for conversation_id in self.throttle.flush() {
            let Some(summary) = self.routes.conversation(&conversation_id) else {
                continue;
            };
            let others: Vec<ConnId> = (self.connections.agents())
                .filter(|(conn, agent_id)| !self.routes.sees(*conn, agent_id, summary))
                .map(|(conn, _)| conn)
                .collect();
            let frame = summary_frame(summary.clone());
            self.connections.send_all(&others, &frame);
        }
    }

    /// Subscribes an agent connection to a conversation's live messages. One
    /// it did not see may have changed since its last summary: it gets the
    /// current one, so that it follows from an up-to-date summary.
    fn watch(&mut self, conn: ConnId, conversation_id: String) {
        let Some(agent_id) = self.connections.agent_of(conn) else {
            return;
        };
        let behind = self.throttle.is_held(&conversation_id);
        let missed = self.routes.watch(conn, agent_id, conversation_id, behind);
        if let Some(summary) = missed {
            self.connections.send_all(&[conn], &summary_frame(summary));
        }
    }

    fn visitor_targets(&self, visitor_id: &str, except: Option<ConnId>) -> Vec<ConnId> {
        (self.presence.visitor_conns(visitor_id).iter())
            .copied()
            .filter(|conn| Some(*conn) != except)
            .collect()
    }

    /// Agent connections that see a conversation (see [`Routes::sees`]).
    fn agents_seeing(&self, summary: &ConversationSummary, except: Option<ConnId>) -> Vec<ConnId> {
        (self.connections.agents())
            .filter(|(conn, agent_id)| {
                Some(*conn) != except && self.routes.sees(*conn, agent_id, summary)
            })
            .map(|(conn, _)| conn)
            .collect()
    }

    fn typing(&mut self, conn: ConnId, conversation_id: Option<String>, active: bool) {
        let (conversation, author, to_visitor) = if let Some(visitor_id) =
            self.connections.visitor_of(conn)
        {
            let Some(summary) = self.routes.conversation_of(visitor_id) else {
                return;
            };
            let author = Author {
                kind: AuthorKind::Visitor,
                id: summary.visitor.id.clone(),
                name: summary.visitor.name.clone(),
            };
            (summary, author, false)
        } else if let Some(agent_id) = self.connections.agent_of(conn) {
            let Some(summary) = conversation_id.and_then(|id| self.routes.conversation(&id)) else {
                return;
            };
            let Some(entry) = self.presence.agent(agent_id) else {
                return;
            };
            let info = entry.info();
            // The visitor sees only whoever answers them.
            let answering = summary.status == ConversationStatus::Waiting
                || summary.assignee.as_deref() == Some(info.id.as_str());
            let author = Author {
                kind: AuthorKind::Agent,
                id: info.id.clone(),
                name: info.name.clone(),
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
        let Some(summary) = self.routes.conversation(&typing.conversation_id) else {
            return;
        };
        let mut targets = self.agents_seeing(summary, except);
        if to_visitor {
            targets.extend(self.visitor_targets(&summary.visitor.id, None));
        }
        let frame = encode(&AgentEvent::Typing(typing.clone()));
        self.connections.send_all(&targets, &Outbound::Frame(frame));
    }

    fn deliver_broadcast(&mut self, broadcast: &Broadcast) {
        let targets = self.connections.visitor_conns();
        let frame = encode(&VisitorEvent::Broadcast(broadcast.clone()));
        self.connections.send_all(&targets, &Outbound::Frame(frame));
    }

    fn add_visitor(&mut self, visitor_id: String, outbox: Outbox) {
        let conn = outbox.id;
        let was_online = self.roster().visitor_online(&visitor_id);
        let newly_here = self.presence.visitor_arrived(&visitor_id, conn);
        self.connections.add_visitor(visitor_id.clone(), outbox);
        if newly_here {
            self.peers.publish_visitor(&visitor_id, true);
        }
        if !was_online {
            self.announce_visitor(&visitor_id, true);
        }
        self.reinvite(&visitor_id, conn);
    }

    fn add_agent(&mut self, info: AgentInfo, outbox: Outbox) {
        let conn = outbox.id;
        let agent_id = info.id.clone();
        let newly_online = self.presence.agent_arrived(info, conn);
        self.connections.add_agent(agent_id.clone(), outbox);
        if newly_online {
            self.publish_local_agent(&agent_id);
            self.announce_agent(&agent_id);
        }
    }

    /// Forgets a connection, updating presence; returns its outbox.
    fn remove(&mut self, conn: ConnId) -> Option<Outbox> {
        match self.connections.remove(conn)? {
            Removed::Visitor { visitor_id, outbox } => {
                self.presence
                    .visitor_left(&visitor_id, conn, Instant::now());
                Some(outbox)
            }
            Removed::Agent { agent_id, outbox } => {
                self.routes.unwatch_all(conn);
                if self.presence.agent_left(&agent_id, conn) {
                    self.publish_local_agent(&agent_id);
                    self.announce_agent(&agent_id);
                }
                Some(outbox)
            }
            Removed::Assist { outbox } => {
                self.assist_gone(conn);
                Some(outbox)
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        for visitor_id in self.presence.expire(now) {
            self.peers.publish_visitor(&visitor_id, false);
            if !self.roster().visitor_online(&visitor_id) {
                self.announce_visitor(&visitor_id, false);
                self.visitor_gone(&visitor_id);
            }
        }
    }

    /// Tells agents that a visitor with an open conversation came or went.
    fn announce_visitor(&mut self, visitor_id: &str, online: bool) {
        if !self.routes.set_visitor_online(visitor_id, online) {
            return;
        }
        let presence = Presence {
            kind: PresenceKind::Visitor,
            id: visitor_id.to_owned(),
            online,
            state: None,
            agents_online: None,
        };
        let targets = self.connections.agent_conns();
        self.connections.send_all(
            &targets,
            &Outbound::Frame(encode(&AgentEvent::Presence(presence))),
        );
    }

    /// Tells agents and visitors that an agent came, went or changed state,
    /// as seen across the cluster.
    fn announce_agent(&mut self, agent_id: &str) {
        let (online, state) = self.roster().agent_status(agent_id);
        let mut presence = Presence {
            kind: PresenceKind::Agent,
            id: agent_id.to_owned(),
            online,
            state: Some(state),
            agents_online: None,
        };
        let agents = self.connections.agent_conns();
        self.connections.send_all(
            &agents,
            &Outbound::Frame(encode(&AgentEvent::Presence(presence.clone()))),
        );
        presence.agents_online = Some(self.roster().available_count());
        let visitors = self.connections.visitor_conns();
        self.connections.send_all(
            &visitors,
            &Outbound::Frame(encode(&VisitorEvent::Presence(presence))),
        );
    }

    /// Tells the other nodes how an agent is on this one.
    fn publish_local_agent(&self, agent_id: &str) {
        if let Some(entry) = self.presence.agent(agent_id) {
            let name = &entry.info().name;
            self.peers
                .publish_agent(agent_id, name, entry.online(), entry.state());
        }
    }

    /// Counted when asked (a scrape), not kept up to date on every change.
    fn stats(&self) -> HubStats {
        HubStats {
            waiting: self.routes.waiting(),
            agents_online: self.presence.agents().filter(|a| a.online()).count(),
        }
    }

    fn snapshot(&self) -> AgentSnapshot {
        AgentSnapshot {
            online: self.roster().online_agents(),
            conversations: self.routes.open(),
        }
    }

    /// Claims a conversation for the next available agent, if enabled.
    fn auto_assign(&mut self, conversation_id: &str) {
        if self.assigner.is_none() {
            return;
        }
        let available = self.roster().available_agents();
        if let Some(assigner) = &mut self.assigner {
            assigner.assign(conversation_id, available);
        }
    }

    /// Drops the connections that could not keep up; each is kicked so that
    /// it tells its client to resync. Dropping one may announce presence to
    /// others, which may find more dead connections, hence the loop.
    fn reap(&mut self) {
        while let Some(conn) = self.connections.next_dead() {
            if let Some(outbox) = self.remove(conn) {
                connections::kick(outbox);
            }
        }
    }
}
