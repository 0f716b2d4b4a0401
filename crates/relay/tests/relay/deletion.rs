//! Deleting conversations on a running relay, over real sockets:
//! `kefu-relay delete-conversation` (another process) removes a resolved
//! conversation with its files, while the relay serves; and the retention
//! setting makes the relay delete old resolved conversations itself.

use std::time::Duration;

use kefu_protocol::agent::search::SearchRequest;
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus};
use kefu_protocol::{ErrorCode, Message};
use kefu_testkit::{Client, PATIENCE, TestDatabase, TestRelay};

use crate::files::{PDF, blob_count, blobs_under, download, link, upload, uploaded};
use crate::support::{run_cli, stderr, stdout};

/// The conversations a search finds.
async fn found(agent: &mut Client<AgentEvent>, text: &str) -> Vec<String> {
    agent
        .send(&AgentRequest::Search(SearchRequest {
            query: text.into(),
            ..SearchRequest::default()
        }))
        .await;
    agent
        .until(|event| match event {
            AgentEvent::SearchResults(results) => Some(results),
            _ => None,
        })
        .await
        .hits
        .into_iter()
        .map(|hit| hit.conversation.id)
        .collect()
}

/// Asks for a conversation's history: its messages, or the error.
async fn history(
    agent: &mut Client<AgentEvent>,
    conversation_id: &str,
) -> Result<Vec<Message>, ErrorCode> {
    agent
        .send(&AgentRequest::History {
            conversation_id: conversation_id.into(),
            before_seq: None,
            limit: None,
        })
        .await;
    agent
        .until(|event| match event {
            AgentEvent::History(page) => Some(Ok(page.messages)),
            AgentEvent::Error(error) => Some(Err(error.code)),
            _ => None,
        })
        .await
}

/// An agent made as `kefu-relay agent add` makes one, in another process:
/// a second store opened in this process and closed would drop the
/// relay's own locks on the SQLite file (POSIX locks are per process), and
/// its close would then take itself for the last connection and remove
/// the WAL the relay still writes.
pub(crate) async fn signed_in_agent(relay: &TestRelay, name: &str) -> Client<AgentEvent> {
    let output = run_cli(&["agent", "add", name, "--database", &relay.database], &[]).await;
    assert!(output.status.success(), "{output:?}");
    relay.signed_in_agent(stdout(&output).trim()).await
}

pub(crate) async fn resolve(agent: &mut Client<AgentEvent>, conversation_id: &str) {
    agent
        .send(&AgentRequest::Resolve {
            conversation_id: conversation_id.into(),
        })
        .await;
    agent
        .summary_where(conversation_id, |s| {
            s.status == ConversationStatus::Resolved
        })
        .await;
}

#[tokio::test]
async fn the_cli_deletes_a_resolved_conversation_and_its_files_while_the_relay_serves() {
    let relay = TestRelay::start().await;
    let mut agent = signed_in_agent(&relay, "alice").await;

    let (mut leaving, leaving_hello) = relay.new_visitor().await;
    let shared =
        uploaded(&upload(relay.addr, &leaving_hello.token, "name=a.pdf", PDF.to_vec()).await);
    let own = uploaded(
        &upload(
            relay.addr,
            &leaving_hello.token,
            "name=b.txt",
            b"only mine".to_vec(),
        )
        .await,
    );
    let gone = leaving
        .send_files("c1", vec![shared.id.clone(), own.id.clone()])
        .await
        .conversation_id;
    leaving.say("c2", "zebrafish parcel").await;

    let (mut staying, staying_hello) = relay.new_visitor().await;
    // The same bytes: the same blob.
    let same =
        uploaded(&upload(relay.addr, &staying_hello.token, "name=c.pdf", PDF.to_vec()).await);
    let kept = staying
        .send_files("c1", vec![same.id.clone()])
        .await
        .conversation_id;
    staying.say("c2", "zebrafish too").await;
    assert_eq!(blob_count(&relay), 2);

    let delete = ["delete-conversation", "--database", &relay.database, &gone];
    let refused = run_cli(&delete, &[]).await;
    assert!(!refused.status.success(), "open: {refused:?}");
    assert!(
        stderr(&refused).contains("still open"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(history(&mut agent, &gone).await.map(|m| m.len()), Ok(2));

    resolve(&mut agent, &gone).await;
    let output = run_cli(&delete, &[]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        stderr(&output).contains("deleted 1 conversations with their visitors; removed 1 files"),
        "{}",
        stderr(&output)
    );

    assert_eq!(history(&mut agent, &gone).await, Err(ErrorCode::NotFound));
    assert_eq!(found(&mut agent, "zebrafish").await, [kept]);
    for file in [&shared, &own] {
        let answer = link(relay.addr, &leaving_hello.token, &file.id).await;
        assert_eq!(answer.status, 404, "{}", answer.body);
    }
    assert_eq!(blob_count(&relay), 1, "the shared blob stays");
    let download = download(relay.addr, &staying_hello.token, &same.id).await;
    assert_eq!(download.status, 200);
    assert_eq!(&download.bytes[..], PDF);

    // The visitor, still connected, starts afresh; the relay's writer
    // does not write to the conversation that is gone.
    let again = leaving.say("c3", "hello again").await;
    assert_ne!(again.conversation_id, gone);
    assert_eq!(again.seq, 1);
    // An erasure request names the visitor.
    resolve(&mut agent, &again.conversation_id).await;
    let visitor = &leaving_hello.visitor_id;
    let erased = run_cli(
        &["delete-visitor", "--database", &relay.database, visitor],
        &[],
    )
    .await;
    assert!(erased.status.success(), "{erased:?}");
    assert_eq!(
        history(&mut agent, &again.conversation_id).await,
        Err(ErrorCode::NotFound)
    );
    let unknown = run_cli(
        &["delete-conversation", "--database", &relay.database, "nope"],
        &[],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("nope: no such conversation"));
}

#[tokio::test]
async fn with_a_retention_a_sqlite_relay_deletes_old_resolved_conversations_itself() {
    let data = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", data.path().join("kefu.db").display());
    retention_sweeps(&database, &data.path().join("files")).await;
}

#[tokio::test]
async fn with_a_retention_a_postgres_relay_deletes_old_resolved_conversations_itself() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let files = tempfile::tempdir().expect("files dir");
    retention_sweeps(&database.url, files.path()).await;
    database.drop_database().await;
}

/// A relay restarted with a tiny retention deletes, in its sweep at
/// start, the resolved conversation and its file, and keeps the open one.
async fn retention_sweeps(database: &str, files: &std::path::Path) {
    let files_dir = files.to_owned();
    let relay = TestRelay::on_database(database, |config| {
        config.files_dir = Some(files_dir.clone());
    })
    .await;
    let mut agent = signed_in_agent(&relay, "alice").await;
    let (mut old, old_hello) = relay.new_visitor().await;
    let file = uploaded(&upload(relay.addr, &old_hello.token, "name=a.pdf", PDF.to_vec()).await);
    let resolved = old
        .send_files("c1", vec![file.id.clone()])
        .await
        .conversation_id;
    resolve(&mut agent, &resolved).await;
    let (mut waiting, _) = relay.new_visitor().await;
    let open = waiting.say("c1", "still here").await.conversation_id;
    drop((agent, old, waiting));
    relay.stop().await;
    assert_eq!(blobs_under(files), 1);

    // Everything resolved is older than a millisecond by now.
    let _relay = TestRelay::on_database(database, |config| {
        config.files_dir = Some(files_dir.clone());
        config.retention = Some(Duration::from_millis(1));
    })
    .await;
    tokio::time::timeout(PATIENCE, async {
        while blobs_under(files) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the sweep at start removes the file");
    // Rows go before blobs: the conversation is gone by now.
    let store = kefu_relay::store::open(database, None).await.expect("open");
    assert!(store.conversation(&resolved).await.expect("read").is_none());
    assert!(store.conversation(&open).await.expect("read").is_some());
    assert!(store.file_digests().await.expect("digests").is_empty());
    store.close().await;
}
