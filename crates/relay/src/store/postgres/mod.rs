//! PostgreSQL: the store of a cluster of relays.
//!
//! A message, a visitor's or an agent's, is made by a function of
//! migration 0012 (made leaner by 0013) that makes the whole write.
//! [`batch`]'s writer tasks group-commit them, many to a statement that is
//! one transaction (see there for why PostgreSQL's own group commit does
//! not batch them); a visitor's first send and a send with files are a
//! statement of their own. Every other write is one transaction on a
//! pooled connection. Writers on different nodes are serialized per conversation
//! by the row lock that `UPDATE conversations … RETURNING last_seq` (or
//! `SELECT … FOR UPDATE`) takes, which makes `seq` gap-free and claim
//! races single-winner across nodes. A duplicate `client_id` trips the
//! unique index; the write then answers with the original message.
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
mod trail;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kefu_protocol::agent::{AgentInfo, ConversationSummary, Role};
use kefu_protocol::trail::PageView;
use kefu_protocol::{AuthorKind, Message, Seq, TimelineEvent};
use serde_json::json;
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::{self, agent_author, event_message};
use super::files::attachments_refused;
use super::reads::{Queries, ReadSide};
use super::rows::{link_to_sql, seq_to_sql};
use super::rules::{self, Decision, ReadsForVisitor};
use super::{
    AgentSend, Block, Change, Deleted, ListPage, ListQuery, NewFile, Reader, ResolveScope,
    SearchPage, SearchQuery, Store, StoreError, VisitorDetails, VisitorSend, default_visitor_name,
    now_millis, preview_of, to_millis,
};
use crate::cluster::{ChangeRef, ClusterLink, NodeId};
use crate::ids::ConnId;
use crate::{auth, ids};
use batch::{Batcher, Write};
use writes::{
    Tx, assign, existing_message, has_replied, insert_row, lock_conversation, move_agent_mark,
    require_summary, upsert_visitor, visitor_conversation, visitor_messages_up_to,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const POOL_CONNECTIONS: u32 = 16;
/// Visitors whose conversation a relay remembers, for batching their sends.
const SEEN_CONVERSATIONS: usize = 100_000;

pub struct PgStore {
    pool: PgPool,
    searcher: search::Searcher,
    node: NodeId,
    visitor_secret: Vec<u8>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    batcher: Arc<Batcher>,
    /// Visitor id → the conversation this relay last saw them write in.
    conversations: Mutex<HashMap<String, String>>,
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
            batcher: Batcher::start(&pool, &node),
            node,
            visitor_secret,
            tasks: Mutex::new(Vec::new()),
            conversations: Mutex::new(HashMap::new()),
        };
        let Some(changes) = changes else {
            return Ok((store, None));
        };
        let (tasks, link) = bus::start(&store.pool, &store.node, changes).await?;
        *store.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        Ok((store, Some(link)))
    }

    /// `send` as `kefu_send_batch` (migration 0012) takes a visitor's
    /// message, its ids made once: made again alone after its batch
    /// failed, it is the same write.
    fn visitor_write(&self, send: VisitorSend) -> Write {
        let profile = send.details.profile;
        json!({
            "kind": "visitor",
            "visitor_id": send.visitor_id,
            "client_id": send.client_id,
            "message_id": ids::new_id(),
            // The reopen event's, used only if the send reopens.
            "event_id": ids::new_id(),
            // The conversation's, used only by the first send.
            "conversation_id": ids::new_id(),
            "preview": preview_of(&send.text, send.attachments.len()),
            "text": send.text,
            "at": to_millis(now_millis()),
            "default_name": default_visitor_name(&send.visitor_id),
            "name": profile.name,
            "email": profile.email,
            "page_url": profile.page_url,
            "page_title": profile.page_title,
            "referrer": profile.referrer,
            "lang": profile.lang,
            "user_agent": send.details.user_agent,
            "address": send.details.address,
            "attachments": send.attachments,
            "origin": origin_to_sql(send.origin),
        })
    }

    /// `send` as `kefu_send_batch` takes an agent's message, given what the
    /// rule for a reply decides in each of `rules::states`.
    fn agent_write(&self, send: AgentSend, decisions: Vec<&'static str>) -> Write {
        json!({
            "kind": "agent",
            "conversation_id": send.conversation_id,
            "agent_id": send.agent.id,
            "agent_name": send.agent.name,
            "client_id": send.client_id,
            "message_id": ids::new_id(),
            "preview": preview_of(&send.text, send.attachments.len()),
            "text": send.text,
            "internal": send.internal,
            "link": link_to_sql(send.link.as_ref()),
            "at": to_millis(now_millis()),
            "attachments": send.attachments,
            "decisions": decisions,
            "origin": origin_to_sql(send.origin),
        })
    }

    /// The conversation this relay last saw `visitor_id` write in.
    fn visitor_conversation_seen(&self, visitor_id: &str) -> Option<String> {
        let seen = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(visitor_id).cloned()
    }

    fn saw_visitor_conversation(&self, visitor_id: &str, conversation_id: &str) {
        let mut seen = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(visitor_id).map(String::as_str) == Some(conversation_id) {
            return;
        }
        // Bounded: forgetting costs a visitor's next send its batch.
        if seen.len() >= SEEN_CONVERSATIONS {
            seen.clear();
        }
        seen.insert(visitor_id.to_owned(), conversation_id.to_owned());
    }

    /// Makes a message write of migration 0012: in the next batch if it
    /// locks the row of conversation `batched` and no other (see
    /// [`batch`]), else alone, one statement that is its own transaction,
    /// committed when it answers (sqlx reads to `ReadyForQuery`). Either
    /// way it finishes, durable, whether or not the caller still waits
    /// (see `writes::begin`). The stored message, or the original of a
    /// resend, also when it raced the original.
    async fn write_message(
        &self,
        write: Write,
        batched: Option<String>,
        kind: AuthorKind,
        author_id: &str,
        client_id: &str,
    ) -> Result<Message, Refused> {
        let written = match batched {
            Some(conversation_id) => self.batcher.write(conversation_id, write).await?,
            None => {
                let (pool, node) = (self.pool.clone(), self.node.clone());
                writes::detached(async move { Ok(batch::write_alone(&pool, &node, write).await) })
                    .await?
            }
        };
        match written {
            Ok(row) => Ok(Message::try_from(row)?),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Ok(self.original(kind, author_id, client_id).await?)
            }
            Err(sqlx::Error::Database(error)) => Err(match error.code().as_deref() {
                Some("KF404") => Refused::Store(StoreError::NotFound("conversation")),
                Some("KF403") => Refused::Store(attachments_refused()),
                Some("KF409") => match error.message().parse() {
                    Ok(state) => Refused::Rule(state),
                    Err(_) => Refused::Store(StoreError::from(sqlx::Error::Database(error))),
                },
                _ => Refused::Store(StoreError::from(sqlx::Error::Database(error))),
            }),
            Err(error) => Err(Refused::Store(error.into())),
        }
    }

    /// The message a resend refers to, after a lost race with the original.
    async fn original(
        &self,
        kind: AuthorKind,
        author_id: &str,
        client_id: &str,
    ) -> Result<Message, StoreError> {
        existing_message(&self.pool, kind, author_id, client_id)
            .await?
            .ok_or(StoreError::Conflict("client_id is in use".into()))
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
        // A visitor whose conversation this relay has seen is batched
        // under it (see `batch`); a first send, or one with files, goes
        // alone.
        let known = (send.attachments.is_empty())
            .then(|| self.visitor_conversation_seen(&send.visitor_id))
            .flatten();
        let visitor_id = send.visitor_id.clone();
        let client_id = send.client_id.clone();
        let write = self.visitor_write(send);
        let message = self
            .write_message(write, known, AuthorKind::Visitor, &visitor_id, &client_id)
            .await
            .map_err(|refused| refused.into_error(|_| None))?;
        self.saw_visitor_conversation(&visitor_id, &message.conversation_id);
        Ok(message)
    }

    async fn agent_send(&self, send: AgentSend) -> Result<Message, StoreError> {
        // The rule for a reply, decided here for every state the
        // conversation may be in; the write picks the one it finds.
        let states = rules::states(&send.agent);
        let decisions: Vec<&'static str> = states
            .iter()
            .map(
                |state| match rules::reply(state, &send.agent, send.internal) {
                    Ok(Decision::Assign) => "assign",
                    Ok(_) => "proceed",
                    Err(_) => "refuse",
                },
            )
            .collect();
        let batched = send
            .attachments
            .is_empty()
            .then(|| send.conversation_id.clone());
        let (agent, internal, client_id) =
            (send.agent.clone(), send.internal, send.client_id.clone());
        let write = self.agent_write(send, decisions);
        self.write_message(write, batched, AuthorKind::Agent, &agent.id, &client_id)
            .await
            .map_err(|refused| {
                refused.into_error(|state| match states.get(state) {
                    Some(state) => rules::reply(state, &agent, internal).err(),
                    None => None,
                })
            })
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
        self.batcher.close().await;
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

/// A connection's id as `kefu_send_batch` takes it, to carry in the
/// notification.
fn origin_to_sql(origin: Option<ConnId>) -> Option<i64> {
    origin.and_then(|origin| i64::try_from(origin.raw()).ok())
}

/// Why a message write did not store a message.
enum Refused {
    Store(StoreError),
    /// The store's rules refused it in state `.0` of `rules::states`.
    Rule(usize),
}

impl Refused {
    /// The error; a rule's refusal asks `rule` for it, given the state.
    fn into_error(self, rule: impl FnOnce(usize) -> Option<StoreError>) -> StoreError {
        match self {
            Refused::Store(error) => error,
            Refused::Rule(state) => rule(state).unwrap_or_else(|| {
                StoreError::Corrupt(format!(
                    "a write refused in state {state}, which the rules allow"
                ))
            }),
        }
    }
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        Refused::Store(error)
    }
}

/// An update by agent name found its agent.
fn one_agent(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound("agent"));
    }
    Ok(())
}
