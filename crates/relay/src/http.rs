//! HTTP/1.1 connections served with a time limit on everything a client
//! can stall, which `axum::serve` has none of:
//! - the request line and headers ([`Timeouts::header`]), hyper's
//!   `header_read_timeout`. Its clock starts whenever the connection waits
//!   for a request, so it also bounds an idle keep-alive connection, and a
//!   WebSocket handshake sent byte by byte (the handshake is a request);
//! - the request body ([`Timeouts::body`]), from when the handler starts
//!   reading it (at once, for the relay's) to its last byte, by
//!   [`Deadline`]: a body that trickles in a byte every few seconds fails
//!   as surely as one that stops.
//!
//! A connection upgraded to a WebSocket leaves hyper: from then on the
//! transport's own limits apply (the `hello` timeout, pings).
//!
//! Handlers get the client's address as axum's `ConnectInfo<SocketAddr>`,
//! as with `axum::serve`: the peer's, or behind a trusted proxy the one it
//! names ([`TrustedProxies::client`]), so that every per-address limit
//! counts the client rather than the proxy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use std::{fmt, net::SocketAddr};

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::proxy::TrustedProxies;

/// How connections are served: how long a client may take over each part
/// of a request, and whom to believe about the client's address.
#[derive(Debug, Clone)]
pub struct Options {
    /// The request line and headers, counted from when the connection
    /// starts waiting for them (so idle keep-alive time counts too).
    pub header_timeout: Duration,
    /// The body, counted from when the handler starts reading it.
    pub body_timeout: Duration,
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// Serves `app` on every connection `listener` accepts until `shutdown`
/// resolves; then lets the requests in flight finish and returns once
/// every connection has closed (or been upgraded to a WebSocket).
pub async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    options: Options,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true);
    // `stop` tells connections to finish; each holds a `done` receiver,
    // so the sender's `closed` resolves when the last has ended.
    let (stop, stopping) = watch::channel(false);
    let (done, connected) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let app = TowerToHyperService::new(app.clone());
        let (body_timeout, proxies) = (options.body_timeout, options.trusted_proxies.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let client = proxies.client(peer, request.headers());
            let mut request = request.map(|body| Deadline::new(body, body_timeout));
            request.extensions_mut().insert(ConnectInfo(client));
            app.call(request)
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        let connected = connected.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let stopped = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            let finished = tokio::select! {
                finished = connection.as_mut() => finished,
                () = stopped => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Timeouts, resets and clients that just go: theirs, not ours.
            if let Err(error) = finished {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
            drop(connected);
        });
    }
    drop(listener);
    drop(connected);
    let _ = stop.send(true);
    done.closed().await;
}

/// A request body that fails once its time is up, however it trickles in.
pub struct Deadline {
    body: Incoming,
    timeout: Duration,
    /// Started at the first poll, when a handler starts reading.
    expires: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    fn new(body: Incoming, timeout: Duration) -> Self {
        Deadline {
            body,
            timeout,
            expires: None,
        }
    }
}

/// The error a body that took too long ends with; handlers that read it
/// answer 400 with this text.
#[derive(Debug)]
pub struct BodyTimedOut(Duration);

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body took longer than {:?}", self.0)
    }
}

impl std::error::Error for BodyTimedOut {}

impl Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let expires = this
            .expires
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(expires.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyTimedOut(timeout).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
