//! The relay serving TLS itself: HTTPS and WSS on its one socket, the
//! certificate swapped on SIGHUP while connections stay open, a bad new
//! certificate refused, and a silent client's handshake timed out.

use std::time::Duration;

use kefu_protocol::agent::{AgentEvent, Role};
use kefu_protocol::visitor::VisitorEvent;
use kefu_testkit::tls::{connect, get_status, peer_certificate};
use kefu_testkit::{Client, PATIENCE, RelayProcess, TestCa, TestRelay, accounts};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::support::{KEFU_RELAY, sqlite_url};

#[tokio::test]
async fn sighup_swaps_the_certificate_and_open_connections_stay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = sqlite_url(&dir.path().join("kefu.db"));
    let token = accounts::add_agent(&database, "alice", Role::Agent).await;
    let ca = TestCa::new("kefu test CA");
    let files = ca.issue(dir.path(), "relay");
    let (cert, key) = (
        files.cert.display().to_string(),
        files.key.display().to_string(),
    );
    let mut relay = RelayProcess::start(
        KEFU_RELAY,
        &database,
        &["--tls-cert", &cert, "--tls-key", &key],
    )
    .await;
    let listening = relay.startup_log.last().expect("the listening line");
    assert!(listening.contains("listening on https://"), "{listening}");
    let addr = relay.addr;
    let url = |path: &str| format!("wss://{addr}{path}");

    // An agent connects over WSS before the certificate changes.
    let mut agent = Client::<AgentEvent>::connect_over(&url("/ws/agent"), Some(ca.client())).await;
    agent.hello(&token).await;
    let first = peer_certificate(&connect(relay.addr, ca.client()).await.expect("TLS"));

    // A broken new certificate is refused and the one in use kept.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nbroken\n").expect("write");
    relay.hang_up().await;
    let refusal = relay.logged("cannot reload the TLS certificate").await;
    assert!(refusal.contains("relay.pem"), "names the file: {refusal}");
    let kept = peer_certificate(&connect(relay.addr, ca.client()).await.expect("TLS"));
    assert_eq!(kept, first, "the old certificate still serves");

    // A good one is taken: new connections see it.
    let second = ca.issue_to(&files);
    assert_ne!(second, first);
    relay.hang_up().await;
    relay.logged("reloaded the TLS certificate").await;
    let fresh = peer_certificate(&connect(relay.addr, ca.client()).await.expect("TLS"));
    assert_eq!(fresh, second, "new handshakes use the new certificate");

    // The agent's connection from before both reloads still carries frames:
    // a visitor's first message reaches it.
    let mut visitor =
        Client::<VisitorEvent>::connect_over(&url("/ws/visitor"), Some(ca.client())).await;
    visitor.hello(None, None).await;
    let ack = visitor.say("v1", "hello over TLS").await;
    let summary = agent
        .summary_where(&ack.conversation_id, |summary| {
            summary.preview == "hello over TLS"
        })
        .await;
    assert_eq!(summary.id, ack.conversation_id);
    relay.kill().await;
}

#[tokio::test]
async fn a_client_that_never_says_hello_to_tls_loses_its_socket() {
    let ca = TestCa::new("kefu test CA");
    let timeout = Duration::from_millis(300);
    let relay = TestRelay::with_tls(&ca, |config| {
        config.limits.tls_handshake_timeout = timeout;
    })
    .await;

    let mut silent = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    let connected = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, silent.read(&mut buffer))
        .await
        .expect("the relay closed the silent socket in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without a word: {read:?}"
    );
    assert!(connected.elapsed() >= timeout, "not before the timeout");

    // Meanwhile, and after, others are served.
    let client = relay.tls_client().expect("a TLS relay");
    assert_eq!(get_status(relay.addr, client, "/healthz").await, Ok(200));
    relay.stop().await;
}

#[tokio::test]
async fn a_tls_relay_serves_wss_and_keeps_its_certificate_across_a_restart() {
    let ca = TestCa::new("kefu test CA");
    let relay = TestRelay::with_tls(&ca, |_| {}).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let ack = visitor.say("v1", "hi").await;
    let addr = relay.addr;
    let stopped = relay.stop().await;

    let relay = TestRelay::reopen_at(stopped, addr).await;
    assert!(relay.url("/").starts_with("wss://"), "{}", relay.url("/"));
    let mut agent = relay.signed_in_agent(&token).await;
    let page = agent.history(&ack.conversation_id, None, 10).await;
    assert_eq!(page.len(), 1);
    let mut visitor = relay.visitor().await;
    let again = visitor.hello(Some(&welcome.token), None).await;
    assert_eq!(again.conversation_id, Some(ack.conversation_id));
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_whose_certificate_cannot_be_read_does_not_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = sqlite_url(&dir.path().join("kefu.db"));
    let missing = dir.path().join("missing.pem").display().to_string();
    let output = crate::support::run_cli(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &database,
            "--tls-cert",
            &missing,
            "--tls-key",
            &missing,
        ],
        &[],
    )
    .await;
    assert!(!output.status.success());
    let stderr = crate::support::stderr(&output);
    assert!(
        stderr.contains("cannot load the TLS certificate") && stderr.contains("missing.pem"),
        "{stderr}"
    );
}

/// `systemctl reload` on a relay without TLS must not end it (SIGHUP's
/// default action would).
#[tokio::test]
async fn a_plain_relay_shrugs_off_sighup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = sqlite_url(&dir.path().join("kefu.db"));
    let mut relay = RelayProcess::start(KEFU_RELAY, &database, &[]).await;
    relay.hang_up().await;
    relay.logged("nothing to reload").await;
    let mut visitor = relay.visitor().await;
    visitor.hello(None, None).await;
    relay.kill().await;
}
