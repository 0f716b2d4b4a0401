//! Everything a client can stall has a time limit: a connection that says
//! nothing, a request whose headers trickle in, a WebSocket handshake sent
//! byte by byte, a slow body and an idle keep-alive connection are all
//! closed once their time is up, while a WebSocket that is chatting is not.

use std::time::{Duration, Instant};

use kefu_protocol::visitor::VisitorEvent;
use kefu_testkit::{Client, PATIENCE, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Small, so the tests are quick; drips come faster than either.
const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
const BODY_TIMEOUT: Duration = Duration::from_millis(400);
const DRIP: Duration = Duration::from_millis(50);

async fn relay() -> TestRelay {
    TestRelay::with_config(|config| {
        config.limits.http_header_timeout = HEADER_TIMEOUT;
        config.limits.http_body_timeout = BODY_TIMEOUT;
    })
    .await
}

/// Reads what the relay sends until it closes the connection, and returns
/// it with the time that took; fails if the relay keeps it open.
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the relay kept a stalled connection open");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        start.elapsed(),
    )
}

/// Sends `bytes` a piece at a time, every [`DRIP`], as a slowloris does,
/// and returns what the relay answered once it closed the connection —
/// which must happen before the last piece is sent.
async fn drip(stream: &mut TcpStream, bytes: &[u8], piece: usize) -> (String, Duration) {
    let (mut reader, mut writer) = stream.split();
    let start = Instant::now();
    let sending = async {
        let mut tick = tokio::time::interval(DRIP);
        for chunk in bytes.chunks(piece) {
            tick.tick().await;
            if writer.write_all(chunk).await.is_err() {
                // Closed under us: the reader sees it too.
                std::future::pending::<()>().await;
            }
        }
    };
    let mut answer = Vec::new();
    tokio::select! {
        () = sending => panic!("the relay waited for the whole slow request"),
        read = reader.read_to_end(&mut answer) => {
            // A reset is a close as well.
            let _ = read;
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        start.elapsed(),
    )
}

fn assert_timed_out(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout,
        "closed after {elapsed:?}, before its {timeout:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let relay = relay().await;
    let mut silent = TcpStream::connect(relay.addr).await.expect("connect");
    let (_, elapsed) = until_closed(&mut silent).await;
    assert_timed_out(elapsed, HEADER_TIMEOUT);
}

#[tokio::test]
async fn a_request_line_without_headers_is_closed() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    let (_, elapsed) = until_closed(&mut stream).await;
    assert_timed_out(elapsed, HEADER_TIMEOUT);
}

#[tokio::test]
async fn headers_sent_one_line_at_a_time_are_cut_off() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
    let mut request = b"GET /healthz HTTP/1.1\r\nHost: kefu\r\n".to_vec();
    for n in 0..100 {
        request.extend_from_slice(format!("X-Slow-{n}: a\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let lines = request.split_inclusive(|&b| b == b'\n').count();
    let line = request.len() / lines;
    let (answer, elapsed) = drip(&mut stream, &request, line).await;
    assert!(!answer.contains("200 OK"), "answered: {answer}");
    assert_timed_out(elapsed, HEADER_TIMEOUT);
}

#[tokio::test]
async fn a_websocket_handshake_sent_byte_by_byte_is_cut_off() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
    let handshake = "GET /ws/visitor HTTP/1.1\r\nHost: kefu\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (answer, elapsed) = drip(&mut stream, handshake.as_bytes(), 1).await;
    assert!(!answer.contains("101"), "upgraded: {answer}");
    assert_timed_out(elapsed, HEADER_TIMEOUT);
}

#[tokio::test]
async fn a_slow_body_is_refused_and_its_connection_closed() {
    let relay = relay().await;
    let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
    let body = br#"{"type":"hello","name":"a slow script that takes its time"}"#;
    let head = format!(
        "POST /api/visitor/hello HTTP/1.1\r\nHost: kefu\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("headers");
    let (answer, elapsed) = drip(&mut stream, body, 1).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "refused with an error frame: {answer}"
    );
    assert!(
        answer.contains(r#""code":"bad_request""#) && answer.contains("took longer"),
        "says why: {answer}"
    );
    assert_timed_out(elapsed, BODY_TIMEOUT);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_and_a_chat_is_not() {
    let relay = relay().await;
    let mut visitor = Client::<VisitorEvent>::connect(&relay.url("/ws/visitor")).await;
    visitor.hello(None, None).await;

    let mut stream = TcpStream::connect(relay.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kefu\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    while !answer.ends_with(b"ok\n") {
        let mut buffer = [0u8; 512];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&buffer[..read]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
    // Kept alive for a next request, but not for ever.
    let (rest, elapsed) = until_closed(&mut stream).await;
    assert_eq!(rest, "", "nothing more was asked");
    assert_timed_out(elapsed, HEADER_TIMEOUT);

    // The WebSocket opened before is older than the timeout and chats on.
    assert_eq!(visitor.say("c1", "still here").await.seq, 1);
}
