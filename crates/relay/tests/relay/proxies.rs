//! Behind a trusted reverse proxy the client's address comes from
//! `X-Forwarded-For` / `Forwarded`, and every per-address limit counts that
//! client; from anyone else those headers are ignored.

use std::net::SocketAddr;

use kefu_testkit::{PATIENCE, TestRelay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admission::connect_from;

/// The proxy of these tests; 127.0.0.2 and up are clients without one.
pub(crate) const PROXY: &str = "127.0.0.1";

/// Asks for a visitor WebSocket from `source` with `forwarded` (a header
/// line) and returns the answer's status code with the stream, which holds
/// the connection open if it was upgraded.
pub(crate) async fn upgrade_from(
    relay: SocketAddr,
    source: &str,
    forwarded: &str,
) -> (u16, TcpStream) {
    let mut stream = connect_from(relay, source).await;
    let request = format!(
        "GET /ws/visitor HTTP/1.1\r\nHost: kefu\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{forwarded}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("an answer in time")
            .expect("read");
        assert_eq!(read, 1, "closed before answering");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.split_whitespace().nth(1).expect("a status line");
    (status.parse().expect("a status code"), stream)
}

async fn relay() -> TestRelay {
    TestRelay::with_config(|config| {
        config.trusted_proxies = kefu_relay::proxy::TrustedProxies::new(vec![
            format!("{PROXY}/32").parse().expect("a range"),
        ]);
        config.limits.connections_per_ip = 1;
        // Fewer than the proxy's clients hold below.
        config.limits.sockets_per_ip = 2;
    })
    .await
}

#[tokio::test]
async fn a_trusted_proxy_names_its_clients_and_each_has_its_own_budget() {
    let relay = relay().await;
    let mut held = Vec::new();
    for (client, header) in [
        ("one", "X-Forwarded-For: 198.51.100.1"),
        ("two", "X-Forwarded-For: 6.6.6.6, 198.51.100.2"),
        ("three", "Forwarded: for=\"[2001:db8::3]:4711\";proto=https"),
    ] {
        let (status, stream) = upgrade_from(relay.addr, PROXY, header).await;
        assert_eq!(status, 101, "client {client} has a budget of its own");
        held.push(stream);
    }
    // The proxy holds three sockets, past `sockets_per_ip`: it is exempt.
    let (status, _) = upgrade_from(relay.addr, PROXY, "X-Forwarded-For: 198.51.100.1").await;
    assert_eq!(status, 429, "client one has used its budget");
    let (status, _) =
        upgrade_from(relay.addr, PROXY, "X-Forwarded-For: 6.6.6.6, 198.51.100.1").await;
    assert_eq!(status, 429, "a forged hop on the left changes nothing");
}

#[tokio::test]
async fn forwarding_headers_from_anyone_else_are_ignored() {
    let relay = relay().await;
    let (status, _held) =
        upgrade_from(relay.addr, "127.0.0.2", "X-Forwarded-For: 198.51.100.1").await;
    assert_eq!(status, 101);
    for header in [
        "X-Forwarded-For: 198.51.100.2",
        "Forwarded: for=198.51.100.3",
    ] {
        let (status, _) = upgrade_from(relay.addr, "127.0.0.2", header).await;
        assert_eq!(
            status, 429,
            "{header}: still 127.0.0.2, whose budget is used"
        );
    }
}

/// What agents see of the address of a visitor who writes from `source`,
/// on a relay set up by `adjust`.
async fn address_seen(
    adjust: impl FnOnce(&mut kefu_relay::Config),
    source: &str,
) -> Option<String> {
    use kefu_protocol::agent::Role;
    use kefu_protocol::visitor::VisitorEvent;

    let relay = TestRelay::with_config(adjust).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let url = relay.url("/ws/visitor");
    let mut visitor =
        kefu_testkit::Client::<VisitorEvent>::connect_from(&url, source.parse().expect("ip")).await;
    visitor.hello(None, None).await;
    let ack = visitor.say("c1", "hello").await;
    let summary = agent.summary_where(&ack.conversation_id, |_| true).await;
    summary.visitor.address
}

#[tokio::test]
async fn agents_see_the_visitors_address_as_the_setting_keeps_it() {
    use kefu_relay::config::VisitorAddress;

    assert_eq!(
        address_seen(|_| {}, "127.0.0.5").await.as_deref(),
        Some("127.0.0.0/24"),
        "truncated to its network by default"
    );
    let full = |config: &mut kefu_relay::Config| config.visitor_address = VisitorAddress::Full;
    assert_eq!(
        address_seen(full, "127.0.0.5").await.as_deref(),
        Some("127.0.0.5")
    );
    let off = |config: &mut kefu_relay::Config| config.visitor_address = VisitorAddress::Off;
    assert_eq!(address_seen(off, "127.0.0.5").await, None);
}
