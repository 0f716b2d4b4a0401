//! The hub's side of a cluster: who is online on the other relays, and the
//! news this relay sends them and hears from them.

use std::collections::{HashMap, HashSet};

use kefu_protocol::agent::ConversationSummary;
use kefu_protocol::{AgentState, PresenceKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::HubState;
use crate::cluster::{ClusterEvent, ClusterInput, Envelope, Heartbeat, NodeId};

/// What a clustered hub knows of the other nodes. Empty on a lone relay.
#[derive(Default)]
pub(super) struct Peers {
    /// Where this node's own news goes; `None` on a lone relay.
    pub(super) outgoing: Option<mpsc::Sender<ClusterEvent>>,
    pub(super) heartbeat: Heartbeat,
    /// When each node last spoke.
    pub(super) last_heard: HashMap<NodeId, Instant>,
    pub(super) visitors: HashMap<String, HashSet<NodeId>>,
    pub(super) agents: HashMap<String, RemoteAgent>,
}

pub(super) struct RemoteAgent {
    pub(super) name: String,
    pub(super) states: HashMap<NodeId, AgentState>,
}

impl Peers {
    /// Tells the other nodes, best effort: a full queue drops ephemeral
    /// news rather than stall routing.
    pub(super) fn publish(&self, event: ClusterEvent) {
        if let Some(outgoing) = &self.outgoing
            && outgoing.try_send(event).is_err()
        {
            tracing::warn!("cluster queue full: an ephemeral event was dropped");
        }
    }

    pub(super) fn visitor_online(&self, visitor_id: &str) -> bool {
        self.visitors
            .get(visitor_id)
            .is_some_and(|nodes| !nodes.is_empty())
    }

    /// An agent's availability on other nodes: available if available anywhere.
    pub(super) fn agent_state(&self, agent_id: &str) -> Option<AgentState> {
        let states = &self.agents.get(agent_id)?.states;
        if states.is_empty() {
            return None;
        }
        let available = states.values().any(|s| *s == AgentState::Available);
        Some(if available {
            AgentState::Available
        } else {
            AgentState::Away
        })
    }

    /// Forgets what `node` said; returns the visitors and agents it held.
    fn forget(&mut self, node: &str) -> (Vec<String>, Vec<String>) {
        self.last_heard.remove(node);
        let visitors = self
            .visitors
            .iter_mut()
            .filter_map(|(id, nodes)| nodes.remove(node).then(|| id.clone()))
            .collect();
        let agents = self
            .agents
            .iter_mut()
            .filter_map(|(id, agent)| agent.states.remove(node).map(|_| id.clone()))
            .collect();
        self.visitors.retain(|_, nodes| !nodes.is_empty());
        self.agents.retain(|_, agent| !agent.states.is_empty());
        (visitors, agents)
    }
}

pub(super) async fn recv_cluster(
    cluster: &mut Option<mpsc::Receiver<ClusterInput>>,
) -> Option<ClusterInput> {
    match cluster {
        Some(incoming) => incoming.recv().await,
        None => std::future::pending().await,
    }
}

impl HubState {
    /// Tells the other nodes that a visitor came to or left this one.
    pub(super) fn publish_visitor(&self, visitor_id: &str, online: bool) {
        self.peers.publish(ClusterEvent::Presence {
            kind: PresenceKind::Visitor,
            id: visitor_id.to_owned(),
            name: None,
            online,
            state: None,
        });
    }

    /// Tells the other nodes how an agent is on this one.
    pub(super) fn publish_local_agent(&self, agent_id: &str) {
        let Some(entry) = self.agents.get(agent_id) else {
            return;
        };
        self.peers.publish(ClusterEvent::Presence {
            kind: PresenceKind::Agent,
            id: agent_id.to_owned(),
            name: Some(entry.info.name.clone()),
            online: entry.online(),
            state: Some(entry.state),
        });
    }

    /// News from another node.
    pub(super) fn hear(&mut self, input: ClusterInput) {
        let Envelope { node, event } = match input {
            ClusterInput::Resync(open) => return self.resync(open),
            ClusterInput::Event(envelope) => envelope,
        };
        self.peers.last_heard.insert(node.clone(), Instant::now());
        match event {
            ClusterEvent::Typing { typing, to_visitor } => {
                self.deliver_typing(&typing, to_visitor, None);
            }
            ClusterEvent::Broadcast { broadcast } => self.deliver_broadcast(&broadcast),
            ClusterEvent::Beat => {}
            ClusterEvent::Hello => self.reannounce(),
            ClusterEvent::Presence {
                kind: PresenceKind::Visitor,
                id,
                online,
                ..
            } => {
                let before = self.visitor_online(&id);
                let nodes = self.peers.visitors.entry(id.clone()).or_default();
                if online {
                    nodes.insert(node);
                } else {
                    nodes.remove(&node);
                }
                self.peers.visitors.retain(|_, nodes| !nodes.is_empty());
                let after = self.visitor_online(&id);
                if before != after {
                    self.announce_visitor(&id, after);
                }
            }
            ClusterEvent::Presence {
                kind: PresenceKind::Agent,
                id,
                name,
                online,
                state,
            } => {
                let before = self.agent_presence(&id);
                let agent = self.peers.agents.entry(id.clone()).or_insert(RemoteAgent {
                    name: String::new(),
                    states: HashMap::new(),
                });
                if let Some(name) = name {
                    agent.name = name;
                }
                if online {
                    agent.states.insert(node, state.unwrap_or_default());
                } else {
                    agent.states.remove(&node);
                }
                self.peers
                    .agents
                    .retain(|_, agent| !agent.states.is_empty());
                if before != self.agent_presence(&id) {
                    self.announce_agent(&id);
                }
            }
        }
    }

    /// Says this node is alive, and forgets nodes that fell silent: their
    /// visitors and agents go offline unless they are online elsewhere.
    pub(super) fn beat(&mut self, now: Instant) {
        self.peers.publish(ClusterEvent::Beat);
        let expire_after = self.peers.heartbeat.expire_after;
        let silent: Vec<NodeId> = self
            .peers
            .last_heard
            .iter()
            .filter(|(_, heard)| now.duration_since(**heard) > expire_after)
            .map(|(node, _)| node.clone())
            .collect();
        for node in silent {
            tracing::warn!(%node, "a relay stopped answering; its clients count as gone");
            let (visitors, agents) = self.peers.forget(&node);
            for visitor_id in visitors {
                if !self.visitor_online(&visitor_id) {
                    self.announce_visitor(&visitor_id, false);
                }
            }
            for agent_id in agents {
                self.announce_agent(&agent_id);
            }
        }
    }

    /// A node joined: tell it who is here.
    pub(super) fn reannounce(&self) {
        for (visitor_id, presence) in &self.visitors {
            if !presence.conns.is_empty() || presence.offline_at.is_some() {
                self.publish_visitor(visitor_id, true);
            }
        }
        for (agent_id, entry) in &self.agents {
            if entry.online() {
                self.publish_local_agent(agent_id);
            }
        }
    }

    /// Notifications were missed: start over from the store's state, and
    /// have every client resume from the store too.
    pub(super) fn resync(&mut self, open: Vec<ConversationSummary>) {
        self.conversations.clear();
        self.conversation_of_visitor.clear();
        // Every agent is about to resync, from the store.
        self.stale.clear();
        self.flush_at = None;
        for summary in open {
            self.remember(summary);
        }
        self.dead.extend(self.visitor_conns.keys().copied());
        self.dead.extend(self.agent_conns.keys().copied());
    }
}
