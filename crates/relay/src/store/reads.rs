//! The read queries both backends answer the same way, written once.
//!
//! The two schemas have the same tables and columns, so a read differs
//! between SQLite and PostgreSQL only in its SQL text: placeholders (`?` or
//! `$1`) and booleans (`disabled = 0` or `NOT disabled`). Each backend
//! states its own text in a [`Queries`] next to its other SQL, where it can
//! be read and checked against its schema; what is the same (binding,
//! paging, turning rows into protocol types) is here.
//!
//! The writes are not shared: SQLite's run on the writer thread through
//! rusqlite, PostgreSQL's are transactions that lock rows and notify the
//! cluster, so they have little but their SQL in common.
//!
//! [`Reads`] is a supertrait of [`super::Store`], answered for every
//! backend by one implementation over its [`ReadSide`] (its SQL and its
//! pool). That hook stays inside the store: callers see only [`Reads`].

use std::marker::PhantomData;

use async_trait::async_trait;
use kefu_protocol::Message;
use kefu_protocol::agent::{AgentInfo, AgentReadMark, ConversationSummary};
use kefu_protocol::trail::{MAX_TRAIL, PageView};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use time::OffsetDateTime;

use super::blocks::{Block, BlockRow};
use super::rows::{
    AGENT_SELECT, AgentRow, MESSAGE_SELECT, MessageRow, PAGE_VIEW_SELECT, PageViewRow, ReadMarkRow,
    SUMMARY_SELECT, SummaryRow, convert, seq_to_sql,
};
use super::{AgentAccount, Page, StoreError, to_millis};

/// One backend's SQL for the shared reads. A field named after a `…_SELECT`
/// of [`super::rows`] holds only what follows it (`WHERE …`, `ORDER BY …`);
/// each field's doc says what is bound, in order.
pub(super) struct Queries<DB> {
    /// The whole query; binds the visitor id, selects a conversation id.
    pub visitor_conversation: &'static str,
    /// After [`SUMMARY_SELECT`]; binds the conversation id.
    pub summary: &'static str,
    /// After [`SUMMARY_SELECT`]; binds nothing.
    pub open_conversations: &'static str,
    /// After [`MESSAGE_SELECT`]; binds the conversation id, the `seq` to
    /// start after, whether internal notes are included, and the limit.
    pub messages_after: &'static str,
    /// After [`MESSAGE_SELECT`], newest first; binds the conversation id,
    /// the `seq` to stop before, whether internal notes are included, and
    /// the limit.
    pub messages_before: &'static str,
    /// After [`AGENT_SELECT`]; binds nothing.
    pub agents: &'static str,
    /// After [`AGENT_SELECT`]; binds the token hash.
    pub agent_by_token_hash: &'static str,
    /// The whole query; binds nothing; selects the id and token hash of
    /// every enabled agent.
    pub agent_credentials: &'static str,
    /// The whole query; binds the oldest `updated_at` (milliseconds), the id
    /// to start after and the limit; selects conversation ids.
    pub conversation_ids: &'static str,
    /// The whole query; binds the newest `updated_at` (milliseconds) kept
    /// and the limit; selects the ids of resolved conversations updated
    /// before it, oldest first.
    pub expired_conversations: &'static str,
    /// After [`PAGE_VIEW_SELECT`], oldest first; binds the visitor id and
    /// the limit, and selects the newest that many.
    pub page_trail: &'static str,
    /// The whole query; binds the agent id; selects a [`ReadMarkRow`] for
    /// each waiting or active conversation the agent has read.
    pub read_marks: &'static str,
    /// The whole query; binds now (milliseconds); selects a [`BlockRow`]
    /// for every block not expired by then.
    pub blocks: &'static str,
    pub dialect: PhantomData<fn() -> DB>,
}

impl<DB> Queries<DB>
where
    DB: Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> SummaryRow: FromRow<'r, DB::Row>,
{
    /// A conversation's summary on any executor: PostgreSQL's writes read
    /// it back inside their own transaction.
    pub async fn summary<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
        conversation_id: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let row: Option<SummaryRow> = sqlx::query_as(&format!("{SUMMARY_SELECT} {}", self.summary))
            .bind(conversation_id)
            .fetch_optional(executor)
            .await?;
        row.map(ConversationSummary::try_from).transpose()
    }
}

/// Where a backend answers the shared reads: its SQL text and the pool the
/// reads run on.
pub(super) trait ReadSide: Send + Sync {
    type Db: Database;

    fn read_side(&self) -> (&'static Queries<Self::Db>, &Pool<Self::Db>);
}

/// The reads of a [`super::Store`].
#[async_trait]
pub trait Reads: Send + Sync {
    /// The visitor's conversation, if they ever wrote.
    async fn visitor_conversation(&self, visitor_id: &str) -> Result<Option<String>, StoreError>;

    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationSummary>, StoreError>;

    /// Every waiting and active conversation.
    async fn open_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError>;

    /// Messages in ascending `seq`; internal notes only if asked for.
    async fn messages(
        &self,
        conversation_id: &str,
        page: Page,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError>;

    async fn agents(&self) -> Result<Vec<AgentAccount>, StoreError>;

    /// The visitor's stored page trail, oldest first (at most
    /// [`MAX_TRAIL`] pages).
    async fn page_trail(&self, visitor_id: &str) -> Result<Vec<PageView>, StoreError>;

    /// The agent's own read positions in the waiting and active
    /// conversations (those in its `welcome`).
    async fn read_marks(&self, agent_id: &str) -> Result<Vec<AgentReadMark>, StoreError>;

    /// The enabled agent holding this token.
    async fn agent_by_token_hash(&self, token_hash: &str) -> Result<Option<AgentInfo>, StoreError>;

    /// `(agent id, token hash)` of every enabled agent: what a signed-in
    /// connection must still match to keep its rights.
    async fn agent_credentials(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// The blocks in force at `now`, by range.
    async fn blocks(&self, now: OffsetDateTime) -> Result<Vec<Block>, StoreError>;

    /// Conversation ids in ascending order after `after_id`, at most `limit`,
    /// of the conversations updated at or after `since`: pages for `export`.
    async fn conversation_ids(
        &self,
        since: Option<OffsetDateTime>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// At most `limit` resolved conversations with nothing new since
    /// before `before`, oldest first: what a retention setting deletes.
    async fn expired_conversations(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
}

#[async_trait]
impl<T> Reads for T
where
    T: ReadSide,
    for<'q> <T::Db as Database>::Arguments<'q>: IntoArguments<'q, T::Db>,
    for<'q> &'q str: Encode<'q, T::Db> + Type<T::Db>,
    for<'q> i64: Encode<'q, T::Db> + Type<T::Db>,
    for<'q> bool: Encode<'q, T::Db> + Type<T::Db>,
    for<'r> String: Decode<'r, T::Db> + Type<T::Db>,
    usize: ColumnIndex<<T::Db as Database>::Row>,
    for<'r> SummaryRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'r> MessageRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'r> AgentRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'r> PageViewRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'r> ReadMarkRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'r> BlockRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'c> &'c mut <T::Db as Database>::Connection: Executor<'c, Database = T::Db>,
{
    async fn visitor_conversation(&self, visitor_id: &str) -> Result<Option<String>, StoreError> {
        let (sql, pool) = self.read_side();
        Ok(sqlx::query_scalar(sql.visitor_conversation)
            .bind(visitor_id)
            .fetch_optional(pool)
            .await?)
    }

    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let (sql, pool) = self.read_side();
        sql.summary(pool, conversation_id).await
    }

    async fn open_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        let (sql, pool) = self.read_side();
        let rows: Vec<SummaryRow> =
            sqlx::query_as(&format!("{SUMMARY_SELECT} {}", sql.open_conversations))
                .fetch_all(pool)
                .await?;
        convert(rows)
    }

    async fn messages(
        &self,
        conversation_id: &str,
        page: Page,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError> {
        let (sql, pool) = self.read_side();
        let (tail, from, limit) = match page {
            Page::After { after, limit } => (sql.messages_after, seq_to_sql(after), limit),
            Page::Before { before, limit } => (
                sql.messages_before,
                before.map_or(i64::MAX, seq_to_sql),
                limit,
            ),
        };
        let mut rows: Vec<MessageRow> = sqlx::query_as(&format!("{MESSAGE_SELECT} {tail}"))
            .bind(conversation_id)
            .bind(from)
            .bind(include_internal)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        if let Page::Before { .. } = page {
            rows.reverse();
        }
        convert(rows)
    }

    async fn agents(&self) -> Result<Vec<AgentAccount>, StoreError> {
        let (sql, pool) = self.read_side();
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} {}", sql.agents))
            .fetch_all(pool)
            .await?;
        convert(rows)
    }

    async fn page_trail(&self, visitor_id: &str) -> Result<Vec<PageView>, StoreError> {
        let (sql, pool) = self.read_side();
        let rows: Vec<PageViewRow> =
            sqlx::query_as(&format!("{PAGE_VIEW_SELECT} {}", sql.page_trail))
                .bind(visitor_id)
                .bind(MAX_TRAIL as i64)
                .fetch_all(pool)
                .await?;
        Ok(rows.into_iter().map(PageView::from).collect())
    }

    async fn read_marks(&self, agent_id: &str) -> Result<Vec<AgentReadMark>, StoreError> {
        let (sql, pool) = self.read_side();
        let rows: Vec<ReadMarkRow> = sqlx::query_as(sql.read_marks)
            .bind(agent_id)
            .fetch_all(pool)
            .await?;
        Ok(rows.into_iter().map(AgentReadMark::from).collect())
    }

    async fn agent_by_token_hash(&self, token_hash: &str) -> Result<Option<AgentInfo>, StoreError> {
        let (sql, pool) = self.read_side();
        let row: Option<AgentRow> =
            sqlx::query_as(&format!("{AGENT_SELECT} {}", sql.agent_by_token_hash))
                .bind(token_hash)
                .fetch_optional(pool)
                .await?;
        Ok(row
            .map(AgentAccount::try_from)
            .transpose()?
            .map(|account| account.info))
    }

    async fn agent_credentials(&self) -> Result<Vec<(String, String)>, StoreError> {
        let (sql, pool) = self.read_side();
        Ok(sqlx::query_as(sql.agent_credentials)
            .fetch_all(pool)
            .await?)
    }

    async fn blocks(&self, now: OffsetDateTime) -> Result<Vec<Block>, StoreError> {
        let (sql, pool) = self.read_side();
        let rows: Vec<BlockRow> = sqlx::query_as(sql.blocks)
            .bind(to_millis(now))
            .fetch_all(pool)
            .await?;
        Ok(rows.into_iter().map(Block::from).collect())
    }

    async fn conversation_ids(
        &self,
        since: Option<OffsetDateTime>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let (sql, pool) = self.read_side();
        Ok(sqlx::query_scalar(sql.conversation_ids)
            .bind(since.map_or(i64::MIN, to_millis))
            .bind(after_id.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?)
    }

    async fn expired_conversations(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let (sql, pool) = self.read_side();
        Ok(sqlx::query_scalar(sql.expired_conversations)
            .bind(to_millis(before))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?)
    }
}
