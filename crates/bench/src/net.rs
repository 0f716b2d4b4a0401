//! Client sockets: spreading them over loopback source addresses, the
//! WebSocket handshake with chat-sized buffers, and protocol frames on the
//! wire.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::http::StatusCode;
use kefu_protocol::{ErrorFrame, Reconnect};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use crate::config::Target;

pub type Ws = WebSocketStream<TcpStream>;

/// Connect, handshake and `hello` must all finish within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Chat frames are a few hundred bytes: small buffers keep thousands of idle
/// connections cheap (tungstenite's defaults are 128 KiB each way).
const READ_BUFFER: usize = 4 * 1024;
/// 0: every frame is written at once; latency is what is measured.
const WRITE_BUFFER: usize = 0;

/// Which loopback source address a connection binds before connecting.
///
/// The kernel gives each (source address, destination) pair about 28,000
/// ephemeral ports; binding 127.0.0.2, 127.0.0.3… in turn multiplies that.
#[derive(Debug, Clone, Copy)]
pub struct Sources {
    /// The last byte of the first address.
    first: u8,
    count: u8,
}

impl Sources {
    /// Spread over `count` addresses from 127.0.0.2; 0 disables spreading.
    /// At most 253, so the addresses stay inside 127.0.0.0/24.
    pub fn new(count: u8) -> Sources {
        Sources {
            first: 2,
            count: count.min(253),
        }
    }

    /// The `count` addresses right after these (from 127.0.0.2 if these are
    /// none), cut to what is left of 127.0.0.0/24: an attack's sources,
    /// apart from the legitimate load's, so that the relay's per-address
    /// budgets tell them apart.
    pub fn after(self, count: u8) -> Sources {
        let first = self.first.saturating_add(self.count).min(254);
        Sources {
            first,
            count: count.min(255 - first),
        }
    }

    /// How many addresses these are.
    pub fn count(self) -> u8 {
        self.count
    }

    /// The source address of the `n`-th connection to `target`, if any: only
    /// a loopback IPv4 target can be reached from 127.0.0.x.
    pub fn for_connection(self, target: SocketAddr, n: u32) -> Option<IpAddr> {
        let loopback_v4 = matches!(target.ip(), IpAddr::V4(ip) if ip.is_loopback());
        if self.count == 0 || !loopback_v4 {
            return None;
        }
        // Fits in u8: n % count < count <= 255 - first.
        let host = self.first + (n % u32::from(self.count)) as u8;
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
    }
}

/// `127.0.0.18–127.0.0.49`, or `none`.
impl std::fmt::Display for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.count {
            0 => f.write_str("none"),
            1 => write!(f, "127.0.0.{}", self.first),
            count => write!(
                f,
                "127.0.0.{}–127.0.0.{}",
                self.first,
                self.first + count - 1
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TCP connect failed")]
    Tcp(#[source] io::Error),
    #[error("WebSocket handshake failed")]
    Handshake(#[source] tungstenite::Error),
    #[error("the relay did not answer hello")]
    Hello(#[source] WireError),
    #[error("long-poll hello failed")]
    LongPoll(#[source] HttpError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out")]
    Timeout,
}

impl ConnectError {
    /// The relay answered `hello` with something other than `welcome`.
    pub fn refused(first: Option<&ErrorFrame>) -> ConnectError {
        ConnectError::Refused(
            first
                .map_or("no welcome", |error| error.code.as_str())
                .to_owned(),
        )
    }

    /// A short label for counting failures by cause in the report.
    pub fn label(&self) -> String {
        match self {
            ConnectError::Tcp(error) => format!("tcp: {}", error.kind()),
            ConnectError::Handshake(tungstenite::Error::Http(response)) => {
                format!("http {}", response.status().as_u16())
            }
            ConnectError::Handshake(_) => "handshake".to_owned(),
            ConnectError::Hello(_) => "hello".to_owned(),
            ConnectError::LongPoll(error) => error.label().to_owned(),
            ConnectError::Refused(code) => format!("refused: {code}"),
            ConnectError::Timeout => "timeout".to_owned(),
        }
    }
}

/// How a long-poll request failed; here because [`ConnectError`] carries
/// it, and long-poll connects with the same error as WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("TCP connect failed")]
    Tcp(#[source] std::io::Error),
    #[error("HTTP failed")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request")]
    Request(#[from] hyper::http::Error),
    #[error("undecodable body")]
    Decode(#[from] serde_json::Error),
    #[error("HTTP status {0} without an error frame")]
    Status(StatusCode),
}

impl HttpError {
    /// A short label for counting failures by cause in the report.
    pub fn label(&self) -> &'static str {
        match self {
            HttpError::Tcp(_) => "long-poll: tcp",
            HttpError::Http(_) => "long-poll: http",
            HttpError::Request(_) => "long-poll: request",
            HttpError::Decode(_) => "long-poll: undecodable body",
            HttpError::Status(_) => "long-poll: bad status",
        }
    }
}

/// Opens a WebSocket to `path`, says `hello` and returns the relay's first
/// frame, all within [`CONNECT_TIMEOUT`].
pub async fn handshake<E: DeserializeOwned>(
    target: &Target,
    path: &str,
    source: Option<IpAddr>,
    hello: &impl Serialize,
) -> Result<(Ws, E), ConnectError> {
    let attempt = async {
        let mut ws = connect(target, path, source).await?;
        send(&mut ws, hello).await.map_err(ConnectError::Hello)?;
        let first = recv(&mut ws).await.map_err(ConnectError::Hello)?;
        Ok((ws, first))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| ConnectError::Timeout)?
}

/// Opens a TCP connection to the relay, from `source` if given.
pub async fn tcp(target: &Target, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target.addr).await?;
    // Latency is what is measured: never let Nagle hold a frame back.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens a WebSocket to `path` on the relay, from `source` if given.
async fn connect(target: &Target, path: &str, source: Option<IpAddr>) -> Result<Ws, ConnectError> {
    let stream = tcp(target, source).await.map_err(ConnectError::Tcp)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER);
    let mut request = target
        .ws_url(path)
        .into_client_request()
        .map_err(ConnectError::Handshake)?;
    // What a browser on the relay's own chat page sends.
    if let Ok(origin) = target.origin().parse() {
        request.headers_mut().insert(header::ORIGIN, origin);
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(ConnectError::Handshake)?;
    Ok(ws)
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the connection closed")]
    Closed,
    #[error("the connection failed")]
    Socket(#[from] tungstenite::Error),
    #[error("undecodable frame")]
    Decode(#[from] serde_json::Error),
}

impl WireError {
    /// A short label for counting dropped connections by cause.
    pub fn label(&self) -> &'static str {
        match self {
            WireError::Closed => "closed by the relay",
            WireError::Socket(_) => "socket error",
            WireError::Decode(_) => "undecodable frame",
        }
    }
}

/// Sends one protocol frame as JSON text.
pub async fn send<T: Serialize>(ws: &mut Ws, frame: &T) -> Result<(), WireError> {
    let text = serde_json::to_string(frame)?;
    ws.send(WsMessage::text(text)).await?;
    Ok(())
}

/// Why the relay asked a client to go: `resync` (it fell behind and its
/// outbox overflowed) or `shutdown`.
pub fn reconnect_label(reconnect: &Reconnect) -> &'static str {
    match reconnect.reason.as_deref() {
        Some("resync") => "reconnect: resync",
        Some("shutdown") => "reconnect: shutdown",
        _ => "reconnect",
    }
}

/// Says goodbye. The relay may already be gone, so failures are moot.
pub async fn close(mut ws: Ws) {
    let _ = ws.close(None).await;
}

/// The next protocol frame. Control frames are skipped (tungstenite answers
/// pings while this polls), so keeping this future polled keeps an idle
/// connection alive. Cancel-safe: a frame is either returned or not read.
pub async fn recv<T: DeserializeOwned>(ws: &mut Ws) -> Result<T, WireError> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(WsMessage::Close(_))) | None => return Err(WireError::Closed),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_connections_rotate_over_source_addresses() {
        let relay: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let sources = Sources::new(3);
        let picked: Vec<_> = (0..6)
            .map(|n| sources.for_connection(relay, n).expect("spread"))
            .collect();
        let expected: Vec<IpAddr> = [2, 3, 4, 2, 3, 4]
            .iter()
            .map(|host| IpAddr::V4(Ipv4Addr::new(127, 0, 0, *host)))
            .collect();
        assert_eq!(picked, expected);
    }

    #[test]
    fn no_spreading_when_disabled_or_not_on_loopback() {
        let relay: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(Sources::new(0).for_connection(relay, 5), None);
        let remote: SocketAddr = "192.0.2.1:8080".parse().expect("addr");
        assert_eq!(Sources::new(8).for_connection(remote, 5), None);
        let last = Sources::new(255)
            .for_connection(relay, 252)
            .expect("spread");
        assert_eq!(last, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)));
    }

    #[test]
    fn an_attack_gets_the_addresses_after_the_legitimate_ones() {
        let relay: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let host = |sources: Sources, n| match sources.for_connection(relay, n) {
            Some(IpAddr::V4(ip)) => ip.octets()[3],
            other => panic!("a loopback v4 source, got {other:?}"),
        };
        let legit = Sources::new(16);
        let attack = legit.after(4);
        assert_eq!(
            (0..4).map(|n| host(legit, n)).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert_eq!(
            (0..5).map(|n| host(attack, n)).collect::<Vec<_>>(),
            [18, 19, 20, 21, 18]
        );
        // Without spreading the legitimate load has 127.0.0.1 (the kernel's
        // choice), so an attack starts at 127.0.0.2.
        assert_eq!(host(Sources::new(0).after(2), 1), 3);
        // Never past 127.0.0.254.
        let crowded = Sources::new(250).after(10);
        assert_eq!(crowded.count(), 3);
        assert_eq!(host(crowded, 2), 254);
        assert_eq!(attack.to_string(), "127.0.0.18–127.0.0.21");
    }
}
