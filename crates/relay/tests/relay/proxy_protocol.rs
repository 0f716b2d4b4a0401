//! Behind a TCP load balancer speaking the PROXY protocol
//! (`proxy_protocol`): the client a trusted balancer's v1 or v2 header
//! names is the client for every budget, block and record; a balancer
//! connection without a valid header is closed at once or at the header
//! timeout; a header from anyone else is never believed; TLS on the relay
//! starts after the header.

use std::net::SocketAddr;
use std::time::Duration;

use kefu_protocol::Ack;
use kefu_protocol::agent::{AgentEvent, Role};
use kefu_protocol::visitor::VisitorEvent;
use kefu_relay::Config;
use kefu_relay::config::VisitorAddress;
use kefu_relay::proxy::TrustedProxies;
use kefu_testkit::{Client, TestCa, TestRelay};
use ppp::v2;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::admission::{closed_at_once, connect_from, healthz_after};
use crate::blocking::{cli, closed_as_blocked, until};

/// The load balancer of these tests. Agents and the test harness connect
/// directly from 127.0.0.1, as on an internal network.
const BALANCER: &str = "127.0.0.9";
const OK: Option<&str> = Some("HTTP/1.1 200 OK");

fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 40000 8080\r\n").into_bytes()
}

fn v2(client: &str) -> Vec<u8> {
    let client: SocketAddr = client.parse().expect("an address");
    let relay: SocketAddr = "127.0.0.1:8080".parse().expect("an address");
    v2_header(v2::Command::Proxy, (client, relay).into())
}

/// What HAProxy's health checks (`check send-proxy-v2`) send.
fn v2_local() -> Vec<u8> {
    v2_header(v2::Command::Local, v2::Addresses::Unspecified)
}

fn v2_header(command: v2::Command, addresses: v2::Addresses) -> Vec<u8> {
    v2::Builder::with_addresses(v2::Version::Two | command, v2::Protocol::Stream, addresses)
        .build()
        .expect("a header")
}

/// The relay behind [`BALANCER`].
fn behind_balancer(config: &mut Config) {
    config.trusted_proxies =
        TrustedProxies::new(vec![format!("{BALANCER}/32").parse().expect("a range")]);
    config.proxy_protocol = true;
}

async fn relay(adjust: impl FnOnce(&mut Config)) -> TestRelay {
    TestRelay::with_config(|config| {
        behind_balancer(config);
        adjust(config);
    })
    .await
}

/// A visitor through the balancer, named by `header`, who has said hello.
async fn visitor_behind(relay: &TestRelay, header: &[u8]) -> Client<VisitorEvent> {
    let url = relay.url("/ws/visitor");
    let balancer = BALANCER.parse().expect("an address");
    let mut visitor =
        Client::<VisitorEvent>::connect_proxied(&url, balancer, header, relay.tls_client()).await;
    visitor.hello(None, None).await;
    visitor
}

#[tokio::test]
async fn connections_are_budgeted_by_the_client_the_header_names() {
    let relay = relay(|config| config.limits.sockets_per_ip = 1).await;
    let mut chatting = visitor_behind(&relay, &v1("198.51.100.1")).await;

    // Its address has its one socket, whichever version names it.
    assert_eq!(
        healthz_after(relay.addr, BALANCER, &v2("198.51.100.1:5000")).await,
        None
    );
    assert_eq!(
        healthz_after(relay.addr, BALANCER, &v1("198.51.100.1")).await,
        None
    );
    // The balancer is no bucket of its own: other clients, and its health
    // checks, still get in past its address's one socket.
    assert_eq!(
        healthz_after(relay.addr, BALANCER, &v2("198.51.100.2:5000"))
            .await
            .as_deref(),
        OK
    );
    assert_eq!(
        healthz_after(relay.addr, BALANCER, &v2_local())
            .await
            .as_deref(),
        OK
    );
    assert_eq!(chatting.say("c1", "still here").await.seq, 1);
}

/// The address agents see for the visitor of `ack`'s conversation.
async fn recorded(agent: &mut Client<AgentEvent>, ack: &Ack) -> Option<String> {
    let summary = agent.summary_where(&ack.conversation_id, |_| true).await;
    summary.visitor.address
}

#[tokio::test]
async fn the_named_client_is_recorded_and_blocked() {
    let relay = relay(|config| config.visitor_address = VisitorAddress::Full).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;

    let mut named = visitor_behind(&relay, &v2("198.51.100.7:4711")).await;
    let ack = named.say("n1", "hello").await;
    assert_eq!(
        recorded(&mut agent, &ack).await.as_deref(),
        Some("198.51.100.7")
    );
    // A health check, or any LOCAL connection, is the balancer's own.
    let mut local = visitor_behind(&relay, &v2_local()).await;
    let ack = local.say("l1", "hello").await;
    assert_eq!(recorded(&mut agent, &ack).await.as_deref(), Some(BALANCER));

    cli(&relay, &["block", "198.51.100.7"]).await;
    closed_as_blocked(&mut named).await;
    until("refused at accept", || async {
        healthz_after(relay.addr, BALANCER, &v1("198.51.100.7"))
            .await
            .is_none()
    })
    .await;
    let mut other = visitor_behind(&relay, &v1("198.51.100.8")).await;
    assert_eq!(other.say("o1", "hello").await.seq, 1);
    assert_eq!(local.say("l2", "still here").await.seq, 2);
}

#[tokio::test]
async fn tls_on_the_relay_starts_after_the_header() {
    let ca = TestCa::new("kefu test CA");
    let relay = TestRelay::with_tls(&ca, |config| {
        behind_balancer(config);
        config.visitor_address = VisitorAddress::Full;
    })
    .await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let mut visitor = visitor_behind(&relay, &v2("198.51.100.7:4711")).await;
    let ack = visitor.say("v1", "hello over TLS").await;
    assert_eq!(
        recorded(&mut agent, &ack).await.as_deref(),
        Some("198.51.100.7")
    );
}

#[tokio::test]
async fn a_balancer_connection_without_a_valid_header_is_closed_at_once() {
    let relay = relay(|_| {}).await;
    for header in [
        &b""[..],
        b"PROXY TCP4 198.51.100.1\r\n",
        b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n",
    ] {
        assert_eq!(
            healthz_after(relay.addr, BALANCER, header).await,
            None,
            "{:?}",
            String::from_utf8_lossy(header)
        );
    }
}

#[tokio::test]
async fn a_header_from_anyone_else_is_a_bad_request() {
    let relay = relay(|_| {}).await;
    for header in [v1("198.51.100.1"), v2("198.51.100.1:5000")] {
        assert_eq!(
            healthz_after(relay.addr, "127.0.0.2", &header)
                .await
                .as_deref(),
            Some("HTTP/1.1 400 Bad Request")
        );
    }
    assert_eq!(
        healthz_after(relay.addr, "127.0.0.2", b"").await.as_deref(),
        OK,
        "direct clients are still served"
    );
}

#[tokio::test]
async fn a_header_that_trickles_in_is_closed_at_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let relay = relay(|config| config.limits.http_header_timeout = timeout).await;
    let mut stream = connect_from(relay.addr, BALANCER).await;
    let started = Instant::now();
    stream.write_all(b"PROXY TCP4 198.51").await.expect("write");
    assert!(
        closed_at_once(&mut stream).await,
        "closed without an answer"
    );
    assert!(started.elapsed() >= timeout, "not before its time");
}

#[tokio::test]
async fn with_the_setting_off_a_header_is_a_bad_request_even_from_the_proxy() {
    let relay = relay(|config| config.proxy_protocol = false).await;
    assert_eq!(
        healthz_after(relay.addr, BALANCER, &v1("198.51.100.1"))
            .await
            .as_deref(),
        Some("HTTP/1.1 400 Bad Request")
    );
    assert_eq!(
        healthz_after(relay.addr, BALANCER, b"").await.as_deref(),
        OK
    );
}
