//! kefu-relay: routes live-chat conversations between visitors and agents,
//! keeps presence, and stores every message durably before acknowledging it.
//!
//! # Layout
//! Layers, lowest first; a module imports only from layers below it, and
//! all build on the wire types of the `kefu-protocol` crate. The table of
//! what each module may import is `tests/relay/layers.rs`, which fails on
//! an import from above.
//!
//! 1. Leaves, which import no other module (but [`telemetry`]):
//!    - [`ids`]: connection ids, and the random ids of rows and sessions.
//!    - [`telemetry`]: Prometheus metrics, fed plain numbers.
//!    - [`systemd`]: readiness and watchdog notifications.
//!    - [`auth`]: agent tokens and signed visitor tokens.
//!    - [`blobs`]: the bytes of uploaded files, by content digest (a
//!      directory by default), durable before `put` answers.
//!    - [`frame`]: protocol types to frame text and back; [`frame::Frame`]
//!      is serialized once and shared by every receiver.
//!    - [`cluster`]: what relays sharing one PostgreSQL tell each other.
//!    - [`tls`]: HTTPS and WSS on the relay's own socket: handshakes off the
//!      accept loop, the certificate reloaded on `SIGHUP`.
//!    - [`proxy`]: the client's address behind trusted reverse proxies.
//!    - [`proxy_header`]: the PROXY protocol header a TCP load balancer
//!      opens its connections with.
//!    - [`blocklist`]: the client addresses an operator has blocked.
//!    - [`http`]: HTTP/1.1 connections with time limits on headers, idle
//!      keep-alive and bodies, each request carrying its client's address.
//!      (Imports only [`proxy`].)
//!    - [`admission`]: which accepted TCP connections are kept: a cap in
//!      total (from the descriptor limit) and per client address, counted
//!      before a byte is read, blocked addresses refused; behind a TCP load
//!      balancer, by the client its PROXY header names. (Imports only
//!      [`telemetry`], [`proxy`], [`proxy_header`] and [`blocklist`].)
//! 2. [`config`]: settings and limits, and where each comes from.
//! 3. [`store`]: the [`store::Store`] trait and its backends, SQLite (one
//!    writer thread with group commit) and PostgreSQL (which also carries
//!    the cluster's news between nodes over `LISTEN`/`NOTIFY`), each with a
//!    feed of committed changes for the hub. [`export`] reads the store out
//!    as JSON Lines; [`prune`] removes files nobody can reach (store rows
//!    and [`blobs`]) and deletes conversations with their files;
//!    [`retention`] deletes those past the retention setting.
//! 4. [`hub`]: one task owning routing and presence; fans committed changes
//!    (and, in a cluster, the other nodes' news) out to connections through
//!    bounded outboxes. Knows frames, not sockets.
//! 5. [`transport`]: HTTP and WebSocket endpoints. Turns frames into store
//!    calls and hub commands, and hub output into WebSocket messages or
//!    long-poll bodies. Knows no routing.
//! 6. [`run`], here: opens the store, starts the hub and serves the
//!    transport (through [`tls`] when configured) until shutdown.
//!
//! A message goes: client → transport → store (commit, fsync) → change feed →
//! hub → other clients' outboxes; the sender's `ack` comes back from the store
//! call. Nothing reaches anybody before it is durable.

pub mod admission;
pub mod auth;
pub mod blobs;
pub mod blocklist;
pub mod cluster;
pub mod config;
pub mod export;
pub mod frame;
pub mod http;
pub mod hub;
pub mod ids;
pub mod proxy;
pub mod proxy_header;
pub mod prune;
pub mod retention;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod tls;
pub mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use admission::{Admission, Admitted};
use tls::{TlsListener, TlsServer};

pub use config::{Config, Limits};

/// Committed changes waiting for the hub before the store writer waits.
const CHANGE_FEED: usize = 4096;
/// How long connections get to say goodbye on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long plain HTTP requests (long polls end at once) get to finish on
/// shutdown. With [`DRAIN_TIMEOUT`] and the store's last commit this keeps
/// the exit within systemd's 10 s.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("could not open the store")]
    Store(#[from] store::StoreError),
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("cannot load the TLS certificate")]
    Tls(#[from] tls::CertificateError),
    #[error("cannot open the files directory")]
    Blobs(#[from] blobs::BlobError),
    #[error("cannot listen on {addr} for metrics")]
    MetricsListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Serves the relay on `listener` (HTTPS and WSS when `config.tls` names a
/// certificate, reloaded on `SIGHUP`) until `shutdown` resolves, then tells
/// every client to reconnect, lets in-flight writes finish and closes the
/// store. Under systemd it reports `READY=1` once serving and `STOPPING=1`
/// when shutdown begins.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    telemetry::install();
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| RelayError::MetricsListen { addr, source })?,
        ),
        None => None,
    };
    let tls = match &config.tls {
        Some(files) => Some(TlsServer::load(
            &files.cert,
            &files.key,
            config.limits.tls_handshake_timeout,
        )?),
        None => None,
    };
    if config.proxy_protocol && config.trusted_proxies.is_empty() {
        tracing::warn!(
            "proxy_protocol is on but trusted_proxies is empty: no PROXY header is read from anyone"
        );
    }
    let blocklist = blocklist::Blocklist::default();
    let admission = Admission::new(
        max_connections(&config.limits),
        config.limits.sockets_per_ip,
        config.trusted_proxies.clone(),
        blocklist.clone(),
        config
            .proxy_protocol
            .then_some(config.limits.http_header_timeout),
    );
    let options = http_options(&config);
    let (listener, starting) =
        answer_while_starting(listener, admission.clone(), tls.clone(), options.clone())
            .map_err(RelayError::Serve)?;
    let (changes_tx, changes_rx) = mpsc::channel(CHANGE_FEED);
    let (store, cluster) = store::open_node(&config.database, Some(changes_tx)).await?;
    starting.stop().await;
    let open_conversations = store.open_conversations().await?;
    let secret = store.visitor_secret().await?;
    let visitor_tokens = auth::VisitorTokens::new(secret.clone());
    let files = (open_blobs(&config)?, auth::FileLinks::new(&secret));
    let hub_options = hub::HubOptions {
        presence_grace: config.presence_grace,
        heartbeat: config.heartbeat,
        auto_assign: config.auto_assign.then(|| store.clone()),
        store: Some(store.clone()),
        ice: config.ice.clone(),
    };
    let (hub, hub_task) = hub::Hub::start(changes_rx, open_conversations, cluster, hub_options);

    let (stopping_tx, stopping) = watch::channel(false);
    // Every connection holds a clone; when all are dropped, `recv` returns None.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    if let Some(retention) = config.retention {
        tokio::spawn(retention::run(
            store.clone(),
            files.0.clone(),
            retention,
            stopping.clone(),
        ));
    }
    let state = transport::AppState::new(
        store.clone(),
        hub,
        config,
        visitor_tokens,
        files,
        blocklist,
        transport::Lifecycle {
            stopping: stopping.clone(),
            alive,
        },
    );
    tokio::spawn(transport::maintain(state.clone()));
    tokio::spawn(transport::revocation::watch(state.clone()));
    tokio::spawn(transport::blocking::watch(state.clone()));
    tokio::spawn(telemetry::upkeep(stopping.clone()));
    if let Some(metrics) = metrics_listener {
        if let Ok(addr) = metrics.local_addr() {
            tracing::info!("metrics on http://{addr}/metrics");
        }
        tokio::spawn(serve_until_stopping(
            metrics,
            transport::metrics_router(state.clone()),
            options.clone(),
            stopping.clone(),
        ));
    }
    let watchdog = tokio::spawn(systemd::watchdog());
    let reloader = tokio::spawn(tls::reload_on_hangup(tls.clone()));
    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("listening on {scheme}://{addr}");
    }
    systemd::ready();
    let server = serve(
        listener,
        admission,
        tls,
        options,
        transport::router(state),
        async move {
            shutdown.await;
            tracing::info!("shutting down: asking clients to reconnect");
            systemd::stopping();
            let _ = stopping_tx.send(true);
        },
    );
    bounded_after_stop(server, stopping, HTTP_DRAIN_TIMEOUT).await;

    // The router (and with it the last `alive` sender outside connections)
    // is gone; wait for the WebSocket connections to say goodbye.
    if tokio::time::timeout(DRAIN_TIMEOUT, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    store.close().await;
    // The hub holds nothing durable; a straggling connection must not keep
    // the process alive.
    hub_task.abort();
    watchdog.abort();
    reloader.abort();
    Ok(())
}

fn http_options(config: &Config) -> http::Options {
    http::Options {
        header_timeout: config.limits.http_header_timeout,
        body_timeout: config.limits.http_body_timeout,
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
    }
}

/// Serves `app` on `listener`, through TLS when `tls` is given, until
/// `shutdown` resolves and the connections it had have finished. Handlers
/// get the peer's address as `ConnectInfo<SocketAddr>`.
fn serve(
    listener: TcpListener,
    admission: Arc<Admission>,
    tls: Option<TlsServer>,
    options: http::Options,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> BoxFuture<'static, ()> {
    // Admitted before TLS: a refused connection costs no handshake.
    let tcp = Admitted::new(listener.tap_io(no_delay), admission);
    match tls {
        None => http::serve(tcp, app, options, shutdown).boxed(),
        Some(tls) => http::serve(TlsListener::new(tcp, tls), app, options, shutdown).boxed(),
    }
}

/// The blob store of uploaded files: the bucket of `files_url`, else
/// `files_dir`, else the directory beside a SQLite file; none for
/// PostgreSQL without either (uploads are then refused, and the relays of a
/// cluster never disagree on what they hold).
pub fn open_blobs(config: &Config) -> Result<Option<Arc<dyn blobs::BlobStore>>, RelayError> {
    if let Some(url) = &config.files_url {
        return Ok(Some(Arc::new(blobs::S3Blobs::from_env(url)?)));
    }
    let dir = config
        .files_dir
        .clone()
        .or_else(|| blobs::default_dir(&config.database));
    match dir {
        Some(dir) => Ok(Some(Arc::new(blobs::BlobDir::open(&dir)?))),
        None => Ok(None),
    }
}

/// The total connection cap: as configured, or from the file-descriptor
/// limit.
fn max_connections(limits: &Limits) -> usize {
    if limits.max_connections > 0 {
        return limits.max_connections;
    }
    // 1024 is the usual soft limit where none can be read.
    let max = admission::max_connections_for(admission::fd_limit().unwrap_or(1024));
    tracing::info!(
        max,
        "connections allowed in all (from the file-descriptor limit)"
    );
    max
}

/// Chat frames are small and often come in bursts (a batch of commits
/// fanned out); with Nagle on, each burst would wait for the client's
/// delayed ACK.
fn no_delay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY refused");
    }
}

/// Waits for `server` to end, or for `grace` after shutdown began: a
/// client holding a request open must not hold up the exit.
async fn bounded_after_stop(
    server: impl Future<Output = ()>,
    mut stopping: watch::Receiver<bool>,
    grace: Duration,
) {
    let overdue = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = overdue => {
            tracing::warn!("HTTP requests still open {grace:?} after shutdown began; leaving them");
        }
    }
}

/// Serves a side router (metrics) until the relay starts shutting down.
async fn serve_until_stopping(
    listener: TcpListener,
    router: axum::Router,
    options: http::Options,
    mut stopping: watch::Receiver<bool>,
) {
    let stopped = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    http::serve(listener, router, options, stopped).await;
}

/// A stand-in server on the relay's socket while the store opens (a
/// PostgreSQL server may take a while to answer): `/healthz` says the
/// process is alive, `/readyz` and every other request that it is not ready
/// yet (503 with `Retry-After`), so a load balancer or orchestrator can tell
/// starting from dead, and clients retry as they do after a restart.
struct Starting {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Starting {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn answer_while_starting(
    listener: TcpListener,
    admission: Arc<Admission>,
    tls: Option<TlsServer>,
    options: http::Options,
) -> std::io::Result<(TcpListener, Starting)> {
    let socket = listener.into_std()?;
    let stand_in = TcpListener::from_std(socket.try_clone()?)?;
    let listener = TcpListener::from_std(socket)?;
    let router = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .fallback(|| async {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                "starting\n",
            )
        });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        serve(stand_in, admission, tls, options, router, stopped).await;
    });
    Ok((listener, Starting { stop, task }))
}
