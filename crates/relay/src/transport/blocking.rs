//! Blocked client addresses: `kefu-relay block` writes the store, and
//! every relay re-reads the blocks in force every [`CHECK_INTERVAL`] (the
//! command is another process, and SQLite has no notifications; the same
//! query reaches every relay of a PostgreSQL cluster). Admission refuses a
//! blocked peer at accept; [`refuse_blocked`] refuses a blocked client that
//! a trusted proxy names, before any handler runs.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use kefu_protocol::{ErrorCode, ErrorFrame};
use tokio::time::MissedTickBehavior;

use super::AppState;
use super::errors::error_response;
use crate::blocklist::parse_range;
use crate::store::now_millis;

/// How often the blocks are re-read: a block takes effect within this
/// plus one query.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Re-reads the blocks in force until the relay stops.
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
        match state.store.blocks(now_millis()).await {
            Ok(blocks) => {
                failing = false;
                // The command checked each range; a row it did not write is
                // skipped, not a reason to lift every block.
                let ranges = blocks
                    .iter()
                    .filter_map(|block| parse_range(&block.range).ok())
                    .collect();
                if state.blocklist.replace(ranges) {
                    tracing::info!(blocks = blocks.len(), "blocked addresses changed");
                }
            }
            // Keep what was known: a store outage lifts no block.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot re-read blocked addresses");
            }
            Err(_) => {}
        }
    }
}

/// Refuses requests from blocked clients: those behind a trusted proxy,
/// whose address is known only now (others were refused at accept).
pub async fn refuse_blocked(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if state.blocklist.contains(client.ip()) {
        return error_response(ErrorFrame::new(
            ErrorCode::Forbidden,
            "this address is blocked",
        ));
    }
    next.run(request).await
}
