//! The embedded default: one SQLite file in WAL mode.
//!
//! All writes go through one writer task that owns the only writing
//! connection. It takes every request queued at that moment (up to
//! [`MAX_BATCH`]) and applies them in one transaction, each inside its own
//! savepoint so that one refused request does not undo the others, then
//! commits once. With `synchronous = FULL` the commit fsyncs the WAL, so when a
//! request's reply arrives its write survives a crash; and concurrent senders
//! share one fsync instead of queueing for one each (group commit). Being the
//! only writer also makes `seq` allocation and claim races trivially serial.
//! Reads use a separate pool and never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use kefu_protocol::agent::{AgentInfo, ConversationStatus, ConversationSummary, Role};
use kefu_protocol::{Author, AuthorKind, Message, ReadReceipt, Seq};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::rows::{
    AGENT_SELECT, AgentRow, MESSAGE_SELECT, MessageRow, SUMMARY_SELECT, SummaryRow, convert,
    seq_from_sql, seq_to_sql, status_from_sql,
};
use super::rules::{self, ConversationState, Decision};
use super::{
    AgentAccount, AgentSend, Change, Page, Store, StoreError, VisitorDetails, VisitorSend,
    default_visitor_name, now_millis, preview_of, to_millis,
};
use crate::auth;

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;
/// Requests waiting for the writer before senders wait for room.
const WRITE_QUEUE: usize = 4096;
const READ_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// The database file, watched by [`Store::health`].
    path: PathBuf,
    reads: SqlitePool,
    writes: mpsc::Sender<WriteRequest>,
    /// Tells the writer to refuse new writes, commit the queued ones and stop.
    stop_writer: Mutex<Option<oneshot::Sender<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    visitor_secret: Vec<u8>,
}

struct WriteRequest {
    op: WriteOp,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

enum WriteOp {
    VisitorSend(VisitorSend),
    AgentSend(AgentSend),
    Claim {
        conversation_id: String,
        agent: AgentInfo,
    },
    Transfer {
        conversation_id: String,
        by: AgentInfo,
        to_agent: String,
    },
    Resolve {
        conversation_id: String,
        by: AgentInfo,
    },
    MarkRead {
        conversation_id: String,
        reader: AuthorKind,
        up_to_seq: Seq,
    },
    UpdateVisitor {
        visitor_id: String,
        details: VisitorDetails,
    },
    AddAgent {
        name: String,
        role: Role,
        token_hash: String,
    },
    DisableAgent {
        name: String,
    },
}

enum Written {
    Message(Message),
    Summary(ConversationSummary),
    Agent(AgentInfo),
    Done,
}

type Applied = (Written, Option<Change>);

impl SqliteStore {
    pub async fn open(
        path: &Path,
        changes: Option<mpsc::Sender<Change>>,
    ) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: every commit fsyncs the WAL, so an ack survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);

        let reads = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        // Through the pool: sqlx's `Acquire` for a bare connection would make
        // this future not `Send`.
        MIGRATOR.run(&reads).await?;
        let mut writer = options.connect().await?;
        let visitor_secret = load_or_create_secret(&mut writer).await?;

        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let (stop_writer, stop) = oneshot::channel();
        let writer = tokio::spawn(run_writer(writer, queue, stop, changes));
        Ok(SqliteStore {
            path: path.to_owned(),
            reads,
            writes,
            stop_writer: Mutex::new(Some(stop_writer)),
            writer: Mutex::new(Some(writer)),
            visitor_secret,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn write_summary(&self, op: WriteOp) -> Result<ConversationSummary, StoreError> {
        match self.write(op).await? {
            Written::Summary(summary) => Ok(summary),
            _ => Err(StoreError::Corrupt(
                "writer answered with the wrong kind".into(),
            )),
        }
    }

    async fn write_message(&self, op: WriteOp) -> Result<Message, StoreError> {
        match self.write(op).await? {
            Written::Message(message) => Ok(message),
            _ => Err(StoreError::Corrupt(
                "writer answered with the wrong kind".into(),
            )),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn visitor_send(&self, send: VisitorSend) -> Result<Message, StoreError> {
        self.write_message(WriteOp::VisitorSend(send)).await
    }

    async fn agent_send(&self, send: AgentSend) -> Result<Message, StoreError> {
        self.write_message(WriteOp::AgentSend(send)).await
    }

    async fn claim(
        &self,
        conversation_id: &str,
        agent: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError> {
        self.write_summary(WriteOp::Claim {
            conversation_id: conversation_id.to_owned(),
            agent: agent.clone(),
        })
        .await
    }

    async fn transfer(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        to_agent: &str,
    ) -> Result<ConversationSummary, StoreError> {
        self.write_summary(WriteOp::Transfer {
            conversation_id: conversation_id.to_owned(),
            by: by.clone(),
            to_agent: to_agent.to_owned(),
        })
        .await
    }

    async fn resolve(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError> {
        self.write_summary(WriteOp::Resolve {
            conversation_id: conversation_id.to_owned(),
            by: by.clone(),
        })
        .await
    }

    async fn mark_read(
        &self,
        conversation_id: &str,
        reader: AuthorKind,
        up_to_seq: Seq,
    ) -> Result<(), StoreError> {
        self.write(WriteOp::MarkRead {
            conversation_id: conversation_id.to_owned(),
            reader,
            up_to_seq,
        })
        .await
        .map(drop)
    }

    async fn update_visitor(
        &self,
        visitor_id: &str,
        details: VisitorDetails,
    ) -> Result<(), StoreError> {
        self.write(WriteOp::UpdateVisitor {
            visitor_id: visitor_id.to_owned(),
            details,
        })
        .await
        .map(drop)
    }

    async fn visitor_conversation(&self, visitor_id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        let id = sqlx::query_scalar("SELECT id FROM conversations WHERE visitor_id = ?")
            .bind(visitor_id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(id)
    }

    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        load_summary(&mut conn, conversation_id).await
    }

    async fn open_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
            "{SUMMARY_SELECT} WHERE c.status <> 'resolved' ORDER BY c.updated_at"
        ))
        .fetch_all(&mut *conn)
        .await?;
        convert(rows)
    }

    async fn messages(
        &self,
        conversation_id: &str,
        page: Page,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        let internal_filter = if include_internal {
            ""
        } else {
            "AND internal = 0"
        };
        let rows = match page {
            Page::After { after, limit } => {
                sqlx::query_as::<_, MessageRow>(&format!(
                    "{MESSAGE_SELECT} WHERE conversation_id = ? AND seq > ? {internal_filter}
                     ORDER BY seq LIMIT ?"
                ))
                .bind(conversation_id)
                .bind(seq_to_sql(after))
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
            }
            Page::Before { before, limit } => {
                let mut rows = sqlx::query_as::<_, MessageRow>(&format!(
                    "{MESSAGE_SELECT} WHERE conversation_id = ? AND seq < ? {internal_filter}
                     ORDER BY seq DESC LIMIT ?"
                ))
                .bind(conversation_id)
                .bind(before.map_or(i64::MAX, seq_to_sql))
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                rows.reverse();
                rows
            }
        };
        convert(rows)
    }

    async fn add_agent(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
    ) -> Result<AgentInfo, StoreError> {
        match self
            .write(WriteOp::AddAgent {
                name: name.to_owned(),
                role,
                token_hash: token_hash.to_owned(),
            })
            .await?
        {
            Written::Agent(info) => Ok(info),
            _ => Err(StoreError::Corrupt(
                "writer answered with the wrong kind".into(),
            )),
        }
    }

    async fn agents(&self) -> Result<Vec<AgentAccount>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} ORDER BY name"))
            .fetch_all(&mut *conn)
            .await?;
        convert(rows)
    }

    async fn disable_agent(&self, name: &str) -> Result<(), StoreError> {
        self.write(WriteOp::DisableAgent {
            name: name.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn agent_by_token_hash(&self, token_hash: &str) -> Result<Option<AgentInfo>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        let row: Option<AgentRow> = sqlx::query_as(&format!(
            "{AGENT_SELECT} WHERE token_hash = ? AND disabled = 0"
        ))
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row
            .map(AgentAccount::try_from)
            .transpose()?
            .map(|account| account.info))
    }

    async fn visitor_secret(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.visitor_secret.clone())
    }

    async fn conversation_ids(
        &self,
        since: Option<time::OffsetDateTime>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.reads.acquire().await?;
        let ids = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE updated_at >= ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(since.map_or(i64::MIN, to_millis))
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        Ok(ids)
    }

    /// The pool's connections keep a deleted or renamed file open and would
    /// go on answering, so the file itself is checked too.
    async fn health(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let metadata = tokio::fs::metadata(path)
            .await
            .map_err(|error| unavailable(path, error))?;
        if !metadata.is_file() {
            return Err(unavailable(path, "not a regular file"));
        }
        tokio::fs::File::open(path)
            .await
            .map_err(|error| unavailable(path, error))?;
        sqlx::query("SELECT 1").execute(&self.reads).await?;
        Ok(())
    }

    /// `VACUUM INTO` copies one read transaction's snapshot: every commit
    /// before it started, nothing after, and writers are not blocked.
    async fn backup(&self, path: &Path) -> Result<(), StoreError> {
        if tokio::fs::try_exists(path).await.unwrap_or(true) {
            return Err(StoreError::Conflict(format!(
                "{} already exists; a backup never overwrites a file",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| unavailable(path, "not a UTF-8 path"))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.reads)
            .await?;
        // SQLite does not sync the copy; a backup must survive a crash too.
        let copy = tokio::fs::File::open(path)
            .await
            .map_err(|error| unavailable(path, error))?;
        copy.sync_all()
            .await
            .map_err(|error| unavailable(path, error))
    }

    async fn close(&self) {
        let stop = self
            .stop_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(writer) = writer
            && let Err(error) = writer.await
        {
            tracing::error!(%error, "the store writer failed");
        }
        self.reads.close().await;
    }
}

fn unavailable(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{}: {why}", path.display()))
}

/// The writer task: batches queued requests into one transaction each.
async fn run_writer(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<WriteRequest>,
    stop: oneshot::Receiver<()>,
    changes: Option<mpsc::Sender<Change>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stop = std::pin::pin!(stop);
    let mut stopping = false;
    loop {
        tokio::select! {
            received = queue.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
            }
            _ = &mut stop, if !stopping => {
                // Refuse new writes but still commit everything already queued.
                stopping = true;
                queue.close();
                continue;
            }
        }
        let ops: Vec<&WriteOp> = batch.iter().map(|request| &request.op).collect();
        let started = std::time::Instant::now();
        let (results, published) = match commit_batch(&mut conn, &ops).await {
            Ok(done) => {
                crate::telemetry::committed(ops.len(), &done.1, started.elapsed());
                done
            }
            Err(error) => {
                tracing::error!(%error, batch = batch.len(), "store commit failed");
                let message = error.to_string();
                let failed = batch
                    .iter()
                    .map(|_| Err(StoreError::CommitFailed(message.clone())))
                    .collect();
                (failed, Vec::new())
            }
        };
        // Publish before replying: by the time a sender sees its ack, the hub
        // already has the message queued for everybody else.
        if let Some(feed) = &changes {
            for change in published {
                if feed.send(change).await.is_err() {
                    break;
                }
            }
        }
        for (request, result) in batch.drain(..).zip(results) {
            let _ = request.reply.send(result);
        }
    }
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the database");
    }
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    ops: &[&WriteOp],
) -> Result<(Vec<Result<Written, StoreError>>, Vec<Change>), sqlx::Error> {
    let mut results = Vec::with_capacity(ops.len());
    let mut published = Vec::new();
    let mut tx = Connection::begin(&mut *conn).await?;
    for op in ops {
        let mut savepoint = Connection::begin(&mut *tx).await?;
        match apply(&mut savepoint, op).await {
            Ok((written, change)) => {
                savepoint.commit().await?;
                results.push(Ok(written));
                published.extend(change);
            }
            Err(error) => {
                savepoint.rollback().await?;
                results.push(Err(error));
            }
        }
    }
    tx.commit().await?;
    Ok((results, published))
}

async fn apply(conn: &mut SqliteConnection, op: &WriteOp) -> Result<Applied, StoreError> {
    match op {
        WriteOp::VisitorSend(send) => visitor_send(conn, send).await,
        WriteOp::AgentSend(send) => agent_send(conn, send).await,
        WriteOp::Claim {
            conversation_id,
            agent,
        } => claim(conn, conversation_id, agent).await,
        WriteOp::Transfer {
            conversation_id,
            by,
            to_agent,
        } => transfer(conn, conversation_id, by, to_agent).await,
        WriteOp::Resolve {
            conversation_id,
            by,
        } => resolve(conn, conversation_id, by).await,
        WriteOp::MarkRead {
            conversation_id,
            reader,
            up_to_seq,
        } => mark_read(conn, conversation_id, *reader, *up_to_seq).await,
        WriteOp::UpdateVisitor {
            visitor_id,
            details,
        } => update_visitor(conn, visitor_id, details).await,
        WriteOp::AddAgent {
            name,
            role,
            token_hash,
        } => add_agent(conn, name, *role, token_hash).await,
        WriteOp::DisableAgent { name } => {
            let done = sqlx::query("UPDATE agents SET disabled = 1 WHERE name = ?")
                .bind(name)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("agent"));
            }
            Ok((Written::Done, None))
        }
    }
}

async fn conversation_state(
    conn: &mut SqliteConnection,
    conversation_id: &str,
) -> Result<ConversationState, StoreError> {
    let row = sqlx::query("SELECT status, assignee, last_seq FROM conversations WHERE id = ?")
        .bind(conversation_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    Ok(ConversationState {
        status: status_from_sql(&row.try_get::<String, _>("status")?)?,
        assignee: row.try_get("assignee")?,
        last_seq: seq_from_sql(row.try_get("last_seq")?),
    })
}

async fn existing_message(
    conn: &mut SqliteConnection,
    author_kind: AuthorKind,
    author_id: &str,
    client_id: &str,
) -> Result<Option<Message>, StoreError> {
    let row: Option<MessageRow> = sqlx::query_as(&format!(
        "{MESSAGE_SELECT} WHERE author_kind = ? AND author_id = ? AND client_id = ?"
    ))
    .bind(author_kind.as_str())
    .bind(author_id)
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Message::try_from).transpose()
}

async fn visitor_send(
    conn: &mut SqliteConnection,
    send: &VisitorSend,
) -> Result<Applied, StoreError> {
    if let Some(original) =
        existing_message(conn, AuthorKind::Visitor, &send.visitor_id, &send.client_id).await?
    {
        return Ok((Written::Message(original), None));
    }
    let now = now_millis();
    let now_ms = to_millis(now);
    upsert_visitor(conn, &send.visitor_id, &send.details, now_ms).await?;

    let existing: Option<(String, String, i64)> =
        sqlx::query_as("SELECT id, status, last_seq FROM conversations WHERE visitor_id = ?")
            .bind(&send.visitor_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (conversation_id, last_seq) = match existing {
        Some((id, status, last_seq)) => {
            if status_from_sql(&status)? == ConversationStatus::Resolved {
                sqlx::query(
                    "UPDATE conversations SET status = 'waiting', assignee = NULL,
                     waiting_since = ? WHERE id = ?",
                )
                .bind(now_ms)
                .bind(&id)
                .execute(&mut *conn)
                .await?;
            }
            (id, seq_from_sql(last_seq))
        }
        None => {
            let id = auth::new_id();
            sqlx::query(
                "INSERT INTO conversations (id, visitor_id, status, waiting_since, created_at, updated_at)
                 VALUES (?, ?, 'waiting', ?, ?, ?)",
            )
            .bind(&id)
            .bind(&send.visitor_id)
            .bind(now_ms)
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            (id, 0)
        }
    };

    let author = Author {
        kind: AuthorKind::Visitor,
        id: send.visitor_id.clone(),
        name: visitor_name(conn, &send.visitor_id).await?,
    };
    let message = insert_message(
        conn,
        &conversation_id,
        last_seq + 1,
        &send.client_id,
        author,
        &send.text,
        false,
        now,
    )
    .await?;
    sqlx::query(
        "UPDATE conversations SET last_seq = ?, unread = unread + 1, preview = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(seq_to_sql(message.seq))
    .bind(preview_of(&send.text))
    .bind(now_ms)
    .bind(&conversation_id)
    .execute(&mut *conn)
    .await?;
    message_change(conn, message, send.origin).await
}

async fn agent_send(conn: &mut SqliteConnection, send: &AgentSend) -> Result<Applied, StoreError> {
    if let Some(original) =
        existing_message(conn, AuthorKind::Agent, &send.agent.id, &send.client_id).await?
    {
        return Ok((Written::Message(original), None));
    }
    let state = conversation_state(conn, &send.conversation_id).await?;
    let now = now_millis();
    let now_ms = to_millis(now);
    if rules::reply(&state, &send.agent, send.internal)? == Decision::Assign {
        assign(conn, &send.conversation_id, &send.agent.id, now_ms).await?;
    }
    let author = Author {
        kind: AuthorKind::Agent,
        id: send.agent.id.clone(),
        name: send.agent.name.clone(),
    };
    let message = insert_message(
        conn,
        &send.conversation_id,
        state.last_seq + 1,
        &send.client_id,
        author,
        &send.text,
        send.internal,
        now,
    )
    .await?;
    if send.internal {
        sqlx::query("UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?")
            .bind(seq_to_sql(message.seq))
            .bind(now_ms)
            .bind(&send.conversation_id)
            .execute(&mut *conn)
            .await?;
    } else {
        // A reply means the agent has read what came before it.
        sqlx::query(
            "UPDATE conversations SET last_seq = ?, preview = ?, updated_at = ?,
             agent_read_seq = ?, unread = 0 WHERE id = ?",
        )
        .bind(seq_to_sql(message.seq))
        .bind(preview_of(&send.text))
        .bind(now_ms)
        .bind(seq_to_sql(message.seq))
        .bind(&send.conversation_id)
        .execute(&mut *conn)
        .await?;
    }
    message_change(conn, message, send.origin).await
}

async fn message_change(
    conn: &mut SqliteConnection,
    message: Message,
    origin: Option<crate::ConnId>,
) -> Result<Applied, StoreError> {
    let summary = require_summary(conn, &message.conversation_id).await?;
    let change = Change::Message {
        message: message.clone(),
        summary,
        origin,
    };
    Ok((Written::Message(message), Some(change)))
}

#[allow(clippy::too_many_arguments)]
async fn insert_message(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    seq: Seq,
    client_id: &str,
    author: Author,
    text: &str,
    internal: bool,
    at: time::OffsetDateTime,
) -> Result<Message, StoreError> {
    let message = Message {
        conversation_id: conversation_id.to_owned(),
        seq,
        id: auth::new_id(),
        client_id: client_id.to_owned(),
        author,
        text: text.to_owned(),
        at,
        internal,
    };
    sqlx::query(
        "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                               author_name, text, internal, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .execute(&mut *conn)
    .await?;
    Ok(message)
}

async fn assign(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    agent_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE conversations SET status = 'active', assignee = ?, waiting_since = NULL,
         updated_at = ? WHERE id = ?",
    )
    .bind(agent_id)
    .bind(now_ms)
    .bind(conversation_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn claim(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    agent: &AgentInfo,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, conversation_id).await?;
    if rules::claim(&state, agent)? == Decision::Unchanged {
        let summary = require_summary(conn, conversation_id).await?;
        return Ok((Written::Summary(summary), None));
    }
    assign(conn, conversation_id, &agent.id, to_millis(now_millis())).await?;
    summary_change(conn, conversation_id).await
}

async fn transfer(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    by: &AgentInfo,
    to_agent: &str,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, conversation_id).await?;
    rules::transfer(&state, by)?;
    let target: Option<String> =
        sqlx::query_scalar("SELECT id FROM agents WHERE id = ? AND disabled = 0")
            .bind(to_agent)
            .fetch_optional(&mut *conn)
            .await?;
    if target.is_none() {
        return Err(StoreError::NotFound("agent"));
    }
    assign(conn, conversation_id, to_agent, to_millis(now_millis())).await?;
    summary_change(conn, conversation_id).await
}

async fn resolve(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    by: &AgentInfo,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, conversation_id).await?;
    if rules::resolve(&state, by)? == Decision::Unchanged {
        let summary = require_summary(conn, conversation_id).await?;
        return Ok((Written::Summary(summary), None));
    }
    sqlx::query(
        "UPDATE conversations SET status = 'resolved', waiting_since = NULL, updated_at = ?
         WHERE id = ?",
    )
    .bind(to_millis(now_millis()))
    .bind(conversation_id)
    .execute(&mut *conn)
    .await?;
    summary_change(conn, conversation_id).await
}

async fn mark_read(
    conn: &mut SqliteConnection,
    conversation_id: &str,
    reader: AuthorKind,
    up_to_seq: Seq,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, conversation_id).await?;
    let up_to = up_to_seq.min(state.last_seq);
    let column = match reader {
        AuthorKind::Visitor => "visitor_read_seq",
        AuthorKind::Agent => "agent_read_seq",
        AuthorKind::System => return Err(StoreError::Forbidden("the system reads nothing")),
    };
    let moved = sqlx::query(&format!(
        "UPDATE conversations SET {column} = ? WHERE id = ? AND {column} < ?"
    ))
    .bind(seq_to_sql(up_to))
    .bind(conversation_id)
    .bind(seq_to_sql(up_to))
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok((Written::Done, None));
    }
    if reader == AuthorKind::Agent {
        sqlx::query(
            "UPDATE conversations SET unread = (
                 SELECT count(*) FROM messages
                 WHERE conversation_id = ?1 AND author_kind = 'visitor' AND seq > ?2)
             WHERE id = ?1",
        )
        .bind(conversation_id)
        .bind(seq_to_sql(up_to))
        .execute(&mut *conn)
        .await?;
    }
    let summary = require_summary(conn, conversation_id).await?;
    let receipt = ReadReceipt {
        conversation_id: conversation_id.to_owned(),
        reader,
        up_to_seq: up_to,
    };
    Ok((Written::Done, Some(Change::Read { receipt, summary })))
}

async fn upsert_visitor(
    conn: &mut SqliteConnection,
    visitor_id: &str,
    details: &VisitorDetails,
    now_ms: i64,
) -> Result<(), StoreError> {
    let profile = &details.profile;
    // A field the page did not send keeps its old value.
    sqlx::query(
        "INSERT INTO visitors (id, name, email, page_url, page_title, referrer, lang, user_agent,
                               created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, name),
             email = coalesce(excluded.email, email),
             page_url = coalesce(excluded.page_url, page_url),
             page_title = coalesce(excluded.page_title, page_title),
             referrer = coalesce(excluded.referrer, referrer),
             lang = coalesce(excluded.lang, lang),
             user_agent = coalesce(excluded.user_agent, user_agent),
             updated_at = excluded.updated_at",
    )
    .bind(visitor_id)
    .bind(&profile.name)
    .bind(&profile.email)
    .bind(&profile.page_url)
    .bind(&profile.page_title)
    .bind(&profile.referrer)
    .bind(&profile.lang)
    .bind(&details.user_agent)
    .bind(now_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update_visitor(
    conn: &mut SqliteConnection,
    visitor_id: &str,
    details: &VisitorDetails,
) -> Result<Applied, StoreError> {
    let Some(conversation_id): Option<String> =
        sqlx::query_scalar("SELECT id FROM conversations WHERE visitor_id = ?")
            .bind(visitor_id)
            .fetch_optional(&mut *conn)
            .await?
    else {
        // Page views of visitors who never wrote are not recorded.
        return Ok((Written::Done, None));
    };
    let before = require_summary(conn, &conversation_id).await?;
    upsert_visitor(conn, visitor_id, details, to_millis(now_millis())).await?;
    let after = require_summary(conn, &conversation_id).await?;
    if before.visitor == after.visitor {
        return Ok((Written::Done, None));
    }
    Ok((Written::Done, Some(Change::Summary { summary: after })))
}

async fn add_agent(
    conn: &mut SqliteConnection,
    name: &str,
    role: Role,
    token_hash: &str,
) -> Result<Applied, StoreError> {
    let taken: Option<String> = sqlx::query_scalar("SELECT id FROM agents WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "an agent named {name:?} already exists"
        )));
    }
    let info = AgentInfo {
        id: auth::new_id(),
        name: name.to_owned(),
        role,
    };
    sqlx::query(
        "INSERT INTO agents (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&info.id)
    .bind(&info.name)
    .bind(role.as_str())
    .bind(token_hash)
    .bind(to_millis(now_millis()))
    .execute(&mut *conn)
    .await?;
    Ok((Written::Agent(info), None))
}

async fn summary_change(
    conn: &mut SqliteConnection,
    conversation_id: &str,
) -> Result<Applied, StoreError> {
    let summary = require_summary(conn, conversation_id).await?;
    Ok((
        Written::Summary(summary.clone()),
        Some(Change::Summary { summary }),
    ))
}

async fn visitor_name(conn: &mut SqliteConnection, visitor_id: &str) -> Result<String, StoreError> {
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM visitors WHERE id = ?")
        .bind(visitor_id)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    Ok(name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default_visitor_name(visitor_id)))
}

async fn load_or_create_secret(conn: &mut SqliteConnection) -> Result<Vec<u8>, StoreError> {
    let mut tx = Connection::begin(&mut *conn).await?;
    let existing: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'visitor_secret'")
            .fetch_optional(&mut *tx)
            .await?;
    let secret = match existing {
        Some(secret) => secret,
        None => {
            let secret = auth::new_secret();
            sqlx::query("INSERT INTO settings (key, value) VALUES ('visitor_secret', ?)")
                .bind(&secret)
                .execute(&mut *tx)
                .await?;
            secret
        }
    };
    tx.commit().await?;
    Ok(secret)
}

async fn load_summary(
    conn: &mut SqliteConnection,
    conversation_id: &str,
) -> Result<Option<ConversationSummary>, StoreError> {
    let row: Option<SummaryRow> = sqlx::query_as(&format!("{SUMMARY_SELECT} WHERE c.id = ?"))
        .bind(conversation_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(ConversationSummary::try_from).transpose()
}

async fn require_summary(
    conn: &mut SqliteConnection,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    load_summary(conn, conversation_id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))
}
