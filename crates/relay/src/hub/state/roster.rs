//! Who is online across the cluster: this relay's [`LocalPresence`] and what
//! the [`Peers`] say, read together. Owns nothing; every answer is computed
//! when asked.
//!
//! An agent online on several nodes counts once, and is available if
//! available on any; a visitor is online if online on any node.

use std::collections::HashSet;

use kefu_protocol::AgentState;
use kefu_protocol::agent::AgentPresence;

use super::peers::Peers;
use super::presence::{AgentEntry, LocalPresence};

pub(super) struct Roster<'a> {
    pub(super) here: &'a LocalPresence,
    pub(super) peers: &'a Peers,
}

impl Roster<'_> {
    pub(super) fn visitor_online(&self, visitor_id: &str) -> bool {
        self.here.visitor_here(visitor_id) || self.peers.visitor_online(visitor_id)
    }

    /// An online agent's name and availability, here or on any node.
    pub(super) fn agent(&self, agent_id: &str) -> Option<(String, AgentState)> {
        let local = self.here.agent(agent_id).filter(|entry| entry.online());
        let remote = self.peers.agent_state(agent_id);
        let name = match (local, self.peers.agent_name(agent_id)) {
            (Some(entry), _) => entry.info().name.clone(),
            (None, Some(name)) if remote.is_some() => name.to_owned(),
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

    /// Whether an agent is online anywhere, and their availability: as seen
    /// across the cluster, or as last set here if they are offline.
    pub(super) fn agent_status(&self, agent_id: &str) -> (bool, AgentState) {
        match self.agent(agent_id) {
            Some((_, state)) => (true, state),
            None => (
                false,
                self.here
                    .agent(agent_id)
                    .map_or_else(AgentState::default, AgentEntry::state),
            ),
        }
    }

    /// How many agents are available, on any node.
    pub(super) fn available_count(&self) -> u32 {
        let mut ids: HashSet<&str> = self
            .here
            .agents()
            .filter(|entry| entry.available())
            .map(|entry| entry.info().id.as_str())
            .collect();
        ids.extend(
            self.peers
                .agent_ids()
                .filter(|id| self.peers.agent_state(id) == Some(AgentState::Available))
                .map(String::as_str),
        );
        u32::try_from(ids.len()).unwrap_or(u32::MAX)
    }

    /// The agents online on any node, with their availability.
    pub(super) fn online_agents(&self) -> Vec<AgentPresence> {
        let mut ids: Vec<&String> = self
            .here
            .agents()
            .filter(|entry| entry.online())
            .map(|entry| &entry.info().id)
            .collect();
        ids.extend(
            self.peers
                .agent_ids()
                .filter(|id| !self.here.agent(id).is_some_and(AgentEntry::online)),
        );
        ids.into_iter()
            .filter_map(|id| {
                let (name, state) = self.agent(id)?;
                Some(AgentPresence {
                    id: id.clone(),
                    name,
                    online: true,
                    state,
                })
            })
            .collect()
    }

    /// The available agents on any node, as id and name, in no order.
    pub(super) fn available_agents(&self) -> Vec<(String, String)> {
        let mut available: Vec<(String, String)> = self
            .here
            .agents()
            .filter(|entry| entry.available())
            .map(|entry| (entry.info().id.clone(), entry.info().name.clone()))
            .collect();
        available.extend(self.peers.agent_ids().filter_map(|id| {
            let here = self.here.agent(id).is_some_and(AgentEntry::online);
            let name = self.peers.agent_name(id)?;
            (!here && self.peers.agent_state(id) == Some(AgentState::Available))
                .then(|| (id.clone(), name.to_owned()))
        }));
        available
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kefu_protocol::agent::{AgentInfo, Role};

    use super::*;
    use crate::ids::ConnId;

    fn info(id: &str) -> AgentInfo {
        AgentInfo {
            id: id.into(),
            name: id.to_uppercase(),
            role: Role::Agent,
        }
    }

    #[test]
    fn an_agent_on_several_nodes_counts_once_and_is_available_if_available_anywhere() {
        let mut here = LocalPresence::new(Duration::from_secs(10));
        let mut peers = Peers::default();
        here.agent_arrived(info("alice"), ConnId::from_raw(1));
        here.set_agent_state("alice", AgentState::Away);
        for (id, node, state) in [
            ("alice", "n2", Some(AgentState::Available)),
            ("bob", "n2", Some(AgentState::Away)),
            ("carol", "n3", None),
        ] {
            peers.agent_seen(id, node.into(), Some(id.to_uppercase()), true, state);
        }
        let roster = Roster {
            here: &here,
            peers: &peers,
        };

        assert_eq!(
            roster.agent("alice"),
            Some(("ALICE".into(), AgentState::Available))
        );
        assert_eq!(roster.agent("bob"), Some(("BOB".into(), AgentState::Away)));
        assert_eq!(roster.agent("dave"), None);
        assert_eq!(roster.available_count(), 2, "alice once, and carol");
        let mut online: Vec<String> = roster.online_agents().into_iter().map(|a| a.id).collect();
        online.sort();
        assert_eq!(online, ["alice", "bob", "carol"]);
        let mut available = roster.available_agents();
        available.sort();
        assert_eq!(
            available,
            [("carol".into(), "CAROL".into())],
            "alice is online here, where she is away"
        );
    }

    #[test]
    fn an_offline_agent_keeps_the_state_last_set_here() {
        let mut here = LocalPresence::new(Duration::from_secs(10));
        let peers = Peers::default();
        here.agent_arrived(info("alice"), ConnId::from_raw(1));
        here.set_agent_state("alice", AgentState::Away);
        here.agent_left("alice", ConnId::from_raw(1));
        let roster = Roster {
            here: &here,
            peers: &peers,
        };
        assert_eq!(roster.agent_status("alice"), (false, AgentState::Away));
        assert_eq!(
            roster.agent_status("nobody"),
            (false, AgentState::default())
        );
    }
}
