//! The relay's file endpoints over HTTP(S) (docs/protocol.md, "Files"):
//! one connection per request — files are rare next to chat — speaking
//! HTTP/1.1 through hyper, TLS through the same rustls settings as the
//! WebSocket.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::sanitize;

/// Connecting (TCP and TLS) and the relay's answer's head must not take
/// longer; the body then streams for as long as it takes.
const PATIENCE: Duration = Duration::from_secs(15);
/// Answers read whole (an attachment, a link, an error) are small.
const SMALL_ANSWER: usize = 64 * 1024;

pub type Body = BoxBody<Bytes, io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach the relay: {0}")]
    Connect(#[source] io::Error),
    #[error("the relay did not answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The relay said no, with its documented error frame.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the relay's answer is not understood: {0}")]
    Answer(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where the relay's HTTP side is, derived from the agent WebSocket's URL.
#[derive(Clone)]
pub struct Relay {
    host: String,
    port: u16,
    /// `host:port` as the `Host` header carries it.
    authority: String,
    /// The path the relay sits under behind a proxy (`/kefu` for
    /// `wss://desk.example/kefu/ws/agent`), empty at the root.
    pub prefix: String,
    token: String,
    tls: Option<TlsConnector>,
}

impl Relay {
    /// `agent_url` is `ws[s]://authority[/prefix]/ws/agent`; `tls` is set
    /// exactly for `wss://`.
    pub fn new(agent_url: &str, token: String, tls: Option<Arc<rustls::ClientConfig>>) -> Relay {
        let (rest, default_port) = match agent_url.strip_prefix("wss://") {
            Some(rest) => (rest, 443),
            None => (agent_url.strip_prefix("ws://").unwrap_or(agent_url), 80),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = format!("/{path}")
            .strip_suffix("/ws/agent")
            .unwrap_or_default()
            .to_owned();
        let (host, port) = split_authority(authority, default_port);
        Relay {
            host,
            port,
            authority: authority.to_owned(),
            prefix,
            token,
            tls: tls.map(TlsConnector::from),
        }
    }

    /// A request to `path` (under the prefix), with the agent's token.
    pub fn request(&self, method: hyper::Method, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, &self.authority)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
    }

    /// Sends `request` on a new connection; answers once the head is in.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, HttpError> {
        let exchange = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(HttpError::Connect)?;
            let mut sender = match &self.tls {
                Some(tls) => {
                    let name = ServerName::try_from(self.host.clone())
                        .map_err(|error| HttpError::Connect(io::Error::other(error)))?;
                    let stream = tls.connect(name, tcp).await.map_err(HttpError::Connect)?;
                    handshake(TokioIo::new(stream)).await?
                }
                None => handshake(TokioIo::new(tcp)).await?,
            };
            Ok::<_, HttpError>(sender.send_request(request))
        };
        let pending = timeout(PATIENCE, exchange)
            .await
            .map_err(|_| HttpError::Timeout(PATIENCE))??;
        // The body may stream for long (an upload); the relay answers once
        // it has read it all, so only the connection is timed above.
        Ok(pending.await?)
    }
}

async fn handshake<T>(
    io: TokioIo<T>,
) -> Result<hyper::client::conn::http1::SendRequest<Body>, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "file connection ended");
        }
    });
    Ok(sender)
}

/// `("::1", 8080)` from `[::1]:8080`, `("h", default)` from `h`.
fn split_authority(authority: &str, default_port: u16) -> (String, u16) {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (authority, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host.to_owned(), port.unwrap_or(default_port))
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A small answer's body (at most [`SMALL_ANSWER`]) as JSON of type `T`
/// when the status is `expected`; the relay's error frame as
/// [`HttpError::Refused`] otherwise.
pub async fn json<T: for<'de> Deserialize<'de>>(
    response: Response<Incoming>,
    expected: StatusCode,
) -> Result<T, HttpError> {
    let status = response.status();
    let body = small_body(response).await?;
    if status != expected {
        return Err(refusal(status, &body));
    }
    serde_json::from_slice(&body).map_err(|error| HttpError::Answer(error.to_string()))
}

/// The refusal in an answer that is not the one hoped for.
pub async fn refused(response: Response<Incoming>) -> HttpError {
    let status = response.status();
    match small_body(response).await {
        Ok(body) => refusal(status, &body),
        Err(error) => error,
    }
}

async fn small_body(response: Response<Incoming>) -> Result<Bytes, HttpError> {
    Ok(Limited::new(response.into_body(), SMALL_ANSWER)
        .collect()
        .await
        .map_err(|error| HttpError::Answer(error.to_string()))?
        .to_bytes())
}

/// The relay's refusal: an error frame (`{"type": "error", "code",
/// "message"}`) as the body; its text is the relay's but shown on the
/// terminal, so cleaned like anything received.
fn refusal(status: StatusCode, body: &[u8]) -> HttpError {
    #[derive(Deserialize)]
    struct Frame {
        code: String,
        message: String,
    }
    let (code, message) = match serde_json::from_slice::<Frame>(body) {
        Ok(frame) => (frame.code, frame.message),
        Err(_) => (
            "http".to_owned(),
            status.canonical_reason().unwrap_or("refused").to_owned(),
        ),
    };
    HttpError::Refused {
        status: status.as_u16(),
        code: sanitize::line(&code),
        message: sanitize::line(&message),
    }
}

/// `text` percent-encoded for a query value or a path segment: everything
/// but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_side_is_where_the_agent_socket_is() {
        let relay = Relay::new("ws://127.0.0.1:8080/ws/agent", "t".into(), None);
        assert_eq!((relay.host.as_str(), relay.port), ("127.0.0.1", 8080));
        assert_eq!(relay.prefix, "");
        let relay = Relay::new("wss://desk.example/kefu/ws/agent", "t".into(), None);
        assert_eq!((relay.host.as_str(), relay.port), ("desk.example", 443));
        assert_eq!(relay.prefix, "/kefu");
        let relay = Relay::new("ws://[::1]:9/ws/agent", "t".into(), None);
        assert_eq!((relay.host.as_str(), relay.port), ("::1", 9));
        assert_eq!(relay.authority, "[::1]:9");
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("a b/c?.png"), "a%20b%2Fc%3F.png");
        assert_eq!(encode("截"), "%E6%88%AA");
    }
}
