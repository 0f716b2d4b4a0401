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
/// Most indexed trigrams a two-character term is looked up through (see
/// migration 0013). More mean the term is common: LIKE then finds a page of
/// it in the newest messages sooner than hundreds of lookups would.
const MAX_TRIGRAMS_PER_TERM: usize = 256;

/// How a term shorter than a trigram is matched.
enum ShortTerm<'a> {
    /// Any of these indexed trigrams (none: the term occurs nowhere).
    Trigrams(Vec<String>),
    /// LIKE over the text: a single character, or a common pair.
    Like(&'a str),
}

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

    /// `deadline`: the end of `query.budget`, which may have started
    /// before (waiting for the index).
    pub(super) async fn search(
        &self,
        query: &SearchQuery,
        deadline: Instant,
    ) -> Result<SearchPage, StoreError> {
        let mut conn = self.connection(deadline, query.budget).await?;
        let within = |error| timed_out(error, deadline, query.budget);
        let (indexed, short) = query.terms_by_length();
        let mut short_terms = Vec::with_capacity(short.len());
        for term in short {
            short_terms.push(short_term(&mut conn, term).await.map_err(within)?);
        }
        let absent = (short_terms.iter())
            .any(|term| matches!(term, ShortTerm::Trigrams(trigrams) if trigrams.is_empty()));
        let rows: Vec<HitRow> = if absent {
            Vec::new()
        } else {
            hits_sql(query, &indexed, &short_terms)
                .build_query_as()
                .fetch_all(&mut *conn)
                .await
                .map_err(within)?
        };
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

/// How `term` (under three characters) is matched: a pair through the
/// trigrams that start with it, read from the index's sorted vocabulary.
async fn short_term<'a>(
    conn: &mut PoolConnection<Sqlite>,
    term: &'a str,
) -> Result<ShortTerm<'a>, sqlx::Error> {
    let mut chars = term.chars();
    let (Some(first), Some(second), None) = (chars.next(), chars.next(), chars.next()) else {
        return Ok(ShortTerm::Like(term));
    };
    // Every trigram `term…` sorts at or after `term` and before `term`
    // with its last character's successor (text compares by code point).
    let Some(next) = successor(second) else {
        return Ok(ShortTerm::Like(term));
    };
    let end = format!("{first}{next}");
    let trigrams: Vec<String> = sqlx::query_scalar(
        "SELECT term FROM message_search_terms WHERE term >= ? AND term < ? LIMIT ?",
    )
    .bind(term)
    .bind(&end)
    .bind(MAX_TRIGRAMS_PER_TERM as i64 + 1)
    .fetch_all(&mut **conn)
    .await?;
    Ok(if trigrams.len() > MAX_TRIGRAMS_PER_TERM {
        ShortTerm::Like(term)
    } else {
        ShortTerm::Trigrams(trigrams)
    })
}

/// The next character, skipping the surrogate gap.
fn successor(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        c => char::from_u32(u32::from(c) + 1),
    }
}

/// An FTS5 phrase: `term` quoted, quotes doubled.
fn phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// The hits, newest first: terms of three characters or more through the
/// FTS5 index (a quoted phrase each, which trigram matches anywhere), and
/// pairs through their trigrams, in one MATCH; the others with LIKE.
/// `CROSS JOIN` keeps `message_search` the outer loop, so that rows come
/// in rowid order and the scan stops at a full page. The text is returned
/// without the index's end sentinel.
fn hits_sql<'a>(
    query: &'a SearchQuery,
    indexed: &[&str],
    short: &[ShortTerm<'a>],
) -> QueryBuilder<'a, Sqlite> {
    let mut sql = QueryBuilder::new(format!(
        "SELECT message_search.rowid AS hit_id, message_search.seq AS hit_seq,
            rtrim(message_search.text, char(1)) AS hit_text,
            message_search.internal AS hit_internal,
            message_search.at AS hit_at, {SUMMARY_COLUMNS}
        FROM message_search
        CROSS JOIN conversations c ON c.id = message_search.conversation_id
        CROSS JOIN visitors v ON v.id = c.visitor_id
        WHERE"
    ));
    let mut matches: Vec<String> = indexed.iter().map(|term| phrase(term)).collect();
    for term in short {
        match term {
            ShortTerm::Trigrams(trigrams) => {
                let any: Vec<String> = trigrams.iter().map(|t| phrase(t)).collect();
                matches.push(format!("({})", any.join(" OR ")));
            }
            ShortTerm::Like(term) => {
                sql.push(" message_search.text LIKE ")
                    .push_bind(like_pattern(term))
                    .push(" ESCAPE '\\' AND");
            }
        }
    }
    if !matches.is_empty() {
        sql.push(" message_search MATCH ")
            .push_bind(matches.join(" AND "))
            .push(" AND");
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
