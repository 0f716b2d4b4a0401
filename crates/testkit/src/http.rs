//! Plain HTTP requests to a relay through hyper, so that tests never write
//! HTTP/1.1 by hand; raw sockets stay for tests about raw bytes.
//!
//! A [`Client`] keeps connections alive between requests as a browser
//! would; [`get`] and [`post`] use a fresh one each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::PATIENCE;

pub use hyper::Method;

/// What a request came back with.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as text, invalid UTF-8 replaced.
    pub body: String,
    /// The body as it came, for binary answers (images, downloads).
    pub bytes: Bytes,
}

impl Response {
    /// The value of `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// Why no [`Response`] came.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {0}")]
    Invalid(#[from] hyper::http::Error),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("reading the body failed: {0}")]
    Body(#[from] hyper::Error),
}

/// An HTTP/1.1 client that reuses its connections.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    patience: Duration,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// Gives each response [`PATIENCE`].
    pub fn new() -> Client {
        Client::with_patience(PATIENCE)
    }

    /// Gives each response `patience`, e.g. long polls that are held open.
    pub fn with_patience(patience: Duration) -> Client {
        Client {
            inner: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
            patience,
        }
    }

    /// `method` `http://addr/path` with `headers` and `body`.
    pub async fn request(
        &self,
        method: Method,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            // An invalid name or value surfaces from `body` below.
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into()))?;
        let response = tokio::time::timeout(self.patience, async {
            let response = self.inner.request(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, Error>(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
                bytes,
            })
        })
        .await
        .map_err(|_| Error::Timeout(self.patience))??;
        Ok(response)
    }

    pub async fn get(&self, addr: SocketAddr, path: &str) -> Result<Response, Error> {
        self.request(Method::GET, addr, path, &[], Bytes::new())
            .await
    }

    pub async fn post(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, Error> {
        self.request(Method::POST, addr, path, headers, body).await
    }
}

/// `GET path` on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Response, Error> {
    Client::new().get(addr, path).await
}

/// `POST path` with `headers` and `body` on a fresh connection.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Response, Error> {
    Client::new().post(addr, path, headers, body).await
}

/// How long [`wait_ready`] waits between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// Waits until the relay at `addr` answers `/readyz` with 200: before, while
/// its store opens, it answers 503 "starting" (its listener is bound before
/// `run` starts, so connecting succeeds at once).
pub async fn wait_ready(addr: SocketAddr) {
    wait_ready_over(addr, None).await;
}

/// [`wait_ready`] for a relay that serves TLS when `tls` is given (the
/// client that trusts its certificate).
pub async fn wait_ready_over(addr: SocketAddr, tls: Option<Arc<rustls::ClientConfig>>) {
    // One connection per probe: a connection kept alive stays with the
    // server that accepted it, the relay's start-up stand-in included, which
    // answers "starting" whatever the store does meanwhile.
    const PROBE: &[(&str, &str)] = &[("connection", "close")];
    let client = Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = match &tls {
            None => client
                .request(Method::GET, addr, "/readyz", PROBE, Bytes::new())
                .await
                .map(|response| response.status)
                .map_err(|error| error.to_string()),
            Some(tls) => crate::tls::get_status(addr, tls.clone(), "/readyz").await,
        };
        if answer == Ok(200) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay at {addr} never became ready; last answer: {answer:?}"
        );
        // A pause between probes, not a synchronization device: probes in a
        // tight loop, from several tests at once, compete with the relays'
        // start-up for the machine's cores.
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
