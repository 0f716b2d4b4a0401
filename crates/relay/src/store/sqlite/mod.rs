//! The embedded default: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread ([`writer`]) that commits them in
//! batches, and a second thread copies the WAL into the database file
//! ([`checkpointer`]); reads use a separate pool (sqlx, async) and never
//! wait for the writer. The writer indexes messages for search after their
//! commit; a search waits for it to catch up ([`indexing`]).

mod checkpointer;
mod client_ids;
mod indexing;
mod search;
mod statements;
mod summaries;
mod writer;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kefu_protocol::agent::{AgentInfo, ConversationSummary, Role};
use kefu_protocol::trail::PageView;
use kefu_protocol::{Message, Seq, TimelineEvent};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::lanes::{self, Lane, LaneSenders};
use super::reads::{Queries, ReadSide};
use super::{
    AgentSend, Block, Change, Deleted, ListPage, ListQuery, NewFile, Reader, ResolveScope,
    SearchPage, SearchQuery, Store, StoreError, VisitorDetails, VisitorSend, to_millis,
};
use crate::ids::ConnId;
use checkpointer::{Checkpointer, DatabaseFile};
use indexing::IndexProgress;
use writer::{Doomed, Indexer, ReadBy, Request, WriteOp, Written};

/// Requests waiting for the writer, in each lane, before senders wait for
/// room.
const WRITE_QUEUE: usize = 4096;
/// How long a deletion waits for the search index to catch up with the
/// messages it deletes (a few thousand a second are indexed; only an
/// overloaded or failing writer takes longer, and the deletion is then
/// refused, to be tried again).
const INDEX_WAIT_FOR_DELETION: Duration = Duration::from_secs(30);
const READ_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite's text for the reads both backends share (see [`Queries`]).
static READS: Queries<Sqlite> = Queries {
    visitor_conversation: "SELECT id FROM conversations WHERE visitor_id = ?",
    summary: "WHERE c.id = ?",
    open_conversations: "WHERE c.status <> 'resolved' ORDER BY c.updated_at",
    messages_after: "WHERE conversation_id = ? AND seq > ? AND (NOT internal OR ?)
        ORDER BY seq LIMIT ?",
    messages_before: "WHERE conversation_id = ? AND seq < ? AND (NOT internal OR ?)
        ORDER BY seq DESC LIMIT ?",
    agents: "ORDER BY name",
    agent_by_token_hash: "WHERE token_hash = ? AND disabled = 0",
    agent_credentials: "SELECT id, token_hash FROM agents WHERE disabled = 0",
    conversation_ids: "SELECT id FROM conversations WHERE updated_at >= ? AND id > ?
        ORDER BY id LIMIT ?",
    // No index on `updated_at` (it would cost every message a page):
    // this scans the conversations, on a reader, once per many batches
    // (`retention::SCAN`).
    expired_conversations: "SELECT id FROM conversations
        WHERE status = 'resolved' AND updated_at < ? ORDER BY updated_at LIMIT ?",
    // The newest `limit`, turned oldest first.
    page_trail: "WHERE id IN (SELECT id FROM page_views WHERE visitor_id = ?
        ORDER BY at DESC, id DESC LIMIT ?) ORDER BY at, id",
    read_marks: "SELECT r.conversation_id, r.read_seq, r.visitor_messages
        FROM agent_reads r JOIN conversations c ON c.id = r.conversation_id
        WHERE r.agent_id = ? AND c.status <> 'resolved'",
    blocks: "SELECT range, reason, created_at, expires_at FROM blocks
        WHERE expires_at IS NULL OR expires_at > ? ORDER BY range",
    dialect: PhantomData,
};

pub struct SqliteStore {
    /// The database file, watched by [`Store::health`].
    path: PathBuf,
    reads: SqlitePool,
    searcher: search::Searcher,
    /// How far the writer has indexed messages for search.
    indexed: Arc<IndexProgress>,
    /// The task asking the writer to index ([`indexing::tick`]).
    ticker: AbortHandle,
    writes: LaneSenders<Request>,
    /// Resolves (with an error: its sender is dropped) when the writer
    /// thread has committed its last batch and closed the database.
    writer_done: Mutex<Option<oneshot::Receiver<()>>>,
    visitor_secret: Vec<u8>,
    /// Our own descriptor of the file, kept open until the store is
    /// dropped, after [`Store::close`] has closed every connection (the
    /// writer and the checkpointer hold clones of their own): see
    /// [`DatabaseFile`]. Last, so that it is dropped last.
    _database_file: DatabaseFile,
}

impl SqliteStore {
    pub async fn open(
        path: &Path,
        changes: Option<mpsc::Sender<Change>>,
    ) -> Result<SqliteStore, StoreError> {
        create_if_missing(path)?;
        // Never `create_if_missing` here: a pooled connection opened after
        // the file was deleted or moved would create an empty database in
        // its place, and `/readyz` would call that healthy.
        let options = SqliteConnectOptions::new()
            .filename(path)
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
        let searcher = search::Searcher::new(options);
        let database_file = DatabaseFile::open(path)?;
        let file = path.to_owned();
        let for_checkpoints = database_file.clone();
        let for_writer = database_file.clone();
        let (writer, checkpointer, indexer, visitor_secret) =
            tokio::task::spawn_blocking(move || {
                let (writer, visitor_secret) = writer::open(&file)?;
                let indexer = Indexer::open(&writer)?;
                let checkpointer = Checkpointer::start(&file, for_checkpoints)?;
                Ok::<_, StoreError>((writer, checkpointer, indexer, visitor_secret))
            })
            .await
            .map_err(|error| StoreError::Unavailable(format!("opening the writer: {error}")))??;

        let indexed = indexer.progress();
        let (writes, lanes) = lanes::channel(WRITE_QUEUE);
        let queue = writer::Queue::new(lanes)
            .map_err(|error| StoreError::Unavailable(format!("starting the writer: {error}")))?;
        let (done, writer_done) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("kefu-sqlite-writer".into())
            .spawn(move || {
                writer::run(writer, for_writer, checkpointer, indexer, queue, changes);
                drop(done);
            })
            .map_err(|error| StoreError::Unavailable(format!("starting the writer: {error}")))?;
        let ask = || Request::Index;
        let staff = writes.sender(Lane::Staff).downgrade();
        let ticker = tokio::spawn(indexing::tick(indexed.clone(), staff, ask));
        Ok(SqliteStore {
            path: path.to_owned(),
            reads,
            searcher,
            indexed,
            ticker: ticker.abort_handle(),
            writes,
            writer_done: Mutex::new(Some(writer_done)),
            visitor_secret,
            _database_file: database_file,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(op.lane(), Request::Write { op, reply })
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

/// Creates an empty file at `path` unless one is there: SQLite takes an
/// empty file for a new database. `create_new` never opens an existing
/// file, which matters: closing any descriptor of a database file drops
/// every POSIX lock this process holds on it, a store already open on the
/// same file included.
fn create_if_missing(path: &Path) -> Result<(), StoreError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Unavailable(format!(
            "creating {}: {error}",
            path.display()
        ))),
    }
}

impl ReadSide for SqliteStore {
    type Db = Sqlite;

    fn read_side(&self) -> (&'static Queries<Sqlite>, &SqlitePool) {
        (&READS, &self.reads)
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

    async fn resolve_in(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        scope: ResolveScope,
    ) -> Result<ConversationSummary, StoreError> {
        self.write_summary(WriteOp::Resolve {
            conversation_id: conversation_id.to_owned(),
            by: by.clone(),
            scope,
        })
        .await
    }

    async fn mark_read(
        &self,
        conversation_id: &str,
        reader: Reader<'_>,
        up_to_seq: Seq,
    ) -> Result<(), StoreError> {
        let reader = match reader {
            Reader::Visitor => ReadBy::Visitor,
            Reader::Agent(agent) => ReadBy::Agent(agent.clone()),
        };
        self.write(WriteOp::MarkRead {
            conversation_id: conversation_id.to_owned(),
            reader,
            up_to_seq,
        })
        .await
        .map(drop)
    }

    async fn record_event(
        &self,
        conversation_id: &str,
        event: TimelineEvent,
        origin: Option<ConnId>,
    ) -> Result<(), StoreError> {
        self.write(WriteOp::RecordEvent {
            conversation_id: conversation_id.to_owned(),
            event,
            origin,
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

    async fn record_page_views(
        &self,
        visitor_id: &str,
        views: Vec<PageView>,
    ) -> Result<bool, StoreError> {
        let written = self
            .write(WriteOp::PageViews {
                visitor_id: visitor_id.to_owned(),
                views,
            })
            .await?;
        Ok(!matches!(written, Written::NoConversation))
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

    async fn disable_agent(&self, name: &str) -> Result<(), StoreError> {
        self.write(WriteOp::DisableAgent {
            name: name.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn set_agent_token(&self, name: &str, token_hash: &str) -> Result<(), StoreError> {
        self.write(WriteOp::SetAgentToken {
            name: name.to_owned(),
            token_hash: token_hash.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn block(&self, block: &Block) -> Result<(), StoreError> {
        self.write(WriteOp::Block(block.clone())).await.map(drop)
    }

    async fn unblock(&self, range: &str) -> Result<(), StoreError> {
        self.write(WriteOp::Unblock {
            range: range.to_owned(),
        })
        .await
        .map(drop)
    }

    async fn visitor_secret(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.visitor_secret.clone())
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
        // Never open the file here: closing any descriptor of it drops the
        // process's POSIX locks on it, SQLite's too, and an admin command
        // closing its own connection next would then delete our WAL.
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

    async fn add_file(&self, file: NewFile) -> Result<(), StoreError> {
        self.write(WriteOp::AddFile(file)).await.map(drop)
    }

    async fn prune_files(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        match self
            .write(WriteOp::PruneFiles {
                before_ms: to_millis(before),
            })
            .await?
        {
            Written::Count(removed) => Ok(removed),
            _ => Err(StoreError::Corrupt(
                "writer answered with the wrong kind".into(),
            )),
        }
    }

    async fn delete_conversations(&self, ids: &[String]) -> Result<Deleted, StoreError> {
        let mut doomed = Vec::with_capacity(ids.len());
        for id in ids {
            let last_seq: Option<i64> = sqlx::query_scalar(
                "SELECT last_seq FROM conversations WHERE id = ? AND status = 'resolved'",
            )
            .bind(id)
            .fetch_optional(&self.reads)
            .await?;
            if let Some(last_seq) = last_seq {
                doomed.push(Doomed {
                    id: id.clone(),
                    last_seq,
                    search_rows: Vec::new(),
                });
            }
        }
        if doomed.is_empty() {
            return Ok(Deleted::default());
        }
        // Messages are indexed after their commit: every one committed up
        // to the `last_seq` just read is in the index before it is scanned,
        // or its row would be left behind, holding the deleted text.
        let deadline = tokio::time::Instant::now() + INDEX_WAIT_FOR_DELETION;
        (self.indexed)
            .caught_up(
                (self.writes.sender(Lane::Staff), Request::Index),
                deadline,
                INDEX_WAIT_FOR_DELETION,
            )
            .await?;
        // One scan of the index for the whole batch, on a reader, after
        // `last_seq` was read: a row written since belongs to a message
        // that moved `last_seq`, and the writer then skips its conversation.
        let marks = vec!["?"; doomed.len()].join(", ");
        let sql = format!(
            "SELECT rowid, conversation_id FROM message_search WHERE conversation_id IN ({marks})"
        );
        let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
        for conversation in &doomed {
            query = query.bind(&conversation.id);
        }
        for (rowid, conversation_id) in query.fetch_all(&self.reads).await? {
            if let Some(conversation) = doomed.iter_mut().find(|c| c.id == conversation_id) {
                conversation.search_rows.push(rowid);
            }
        }
        match self.write(WriteOp::DeleteConversations(doomed)).await? {
            Written::Deleted(deleted) => Ok(deleted),
            _ => Err(StoreError::Corrupt(
                "writer answered with the wrong kind".into(),
            )),
        }
    }

    async fn close(&self) {
        // Refused when the writer is already gone; then there is nothing to stop.
        let _ = self.writes.send(Lane::Staff, Request::Stop).await;
        let done = self
            .writer_done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(done) = done {
            let _ = done.await;
        }
        self.searcher.close().await;
        self.reads.close().await;
    }

    /// Waits first, within the query's budget, for the index to hold every
    /// message committed so far (see [`indexing`]).
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let deadline = tokio::time::Instant::now() + query.budget;
        (self.indexed)
            .caught_up(
                (self.writes.sender(Lane::Staff), Request::Index),
                deadline,
                query.budget,
            )
            .await?;
        self.searcher.search(query, deadline).await
    }

    async fn list_conversations(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.searcher.list(query).await
    }
}

impl Drop for SqliteStore {
    /// The ticker would otherwise wait for commits that never come.
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

fn unavailable(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{}: {why}", path.display()))
}
