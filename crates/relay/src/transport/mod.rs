//! HTTP and WebSocket endpoints.
//!
//! - [`session`]: the socket loop both roles share (limits, pings, outbox,
//!   shutdown and resync).
//! - [`visitor`] (over WebSocket or long-poll) and [`agent`]: what each
//!   role's frames mean.
//! - [`web`]: the visitor's chat page and the embeddable widget.
//! - [`errors`]: what a refused client is told — a `send` checked before
//!   the store, store errors as error frames, error frames as HTTP responses.
//! - [`files`]: upload, signed links and download of files.
//! - [`limits`]: connections per IP, frames per second, uploads per minute.
//! - [`lookup`]: agents' `search` and paged `conversations`.
//! - [`bulk`]: an admin's `resolve_waiting`, for a flooded queue.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics` and request spans.
//! - [`trail`]: page views checked, rate-limited and held until the
//!   visitor has a conversation; the `visitor` record agents ask for.
//! - [`revocation`]: a disabled agent, or one with a new token, loses its
//!   open connections.
//! - [`blocking`]: blocked client addresses, re-read from the store, and
//!   the open visitor connections a block closes; [`reread`]: how both
//!   pick up what other processes write.
//! - [`welcome`]: the most urgent open conversations, for an agent's
//!   bounded `welcome`.
//! - [`call`]: remote-assistance calls for every role, and the one-time
//!   codes of assist links; [`assist`]: the assist page's `/ws/assist`.

mod agent;
mod assist;
pub mod blocking;
mod bulk;
mod call;
mod errors;
mod files;
mod limits;
mod lookup;
mod ops;
mod reread;
pub mod revocation;
mod session;
mod trail;
mod visitor;
mod web;
mod welcome;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Router, middleware};
use kefu_protocol::{ErrorCode, ErrorFrame};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use crate::auth::{FileLinks, VisitorTokens};
use crate::blobs::BlobStore;
use crate::blocklist::Blocklist;
use crate::config::Config;
use crate::hub::Hub;
use crate::ids::ConnId;
use crate::store::Store;
use crate::telemetry::{OpenConnection, Transport};

use crate::admission::IpPermit;
use errors::error_response;
use limits::{AddressBudgets, NewConversations, PerMinute, VisitorWrites};
pub use ops::metrics_router;

/// What every handler and connection shares: a cheap handle (cloned into
/// each request and connection) that reads as the [`Shared`] it points to,
/// as in `state.hub` or `state.config.limits`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The relay's services and settings, behind [`AppState`]. Its fields are
/// the transport's own.
pub struct Shared {
    store: Arc<dyn Store>,
    hub: Hub,
    config: Config,
    visitor_tokens: VisitorTokens,
    budgets: AddressBudgets,
    new_conversations: NewConversations,
    polls: visitor::longpoll::PollSessions,
    trails: trail::Trails,
    /// Where uploaded files go; `None` when this relay keeps none.
    blobs: Option<Arc<dyn BlobStore>>,
    file_links: FileLinks,
    /// Uploads per minute, by uploader id.
    uploads: PerMinute<String>,
    /// Turns to decode an uploaded image for its thumbnail.
    decoding: tokio::sync::Semaphore,
    /// Turns for visitors' store writes, shared by all visitors.
    visitor_writes: VisitorWrites,
    /// The enabled agents' credentials, re-read by [`revocation::watch`].
    credentials: watch::Sender<revocation::Credentials>,
    /// The blocked client addresses, re-read by [`blocking::watch`];
    /// shared with admission.
    blocklist: Blocklist,
    /// Turns true when the relay starts shutting down.
    stopping: watch::Receiver<bool>,
    /// Held by every connection so shutdown can wait for them all.
    alive: mpsc::Sender<()>,
}

/// How the relay tells the transport it is stopping, and learns that every
/// connection has closed.
pub struct Lifecycle {
    /// Turns true when the relay starts shutting down.
    pub stopping: watch::Receiver<bool>,
    /// Cloned into every connection; shutdown waits until all are dropped.
    pub alive: mpsc::Sender<()>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Hub,
        config: Config,
        visitor_tokens: VisitorTokens,
        files: (Option<Arc<dyn BlobStore>>, FileLinks),
        blocklist: Blocklist,
        lifecycle: Lifecycle,
    ) -> Self {
        let (blobs, file_links) = files;
        let Lifecycle { stopping, alive } = lifecycle;
        let uploads = PerMinute::new(config.limits.uploads_per_minute);
        let budgets = AddressBudgets::new(config.limits.connections_per_ip);
        let new_conversations = NewConversations::new(config.limits.new_conversations_per_minute);
        let visitor_writes = VisitorWrites::new(config.limits.visitor_writes_in_flight);
        AppState(Arc::new(Shared {
            store,
            hub,
            config,
            visitor_tokens,
            budgets,
            new_conversations,
            polls: Default::default(),
            trails: Default::default(),
            blobs,
            file_links,
            uploads,
            decoding: tokio::sync::Semaphore::new(files::DECODES_AT_ONCE),
            visitor_writes,
            credentials: watch::Sender::new(None),
            blocklist,
            stopping,
            alive,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub fn router(state: AppState) -> Router {
    // Bodies past the frame limit are refused with `too_large` by the
    // handlers; far larger ones are not even read.
    let body_limit = state
        .config
        .limits
        .max_frame_bytes
        .saturating_mul(session::HARD_LIMIT_FACTOR);
    let visitor_api = Router::new()
        .route("/hello", post(visitor::longpoll::hello))
        .route("/send", post(visitor::longpoll::send))
        .route("/events", get(visitor::longpoll::events))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), check_origin))
        .fallback(|| async { errors::refused(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            errors::refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "wrong method for this endpoint".into(),
            )
        });
    let router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route(
            "/ws/visitor",
            get(visitor_ws)
                .route_layer(middleware::from_fn_with_state(state.clone(), check_origin)),
        )
        .route("/ws/agent", get(agent_ws))
        .route("/ws/assist", get(assist_ws))
        .nest("/api/visitor", visitor_api)
        .route(
            "/api/files",
            post(files::upload)
                .route_layer(middleware::from_fn_with_state(state.clone(), check_origin)),
        )
        .route(
            "/api/files/{id}/link",
            get(files::link)
                .route_layer(middleware::from_fn_with_state(state.clone(), check_origin)),
        )
        .route("/files/{id}", get(files::download))
        .route("/files/{id}/thumbnail", get(files::download_thumbnail))
        .merge(web::routes());
    // With a separate metrics address, the main one does not serve them.
    let router = if state.config.metrics_listen.is_none() {
        router.route("/metrics", get(ops::metrics))
    } else {
        router
    };
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            blocking::refuse_blocked,
        ))
        .layer(middleware::from_fn(ops::request_span))
        .with_state(state)
}

/// Closes idle long-poll sessions, and forgets the new-conversation
/// buckets of addresses gone quiet and old held page views, until the
/// relay stops.
pub async fn maintain(state: AppState) {
    let mut stopping = state.stopping.clone();
    let mut tick = tokio::time::interval(visitor::longpoll::IDLE_TIMEOUT / 4);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
        state.polls.close_idle().await;
        state.new_conversations.forget_quiet();
        state.trails.forget_old();
        state.uploads.forget_quiet();
    }
}

/// Refuses visitor requests from pages on origins that are not allowed.
/// Requests without `Origin` come from programs, not pages, and pass: a
/// browser always sends it on WebSocket upgrades and cross-origin fetches.
async fn check_origin(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let headers = request.headers();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let allowed = origin
        .to_str()
        .is_ok_and(|origin| state.config.origin_allowed(origin, host));
    if allowed {
        next.run(request).await
    } else {
        error_response(ErrorFrame::new(
            ErrorCode::Forbidden,
            "this page's origin may not use the chat; add it to allowed_origins",
        ))
    }
}

async fn visitor_ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let peer_info = Box::new(visitor::Peer::new(peer.ip(), &headers));
    let slot = state.budgets.visitor_sockets.acquire(peer.ip());
    accept(state, slot, upgrade, "visitor", |state, session| {
        visitor::ws::serve(state, session, peer_info)
    })
}

async fn agent_ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let slot = state.budgets.agent_handshakes.acquire(peer.ip());
    accept(state, slot, upgrade, "agent", agent::serve)
}

/// An assist page: counted with agents' handshakes, as it speaks for one.
async fn assist_ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let slot = state.budgets.agent_handshakes.acquire(peer.ip());
    accept(state, slot, upgrade, "assist", assist::serve)
}

/// Upgrades to a WebSocket served by `serve`, if the peer's address had a
/// `slot` left in the budget of this kind of connection. The connection runs in a `conn` span carrying
/// its id, and is counted in the metrics while it lives.
///
/// The socket goes into a boxed [`session::Session`] before the connection's
/// future is built: the futures that wait on it then hold a pointer, where
/// each would otherwise keep its own copy of the 370-byte socket for as long
/// as the connection lives. For the same reason what the upgrade closure
/// needs is boxed: axum's task keeps the closure's captures, spent or not,
/// until the connection ends. (`serve`'s future is built inside the block
/// that awaits it: built outside, the block kept it twice, as a capture
/// and as the future it awaits, 700 bytes more per connection.)
fn accept<F, Served>(
    state: AppState,
    slot: Option<IpPermit>,
    upgrade: WebSocketUpgrade,
    role: &'static str,
    serve: F,
) -> Response
where
    F: FnOnce(AppState, Box<session::Session>) -> Served + Send + 'static,
    Served: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(slot) = slot else {
        return too_many_connections();
    };
    let conn = ConnId::next();
    let span = tracing::info_span!("conn", id = %conn, role);
    let upgrade = session::configure(upgrade, &state.config.limits);
    let pending = Box::new((state, slot, serve));
    upgrade.on_upgrade(move |socket| {
        let (state, slot, serve) = *pending;
        let session = Box::new(session::Session::new(conn, socket, state.clone(), slot));
        async move {
            let _open = OpenConnection::new(role, Transport::WebSocket);
            serve(state, session).await;
        }
        .instrument(span)
    })
}

fn too_many_connections() -> Response {
    error_response(ErrorFrame::new(
        ErrorCode::RateLimited,
        "too many connections from this address",
    ))
}
