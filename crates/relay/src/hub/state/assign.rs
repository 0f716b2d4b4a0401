//! Round-robin auto-assignment of newly opened conversations.
//!
//! Invariants: the available agents are taken in a stable order (sorted by
//! id, then name) and the turn moves on with each claim made, so agents get
//! new conversations in turn; a claim goes through the store like an
//! agent's, so it loses cleanly to an agent who claimed first.

use std::sync::Arc;

use kefu_protocol::agent::{AgentInfo, Role};

use crate::store::Store;

/// Round-robin auto-assignment: whose turn it is, and the store to claim in.
pub(super) struct Assigner {
    store: Arc<dyn Store>,
    turn: usize,
}

impl Assigner {
    pub(super) fn new(store: Arc<dyn Store>) -> Self {
        Assigner { store, turn: 0 }
    }

    /// Claims a conversation for the next of the `available` agents (id and
    /// name, on any node), if any. The claim goes through the store like an
    /// agent's, so it loses cleanly to an agent who claimed first, and its
    /// result comes back as a change.
    pub(super) fn assign(&mut self, conversation_id: &str, mut available: Vec<(String, String)>) {
        if available.is_empty() {
            return;
        }
        available.sort();
        let (id, name) = available.swap_remove(self.turn % available.len());
        self.turn = self.turn.wrapping_add(1);
        let agent = AgentInfo {
            id,
            name,
            role: Role::Agent,
        };
        let store = self.store.clone();
        let conversation_id = conversation_id.to_owned();
        tokio::spawn(async move {
            if let Err(error) = store.claim(&conversation_id, &agent).await {
                tracing::debug!(%error, "auto-assignment lost to a claim");
            }
        });
    }
}
