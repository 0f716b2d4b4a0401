//! What this relay knows of the other relays of a cluster: when each last
//! spoke, who is online on them, and the way to tell them this relay's news.
//!
//! Invariants:
//! - Empty on a lone relay, where publishing does nothing.
//! - A visitor or agent is online elsewhere while at least one other node
//!   says so; a node silent for longer than the heartbeat's `expire_after`
//!   is forgotten with everybody it held.
//! - Publishing never waits: a full queue drops ephemeral news rather than
//!   stall routing.

use std::collections::{HashMap, HashSet};

use kefu_protocol::{AgentState, PresenceKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cluster::{ClusterEvent, Heartbeat, NodeId};

/// What a clustered hub knows of the other nodes. Empty on a lone relay.
#[derive(Default)]
pub(super) struct Peers {
    /// Where this node's own news goes; `None` on a lone relay.
    outgoing: Option<mpsc::Sender<ClusterEvent>>,
    heartbeat: Heartbeat,
    /// When each node last spoke.
    last_heard: HashMap<NodeId, Instant>,
    visitors: HashMap<String, HashSet<NodeId>>,
    agents: HashMap<String, RemoteAgent>,
}

struct RemoteAgent {
    name: String,
    states: HashMap<NodeId, AgentState>,
}

impl Peers {
    pub(super) fn new(outgoing: Option<mpsc::Sender<ClusterEvent>>, heartbeat: Heartbeat) -> Self {
        Peers {
            outgoing,
            heartbeat,
            ..Peers::default()
        }
    }

    pub(super) fn heartbeat(&self) -> Heartbeat {
        self.heartbeat
    }

    /// Tells the other nodes, best effort: a full queue drops ephemeral
    /// news rather than stall routing.
    pub(super) fn publish(&self, event: ClusterEvent) {
        if let Some(outgoing) = &self.outgoing
            && outgoing.try_send(event).is_err()
        {
            tracing::warn!("cluster queue full: an ephemeral event was dropped");
        }
    }

    /// Tells the other nodes that a visitor came to or left this one.
    pub(super) fn publish_visitor(&self, visitor_id: &str, online: bool) {
        self.publish(ClusterEvent::Presence {
            kind: PresenceKind::Visitor,
            id: visitor_id.to_owned(),
            name: None,
            online,
            state: None,
        });
    }

    /// Tells the other nodes how an agent is on this one.
    pub(super) fn publish_agent(
        &self,
        agent_id: &str,
        name: &str,
        online: bool,
        state: AgentState,
    ) {
        self.publish(ClusterEvent::Presence {
            kind: PresenceKind::Agent,
            id: agent_id.to_owned(),
            name: Some(name.to_owned()),
            online,
            state: Some(state),
        });
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

    /// The name another node gave an agent online there.
    pub(super) fn agent_name(&self, agent_id: &str) -> Option<&str> {
        self.agents.get(agent_id).map(|agent| agent.name.as_str())
    }

    /// The agents online on other nodes.
    pub(super) fn agent_ids(&self) -> impl Iterator<Item = &String> {
        self.agents.keys()
    }

    /// `node` spoke at `now`.
    pub(super) fn heard(&mut self, node: &str, now: Instant) {
        self.last_heard.insert(node.to_owned(), now);
    }

    /// `node` says a visitor came or went there.
    pub(super) fn visitor_seen(&mut self, visitor_id: &str, node: NodeId, online: bool) {
        let nodes = self.visitors.entry(visitor_id.to_owned()).or_default();
        if online {
            nodes.insert(node);
        } else {
            nodes.remove(&node);
        }
        self.visitors.retain(|_, nodes| !nodes.is_empty());
    }

    /// `node` says how an agent is there.
    pub(super) fn agent_seen(
        &mut self,
        agent_id: &str,
        node: NodeId,
        name: Option<String>,
        online: bool,
        state: Option<AgentState>,
    ) {
        let agent = (self.agents)
            .entry(agent_id.to_owned())
            .or_insert(RemoteAgent {
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
        self.agents.retain(|_, agent| !agent.states.is_empty());
    }

    /// The nodes silent for longer than the heartbeat allows at `now`.
    pub(super) fn silent(&self, now: Instant) -> Vec<NodeId> {
        let expire_after = self.heartbeat.expire_after;
        self.last_heard
            .iter()
            .filter(|(_, heard)| now.duration_since(**heard) > expire_after)
            .map(|(node, _)| node.clone())
            .collect()
    }

    /// Forgets what `node` said; returns the visitors and agents it held.
    pub(super) fn forget(&mut self, node: &str) -> (Vec<String>, Vec<String>) {
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
