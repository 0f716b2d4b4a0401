//! What operators and their tools ask of the relay over HTTP:
//!
//! - `GET /healthz`: liveness, 200 whenever the process answers at all.
//! - `GET /readyz`: 200 when the relay can serve chats; 503 once shutdown
//!   has begun or while the store is unreachable (a load balancer then
//!   sends visitors elsewhere).
//! - `GET /metrics`: Prometheus text, on the main address or, with
//!   `metrics_listen`, only on its own one.
//!
//! And a span per HTTP request carrying an id, so that everything logged
//! while handling one can be told apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::Instrument as _;

use super::AppState;

/// A store that takes longer than this to answer a probe counts as down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The store is opened before the listener serves, so answering at all
/// means the process is up.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    if *state.stopping.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let why = match tokio::time::timeout(READY_TIMEOUT, state.store.health()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {READY_TIMEOUT:?}"),
    };
    // The cause is for the operator's log, not for whoever probes.
    tracing::warn!(why, "not ready: the store is unavailable");
    (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
}

/// `/metrics` alone, for a listener of its own.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = crate::telemetry::handle() else {
        return (StatusCode::NOT_FOUND, "metrics are off\n").into_response();
    };
    // A hub that stopped (shutdown) leaves the gauges as they were.
    if let Ok(stats) = state.hub.stats().await {
        crate::telemetry::hub_stats(stats.waiting, stats.agents_online);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Runs the request inside a span `request{id=r17 method=GET path=/…}`. The
/// path leaves out the query string, which may carry session ids.
pub(super) async fn request_span(request: Request, next: Next) -> Response {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "request",
        id = %format_args!("r{id}"),
        method = %request.method(),
        path = %request.uri().path(),
    );
    next.run(request).instrument(span).await
}
