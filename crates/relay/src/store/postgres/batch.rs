//! Group commit for the message writes.
//!
//! Every transaction that `NOTIFY`s holds a lock of PostgreSQL's, one for
//! the whole server, from its commit until that commit is flushed, so that
//! notifications are queued in commit order (`PreCommit_Notify` in
//! PostgreSQL's `async.c`). Each message write notifies, so one message
//! write at a time commits and waits for its own WAL flush, whatever the
//! number of connections: PostgreSQL's own group commit never gets to
//! share a flush between them, and a write costs a flush.
//!
//! So a writer task makes many message writes in one statement (migration
//! 0015's `kefu_send_batch`), which is its own transaction, on a
//! connection of its own, and answers each only once it has committed:
//! one round trip, one lock and one flush for all. The statement makes
//! the batch's plain writes together (one insert for their messages, one
//! update per conversation), which costs PostgreSQL about half of
//! making them one by one (see the migration).
//! A few writers share the conversations between them (by a hash of the
//! id), so that their batches run side by side without touching the same
//! rows.
//!
//! A batch takes its conversations' row locks in the order of their ids
//! (writes to one conversation keep the order they came in, agents' ahead
//! of visitors' as `store::lanes` explains), as does
//! every other batch on every relay, so batches cannot deadlock one
//! another; a write that locks more than one conversation row, or one it
//! cannot name beforehand (a visitor's first), does not come here. (A
//! visitor's conversation as the relay last saw it may have been deleted
//! and begun again since; that write then locks out of order, and should
//! two batches deadlock on it, PostgreSQL ends one within a second and its
//! writes are made alone.)
//! A batch in which any write fails is rolled back, and each of its writes
//! is then made alone, in its own transaction, so a refused write undoes
//! only itself; a resend among them finds its original as usual.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::super::StoreError;
use super::super::lanes::{self, Lane, LaneSenders, Lanes};
use super::super::rows::MessageRow;
use crate::cluster::{self, NodeId};
use crate::telemetry;

/// Writer tasks, each with its connection and its share of the
/// conversations: one would leave PostgreSQL's other cores idle while it
/// waits for each answer. Two rather than four since batches are made set
/// by set (migration 0015): a batch's fixed cost is now worth sharing, and
/// fewer, larger batches took less of PostgreSQL's CPU for the same 2,000
/// messages a second (23–24 s against 25 s) and kept up with more
/// (docs/benchmarks.md).
const WRITERS: usize = 2;
/// The most writes one transaction makes.
const MAX_BATCH: usize = 256;
/// Writes waiting for a writer, in each lane, before senders wait.
const QUEUE: usize = 4096;

/// A message write as `kefu_send_batch` (migration 0015) takes it: one
/// object of the batch's JSON array, its fields named as the migration
/// reads them. Typed rather than built as a `serde_json::Value`, whose
/// map of owned keys cost an allocation and a sorted insert per field.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum Write {
    Visitor(VisitorWrite),
    Agent(AgentWrite),
}

#[derive(Debug, Serialize)]
pub(super) struct VisitorWrite {
    pub(super) visitor_id: String,
    pub(super) client_id: String,
    pub(super) message_id: String,
    /// The reopen event's, used only if the send reopens.
    pub(super) event_id: String,
    /// The conversation's, used only by the visitor's first send.
    pub(super) conversation_id: String,
    pub(super) preview: String,
    pub(super) text: String,
    pub(super) at: i64,
    pub(super) default_name: String,
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) page_url: Option<String>,
    pub(super) page_title: Option<String>,
    pub(super) referrer: Option<String>,
    pub(super) lang: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) address: Option<String>,
    pub(super) attachments: Vec<String>,
    pub(super) origin: Option<i64>,
}

#[derive(Debug, Serialize)]
pub(super) struct AgentWrite {
    pub(super) conversation_id: String,
    pub(super) agent_id: String,
    pub(super) agent_name: String,
    pub(super) client_id: String,
    pub(super) message_id: String,
    pub(super) preview: String,
    pub(super) text: String,
    pub(super) internal: bool,
    pub(super) link: Option<String>,
    pub(super) at: i64,
    pub(super) attachments: Vec<String>,
    /// What the rule for a reply decides in each of `rules::states`.
    pub(super) decisions: Vec<&'static str>,
    pub(super) origin: Option<i64>,
}

impl Write {
    /// Agents' writes are batched ahead of visitors' (see `store::lanes`).
    fn lane(&self) -> Lane {
        match self {
            Write::Visitor(_) => Lane::Visitor,
            Write::Agent(_) => Lane::Staff,
        }
    }

    /// The id the message is stored under unless it is a resend.
    fn message_id(&self) -> &str {
        match self {
            Write::Visitor(write) => &write.message_id,
            Write::Agent(write) => &write.message_id,
        }
    }
}

/// What a write's statement answered.
pub(super) type Written = Result<MessageRow, sqlx::Error>;

struct Job {
    /// The conversation whose row the write locks.
    conversation_id: String,
    write: Write,
    done: oneshot::Sender<Written>,
}

/// The sending ends of the writer tasks.
pub(super) struct Batcher {
    /// One pair of lanes per writer; a conversation's writes always go to
    /// the same.
    jobs: Mutex<Vec<LaneSenders<Job>>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl Batcher {
    pub(super) fn start(pool: &PgPool, node: &NodeId) -> Arc<Batcher> {
        let (jobs, writers) = (0..WRITERS)
            .map(|_| {
                let (jobs, lanes) = lanes::channel(QUEUE);
                (jobs, tokio::spawn(write(pool.clone(), node.clone(), lanes)))
            })
            .unzip();
        Arc::new(Batcher {
            jobs: Mutex::new(jobs),
            writers: Mutex::new(writers),
        })
    }

    /// Makes `write`, which locks `conversation_id`'s row and no other
    /// conversation's, in the next batch. Once queued it is made whether or
    /// not the caller still waits.
    pub(super) async fn write(
        &self,
        conversation_id: String,
        write: Write,
    ) -> Result<Written, StoreError> {
        let jobs = {
            let queues = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            let mut hasher = DefaultHasher::new();
            conversation_id.hash(&mut hasher);
            let index = usize::try_from(hasher.finish() % WRITERS as u64).unwrap_or(0);
            queues.get(index).cloned().ok_or(StoreError::Closed)?
        };
        let (done, answer) = oneshot::channel();
        let lane = write.lane();
        let job = Job {
            conversation_id,
            write,
            done,
        };
        jobs.send(lane, job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// Makes the writes queued so far, then stops the writers.
    pub(super) async fn close(&self) {
        drop(std::mem::take(
            &mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()),
        ));
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|e| e.into_inner()));
        for writer in writers {
            let _ = writer.await;
        }
    }
}

/// The writer: a batch of whatever has queued (agents' writes first), one
/// statement, then the next.
async fn write(pool: PgPool, node: NodeId, mut lanes: Lanes<Job>) {
    let mut connection: Option<PgConnection> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = lanes.next().await {
        batch.push(first);
        lanes.fill(&mut batch, MAX_BATCH);
        // Stable: one conversation's writes keep their order.
        batch.sort_by(|a: &Job, b: &Job| a.conversation_id.cmp(&b.conversation_id));
        let writes: Vec<&Write> = batch.iter().map(|job| &job.write).collect();
        let committed = match connection.as_mut() {
            Some(connection) => send_batch(connection, &node, &writes).await,
            None => match pool.acquire().await {
                // Its own, out of the pool: no pool checks around each batch.
                Ok(acquired) => {
                    send_batch(connection.insert(acquired.detach()), &node, &writes).await
                }
                Err(error) => Err(error),
            },
        };
        match committed {
            Ok(rows) => {
                for (job, row) in batch.drain(..).zip(rows) {
                    let _ = job.done.send(Ok(row));
                }
            }
            Err(error) => {
                if !matches!(error, sqlx::Error::Database(_)) {
                    // The connection itself failed; take a new one.
                    connection = None;
                }
                if batch.len() > 1 {
                    tracing::debug!(%error, writes = batch.len(), "a batch failed; writing each alone");
                }
                for job in batch.drain(..) {
                    let written = write_alone(&pool, &node, job.write).await;
                    let _ = job.done.send(written);
                }
            }
        }
    }
}

/// Makes `write` alone: a batch of one, its own transaction.
pub(super) async fn write_alone(pool: &PgPool, node: &NodeId, write: Write) -> Written {
    let mut connection = pool.acquire().await?;
    let mut rows = send_batch(&mut connection, node, &[&write]).await?;
    rows.pop().ok_or(sqlx::Error::RowNotFound)
}

/// Makes every write of `writes` in one statement, which is its own
/// transaction: committed when it answers (sqlx reads to `ReadyForQuery`,
/// after the commit). Their rows, in order.
async fn send_batch(
    connection: &mut PgConnection,
    node: &NodeId,
    writes: &[&Write],
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let started = Instant::now();
    let payload =
        serde_json::to_string(writes).map_err(|error| sqlx::Error::Encode(error.into()))?;
    let rows: Vec<MessageRow> =
        sqlx::query_as("SELECT * FROM kefu_send_batch($1::jsonb, $2, $3, $4)")
            .bind(payload)
            .bind(cluster::CHANGES_CHANNEL)
            .bind(node)
            .bind(i32::try_from(cluster::MAX_PAYLOAD).unwrap_or(i32::MAX))
            .fetch_all(connection)
            .await?;
    if rows.len() != writes.len() {
        // Committed, but not answered in full: made again alone, each
        // finds its message stored.
        return Err(sqlx::Error::Protocol(format!(
            "kefu_send_batch answered {} rows for {} writes",
            rows.len(),
            writes.len()
        )));
    }
    // A resend answers with its original, whose id is not the one it sent.
    let stored = (rows.iter().zip(writes))
        .filter(|(row, write)| write.message_id() == row.id())
        .count();
    telemetry::committed(writes.len(), stored, started.elapsed());
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The migration whose `kefu_send_batch` and `kefu_send_one` read the
    /// writes.
    const MIGRATION: &str =
        include_str!("../../../migrations/postgres/0015_message_writes_set_based.sql");

    /// Every field name the migration reads from a write: the batch's
    /// record columns and `kefu_send_one`'s `p_write->>'…'`.
    fn fields_read() -> BTreeSet<String> {
        let (_, columns) = MIGRATION
            .split_once("jsonb_to_recordset(p_writes) AS (")
            .expect("the batch's record");
        let (columns, _) = columns.split_once("))").expect("the record's end");
        let mut read: BTreeSet<String> = columns
            .split(',')
            .filter_map(|column| column.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        for accessor in ["p_write->>'", "p_write->'"] {
            for (at, _) in MIGRATION.match_indices(accessor) {
                let (name, _) = MIGRATION[at + accessor.len()..]
                    .split_once('\'')
                    .expect("a quoted name");
                read.insert(name.to_owned());
            }
        }
        read
    }

    fn fields_sent(write: &Write) -> BTreeSet<String> {
        let serde_json::Value::Object(fields) = serde_json::to_value(write).expect("serialize")
        else {
            panic!("a write is an object");
        };
        fields.keys().cloned().collect()
    }

    fn visitor_write() -> Write {
        Write::Visitor(VisitorWrite {
            visitor_id: "v".into(),
            client_id: "k".into(),
            message_id: "m".into(),
            event_id: "e".into(),
            conversation_id: "c".into(),
            preview: "p".into(),
            text: "t".into(),
            at: 1,
            default_name: "d".into(),
            name: None,
            email: None,
            page_url: None,
            page_title: None,
            referrer: None,
            lang: None,
            user_agent: None,
            address: None,
            attachments: Vec::new(),
            origin: None,
        })
    }

    fn agent_write() -> Write {
        Write::Agent(AgentWrite {
            conversation_id: "c".into(),
            agent_id: "a".into(),
            agent_name: "n".into(),
            client_id: "k".into(),
            message_id: "m".into(),
            preview: "p".into(),
            text: "t".into(),
            internal: false,
            link: None,
            at: 1,
            attachments: Vec::new(),
            decisions: vec!["proceed"],
            origin: Some(3),
        })
    }

    #[test]
    fn writes_carry_every_field_the_migration_reads_and_no_other() {
        let (visitor, agent) = (fields_sent(&visitor_write()), fields_sent(&agent_write()));
        let read = fields_read();
        assert!(read.len() > 20, "parsed the migration: {read:?}");
        for sent in [&visitor, &agent] {
            assert!(
                sent.is_subset(&read),
                "{:?} not read",
                sent.difference(&read)
            );
        }
        let all: BTreeSet<String> = visitor.union(&agent).cloned().collect();
        assert_eq!(
            all, read,
            "every field read is sent by one kind or the other"
        );
        let kind = |write: &Write| serde_json::to_value(write).expect("serialize")["kind"].clone();
        assert_eq!(kind(&visitor_write()), "visitor");
        assert_eq!(kind(&agent_write()), "agent");
    }
}
