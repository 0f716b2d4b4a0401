//! The `search` and `conversations` frames as docs/protocol.md shows them.

use kefu_protocol::agent::search::{SearchField, SearchRequest};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus};
use serde_json::json;

#[test]
fn search_frames_parse_from_their_documented_json() {
    let request: AgentRequest = serde_json::from_value(json!({
        "type": "search", "request_id": "s7", "query": "蓝色", "status": "resolved", "limit": 20
    }))
    .expect("search");
    let AgentRequest::Search(search) = request else {
        panic!("not a search");
    };
    assert_eq!(search.query, "蓝色");
    assert_eq!(search.status, Some(ConversationStatus::Resolved));
    assert_eq!(search.cursor, None);
    // Only the query is required.
    let bare: AgentRequest =
        serde_json::from_value(json!({"type": "search", "query": "x"})).expect("bare");
    assert_eq!(
        bare,
        AgentRequest::Search(SearchRequest {
            query: "x".into(),
            ..SearchRequest::default()
        })
    );

    let summary = json!({
        "id": "c1", "visitor": {"id": "v1", "name": "Lan", "online": false},
        "status": "resolved", "last_seq": 12, "unread": 0, "preview": "ok",
        "visitor_read_seq": 12, "updated_at": "2025-11-02T09:20:00Z"
    });
    let results: AgentEvent = serde_json::from_value(json!({
        "type": "search_results", "request_id": "s7", "next_cursor": "1734",
        "hits": [
            {"conversation": summary, "field": "text", "seq": 12, "internal": false,
             "at": "2025-11-02T09:14:03.120Z", "snippet": "…想要一件蓝色的衬衫，M 号"},
            {"conversation": summary, "field": "email", "at": "2025-11-01T17:00:00Z",
             "snippet": "lan.se@example.com"}
        ]
    }))
    .expect("search_results");
    let AgentEvent::SearchResults(results) = results else {
        panic!("not search results");
    };
    assert_eq!(results.next_cursor.as_deref(), Some("1734"));
    assert_eq!(results.hits[0].seq, Some(12));
    assert_eq!(results.hits[1].field, SearchField::Email);
    assert_eq!(results.hits[1].seq, None);

    let page: AgentEvent = serde_json::from_value(json!({
        "type": "conversations", "request_id": "h1", "conversations": [summary],
        "next_cursor": "1730536443120:c1"
    }))
    .expect("conversations");
    assert!(matches!(page, AgentEvent::Conversations(page) if page.conversations.len() == 1));
}
