//! What other processes change in the store (`agent disable`, `block`)
//! reaches a running relay by re-reading it: those commands run as another
//! process, SQLite has no notifications, and the same query reaches every
//! relay of a PostgreSQL cluster without the bus.

use std::future::Future;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::AppState;
use crate::store::StoreError;

/// How often: a change takes effect within this plus one query.
pub(super) const INTERVAL: Duration = Duration::from_millis(500);

/// Runs `read` every [`INTERVAL`] until the relay stops. A failed read
/// changes nothing (a store outage neither revokes nor lifts anything) and
/// is logged once per outage, not twice a second.
pub(super) async fn until_stopping<F, Fut>(state: &AppState, what: &str, mut read: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut stopping = state.stopping.clone();
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
        match read().await {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot re-read {what}");
            }
            Err(_) => {}
        }
    }
}
