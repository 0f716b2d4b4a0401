//! PostgreSQL: the store of a cluster of relays, and its message bus.
//!
//! Every write is one transaction on a pooled connection; PostgreSQL's own
//! group commit batches concurrent commits. Writers on different nodes are
//! serialized per conversation by the row lock that `UPDATE conversations
//! … RETURNING last_seq` (or `SELECT … FOR UPDATE`) takes, which makes
//! `seq` gap-free and claim races single-winner across nodes. A duplicate
//! `client_id` trips the unique index; the write then answers with the
//! original message.
//!
//! Each committing transaction also `NOTIFY`s a [`ChangeRef`], delivered to
//! every node (this one included) once committed and in commit order. The
//! [`listen`] task reads the rows and feeds the hub, so a node's own writes
//! and those of other nodes reach clients in one order.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use kefu_protocol::agent::{AgentInfo, ConversationSummary, Role};
use kefu_protocol::{Author, AuthorKind, Message, ReadReceipt, Seq};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::mpsc;
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
use crate::cluster::{self, ChangeRef, ClusterEvent, ClusterInput, ClusterLink, Envelope, NodeId};
use crate::ids::ConnId;
use crate::{auth, ids};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const POOL_CONNECTIONS: u32 = 16;
/// Ephemeral events waiting to be published before new ones are dropped.
const EVENT_QUEUE: usize = 1024;
/// Cluster input waiting for the hub before the listener waits.
const INPUT_QUEUE: usize = 4096;

type Tx = Transaction<'static, Postgres>;

pub struct PgStore {
    pool: PgPool,
    node: NodeId,
    visitor_secret: Vec<u8>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
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
        let store = PgStore {
            pool,
            node: ids::new_id(),
            visitor_secret,
            tasks: Mutex::new(Vec::new()),
        };
        let Some(changes) = changes else {
            return Ok((store, None));
        };
        let (outgoing, to_publish) = mpsc::channel(EVENT_QUEUE);
        let (to_hub, incoming) = mpsc::channel(INPUT_QUEUE);
        let listener = PgListener::connect_with(&store.pool).await?;
        let tasks = vec![
            tokio::spawn(listen(
                listener,
                store.pool.clone(),
                store.node.clone(),
                changes,
                to_hub,
            )),
            tokio::spawn(publish(store.pool.clone(), store.node.clone(), to_publish)),
        ];
        *store.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        let link = ClusterLink {
            node: store.node.clone(),
            outgoing,
            incoming,
        };
        Ok((store, Some(link)))
    }

    async fn notify(&self, tx: &mut Tx, change: &ChangeRef) -> Result<(), StoreError> {
        let payload = serde_json::to_string(change)
            .map_err(|error| StoreError::Corrupt(format!("change reference: {error}")))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(cluster::CHANGES_CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn notify_summary(&self, tx: &mut Tx, conversation_id: &str) -> Result<(), StoreError> {
        let change = ChangeRef::Summary {
            conversation_id: conversation_id.to_owned(),
        };
        self.notify(tx, &change).await
    }

    async fn notify_message(
        &self,
        tx: &mut Tx,
        message: &Message,
        origin: Option<ConnId>,
    ) -> Result<(), StoreError> {
        let change = ChangeRef::Message {
            conversation_id: message.conversation_id.clone(),
            seq: message.seq,
            node: self.node.clone(),
            origin: origin.map(ConnId::raw),
        };
        self.notify(tx, &change).await
    }

    /// Inserts a message; `None` if its `client_id` was stored meanwhile by
    /// a concurrent resend (the transaction is then rolled back).
    async fn insert_message(
        &self,
        mut tx: Tx,
        message: &Message,
    ) -> Result<Option<Tx>, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                                   author_name, text, internal, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => Ok(Some(tx)),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                tx.rollback().await?;
                Ok(None)
            }
            Err(error) => Err(error.into()),
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

    async fn write_summary_change(
        &self,
        mut tx: Tx,
        conversation_id: &str,
    ) -> Result<ConversationSummary, StoreError> {
        self.notify_summary(&mut tx, conversation_id).await?;
        let summary = require_summary(&mut tx, conversation_id).await?;
        tx.commit().await?;
        Ok(summary)
    }
}

async fn existing_message<'e>(
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

/// Locks the conversation row for the rest of the transaction.
async fn lock_conversation(
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

async fn load_summary<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    conversation_id: &str,
) -> Result<Option<ConversationSummary>, StoreError> {
    let row: Option<SummaryRow> = sqlx::query_as(&format!("{SUMMARY_SELECT} WHERE c.id = $1"))
        .bind(conversation_id)
        .fetch_optional(executor)
        .await?;
    row.map(ConversationSummary::try_from).transpose()
}

async fn require_summary(
    tx: &mut Tx,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    load_summary(&mut **tx, conversation_id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))
}

async fn assign(tx: &mut Tx, conversation_id: &str, agent_id: &str) -> Result<(), StoreError> {
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

async fn upsert_visitor(
    tx: &mut Tx,
    visitor_id: &str,
    details: &VisitorDetails,
    now_ms: i64,
) -> Result<(), StoreError> {
    let profile = &details.profile;
    // A field the page did not send keeps its old value.
    sqlx::query(
        "INSERT INTO visitors (id, name, email, page_url, page_title, referrer, lang, user_agent,
                               created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, visitors.name),
             email = coalesce(excluded.email, visitors.email),
             page_url = coalesce(excluded.page_url, visitors.page_url),
             page_title = coalesce(excluded.page_title, visitors.page_title),
             referrer = coalesce(excluded.referrer, visitors.referrer),
             lang = coalesce(excluded.lang, visitors.lang),
             user_agent = coalesce(excluded.user_agent, visitors.user_agent),
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn visitor_send(&self, send: VisitorSend) -> Result<Message, StoreError> {
        if let Some(original) = existing_message(
            &self.pool,
            AuthorKind::Visitor,
            &send.visitor_id,
            &send.client_id,
        )
        .await?
        {
            return Ok(original);
        }
        let now = now_millis();
        let now_ms = to_millis(now);
        let mut tx = self.pool.begin().await?;
        upsert_visitor(&mut tx, &send.visitor_id, &send.details, now_ms).await?;
        sqlx::query(
            "INSERT INTO conversations (id, visitor_id, status, waiting_since, created_at, updated_at)
             VALUES ($1, $2, 'waiting', $3, $3, $3) ON CONFLICT (visitor_id) DO NOTHING",
        )
        .bind(ids::new_id())
        .bind(&send.visitor_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        // Takes the row lock that orders concurrent writers, and reopens a
        // resolved conversation (every expression sees the old row).
        let row = sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + 1, unread = unread + 1,
                 preview = $2, updated_at = $3,
                 status = CASE WHEN status = 'resolved' THEN 'waiting' ELSE status END,
                 assignee = CASE WHEN status = 'resolved' THEN NULL ELSE assignee END,
                 waiting_since = CASE WHEN status = 'resolved' THEN $3 ELSE waiting_since END
             WHERE visitor_id = $1 RETURNING id, last_seq",
        )
        .bind(&send.visitor_id)
        .bind(preview_of(&send.text))
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM visitors WHERE id = $1")
            .bind(&send.visitor_id)
            .fetch_one(&mut *tx)
            .await?;
        let message = Message {
            conversation_id: row.try_get("id")?,
            seq: seq_from_sql(row.try_get("last_seq")?),
            id: ids::new_id(),
            client_id: send.client_id.clone(),
            author: Author {
                kind: AuthorKind::Visitor,
                id: send.visitor_id.clone(),
                name: name
                    .filter(|name| !name.trim().is_empty())
                    .unwrap_or_else(|| default_visitor_name(&send.visitor_id)),
            },
            text: send.text,
            at: now,
            internal: false,
        };
        let Some(mut tx) = self.insert_message(tx, &message).await? else {
            return self
                .original(AuthorKind::Visitor, &send.visitor_id, &send.client_id)
                .await;
        };
        self.notify_message(&mut tx, &message, send.origin).await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn agent_send(&self, send: AgentSend) -> Result<Message, StoreError> {
        if let Some(original) = existing_message(
            &self.pool,
            AuthorKind::Agent,
            &send.agent.id,
            &send.client_id,
        )
        .await?
        {
            return Ok(original);
        }
        let mut tx = self.pool.begin().await?;
        let state = lock_conversation(&mut tx, &send.conversation_id).await?;
        if rules::reply(&state, &send.agent, send.internal)? == Decision::Assign {
            assign(&mut tx, &send.conversation_id, &send.agent.id).await?;
        }
        let now = now_millis();
        let seq = state.last_seq + 1;
        // A reply means the agent has read what came before it; a note
        // changes neither the preview nor the read marks.
        sqlx::query(
            "UPDATE conversations SET last_seq = $2, updated_at = $3,
                 preview = CASE WHEN $4 THEN preview ELSE $5 END,
                 agent_read_seq = CASE WHEN $4 THEN agent_read_seq ELSE $2 END,
                 unread = CASE WHEN $4 THEN unread ELSE 0 END
             WHERE id = $1",
        )
        .bind(&send.conversation_id)
        .bind(seq_to_sql(seq))
        .bind(to_millis(now))
        .bind(send.internal)
        .bind(preview_of(&send.text))
        .execute(&mut *tx)
        .await?;
        let message = Message {
            conversation_id: send.conversation_id.clone(),
            seq,
            id: ids::new_id(),
            client_id: send.client_id.clone(),
            author: Author {
                kind: AuthorKind::Agent,
                id: send.agent.id.clone(),
                name: send.agent.name.clone(),
            },
            text: send.text,
            at: now,
            internal: send.internal,
        };
        let Some(mut tx) = self.insert_message(tx, &message).await? else {
            return self
                .original(AuthorKind::Agent, &send.agent.id, &send.client_id)
                .await;
        };
        self.notify_message(&mut tx, &message, send.origin).await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn claim(
        &self,
        conversation_id: &str,
        agent: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        if rules::claim(&state, agent)? == Decision::Unchanged {
            return require_summary(&mut tx, conversation_id).await;
        }
        assign(&mut tx, conversation_id, &agent.id).await?;
        self.write_summary_change(tx, conversation_id).await
    }

    async fn transfer(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
        to_agent: &str,
    ) -> Result<ConversationSummary, StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        rules::transfer(&state, by)?;
        let target: Option<String> =
            sqlx::query_scalar("SELECT id FROM agents WHERE id = $1 AND NOT disabled")
                .bind(to_agent)
                .fetch_optional(&mut *tx)
                .await?;
        if target.is_none() {
            return Err(StoreError::NotFound("agent"));
        }
        assign(&mut tx, conversation_id, to_agent).await?;
        self.write_summary_change(tx, conversation_id).await
    }

    async fn resolve(
        &self,
        conversation_id: &str,
        by: &AgentInfo,
    ) -> Result<ConversationSummary, StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        if rules::resolve(&state, by)? == Decision::Unchanged {
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
        self.write_summary_change(tx, conversation_id).await
    }

    async fn mark_read(
        &self,
        conversation_id: &str,
        reader: AuthorKind,
        up_to_seq: Seq,
    ) -> Result<(), StoreError> {
        let (column, recount) = match reader {
            AuthorKind::Visitor => ("visitor_read_seq", false),
            AuthorKind::Agent => ("agent_read_seq", true),
            AuthorKind::System => return Err(StoreError::Forbidden("the system reads nothing")),
        };
        let mut tx = self.pool.begin().await?;
        let state = lock_conversation(&mut tx, conversation_id).await?;
        let up_to = up_to_seq.min(state.last_seq);
        let moved = sqlx::query(&format!(
            "UPDATE conversations SET {column} = $2 WHERE id = $1 AND {column} < $2"
        ))
        .bind(conversation_id)
        .bind(seq_to_sql(up_to))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(());
        }
        if recount {
            sqlx::query(
                "UPDATE conversations SET unread = (
                     SELECT count(*) FROM messages
                     WHERE conversation_id = $1 AND author_kind = 'visitor' AND seq > $2)
                 WHERE id = $1",
            )
            .bind(conversation_id)
            .bind(seq_to_sql(up_to))
            .execute(&mut *tx)
            .await?;
        }
        let change = ChangeRef::Read {
            conversation_id: conversation_id.to_owned(),
            reader,
            up_to_seq: up_to,
        };
        self.notify(&mut tx, &change).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_visitor(
        &self,
        visitor_id: &str,
        details: VisitorDetails,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(conversation_id): Option<String> =
            sqlx::query_scalar("SELECT id FROM conversations WHERE visitor_id = $1")
                .bind(visitor_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            // Page views of visitors who never wrote are not recorded.
            return Ok(());
        };
        let before = require_summary(&mut tx, &conversation_id).await?;
        upsert_visitor(&mut tx, visitor_id, &details, to_millis(now_millis())).await?;
        let after = require_summary(&mut tx, &conversation_id).await?;
        if before.visitor != after.visitor {
            self.notify_summary(&mut tx, &conversation_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn visitor_conversation(&self, visitor_id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM conversations WHERE visitor_id = $1")
                .bind(visitor_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        load_summary(&self.pool, conversation_id).await
    }

    async fn open_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        open_conversations(&self.pool).await
    }

    async fn messages(
        &self,
        conversation_id: &str,
        page: Page,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = match page {
            Page::After { after, limit } => {
                sqlx::query_as(&format!(
                "{MESSAGE_SELECT} WHERE conversation_id = $1 AND seq > $2 AND (NOT internal OR $3)
                     ORDER BY seq LIMIT $4"
            ))
                .bind(conversation_id)
                .bind(seq_to_sql(after))
                .bind(include_internal)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            Page::Before { before, limit } => {
                let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
                    "{MESSAGE_SELECT} WHERE conversation_id = $1 AND seq < $2 AND (NOT internal OR $3)
                     ORDER BY seq DESC LIMIT $4"
                ))
                .bind(conversation_id)
                .bind(before.map_or(i64::MAX, seq_to_sql))
                .bind(include_internal)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
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

    async fn agents(&self) -> Result<Vec<AgentAccount>, StoreError> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        convert(rows)
    }

    async fn disable_agent(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE agents SET disabled = TRUE WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("agent"));
        }
        Ok(())
    }

    async fn agent_by_token_hash(&self, token_hash: &str) -> Result<Option<AgentInfo>, StoreError> {
        let row: Option<AgentRow> = sqlx::query_as(&format!(
            "{AGENT_SELECT} WHERE token_hash = $1 AND NOT disabled"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
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
        let ids = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE updated_at >= $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(since.map_or(i64::MIN, to_millis))
        .bind(after_id.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
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

    async fn close(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
        // Writes are transactions that completed before their caller
        // returned; closing waits for connections in use to come back.
        self.pool.close().await;
    }
}

async fn open_conversations<'e>(
    executor: impl sqlx::PgExecutor<'e>,
) -> Result<Vec<ConversationSummary>, StoreError> {
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "{SUMMARY_SELECT} WHERE c.status <> 'resolved' ORDER BY c.updated_at"
    ))
    .fetch_all(executor)
    .await?;
    convert(rows)
}

/// Listens to both channels; turns change references into [`Change`]s for
/// the hub and forwards other nodes' events.
async fn listen(
    mut listener: PgListener,
    pool: PgPool,
    node: NodeId,
    changes: mpsc::Sender<Change>,
    to_hub: mpsc::Sender<ClusterInput>,
) {
    if let Err(error) = listener
        .listen_all([cluster::CHANGES_CHANNEL, cluster::EVENTS_CHANNEL])
        .await
    {
        tracing::error!(%error, "cannot LISTEN; cross-node fan-out is off");
        return;
    }
    loop {
        // `try_recv` answers `None` when the connection dropped (and will be
        // re-established): whatever was sent meanwhile is lost to us.
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => {
                tracing::warn!("lost the LISTEN connection; resyncing clients");
                match open_conversations(&pool).await {
                    Ok(open) => {
                        if to_hub.send(ClusterInput::Resync(open)).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::error!(%error, "cannot reload conversations"),
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let payload = notification.payload();
        if notification.channel() == cluster::EVENTS_CHANNEL {
            match serde_json::from_str::<Envelope>(payload) {
                Ok(envelope) if envelope.node == node => {}
                Ok(envelope) => {
                    if to_hub.send(ClusterInput::Event(envelope)).await.is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "undecodable cluster event"),
            }
            continue;
        }
        let change = match serde_json::from_str::<ChangeRef>(payload) {
            Ok(change) => resolve_change(&pool, &node, change).await,
            Err(error) => {
                tracing::warn!(%error, "undecodable change reference");
                continue;
            }
        };
        match change {
            Ok(Some(change)) => {
                if changes.send(change).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "cannot read a committed change"),
        }
    }
}

/// Reads what a change reference names.
async fn resolve_change(
    pool: &PgPool,
    node: &str,
    change: ChangeRef,
) -> Result<Option<Change>, StoreError> {
    Ok(match change {
        ChangeRef::Message {
            conversation_id,
            seq,
            node: from,
            origin,
        } => {
            let row: Option<MessageRow> = sqlx::query_as(&format!(
                "{MESSAGE_SELECT} WHERE conversation_id = $1 AND seq = $2"
            ))
            .bind(&conversation_id)
            .bind(seq_to_sql(seq))
            .fetch_optional(pool)
            .await?;
            let Some(message) = row.map(Message::try_from).transpose()? else {
                return Ok(None);
            };
            let Some(summary) = load_summary(pool, &conversation_id).await? else {
                return Ok(None);
            };
            let origin = origin.filter(|_| from == node).map(ConnId::from_raw);
            Some(Change::Message {
                message,
                summary,
                origin,
            })
        }
        ChangeRef::Summary { conversation_id } => load_summary(pool, &conversation_id)
            .await?
            .map(|summary| Change::Summary { summary }),
        ChangeRef::Read {
            conversation_id,
            reader,
            up_to_seq,
        } => load_summary(pool, &conversation_id)
            .await?
            .map(|summary| Change::Read {
                receipt: ReadReceipt {
                    conversation_id,
                    reader,
                    up_to_seq,
                },
                summary,
            }),
    })
}

/// Publishes this node's ephemeral events, in order.
async fn publish(pool: PgPool, node: NodeId, mut events: mpsc::Receiver<ClusterEvent>) {
    while let Some(event) = events.recv().await {
        let envelope = Envelope {
            node: node.clone(),
            event,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            continue;
        };
        if payload.len() > cluster::MAX_PAYLOAD {
            tracing::warn!(bytes = payload.len(), "cluster event too large to publish");
            continue;
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(cluster::EVENTS_CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "cannot publish a cluster event");
        }
    }
}
