//! PostgreSQL's search (see `store::search`): `ILIKE` served by pg_trgm's
//! GIN indexes, on a pool of its own, each query in a read-only
//! transaction whose `statement_timeout` is what is left of its budget.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Transaction};
use tokio::time::Instant;

use super::super::StoreError;
use super::super::rows::{SUMMARY_COLUMNS, SummaryRow};
use super::super::search::{HitRow, ListPage, ListQuery, SearchPage, SearchQuery, like_pattern};

/// Searches answered at once by this relay; more wait, within their budget.
const SEARCH_CONNECTIONS: u32 = 2;
/// PostgreSQL's code for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

pub(super) struct Searcher {
    pool: PgPool,
}

impl Searcher {
    pub(super) fn new(url: &str) -> Result<Searcher, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(SEARCH_CONNECTIONS)
            .min_connections(0)
            .connect_lazy(url)?;
        Ok(Searcher { pool })
    }

    pub(super) async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let deadline = Instant::now() + query.budget;
        let mut tx = self.transaction(deadline, query.budget).await?;
        let within = |error| timed_out(error, query.budget);
        let rows: Vec<HitRow> = hits_sql(query)
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(within)?;
        let visitors: Vec<SummaryRow> = match query.before {
            Some(_) => Vec::new(),
            None => query
                .visitors_sql("ILIKE")
                .build_query_as()
                .fetch_all(&mut *tx)
                .await
                .map_err(within)?,
        };
        query.page(rows, visitors)
    }

    pub(super) async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let deadline = Instant::now() + query.budget;
        let mut tx = self.transaction(deadline, query.budget).await?;
        let rows: Vec<SummaryRow> = query
            .sql()
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(|error| timed_out(error, query.budget))?;
        query.page(rows)
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    /// A read-only transaction whose statements are cancelled at
    /// `deadline`. It is rolled back when dropped: it wrote nothing.
    async fn transaction(
        &self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let left = || {
            let left = deadline.saturating_duration_since(Instant::now());
            // Spent already: refused here, not left to a race between the
            // query and a timeout of a millisecond.
            if left.is_zero() {
                Err(StoreError::TimedOut(budget))
            } else {
                Ok(left)
            }
        };
        left()?;
        let mut tx = tokio::time::timeout_at(deadline, self.pool.begin())
            .await
            .map_err(|_| StoreError::TimedOut(budget))??;
        // At least a millisecond: 0 would mean no timeout at all.
        let left = left()?.as_millis().max(1);
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await?;
        // SET takes no parameters; `left` is a number.
        sqlx::query(&format!("SET LOCAL statement_timeout = {left}"))
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// The hits, newest first; pg_trgm's index finds the rows holding a term
/// of three characters or more, the planner walks `message_search`'s
/// primary key backwards when hits are common.
fn hits_sql(query: &SearchQuery) -> QueryBuilder<'_, Postgres> {
    let mut sql = QueryBuilder::new(format!(
        "SELECT s.id AS hit_id, s.seq AS hit_seq, s.text AS hit_text,
            s.internal AS hit_internal, s.at AS hit_at, {SUMMARY_COLUMNS}
        FROM message_search s
        JOIN conversations c ON c.id = s.conversation_id
        JOIN visitors v ON v.id = c.visitor_id
        WHERE"
    ));
    for term in &query.terms {
        sql.push(" s.text ILIKE ")
            .push_bind(like_pattern(term))
            .push(" ESCAPE '\\' AND");
    }
    query.push_filters(&mut sql, "s.at");
    if let Some(before) = query.before {
        sql.push(" AND s.id < ").push_bind(before);
    }
    sql.push(" ORDER BY s.id DESC LIMIT ")
        .push_bind(i64::from(query.limit) + 1);
    sql
}

fn timed_out(error: sqlx::Error, budget: Duration) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
            StoreError::TimedOut(budget)
        }
        _ => StoreError::Database(error),
    }
}
