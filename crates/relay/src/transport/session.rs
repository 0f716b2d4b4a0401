//! The socket loop shared by visitor and agent connections.
//!
//! [`Session::next`] multiplexes the four things a connection waits for —
//! a client frame, a frame from the hub, the relay shutting down, the ping
//! timer — and enforces the per-connection limits on the way, so the role
//! modules only see well-sized, rate-limited requests and hub output.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::future::Either;
use governor::DefaultDirectRateLimiter;
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{ErrorCode, ErrorFrame, Reconnect, Seq};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::AppState;
use crate::admission::IpPermit;
use crate::blocklist::BlockWatch;
use crate::config::Limits;
use crate::frame::{Frame, decode, encode};
use crate::hub::{Inbox, Outbound};
use crate::ids::ConnId;
use crate::telemetry::{self, Transport};

/// A client that cannot take a frame for this long is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames above the configured limit get `too_large` and the connection
/// lives on; frames above this many times the limit are not even read.
pub(super) const HARD_LIMIT_FACTOR: usize = 4;
/// Chat frames are small: a small read buffer keeps idle connections cheap
/// (it grows for a larger frame, which then takes more read calls: a
/// 64 KiB frame up to 256 instead of 64). Every idle connection keeps it:
/// 4 KiB → 1 KiB measured about 3 KiB less resident memory per idle
/// connection, 1 KiB → 256 bytes about 0.75 KiB less (docs/benchmarks.md).
const READ_BUFFER: usize = 256;
/// Frames from the hub are buffered and written together (see
/// [`Session::deliver`]); past this many bytes they are written at once, which
/// also bounds what a connection keeps allocated after a burst.
const WRITE_BUFFER: usize = 16 * 1024;
/// Frames from the hub delivered in a row before the session flushes and
/// looks at its client again.
const MOST_UNFLUSHED: u8 = 16;
/// Close codes (RFC 6455 §7.4 and the private range).
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_SERVICE_RESTART: u16 = 1012;
const CLOSE_RESYNC: u16 = 4000;

pub(super) fn configure(upgrade: WebSocketUpgrade, limits: &Limits) -> WebSocketUpgrade {
    let hard_limit = limits.max_frame_bytes.saturating_mul(HARD_LIMIT_FACTOR);
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_frame_size(hard_limit)
        .max_message_size(hard_limit)
}

/// A role's request type, which opens with `hello`.
pub(super) trait FirstFrame: serde::de::DeserializeOwned {
    fn is_hello(&self) -> bool;
}

impl FirstFrame for kefu_protocol::visitor::VisitorRequest {
    fn is_hello(&self) -> bool {
        matches!(self, Self::Hello { .. })
    }
}

impl FirstFrame for kefu_protocol::call::AssistRequest {
    fn is_hello(&self) -> bool {
        matches!(self, Self::Hello { .. })
    }
}

impl FirstFrame for kefu_protocol::agent::AgentRequest {
    fn is_hello(&self) -> bool {
        matches!(self, Self::Hello { .. })
    }
}

/// The session has ended; the client was told why where that was possible.
#[derive(Debug)]
pub(super) struct Ended;

pub(super) enum Event {
    /// A client text frame within the size and rate limits.
    Request(axum::extract::ws::Utf8Bytes),
    /// A frame the hub routed to this connection.
    Deliver(Outbound),
}

/// What woke the session loop.
enum Wake<T> {
    /// A client text frame, not yet checked against the limits.
    Request(axum::extract::ws::Utf8Bytes),
    Deliver(Outbound),
    Signal(Signal),
    /// The work the caller waits for alongside finished.
    Done(T),
}

/// A wake that is neither a request nor a delivery.
enum Signal {
    Binary,
    /// The client closed the connection.
    Closed,
    /// The client broke the WebSocket protocol: close with this code.
    Violation(u16),
    /// The socket failed or stalled: nothing more can be said on it.
    Lost,
    /// The hub dropped or kicked this connection.
    Dropped,
    /// The client lost its right to the connection (an agent's access was
    /// revoked, a visitor's address blocked): tell it why and close. Boxed,
    /// as every wake is sized by its largest signal.
    Refused(Box<ErrorFrame>),
    Stopping,
    Ping,
}

/// The close code for a read that failed because of what the client sent,
/// or `None` if the socket itself failed.
fn violation(error: axum::Error) -> Option<u16> {
    use tungstenite::Error;
    let error = error.into_inner().downcast::<Error>().ok()?;
    match *error {
        Error::Utf8(_) => Some(CLOSE_INVALID_DATA),
        Error::Capacity(_) => Some(CLOSE_TOO_BIG),
        Error::Protocol(_) => Some(CLOSE_PROTOCOL_ERROR),
        _ => None,
    }
}

pub(super) struct Session {
    pub id: ConnId,
    socket: WebSocket,
    inbox: Option<Inbox>,
    /// For the limits: a handle rather than a copy of them, which every
    /// idle connection would keep (about 200 bytes each).
    state: AppState,
    rate: DefaultDirectRateLimiter,
    stopping: watch::Receiver<bool>,
    ping: Interval,
    last_heard: Instant,
    /// Frames from the hub buffered since the socket was last flushed.
    unflushed: u8,
    /// The connection's slot in its address's budget, while it holds one.
    address_slot: Option<IpPermit>,
    /// Ends the session, telling the client the error it resolves to.
    refused: Option<Pin<Box<dyn Future<Output = ErrorFrame> + Send>>>,
    /// Ends the session once its client's address is blocked.
    blocked: Option<BlockWatch>,
    _alive: mpsc::Sender<()>,
}

impl Session {
    pub fn new(id: ConnId, socket: WebSocket, state: AppState, address_slot: IpPermit) -> Self {
        let limits = &state.config.limits;
        let mut ping =
            tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Session {
            id,
            socket,
            inbox: None,
            rate: super::limits::frame_limiter(limits),
            stopping: state.stopping.clone(),
            ping,
            last_heard: Instant::now(),
            unflushed: 0,
            address_slot: Some(address_slot),
            refused: None,
            blocked: None,
            _alive: state.alive.clone(),
            state,
        }
    }

    fn limits(&self) -> &Limits {
        &self.state.config.limits
    }

    /// Gives back the connection's slot in its address's budget: a signed-in
    /// agent is counted as an agent, not as an address.
    pub fn free_address_slot(&mut self) {
        self.address_slot = None;
    }

    /// Ends the session once `refused` resolves, telling the client the
    /// error it resolves to (then closing with 1008, as a refused `hello`).
    pub fn end_when(&mut self, refused: impl Future<Output = ErrorFrame> + Send + 'static) {
        self.refused = Some(Box::pin(refused));
    }

    /// Ends the session once `watch`'s address is blocked, telling the
    /// client so (then closing with 1008, as a refused `hello`).
    pub fn end_when_blocked(&mut self, watch: BlockWatch) {
        self.blocked = Some(watch);
    }

    /// Starts delivering hub output (after the connection registered).
    pub fn attach(&mut self, inbox: Inbox) {
        self.inbox = Some(inbox);
    }

    /// The next request or delivery. `Err(Ended)` once the session is over.
    pub async fn next(&mut self) -> Result<Event, Ended> {
        match self.next_or(std::future::pending::<Infallible>()).await? {
            Either::Left(event) => Ok(event),
        }
    }

    /// Like [`Session::next`], but returns `work`'s output should it finish
    /// first: an agent's requests in flight, whose answers go out in turn
    /// with whatever else the connection is doing.
    pub async fn next_or<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> Result<Either<Event, T>, Ended> {
        let mut work = std::pin::pin!(work);
        loop {
            match self.wake(work.as_mut()).await {
                Wake::Done(output) => return Ok(Either::Right(output)),
                Wake::Deliver(outbound) => return Ok(Either::Left(Event::Deliver(outbound))),
                Wake::Request(text) => match self.refuse(&text) {
                    Some(error) => Box::pin(self.send_error(error)).await?,
                    None => return Ok(Either::Left(Event::Request(text))),
                },
                // An idle connection's task waits in this future for hours, so
                // the rare writes below are boxed rather than sized into it
                // (docs/benchmarks.md, idle connections).
                Wake::Signal(signal) => Box::pin(self.answer(signal)).await?,
            }
        }
    }

    /// Waits for the client, the hub, shutdown, the ping timer and `work`
    /// at once.
    async fn wake<T>(&mut self, mut work: Pin<&mut impl Future<Output = T>>) -> Wake<T> {
        // First, so that a burst of deliveries neither holds answers back
        // nor keeps new requests from reaching the store.
        if let Poll::Ready(output) = futures_util::poll!(work.as_mut()) {
            return Wake::Done(output);
        }
        if self.unflushed > 0 {
            match Box::pin(self.flush_unless_more()).await {
                Ok(Some(outbound)) => return Wake::Deliver(outbound),
                Ok(None) => {}
                Err(Ended) => return Wake::Signal(Signal::Lost),
            }
        }
        loop {
            let signal = tokio::select! {
                output = work.as_mut() => return Wake::Done(output),
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(message)) => {
                        self.last_heard = Instant::now();
                        match message {
                            WsMessage::Text(text) => {
                                telemetry::frame_received(Transport::WebSocket);
                                return Wake::Request(text);
                            }
                            WsMessage::Binary(_) => Signal::Binary,
                            WsMessage::Close(_) => Signal::Closed,
                            // The client is alive; nothing to answer.
                            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                        }
                    }
                    Some(Err(error)) => violation(error).map_or(Signal::Lost, Signal::Violation),
                    None => Signal::Lost,
                },
                from_hub = from_hub(&mut self.inbox) => match from_hub {
                    Some(outbound) => return Wake::Deliver(outbound),
                    None => Signal::Dropped,
                },
                _ = self.stopping.wait_for(|stopping| *stopping) => Signal::Stopping,
                _ = self.ping.tick() => Signal::Ping,
                error = until(&mut self.refused) => Signal::Refused(Box::new(error)),
                () = until_blocked(&mut self.blocked) => {
                    Signal::Refused(Box::new(super::blocking::blocked()))
                }
            };
            return Wake::Signal(signal);
        }
    }

    /// Answers a signal: `Ok` to go on, `Err(Ended)` if it ended the session.
    async fn answer(&mut self, signal: Signal) -> Result<(), Ended> {
        match signal {
            Signal::Binary => {
                let error = ErrorFrame::new(ErrorCode::BadRequest, "frames must be JSON text");
                self.send_error(error).await
            }
            Signal::Closed => Err(Ended),
            Signal::Violation(code) => {
                self.close(code, "protocol error").await;
                Err(Ended)
            }
            Signal::Lost => Err(Ended),
            Signal::Dropped => {
                self.say_reconnect(1_000, "resync", CLOSE_RESYNC).await;
                Err(Ended)
            }
            Signal::Refused(error) => {
                tracing::info!(conn = %self.id, reason = %error.message, "closing");
                self.reject(*error).await;
                Err(Ended)
            }
            Signal::Stopping => {
                // Jitter spreads the reconnects of thousands of clients.
                let after_ms = rand::random_range(500..3_000);
                self.say_reconnect(after_ms, "shutdown", CLOSE_SERVICE_RESTART)
                    .await;
                Err(Ended)
            }
            Signal::Ping => {
                if self.last_heard.elapsed() > self.limits().ping_interval * 3 {
                    tracing::debug!(conn = %self.id, "peer silent, closing");
                    return Err(Ended);
                }
                self.write(WsMessage::Ping(Default::default())).await
            }
        }
    }

    /// Runs `work` (typically a store call) while still passing the hub's
    /// frames on, so that a slow write does not let this connection's queue
    /// fill up and get it dropped. Live messages up to `replayed_up_to` were
    /// already sent by a replay and are skipped.
    pub async fn while_waiting<T>(
        &mut self,
        work: impl Future<Output = T>,
        replayed_up_to: Seq,
    ) -> Result<T, Ended> {
        let mut work = std::pin::pin!(work);
        loop {
            let delivery = match self.flush_unless_more().await? {
                Some(ready) => Some(ready),
                None => tokio::select! {
                    biased;
                    done = &mut work => return Ok(done),
                    delivery = from_hub(&mut self.inbox) => delivery,
                },
            };
            match delivery {
                Some(Outbound::Message { seq, .. }) if seq <= replayed_up_to => {}
                Some(outbound) => self.deliver(outbound.into_frame()).await?,
                None => {
                    self.say_reconnect(1_000, "resync", CLOSE_RESYNC).await;
                    return Err(Ended);
                }
            }
        }
    }

    /// The client's `hello`, which must come within the hello timeout.
    /// Malformed frames get `bad_request` and the wait goes on; any other
    /// request first is refused and ends the session.
    pub async fn hello<T: FirstFrame>(&mut self) -> Result<T, Ended> {
        let deadline = Instant::now() + self.limits().hello_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Err(_) => {
                    let seconds = self.limits().hello_timeout.as_secs_f32();
                    self.reject(ErrorFrame::new(
                        ErrorCode::BadRequest,
                        format!("no hello within {seconds} s"),
                    ))
                    .await;
                    return Err(Ended);
                }
                Ok(Err(Ended)) => return Err(Ended),
                Ok(Ok(Event::Deliver(_))) => {}
                Ok(Ok(Event::Request(text))) => match decode::<T>(&text) {
                    Ok(request) if request.is_hello() => return Ok(request),
                    Ok(_) => {
                        self.reject(ErrorFrame::new(
                            ErrorCode::BadRequest,
                            "the first frame must be hello",
                        ))
                        .await;
                        return Err(Ended);
                    }
                    Err(error) => self.send_error(error).await?,
                },
            }
        }
    }

    /// Why a frame is refused before parsing, if it is.
    fn refuse(&self, text: &str) -> Option<ErrorFrame> {
        let limits = self.limits();
        if text.len() > limits.max_frame_bytes {
            return Some(ErrorFrame::new(
                ErrorCode::TooLarge,
                format!(
                    "frame of {} bytes exceeds the limit of {} bytes",
                    text.len(),
                    limits.max_frame_bytes
                ),
            ));
        }
        if self.rate.check().is_err() {
            return Some(ErrorFrame::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} frames per second; this frame was dropped",
                    limits.frames_per_second
                ),
            ));
        }
        None
    }

    pub async fn send(&mut self, frame: Frame) -> Result<(), Ended> {
        self.write(text(frame)).await
    }

    /// Buffers a frame from the hub without flushing it. The session flushes
    /// before it next waits, unless the hub has another frame ready: a burst
    /// (a batch of commits fanned out to an agent) then costs one write to
    /// the socket instead of one per frame. An answer ([`Session::send`])
    /// flushes whatever is buffered before it.
    pub async fn deliver(&mut self, frame: Frame) -> Result<(), Ended> {
        telemetry::frames_sent(Transport::WebSocket, 1);
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.feed(text(frame))).await {
            Ok(Ok(())) => {
                self.unflushed = self.unflushed.saturating_add(1);
                Ok(())
            }
            Ok(Err(_)) | Err(_) => Err(Ended),
        }
    }

    /// Flushes the delivered frames, unless the hub has another one ready
    /// now: then that one is returned, to be delivered first. Not more than
    /// [`MOST_UNFLUSHED`] in a row, though, so that the session also reads
    /// its client during a long stream of deliveries: an agent receiving
    /// thousands of frames a second would otherwise have its own requests
    /// wait unread.
    async fn flush_unless_more(&mut self) -> Result<Option<Outbound>, Ended> {
        if self.unflushed == 0 {
            return Ok(None);
        }
        if self.unflushed < MOST_UNFLUSHED
            && let Some(ready) = self
                .inbox
                .as_mut()
                .and_then(|inbox| inbox.frames.try_recv().ok())
        {
            return Ok(Some(ready));
        }
        self.unflushed = 0;
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.flush()).await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(_)) | Err(_) => Err(Ended),
        }
    }

    /// Error frames look the same to both roles.
    pub async fn send_error(&mut self, error: ErrorFrame) -> Result<(), Ended> {
        telemetry::error_sent(error.code);
        self.send(encode(&VisitorEvent::Error(error))).await
    }

    /// Refuses the connection: an error frame, then a close.
    pub async fn reject(&mut self, error: ErrorFrame) {
        if self.send_error(error).await.is_ok() {
            self.close(CLOSE_POLICY, "rejected").await;
        }
    }

    async fn say_reconnect(&mut self, after_ms: u64, reason: &'static str, code: u16) {
        let frame = encode(&VisitorEvent::Reconnect(Reconnect {
            after_ms,
            reason: Some(reason.to_owned()),
        }));
        if self.send(frame).await.is_ok() {
            self.close(code, reason).await;
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let close = WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = self.write(close).await;
    }

    /// Writes and flushes, together with any delivered frames before it.
    async fn write(&mut self, message: WsMessage) -> Result<(), Ended> {
        if let WsMessage::Text(_) = message {
            telemetry::frames_sent(Transport::WebSocket, 1);
        }
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => {
                self.unflushed = 0;
                Ok(())
            }
            Ok(Err(_)) | Err(_) => Err(Ended),
        }
    }
}

/// A frame as a WebSocket text message. The message shares the frame's
/// bytes (no copy per receiver); the price is a UTF-8 scan of the frame per
/// receiver, because safe code cannot vouch for the bytes. A [`Frame`] is
/// built from a string, so the scan cannot fail.
fn text(frame: Frame) -> WsMessage {
    WsMessage::Text(Utf8Bytes::try_from(frame.into_bytes()).expect("a frame is UTF-8"))
}

/// The next frame from the hub; `None` once the hub dropped or kicked this
/// connection. Never resolves before the connection registered.
async fn from_hub(inbox: &mut Option<Inbox>) -> Option<Outbound> {
    let Some(inbox) = inbox else {
        return std::future::pending().await;
    };
    tokio::select! {
        frame = inbox.frames.recv() => frame,
        _ = &mut inbox.kicked => None,
    }
}

/// `future`'s output; never, if there is none.
async fn until_blocked(watch: &mut Option<BlockWatch>) {
    match watch {
        Some(watch) => watch.blocked().await,
        None => std::future::pending().await,
    }
}

async fn until<T>(future: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
