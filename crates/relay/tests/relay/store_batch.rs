//! PostgreSQL's batches of message writes (migration 0015) against the same
//! writes made one at a time: a batch makes its plain writes together, set
//! by set, and the others one by one, and must answer, store and notify
//! exactly what its writes made alone in its order would. These tests call
//! the SQL functions the relay calls, with writes as store/postgres/sends.rs
//! puts them together, on two databases seeded alike. (Only a batch
//! copies messages into the search table.)

use kefu_relay::cluster::{CHANGES_CHANNEL, MAX_PAYLOAD};
use kefu_relay::store;
use kefu_testkit::TestDatabase;
use serde_json::{Value, json};
use sqlx::postgres::{PgListener, PgPool};

/// A database with the relay's schema and the rows the writes below find.
async fn seeded() -> Option<(TestDatabase, PgPool)> {
    let database = TestDatabase::create().await?;
    store::open(&database.url, None)
        .await
        .expect("open PostgreSQL")
        .close()
        .await;
    let pool = PgPool::connect(&database.url).await.expect("connect");
    for statement in SEED {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    Some((database, pool))
}

/// Conversations that already hold messages (their counters, previews and
/// read marks are where a batch starts from), and one agent read mark
/// ahead of what the batch writes, which must stay.
const SEED: &[&str] = &[
    "INSERT INTO agents (id, name, role, token_hash, created_at) VALUES
         ('a1', 'Ann', 'agent', 'h1', 0), ('a2', 'Bo', 'agent', 'h2', 0),
         ('a3', 'Cy', 'admin', 'h3', 0)",
    "INSERT INTO visitors (id, name, created_at, updated_at) VALUES
         ('v1', 'Vera', 0, 0), ('v2', NULL, 0, 0), ('v3', 'Tom', 0, 0), ('v4', 'Uma', 0, 0),
         ('v5', 'Old', 0, 0), ('v6', 'Sam', 0, 0), ('v7', '  ', 0, 0), ('v9', 'Ida', 0, 0),
         ('v10', 'Jo', 0, 0), ('v11', 'Kim', 0, 0)",
    "INSERT INTO conversations (id, visitor_id, status, assignee, last_seq, unread,
                                visitor_messages, agent_read_seq, preview, waiting_since,
                                created_at, updated_at)
     VALUES ('c1', 'v1', 'active', 'a1', 3, 2, 2, 1, 'c1 before', NULL, 0, 0),
            ('c2', 'v2', 'active', 'a1', 5, 1, 3, 4, 'c2 before', NULL, 0, 0),
            ('c3', 'v3', 'waiting', NULL, 0, 0, 0, 0, '', 0, 0, 0),
            ('c4', 'v4', 'resolved', 'a1', 0, 0, 0, 0, '', NULL, 0, 0),
            ('c5', 'v5', 'active', 'a1', 0, 0, 0, 0, '', NULL, 0, 0),
            ('c6', 'v6', 'active', 'a1', 1, 1, 1, 0, 'sent before', NULL, 0, 0),
            ('c7', 'v7', 'waiting', NULL, 0, 0, 0, 0, '', 0, 0, 0),
            ('c9', 'v9', 'active', 'a1', 2, 1, 1, 1, 'c9 kept', NULL, 0, 0),
            ('c10', 'v10', 'active', 'a1', 0, 0, 0, 0, '', NULL, 0, 0),
            ('c11', 'v11', 'waiting', NULL, 4, 3, 3, 1, 'c11 before', 0, 0, 0)",
    "INSERT INTO agent_reads (agent_id, conversation_id, read_seq, visitor_messages)
     VALUES ('a1', 'c1', 1, 1), ('a1', 'c2', 100, 9)",
    "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                           author_name, text, at)
     VALUES ('c6', 1, 'm-sent', 'sent', 'visitor', 'v6', 'Sam', 'sent before', 0)",
];

/// What the store's rule for a reply decides for agent `a1` (an agent,
/// not an admin) in each state store/rules.rs `states` lists; a note by
/// `a2`, or admin `a3`'s reply, is allowed wherever the conversation is
/// open.
const REPLY: [&str; 6] = ["assign", "assign", "refuse", "proceed", "refuse", "refuse"];
const NOTE: [&str; 6] = [
    "proceed", "proceed", "proceed", "proceed", "refuse", "refuse",
];

fn visitor(n: u32, visitor_id: &str, name: Option<&str>) -> Value {
    json!({
        "kind": "visitor", "visitor_id": visitor_id, "client_id": format!("w{n}"),
        "message_id": format!("m{n}"), "event_id": format!("e{n}"),
        "conversation_id": format!("new{n}"), "preview": format!("visitor {n}"),
        "text": format!("visitor {n}"), "at": 1000 + n, "default_name": format!("Visitor {visitor_id}"),
        "name": name, "email": null, "page_url": null, "page_title": null, "referrer": null,
        "lang": null, "user_agent": null, "address": null, "attachments": [], "origin": n,
    })
}

fn agent(n: u32, agent_id: &str, conversation_id: &str, internal: bool) -> Value {
    json!({
        "kind": "agent", "conversation_id": conversation_id, "agent_id": agent_id,
        "agent_name": agent_id.to_uppercase(), "client_id": format!("w{n}"),
        "message_id": format!("m{n}"), "preview": format!("agent {n}"),
        "text": format!("agent {n}"), "internal": internal, "link": null, "at": 1000 + n,
        "attachments": [], "decisions": if internal { NOTE } else { REPLY }, "origin": n,
    })
}

/// Writes to eleven conversations, interleaved: plain ones (messages,
/// replies and notes to conversations that go on, only notes to one, an
/// admin's reply to a waiting one, a visitor without a name, a message
/// too long for its notification) and, each making its conversation's
/// writes go one by one, a claim, a reopen, a new name, a resend, a
/// message sent twice in the batch and a visitor's first message.
fn writes() -> Vec<Value> {
    let mut resend = visitor(13, "v6", None);
    resend["client_id"] = json!("sent");
    // Too long to carry in its notification, which then names it only.
    let mut long = visitor(18, "v2", None);
    long["text"] = json!("x".repeat(MAX_PAYLOAD));
    // Sent twice in the batch: the second is a resend of the first.
    let mut twice = visitor(22, "v10", None);
    twice["client_id"] = json!("w21");
    let mut admin = agent(23, "a3", "c11", false);
    admin["decisions"] = json!(NOTE);
    vec![
        visitor(1, "v1", None),
        agent(2, "a1", "c1", false),
        visitor(3, "v7", None),
        visitor(4, "v1", None),
        agent(5, "a2", "c1", true),
        visitor(6, "v1", Some("Vera")),
        agent(7, "a1", "c2", false),
        agent(8, "a1", "c2", false),
        visitor(9, "v3", None),
        agent(10, "a1", "c3", false),
        visitor(11, "v4", None),
        visitor(12, "v5", Some("New")),
        resend,
        visitor(14, "v6", None),
        agent(15, "a1", "c2", true),
        visitor(16, "v2", None),
        visitor(17, "v8", Some("Eve")),
        long,
        agent(19, "a2", "c9", true),
        visitor(21, "v10", None),
        agent(20, "a2", "c9", true),
        twice,
        admin,
    ]
}

/// The writes that are not plain: those of conversations c3 (claimed),
/// c4 (reopened), c5 (new name), c6 (resend), c10 (sent twice) and v8's
/// first; the other fourteen are.
const MADE_ONE_BY_ONE: i64 = 9;

/// Everything the writes can change, as JSON text to compare.
async fn contents(pool: &PgPool) -> Vec<String> {
    let mut contents = Vec::new();
    for (table, order) in [
        ("conversations", "id"),
        ("visitors", "id"),
        ("messages", "conversation_id, seq"),
        ("agent_reads", "agent_id, conversation_id"),
    ] {
        let rows: String = sqlx::query_scalar(&format!(
            "SELECT coalesce(json_agg(t ORDER BY {order})::TEXT, '[]') FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .expect(table);
        contents.push(format!("{table}: {rows}"));
    }
    contents
}

async fn listen(database: &TestDatabase) -> PgListener {
    let mut listener = PgListener::connect(&database.url).await.expect("listen");
    listener.listen(CHANGES_CHANNEL).await.expect("listen");
    listener
}

/// The messages a search finds, and those it should: every message but
/// events, except the one the seed stored without its search row.
async fn searched(pool: &PgPool) -> (Vec<String>, Vec<String>) {
    const COLUMNS: &str =
        "conversation_id || '/' || seq || '/' || internal || '/' || at || '/' || text";
    let of = |query: String| async move {
        let rows: Vec<String> = sqlx::query_scalar(&query)
            .fetch_all(pool)
            .await
            .expect("searched");
        rows
    };
    (
        of(format!(
            "SELECT {COLUMNS} FROM message_search ORDER BY conversation_id, seq"
        ))
        .await,
        of(format!(
            "SELECT {COLUMNS} FROM messages WHERE event IS NULL AND id <> 'm-sent'
             ORDER BY conversation_id, seq"
        ))
        .await,
    )
}

/// The notifications of the writes committed so far, ordered by
/// conversation and sequence number (a batch sends those of its plain
/// writes first): those that came before one sent now.
async fn notifications(pool: &PgPool, listener: &mut PgListener) -> Vec<String> {
    const MARK: &str = "\"all before\"";
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(MARK)
        .execute(pool)
        .await
        .expect("notify");
    let mut payloads = Vec::new();
    loop {
        let notification = listener.recv().await.expect("notification");
        if notification.payload() == MARK {
            break;
        }
        payloads.push(notification.payload().to_owned());
    }
    payloads.sort_by_key(|payload| {
        let payload: Value = serde_json::from_str(payload).expect("JSON payload");
        (
            payload["conversation_id"].to_string(),
            payload["seq"].as_u64(),
        )
    });
    payloads
}

fn max_payload() -> i32 {
    i32::try_from(MAX_PAYLOAD).expect("payload size")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_makes_what_its_writes_make_one_at_a_time() {
    let Some((batched_db, batched)) = seeded().await else {
        return;
    };
    let (alone_db, alone) = seeded().await.expect("a second database");
    let mut batched_listener = listen(&batched_db).await;
    let mut alone_listener = listen(&alone_db).await;

    // The batch, in a transaction of its own that counts which writes it
    // made one by one.
    let mut transaction = batched.begin().await.expect("begin");
    sqlx::query("SET LOCAL track_functions = 'pl'")
        .execute(&mut *transaction)
        .await
        .expect("track functions");
    let answers: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(m)::TEXT FROM kefu_send_batch($1::jsonb, $2, 'node', $3) AS m",
    )
    .bind(Value::Array(writes()).to_string())
    .bind(CHANGES_CHANNEL)
    .bind(max_payload())
    .fetch_all(&mut *transaction)
    .await
    .expect("the batch");
    let one_by_one: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(calls), 0)::BIGINT FROM pg_stat_xact_user_functions
         WHERE funcname = 'kefu_send_one'",
    )
    .fetch_one(&mut *transaction)
    .await
    .expect("function calls");
    transaction.commit().await.expect("commit");

    let mut answers_alone = Vec::new();
    for write in writes() {
        let answer: String = sqlx::query_scalar(
            "SELECT row_to_json(kefu_send_one($1::jsonb, $2, 'node', $3))::TEXT",
        )
        .bind(write.to_string())
        .bind(CHANGES_CHANNEL)
        .bind(max_payload())
        .fetch_one(&alone)
        .await
        .expect("a write alone");
        answers_alone.push(answer);
    }

    assert_eq!(one_by_one, MADE_ONE_BY_ONE);
    assert_eq!(answers, answers_alone);
    for (table, table_alone) in contents(&batched).await.iter().zip(contents(&alone).await) {
        assert_eq!(*table, table_alone);
    }
    let (found, stored) = searched(&batched).await;
    assert_eq!(found, stored);
    assert_eq!(found.len(), 21, "each new message once; not the event");
    let sent = notifications(&batched, &mut batched_listener).await;
    let sent_alone = notifications(&alone, &mut alone_listener).await;
    // Each of the 21 new messages, and the reopen event, told once; the
    // long one by name only.
    assert_eq!(sent.len(), 22);
    assert_eq!(
        sent.iter()
            .filter(|sent| !sent.contains("\"rows\""))
            .count(),
        1
    );
    assert_eq!(sent, sent_alone);

    batched_db.drop_database().await;
    alone_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_undoes_its_whole_batch() {
    let Some((database, pool)) = seeded().await else {
        return;
    };
    // A plain message, then a reply by an agent who does not hold the
    // conversation: the rule refuses it in state 2 (active, not theirs).
    let writes = json!([visitor(1, "v1", None), agent(2, "a2", "c1", false)]);
    let refused = sqlx::query("SELECT * FROM kefu_send_batch($1::jsonb, $2, 'node', $3)")
        .bind(writes.to_string())
        .bind(CHANGES_CHANNEL)
        .bind(max_payload())
        .fetch_all(&pool)
        .await
        .expect_err("refused");
    let refused = refused.as_database_error().expect("a database error");
    assert_eq!(refused.code().as_deref(), Some("KF409"));
    assert_eq!(refused.message(), "2");
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(messages, 1, "only the seed's");
    database.drop_database().await;
}

/// Makes `batched` in a batch while `held`, a write to the same
/// conversation made alone, holds the conversation's row lock; commits
/// `held` once the batch waits for that lock. The batched message's author.
async fn batched_behind(pool: &PgPool, held: Value, batched: Value) -> String {
    let mut holder = pool.begin().await.expect("begin");
    sqlx::query("SELECT kefu_send_one($1::jsonb, $2, 'node', $3)")
        .bind(held.to_string())
        .bind(CHANGES_CHANNEL)
        .bind(max_payload())
        .execute(&mut *holder)
        .await
        .expect("the held write");
    let batch = tokio::spawn({
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT author_name FROM kefu_send_batch($1::jsonb, $2, 'node', $3)",
            )
            .bind(json!([batched]).to_string())
            .bind(CHANGES_CHANNEL)
            .bind(max_payload())
            .fetch_one(&pool)
            .await
        }
    });
    // PostgreSQL tells no one when a statement starts waiting: ask it.
    let mut polls = 0;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("activity");
        if waiting == 1 {
            break;
        }
        polls += 1;
        assert!(polls < 1_000, "the batch never waited for the lock");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    holder.commit().await.expect("commit");
    batch.await.expect("batch task").expect("the batch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sees_the_visitor_as_the_write_before_it_left_them() {
    let Some((database, pool)) = seeded().await else {
        return;
    };
    // v5 (named "Old") renames themselves in a write that commits while a
    // batch waits with their next message: that message is the new name's.
    let author = batched_behind(&pool, visitor(1, "v5", Some("New")), visitor(2, "v5", None)).await;
    assert_eq!(author, "New");
    // v1 ("Vera") renames themselves, and a page still showing the old name
    // sends it with its message: as made alone, the old name is back.
    let author = batched_behind(
        &pool,
        visitor(3, "v1", Some("Vee")),
        visitor(4, "v1", Some("Vera")),
    )
    .await;
    assert_eq!(author, "Vera");
    let name: String = sqlx::query_scalar("SELECT name FROM visitors WHERE id = 'v1'")
        .fetch_one(&pool)
        .await
        .expect("visitor");
    assert_eq!(name, "Vera");
    database.drop_database().await;
}
