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
        Client::connect_over(url, None).await
    }

    /// Connects to `url`; a `wss://` one is checked by `tls` (a
    /// [`crate::TestCa`]'s client).
    pub async fn connect_over(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Client<E> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("user-agent", "kefu-tests/1".parse().expect("header"));
        // No Nagle, as browsers do: frames sent back to back would otherwise
        // wait for the relay's delayed ACK.
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector)
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
