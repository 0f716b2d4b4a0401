//! TLS on the relay's own socket, for sites that run it without a proxy in
//! front: [`TlsListener`] wraps the TCP listener and hands axum streams that
//! have finished their handshake; [`Certificate`] reads the PEM files and
//! swaps them on `SIGHUP` ([`reload_on_hangup`]) while connections stay
//! open.
//!
//! Handshakes run in their own tasks, so one slow client cannot hold up the
//! accept loop, and each has a time limit (`limits.tls_handshake_timeout`):
//! a client that connects and says nothing loses its socket.

mod certificate;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use certificate::{Certificate, CertificateError};

/// Handshakes in progress at once; past this the listener stops accepting
/// until one ends (each ends within the handshake timeout).
const MAX_HANDSHAKES: usize = 1024;

/// What serving TLS needs: the certificate (reloadable) and the rules of
/// the handshake. Cheap to clone.
#[derive(Clone)]
pub struct TlsServer {
    certificate: Arc<Certificate>,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl TlsServer {
    /// Reads the certificate chain and key (PEM) and prepares the handshake:
    /// TLS 1.2 and 1.3 with rustls' safe defaults, HTTP/1.1 (what the relay
    /// speaks) offered by ALPN.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        handshake_timeout: Duration,
    ) -> Result<TlsServer, CertificateError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(Certificate::load(cert_path, key_path, provider.clone())?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsServer {
            certificate,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout,
        })
    }

    /// Reads the files again; a bad new certificate is logged and the one
    /// in use kept.
    pub fn reload(&self) {
        let path = self.certificate.cert_path().display();
        match self.certificate.reload() {
            Ok(()) => tracing::info!("reloaded the TLS certificate from {path}"),
            Err(error) => tracing::error!(
                "cannot reload the TLS certificate, keeping the one in use: {}",
                with_causes(&error)
            ),
        }
    }
}

/// `error: its cause: …`, as an operator needs it in one log line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text = format!("{text}: {error}");
        cause = error.source();
    }
    text
}

/// Reloads the certificate of `server`, if the relay serves TLS, on every
/// `SIGHUP` (what systemd's `ExecReload` sends), for the life of the
/// process. Without one there is nothing to reload, but the signal is still
/// caught: its default action would end the relay. The handler is installed
/// by this call, not when the returned future first runs, so that a relay
/// that says it is ready already survives a `SIGHUP` (a spawned task may
/// start after the "listening" line, and a test's signal killed the relay).
pub fn reload_on_hangup(server: Option<TlsServer>) -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        #[cfg(unix)]
        {
            let mut hangups = match hangups {
                Ok(hangups) => hangups,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGHUP: the certificate will not be reloaded");
                    return;
                }
            };
            while hangups.recv().await.is_some() {
                match &server {
                    Some(server) => server.reload(),
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS certificate)"),
                }
            }
        }
        #[cfg(not(unix))]
        drop(server);
    }
}

/// `inner`'s connections, each after a completed TLS handshake. Connections
/// whose handshake fails or times out are closed and never seen by axum.
pub struct TlsListener<L: Listener> {
    inner: L,
    server: TlsServer,
    handshakes: JoinSet<Option<(TlsStream<L::Io>, SocketAddr)>>,
}

impl<L: Listener<Addr = SocketAddr>> TlsListener<L> {
    pub fn new(inner: L, server: TlsServer) -> Self {
        TlsListener {
            inner,
            server,
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, io: L::Io, addr: SocketAddr) {
        let acceptor = self.server.acceptor.clone();
        let timeout = self.server.handshake_timeout;
        self.handshakes.spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(io)).await {
                Ok(Ok(stream)) => Some((stream, addr)),
                // Scanners and clients that do not trust us end here: not
                // the relay's problem, so not above debug.
                Ok(Err(error)) => {
                    tracing::debug!(%addr, %error, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%addr, "TLS handshake timed out");
                    None
                }
            }
        });
    }
}

impl<L> Listener for TlsListener<L>
where
    L: Listener<Addr = SocketAddr>,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = TlsStream<L::Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        // Both branches are cancel-safe: axum drops this future on shutdown.
        loop {
            tokio::select! {
                (io, addr) = self.inner.accept(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    self.start_handshake(io, addr);
                }
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
