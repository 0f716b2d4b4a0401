//! SQLite's search (see `store::search`): FTS5's trigram index over
//! `message_search`, on connections of its own, each query interrupted by a
//! progress handler once its budget is spent.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite};
use tokio::time::Instant;

use super::super::StoreError;
use super::super::rows::{SUMMARY_COLUMNS, SummaryRow};
use super::super::search::{HitRow, ListPage, ListQuery, SearchPage, SearchQuery, like_pattern};

/// Searches answered at once; more wait for a connection, within their
/// budget. Two leave the read pool and the writer room on a small machine.
const SEARCH_CONNECTIONS: u32 = 2;
/// SQLite virtual-machine steps between two looks at the clock: well under
/// a millisecond of work.
const STEPS_PER_CHECK: i32 = 10_000;

/// The search side's own pool.
pub(super) struct Searcher {
    pool: SqlitePool,
}

impl Searcher {
    /// Connections open when first needed: a relay nobody searches holds
    /// none.
    pub(super) fn new(options: SqliteConnectOptions) -> Searcher {
        let pool = SqlitePoolOptions::new()
            .max_connections(SEARCH_CONNECTIONS)
            .min_connections(0)
            .connect_lazy_with(options);
        Searcher { pool }
    }

    pub(super) async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let deadline = Instant::now() + query.budget;
        let mut conn = self.connection(deadline, query.budget).await?;
        let within = |error| timed_out(error, deadline, query.budget);
        let rows: Vec<HitRow> = hits_sql(query)
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(within)?;
        let visitors: Vec<SummaryRow> = match query.before {
            Some(_) => Vec::new(),
            None => query
                .visitors_sql("LIKE")
                .build_query_as()
                .fetch_all(&mut *conn)
                .await
                .map_err(within)?,
        };
        query.page(rows, visitors)
    }

    pub(super) async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let deadline = Instant::now() + query.budget;
        let mut conn = self.connection(deadline, query.budget).await?;
        let rows: Vec<SummaryRow> = query
            .sql()
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(|error| timed_out(error, deadline, query.budget))?;
        query.page(rows)
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    /// A connection whose queries stop at `deadline`.
    async fn connection(
        &self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<PoolConnection<Sqlite>, StoreError> {
        let mut conn = tokio::time::timeout_at(deadline, self.pool.acquire())
            .await
            .map_err(|_| StoreError::TimedOut(budget))??;
        // A connection ready at once can come with no time left.
        if Instant::now() >= deadline {
            return Err(StoreError::TimedOut(budget));
        }
        let deadline = deadline.into_std();
        // Replaces the handler the connection's previous query left.
        conn.lock_handle()
            .await?
            .set_progress_handler(STEPS_PER_CHECK, move || {
                std::time::Instant::now() < deadline
            });
        Ok(conn)
    }
}

/// The hits, newest first: terms of three characters or more through the
/// FTS5 index (a quoted phrase each, which trigram matches anywhere), the
/// others with LIKE. `CROSS JOIN` keeps `message_search` the outer loop, so
/// that rows come in rowid order and the scan stops at a full page.
fn hits_sql(query: &SearchQuery) -> QueryBuilder<'_, Sqlite> {
    let mut sql = QueryBuilder::new(format!(
        "SELECT message_search.rowid AS hit_id, message_search.seq AS hit_seq,
            message_search.text AS hit_text, message_search.internal AS hit_internal,
            message_search.at AS hit_at, {SUMMARY_COLUMNS}
        FROM message_search
        CROSS JOIN conversations c ON c.id = message_search.conversation_id
        CROSS JOIN visitors v ON v.id = c.visitor_id
        WHERE"
    ));
    let (indexed, short) = query.terms_by_length();
    if !indexed.is_empty() {
        let phrases: Vec<String> = indexed
            .iter()
            .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
            .collect();
        sql.push(" message_search MATCH ")
            .push_bind(phrases.join(" "))
            .push(" AND");
    }
    for term in short {
        sql.push(" message_search.text LIKE ")
            .push_bind(like_pattern(term))
            .push(" ESCAPE '\\' AND");
    }
    query.push_filters(&mut sql, "message_search.at");
    if let Some(before) = query.before {
        sql.push(" AND message_search.rowid < ").push_bind(before);
    }
    sql.push(" ORDER BY message_search.rowid DESC LIMIT ")
        .push_bind(i64::from(query.limit) + 1);
    sql
}

/// A query the progress handler stopped is out of time; anything else is
/// the database's error.
fn timed_out(error: sqlx::Error, deadline: Instant, budget: Duration) -> StoreError {
    if Instant::now() >= deadline {
        StoreError::TimedOut(budget)
    } else {
        StoreError::Database(error)
    }
}
