//! An agent's `welcome` stays under its documented maximum however many
//! conversations wait: with 20,000 waiting it holds the most urgent ones
//! and says how many there are in all.

use futures_util::{SinkExt as _, StreamExt as _};
use kefu_protocol::agent::{
    AgentEvent, AgentRequest, ConversationTotals, Role, WELCOME_MAX_CONVERSATIONS,
};
use kefu_relay::store;
use kefu_testkit::{PATIENCE, TestRelay};
use tokio_tungstenite::tungstenite::Message;

use crate::store::visitor_send;

const WAITING: usize = 20_000;
/// The documented bound of a `welcome` frame (docs/protocol.md): 4 MiB of
/// conversations and room for the rest.
const WELCOME_MAX_BYTES: usize = 5 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_is_bounded_with_twenty_thousand_waiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let writer = store::open(&database, None).await.expect("open");
    let sends = futures_util::stream::iter(0..WAITING).map(|n| {
        let writer = writer.clone();
        async move {
            writer
                .visitor_send(visitor_send(&format!("v{n:05}"), "c1", "hello"))
                .await
                .expect("send")
        }
    });
    let first = sends.buffered(256).collect::<Vec<_>>().await.remove(0);
    assert_eq!(first.seq, 1);
    writer.close().await;

    let relay = TestRelay::on_database(&database, |_| {}).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(relay.url("/ws/agent"))
        .await
        .expect("connect");
    let hello = serde_json::to_string(&AgentRequest::Hello { token }).expect("json");
    socket.send(Message::text(hello)).await.expect("hello");
    let frame = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("a welcome in time")
        .expect("a frame")
        .expect("no error");
    let Message::Text(text) = frame else {
        panic!("not text: {frame:?}")
    };
    assert!(
        text.len() < WELCOME_MAX_BYTES,
        "a welcome of {} bytes",
        text.len()
    );
    let AgentEvent::Welcome(welcome) = serde_json::from_str(&text).expect("an agent event") else {
        panic!("not a welcome: {text:.200}")
    };
    assert_eq!(welcome.conversations.len(), WELCOME_MAX_CONVERSATIONS);
    assert_eq!(
        welcome.totals,
        Some(ConversationTotals {
            waiting: WAITING as u64,
            active: 0
        })
    );
    // Oldest waiting first: several commit in the same millisecond, so
    // the first sent need not be first, but none waits longer.
    let since: Vec<_> = (welcome.conversations.iter())
        .map(|summary| summary.waiting_since.expect("waiting"))
        .collect();
    assert!(since.is_sorted(), "the ones waiting longest first");
    assert!(since[0] <= first.at);
}
