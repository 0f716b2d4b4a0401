//! PostgreSQL: the store of a cluster of relays.
//!
//! A message, a visitor's or an agent's, is made by [`sends`] with a
//! function of migration 0012 (made leaner by 0013) that makes the whole
//! write. [`batch`]'s writer tasks group-commit them, many to a statement
//! that is one transaction (see there for why PostgreSQL's own group
//! commit does not batch them), which since 0015 makes the batch's plain
//! writes (a message to a conversation that goes on) set by set; a visitor's first send and a send with
//! files are a statement of their own. Every other write is one
//! transaction on a pooled connection. Writers on different nodes are
//! serialized per conversation by the row lock that `UPDATE conversations
//! … RETURNING last_seq` (or `SELECT … FOR UPDATE`) takes, which makes
//! `seq` gap-free and claim races single-winner across nodes. A duplicate
//! `client_id` trips the unique index; the write then answers with the
//! original message.
//!
//! Each committing transaction also `NOTIFY`s the cluster of its change
//! (see [`bus`], which owns the `LISTEN`/`NOTIFY` side); the reads both
//! backends share take their PostgreSQL text from [`reads`]; [`trail`]
//! writes the visitors' page trails.

mod batch;
mod bus;
mod deletion;
mod files;
mod reads;
mod search;
mod sends;
mod trail;
mod writes;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use kefu_protocol::agent::{AgentInfo, ConversationSummary, Role};
use kefu_protocol::trail::PageView;
use kefu_protocol::{AuthorKind, Message, Seq, TimelineEvent};
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::{self, agent_author, event_message};
use super::reads::{Queries, ReadSide};
use super::rows::seq_to_sql;
use super::rules::{self, Decision, ReadsForVisitor};
use super::{
    AgentSend, Block, Change, Deleted, ListPage, ListQuery, NewFile, Reader, ResolveScope,
    SearchPage, SearchQuery, Store, StoreError, VisitorDetails, VisitorSend, now_millis, to_millis,
};
use crate::cluster::{ChangeRef, ClusterLink, NodeId};
use crate::ids::ConnId;
use crate::{auth, ids};
use writes::{
    Tx, assign, has_replied, insert_row, lock_conversation, move_agent_mark, require_summary,
    upsert_visitor, visitor_conversation, visitor_messages_up_to,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const POOL_CONNECTIONS: u32 = 16;

pub struct PgStore {
    pool: PgPool,
    searcher: search::Searcher,
    node: NodeId,
    visitor_secret: Vec<u8>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    sends: sends::Sends,
}

impl PgStore {
    /// Connects and migrates. With `changes`, also starts listening to the
    /// cluster and returns the hub's end of it.
    pub async fn open(
        url: &str,
        changes: Option<mpsc::Sender<Change>>,
    ) -> Result<(PgStore, Option<ClusterLink>), StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        // sqlx takes an advisory lock: relays starting together migrate once.
        MIGRATOR.run(&pool).await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('visitor_secret', $1) ON CONFLICT DO NOTHING",
        )
        .bind(auth::new_secret())
        .execute(&pool)
        .await?;
        let visitor_secret: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'visitor_secret'")
                .fetch_one(&pool)
                .await?;
        let node = ids::new_id();
        let store = PgStore {
            pool: pool.clone(),
            searcher: search::Searcher::new(url)?,
            sends: sends::Sends::start(&pool, &node),
            node,
            visitor_secret,
            tasks: Mutex::new(Vec::new()),
        };
        let Some(changes) = changes else {
            return Ok((store, None));
        };
        let (tasks, link) = bus::start(&store.pool, &store.node, changes).await?;
        *store.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        Ok((store, Some(link)))
    }

    /// Stores `event`, which the transaction so far made happen, as message
    /// `seq` (moving `last_seq` is the caller's), and tells the cluster;
    /// the conversation's summary as it now is. `origin` as for a message
    /// (see `Change::Message`).
    async fn insert_event(
        &self,
        tx: &mut Tx,
        conversation_id: &str,
        seq: Seq,
        event: TimelineEvent,
        origin: Option<ConnId>,
    ) -> Result<ConversationSummary, StoreError> {
        let message = event_message(conversation_id, seq, event, now_millis());
        insert_row(tx, &message).await?;
        self.notify_message(tx, &message, origin).await
    }

    /// Tells the cluster of `message`, with its conversation's summary as
    /// this transaction leaves it, which it also returns.
    async fn notify_message(
        &self,
        tx: &mut Tx,
        message: &Message,
        origin: Option<ConnId>,
    ) -> Result<ConversationSummary, StoreError> {
        let summary = require_summary(tx, &message.conversation_id).await?;
        bus::notify_message(tx, &self.node, message, summary.clone(), origin).await?;
        Ok(summary)
    }

    /// Records `event` after the conversation's `last_seq` and commits the
    /// transaction that made it happen.
    async fn write_event(
        &self,
        mut tx: Tx,
        conversation_id: &str,
        last_seq: Seq,
        event: TimelineEvent,
    ) -> Result<ConversationSummary, StoreError> {
        let seq = last_seq + 1;
        sqlx::query("UPDATE conversations SET last_seq = $2 WHERE id = $1")
            .bind(conversation_id)
            .bind(seq_to_sql(seq))
            .execute(&mut *tx)
            .await?;
        let summary = self
            .insert_event(&mut tx, conversation_id, seq, event, None)
            .await?;
        writes::commit(tx).await?;
        Ok(summary)
    }
}

impl ReadSide for PgStore {
    type Db = Postgres;

    fn read_side(&self) -> (&'static Queries<Postgres>, &PgPool) {
        self.pool.read_side()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn visitor_send(&self, send: VisitorSend) -> Result<Message, StoreError> {
        self.sends.visitor_send(send).await
    }

    async fn agent_send(&self, send: AgentSend) -> Result<Message, StoreError> {
        self.sends.agent_send(send).await
    }

    async fn claim(
        &self,
        conversation_id: &str,
        agent: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError> {
        let mut tx = writes::begin(&self.pool).await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        if rules::claim(&state, agent)? == Decision::Unchanged {
            return require_summary(&mut tx, conversation_id).await;
        }
        assign(&mut tx, conversation_id, &agent.id).await?;
        let by = agent_author(agent);
        let event = TimelineEvent::Claimed { by };
        self.write_event(tx, conversation_id, state.last_seq, event)
            .await
    }

    async fn transfer(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        to_agent: &str,
    ) -> Result<ConversationSummary, StoreError> {
        let mut tx = writes::begin(&self.pool).await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        rules::transfer(&state, by)?;
        let target: Option<String> =
            sqlx::query_scalar("SELECT name FROM agents WHERE id = $1 AND NOT disabled")
                .bind(to_agent)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(to_name) = target else {
            return Err(StoreError::NotFound("agent"));
        };
        assign(&mut tx, conversation_id, to_agent).await?;
        let event = events::transferred(by, to_agent, to_name);
        self.write_event(tx, conversation_id, state.last_seq, event)
            .await
    }

    async fn resolve_in(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        scope: ResolveScope,
    ) -> Result<ConversationSummary, StoreError> {
        let mut tx = writes::begin(&self.pool).await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        if rules::resolve(&state, by, scope)? == Decision::Unchanged {
            return require_summary(&mut tx, conversation_id).await;
        }
        sqlx::query(
            "UPDATE conversations SET status = 'resolved', waiting_since = NULL, updated_at = $2
             WHERE id = $1",
        )
        .bind(conversation_id)
        .bind(to_millis(now_millis()))
        .execute(&mut *tx)
        .await?;
        let by = agent_author(by);
        let event = TimelineEvent::Resolved { by };
        self.write_event(tx, conversation_id, state.last_seq, event)
            .await
    }

    async fn record_event(
        &self,
        conversation_id: &str,
        event: TimelineEvent,
        origin: Option<ConnId>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        let seq = state.last_seq + 1;
        sqlx::query("UPDATE conversations SET last_seq = $2, updated_at = $3 WHERE id = $1")
            .bind(conversation_id)
            .bind(seq_to_sql(seq))
            .bind(to_millis(now_millis()))
            .execute(&mut *tx)
            .await?;
        self.insert_event(&mut tx, conversation_id, seq, event, origin)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_read(
        &self,
        conversation_id: &str,
        reader: Reader<'_>,
        up_to_seq: Seq,
    ) -> Result<(), StoreError> {
        let mut tx = writes::begin(&self.pool).await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        let up_to = up_to_seq.min(state.last_seq);
        let change = match reader {
            Reader::Visitor => {
                let moved = sqlx::query(
                    "UPDATE conversations SET visitor_read_seq = $2
                     WHERE id = $1 AND visitor_read_seq < $2",
                )
                .bind(conversation_id)
                .bind(seq_to_sql(up_to))
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() == 0 {
                    return Ok(());
                }
                ChangeRef::Read {
                    conversation_id: conversation_id.to_owned(),
                    reader: AuthorKind::Visitor,
                    up_to_seq: up_to,
                }
            }
            Reader::Agent(agent) => {
                let visitor_messages =
                    visitor_messages_up_to(&mut tx, conversation_id, up_to).await?;
                let own =
                    move_agent_mark(&mut tx, &agent.id, conversation_id, up_to, visitor_messages)
                        .await?;
                let answers = match rules::reads_for_visitor(&state, agent) {
                    ReadsForVisitor::Yes => true,
                    ReadsForVisitor::No => false,
                    ReadsForVisitor::IfReplied => {
                        has_replied(&mut tx, conversation_id, &agent.id).await?
                    }
                };
                let seen = answers
                    && sqlx::query(
                        "UPDATE conversations SET agent_read_seq = $2, unread = (
                             SELECT count(*) FROM messages
                             WHERE conversation_id = $1 AND author_kind = 'visitor' AND seq > $2)
                         WHERE id = $1 AND agent_read_seq < $2",
                    )
                    .bind(conversation_id)
                    .bind(seq_to_sql(up_to))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                if !own && !seen {
                    return Ok(());
                }
                ChangeRef::AgentRead {
                    conversation_id: conversation_id.to_owned(),
                    agent_id: agent.id.clone(),
                    up_to_seq: up_to,
                    visitor_messages,
                    own,
                    seen,
                }
            }
        };
        bus::notify(&mut tx, &change).await?;
        writes::commit(tx).await?;
        Ok(())
    }

    async fn update_visitor(
        &self,
        visitor_id: &str,
        details: VisitorDetails,
    ) -> Result<(), StoreError> {
        let mut tx = writes::begin(&self.pool).await?;
        let Some(conversation_id) = visitor_conversation(&mut tx, visitor_id).await? else {
            // Page views of visitors who never wrote are not recorded.
            return Ok(());
        };
        let before = require_summary(&mut tx, &conversation_id).await?;
        upsert_visitor(&mut tx, visitor_id, &details, to_millis(now_millis())).await?;
        let after = require_summary(&mut tx, &conversation_id).await?;
        if before.visitor != after.visitor {
            bus::notify_summary(&mut tx, &conversation_id).await?;
        }
        writes::commit(tx).await?;
        Ok(())
    }

    async fn record_page_views(
        &self,
        visitor_id: &str,
        views: Vec<PageView>,
    ) -> Result<bool, StoreError> {
        trail::record_page_views(&self.pool, visitor_id, &views).await
    }

    async fn add_agent(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
    ) -> Result<AgentInfo, StoreError> {
        let info = AgentInfo {
            id: ids::new_id(),
            name: name.to_owned(),
            role,
        };
        let inserted = sqlx::query(
            "INSERT INTO agents (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&info.id)
        .bind(&info.name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(to_millis(now_millis()))
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "an agent named {name:?} already exists"
            )));
        }
        Ok(info)
    }

    async fn disable_agent(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE agents SET disabled = TRUE WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        one_agent(done.rows_affected())
    }

    async fn set_agent_token(&self, name: &str, token_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE agents SET token_hash = $1 WHERE name = $2")
            .bind(token_hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        one_agent(done.rows_affected())
    }

    async fn block(&self, block: &Block) -> Result<(), StoreError> {
        let (range, reason, created_at, expires_at) = block.columns();
        sqlx::query(
            "INSERT INTO blocks (range, reason, created_at, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (range) DO UPDATE SET reason = $2, created_at = $3, expires_at = $4",
        )
        .bind(range)
        .bind(reason)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn unblock(&self, range: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM blocks WHERE range = $1")
            .bind(range)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("block"));
        }
        Ok(())
    }

    async fn visitor_secret(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.visitor_secret.clone())
    }

    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The data lives in the server, which has its own consistent online
    /// backup tool.
    async fn backup(&self, _path: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(
            "a PostgreSQL database is backed up with pg_dump, e.g. pg_dump --format=custom",
        ))
    }

    async fn add_file(&self, file: NewFile) -> Result<(), StoreError> {
        files::add_file(&self.pool, &file).await
    }

    async fn prune_files(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        files::prune_files(&self.pool, to_millis(before)).await
    }

    async fn delete_conversations(&self, ids: &[String]) -> Result<Deleted, StoreError> {
        deletion::delete_conversations(&self.pool, ids).await
    }

    async fn close(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
        // Writes are transactions that completed before their caller
        // returned, but for those queued for a batch, which the writer
        // makes first; closing waits for connections in use to come back.
        self.sends.close().await;
        self.searcher.close().await;
        self.pool.close().await;
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.searcher.search(query).await
    }

    async fn list_conversations(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.searcher.list(query).await
    }
}

/// An update by agent name found its agent.
fn one_agent(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound("agent"));
    }
    Ok(())
}
