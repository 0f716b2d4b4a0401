//! Connections are budgeted when they are accepted, before a byte is read:
//! half-sent requests count, past the budget a socket is closed at once,
//! and other addresses (and `/healthz`) are still served.

use std::net::SocketAddr;
use std::time::Duration;

use kefu_protocol::visitor::VisitorEvent;
use kefu_testkit::{Client, PATIENCE, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `relay` from the loopback address `source`.
pub(crate) async fn connect_from(relay: SocketAddr, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: std::net::IpAddr = source.parse().expect("an address");
    socket.bind((source, 0).into()).expect("bind");
    socket.connect(relay).await.expect("connect")
}

/// A request that never ends, as a slowloris sends it.
async fn half_sent_from(relay: SocketAddr, source: &str) -> TcpStream {
    let mut stream = connect_from(relay, source).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: kefu\r\n")
        .await
        .expect("write");
    stream
}

/// Whether the relay closes `stream` without a word.
pub(crate) async fn closed_at_once(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("the relay neither answered nor closed"),
    }
}

/// `GET /healthz` from `source`: the status line, or `None` if refused.
pub(crate) async fn healthz_from(relay: SocketAddr, source: &str) -> Option<String> {
    healthz_after(relay, source, b"").await
}

/// `GET /healthz` from `source` after `header` (a PROXY protocol header,
/// as a load balancer sends it): the status line, or `None` if refused.
pub(crate) async fn healthz_after(
    relay: SocketAddr,
    source: &str,
    header: &[u8],
) -> Option<String> {
    let mut stream = connect_from(relay, source).await;
    let mut request = header.to_vec();
    request.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: kefu\r\nConnection: close\r\n\r\n");
    stream.write_all(&request).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().map(str::to_owned)
}

async fn chatting_visitor(relay: &TestRelay, source: &str) -> Client<VisitorEvent> {
    let url = relay.url("/ws/visitor");
    let mut visitor =
        Client::<VisitorEvent>::connect_from(&url, source.parse().expect("an address")).await;
    visitor.hello(None, None).await;
    visitor
}

#[tokio::test]
async fn one_address_cannot_take_more_than_its_share_of_sockets() {
    let relay = TestRelay::with_config(|config| config.limits.sockets_per_ip = 3).await;
    let mut chatting = chatting_visitor(&relay, "127.0.0.1").await;
    let _held = [
        half_sent_from(relay.addr, "127.0.0.1").await,
        half_sent_from(relay.addr, "127.0.0.1").await,
    ];
    let mut refused = half_sent_from(relay.addr, "127.0.0.1").await;
    assert!(
        closed_at_once(&mut refused).await,
        "past the address's share"
    );

    // The address's open connection keeps chatting, and others are served.
    assert_eq!(chatting.say("c1", "still here").await.seq, 1);
    assert_eq!(
        healthz_from(relay.addr, "127.0.0.2").await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    let mut other = chatting_visitor(&relay, "127.0.0.2").await;
    assert_eq!(other.say("o1", "hello").await.seq, 1);
}

#[tokio::test]
async fn past_the_total_cap_new_sockets_are_closed_until_one_ends() {
    let relay = TestRelay::with_config(|config| config.limits.max_connections = 3).await;
    let mut chatting = chatting_visitor(&relay, "127.0.0.1").await;
    let held = half_sent_from(relay.addr, "127.0.0.2").await;
    let _also_held = half_sent_from(relay.addr, "127.0.0.3").await;
    let mut refused = half_sent_from(relay.addr, "127.0.0.4").await;
    assert!(closed_at_once(&mut refused).await, "three in all");
    assert_eq!(chatting.say("c1", "still here").await.seq, 1);

    // A place freed is a place for the next client, once the relay has
    // seen the socket close.
    drop(held);
    let mut status = None;
    for _ in 0..200 {
        status = healthz_from(relay.addr, "127.0.0.4").await;
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
}
