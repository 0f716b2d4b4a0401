//! Agents' `search` and `conversations` requests: checked and bounded here
//! (query length, page size, cursors), answered by the store's search side
//! within `limits.search_timeout`.

use kefu_protocol::agent::AgentEvent;
use kefu_protocol::agent::search::{
    ConversationsPage, ConversationsRequest, SearchRequest, SearchResults,
};
use kefu_protocol::{ErrorCode, ErrorFrame};

use super::AppState;
use super::errors::store_error;
use crate::frame::{Frame, encode};
use crate::store::{ListQuery, SearchQuery, StoreError};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Longest `request_id`, filter id or cursor, in bytes.
const MAX_ID_BYTES: usize = 128;
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 50;

pub(super) async fn search(state: &AppState, request: SearchRequest) -> Frame {
    let reference = request.request_id.clone().unwrap_or_default();
    let query = match search_query(state, &request) {
        Ok(query) => query,
        Err(error) => return refuse(error, reference),
    };
    match state.store.search(&query).await {
        Ok(page) => encode(&AgentEvent::SearchResults(SearchResults {
            request_id: request.request_id,
            hits: page.hits,
            next_cursor: page.next.map(|id| id.to_string()),
        })),
        Err(error) => refuse(lookup_error(error), reference),
    }
}

pub(super) async fn conversations(state: &AppState, request: ConversationsRequest) -> Frame {
    let reference = request.request_id.clone().unwrap_or_default();
    let after = match request.cursor.as_deref().map(list_cursor).transpose() {
        Ok(after) => after,
        Err(error) => return refuse(error, reference),
    };
    if let Err(error) = check_ids([request.request_id.as_deref()]) {
        return refuse(error, reference);
    }
    let query = ListQuery {
        status: request.status,
        after,
        limit: page_size(request.limit),
        budget: state.config.limits.search_timeout,
    };
    match state.store.list_conversations(&query).await {
        Ok(page) => encode(&AgentEvent::Conversations(ConversationsPage {
            request_id: request.request_id,
            conversations: page.conversations,
            next_cursor: page
                .next
                .map(|(updated_at, id)| format!("{updated_at}:{id}")),
        })),
        Err(error) => refuse(lookup_error(error), reference),
    }
}

fn search_query(state: &AppState, request: &SearchRequest) -> Result<SearchQuery, ErrorFrame> {
    let chars = request.query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(ErrorFrame::new(
            ErrorCode::TooLarge,
            format!("a query of {chars} characters exceeds the limit of {MAX_QUERY_CHARS}"),
        ));
    }
    check_ids([
        request.request_id.as_deref(),
        request.assignee.as_deref(),
        request.visitor_id.as_deref(),
        request.cursor.as_deref(),
    ])?;
    let budget = state.config.limits.search_timeout;
    let mut query = SearchQuery::new(&request.query, page_size(request.limit), budget)
        .ok_or_else(|| ErrorFrame::new(ErrorCode::BadRequest, "the query is empty"))?;
    query.before = match request.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| bad_cursor())?),
    };
    query.status = request.status;
    query.assignee = request.assignee.clone();
    query.visitor_id = request.visitor_id.clone();
    query.since = request.since;
    query.until = request.until;
    Ok(query)
}

fn page_size(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

fn check_ids<const N: usize>(ids: [Option<&str>; N]) -> Result<(), ErrorFrame> {
    if ids.iter().flatten().any(|id| id.len() > MAX_ID_BYTES) {
        return Err(ErrorFrame::new(
            ErrorCode::TooLarge,
            format!("request_id, ids and cursors are at most {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A `conversations` cursor: `UPDATED_AT_MILLIS:CONVERSATION_ID`.
fn list_cursor(cursor: &str) -> Result<(i64, String), ErrorFrame> {
    if cursor.len() > MAX_ID_BYTES {
        return Err(bad_cursor());
    }
    let (updated_at, id) = cursor.split_once(':').ok_or_else(bad_cursor)?;
    let updated_at = updated_at.parse::<i64>().map_err(|_| bad_cursor())?;
    Ok((updated_at, id.to_owned()))
}

fn bad_cursor() -> ErrorFrame {
    ErrorFrame::new(
        ErrorCode::BadRequest,
        "cursor is not one the relay handed out",
    )
}

/// A search past its budget asks too much of the database: the agent is
/// told to narrow it. Other store errors are reported as usual.
fn lookup_error(error: StoreError) -> ErrorFrame {
    match error {
        StoreError::TimedOut(budget) => ErrorFrame::new(
            ErrorCode::TooLarge,
            format!(
                "the search took longer than {} ms: add words or filters",
                budget.as_millis()
            ),
        ),
        other => store_error(other, ""),
    }
}

fn refuse(error: ErrorFrame, reference: String) -> Frame {
    let error = if reference.is_empty() {
        ErrorFrame {
            reference: None,
            ..error
        }
    } else {
        error.with_ref(reference)
    };
    encode(&AgentEvent::Error(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_cursors_round_trip_and_refuse_garbage() {
        assert_eq!(
            list_cursor("1700000000000:c1:x"),
            Ok((1_700_000_000_000, "c1:x".into()))
        );
        assert!(list_cursor("nope").is_err());
        assert!(list_cursor("x:c1").is_err());
        assert_eq!(page_size(Some(10_000)), MAX_PAGE);
        assert_eq!(page_size(Some(0)), 1);
    }
}
