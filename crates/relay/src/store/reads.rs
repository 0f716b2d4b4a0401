//! The read queries both backends answer the same way, written once.
//!
//! The two schemas have the same tables and columns, so a read differs
//! between SQLite and PostgreSQL only in its SQL text: placeholders (`?` or
//! `$1`) and booleans (`disabled = 0` or `NOT disabled`). Each backend
//! states its own text in a [`Reads`] next to its other SQL, where it can be
//! read and checked against its schema; what is the same (binding,
//! paging, turning rows into protocol types) is here.
//!
//! The writes are not shared: SQLite's run on the writer thread through
//! rusqlite, PostgreSQL's are transactions that lock rows and notify the
//! cluster, so they have little but their SQL in common.
//!
//! Each backend's `Store` implementation still lists the eight read methods,
//! each a one-line call into its [`Reads`]: the trait asks every
//! implementor for them, and answering them once in the trait would need it
//! to expose a hook to the backend's pool, public because the trait is.

use std::marker::PhantomData;

use kefu_protocol::Message;
use kefu_protocol::agent::{AgentInfo, ConversationSummary};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Type};
use time::OffsetDateTime;

use super::rows::{
    AGENT_SELECT, AgentRow, MESSAGE_SELECT, MessageRow, SUMMARY_SELECT, SummaryRow, convert,
    seq_to_sql,
};
use super::{AgentAccount, Page, StoreError, to_millis};

/// One backend's SQL for the shared reads. A field named after a `…_SELECT`
/// of [`super::rows`] holds only what follows it (`WHERE …`, `ORDER BY …`);
/// each field's doc says what is bound, in order.
pub(super) struct Reads<DB> {
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
    /// The whole query; binds the oldest `updated_at` (milliseconds), the id
    /// to start after and the limit; selects conversation ids.
    pub conversation_ids: &'static str,
    pub dialect: PhantomData<fn() -> DB>,
}

impl<DB> Reads<DB>
where
    DB: Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> SummaryRow: FromRow<'r, DB::Row>,
    for<'r> MessageRow: FromRow<'r, DB::Row>,
    for<'r> AgentRow: FromRow<'r, DB::Row>,
{
    pub async fn visitor_conversation<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
        visitor_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(self.visitor_conversation)
            .bind(visitor_id)
            .fetch_optional(executor)
            .await?)
    }

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

    pub async fn open_conversations<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<SummaryRow> =
            sqlx::query_as(&format!("{SUMMARY_SELECT} {}", self.open_conversations))
                .fetch_all(executor)
                .await?;
        convert(rows)
    }

    pub async fn messages<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
        conversation_id: &str,
        page: Page,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError> {
        let (tail, from, limit) = match page {
            Page::After { after, limit } => (self.messages_after, seq_to_sql(after), limit),
            Page::Before { before, limit } => (
                self.messages_before,
                before.map_or(i64::MAX, seq_to_sql),
                limit,
            ),
        };
        let mut rows: Vec<MessageRow> = sqlx::query_as(&format!("{MESSAGE_SELECT} {tail}"))
            .bind(conversation_id)
            .bind(from)
            .bind(include_internal)
            .bind(i64::from(limit))
            .fetch_all(executor)
            .await?;
        if let Page::Before { .. } = page {
            rows.reverse();
        }
        convert(rows)
    }

    pub async fn agents<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
    ) -> Result<Vec<AgentAccount>, StoreError> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} {}", self.agents))
            .fetch_all(executor)
            .await?;
        convert(rows)
    }

    pub async fn agent_by_token_hash<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
        token_hash: &str,
    ) -> Result<Option<AgentInfo>, StoreError> {
        let row: Option<AgentRow> =
            sqlx::query_as(&format!("{AGENT_SELECT} {}", self.agent_by_token_hash))
                .bind(token_hash)
                .fetch_optional(executor)
                .await?;
        Ok(row
            .map(AgentAccount::try_from)
            .transpose()?
            .map(|account| account.info))
    }

    pub async fn conversation_ids<'e>(
        &self,
        executor: impl Executor<'e, Database = DB>,
        since: Option<OffsetDateTime>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(self.conversation_ids)
            .bind(since.map_or(i64::MIN, to_millis))
            .bind(after_id.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(executor)
            .await?)
    }
}
