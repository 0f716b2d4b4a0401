//! Search and the paged conversation list: the part both backends share.
//!
//! A query is split into terms; a message matches when its text holds every
//! term, anywhere, ignoring case (a substring match, so scripts without
//! spaces work). Each backend keeps a `message_search` table (migrations
//! `*_search.sql`) whose growing id orders hits newest first and is the
//! page cursor. PostgreSQL writes it in the message's own transaction (a
//! batch of message writes, with one statement); SQLite after the commit, and its searches wait until it
//! holds every message committed when they started (`sqlite::indexing`):
//! on both, a search finds every message acknowledged before it.
//! SQLite looks terms of three characters or more up in its FTS5 trigram
//! index and checks shorter ones with LIKE over the hits (or, with only
//! short terms, over the newest rows until a page is full); PostgreSQL
//! hands every term to `ILIKE`, served by pg_trgm's GIN index when it can.
//!
//! Searches read on their own connections, never the writer's, and each
//! has a time budget past which it stops with [`StoreError::TimedOut`].
//! Visitors are matched by name and email on the first page only.

use std::time::Duration;

use kefu_protocol::agent::search::{SearchField, SearchHit};
use kefu_protocol::agent::{ConversationStatus, ConversationSummary};
use sqlx::{Database, Encode, QueryBuilder, Type};
use time::OffsetDateTime;

use super::rows::{SUMMARY_SELECT, SummaryRow, seq_from_sql};
use super::{StoreError, to_millis, to_time};

/// Terms past this many are ignored: each one is a condition to check.
pub const MAX_TERMS: usize = 8;
/// Characters of matched text kept around the first match in a snippet.
const SNIPPET_BEFORE: usize = 40;
const SNIPPET_CHARS: usize = 120;

/// A search, as the store runs it.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Lower-cased, non-empty, at most [`MAX_TERMS`].
    pub(super) terms: Vec<String>,
    pub status: Option<ConversationStatus>,
    pub assignee: Option<String>,
    pub visitor_id: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// The `message_search` id this page starts below; `None` for the
    /// first page, which also lists matching visitors.
    pub before: Option<i64>,
    pub limit: u32,
    /// How long the search may take, waiting for a connection included.
    pub budget: Duration,
}

impl SearchQuery {
    /// A first page of at most `limit` hits for `query`; `None` when it
    /// holds no term.
    pub fn new(query: &str, limit: u32, budget: Duration) -> Option<SearchQuery> {
        let terms: Vec<String> = query
            .split_whitespace()
            .take(MAX_TERMS)
            .map(str::to_lowercase)
            .collect();
        (!terms.is_empty()).then_some(SearchQuery {
            terms,
            status: None,
            assignee: None,
            visitor_id: None,
            since: None,
            until: None,
            before: None,
            limit,
            budget,
        })
    }

    /// Appends the conditions on the conversation (`c`) and on the time
    /// held by `at` (a column: the message's, or the conversation's last
    /// change for a visitor hit) after a `WHERE`.
    pub(super) fn push_filters<'a, DB>(&'a self, sql: &mut QueryBuilder<'a, DB>, at: &str)
    where
        DB: Database,
        &'a str: Encode<'a, DB> + Type<DB>,
        i64: Encode<'a, DB> + Type<DB>,
    {
        sql.push(" TRUE");
        if let Some(status) = self.status {
            sql.push(" AND c.status = ").push_bind(status.as_str());
        }
        if let Some(assignee) = &self.assignee {
            sql.push(" AND c.assignee = ").push_bind(assignee.as_str());
        }
        if let Some(visitor_id) = &self.visitor_id {
            sql.push(" AND c.visitor_id = ")
                .push_bind(visitor_id.as_str());
        }
        if let Some(since) = self.since {
            sql.push(format!(" AND {at} >= "))
                .push_bind(to_millis(since));
        }
        if let Some(until) = self.until {
            sql.push(format!(" AND {at} < "))
                .push_bind(to_millis(until));
        }
    }
}

impl SearchQuery {
    /// The terms of three characters or more, which a trigram index can
    /// look up, and the shorter ones, which it cannot.
    pub(super) fn terms_by_length(&self) -> (Vec<&str>, Vec<&str>) {
        self.terms
            .iter()
            .map(String::as_str)
            .partition(|term| term.chars().count() >= 3)
    }

    /// The first page's visitors whose name or email holds every term,
    /// most recently changed first; `like` is the backend's case-blind
    /// LIKE.
    pub(super) fn visitors_sql<'a, DB>(&'a self, like: &str) -> QueryBuilder<'a, DB>
    where
        DB: Database,
        &'a str: Encode<'a, DB> + Type<DB>,
        i64: Encode<'a, DB> + Type<DB>,
        String: Encode<'a, DB> + Type<DB>,
    {
        let mut sql = QueryBuilder::new(SUMMARY_SELECT);
        sql.push(" WHERE");
        for term in &self.terms {
            let pattern = like_pattern(term);
            sql.push(format!(" (v.name {like} "))
                .push_bind(pattern.clone())
                .push(format!(" ESCAPE '\\' OR v.email {like} "))
                .push_bind(pattern)
                .push(" ESCAPE '\\') AND");
        }
        self.push_filters(&mut sql, "c.updated_at");
        sql.push(" ORDER BY c.updated_at DESC, c.id DESC LIMIT ")
            .push_bind(i64::from(self.limit));
        sql
    }
}

/// A term as a LIKE pattern matching it anywhere, with `\` escaping the
/// pattern's own wildcards.
pub(super) fn like_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// The `before` of the next page, if there is one.
    pub next: Option<i64>,
}

/// A message that matched, with its conversation.
#[derive(sqlx::FromRow)]
pub(super) struct HitRow {
    hit_id: i64,
    hit_seq: i64,
    hit_text: String,
    hit_internal: bool,
    hit_at: i64,
    #[sqlx(flatten)]
    summary: SummaryRow,
}

impl SearchQuery {
    /// Turns a backend's rows (at most `limit + 1` message rows, newest
    /// first, and the visitors found) into a page.
    pub(super) fn page(
        &self,
        mut rows: Vec<HitRow>,
        visitors: Vec<SummaryRow>,
    ) -> Result<SearchPage, StoreError> {
        let limit = self.limit as usize;
        let next = (rows.len() > limit).then(|| rows[limit - 1].hit_id);
        rows.truncate(limit);
        let mut hits = Vec::with_capacity(visitors.len() + rows.len());
        for row in visitors {
            let conversation = ConversationSummary::try_from(row)?;
            hits.push(self.visitor_hit(conversation));
        }
        for row in rows {
            hits.push(SearchHit {
                conversation: ConversationSummary::try_from(row.summary)?,
                field: SearchField::Text,
                seq: Some(seq_from_sql(row.hit_seq)),
                internal: row.hit_internal,
                at: to_time(row.hit_at),
                snippet: snippet(&row.hit_text, &self.terms),
            });
        }
        Ok(SearchPage { hits, next })
    }

    fn visitor_hit(&self, conversation: ConversationSummary) -> SearchHit {
        let name = &conversation.visitor.name;
        let email = conversation.visitor.email.as_deref().unwrap_or_default();
        let in_name = self.terms.iter().any(|term| contains(name, term));
        let (field, text) = if in_name || email.is_empty() {
            (SearchField::Name, name.clone())
        } else {
            (SearchField::Email, email.to_owned())
        };
        SearchHit {
            field,
            seq: None,
            internal: false,
            at: conversation.updated_at,
            snippet: snippet(&text, &self.terms),
            conversation,
        }
    }
}

fn folded(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

fn find(haystack: &[char], needle: &[char]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn contains(text: &str, term: &str) -> bool {
    find(&folded(text), &folded(term)).is_some()
}

/// Up to [`SNIPPET_CHARS`] characters of `text` on one line, from a little
/// before the first match of any term, with `…` where it was cut.
pub(super) fn snippet(text: &str, terms: &[String]) -> String {
    let chars: Vec<char> = text.chars().collect();
    let lower = folded(text);
    let first = terms
        .iter()
        .filter_map(|term| find(&lower, &folded(term)))
        .min()
        .unwrap_or(0);
    let start = first.saturating_sub(SNIPPET_BEFORE);
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let mut snippet = String::new();
    if start > 0 {
        snippet.push('…');
    }
    snippet.extend(
        chars[start..end]
            .iter()
            .map(|&c| if c.is_whitespace() { ' ' } else { c }),
    );
    if end < chars.len() {
        snippet.push('…');
    }
    snippet
}

/// A page of conversations, most recently changed first.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub status: Option<ConversationStatus>,
    /// `(updated_at in milliseconds, id)` of the last row of the previous
    /// page.
    pub after: Option<(i64, String)>,
    pub limit: u32,
    pub budget: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub conversations: Vec<ConversationSummary>,
    /// The `after` of the next page, if there is one.
    pub next: Option<(i64, String)>,
}

impl ListQuery {
    /// The query of a page, the same on both backends.
    pub(super) fn sql<'a, DB>(&'a self) -> QueryBuilder<'a, DB>
    where
        DB: Database,
        &'a str: Encode<'a, DB> + Type<DB>,
        i64: Encode<'a, DB> + Type<DB>,
    {
        let mut sql = QueryBuilder::new(SUMMARY_SELECT);
        sql.push(" WHERE TRUE");
        if let Some(status) = self.status {
            sql.push(" AND c.status = ").push_bind(status.as_str());
        }
        if let Some((updated_at, id)) = &self.after {
            sql.push(" AND (c.updated_at < ")
                .push_bind(*updated_at)
                .push(" OR (c.updated_at = ")
                .push_bind(*updated_at)
                .push(" AND c.id < ")
                .push_bind(id.as_str())
                .push("))");
        }
        sql.push(" ORDER BY c.updated_at DESC, c.id DESC LIMIT ")
            .push_bind(i64::from(self.limit) + 1);
        sql
    }

    pub(super) fn page(&self, rows: Vec<SummaryRow>) -> Result<ListPage, StoreError> {
        let mut conversations = super::rows::convert::<_, ConversationSummary>(rows)?;
        let next = (conversations.len() > self.limit as usize).then(|| {
            conversations.truncate(self.limit as usize);
            let last = &conversations[conversations.len() - 1];
            (to_millis(last.updated_at), last.id.clone())
        });
        Ok(ListPage {
            conversations,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_centres_on_the_first_match_and_marks_cuts() {
        let text = format!("{}blue shirt{}", "x".repeat(100), "y".repeat(100));
        let cut = snippet(&text, &["BLUE".to_lowercase()]);
        assert!(cut.starts_with('…') && cut.ends_with('…'));
        assert!(cut.contains("blue shirt"));
        assert_eq!(cut.chars().count(), SNIPPET_CHARS + 2);
        assert_eq!(snippet("我的订单\n在哪", &["订单".into()]), "我的订单 在哪");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn queries_without_terms_are_none() {
        assert!(SearchQuery::new("  \t ", 10, Duration::from_secs(1)).is_none());
        let query = SearchQuery::new("Blue  蓝色 a b c d e f g h", 10, Duration::from_secs(1));
        assert_eq!(query.map(|q| q.terms.len()), Some(MAX_TERMS));
    }
}
