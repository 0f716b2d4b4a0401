//! Revocation: an agent disabled (`kefu-relay agent disable`) or given a
//! new token (`agent rotate-token`) loses its open connections within a
//! second, on every relay of a cluster.
//!
//! Each relay re-reads the enabled agents' credentials (see
//! [`super::reread`]) and publishes them; every agent connection watches
//! for its own credentials to disappear. The query reads one small table
//! (one row per agent).

use std::collections::HashMap;
use std::sync::Arc;

use kefu_protocol::{ErrorCode, ErrorFrame};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{AppState, reread};

/// The latest read of the enabled agents' credentials; `None` until the
/// first.
pub type Credentials = Option<Arc<Snapshot>>;

#[derive(Debug)]
pub struct Snapshot {
    /// When the query started: it saw every change committed before.
    read_at: Instant,
    /// Token hashes of the enabled agents, by agent id.
    valid: HashMap<String, String>,
}

/// Re-reads the credentials until the relay stops.
pub async fn watch(state: AppState) {
    let state = &state;
    reread::until_stopping(state, "agent credentials", || async move {
        let read_at = Instant::now();
        let valid: HashMap<String, String> =
            state.store.agent_credentials().await?.into_iter().collect();
        // Every read is published, changed or not: a connection signed in
        // since the last one can only be judged by a read that started
        // after it (see [`revoked`]), and an agent added and disabled
        // between two reads leaves them alike. A wake is one map lookup
        // per agent connection, twice a second.
        state
            .credentials
            .send_replace(Some(Arc::new(Snapshot { read_at, valid })));
        Ok(())
    })
    .await;
}

/// Resolves, to the error the agent is told, once `agent_id` no longer
/// holds `token_hash`, which it held at `signed_in_at`: it was disabled or
/// given a new token since. Only a read started after the sign-in can
/// tell: an older one may predate the agent.
pub async fn revoked(
    mut credentials: watch::Receiver<Credentials>,
    agent_id: String,
    token_hash: String,
    signed_in_at: Instant,
) -> ErrorFrame {
    let revoked = |known: &Credentials| {
        known.as_ref().is_some_and(|known| {
            known.read_at > signed_in_at && known.valid.get(&agent_id) != Some(&token_hash)
        })
    };
    if credentials.wait_for(revoked).await.is_err() {
        // The relay is stopping, which ends the connection anyway.
        std::future::pending::<()>().await;
    }
    ErrorFrame::new(ErrorCode::Unauthorized, "this agent's access was revoked")
}
