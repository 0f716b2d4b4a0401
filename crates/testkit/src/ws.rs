//! A protocol client over a real WebSocket, decoding each text frame as `E`
//! (a visitor's or an agent's events). Every wait is bounded by
//! [`PATIENCE`].

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use kefu_protocol::agent::AgentEvent;
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{ErrorCode, ErrorFrame, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::PATIENCE;

/// What a visitor's and an agent's events have alike.
pub trait Event: DeserializeOwned + std::fmt::Debug {
    fn into_message(self) -> Option<Message>;
    fn into_error(self) -> Option<ErrorFrame>;
}

/// A protocol client over a real WebSocket, decoding frames as `E`.
pub struct Client<E> {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    _event: std::marker::PhantomData<E>,
}

impl<E: DeserializeOwned + std::fmt::Debug> Client<E> {
    pub async fn connect(url: &str) -> Client<E> {
        Client::connect_with(url, None, b"", None).await
    }

    /// Connects from the local address `source` (any of 127.0.0.0/8 on
    /// loopback), so that the relay sees another client address.
    pub async fn connect_from(url: &str, source: std::net::IpAddr) -> Client<E> {
        Client::connect_with(url, Some(source), b"", None).await
    }

    /// Connects from `source` as a TCP load balancer does: `header` (a
    /// PROXY protocol header) first, then the TLS handshake (for a
    /// `wss://` `url`, checked by `tls`) and the WebSocket one.
    pub async fn connect_proxied(
        url: &str,
        source: std::net::IpAddr,
        header: &[u8],
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Client<E> {
        Client::connect_with(url, Some(source), header, tls).await
    }

    /// Connects to `url`; a `wss://` one is checked by `tls` (a
    /// [`crate::TestCa`]'s client).
    pub async fn connect_over(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Client<E> {
        Client::connect_with(url, None, b"", tls).await
    }

    async fn connect_with(
        url: &str,
        source: Option<std::net::IpAddr>,
        header: &[u8],
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Client<E> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("user-agent", "kefu-tests/1".parse().expect("header"));
        let authority = request.uri().authority().expect("host:port").as_str();
        let relay = tokio::net::lookup_host(authority)
            .await
            .expect("resolve the relay")
            .next()
            .expect("an address for the relay");
        let socket = match relay {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("socket");
        if let Some(source) = source {
            socket
                .bind((source, 0).into())
                .expect("bind the source address");
        }
        let mut stream = socket.connect(relay).await.expect("TCP connect");
        tokio::io::AsyncWriteExt::write_all(&mut stream, header)
            .await
            .expect("write the header");
        // No Nagle, as browsers do: frames sent back to back would otherwise
        // wait for the relay's delayed ACK.
        stream.set_nodelay(true).expect("nodelay");
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (ws, _) =
            tokio_tungstenite::client_async_tls_with_config(request, stream, None, connector)
                .await
                .expect("WebSocket connect");
        Client {
            ws,
            _event: std::marker::PhantomData,
        }
    }

    pub async fn send<T: Serialize>(&mut self, frame: &T) {
        let text = serde_json::to_string(frame).expect("encode");
        self.send_raw(&text).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text.to_owned()))
            .await
            .expect("send frame");
    }

    /// Sends a WebSocket message as is, e.g. one no real client would send.
    pub async fn send_ws(&mut self, message: WsMessage) {
        self.ws.send(message).await.expect("send message");
    }

    /// Reads until the relay closes the connection; the code it closed
    /// with, or `None` if it closed without a close frame.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("timed out waiting for the close");
            match frame {
                Some(Ok(WsMessage::Close(close))) => return close.map(|close| close.code.into()),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame, or `None` once the relay closed the connection.
    pub async fn try_next(&mut self) -> Option<E> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(
                        serde_json::from_str(&text)
                            .unwrap_or_else(|error| panic!("undecodable frame {text}: {error}")),
                    );
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn next(&mut self) -> E {
        self.try_next().await.expect("connection closed")
    }

    /// Skips frames until one matches, returning it.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(E) -> Option<T>) -> T {
        loop {
            let frame = self.next().await;
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    }

    /// Reads until the relay closes the connection; returns what came.
    pub async fn drain(&mut self) -> Vec<E> {
        let mut frames = Vec::new();
        while let Some(frame) = self.try_next().await {
            frames.push(frame);
        }
        frames
    }
}

/// Both sides' events carry a message as `Message` and an error as `Error`.
macro_rules! event {
    ($event:ident) => {
        impl Event for $event {
            fn into_message(self) -> Option<Message> {
                match self {
                    $event::Message(message) => Some(message),
                    _ => None,
                }
            }

            fn into_error(self) -> Option<ErrorFrame> {
                match self {
                    $event::Error(error) => Some(error),
                    _ => None,
                }
            }
        }
    };
}

event!(VisitorEvent);
event!(AgentEvent);

impl<E: Event> Client<E> {
    /// Skips frames up to the next message.
    pub async fn next_message(&mut self) -> Message {
        self.until(E::into_message).await
    }

    /// Skips frames up to the next error.
    pub async fn next_error(&mut self) -> ErrorFrame {
        self.until(E::into_error).await
    }
}

/// The relay refused with `code`, and said why.
pub fn assert_error(error: &ErrorFrame, code: ErrorCode) {
    assert_eq!(error.code, code, "unexpected error {error:?}");
    assert!(!error.message.is_empty(), "errors explain themselves");
}
