//! What the visitor's page and an agent both speak of: the pages a
//! visitor's browser reports (`page_view`) as reported and as stored, and
//! the link cards agents send. The agent frames built on them (`page_view`,
//! `visitor`) are in [`crate::agent`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
