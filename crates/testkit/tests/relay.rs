//! The kit's own relay on both backends: ready when started, agents added,
//! a visitor heard, and the data still there after a reopen.

use kefu_protocol::agent::Role;
use kefu_testkit::{TestDatabase, TestRelay, http};

/// A visitor's message reaches an agent, over a relay that was stopped and
/// reopened on the same data in between.
async fn chat_across_a_reopen(relay: TestRelay) {
    assert_eq!(
        http::get(relay.addr, "/readyz")
            .await
            .map(|r| r.status)
            .ok(),
        Some(200)
    );
    let token = relay.add_agent("alice", Role::Agent).await;
    assert!(!relay.agent_id("alice").await.is_empty());
    let (mut visitor, welcome) = relay.new_visitor().await;
    let ack = visitor.say("v1", "before the restart").await;

    let relay = TestRelay::reopen(relay.stop().await).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let history = agent.history(&ack.conversation_id, None, 10).await;
    assert_eq!(history.len(), 1, "{history:?}");
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), Some(0)).await;
    assert_eq!(visitor.next_message().await.text, "before the restart");
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_on_sqlite_chats_across_a_reopen() {
    chat_across_a_reopen(TestRelay::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_postgresql_chats_across_a_reopen() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    chat_across_a_reopen(TestRelay::on_database(&database.url, |_| {}).await).await;
    database.drop_database().await;
}
