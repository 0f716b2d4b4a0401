//! The visitor's page trail and what agents learn of a visitor: the pages
//! a visitor's browser reports (`page_view`), the live frame agents get for
//! each, and the answer to an agent's `visitor` request.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::agent::{ConversationSummary, VisitorSummary};

/// Visitor → relay: the visitor is now on this page (a page load, or a
/// single-page app's history change). `url` and `referrer` must be `http`
/// or `https`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageViewReport {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// When the browser saw the page, for pages reported later (the widget
    /// keeps those seen before the chat was loaded). The relay takes it
    /// only if it lies in the last day and not ahead of its own clock;
    /// otherwise, and when absent, the time it received the report.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<OffsetDateTime>,
}

/// One page of a visitor's trail, as stored. Untrusted text from the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageView {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// When the visitor opened the page (see [`PageViewReport::at`]).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Relay → agent: the visitor of `conversation_id` opened a page. Sent, once
/// stored, to the agents who see the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageViewFrame {
    pub conversation_id: String,
    pub visitor_id: String,
    pub view: PageView,
}

/// Relay → agent: the answer to `visitor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorRecord {
    pub visitor: VisitorSummary,
    /// Newest first. A visitor has one conversation, reopened each time
    /// they write again, so this holds their whole history with kefu.
    pub conversations: Vec<ConversationSummary>,
    /// Oldest first, the newest [`MAX_TRAIL`] at most.
    pub trail: Vec<PageView>,
}

/// A button in the visitor's chat that opens a page ("open this page"),
/// sent by an agent as a message. `url` is `http` or `https`; `label` is
/// what the button says (also the message's `text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCard {
    pub url: String,
    pub label: String,
}

/// Page views kept per visitor: older ones are forgotten.
pub const MAX_TRAIL: usize = 50;
