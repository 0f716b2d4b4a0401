//! Revocation: an agent disabled (`kefu-relay agent disable`) or given a
//! new token (`agent rotate-token`) loses its open connections within a
//! second, on every relay of a cluster.
//!
//! Those commands run as another process, and SQLite has no notifications,
//! so each relay re-reads the enabled agents' credentials every
//! [`CHECK_INTERVAL`] and publishes them; every agent connection watches
//! for its own credentials to disappear. The query reads one small table
//! (one row per agent) and is the same on both backends, so it also
//! reaches every relay of a PostgreSQL cluster without the bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::AppState;

/// How often the credentials are re-read: revocation takes at most this
/// long plus one query.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The latest read of the enabled agents' credentials; `None` until the
/// first.
pub type Credentials = Option<Arc<Snapshot>>;

#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// When the query started: it saw every change committed before.
    read_at: Instant,
    /// Token hashes of the enabled agents, by agent id.
    valid: HashMap<String, String>,
}

/// Re-reads the credentials until the relay stops.
pub async fn watch(state: AppState) {
    let mut stopping = state.stopping.clone();
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
        let read_at = Instant::now();
        match state.store.agent_credentials().await {
            Ok(rows) => {
                failing = false;
                let valid: HashMap<String, String> = rows.into_iter().collect();
                // Only a change wakes the connections.
                state.credentials.send_if_modified(|known| {
                    let changed = known.as_ref().is_none_or(|known| known.valid != valid);
                    if changed {
                        *known = Some(Arc::new(Snapshot { read_at, valid }));
                    }
                    changed
                });
            }
            // Keep what was known: a store outage revokes nobody. Logged
            // once per outage, not twice a second.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot re-read agent credentials");
            }
            Err(_) => {}
        }
    }
}

/// Resolves once `agent_id` no longer holds `token_hash`, which it held at
/// `signed_in_at`: it was disabled or given a new token since. Only a read
/// started after the sign-in can tell: an older one may predate the agent.
pub async fn revoked(
    mut credentials: watch::Receiver<Credentials>,
    agent_id: String,
    token_hash: String,
    signed_in_at: Instant,
) {
    let revoked = |known: &Credentials| {
        known.as_ref().is_some_and(|known| {
            known.read_at > signed_in_at && known.valid.get(&agent_id) != Some(&token_hash)
        })
    };
    if credentials.wait_for(revoked).await.is_err() {
        // The relay is stopping, which ends the connection anyway.
        std::future::pending::<()>().await;
    }
}
