//! Long-polling for visitors whose network breaks WebSockets.
//!
//! `POST /api/visitor/hello` opens a poll session (registered with the hub
//! like a WebSocket connection) and answers `welcome` with its `session` id.
//! `GET /api/visitor/events?session=S&after_seq=N` answers a JSON array of
//! frames as soon as there is something, or `[]` after 25 s. Messages come
//! from the store (every public message with `seq > N`, the visitor's own
//! included), so a lost response or an overflowing queue can never leave a
//! gap; the hub's queue only wakes the poll and carries typing, presence,
//! read receipts and broadcasts. `POST /api/visitor/send?session=S` takes
//! one frame (`send`, `typing`, `read`, `profile`) and answers the `ack` or
//! `error` a WebSocket would get. Requests after `hello` carry the visitor
//! token as `Authorization: Bearer`.
//!
//! A session nobody polled for [`IDLE_TIMEOUT`] is closed, and the visitor
//! goes offline after the presence grace like a closed WebSocket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::DefaultDirectRateLimiter;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest, VisitorWelcome};
use kefu_protocol::{ErrorCode, ErrorFrame, Reconnect, Seq};
use serde::Deserialize;
use tokio::time::Instant;

use super::super::errors::{error_response, rejected};
use super::super::limits::{frame_limiter, long_poll_outbox};
use super::super::{AppState, blocking};
use super::{Peer, VisitorCore};
use crate::admission::IpPermit;
use crate::blocklist::Blocklist;
use crate::frame::{Frame, decode, encode};
use crate::hub::{Inbox, Outbound, mailbox};
use crate::ids::ConnId;
use crate::telemetry::{self, OpenConnection, Transport};

/// How long a poll is held when there is nothing to say.
const POLL_HOLD: Duration = Duration::from_secs(25);
/// A session not polled for this long is closed.
pub(in crate::transport) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Open poll sessions by id.
#[derive(Default)]
pub(in crate::transport) struct PollSessions {
    /// Locked only to look up, insert or remove; never across an `.await`.
    sessions: Mutex<HashMap<String, Arc<PollSession>>>,
}

struct PollSession {
    visitor_id: String,
    /// The client's address, for blocks made while the session is open.
    address: IpAddr,
    core: tokio::sync::Mutex<VisitorCore>,
    inbox: tokio::sync::Mutex<Inbox>,
    rate: DefaultDirectRateLimiter,
    /// Counts the polls begun: a poll ends as soon as a newer one begins.
    polls_begun: tokio::sync::watch::Sender<u64>,
    last_active: Mutex<Instant>,
    _permit: IpPermit,
    _open: OpenConnection,
}

impl PollSession {
    fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Begins a poll, ending the one in flight (if any): returns what
    /// resolves once a newer poll begins.
    fn begin_poll(&self) -> impl Future<Output = ()> + use<> {
        let mut mine = 0;
        self.polls_begun.send_modify(|begun| {
            *begun += 1;
            mine = *begun;
        });
        let mut begun = self.polls_begun.subscribe();
        async move {
            // The sender lives as long as the session; if it is gone, so is
            // the poll's reason to wait.
            let _ = begun.wait_for(|begun| *begun != mine).await;
        }
    }

    fn idle_since(&self) -> Instant {
        *self.last_active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PollSessions {
    fn get(&self, id: &str) -> Option<Arc<PollSession>> {
        self.lock().get(id).cloned()
    }

    fn remove(&self, id: &str) -> Option<Arc<PollSession>> {
        self.lock().remove(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PollSession>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the sessions idle for longer than [`IDLE_TIMEOUT`] (a poll in
    /// progress keeps its session fresh) and unregisters them.
    pub async fn close_idle(&self) {
        let now = Instant::now();
        self.close_where(|s| now.duration_since(s.idle_since()) > IDLE_TIMEOUT)
            .await;
    }

    /// Removes and unregisters the sessions of clients in a blocked range.
    /// A poll in flight answers the block itself (see [`events`]); the
    /// session's next request is refused before it gets here.
    pub async fn close_blocked(&self, blocklist: &Blocklist) {
        self.close_where(|s| blocklist.contains(s.address)).await;
    }

    /// Removes and unregisters the sessions `close` picks among those with
    /// no poll in flight (a poll ends its own session).
    async fn close_where(&self, close: impl Fn(&PollSession) -> bool) {
        let closed: Vec<Arc<PollSession>> = {
            let mut sessions = self.lock();
            let picked: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| close(s))
                .filter(|(_, s)| s.inbox.try_lock().is_ok())
                .map(|(id, _)| id.clone())
                .collect();
            picked.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in closed {
            session.core.lock().await.unregister().await;
        }
    }
}

pub(in crate::transport) async fn hello(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejected(rejection),
    };
    let Some(permit) = state.budgets.poll_sessions.acquire(peer.ip()) else {
        return error_response(ErrorFrame::new(
            ErrorCode::RateLimited,
            "too many connections from this address",
        ));
    };
    let request = match parse(&state, &body) {
        Ok(request) => request,
        Err(error) => return error_response(error),
    };
    let VisitorRequest::Hello { token, profile, .. } = request else {
        return error_response(ErrorFrame::new(
            ErrorCode::BadRequest,
            "expected a hello frame",
        ));
    };
    let peer = Peer::new(peer.ip(), &headers);
    let session_id = crate::ids::new_id();
    match open_session(&state, permit, peer, token, profile, session_id).await {
        Ok((_, welcome)) => Json(VisitorEvent::Welcome(welcome)).into_response(),
        Err(error) => error_response(error),
    }
}

/// Starts a poll session named `session_id` on this relay.
async fn open_session(
    state: &AppState,
    permit: IpPermit,
    peer: Peer,
    token: Option<String>,
    profile: Option<kefu_protocol::visitor::VisitorProfile>,
    session_id: String,
) -> Result<(Arc<PollSession>, VisitorWelcome), ErrorFrame> {
    let conn = ConnId::next();
    let address = peer.address;
    let core = VisitorCore::hello(state.clone(), conn, peer, token, profile).await?;
    let (outbox, inbox) = mailbox(conn, long_poll_outbox(core.limits()));
    let Some(welcome) = core.register(outbox, Some(session_id.clone())).await else {
        return Err(ErrorFrame::new(ErrorCode::Internal, "shutting down"));
    };
    let session = Arc::new(PollSession {
        visitor_id: welcome.visitor_id.clone(),
        address,
        core: tokio::sync::Mutex::new(core),
        inbox: tokio::sync::Mutex::new(inbox),
        rate: frame_limiter(&state.config.limits),
        polls_begun: tokio::sync::watch::Sender::new(0),
        last_active: Mutex::new(Instant::now()),
        _permit: permit,
        _open: OpenConnection::new("visitor", Transport::LongPoll),
    });
    let raced = {
        let mut sessions = state.polls.lock();
        match sessions.get(&session_id) {
            Some(existing) => Some(existing.clone()),
            None => {
                sessions.insert(session_id, session.clone());
                None
            }
        }
    };
    match raced {
        // Two requests adopted the same session at once: keep the first.
        Some(existing) => {
            session.core.lock().await.unregister().await;
            Ok((existing, welcome))
        }
        None => Ok((session, welcome)),
    }
}

#[derive(Deserialize)]
pub(in crate::transport) struct SessionQuery {
    session: String,
    #[serde(default)]
    after_seq: Seq,
}

pub(in crate::transport) async fn send(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    query: Result<Query<SessionQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (query, body) = match (query, body) {
        (Ok(Query(query)), Ok(body)) => (query, body),
        (Err(rejection), _) => return rejected(rejection),
        (_, Err(rejection)) => return rejected(rejection),
    };
    let session = match authorized(&state, peer, &headers, &query.session).await {
        Ok(session) => session,
        Err(error) => return error_response(error),
    };
    session.touch();
    telemetry::frame_received(Transport::LongPoll);
    if session.rate.check().is_err() {
        return error_response(ErrorFrame::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} requests per second; this one was dropped",
                state.config.limits.frames_per_second
            ),
        ));
    }
    let request = match parse(&state, &body) {
        Ok(request) => request,
        Err(error) => return error_response(error),
    };
    let answer = session.core.lock().await.handle(request).await;
    match answer {
        Some(VisitorEvent::Error(error)) => error_response(error),
        Some(event) => Json(event).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

pub(in crate::transport) async fn events(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    query: Result<Query<SessionQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return rejected(rejection),
    };
    let session = match authorized(&state, peer, &headers, &query.session).await {
        Ok(session) => session,
        Err(error) => return error_response(error),
    };
    session.touch();
    let deadline = Instant::now() + POLL_HOLD;
    // One poll in flight per session: a new one (the page re-polled after a
    // network hiccup, or a script opened thousands) ends the one before,
    // which answers `[]` at once and frees its socket. Nothing is lost:
    // messages come from the store by `after_seq`.
    let superseded = session.begin_poll();
    tokio::pin!(superseded);
    let mut inbox = tokio::select! {
        inbox = session.inbox.lock() => inbox,
        () = &mut superseded => return frames_response(Vec::new()),
    };
    // A poll that waited for the lock may find its session closed meanwhile
    // (removal happens under this lock), and must not touch its inbox.
    if state.polls.get(&query.session).is_none() {
        return frames_response(vec![reconnect_frame("resync")]);
    }
    let mut stopping = state.stopping.clone();
    let blocked = state.blocklist.until_blocked(session.address);
    tokio::pin!(blocked);
    let mut frames = Vec::new();
    let Inbox {
        frames: queued,
        kicked,
    } = &mut *inbox;
    let outcome = loop {
        // Messages come from the store, below.
        while let Ok(outbound) = queued.try_recv() {
            if !matches!(outbound, Outbound::Message { .. }) {
                frames.push(outbound.into_frame());
            }
        }
        let messages = {
            let mut core = session.core.lock().await;
            match core.refresh_conversation().await {
                Ok(()) => core.messages_after(query.after_seq).await,
                Err(error) => Err(error),
            }
        };
        match messages {
            Ok(messages) => frames.extend(
                messages
                    .into_iter()
                    .map(|message| encode(&VisitorEvent::Message(message))),
            ),
            Err(error) => frames.push(encode(&VisitorEvent::Error(error))),
        }
        if !frames.is_empty() {
            break PollOutcome::Frames;
        }
        tokio::select! {
            outbound = queued.recv() => match outbound {
                Some(Outbound::Message { .. }) => {}
                Some(outbound) => frames.push(outbound.into_frame()),
                None => break PollOutcome::Resync,
            },
            _ = &mut *kicked => break PollOutcome::Resync,
            () = &mut superseded => break PollOutcome::Frames,
            _ = stopping.wait_for(|stopping| *stopping) => break PollOutcome::Shutdown,
            () = &mut blocked => break PollOutcome::Blocked,
            () = tokio::time::sleep_until(deadline) => break PollOutcome::Frames,
        }
    };
    session.touch();
    let reason = match outcome {
        PollOutcome::Frames => return frames_response(frames),
        PollOutcome::Resync => Some("resync"),
        PollOutcome::Shutdown => Some("shutdown"),
        PollOutcome::Blocked => None,
    };
    state.polls.remove(&query.session);
    drop(inbox);
    session.core.lock().await.unregister().await;
    match reason {
        Some(reason) => {
            frames.push(reconnect_frame(reason));
            frames_response(frames)
        }
        // As the next request would be refused (403 `forbidden`).
        None => error_response(blocking::blocked()),
    }
}

fn reconnect_frame(reason: &str) -> Frame {
    encode(&VisitorEvent::Reconnect(Reconnect {
        after_ms: rand::random_range(500..3_000),
        reason: Some(reason.to_owned()),
    }))
}

enum PollOutcome {
    Frames,
    Resync,
    Shutdown,
    /// The client's address was blocked while it polled.
    Blocked,
}

fn parse(state: &AppState, body: &[u8]) -> Result<VisitorRequest, ErrorFrame> {
    let max = state.config.limits.max_frame_bytes;
    if body.len() > max {
        return Err(ErrorFrame::new(
            ErrorCode::TooLarge,
            format!(
                "body of {} bytes exceeds the limit of {max} bytes",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ErrorFrame::new(ErrorCode::BadRequest, "the body is not UTF-8"))?;
    decode(text)
}

/// The session named by the query, if the bearer token is its visitor's.
///
/// Behind a load balancer without sticky sessions, a poll may reach a relay
/// that has never seen its session: the relay then adopts it (the token
/// proves the visitor), and since messages come from the shared store the
/// visitor misses nothing. The session on the other relay idles out.
async fn authorized(
    state: &AppState,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    session_id: &str,
) -> Result<Arc<PollSession>, ErrorFrame> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ErrorFrame::new(
                ErrorCode::Unauthorized,
                "missing Authorization: Bearer token",
            )
        })?;
    let visitor_id = state
        .0
        .visitor_tokens
        .verify(token.trim())
        .ok_or_else(|| ErrorFrame::new(ErrorCode::Unauthorized, "invalid visitor token"))?;
    let foreign = || ErrorFrame::new(ErrorCode::NotFound, "no such poll session; say hello again");
    match state.polls.get(session_id) {
        Some(session) if session.visitor_id == visitor_id => return Ok(session),
        Some(_) => return Err(foreign()),
        None => {}
    }
    // Only ids this relay could have issued are adopted.
    if session_id.len() != 32 || !session_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(foreign());
    }
    let permit = state
        .budgets
        .poll_sessions
        .acquire(peer.ip())
        .ok_or_else(|| {
            ErrorFrame::new(
                ErrorCode::RateLimited,
                "too many connections from this address",
            )
        })?;
    let token = Some(token.trim().to_owned());
    let (session, _) = open_session(
        state,
        permit,
        Peer::new(peer.ip(), headers),
        token,
        None,
        session_id.to_owned(),
    )
    .await?;
    if session.visitor_id == visitor_id {
        Ok(session)
    } else {
        Err(foreign())
    }
}

fn frames_response(frames: Vec<Frame>) -> Response {
    telemetry::frames_sent(Transport::LongPoll, frames.len());
    // Each frame is already a serialized JSON object.
    let mut body = Vec::with_capacity(2 + frames.iter().map(|f| f.len() + 1).sum::<usize>());
    body.push(b'[');
    for (index, frame) in frames.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(frame.as_bytes());
    }
    body.push(b']');
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
