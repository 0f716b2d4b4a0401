//! `search` and `conversations` over real sockets: agents search (notes
//! included), bad requests get their documented errors, visitors cannot
//! search at all, and a message acknowledged before a SIGKILL is found
//! after the restart, indexed or not when the relay died.

use kefu_protocol::agent::search::{ConversationsRequest, SearchRequest, SearchResults};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_protocol::{ErrorCode, ErrorFrame};
use kefu_testkit::{Client, RelayProcess, TestRelay, assert_error};

use crate::support::{KEFU_RELAY, sqlite_url};

fn query(request_id: &str, text: &str) -> SearchRequest {
    SearchRequest {
        request_id: Some(request_id.into()),
        query: text.into(),
        ..SearchRequest::default()
    }
}

/// The answer to a search: its results or its error.
async fn ask(
    agent: &mut Client<AgentEvent>,
    request: SearchRequest,
) -> Result<SearchResults, ErrorFrame> {
    agent.send(&AgentRequest::Search(request)).await;
    agent
        .until(|event| match event {
            AgentEvent::SearchResults(results) => Some(Ok(results)),
            AgentEvent::Error(error) => Some(Err(error)),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn agents_search_and_list_resolved_conversations() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "我的订单在哪里？").await.conversation_id;
    agent
        .send_message(&conversation, "n1", "订单 was shipped: internal", true)
        .await
        .expect("note");

    let results = ask(&mut agent, query("r1", "订单")).await.expect("results");
    assert_eq!(results.request_id.as_deref(), Some("r1"));
    let seqs: Vec<_> = results
        .hits
        .iter()
        .map(|hit| (hit.seq, hit.internal))
        .collect();
    assert_eq!(seqs, [(Some(2), true), (Some(1), false)], "newest first");
    assert_eq!(results.hits[1].conversation.id, conversation);
    assert_eq!(results.next_cursor, None);

    let long = query("r2", &"x".repeat(201));
    assert_error(
        &ask(&mut agent, long).await.expect_err("too long"),
        ErrorCode::TooLarge,
    );
    let empty = ask(&mut agent, query("r3", "  ")).await.expect_err("empty");
    assert_error(&empty, ErrorCode::BadRequest);
    assert_eq!(empty.reference.as_deref(), Some("r3"));
    let forged = SearchRequest {
        cursor: Some("not-a-cursor".into()),
        ..query("r4", "订单")
    };
    assert_error(
        &ask(&mut agent, forged).await.expect_err("cursor"),
        ErrorCode::BadRequest,
    );

    agent
        .send(&AgentRequest::Claim {
            conversation_id: conversation.clone(),
        })
        .await;
    agent
        .send(&AgentRequest::Resolve {
            conversation_id: conversation.clone(),
        })
        .await;
    // A list answers at once (it waits for no earlier request): ask once
    // the resolve is stored.
    agent
        .until(|event| match event {
            AgentEvent::Conversation(frame)
                if frame.summary.status == ConversationStatus::Resolved =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    agent
        .send(&AgentRequest::Conversations(ConversationsRequest {
            request_id: Some("h1".into()),
            status: Some(ConversationStatus::Resolved),
            ..ConversationsRequest::default()
        }))
        .await;
    let page = agent
        .until(|event| match event {
            AgentEvent::Conversations(page) => Some(page),
            _ => None,
        })
        .await;
    assert_eq!(page.request_id.as_deref(), Some("h1"));
    let ids: Vec<_> = page.conversations.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [conversation.as_str()]);
}

#[tokio::test]
async fn visitors_cannot_search() {
    let relay = TestRelay::start().await;
    let (mut visitor, _) = relay.new_visitor().await;
    visitor.say("v1", "secret 订单").await;
    visitor
        .send_raw(r#"{"type":"search","query":"订单"}"#)
        .await;
    assert_error(&visitor.next_error().await, ErrorCode::BadRequest);
    // The connection goes on; only the refusal came back.
    let ack = visitor.say("v2", "still here").await;
    assert_eq!(ack.seq, 2);
}

/// Every message acknowledged before the relay was killed is searchable
/// after the restart, by the first search: the SQLite writer indexes
/// messages after their commit, and a restarted relay indexes what the
/// last one left (the backlog) before it answers a search.
#[tokio::test]
async fn acked_messages_are_found_after_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kefu.db");
    let database = sqlite_url(&path);
    let token = kefu_testkit::accounts::add_agent(&database, "alice", Role::Agent).await;
    let relay = RelayProcess::start(KEFU_RELAY, &database, &[]).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let acked = crate::crash::kill_mid_burst(relay, &mut visitor, (1_000, 200), "needle").await;
    // How many were indexed when the process died is a race; make it none.
    let unindexed = unindex_everything(&path);
    assert!(
        unindexed >= acked.len(),
        "every acked message is left to index"
    );

    let relay = RelayProcess::start(KEFU_RELAY, &database, &[]).await;
    let mut agent = relay.agent().await;
    agent.hello(&token).await;
    let mut found = Vec::new();
    let mut request = SearchRequest {
        limit: Some(50),
        ..query("after-crash", "needle")
    };
    loop {
        let page = ask(&mut agent, request.clone()).await.expect("results");
        found.extend(page.hits.iter().filter_map(|hit| hit.seq));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    for (client_id, seq) in &acked {
        assert!(
            found.contains(seq),
            "acked {client_id} (seq {seq}) is found"
        );
    }
    relay.kill().await;
}

/// Leaves the dead relay's file as a crash right after the commits would,
/// had the writer indexed nothing: every message in the backlog (migration
/// 0015), none in the index. Returns the backlog's length.
fn unindex_everything(path: &std::path::Path) -> usize {
    let file = rusqlite::Connection::open(path).expect("open the file");
    file.execute_batch(
        "BEGIN;
         DELETE FROM message_search;
         INSERT INTO message_search_backlog (conversation_id, seq)
         SELECT conversation_id, seq FROM messages WHERE event IS NULL
         ORDER BY at, conversation_id, seq;
         COMMIT;",
    )
    .expect("unindex");
    let backlog = file
        .query_row(
            "SELECT count(*) FROM message_search_backlog
             WHERE id > coalesce((SELECT value FROM settings
                                  WHERE key = 'search_indexed_upto'), 0)",
            [],
            |row| row.get::<_, i64>(0),
        )
        .expect("count");
    usize::try_from(backlog).expect("a count")
}
