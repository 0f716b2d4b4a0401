//! HTTP and WebSocket endpoints.
//!
//! - [`session`]: the socket loop both roles share (limits, pings, outbox,
//!   shutdown and resync).
//! - [`visitor`] and [`agent`]: what each role's frames mean.
//! - [`limits`]: connections per IP.

mod agent;
mod limits;
mod session;
mod visitor;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kefu_protocol::{ErrorCode, ErrorFrame};
use tokio::sync::{mpsc, watch};

use crate::auth::VisitorTokens;
use crate::config::Config;
use crate::hub::Hub;
use crate::store::{Store, StoreError};

pub use limits::IpLimiter;

/// What every handler and connection shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    store: Arc<dyn Store>,
    hub: Hub,
    config: Config,
    visitor_tokens: VisitorTokens,
    ips: IpLimiter,
    /// Turns true when the relay starts shutting down.
    stopping: watch::Receiver<bool>,
    /// Held by every connection so shutdown can wait for them all.
    alive: mpsc::Sender<()>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Hub,
        config: Config,
        visitor_tokens: VisitorTokens,
        stopping: watch::Receiver<bool>,
        alive: mpsc::Sender<()>,
    ) -> Self {
        let ips = IpLimiter::new(config.limits.connections_per_ip);
        AppState(Arc::new(Shared {
            store,
            hub,
            config,
            visitor_tokens,
            ips,
            stopping,
            alive,
        }))
    }
}

impl AppState {
    fn session(&self, socket: axum::extract::ws::WebSocket) -> session::Session {
        session::Session::new(
            socket,
            &self.0.config.limits,
            self.0.stopping.clone(),
            self.0.alive.clone(),
        )
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/ws/visitor", get(visitor_ws))
        .route("/ws/agent", get(agent_ws))
        .with_state(state)
}

/// The store is opened before the listener serves, so answering at all
/// means it is open.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn visitor_ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(permit) = state.0.ips.acquire(peer.ip()) else {
        return too_many_connections();
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|value| visitor::bounded(value).to_owned());
    session::configure(upgrade, &state.0.config.limits).on_upgrade(move |socket| async move {
        let _permit = permit;
        visitor::serve(state, socket, user_agent).await;
    })
}

async fn agent_ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(permit) = state.0.ips.acquire(peer.ip()) else {
        return too_many_connections();
    };
    session::configure(upgrade, &state.0.config.limits).on_upgrade(move |socket| async move {
        let _permit = permit;
        agent::serve(state, socket).await;
    })
}

fn too_many_connections() -> Response {
    let body = ErrorFrame::new(
        ErrorCode::RateLimited,
        "too many connections from this address",
    );
    (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
}

/// The longest `client_id` accepted; it is an idempotency key, not content.
const MAX_CLIENT_ID: usize = 128;

/// Checks a `send` before it reaches the store.
fn check_send(client_id: &str, text: &str, max_chars: usize) -> Result<(), ErrorFrame> {
    let refuse = |code, message: String| Err(ErrorFrame::new(code, message).with_ref(client_id));
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
        return refuse(
            ErrorCode::BadRequest,
            format!("client_id must be 1 to {MAX_CLIENT_ID} bytes"),
        );
    }
    if text.trim().is_empty() {
        return refuse(ErrorCode::BadRequest, "text is empty".to_owned());
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return refuse(
            ErrorCode::TooLarge,
            format!("text of {chars} characters exceeds the limit of {max_chars}"),
        );
    }
    Ok(())
}

/// What a client is told when the store refuses; internals stay in the log.
fn store_error(error: StoreError, reference: &str) -> ErrorFrame {
    let (code, message) = match error {
        StoreError::NotFound(what) => (ErrorCode::NotFound, format!("{what} not found")),
        StoreError::Conflict(why) => (ErrorCode::Conflict, why),
        StoreError::Forbidden(why) => (ErrorCode::Forbidden, why.to_owned()),
        other => {
            tracing::error!(error = %other, "store failure");
            (
                ErrorCode::Internal,
                "the relay could not store this; retry later".to_owned(),
            )
        }
    };
    ErrorFrame::new(code, message).with_ref(reference)
}
