//! `kefu-relay block`, run as another process, takes effect on the running
//! relay within a second: a blocked address is refused at accept, a
//! blocked client behind a trusted proxy as soon as the proxy names it,
//! visitors already connected from it are closed (agents are not), and
//! `unblock` lets them back. Across a cluster: `cluster_blocking`.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use kefu_protocol::agent::{AgentEvent, Role};
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{ErrorCode, PresenceKind};
use kefu_testkit::{Client, TestRelay, assert_error};
use serde_json::json;
use tokio::time::Instant;

use crate::admission::healthz_from;
use crate::cluster::Cluster;
use crate::longpoll::PollVisitor;
use crate::proxies::{PROXY, upgrade_from};
use crate::support::{run_cli, stdout};

/// The relay re-reads the blocks every 0.5 s and promises a second; the
/// bound leaves room for a loaded CI machine.
const IN_FORCE_WITHIN: Duration = Duration::from_secs(2);

pub(crate) async fn cli(relay: &TestRelay, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--database", &relay.database]);
    let output = run_cli(&args, &[]).await;
    assert!(output.status.success(), "{args:?}: {output:?}");
    stdout(&output)
}

/// Asks `check` again until it holds, and returns how long that took; the
/// relay gives no event to await when it re-reads the store.
pub(crate) async fn until<F: Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < IN_FORCE_WITHIN, "not {what} in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_blocked_address_is_refused_by_the_running_relay_until_unblocked() {
    let relay = TestRelay::with_config(|config| {
        config.trusted_proxies = kefu_relay::proxy::TrustedProxies::new(vec![
            format!("{PROXY}/32").parse().expect("a range"),
        ]);
    })
    .await;
    let served = |source: &'static str| {
        let addr = relay.addr;
        async move { healthz_from(addr, source).await.is_some() }
    };
    assert!(served("127.0.0.2").await);

    cli(
        &relay,
        &["block", "127.0.0.2", "--for", "1h", "--reason", "spam"],
    )
    .await;
    let took = until("refused", || async { !served("127.0.0.2").await }).await;
    assert!(took < IN_FORCE_WITHIN, "in force after {took:?}");
    assert!(served("127.0.0.3").await, "other addresses are served");

    // Behind the proxy: refused once the proxy names the client.
    cli(&relay, &["block", "198.51.100.0/24"]).await;
    until("refused behind the proxy", || async {
        upgrade_from(relay.addr, PROXY, "X-Forwarded-For: 198.51.100.9")
            .await
            .0
            == 403
    })
    .await;
    let (status, _other) = upgrade_from(relay.addr, PROXY, "X-Forwarded-For: 192.0.2.1").await;
    assert_eq!(status, 101, "the proxy's other clients are served");

    let listed = cli(&relay, &["blocks"]).await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("127.0.0.2/32\t") && lines[0].ends_with("\tspam"),
        "{listed}"
    );
    assert!(lines[1].starts_with("198.51.100.0/24\t") && lines[1].contains("until unblocked"));

    cli(&relay, &["unblock", "127.0.0.2"]).await;
    until("served again", || served("127.0.0.2")).await;
}

#[tokio::test]
async fn a_range_that_is_not_one_is_refused_by_the_command() {
    let relay = TestRelay::start().await;
    let output = run_cli(
        &["block", "10.0.0.0/33", "--database", &relay.database],
        &[],
    )
    .await;
    assert!(!output.status.success());
    let output = run_cli(&["unblock", "10.9.9.9", "--database", &relay.database], &[]).await;
    assert!(!output.status.success(), "nothing to unblock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not blocked"), "{stderr}");
}

/// A visitor's WebSocket from `source` that has started a conversation.
async fn chatting_from(relay_url: &str, source: &str) -> Client<VisitorEvent> {
    let source = source.parse().expect("an address");
    let mut visitor = Client::<VisitorEvent>::connect_from(relay_url, source).await;
    visitor.hello(None, None).await;
    visitor.say("first", "hello").await;
    visitor
}

/// The relay closes `visitor`'s connection as blocked: `forbidden`, then
/// close 1008, as a refused `hello`.
pub(crate) async fn closed_as_blocked(visitor: &mut Client<VisitorEvent>) {
    let error = visitor.next_error().await;
    assert_error(&error, ErrorCode::Forbidden);
    assert_eq!(error.message, "this address is blocked");
    assert_eq!(visitor.close_code().await, Some(1008));
}

/// `visitor`'s next message reaches `agent`: the connection chats on.
async fn still_chatting(visitor: &mut Client<VisitorEvent>, agent: &mut Client<AgentEvent>) {
    visitor.say("again", "still here").await;
    agent
        .until(|event| match event {
            AgentEvent::Message(message) if message.text == "still here" => Some(()),
            _ => None,
        })
        .await;
}

#[tokio::test]
async fn a_block_closes_the_open_websockets_of_that_range_only() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let url = relay.url("/ws/visitor");
    let mut blocked = chatting_from(&url, "127.0.0.2").await;
    let mut other = chatting_from(&url, "127.0.0.3").await;

    cli(&relay, &["block", "127.0.0.2", "--reason", "spam"]).await;
    let since = Instant::now();
    closed_as_blocked(&mut blocked).await;
    let took = since.elapsed();
    assert!(took < IN_FORCE_WITHIN, "closed after {took:?}");
    still_chatting(&mut other, &mut agent).await;
}

#[tokio::test]
async fn a_block_ends_long_poll_sessions_and_spares_agents() {
    let relay = TestRelay::with_config(|config| {
        config.presence_grace = Duration::from_millis(100);
    })
    .await;
    let token = relay.add_agent("alice", Role::Agent).await;
    // The agent connects from 127.0.0.1, the address about to be blocked.
    let mut agent = relay.signed_in_agent(&token).await;
    let mut other = chatting_from(&relay.url("/ws/visitor"), "127.0.0.3").await;
    let polling = PollVisitor::hello(relay.addr, None).await;
    let idle = PollVisitor::hello(relay.addr, None).await;
    let mut gone = HashSet::new();
    for (visitor, client_id) in [(&polling, "p1"), (&idle, "i1")] {
        let (status, body) = visitor
            .post(json!({"type": "send", "client_id": client_id, "text": "hello"}))
            .await;
        assert_eq!(status, 200, "{body}");
        gone.insert(visitor.visitor_id().to_owned());
    }
    // A poll waiting for news when the block comes (or, should the block
    // be faster, refused as it arrives: the same answer).
    let poll = tokio::spawn(async move { polling.poll(1).await });

    cli(&relay, &["block", "127.0.0.1"]).await;
    let (status, body) = poll.await.expect("the poll");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"forbidden\""), "{body}");
    // Both sessions are closed at once, not left to idle out: their
    // visitors go offline after the grace.
    while !gone.is_empty() {
        let presence = agent
            .until(|event| match event {
                AgentEvent::Presence(p) if p.kind == PresenceKind::Visitor && !p.online => Some(p),
                _ => None,
            })
            .await;
        gone.remove(&presence.id);
    }
    // The agent from the blocked address keeps its connection.
    still_chatting(&mut other, &mut agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_closes_visitors_on_every_relay_of_a_cluster() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut agent = cluster.agent_on_b().await;
    let on_a = format!("ws://{}/ws/visitor", cluster.a.addr);
    let on_b = format!("ws://{}/ws/visitor", cluster.b.addr);
    let mut blocked = [
        chatting_from(&on_a, "127.0.0.2").await,
        chatting_from(&on_b, "127.0.0.2").await,
    ];
    let mut other = chatting_from(&on_a, "127.0.0.3").await;

    let output = run_cli(
        &["block", "127.0.0.2", "--database", &cluster.database.url],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let since = Instant::now();
    for visitor in &mut blocked {
        closed_as_blocked(visitor).await;
        let took = since.elapsed();
        assert!(took < IN_FORCE_WITHIN, "closed after {took:?}");
    }
    // A visitor on relay A still reaches the agent on relay B.
    still_chatting(&mut other, &mut agent).await;
    cluster.stop().await;
}
