//! Round-robin auto-assignment of newly opened conversations.

use std::sync::Arc;

use kefu_protocol::AgentState;
use kefu_protocol::agent::{AgentInfo, Role};

use super::{AgentEntry, HubState};
use crate::store::Store;

/// Round-robin auto-assignment: whose turn it is, and the store to claim in.
pub(super) struct Assigner {
    pub(super) store: Arc<dyn Store>,
    pub(super) turn: usize,
}

impl HubState {
    /// Claims a conversation for the next available agent, if enabled. The
    /// claim goes through the store like an agent's, so it loses cleanly to
    /// an agent who claimed first, and its result comes back as a change.
    pub(super) fn auto_assign(&mut self, conversation_id: &str) {
        let Some(assigner) = &self.assigner else {
            return;
        };
        let mut available: Vec<(String, String)> = self
            .agents
            .values()
            .filter(|entry| entry.available())
            .map(|entry| (entry.info.id.clone(), entry.info.name.clone()))
            .collect();
        available.extend(self.peers.agents.iter().filter_map(|(id, agent)| {
            let here = self.agents.get(id).is_some_and(AgentEntry::online);
            (!here && self.peers.agent_state(id) == Some(AgentState::Available))
                .then(|| (id.clone(), agent.name.clone()))
        }));
        if available.is_empty() {
            return;
        }
        available.sort();
        let (id, name) = available.swap_remove(assigner.turn % available.len());
        let store = assigner.store.clone();
        if let Some(assigner) = &mut self.assigner {
            assigner.turn = assigner.turn.wrapping_add(1);
        }
        let agent = AgentInfo {
            id,
            name,
            role: Role::Agent,
        };
        let conversation_id = conversation_id.to_owned();
        tokio::spawn(async move {
            if let Err(error) = store.claim(&conversation_id, &agent).await {
                tracing::debug!(%error, "auto-assignment lost to a claim");
            }
        });
    }
}
