//! Attackers of an abuse run, from loopback addresses of their own (right
//! after the legitimate load's), doing what issue 14 found the relay
//! defenceless against:
//! - **half-open** connections: a request line and no header after it, or
//!   a WebSocket handshake sent a byte at a time;
//! - **slow bodies**: a POST to `/api/visitor/hello` or (with a visitor
//!   token of its own) `/api/files` whose body trickles in a byte at a time;
//! - **conversation spam**: hello, one message, close, again, as fast as
//!   the relay lets them.
//!
//! Each attacker starts when the chat starts sending and tries again as
//! soon as the relay ends an attempt (one refused at accept after a
//! trickle's pause); [`Attacks`] counts how each attempt
//! ended, how long the relay held a stalled one, and the conversations the
//! spam opened.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::config::{Abuse, Config, Target};
use crate::net::{self, CONNECT_TIMEOUT, Sources};
use crate::phase::{self, Phase};
use crate::png;
use crate::tally::{Attack, Attacks};

/// A connection the relay ends sooner than this after it opened was
/// refused at accept (budgets are checked before a byte is read).
const AT_ONCE: Duration = Duration::from_millis(500);
/// After a local failure (no port, no address), before trying again: a
/// failing attacker must not spin a core of the bench's two.
const BACKOFF: Duration = Duration::from_millis(50);
/// Bytes of a slow body: far more than trickles in during any run.
const SLOW_BODY_BYTES: usize = 4096;
/// A spammer's name and message, long as a script would make them (the
/// relay bounds both).
const SPAM_NAME_CHARS: usize = 200;
const SPAM_TEXT_CHARS: usize = 2000;

/// Starts this shard's attackers; each runs until the run stops.
pub fn spawn(
    tasks: &mut JoinSet<()>,
    config: &Config,
    abuse: &Abuse,
    attacks: &Arc<Attacks>,
    phase: &watch::Receiver<Phase>,
) {
    let sources = addresses(config, abuse);
    let shard = config.shard;
    let every = abuse.trickle;
    let attackers = [
        (Attack::HalfOpen, abuse.half_open),
        (Attack::SlowBody, abuse.slow_bodies),
        (Attack::Spam, abuse.spammers),
    ];
    for (attack, count) in attackers {
        for n in shard.members(count) {
            let target = config.relays.for_visitor(n).clone();
            let source = sources.for_connection(target.addr, n);
            let (attacks, phase) = (attacks.clone(), phase.clone());
            tasks.spawn(async move {
                let attacker = Attacker {
                    target,
                    source,
                    attacks,
                };
                attacker.run(attack, n, every, phase).await;
            });
        }
    }
}

/// The attackers' source addresses.
pub fn addresses(config: &Config, abuse: &Abuse) -> Sources {
    Sources::new(config.source_addrs).after(abuse.addrs)
}

struct Attacker {
    target: Target,
    source: Option<IpAddr>,
    attacks: Arc<Attacks>,
}

impl Attacker {
    async fn run(self, attack: Attack, n: u32, every: Duration, mut phase: watch::Receiver<Phase>) {
        if phase::sending_starts(&mut phase).await.is_none() {
            return;
        }
        let work = async {
            match attack {
                Attack::HalfOpen => {
                    let request = if n.is_multiple_of(2) {
                        Stalled::request_line()
                    } else {
                        Stalled::websocket_handshake(&self.target)
                    };
                    loop {
                        self.stall(attack, &request, every).await;
                    }
                }
                Attack::SlowBody => {
                    let request = if n.is_multiple_of(2) {
                        Stalled::hello_body(&self.target)
                    } else {
                        match self.visitor_token().await {
                            Some(token) => Stalled::upload_body(&self.target, &token, n),
                            None => Stalled::hello_body(&self.target),
                        }
                    };
                    loop {
                        self.stall(attack, &request, every).await;
                    }
                }
                Attack::Spam => {
                    for round in 0.. {
                        self.spam(n, round, every).await;
                    }
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = phase::stopped(&mut phase) => {}
        }
    }

    /// One stalled request, until the relay ends it.
    async fn stall(&self, attack: Attack, request: &Stalled, every: Duration) {
        let stream = match net::tcp(&self.target, self.source).await {
            Ok(stream) => stream,
            Err(error) => {
                self.attacks
                    .outcome(attack, format!("connect failed: {}", error.kind()));
                return tokio::time::sleep(BACKOFF).await;
            }
        };
        let opened = Instant::now();
        let ended = request.send(stream, every).await;
        let outcome = match ended {
            Ended::Closed if opened.elapsed() < AT_ONCE => {
                self.attacks.outcome(attack, "closed at once");
                // Refused at accept: its address is over budget. Another try
                // at once would be a connection flood, not a slow client.
                return tokio::time::sleep(every).await;
            }
            Ended::Closed => {
                self.attacks.held(opened.into_std());
                "closed by the relay".to_owned()
            }
            Ended::Answered(status) => {
                self.attacks.held(opened.into_std());
                format!("answered {status}")
            }
        };
        self.attacks.outcome(attack, outcome);
    }

    /// A visitor token, as any page view gets one (a WebSocket `hello`,
    /// which stores nothing).
    async fn visitor_token(&self) -> Option<String> {
        let hello = hello(None);
        match net::handshake(&self.target, "/ws/visitor", self.source, &hello).await {
            Ok((ws, VisitorEvent::Welcome(welcome))) => {
                net::close(ws).await;
                Some(welcome.token)
            }
            Ok((ws, _)) => {
                net::close(ws).await;
                self.attacks.outcome(Attack::SlowBody, "no visitor token");
                None
            }
            Err(error) => {
                let outcome = format!("no visitor token: {}", error.label());
                self.attacks.outcome(Attack::SlowBody, outcome);
                None
            }
        }
    }

    /// One round of spam: hello, a message, close.
    async fn spam(&self, n: u32, round: u64, every: Duration) {
        let hello = hello(Some("x".repeat(SPAM_NAME_CHARS)));
        let ws = match net::handshake(&self.target, "/ws/visitor", self.source, &hello).await {
            Ok((ws, VisitorEvent::Welcome(_))) => ws,
            Ok((ws, first)) => {
                net::close(ws).await;
                return self.attacks.outcome(Attack::Spam, refusal(&first));
            }
            Err(error) => {
                self.attacks.outcome(Attack::Spam, error.label());
                // Not even a WebSocket: no port here, or refused at accept
                // (its address is over budget). Another try at once would
                // be a connection flood, not spam.
                if !matches!(
                    error,
                    net::ConnectError::Handshake(tungstenite::Error::Http(_))
                ) {
                    tokio::time::sleep(every).await;
                }
                return;
            }
        };
        let outcome = send_spam(ws, n, round).await;
        if outcome == SpamOutcome::Opened {
            self.attacks.opened();
        }
        self.attacks.outcome(Attack::Spam, outcome.label());
    }
}

fn hello(name: Option<String>) -> VisitorRequest {
    VisitorRequest::Hello {
        token: None,
        after_seq: None,
        profile: Some(VisitorProfile {
            name,
            ..VisitorProfile::default()
        }),
    }
}

fn refusal(first: &VisitorEvent) -> String {
    match first {
        VisitorEvent::Error(error) => format!("refused at hello: {}", error.code.as_str()),
        _ => "no welcome".to_owned(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SpamOutcome {
    /// The message was acknowledged: a new conversation.
    Opened,
    Refused(&'static str),
    /// The relay closed the connection, or it failed, or said nothing.
    Closed,
}

impl SpamOutcome {
    fn label(&self) -> String {
        match self {
            SpamOutcome::Opened => "opened a conversation".to_owned(),
            SpamOutcome::Refused(code) => format!("refused: {code}"),
            SpamOutcome::Closed => "closed without an answer".to_owned(),
        }
    }
}

/// Sends one spam message on a welcomed connection, waits for the relay's
/// verdict and closes.
async fn send_spam(mut ws: net::Ws, n: u32, round: u64) -> SpamOutcome {
    let send = VisitorRequest::Send {
        client_id: format!("spam-{n}-{round}"),
        text: "spam ".repeat(SPAM_TEXT_CHARS / 5),
        attachments: Vec::new(),
    };
    let verdict = async {
        net::send(&mut ws, &send)
            .await
            .map_err(|_| SpamOutcome::Closed)?;
        loop {
            match net::recv::<VisitorEvent>(&mut ws).await {
                Ok(VisitorEvent::Ack(_)) => return Ok(SpamOutcome::Opened),
                Ok(VisitorEvent::Error(error)) => {
                    return Ok(SpamOutcome::Refused(error.code.as_str()));
                }
                Ok(_) => {}
                Err(_) => return Err(SpamOutcome::Closed),
            }
        }
    };
    let outcome = match tokio::time::timeout(CONNECT_TIMEOUT, verdict).await {
        Ok(Ok(outcome) | Err(outcome)) => outcome,
        Err(_) => SpamOutcome::Closed,
    };
    net::close(ws).await;
    outcome
}

/// A request that never finishes: `head` at once, then `trickle` a byte at
/// a time (or nothing more, when `trickle` is empty).
#[derive(Debug, Clone)]
pub struct Stalled {
    head: Vec<u8>,
    trickle: Vec<u8>,
}

/// How the relay ended a stalled request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It answered with this HTTP status (and the attacker hung up).
    Answered(u16),
    /// It closed (or reset) the connection without a word.
    Closed,
}

impl Stalled {
    /// A request line, and never a header.
    pub fn request_line() -> Stalled {
        Stalled {
            head: b"GET / HTTP/1.1\r\n".to_vec(),
            trickle: Vec::new(),
        }
    }

    /// A whole WebSocket handshake, every byte on its own.
    pub fn websocket_handshake(target: &Target) -> Stalled {
        let request = format!(
            "GET /ws/visitor HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nOrigin: {}\r\n\r\n",
            target.authority(),
            target.origin()
        );
        Stalled {
            head: Vec::new(),
            trickle: request.into_bytes(),
        }
    }

    /// A long-poll `hello` whose JSON body (padded with spaces) trickles.
    pub fn hello_body(target: &Target) -> Stalled {
        let mut body = br#"{"type":"hello"}"#.to_vec();
        body.resize(SLOW_BODY_BYTES, b' ');
        Stalled::post(target, "/api/visitor/hello", None, "application/json", body)
    }

    /// A visitor's upload of a small PNG that trickles.
    pub fn upload_body(target: &Target, token: &str, n: u32) -> Stalled {
        let body = png::image(SLOW_BODY_BYTES, u64::from(n));
        let path = format!("/api/files?name=slow-{n}.png");
        Stalled::post(target, &path, Some(token), "image/png", body)
    }

    fn post(
        target: &Target,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Stalled {
        let authorization = token.map_or(String::new(), |token| {
            format!("Authorization: Bearer {token}\r\n")
        });
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\n{authorization}\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            target.authority(),
            target.origin(),
            body.len()
        );
        Stalled {
            head: head.into_bytes(),
            trickle: body,
        }
    }

    /// Sends this request on `stream`, a byte of the trickle `every` so
    /// often, until the relay answers or closes.
    pub async fn send<S: AsyncRead + AsyncWrite>(&self, stream: S, every: Duration) -> Ended {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let writing = async {
            // A failed write means the relay closed: the read side says how.
            if writer.write_all(&self.head).await.is_ok() {
                for byte in &self.trickle {
                    tokio::time::sleep(every).await;
                    if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                        break;
                    }
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            ended = answer(&mut reader) => ended,
            () = writing => Ended::Closed,
        }
    }
}

/// Reads until the status line of an answer is in, or the connection ends.
async fn answer(reader: &mut (impl AsyncRead + Unpin)) -> Ended {
    let mut seen = Vec::new();
    let mut buffer = [0; 256];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return status(&seen).map_or(Ended::Closed, Ended::Answered),
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
        }
        if seen.windows(2).any(|pair| pair == b"\r\n") || seen.len() > 1024 {
            return status(&seen).map_or(Ended::Closed, Ended::Answered);
        }
    }
}

/// The status code of `HTTP/1.1 NNN …`.
fn status(seen: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(seen.get(..12)?).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::DuplexStream;

    use super::*;

    fn target() -> Target {
        Target::from_addr(SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// Reads what the attacker sent until `until` bytes arrived, each read
    /// with the time it came at.
    async fn arrivals(relay: &mut DuplexStream, until: usize) -> Vec<(Instant, Vec<u8>)> {
        let mut got = Vec::new();
        let mut total = 0;
        while total < until {
            let mut buffer = [0; 1024];
            let read = relay.read(&mut buffer).await.expect("read");
            assert_ne!(read, 0, "the attacker hung up");
            total += read;
            got.push((Instant::now(), buffer[..read].to_vec()));
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_open_request_sends_its_request_line_and_never_a_header() {
        let (attacker, mut relay) = tokio::io::duplex(4096);
        let request = Stalled::request_line();
        let attack =
            tokio::spawn(async move { request.send(attacker, Duration::from_secs(1)).await });
        let line = arrivals(&mut relay, 16).await;
        assert_eq!(line.concat_bytes(), b"GET / HTTP/1.1\r\n");
        // A minute on, nothing more came: the headers never end.
        let mut more = [0; 16];
        let waited = tokio::time::timeout(Duration::from_secs(60), relay.read(&mut more)).await;
        assert!(waited.is_err(), "sent more: {waited:?}");
        drop(relay);
        assert_eq!(attack.await.expect("join"), Ended::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_websocket_handshake_trickles_a_byte_at_a_time() {
        let (attacker, mut relay) = tokio::io::duplex(4096);
        let request = Stalled::websocket_handshake(&target());
        let every = Duration::from_secs(1);
        let attack = tokio::spawn(async move { request.send(attacker, every).await });
        let started = Instant::now();
        let got = arrivals(&mut relay, 5).await;
        assert!(got.iter().all(|(_, bytes)| bytes.len() == 1), "{got:?}");
        assert_eq!(got.concat_bytes(), b"GET /");
        for (n, (at, _)) in got.iter().enumerate() {
            assert!(
                *at >= started + every * (n as u32 + 1),
                "byte {n} too early"
            );
        }
        relay
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .await
            .expect("answer");
        assert_eq!(attack.await.expect("join"), Ended::Answered(408));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_sends_its_headers_at_once_and_then_trickles() {
        let (attacker, mut relay) = tokio::io::duplex(16 * 1024);
        let request = Stalled::hello_body(&target());
        let every = Duration::from_secs(1);
        let attack = tokio::spawn(async move { request.send(attacker, every).await });
        let started = Instant::now();
        let mut head = Vec::new();
        while !head.windows(4).any(|end| end == b"\r\n\r\n") {
            let mut buffer = [0; 1024];
            let read = relay.read(&mut buffer).await.expect("read");
            head.extend_from_slice(&buffer[..read]);
        }
        assert_eq!(Instant::now(), started, "the headers come at once");
        let head = String::from_utf8(head).expect("text");
        assert!(
            head.starts_with("POST /api/visitor/hello HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.ends_with(&format!("Content-Length: {SLOW_BODY_BYTES}\r\n\r\n")),
            "{head}"
        );
        let body = arrivals(&mut relay, 3).await;
        assert_eq!(body.concat_bytes(), b"{\"t");
        assert!(body[0].0 >= started + every, "the body waits");
        drop(relay);
        assert_eq!(attack.await.expect("join"), Ended::Closed);
    }

    #[test]
    fn an_upload_body_is_a_png_of_its_declared_length_with_the_token() {
        let request = Stalled::upload_body(&target(), "visitor-token", 3);
        let head = String::from_utf8(request.head.clone()).expect("text");
        assert!(
            head.contains("Authorization: Bearer visitor-token\r\n"),
            "{head}"
        );
        let length = format!("Content-Length: {}\r\n", request.trickle.len());
        assert!(head.contains(&length), "{head}");
        assert!(request.trickle.starts_with(b"\x89PNG"));
    }

    #[test]
    fn status_lines_are_read_and_anything_else_is_not() {
        assert_eq!(status(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(status(b"HTTP/1.0 429 x"), Some(429));
        assert_eq!(status(b"HTTP/1.1 4"), None);
        assert_eq!(status(b"garbage and more garbage"), None);
    }

    trait ConcatBytes {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl ConcatBytes for Vec<(Instant, Vec<u8>)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|(_, bytes)| bytes.clone()).collect()
        }
    }
}
