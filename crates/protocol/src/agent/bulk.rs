//! Resolving waiting conversations in bulk (admins only): what an operator
//! does when a flood has buried the queue. The `resolve_waiting` request
//! names which waiting conversations — by the visitor's client address, by
//! how long they have waited, or both — and is answered with
//! `resolved_waiting`, the counts. Each conversation is resolved as by its
//! own `resolve`: agents get its `conversation` summary, the visitor the
//! `resolved` event.

use serde::{Deserialize, Serialize};

/// Agent → relay: resolve the waiting conversations matching every filter
/// given (at least one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveWaitingRequest {
    /// A client address or CIDR range (`203.0.113.0/24`), matched against
    /// the visitor's recorded `address`: a conversation matches when that
    /// address (or network) lies within the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Only conversations waiting for at least this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_secs: Option<u64>,
    /// Count the matching conversations; resolve nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Relay → agent: the answer to `resolve_waiting`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedWaiting {
    /// Waiting conversations that matched.
    pub matched: u64,
    /// Of those, how many this request resolved: none on a dry run; fewer
    /// than `matched` when agents took some meanwhile (those are left to
    /// them) or a write failed.
    pub resolved: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}
