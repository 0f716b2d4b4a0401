//! The SQLite writer: one thread that owns the only writing connection.
//!
//! It takes every request queued at that moment (up to [`MAX_BATCH`]) and
//! applies them in one transaction, then commits once; a batch in which a
//! request is refused is applied again with each request inside its own
//! savepoint, so that the refusal undoes nothing else. With
//! `synchronous = FULL` the commit fsyncs the WAL, so when a request's reply
//! arrives its write survives a crash; and concurrent senders share one fsync
//! instead of queueing for one each (group commit). Being the only writer
//! also makes `seq` allocation and claim races trivially serial.
//!
//! The writer is a plain thread with a synchronous rusqlite connection, not a
//! task over sqlx: sqlx runs each statement on its own worker thread and
//! wakes the awaiting task with each result, and with several statements per
//! request those hand-offs (futex wake-ups, context switches) cost more than
//! SQLite itself (the profile is in docs/benchmarks.md). Here a whole batch
//! runs on one thread from cached prepared statements; what is left is one
//! wake-up per batch and one reply per request.

use std::path::Path;
use std::time::{Duration, Instant};

use kefu_protocol::agent::{AgentInfo, ConversationStatus, ConversationSummary, Role};
use kefu_protocol::{Author, AuthorKind, Message, ReadReceipt, Seq};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::super::rows::{SUMMARY_SELECT, SummaryRow, seq_from_sql, seq_to_sql};
use super::super::rules::{self, ConversationState, Decision};
use super::super::{
    AgentSend, Change, StoreError, VisitorDetails, VisitorSend, now_millis, preview_of, to_millis,
};
use super::checkpointer::{self, BACKSTOP_PAGES, Checkpointer, DatabaseFile};
use super::client_ids::{self, ClientIds};
use super::summaries::{Summaries, with_details};
use crate::{auth, ids};

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;
/// Distinct statements the writer prepares; all stay cached.
const STATEMENT_CACHE: usize = 64;
/// The writer's page cache (SQLite's own default is 2 MiB).
const WRITER_CACHE_KIB: i64 = 32 * 1024;

#[expect(
    clippy::large_enum_variant,
    reason = "`Stop` is sent once; boxing every write would cost an allocation each"
)]
pub(super) enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Reply>,
    },
    /// Refuse new writes, commit the queued ones and stop.
    Stop,
}

pub(super) enum WriteOp {
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

pub(super) enum Written {
    Message(Message),
    Summary(ConversationSummary),
    Agent(AgentInfo),
    Done,
}

type Applied = (Written, Option<Change>);
type Reply = Result<Written, StoreError>;

/// What the writer keeps between batches instead of reading it back.
struct Memory {
    summaries: Summaries,
    client_ids: ClientIds,
}

/// A write request waiting for the batch's commit.
struct Pending {
    op: WriteOp,
    reply: oneshot::Sender<Reply>,
}

/// Opens the writing connection (the schema is already migrated) and reads
/// or creates the visitor-token secret.
pub(super) fn open(path: &Path) -> Result<(Connection, Vec<u8>), StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL is a property of the file, set when it was created; FULL makes
    // every commit fsync the WAL, so an ack survives power loss.
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Every batch touches pages all over the message and conversation
    // trees; the default 2 MiB cache sends many of those reads to the OS.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // The checkpointer thread copies the WAL (see `checkpointer`).
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
    // A refused request's savepoint keeps the pages it changed in memory,
    // not in a temporary file.
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let secret = load_or_create_secret(&mut conn)?;
    Ok((conn, secret))
}

/// The writer thread's loop; returns once the queue is closed and drained.
/// `database_file` is dropped only after the connection is closed (see
/// [`DatabaseFile`]).
pub(super) fn run(
    mut conn: Connection,
    database_file: DatabaseFile,
    checkpointer: Checkpointer,
    mut queue: mpsc::Receiver<Request>,
    changes: Option<mpsc::Sender<Change>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut memory = Memory {
        summaries: Summaries::default(),
        client_ids: ClientIds::new(client_ids::MOST_REMEMBERED),
    };
    while let Some(request) = queue.blocking_recv() {
        take(request, &mut batch, &mut queue);
        while batch.len() < MAX_BATCH {
            let Ok(request) = queue.try_recv() else {
                break;
            };
            take(request, &mut batch, &mut queue);
        }
        if !batch.is_empty() {
            commit_and_reply(&mut conn, &mut memory, &mut batch, changes.as_ref());
            checkpointer.committed();
            if checkpointer.restart_due()
                && let Err(error) = checkpointer::checkpoint(&conn)
            {
                tracing::warn!(%error, "checkpointing the WAL");
            }
        }
    }
    checkpointer.stop();
    if let Err((_, error)) = conn.close() {
        tracing::warn!(%error, "closing the database");
    }
    drop(database_file);
}

fn take(request: Request, batch: &mut Vec<Pending>, queue: &mut mpsc::Receiver<Request>) {
    match request {
        Request::Write { op, reply } => batch.push(Pending { op, reply }),
        // What is already queued is still received, and committed.
        Request::Stop => queue.close(),
    }
}

fn commit_and_reply(
    conn: &mut Connection,
    memory: &mut Memory,
    batch: &mut Vec<Pending>,
    changes: Option<&mpsc::Sender<Change>>,
) {
    let started = Instant::now();
    let (results, published) = match commit_batch(conn, memory, batch) {
        Ok(done) => {
            let messages = done
                .1
                .iter()
                .filter(|change| matches!(change, Change::Message { .. }))
                .count();
            crate::telemetry::committed(batch.len(), messages, started.elapsed());
            done
        }
        Err(error) => {
            tracing::error!(%error, batch = batch.len(), "store commit failed");
            memory.summaries.forget_all();
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
    if let Some(feed) = changes {
        for change in published {
            if feed.blocking_send(change).is_err() {
                break;
            }
        }
    }
    for (pending, result) in batch.drain(..).zip(results) {
        let _ = pending.reply.send(result);
    }
}

fn commit_batch(
    conn: &mut Connection,
    memory: &mut Memory,
    batch: &[Pending],
) -> rusqlite::Result<(Vec<Reply>, Vec<Change>)> {
    let done = match commit_if_all_accepted(conn, memory, batch)? {
        Some(done) => done,
        None => commit_each_on_its_own(conn, memory, batch)?,
    };
    Ok((done.results, done.published))
}

/// What a batch answers and publishes, request by request.
#[derive(Default)]
struct Outcome {
    results: Vec<Reply>,
    published: Vec<Change>,
}

impl Outcome {
    fn accepted(&mut self, summaries: &mut Summaries, (written, change): Applied) {
        if let Some(change) = &change {
            summaries.remember(summary_of(change));
        }
        self.results.push(Ok(written));
        self.published.extend(change);
    }
}

/// The common case: every request of the batch is accepted, so none needs
/// undoing and the batch runs without savepoints. Those are not free: the
/// first change to a page inside a savepoint copies the page aside, which
/// the profile showed costing as much as the writes themselves. Rolls back
/// and returns `None` at the first refused request.
fn commit_if_all_accepted(
    conn: &mut Connection,
    memory: &mut Memory,
    batch: &[Pending],
) -> rusqlite::Result<Option<Outcome>> {
    let mut done = Outcome::default();
    // IMMEDIATE takes the write lock up front: another process writing the
    // same file (an admin command) makes us wait, never fail half-way.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for pending in batch {
        let Ok(applied) = apply(&tx, memory, &pending.op) else {
            drop(tx); // rolls back
            for change in &done.published {
                memory.summaries.forget(&summary_of(change).id);
            }
            return Ok(None);
        };
        done.accepted(&mut memory.summaries, applied);
    }
    tx.commit()?;
    Ok(Some(done))
}

/// A batch holding a refused request: each request inside its own
/// savepoint, so that a refusal undoes only its own writes.
fn commit_each_on_its_own(
    conn: &mut Connection,
    memory: &mut Memory,
    batch: &[Pending],
) -> rusqlite::Result<Outcome> {
    let mut done = Outcome::default();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for pending in batch {
        execute(&tx, "SAVEPOINT request", [])?;
        match apply(&tx, memory, &pending.op) {
            Ok(applied) => {
                execute(&tx, "RELEASE request", [])?;
                done.accepted(&mut memory.summaries, applied);
            }
            Err(error) => {
                execute(&tx, "ROLLBACK TO request", [])?;
                execute(&tx, "RELEASE request", [])?;
                done.results.push(Err(error));
            }
        }
    }
    tx.commit()?;
    Ok(done)
}

fn execute(conn: &Connection, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub(super) fn query_optional<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(sql)?.query_row(params, read).optional()
}

fn summary_of(change: &Change) -> &ConversationSummary {
    match change {
        Change::Message { summary, .. }
        | Change::Summary { summary }
        | Change::Read { summary, .. } => summary,
    }
}

fn apply(conn: &Connection, memory: &mut Memory, op: &WriteOp) -> Result<Applied, StoreError> {
    // Only sends add to memory; the rest read summaries and leave them.
    let Memory {
        summaries,
        client_ids,
    } = memory;
    let summaries: &Summaries = summaries;
    match op {
        WriteOp::VisitorSend(send) => visitor_send(conn, summaries, client_ids, send),
        WriteOp::AgentSend(send) => agent_send(conn, summaries, client_ids, send),
        WriteOp::Claim {
            conversation_id,
            agent,
        } => claim(conn, summaries, conversation_id, agent),
        WriteOp::Transfer {
            conversation_id,
            by,
            to_agent,
        } => transfer(conn, summaries, conversation_id, by, to_agent),
        WriteOp::Resolve {
            conversation_id,
            by,
        } => resolve(conn, summaries, conversation_id, by),
        WriteOp::MarkRead {
            conversation_id,
            reader,
            up_to_seq,
        } => mark_read(conn, summaries, conversation_id, *reader, *up_to_seq),
        WriteOp::UpdateVisitor {
            visitor_id,
            details,
        } => update_visitor(conn, visitor_id, details),
        WriteOp::AddAgent {
            name,
            role,
            token_hash,
        } => add_agent(conn, name, *role, token_hash),
        WriteOp::DisableAgent { name } => {
            if execute(
                conn,
                "UPDATE agents SET disabled = 1 WHERE name = ?",
                [name],
            )? == 0
            {
                return Err(StoreError::NotFound("agent"));
            }
            Ok((Written::Done, None))
        }
    }
}

/// The conversation's summary as committed so far, from memory if there.
fn current_summary(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    match summaries.get(conversation_id) {
        Some(summary) => Ok(summary.clone()),
        None => require_summary(conn, conversation_id),
    }
}

fn state_of(summary: &ConversationSummary) -> ConversationState {
    ConversationState {
        status: summary.status,
        assignee: summary.assignee.clone(),
        last_seq: summary.last_seq,
    }
}

fn conversation_state(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
) -> Result<ConversationState, StoreError> {
    match summaries.get(conversation_id) {
        Some(summary) => Ok(state_of(summary)),
        None => require_summary(conn, conversation_id).map(|summary| state_of(&summary)),
    }
}

/// A visitor writes to their one conversation, so a resend is looked for
/// there before anything changes.
fn visitor_send(
    conn: &Connection,
    summaries: &Summaries,
    client_ids: &mut ClientIds,
    send: &VisitorSend,
) -> Result<Applied, StoreError> {
    let existing = match summaries.of_visitor(&send.visitor_id) {
        Some(summary) => Some(summary.clone()),
        None => query_optional(
            conn,
            "SELECT id FROM conversations WHERE visitor_id = ?",
            [&send.visitor_id],
            |row| row.get::<_, String>(0),
        )?
        .map(|id| require_summary(conn, &id))
        .transpose()?,
    };
    let author = (AuthorKind::Visitor, send.visitor_id.as_str());
    if let Some(summary) = &existing
        && let Some(original) = client_ids.find(conn, &summary.id, author, &send.client_id)?
    {
        return Ok((Written::Message(original), None));
    }
    let now = now_millis();
    let now_ms = to_millis(now);
    let mut summary = match existing {
        Some(summary) => summary,
        None => open_conversation(conn, send, now_ms)?,
    };
    let visitor = with_details(&summary.visitor, &send.details);
    if visitor != summary.visitor {
        upsert_visitor(conn, &send.visitor_id, &send.details, now_ms)?;
        summary.visitor = visitor;
    }
    if summary.status == ConversationStatus::Resolved {
        execute(
            conn,
            "UPDATE conversations SET status = 'waiting', assignee = NULL,
             waiting_since = ? WHERE id = ?",
            (now_ms, &summary.id),
        )?;
        summary.status = ConversationStatus::Waiting;
        summary.assignee = None;
        summary.waiting_since = Some(now);
    }

    let author = Author {
        kind: AuthorKind::Visitor,
        id: send.visitor_id.clone(),
        name: summary.visitor.name.clone(),
    };
    let message = insert_message(
        conn,
        client_ids,
        NewMessage {
            conversation_id: &summary.id,
            seq: summary.last_seq + 1,
            client_id: &send.client_id,
            author,
            text: &send.text,
            internal: false,
            at: now,
        },
    )?;
    summary.last_seq = message.seq;
    summary.unread = summary.unread.saturating_add(1);
    summary.preview = preview_of(&send.text);
    summary.updated_at = now;
    execute(
        conn,
        "UPDATE conversations SET last_seq = ?, unread = unread + 1, preview = ?, updated_at = ?
         WHERE id = ?",
        (
            seq_to_sql(summary.last_seq),
            &summary.preview,
            now_ms,
            &summary.id,
        ),
    )?;
    Ok(message_change(message, summary, send.origin))
}

/// The visitor's first message: their row and their conversation.
fn open_conversation(
    conn: &Connection,
    send: &VisitorSend,
    now_ms: i64,
) -> Result<ConversationSummary, StoreError> {
    upsert_visitor(conn, &send.visitor_id, &send.details, now_ms)?;
    let id = ids::new_id();
    execute(
        conn,
        "INSERT INTO conversations (id, visitor_id, status, waiting_since, created_at, updated_at)
         VALUES (?1, ?2, 'waiting', ?3, ?3, ?3)",
        (&id, &send.visitor_id, now_ms),
    )?;
    require_summary(conn, &id)
}

fn agent_send(
    conn: &Connection,
    summaries: &Summaries,
    client_ids: &mut ClientIds,
    send: &AgentSend,
) -> Result<Applied, StoreError> {
    // The conversation first: `find` remembers every conversation it is
    // asked about, and a made-up id must not take room there.
    let mut summary = current_summary(conn, summaries, &send.conversation_id)?;
    let author = (AuthorKind::Agent, send.agent.id.as_str());
    if let Some(original) = client_ids.find(conn, &send.conversation_id, author, &send.client_id)? {
        return Ok((Written::Message(original), None));
    }
    let now = now_millis();
    let now_ms = to_millis(now);
    if rules::reply(&state_of(&summary), &send.agent, send.internal)? == Decision::Assign {
        assign(conn, &send.conversation_id, &send.agent.id, now_ms)?;
        summary.status = ConversationStatus::Active;
        summary.assignee = Some(send.agent.id.clone());
        summary.waiting_since = None;
    }
    let author = Author {
        kind: AuthorKind::Agent,
        id: send.agent.id.clone(),
        name: send.agent.name.clone(),
    };
    let message = insert_message(
        conn,
        client_ids,
        NewMessage {
            conversation_id: &send.conversation_id,
            seq: summary.last_seq + 1,
            client_id: &send.client_id,
            author,
            text: &send.text,
            internal: send.internal,
            at: now,
        },
    )?;
    summary.last_seq = message.seq;
    summary.updated_at = now;
    let seq = seq_to_sql(message.seq);
    if send.internal {
        execute(
            conn,
            "UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?",
            (seq, now_ms, &send.conversation_id),
        )?;
    } else {
        // A reply means the agent has read what came before it.
        summary.preview = preview_of(&send.text);
        summary.unread = 0;
        execute(
            conn,
            "UPDATE conversations SET last_seq = ?1, preview = ?2, updated_at = ?3,
             agent_read_seq = ?1, unread = 0 WHERE id = ?4",
            (seq, &summary.preview, now_ms, &send.conversation_id),
        )?;
    }
    Ok(message_change(message, summary, send.origin))
}

fn message_change(
    message: Message,
    summary: ConversationSummary,
    origin: Option<crate::ids::ConnId>,
) -> Applied {
    let change = Change::Message {
        message: message.clone(),
        summary,
        origin,
    };
    (Written::Message(message), Some(change))
}

struct NewMessage<'a> {
    conversation_id: &'a str,
    seq: Seq,
    client_id: &'a str,
    author: Author,
    text: &'a str,
    internal: bool,
    at: time::OffsetDateTime,
}

fn insert_message(
    conn: &Connection,
    client_ids: &mut ClientIds,
    new: NewMessage<'_>,
) -> Result<Message, StoreError> {
    let message = Message {
        conversation_id: new.conversation_id.to_owned(),
        seq: new.seq,
        id: ids::new_id(),
        client_id: new.client_id.to_owned(),
        author: new.author,
        text: new.text.to_owned(),
        at: new.at,
        internal: new.internal,
    };
    insert_row(conn, &message)?;
    client_ids.stored(&message);
    Ok(message)
}

pub(super) fn insert_row(conn: &Connection, message: &Message) -> rusqlite::Result<usize> {
    execute(
        conn,
        "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                               author_name, text, internal, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            &message.conversation_id,
            seq_to_sql(message.seq),
            &message.id,
            &message.client_id,
            message.author.kind.as_str(),
            &message.author.id,
            &message.author.name,
            &message.text,
            message.internal,
            to_millis(message.at),
        ),
    )
}

fn assign(
    conn: &Connection,
    conversation_id: &str,
    agent_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    execute(
        conn,
        "UPDATE conversations SET status = 'active', assignee = ?, waiting_since = NULL,
         updated_at = ? WHERE id = ?",
        (agent_id, now_ms, conversation_id),
    )?;
    Ok(())
}

fn claim(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    agent: &AgentInfo,
) -> Result<Applied, StoreError> {
    let summary = current_summary(conn, summaries, conversation_id)?;
    if rules::claim(&state_of(&summary), agent)? == Decision::Unchanged {
        return Ok((Written::Summary(summary), None));
    }
    assign(conn, conversation_id, &agent.id, to_millis(now_millis()))?;
    summary_change(conn, conversation_id)
}

fn transfer(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    by: &AgentInfo,
    to_agent: &str,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, summaries, conversation_id)?;
    rules::transfer(&state, by)?;
    let target = query_optional(
        conn,
        "SELECT id FROM agents WHERE id = ? AND disabled = 0",
        [to_agent],
        |row| row.get::<_, String>(0),
    )?;
    if target.is_none() {
        return Err(StoreError::NotFound("agent"));
    }
    assign(conn, conversation_id, to_agent, to_millis(now_millis()))?;
    summary_change(conn, conversation_id)
}

fn resolve(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    by: &AgentInfo,
) -> Result<Applied, StoreError> {
    let summary = current_summary(conn, summaries, conversation_id)?;
    if rules::resolve(&state_of(&summary), by)? == Decision::Unchanged {
        return Ok((Written::Summary(summary), None));
    }
    execute(
        conn,
        "UPDATE conversations SET status = 'resolved', waiting_since = NULL, updated_at = ?
         WHERE id = ?",
        (to_millis(now_millis()), conversation_id),
    )?;
    summary_change(conn, conversation_id)
}

fn mark_read(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    reader: AuthorKind,
    up_to_seq: Seq,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, summaries, conversation_id)?;
    let up_to = seq_to_sql(up_to_seq.min(state.last_seq));
    let moved = match reader {
        AuthorKind::Visitor => execute(
            conn,
            "UPDATE conversations SET visitor_read_seq = ?1 WHERE id = ?2 AND visitor_read_seq < ?1",
            (up_to, conversation_id),
        )?,
        AuthorKind::Agent => execute(
            conn,
            "UPDATE conversations SET agent_read_seq = ?1, unread = (
                 SELECT count(*) FROM messages
                 WHERE conversation_id = ?2 AND author_kind = 'visitor' AND seq > ?1)
             WHERE id = ?2 AND agent_read_seq < ?1",
            (up_to, conversation_id),
        )?,
        AuthorKind::System => return Err(StoreError::Forbidden("the system reads nothing")),
    };
    if moved == 0 {
        return Ok((Written::Done, None));
    }
    let summary = require_summary(conn, conversation_id)?;
    let receipt = ReadReceipt {
        conversation_id: conversation_id.to_owned(),
        reader,
        up_to_seq: seq_from_sql(up_to),
    };
    Ok((Written::Done, Some(Change::Read { receipt, summary })))
}

fn upsert_visitor(
    conn: &Connection,
    visitor_id: &str,
    details: &VisitorDetails,
    now_ms: i64,
) -> Result<(), StoreError> {
    let profile = &details.profile;
    // A field the page did not send keeps its old value.
    execute(
        conn,
        "INSERT INTO visitors (id, name, email, page_url, page_title, referrer, lang, user_agent,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, name),
             email = coalesce(excluded.email, email),
             page_url = coalesce(excluded.page_url, page_url),
             page_title = coalesce(excluded.page_title, page_title),
             referrer = coalesce(excluded.referrer, referrer),
             lang = coalesce(excluded.lang, lang),
             user_agent = coalesce(excluded.user_agent, user_agent),
             updated_at = excluded.updated_at",
        (
            visitor_id,
            &profile.name,
            &profile.email,
            &profile.page_url,
            &profile.page_title,
            &profile.referrer,
            &profile.lang,
            &details.user_agent,
            now_ms,
        ),
    )?;
    Ok(())
}

fn update_visitor(
    conn: &Connection,
    visitor_id: &str,
    details: &VisitorDetails,
) -> Result<Applied, StoreError> {
    let Some(conversation_id) = query_optional(
        conn,
        "SELECT id FROM conversations WHERE visitor_id = ?",
        [visitor_id],
        |row| row.get::<_, String>(0),
    )?
    else {
        // Page views of visitors who never wrote are not recorded.
        return Ok((Written::Done, None));
    };
    let before = require_summary(conn, &conversation_id)?;
    upsert_visitor(conn, visitor_id, details, to_millis(now_millis()))?;
    let after = require_summary(conn, &conversation_id)?;
    if before.visitor == after.visitor {
        return Ok((Written::Done, None));
    }
    Ok((Written::Done, Some(Change::Summary { summary: after })))
}

fn add_agent(
    conn: &Connection,
    name: &str,
    role: Role,
    token_hash: &str,
) -> Result<Applied, StoreError> {
    let taken = query_optional(
        conn,
        "SELECT id FROM agents WHERE name = ?",
        [name],
        |row| row.get::<_, String>(0),
    )?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "an agent named {name:?} already exists"
        )));
    }
    let info = AgentInfo {
        id: ids::new_id(),
        name: name.to_owned(),
        role,
    };
    execute(
        conn,
        "INSERT INTO agents (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (
            &info.id,
            &info.name,
            role.as_str(),
            token_hash,
            to_millis(now_millis()),
        ),
    )?;
    Ok((Written::Agent(info), None))
}

fn summary_change(conn: &Connection, conversation_id: &str) -> Result<Applied, StoreError> {
    let summary = require_summary(conn, conversation_id)?;
    Ok((
        Written::Summary(summary.clone()),
        Some(Change::Summary { summary }),
    ))
}

fn require_summary(
    conn: &Connection,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    query_optional(
        conn,
        &format!("{SUMMARY_SELECT} WHERE c.id = ?"),
        [conversation_id],
        SummaryRow::from_rusqlite,
    )?
    .map(ConversationSummary::try_from)
    .transpose()?
    .ok_or(StoreError::NotFound("conversation"))
}

fn load_or_create_secret(conn: &mut Connection) -> Result<Vec<u8>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing = query_optional(
        &tx,
        "SELECT value FROM settings WHERE key = 'visitor_secret'",
        [],
        |row| row.get::<_, Vec<u8>>(0),
    )?;
    let secret = match existing {
        Some(secret) => secret,
        None => {
            let secret = auth::new_secret();
            execute(
                &tx,
                "INSERT INTO settings (key, value) VALUES ('visitor_secret', ?)",
                [&secret],
            )?;
            secret
        }
    };
    tx.commit()?;
    Ok(secret)
}
