//! `resolve_waiting`: an admin resolves waiting conversations in bulk, by
//! the visitor's client address, by how long they have waited, or both.
//!
//! An agent request rather than a command run beside the relay (as `block`
//! is): a resolve is a conversation change that agents' queues and the
//! visitor's page must hear of, and only the writes a relay makes itself
//! reach its hub (SQLite has no notifications; with PostgreSQL they also
//! reach the other relays over the bus). Through the relay, each resolve
//! is exactly a normal `resolve` — durable, then announced everywhere —
//! where a separate process would write conversations under the running
//! relays' feet. Which conversations match is read from the store, the
//! truth, not from any relay's view of the queue.

use futures_util::{StreamExt, stream};
use ipnet::IpNet;
use kefu_protocol::agent::bulk::{ResolveWaitingRequest, ResolvedWaiting};
use kefu_protocol::agent::{AgentInfo, ConversationStatus, ConversationSummary, Role};
use kefu_protocol::{ErrorCode, ErrorFrame};
use time::OffsetDateTime;

use super::AppState;
use super::errors::store_error;
use crate::blocklist::parse_range;
use crate::config::VisitorAddress;
use crate::store::ResolveScope;

/// Resolves in flight at once: enough for SQLite's writer to commit them
/// in shared batches, few enough to leave PostgreSQL's pool (16) to the
/// chats going on meanwhile.
const IN_FLIGHT: usize = 8;
/// What errors are about.
const REF: &str = "resolve_waiting";

/// Answers a `resolve_waiting` request made by `by`.
pub(super) async fn resolve_waiting(
    state: &AppState,
    by: &AgentInfo,
    request: ResolveWaitingRequest,
) -> Result<ResolvedWaiting, ErrorFrame> {
    if by.role != Role::Admin {
        return Err(ErrorFrame::new(
            ErrorCode::Forbidden,
            "only admins may resolve conversations in bulk",
        )
        .with_ref(REF));
    }
    let filter = Filter::new(&request, state.config.visitor_address)?;
    let open = state
        .store
        .open_conversations()
        .await
        .map_err(|error| store_error(error, REF))?;
    let now = OffsetDateTime::now_utc();
    let matched: Vec<String> = open
        .into_iter()
        .filter(|summary| filter.matches(summary, now))
        .map(|summary| summary.id)
        .collect();
    let mut answer = ResolvedWaiting {
        matched: matched.len() as u64,
        resolved: 0,
        dry_run: request.dry_run,
    };
    if request.dry_run {
        return Ok(answer);
    }
    let store = &state.store;
    let mut resolving = stream::iter(matched)
        .map(|id| async move {
            let resolved = store.resolve_in(&id, by, ResolveScope::Waiting).await;
            (id, resolved)
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((id, resolved)) = resolving.next().await {
        match resolved {
            Ok(summary) if summary.status == ConversationStatus::Resolved => answer.resolved += 1,
            // Claimed meanwhile: the agent's now.
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, conversation = %id, "bulk resolve failed"),
        }
    }
    tracing::info!(
        admin = %by.name,
        matched = answer.matched,
        resolved = answer.resolved,
        "resolved waiting conversations in bulk"
    );
    Ok(answer)
}

/// Which waiting conversations a request names.
struct Filter {
    range: Option<IpNet>,
    /// Those waiting longer than this many seconds.
    older_than_secs: Option<u64>,
}

impl Filter {
    fn new(request: &ResolveWaitingRequest, kept: VisitorAddress) -> Result<Filter, ErrorFrame> {
        let bad = |why: String| ErrorFrame::new(ErrorCode::BadRequest, why).with_ref(REF);
        if request.address.is_none() && request.older_than_secs.is_none() {
            return Err(bad(
                "name an address range, a minimum wait, or both".to_owned()
            ));
        }
        let range = match &request.address {
            None => None,
            Some(text) => {
                let range = parse_range(text).map_err(bad)?;
                check_precision(range, kept).map_err(bad)?;
                Some(range)
            }
        };
        Ok(Filter {
            range,
            older_than_secs: request.older_than_secs,
        })
    }

    fn matches(&self, summary: &ConversationSummary, now: OffsetDateTime) -> bool {
        if summary.status != ConversationStatus::Waiting {
            return false;
        }
        let in_range = self.range.is_none_or(|range| {
            // The address as the relay kept it: one, or its network.
            summary
                .visitor
                .address
                .as_deref()
                .and_then(|kept| parse_range(kept).ok())
                .is_some_and(|kept| range.contains(&kept))
        });
        let old_enough = self.older_than_secs.is_none_or(|secs| {
            summary.waiting_since.is_some_and(|since| {
                let waited = now - since;
                waited.whole_seconds() >= i64::try_from(secs).unwrap_or(i64::MAX)
            })
        });
        in_range && old_enough
    }
}

/// Refuses a range narrower than the addresses this relay keeps (by
/// default their /24 network), which could match nothing it kept: better
/// told than a count of 0 taken for "nobody from there".
fn check_precision(range: IpNet, kept: VisitorAddress) -> Result<(), String> {
    let Some(kept_as) = kept.show(range.addr()) else {
        return Err("this relay keeps no visitor addresses (visitor_address = off)".to_owned());
    };
    let kept_prefix = parse_range(&kept_as).map_or(0, |net| net.prefix_len());
    if range.prefix_len() > kept_prefix {
        return Err(format!(
            "this relay keeps visitors' addresses as /{kept_prefix} networks \
             (visitor_address); name a range of /{kept_prefix} or wider"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(address: Option<&str>, older_than_secs: Option<u64>) -> ResolveWaitingRequest {
        ResolveWaitingRequest {
            address: address.map(str::to_owned),
            older_than_secs,
            dry_run: false,
        }
    }

    fn waiting(
        address: Option<&str>,
        waited_secs: i64,
        now: OffsetDateTime,
    ) -> ConversationSummary {
        let mut summary: ConversationSummary = serde_json::from_value(serde_json::json!({
            "id": "c", "visitor": {"id": "v", "name": "V", "online": true},
            "status": "waiting", "last_seq": 1, "unread": 1, "preview": "hi",
            "visitor_read_seq": 0, "updated_at": "2026-12-02T00:00:00Z"
        }))
        .expect("a summary");
        summary.visitor.address = address.map(str::to_owned);
        summary.waiting_since = Some(now - time::Duration::seconds(waited_secs));
        summary
    }

    #[test]
    fn conversations_match_every_filter_given() {
        let now = OffsetDateTime::now_utc();
        let kept = VisitorAddress::Truncated;
        let both = Filter::new(&request(Some("203.0.113.0/24"), Some(600)), kept).expect("ok");
        assert!(both.matches(&waiting(Some("203.0.113.0/24"), 601, now), now));
        assert!(
            !both.matches(&waiting(Some("203.0.113.0/24"), 30, now), now),
            "too new"
        );
        assert!(
            !both.matches(&waiting(Some("198.51.100.0/24"), 601, now), now),
            "elsewhere"
        );
        assert!(
            !both.matches(&waiting(None, 601, now), now),
            "no address kept"
        );
        let mut taken = waiting(Some("203.0.113.0/24"), 601, now);
        taken.status = ConversationStatus::Active;
        assert!(!both.matches(&taken, now), "only waiting ones");

        let wide = Filter::new(&request(Some("203.0.0.0/16"), None), kept).expect("ok");
        assert!(wide.matches(&waiting(Some("203.0.113.0/24"), 0, now), now));
        let full = Filter::new(&request(Some("203.0.113.7"), None), VisitorAddress::Full);
        let full = full.expect("a single address where addresses are kept");
        assert!(full.matches(&waiting(Some("203.0.113.7"), 0, now), now));
        assert!(!full.matches(&waiting(Some("203.0.113.8"), 0, now), now));
    }

    #[test]
    fn requests_that_could_not_mean_anything_are_refused() {
        let kept = VisitorAddress::Truncated;
        for (address, older, kept) in [
            (None, None, kept),
            (Some("203.0.113.7"), None, kept),
            (Some("2001:db8::/64"), None, kept),
            (Some("not a range"), None, kept),
            (Some("203.0.113.0/24"), None, VisitorAddress::Off),
        ] {
            let refused = Filter::new(&request(address, older), kept).err();
            let refused = refused.unwrap_or_else(|| panic!("{address:?} {older:?} accepted"));
            assert_eq!(refused.code, ErrorCode::BadRequest);
        }
        assert!(Filter::new(&request(Some("2001:db8::/48"), None), kept).is_ok());
        assert!(Filter::new(&request(None, Some(u64::MAX)), kept).is_ok());
    }
}
