//! Blocked client addresses: `kefu-relay block` writes the store, and
//! every relay re-reads the blocks in force (see [`super::reread`]).
//! Admission refuses a blocked peer at accept; [`refuse_blocked`] refuses a
//! blocked client that a trusted proxy names, before any handler runs; and
//! the visitors already connected from a range when it is blocked are
//! closed (each WebSocket watches the list for its own address, see
//! [`crate::blocklist::BlockWatch`]; the long-poll sessions when the list
//! changes). Agents keep their connections: a block is against
//! anonymous traffic, and an agent behind a blocked office NAT is known.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use kefu_protocol::{ErrorCode, ErrorFrame};

use super::errors::error_response;
use super::{AppState, reread};
use crate::blocklist::parse_range;
use crate::store::now_millis;

/// Re-reads the blocks in force until the relay stops.
pub async fn watch(state: AppState) {
    let state = &state;
    reread::until_stopping(state, "blocked addresses", || async move {
        let blocks = state.store.blocks(now_millis()).await?;
        // The command checked each range; a row it did not write is
        // skipped, not a reason to lift every block.
        let ranges = blocks
            .iter()
            .filter_map(|block| parse_range(&block.range).ok())
            .collect();
        if state.blocklist.replace(ranges) {
            tracing::info!(blocks = blocks.len(), "blocked addresses changed");
            // WebSockets wait for their own address (`BlockWatch`); the
            // sessions of long-poll visitors have nobody waiting between
            // polls, so they are closed here.
            state.polls.close_blocked(&state.blocklist).await;
        }
        Ok(())
    })
    .await;
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
        return error_response(blocked());
    }
    next.run(request).await
}

/// What a blocked client is told, on a request or on its open connection.
pub(super) fn blocked() -> ErrorFrame {
    ErrorFrame::new(ErrorCode::Forbidden, "this address is blocked")
}
