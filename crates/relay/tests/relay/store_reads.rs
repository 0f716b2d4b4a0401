//! Read state per agent, on both backends: each agent's read position is
//! its own, and only the agent who answers the visitor moves the mark the
//! visitor sees ("seen", and the summary's `unread`).

use std::sync::Arc;

use kefu_protocol::agent::{AgentReadMark, Role};
use kefu_relay::store::{self, Reader, Store};
use kefu_testkit::TestDatabase;

use crate::store::{agent, agent_send, new_conversation, stored_summary, visitor_send};

/// The agent's own marks, as its `welcome` gives them.
async fn marks(store: &Arc<dyn Store>, agent_id: &str) -> Vec<(u64, u64)> {
    let mut marks: Vec<AgentReadMark> = store.read_marks(agent_id).await.expect("marks");
    marks.sort_by(|a, b| a.conversation_id.cmp(&b.conversation_id));
    marks
        .into_iter()
        .map(|mark| (mark.up_to_seq, mark.visitor_messages))
        .collect()
}

backend_test!(
    sqlite_each_agent_reads_for_itself,
    postgres_each_agent_reads_for_itself,
    each_agent_reads_for_itself
);
async fn each_agent_reads_for_itself(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let bob = agent(&store, "bob", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "one").await;
    for client_id in ["c2", "c3"] {
        store
            .visitor_send(visitor_send("v1", client_id, "more"))
            .await
            .expect("send");
    }
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!((summary.visitor_messages, summary.unread), (3, 3));

    // Bob peeks at the waiting conversation: his own count is cleared,
    // nobody else's is, and the visitor's "seen" does not move.
    store
        .mark_read(&conversation, Reader::Agent(&bob), 3)
        .await
        .expect("peek");
    assert_eq!(marks(&store, &bob.id).await, [(3, 3)]);
    assert_eq!(summary.unread_for(None), 3, "alice never read it");
    assert!(marks(&store, &alice.id).await.is_empty());
    assert_eq!(stored_summary(&store, &conversation).await.unread, 3);

    // Alice takes it and reads part of it: that is what the visitor sees.
    store.claim(&conversation, &alice).await.expect("claim");
    store
        .mark_read(&conversation, Reader::Agent(&alice), 2)
        .await
        .expect("read");
    assert_eq!(marks(&store, &alice.id).await, [(2, 2)]);
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.unread, 1, "the assignee's read counts");
    assert_eq!(marks(&store, &bob.id).await, [(3, 3)], "bob's is his own");

    // Bob is no longer the one answering: his read moves only his mark.
    // (The claim's timeline event took seq 4; "hello?" is 5.)
    store
        .visitor_send(visitor_send("v1", "c4", "hello?"))
        .await
        .expect("send");
    store
        .mark_read(&conversation, Reader::Agent(&bob), 5)
        .await
        .expect("read");
    assert_eq!(marks(&store, &bob.id).await, [(5, 4)]);
    assert_eq!(stored_summary(&store, &conversation).await.unread, 2);

    // A reply marks the replier's own position too.
    store
        .agent_send(agent_send(&alice, &conversation, "a1", false))
        .await
        .expect("reply");
    assert_eq!(marks(&store, &alice.id).await, [(6, 4)]);
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!((summary.unread, summary.unread_for(None)), (0, 4));
}

backend_test!(
    sqlite_a_waiting_chat_is_seen_by_whoever_replied_in_it,
    postgres_a_waiting_chat_is_seen_by_whoever_replied_in_it,
    a_waiting_chat_is_seen_by_whoever_replied_in_it
);
async fn a_waiting_chat_is_seen_by_whoever_replied_in_it(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let bob = agent(&store, "bob", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "one").await;
    store
        .agent_send(agent_send(&alice, &conversation, "a1", false))
        .await
        .expect("reply");
    store.resolve(&conversation, &alice).await.expect("resolve");
    // The visitor comes back: waiting again, nobody's. (The resolve and the
    // reopen are timeline events at seqs 3 and 4; the message is 5.)
    store
        .visitor_send(visitor_send("v1", "c2", "one more thing"))
        .await
        .expect("send");
    assert_eq!(stored_summary(&store, &conversation).await.unread, 1);
    store
        .mark_read(&conversation, Reader::Agent(&bob), 5)
        .await
        .expect("peek");
    assert_eq!(
        stored_summary(&store, &conversation).await.unread,
        1,
        "bob never answered this visitor"
    );
    store
        .mark_read(&conversation, Reader::Agent(&alice), 5)
        .await
        .expect("read");
    assert_eq!(stored_summary(&store, &conversation).await.unread, 0);
}

/// Closes the store and opens the database again, as a relay restart does.
async fn read_marks_survive_a_reopen(url: &str) {
    let store = store::open(url, None).await.expect("open");
    let alice = agent(&store, "alice", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "one").await;
    store
        .visitor_send(visitor_send("v1", "c2", "two"))
        .await
        .expect("send");
    store
        .mark_read(&conversation, Reader::Agent(&alice), 1)
        .await
        .expect("read");
    store.close().await;

    let store = store::open(url, None).await.expect("reopen");
    assert_eq!(marks(&store, &alice.id).await, [(1, 1)]);
    let summary = stored_summary(&store, &conversation).await;
    let mark = store.read_marks(&alice.id).await.expect("marks");
    assert_eq!(summary.unread_for(mark.first()), 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_marks_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    read_marks_survive_a_reopen(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_marks_survive_a_reopen() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    read_marks_survive_a_reopen(&database.url).await;
    database.drop_database().await;
}

/// A database from before read marks, as migrations 0001–0003 (SQLite) or
/// 0001 (PostgreSQL) left it: alice has the conversation and had read one
/// of the visitor's two messages, when marks were shared.
const BEFORE_READ_MARKS: &str = "
    INSERT INTO agents (id, name, role, token_hash, created_at)
        VALUES ('a-alice', 'alice', 'agent', 'hash-of-alice', 0);
    INSERT INTO visitors (id, created_at, updated_at) VALUES ('v1', 0, 0);
    INSERT INTO conversations (id, visitor_id, status, assignee, last_seq, unread,
                               agent_read_seq, created_at, updated_at)
        VALUES ('k1', 'v1', 'active', 'a-alice', 3, 1, 2, 0, 0);
    INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                          author_name, text, at)
        VALUES ('k1', 1, 'm1', 'c1', 'visitor', 'v1', 'Ann', 'one', 0),
               ('k1', 2, 'm2', 'a1', 'agent', 'a-alice', 'alice', 'hi', 0),
               ('k1', 3, 'm3', 'c2', 'visitor', 'v1', 'Ann', 'two', 0);";

/// The migration counts the visitor's messages and gives the assignee the
/// old shared mark.
async fn upgraded_marks_are_the_assignees(url: &str) {
    let store = store::open(url, None).await.expect("migrate");
    let summary = stored_summary(&store, "k1").await;
    assert_eq!((summary.visitor_messages, summary.unread), (2, 1));
    assert_eq!(marks(&store, "a-alice").await, [(2, 1)]);
    let mark = store.read_marks("a-alice").await.expect("marks");
    assert_eq!(summary.unread_for(mark.first()), 1);
    store.close().await;
}

/// Runs only the first `count` of a directory's migrations.
async fn migrate_partly<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, dir: &str, count: usize)
where
    DB::Connection: sqlx::migrate::Migrate,
{
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut migrator = sqlx::migrate::Migrator::new(path)
        .await
        .expect("migrations");
    migrator.migrations = migrator.migrations[..count].to_vec().into();
    migrator.run(pool).await.expect("old migrations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgraded_marks_are_the_assignees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kefu.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("old database");
    migrate_partly(&pool, "migrations/sqlite", 3).await;
    sqlx::raw_sql(BEFORE_READ_MARKS)
        .execute(&pool)
        .await
        .expect("old rows");
    pool.close().await;
    upgraded_marks_are_the_assignees(&format!("sqlite://{}", path.display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgraded_marks_are_the_assignees() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&database.url)
        .await
        .expect("old database");
    migrate_partly(&pool, "migrations/postgres", 1).await;
    sqlx::raw_sql(BEFORE_READ_MARKS)
        .execute(&pool)
        .await
        .expect("old rows");
    pool.close().await;
    upgraded_marks_are_the_assignees(&database.url).await;
    database.drop_database().await;
}
