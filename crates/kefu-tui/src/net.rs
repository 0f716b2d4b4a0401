//! The network task: the only owner of the WebSocket.
//!
//! It connects, says `hello`, forwards every frame to the UI as a
//! [`NetEvent`] and writes the UI's requests. When the connection drops it
//! reconnects by itself, with exponential backoff and jitter (or after the
//! `after_ms` the relay asked for). Resuming — resending unacknowledged
//! replies, fetching missed history — is the app's job on the next
//! `welcome`: this task keeps no state beyond the socket.
//!
//! Both channels are bounded. Requests made while there is no connection are
//! dropped: the app only makes them while online, and keeps its pending
//! replies to resend once a `welcome` says the connection is back.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kefu_protocol::ErrorCode;
use kefu_protocol::agent::{AgentEvent, AgentRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::app::NetEvent;
use crate::tls;

/// Requests the UI may queue before `try_send` fails.
pub const REQUESTS: usize = 256;
/// Events waiting for the UI before the socket stops being read (the relay
/// then asks us to resync rather than buffering without bound).
pub const EVENTS: usize = 1024;
/// Connecting and saying hello must not take longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The relay pings every 20 s; this long without a frame means it is gone.
const SILENCE: Duration = Duration::from_secs(60);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The UI's ends of the network task's channels.
pub struct Net {
    pub requests: mpsc::Sender<AgentRequest>,
    pub events: mpsc::Receiver<NetEvent>,
    task: JoinHandle<()>,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the network task for the agent endpoint `url`; a `wss://` one is
/// checked with `tls`.
pub fn spawn(url: String, token: String, tls: Option<Arc<rustls::ClientConfig>>) -> Net {
    let (requests, requests_rx) = mpsc::channel(REQUESTS);
    let (events_tx, events) = mpsc::channel(EVENTS);
    let endpoint = Endpoint {
        url,
        tls: tls.map(Connector::Rustls),
    };
    let task = tokio::spawn(run(endpoint, token, requests_rx, events_tx));
    Net {
        requests,
        events,
        task,
    }
}

/// Where to connect, and how to check the relay's certificate.
struct Endpoint {
    url: String,
    tls: Option<Connector>,
}

/// How a connection ended.
enum Ended {
    /// The UI is gone: stop.
    Closed,
    /// The token was refused: retrying cannot help.
    Rejected(String),
    /// Try again; `after` is the relay's wish, if it said one.
    Lost {
        reason: String,
        welcomed: bool,
        after: Option<Duration>,
    },
}

async fn run(
    endpoint: Endpoint,
    token: String,
    mut requests: mpsc::Receiver<AgentRequest>,
    events: mpsc::Sender<NetEvent>,
) {
    let mut attempt: u32 = 0;
    loop {
        if events.send(NetEvent::Connecting { attempt }).await.is_err() {
            return;
        }
        match connection(&endpoint, &token, &mut requests, &events).await {
            Ended::Closed => return,
            Ended::Rejected(reason) => {
                let _ = events.send(NetEvent::Rejected(reason)).await;
                return;
            }
            Ended::Lost {
                reason,
                welcomed,
                after,
            } => {
                if welcomed {
                    attempt = 0;
                }
                let retry_in = after.unwrap_or_else(|| backoff(attempt));
                attempt = attempt.saturating_add(1);
                tracing::info!(%reason, ?retry_in, "connection lost");
                let lost = NetEvent::Disconnected { reason, retry_in };
                if events.send(lost).await.is_err() {
                    return;
                }
                if !wait(retry_in, &mut requests).await {
                    return;
                }
            }
        }
    }
}

/// Exponential backoff with jitter: each wait is between half and all of
/// `BACKOFF_FIRST · 2^attempt` (capped), so that many clients dropped at
/// once do not come back at once.
pub fn backoff(attempt: u32) -> Duration {
    let full = BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_MAX);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Sleeps `duration`, dropping requests meanwhile (see the module doc).
/// `false` once the UI is gone.
async fn wait(duration: Duration, requests: &mut mpsc::Receiver<AgentRequest>) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        tokio::select! {
            () = sleep_until(deadline) => return true,
            request = requests.recv() => match request {
                Some(request) => tracing::debug!(?request, "offline: request dropped"),
                None => return false,
            },
        }
    }
}

async fn connection(
    endpoint: &Endpoint,
    token: &str,
    requests: &mut mpsc::Receiver<AgentRequest>,
    events: &mpsc::Sender<NetEvent>,
) -> Ended {
    let lost = |reason: String| Ended::Lost {
        reason,
        welcomed: false,
        after: None,
    };
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        endpoint.url.as_str(),
        None,
        false,
        endpoint.tls.clone(),
    );
    let mut ws = match timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(error)) => {
            let why = tls::refused_certificate(&error).unwrap_or_else(|| error.to_string());
            return lost(format!("cannot connect: {why}"));
        }
        Err(_) => return lost("cannot connect: timed out".into()),
    };
    let hello = AgentRequest::Hello {
        token: token.to_owned(),
    };
    if let Err(error) = ws.send(WsMessage::text(encode(&hello))).await {
        return lost(format!("hello failed: {error}"));
    }
    let mut welcomed = false;
    let mut after = None;
    let mut silent_since = Instant::now();
    let reason = loop {
        tokio::select! {
            incoming = ws.next() => {
                silent_since = Instant::now();
                let text = match incoming {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(WsMessage::Close(frame))) => {
                        break frame.map_or("closed".into(), |f| format!("closed: {}", f.reason));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => break format!("connection error: {error}"),
                    None => break "connection closed".into(),
                };
                let Some(event) = decode(&text) else { continue };
                match &event {
                    AgentEvent::Welcome(_) => welcomed = true,
                    AgentEvent::Error(error) if !welcomed && error.code == ErrorCode::Unauthorized => {
                        return Ended::Rejected(error.message.clone());
                    }
                    AgentEvent::Reconnect(reconnect) => {
                        after = Some(Duration::from_millis(reconnect.after_ms));
                    }
                    _ => {}
                }
                if events.send(NetEvent::Frame(Box::new(event))).await.is_err() {
                    return Ended::Closed;
                }
            }
            request = requests.recv(), if welcomed => {
                let Some(request) = request else { return Ended::Closed };
                if let Err(error) = ws.send(WsMessage::text(encode(&request))).await {
                    break format!("send failed: {error}");
                }
            }
            () = sleep(SILENCE.saturating_sub(silent_since.elapsed())) => {
                break "the relay went silent".into();
            }
        }
    };
    Ended::Lost {
        reason,
        welcomed,
        after,
    }
}

fn encode(request: &AgentRequest) -> String {
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string(request).expect("requests serialize")
}

/// A relay frame; unknown or malformed ones are logged and skipped, so a
/// newer relay does not break an older client.
fn decode(text: &str) -> Option<AgentEvent> {
    match serde_json::from_str(text) {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::warn!(%error, frame = %text.chars().take(200).collect::<String>(), "undecodable frame");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempt in 0..20 {
            let full = BACKOFF_FIRST
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(BACKOFF_MAX);
            let wait = backoff(attempt);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
        assert!(backoff(30) <= BACKOFF_MAX);
    }
}
