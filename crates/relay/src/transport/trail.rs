//! The visitor's page trail on the way in, and the `visitor` record agents
//! ask for.
//!
//! A `page_view` is checked (http or https only, bounded text) and
//! rate-limited per visitor. A visitor with a conversation has it stored at
//! once (and agents told, through the change feed); one without has it held
//! here, in memory, until their first message creates the conversation,
//! because a page view alone writes nothing. What is held is bounded: the
//! newest [`MAX_TRAIL`] views per visitor, [`PENDING_BYTES`] in all (the
//! visitors held longest are forgotten first) and [`PENDING_TTL`] each.
//! It lives on one relay: in a cluster, views a visitor reported to another
//! relay before writing are not in the trail.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kefu_protocol::agent::AgentEvent;
use kefu_protocol::agent::VisitorRecord;
use kefu_protocol::trail::{LinkCard, MAX_TRAIL, PageView, PageViewReport};
use kefu_protocol::{ErrorCode, ErrorFrame};

use super::errors::store_error;
use crate::frame::{Frame, encode};
use crate::store::{Store, now_millis, to_millis, to_time};

/// Longest URL or referrer kept, in bytes; longer ones are refused.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest page title kept, in characters; longer ones are cut.
pub const MAX_TITLE_CHARS: usize = 300;
/// Page views a visitor may report per minute (a burst of as many).
pub const PAGE_VIEWS_PER_MINUTE: u32 = 30;
/// Memory for the views of visitors without a conversation, in all.
pub const PENDING_BYTES: usize = 16 * 1024 * 1024;
/// How long views of a visitor who never writes are held.
pub const PENDING_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// How far back a reported page view's own time is believed.
const OLDEST_REPORTED: time::Duration = time::Duration::DAY;

/// Checks a report and gives it its time: the browser's, if plausible (in
/// the last day, not ahead of ours), or now.
pub fn checked_view(report: PageViewReport) -> Result<PageView, ErrorFrame> {
    let refused = |why: &str| ErrorFrame::new(ErrorCode::BadRequest, why).with_ref("page_view");
    let url = web_address(report.url.trim())
        .ok_or_else(|| refused("url must be an http or https address of at most 2048 bytes"))?;
    let referrer = match report.referrer.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(referrer) => Some(web_address(referrer).ok_or_else(|| {
            refused("referrer must be an http or https address of at most 2048 bytes")
        })?),
    };
    let title = report
        .title
        .map(|title| cut(title.trim(), MAX_TITLE_CHARS).to_owned())
        .filter(|title| !title.is_empty());
    let now = now_millis();
    let at = report
        .at
        .map(|at| to_time(to_millis(at)))
        .filter(|at| *at <= now && now - *at <= OLDEST_REPORTED)
        .unwrap_or(now);
    Ok(PageView {
        url,
        title,
        referrer,
        at,
    })
}

/// `address` if it is a bounded http(s) URL of printable ASCII only, as a
/// browser's `location.href` is (it percent-encodes the rest and spells
/// hosts in punycode): no spaces, controls or bidi overrides get in.
fn web_address(address: &str) -> Option<String> {
    let lower = address.get(..8).unwrap_or(address).to_ascii_lowercase();
    let web = lower.starts_with("http://") || lower.starts_with("https://");
    let clean = address.bytes().all(|byte| byte.is_ascii_graphic());
    let host = address
        .split_once("//")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    (web && clean && host && address.len() <= MAX_URL_BYTES).then(|| address.to_owned())
}

/// Longest link card label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// Checks an agent's link card: a web address as for page views, and a
/// label of 1 to [`MAX_LABEL_CHARS`] characters on one line.
pub fn checked_link(card: LinkCard) -> Result<LinkCard, ErrorFrame> {
    let refused = |why: &str| ErrorFrame::new(ErrorCode::BadRequest, why);
    let url = web_address(card.url.trim()).ok_or_else(|| {
        refused("a link card's url must be an http or https address of at most 2048 bytes")
    })?;
    let label = card.label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS || label.contains(['\n', '\r']) {
        return Err(refused(
            "a link card's label is one line of 1 to 200 characters",
        ));
    }
    Ok(LinkCard {
        url,
        label: label.to_owned(),
    })
}

fn cut(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Page views per visitor: the rate limit, and those held in memory.
pub struct Trails {
    rate: DefaultKeyedRateLimiter<String>,
    pending: Mutex<Pending>,
}

/// Views held for visitors without a conversation. No `.await` happens
/// while the lock is held: every method is a short section.
#[derive(Default)]
struct Pending {
    by_visitor: HashMap<String, Held>,
    /// Visitors in the order they were first held, to forget the oldest;
    /// may name visitors no longer held (skipped, and compacted).
    order: VecDeque<String>,
    bytes: usize,
}

struct Held {
    views: VecDeque<PageView>,
    bytes: usize,
    since: Instant,
}

fn size_of(view: &PageView) -> usize {
    let text = view.url.len()
        + view.title.as_ref().map_or(0, String::len)
        + view.referrer.as_ref().map_or(0, String::len);
    text + std::mem::size_of::<PageView>()
}

impl Default for Trails {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(PAGE_VIEWS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Trails {
            rate: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(per_minute)),
            pending: Mutex::default(),
        }
    }
}

impl Trails {
    /// Takes a token for one page view of `visitor_id`.
    pub fn allow(&self, visitor_id: &str) -> bool {
        self.rate.check_key(&visitor_id.to_owned()).is_ok()
    }

    /// Holds `view` until the visitor has a conversation.
    pub fn hold(&self, visitor_id: &str, view: PageView) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let pending = &mut *pending;
        let size = size_of(&view);
        let held = pending
            .by_visitor
            .entry(visitor_id.to_owned())
            .or_insert_with(|| {
                pending.order.push_back(visitor_id.to_owned());
                Held {
                    views: VecDeque::new(),
                    bytes: 0,
                    since: Instant::now(),
                }
            });
        held.views.push_back(view);
        held.bytes += size;
        pending.bytes += size;
        if held.views.len() > MAX_TRAIL
            && let Some(oldest) = held.views.pop_front()
        {
            held.bytes -= size_of(&oldest);
            pending.bytes -= size_of(&oldest);
        }
        while pending.bytes > PENDING_BYTES {
            let Some(oldest) = pending.order.pop_front() else {
                break;
            };
            if let Some(held) = pending.by_visitor.remove(&oldest) {
                pending.bytes -= held.bytes;
            }
        }
        if pending.order.len() > 2 * pending.by_visitor.len() + 64 {
            let by_visitor = &pending.by_visitor;
            pending
                .order
                .retain(|visitor| by_visitor.contains_key(visitor));
        }
    }

    /// The views held for `visitor_id`, oldest first, no longer held.
    pub fn take(&self, visitor_id: &str) -> Vec<PageView> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(held) = pending.by_visitor.remove(visitor_id) else {
            return Vec::new();
        };
        pending.bytes -= held.bytes;
        held.views.into()
    }

    /// Forgets views held past [`PENDING_TTL`] and idle rate buckets.
    pub fn forget_old(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut forgotten = 0;
        pending.by_visitor.retain(|_, held| {
            let keep = held.since.elapsed() < PENDING_TTL;
            if !keep {
                forgotten += held.bytes;
            }
            keep
        });
        pending.bytes -= forgotten;
        drop(pending);
        self.rate.retain_recent();
        self.rate.shrink_to_fit();
    }
}

/// The answer to an agent's `visitor` request: the visitor as their
/// conversation shows them, that conversation, and their stored trail. A
/// visitor who never wrote has no record.
pub async fn visitor_record(store: &dyn Store, visitor_id: &str) -> Frame {
    let not_found = || {
        encode(&AgentEvent::Error(
            ErrorFrame::new(
                ErrorCode::NotFound,
                "no visitor with a conversation has this id",
            )
            .with_ref(visitor_id),
        ))
    };
    let conversation = match store.visitor_conversation(visitor_id).await {
        Ok(Some(id)) => store.conversation(&id).await,
        Ok(None) => return not_found(),
        Err(error) => Err(error),
    };
    let summary = match conversation {
        Ok(Some(summary)) => summary,
        Ok(None) => return not_found(),
        Err(error) => return encode(&AgentEvent::Error(store_error(error, visitor_id))),
    };
    match store.page_trail(visitor_id).await {
        Ok(trail) => encode(&AgentEvent::Visitor(VisitorRecord {
            visitor: summary.visitor.clone(),
            conversations: vec![summary],
            trail,
        })),
        Err(error) => encode(&AgentEvent::Error(store_error(error, visitor_id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(url: &str) -> PageViewReport {
        PageViewReport {
            url: url.into(),
            title: None,
            referrer: None,
            at: None,
        }
    }

    #[test]
    fn only_plausible_browser_times_are_taken() {
        let hour_ago = now_millis() - time::Duration::hours(1);
        let mut earlier = report("https://shop.example/");
        earlier.at = Some(hour_ago);
        assert_eq!(checked_view(earlier).expect("valid").at, hour_ago);
        for wrong in [time::Duration::days(2), time::Duration::hours(-1)] {
            let mut odd = report("https://shop.example/");
            odd.at = Some(now_millis() - wrong);
            let at = checked_view(odd).expect("valid").at;
            assert!(
                (now_millis() - at).abs() < time::Duration::minutes(1),
                "{wrong}"
            );
        }
    }

    #[test]
    fn only_web_addresses_pass() {
        for good in [
            "https://shop.example/checkout?x=1#top",
            "HTTP://shop.example",
        ] {
            assert!(checked_view(report(good)).is_ok(), "{good}");
        }
        let long = format!("https://shop.example/{}", "a".repeat(MAX_URL_BYTES));
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://",
            "https:///path",
            "https://shop.example/a b",
            "https://shop.example/\u{202e}",
            "ftp://shop.example/",
            "",
            long.as_str(),
        ] {
            let refused = checked_view(report(bad)).expect_err(bad);
            assert_eq!(refused.code, ErrorCode::BadRequest);
        }
        let mut with_referrer = report("https://shop.example/");
        with_referrer.referrer = Some("javascript:void(0)".into());
        assert!(checked_view(with_referrer).is_err());
    }

    #[test]
    fn titles_are_cut_and_blank_ones_dropped() {
        let mut long = report("https://shop.example/");
        long.title = Some("字".repeat(MAX_TITLE_CHARS + 5));
        let view = checked_view(long).expect("valid");
        assert_eq!(view.title.map(|t| t.chars().count()), Some(MAX_TITLE_CHARS));
        let mut blank = report("https://shop.example/");
        blank.title = Some("   ".into());
        assert_eq!(checked_view(blank).expect("valid").title, None);
    }

    fn view(url: &str) -> PageView {
        checked_view(report(url)).expect("valid")
    }

    #[test]
    fn held_views_keep_the_newest_per_visitor() {
        let trails = Trails::default();
        for page in 0..MAX_TRAIL + 5 {
            trails.hold("v1", view(&format!("https://shop.example/{page}")));
        }
        let held = trails.take("v1");
        assert_eq!(held.len(), MAX_TRAIL);
        assert_eq!(
            held[0].url, "https://shop.example/5",
            "the oldest went first"
        );
        assert!(
            trails.take("v1").is_empty(),
            "taken views are no longer held"
        );
        assert_eq!(trails.pending.lock().expect("not poisoned").bytes, 0);
    }

    #[test]
    fn the_memory_budget_forgets_the_visitors_held_longest() {
        let trails = Trails::default();
        let url = format!("https://shop.example/{}", "a".repeat(2000));
        let per_visitor = MAX_TRAIL * size_of(&view(&url));
        let visitors = PENDING_BYTES / per_visitor + 2;
        for visitor in 0..visitors {
            for _ in 0..MAX_TRAIL {
                trails.hold(&visitor.to_string(), view(&url));
            }
        }
        assert!(trails.pending.lock().expect("not poisoned").bytes <= PENDING_BYTES);
        assert!(
            trails.take("0").is_empty(),
            "the first visitor was forgotten"
        );
        let last = (visitors - 1).to_string();
        assert_eq!(trails.take(&last).len(), MAX_TRAIL);
    }

    #[test]
    fn each_visitor_has_its_own_rate() {
        let trails = Trails::default();
        for _ in 0..PAGE_VIEWS_PER_MINUTE {
            assert!(trails.allow("busy"));
        }
        assert!(!trails.allow("busy"), "past the burst");
        assert!(trails.allow("other"), "another visitor is unaffected");
    }
}
