//! The SQLite writer: one thread that owns the only writing connection.
//!
//! It takes every request queued at that moment (up to [`MAX_BATCH`];
//! agents' and the relay's own ahead of visitors', see `store::lanes`) and
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
//!
//! Between batches it also indexes committed messages for search, off the
//! acknowledgement's path ([`index`]).
//!
//! This file is the loop: batching, the commit and its savepoint fallback,
//! publishing and replying. What each request does is in [`op`] (the
//! requests and answers), [`send`], [`conversation`], [`event`], [`trail`],
//! [`files`], [`deletion`] and [`agent`].

mod agent;
mod conversation;
mod deletion;
mod event;
mod files;
mod index;
mod op;
mod send;
mod trail;

use std::path::Path;
use std::time::{Duration, Instant};

use kefu_protocol::agent::ConversationSummary;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::super::lanes::Lanes;
use super::super::{Change, StoreError};
use super::checkpointer::{self, BACKSTOP_PAGES, Checkpointer, DatabaseFile};
use super::client_ids::{self, ClientIds};
use super::statements::{execute, query_optional};
use super::summaries::Summaries;
use crate::auth;
pub(super) use index::Indexer;
use op::Applied;
pub(super) use op::{Doomed, ReadBy, WriteOp, Written};

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
    /// Index the messages committed so far, once the batch this comes
    /// with is committed.
    Index,
    /// Refuse new writes, commit the queued ones, index and stop.
    Stop,
}

type Reply = Result<Written, StoreError>;

/// What the writer keeps between batches instead of reading it back.
struct Memory {
    summaries: Summaries,
    client_ids: ClientIds,
    data_version: DataVersion,
}

/// A write request waiting for the batch's commit.
struct Pending {
    op: WriteOp,
    reply: oneshot::Sender<Reply>,
}

/// The writer's end of its two lanes, with a runtime of the thread's own
/// (no I/O, no timers) to wait on both at once: the thread is not a task.
pub(super) struct Queue {
    lanes: Lanes<Request>,
    waits: tokio::runtime::Runtime,
}

impl Queue {
    pub(super) fn new(lanes: Lanes<Request>) -> std::io::Result<Queue> {
        let waits = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(Queue { lanes, waits })
    }

    /// Blocks until a request comes; `None` once both lanes are closed and
    /// drained.
    fn blocking_next(&mut self) -> Option<Request> {
        self.waits.block_on(self.lanes.next())
    }
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

/// The writer thread's loop; returns once both lanes are closed and
/// drained. `database_file` is dropped only after the connection is closed
/// (see [`DatabaseFile`]).
pub(super) fn run(
    mut conn: Connection,
    database_file: DatabaseFile,
    checkpointer: Checkpointer,
    mut indexer: Indexer,
    mut queue: Queue,
    changes: Option<mpsc::Sender<Change>>,
) {
    let mut requests = Vec::with_capacity(MAX_BATCH);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut memory = Memory {
        summaries: Summaries::default(),
        client_ids: ClientIds::new(client_ids::MOST_REMEMBERED),
        data_version: DataVersion::default(),
    };
    loop {
        // With indexing due, requests already queued go first, but the
        // writer does not wait for more.
        let first = if indexer.due() {
            match queue.lanes.try_next() {
                Ok(request) => Some(request),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break,
            }
        } else {
            match queue.blocking_next() {
                Some(request) => Some(request),
                None => break,
            }
        };
        if let Some(request) = first {
            requests.push(request);
            queue.lanes.fill(&mut requests, MAX_BATCH);
            for request in requests.drain(..) {
                take(request, &mut batch, &mut queue.lanes, &mut indexer);
            }
            if !batch.is_empty() {
                let changes = changes.as_ref();
                commit_and_reply(&mut conn, &mut memory, &mut batch, &mut indexer, changes);
                after_commit(&conn, &checkpointer);
            }
        }
        if indexer.due() && indexer.index_chunk(&mut conn) {
            after_commit(&conn, &checkpointer);
        }
    }
    indexer.drain(&mut conn);
    checkpointer.stop();
    if let Err((_, error)) = conn.close() {
        tracing::warn!(%error, "closing the database");
    }
    drop(database_file);
}

/// Whether another connection committed since we last asked: another
/// process (`kefu-relay delete-conversation`) may have deleted a
/// conversation whose summary memory holds, and a send written from that
/// summary would fail until the relay restarted. SQLite answers from
/// memory it keeps anyway; our own commits do not count.
#[derive(Default)]
struct DataVersion(Option<i64>);

impl DataVersion {
    fn changed_by_others(&mut self, conn: &Connection) -> bool {
        let now = match conn.pragma_query_value(None, "data_version", |row| row.get(0)) {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(%error, "reading the data version");
                // Unknown: assume changed; memory is only a cache.
                self.0 = None;
                return true;
            }
        };
        let changed = self.0.is_some_and(|before| before != now);
        self.0 = Some(now);
        changed
    }
}

fn after_commit(conn: &Connection, checkpointer: &Checkpointer) {
    checkpointer.committed();
    if checkpointer.restart_due()
        && let Err(error) = checkpointer::checkpoint(conn)
    {
        tracing::warn!(%error, "checkpointing the WAL");
    }
}

fn take(
    request: Request,
    batch: &mut Vec<Pending>,
    lanes: &mut Lanes<Request>,
    indexer: &mut Indexer,
) {
    match request {
        Request::Write { op, reply } => batch.push(Pending { op, reply }),
        Request::Index => indexer.request(),
        // What is already queued is still received, and committed.
        Request::Stop => lanes.close(),
    }
}

fn commit_and_reply(
    conn: &mut Connection,
    memory: &mut Memory,
    batch: &mut Vec<Pending>,
    indexer: &mut Indexer,
    changes: Option<&mpsc::Sender<Change>>,
) {
    let started = Instant::now();
    let (results, published) = match commit_batch(conn, memory, batch) {
        Ok(done) => {
            let messages = done
                .1
                .iter()
                .filter(|change| matches!(change, Change::Message { message, .. } if !message.is_event()))
                .count();
            crate::telemetry::committed(batch.len(), messages, started.elapsed());
            // Before any reply: a search that starts after an ack waits
            // for the index to hold that message.
            indexer.committed(conn);
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
    fn accepted(&mut self, summaries: &mut Summaries, (written, changes): Applied) {
        for change in &changes {
            summaries.remember(summary_of(change));
        }
        self.results.push(Ok(written));
        self.published.extend(changes);
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
    let tx = begin(conn, memory)?;
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

/// Begins a batch's transaction. IMMEDIATE takes the write lock up front:
/// another process writing the same file (an admin command) makes us wait,
/// never fail half-way. Once the lock is ours nobody else can commit, so
/// memory is checked against the database here (see [`DataVersion`]).
fn begin<'c>(
    conn: &'c mut Connection,
    memory: &mut Memory,
) -> rusqlite::Result<rusqlite::Transaction<'c>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if memory.data_version.changed_by_others(&tx) {
        memory.summaries.forget_all();
    }
    Ok(tx)
}

/// A batch holding a refused request: each request inside its own
/// savepoint, so that a refusal undoes only its own writes.
fn commit_each_on_its_own(
    conn: &mut Connection,
    memory: &mut Memory,
    batch: &[Pending],
) -> rusqlite::Result<Outcome> {
    let mut done = Outcome::default();
    let tx = begin(conn, memory)?;
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

fn summary_of(change: &Change) -> &ConversationSummary {
    match change {
        Change::Message { summary, .. }
        | Change::Summary { summary }
        | Change::PageViews { summary, .. }
        | Change::Read { summary, .. } => summary,
    }
}

fn apply(conn: &Connection, memory: &mut Memory, op: &WriteOp) -> Result<Applied, StoreError> {
    // Sends add to memory and deletions take from it; the rest read
    // summaries and leave them.
    let Memory {
        summaries,
        client_ids,
        ..
    } = memory;
    match op {
        WriteOp::VisitorSend(send) => send::visitor_send(conn, summaries, client_ids, send),
        WriteOp::AgentSend(send) => send::agent_send(conn, summaries, client_ids, send),
        WriteOp::Claim {
            conversation_id,
            agent,
        } => conversation::claim(conn, summaries, conversation_id, agent),
        WriteOp::Transfer {
            conversation_id,
            by,
            to_agent,
        } => conversation::transfer(conn, summaries, conversation_id, by, to_agent),
        WriteOp::Resolve {
            conversation_id,
            by,
            scope,
        } => conversation::resolve(conn, summaries, conversation_id, by, *scope),
        WriteOp::MarkRead {
            conversation_id,
            reader,
            up_to_seq,
        } => conversation::mark_read(conn, summaries, conversation_id, reader, *up_to_seq),
        WriteOp::UpdateVisitor {
            visitor_id,
            details,
        } => conversation::update_visitor(conn, visitor_id, details),
        WriteOp::PageViews { visitor_id, views } => {
            trail::record_page_views(conn, visitor_id, views)
        }
        WriteOp::AddAgent {
            name,
            role,
            token_hash,
        } => agent::add_agent(conn, name, *role, token_hash),
        WriteOp::DisableAgent { name } => agent::disable_agent(conn, name),
        WriteOp::SetAgentToken { name, token_hash } => {
            agent::set_agent_token(conn, name, token_hash)
        }
        WriteOp::Block(block) => agent::block(conn, block),
        WriteOp::Unblock { range } => agent::unblock(conn, range),
        WriteOp::RecordEvent {
            conversation_id,
            event: recorded,
            origin,
        } => conversation::record_alone(conn, summaries, conversation_id, recorded, *origin),
        WriteOp::AddFile(file) => files::add_file(conn, file),
        WriteOp::PruneFiles { before_ms } => files::prune_files(conn, *before_ms),
        WriteOp::DeleteConversations(doomed) => {
            // Forgotten whether or not the write commits: memory is only a
            // cache of the database.
            for conversation in doomed {
                summaries.forget(&conversation.id);
                client_ids.forget(&conversation.id);
            }
            deletion::delete_conversations(conn, doomed)
        }
    }
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
