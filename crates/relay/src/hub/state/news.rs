//! The hub's steps that answer the other relays of a cluster: what a node
//! hears from the others, its heartbeat, and starting over when
//! notifications were missed. Part of [`HubState`], kept apart from the
//! steps of this relay's own clients (`mod.rs`) for length.

use kefu_protocol::PresenceKind;
use kefu_protocol::agent::ConversationSummary;
use tokio::time::Instant;

use super::HubState;
use crate::cluster::{ClusterEvent, ClusterInput, Envelope, NodeId};

impl HubState {
    /// News from another node.
    pub(super) fn hear(&mut self, input: ClusterInput) {
        let Envelope { node, event } = match input {
            ClusterInput::Resync(open) => return self.resync(open),
            ClusterInput::Event(envelope) => envelope,
        };
        self.peers.heard(&node, Instant::now());
        match event {
            ClusterEvent::Typing { typing, to_visitor } => {
                self.deliver_typing(&typing, to_visitor, None);
            }
            ClusterEvent::Broadcast { broadcast } => self.deliver_broadcast(&broadcast),
            ClusterEvent::CallSignal { to, signal } => {
                self.deliver_signal(&to, &signal);
            }
            ClusterEvent::Beat => {}
            ClusterEvent::Hello => self.reannounce(),
            ClusterEvent::Presence {
                kind: PresenceKind::Visitor,
                id,
                online,
                ..
            } => {
                let before = self.roster().visitor_online(&id);
                self.peers.visitor_seen(&id, node, online);
                let after = self.roster().visitor_online(&id);
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
                let before = self.roster().agent(&id);
                self.peers.agent_seen(&id, node, name, online, state);
                if before != self.roster().agent(&id) {
                    self.announce_agent(&id);
                }
            }
        }
    }

    /// Says this node is alive, and forgets nodes that fell silent: their
    /// visitors and agents go offline unless they are online elsewhere.
    pub(super) fn beat(&mut self, now: Instant) {
        self.peers.publish(ClusterEvent::Beat);
        let silent: Vec<NodeId> = self.peers.silent(now);
        for node in silent {
            tracing::warn!(%node, "a relay stopped answering; its clients count as gone");
            let (visitors, agents) = self.peers.forget(&node);
            for visitor_id in visitors {
                if !self.roster().visitor_online(&visitor_id) {
                    self.announce_visitor(&visitor_id, false);
                }
            }
            for agent_id in agents {
                self.announce_agent(&agent_id);
            }
        }
    }

    /// A node joined: tell it who is here.
    fn reannounce(&self) {
        for visitor_id in self.presence.visitors_here() {
            self.peers.publish_visitor(visitor_id, true);
        }
        for entry in self.presence.agents() {
            if entry.online() {
                self.publish_local_agent(&entry.info().id);
            }
        }
    }

    /// Notifications were missed: start over from the store's state, and
    /// have every client resume from the store too.
    fn resync(&mut self, open: Vec<ConversationSummary>) {
        self.routes.forget_conversations();
        // Every agent is about to resync, from the store.
        self.throttle.clear();
        for summary in open {
            self.remember(summary);
        }
        self.connections.kill_all();
    }
}
