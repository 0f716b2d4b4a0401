//! The steps PostgreSQL writes are made of, each inside the caller's
//! transaction (or, to find a resend's original, on the pool).

use kefu_protocol::agent::ConversationSummary;
use kefu_protocol::{AuthorKind, Message, Seq};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

use super::super::rows::{
    MESSAGE_SELECT, MessageRow, attachments_to_sql, count_from_sql, count_to_sql, event_to_sql,
    link_to_sql, seq_from_sql, seq_to_sql, status_from_sql,
};
use super::super::rules::ConversationState;
use super::super::{StoreError, VisitorDetails, now_millis, to_millis};
use super::reads::READS;

pub(super) type Tx = Transaction<'static, Postgres>;

/// Begins a transaction in a task of its own, so that a caller that goes
/// away meanwhile (a client disconnecting drops its request's future)
/// cannot leave the pooled connection inside a `BEGIN` that sqlx does not
/// know of (sqlx 0.8 counts the transaction only once `BEGIN` is answered,
/// sqlx issue 4385): the next borrower's `BEGIN` then warned `there is
/// already a transaction in progress`, and an error in that leftover
/// transaction failed every later statement on the connection.
pub(super) async fn begin(pool: &PgPool) -> Result<Tx, StoreError> {
    let pool = pool.clone();
    detached(async move { pool.begin().await }).await
}

/// Commits in a task of its own. A caller dropped while `COMMIT` was in
/// flight used to drop the transaction still marked open, so sqlx sent a
/// `ROLLBACK` after the `COMMIT` (`there is no transaction in progress`).
/// Detached, the commit finishes, and the write is durable, whether or not
/// anyone still waits for it, as with the SQLite writer.
pub(super) async fn commit(tx: Tx) -> Result<(), StoreError> {
    detached(tx.commit()).await
}

pub(super) async fn detached<T: Send + 'static>(
    step: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::spawn(step).await {
        Ok(result) => result.map_err(StoreError::from),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Only a runtime shutting down cancels a spawned task.
        Err(_) => Err(StoreError::Closed),
    }
}

pub(super) async fn existing_message<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    kind: AuthorKind,
    author_id: &str,
    client_id: &str,
) -> Result<Option<Message>, StoreError> {
    let row: Option<MessageRow> = sqlx::query_as(&format!(
        "{MESSAGE_SELECT} WHERE author_kind = $1 AND author_id = $2 AND client_id = $3"
    ))
    .bind(kind.as_str())
    .bind(author_id)
    .bind(client_id)
    .fetch_optional(executor)
    .await?;
    row.map(Message::try_from).transpose()
}

/// Inserts a message or a timeline event as it is.
pub(super) async fn insert_row(tx: &mut Tx, message: &Message) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                               author_name, text, internal, at, event, link, attachments)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&message.conversation_id)
    .bind(seq_to_sql(message.seq))
    .bind(&message.id)
    .bind(&message.client_id)
    .bind(message.author.kind.as_str())
    .bind(&message.author.id)
    .bind(&message.author.name)
    .bind(&message.text)
    .bind(message.internal)
    .bind(to_millis(message.at))
    .bind(event_to_sql(message.event.as_deref()))
    .bind(link_to_sql(message.link.as_deref()))
    .bind(attachments_to_sql(&message.attachments))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The visitor's conversation, if they ever wrote, read in `tx`.
pub(super) async fn visitor_conversation(
    tx: &mut Tx,
    visitor_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(READS.visitor_conversation)
        .bind(visitor_id)
        .fetch_optional(&mut **tx)
        .await
}

/// Locks the conversation row for the rest of the transaction.
pub(super) async fn lock_conversation(
    tx: &mut Tx,
    conversation_id: &str,
) -> Result<ConversationState, StoreError> {
    let row = sqlx::query(
        "SELECT status, assignee, last_seq FROM conversations WHERE id = $1 FOR UPDATE",
    )
    .bind(conversation_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("conversation"))?;
    Ok(ConversationState {
        status: status_from_sql(&row.try_get::<String, _>("status")?)?,
        assignee: row.try_get("assignee")?,
        last_seq: seq_from_sql(row.try_get("last_seq")?),
    })
}

pub(super) async fn require_summary(
    tx: &mut Tx,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    READS
        .summary(&mut **tx, conversation_id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))
}

pub(super) async fn assign(
    tx: &mut Tx,
    conversation_id: &str,
    agent_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE conversations SET status = 'active', assignee = $2, waiting_since = NULL,
         updated_at = $3 WHERE id = $1",
    )
    .bind(conversation_id)
    .bind(agent_id)
    .bind(to_millis(now_millis()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn upsert_visitor(
    tx: &mut Tx,
    visitor_id: &str,
    details: &VisitorDetails,
    now_ms: i64,
) -> Result<(), StoreError> {
    let profile = &details.profile;
    // Migration 0012's, which a visitor's message makes too.
    sqlx::query("SELECT kefu_upsert_visitor($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(visitor_id)
        .bind(&profile.name)
        .bind(&profile.email)
        .bind(&profile.page_url)
        .bind(&profile.page_title)
        .bind(&profile.referrer)
        .bind(&profile.lang)
        .bind(&details.user_agent)
        .bind(&details.address)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Moves an agent's own read mark forward to `seq`, which covers
/// `visitor_messages` of the visitor's messages; whether it moved.
pub(super) async fn move_agent_mark(
    tx: &mut Tx,
    agent_id: &str,
    conversation_id: &str,
    seq: Seq,
    visitor_messages: u64,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "INSERT INTO agent_reads (agent_id, conversation_id, read_seq, visitor_messages)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (agent_id, conversation_id) DO UPDATE
         SET read_seq = excluded.read_seq, visitor_messages = excluded.visitor_messages
         WHERE agent_reads.read_seq < excluded.read_seq",
    )
    .bind(agent_id)
    .bind(conversation_id)
    .bind(seq_to_sql(seq))
    .bind(count_to_sql(visitor_messages))
    .execute(&mut **tx)
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// The visitor's messages at or below `seq`.
pub(super) async fn visitor_messages_up_to(
    tx: &mut Tx,
    conversation_id: &str,
    seq: Seq,
) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages
         WHERE conversation_id = $1 AND author_kind = 'visitor' AND seq <= $2",
    )
    .bind(conversation_id)
    .bind(seq_to_sql(seq))
    .fetch_one(&mut **tx)
    .await?;
    Ok(count_from_sql(count))
}

/// Whether the agent has replied (not just noted) in the conversation.
pub(super) async fn has_replied(
    tx: &mut Tx,
    conversation_id: &str,
    agent_id: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = $1
         AND author_kind = 'agent' AND author_id = $2 AND NOT internal)",
    )
    .bind(conversation_id)
    .bind(agent_id)
    .fetch_one(&mut **tx)
    .await?)
}
