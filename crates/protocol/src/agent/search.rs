//! Finding past conversations (agents only): the `search` request and its
//! `search_results`, and the paged `conversations` list that reaches
//! resolved conversations. Both are newest first and paged with an opaque
//! `cursor` the relay hands out.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ConversationStatus, ConversationSummary};
use crate::Seq;

/// Agent → relay: messages and visitors matching `query`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Echoed in the answer, so a client typing ahead can drop stale ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Words separated by spaces; a hit holds every one of them, anywhere
    /// (inside a word too), ignoring case.
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConversationStatus>,
    /// An agent id: only conversations assigned to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    /// Only messages written at or after this time.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<OffsetDateTime>,
    /// Only messages written before this time.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<OffsetDateTime>,
    /// `next_cursor` of the previous page; absent for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Relay → agent: one page of hits, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub hits: Vec<SearchHit>,
    /// Where the next page starts; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where a search matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchField {
    /// A message's text (`seq` says which).
    Text,
    /// The visitor's name.
    Name,
    /// The visitor's email.
    Email,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub conversation: ConversationSummary,
    pub field: SearchField,
    /// The message to open the conversation at; absent for a visitor hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// An agents-only note matched.
    #[serde(default)]
    pub internal: bool,
    /// When the message was written (for a visitor hit: the conversation's
    /// last change).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Up to about 120 characters of the matched text around the first
    /// match: untrusted visitor text, as everywhere.
    pub snippet: String,
}

/// Agent → relay: a page of conversations, most recently changed first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Only conversations in this state (`resolved` for the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConversationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Relay → agent: one page of [`ConversationsRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationsPage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub conversations: Vec<ConversationSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
