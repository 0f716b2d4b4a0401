//! Summary coalescing: which committed conversation summaries reach every
//! agent at once, and which wait for the next flush.
//!
//! Invariants:
//! - A change that moves a conversation in the queue (see
//!   [`moved_in_queue`]) goes to every agent at once, and settles whatever
//!   was held back for that conversation.
//! - Any other change goes at once only to the agents who see the
//!   conversation; the hub holds the conversation back here for the others,
//!   who get its latest summary, once, at the next flush.
//! - The flush is due [`SUMMARY_DELAY`] after the first change held since
//!   the last flush: later changes do not push it back, so a busy
//!   conversation still reaches everybody every two seconds.
//! - Nothing is due while nothing is held, so an idle hub never wakes.
//!
//! This part holds conversation ids, not summaries: the hub sends the
//! summary it has at flush time, which is the latest.

use std::collections::HashSet;
use std::time::Duration;

use kefu_protocol::agent::ConversationSummary;
use tokio::time::Instant;

/// How long a conversation's per-message changes (`last_seq`, `unread`,
/// `preview`, `updated_at`, read marks) may wait before reaching the agents
/// who do not see it (`Routes::sees`). To them it is a colleague's row
/// in the queue, where a count two seconds late costs nothing, whereas a
/// frame per message to every agent would multiply the relay's frames by the
/// number of agents. They get at most one frame per conversation per delay,
/// with its latest summary. Changes that move a conversation in the queue
/// ([`moved_in_queue`]) reach everybody at once.
pub(super) const SUMMARY_DELAY: Duration = Duration::from_secs(2);

/// Who gets a committed summary now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    /// Every agent.
    Everybody,
    /// The agents who see the conversation; the others at the next flush,
    /// if the hub [holds it back](SummaryThrottle::hold).
    Seeing,
}

/// Open conversations with per-message changes not yet sent to the agents
/// who do not see them, and when they are due.
#[derive(Default)]
pub(super) struct SummaryThrottle {
    /// At most the open conversations.
    held: HashSet<String>,
    /// When `held` is flushed; `None` while it is empty, so an idle hub never
    /// wakes for it.
    flush_at: Option<Instant>,
}

/// Whether a conversation changed in more than the counters every message
/// moves, i.e. in what places it in agents' queues: status, assignee, the
/// visitor. Destructured in full so that a new field must be placed here.
fn moved_in_queue(before: &ConversationSummary, after: &ConversationSummary) -> bool {
    let ConversationSummary {
        id: _,
        visitor,
        status,
        assignee,
        waiting_since,
        last_seq: _,
        unread: _,
        visitor_messages: _,
        preview: _,
        visitor_read_seq: _,
        updated_at: _,
    } = after;
    before.visitor != *visitor
        || before.status != *status
        || before.assignee != *assignee
        || before.waiting_since != *waiting_since
}

impl SummaryThrottle {
    /// Who gets `after` now, given the open conversation's summary it
    /// replaces (`None` for a new, reopened or already resolved one).
    pub(super) fn audience(
        &mut self,
        before: Option<&ConversationSummary>,
        after: &ConversationSummary,
    ) -> Audience {
        if before.is_none_or(|before| moved_in_queue(before, after)) {
            // Everybody now holds the latest: nothing left to flush.
            self.held.remove(&after.id);
            Audience::Everybody
        } else {
            Audience::Seeing
        }
    }

    /// Holds a conversation back for the agents who do not see it, until
    /// the next flush.
    pub(super) fn hold(&mut self, conversation_id: &str, now: Instant) {
        if self.held.is_empty() {
            self.flush_at = Some(now + SUMMARY_DELAY);
        }
        if !self.held.contains(conversation_id) {
            self.held.insert(conversation_id.to_owned());
        }
    }

    pub(super) fn is_held(&self, conversation_id: &str) -> bool {
        self.held.contains(conversation_id)
    }

    /// When the hub should [`flush`](Self::flush); `None` if never.
    pub(super) fn flush_at(&self) -> Option<Instant> {
        self.flush_at
    }

    /// The conversations held back since the last flush, each once.
    pub(super) fn flush(&mut self) -> HashSet<String> {
        self.flush_at = None;
        std::mem::take(&mut self.held)
    }

    /// Forgets everything held: every agent is about to resync anyway.
    pub(super) fn clear(&mut self) {
        self.held.clear();
        self.flush_at = None;
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::agent::{ConversationStatus, VisitorSummary};
    use time::OffsetDateTime;

    use super::*;

    fn summary(id: &str, last_seq: u64, assignee: &str) -> ConversationSummary {
        ConversationSummary {
            id: id.into(),
            visitor: VisitorSummary {
                id: format!("visitor of {id}"),
                ..VisitorSummary::default()
            },
            status: ConversationStatus::Active,
            assignee: Some(assignee.into()),
            last_seq,
            unread: 1,
            visitor_messages: 1,
            preview: format!("message {last_seq}"),
            visitor_read_seq: 0,
            waiting_since: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn per_message_changes_go_to_the_agents_who_see_the_conversation() {
        let mut throttle = SummaryThrottle::default();
        let before = summary("k1", 1, "alice");
        let mut after = summary("k1", 2, "alice");
        after.unread = 2;
        after.visitor_read_seq = 1;
        after.updated_at = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1);
        assert_eq!(throttle.audience(Some(&before), &after), Audience::Seeing);
        assert_eq!(throttle.flush_at(), None, "held only if the hub says so");
    }

    #[test]
    fn a_new_or_moved_conversation_goes_to_everybody() {
        let mut throttle = SummaryThrottle::default();
        let before = summary("k1", 1, "alice");
        assert_eq!(throttle.audience(None, &before), Audience::Everybody);
        let transferred = summary("k1", 1, "bob");
        assert_eq!(
            throttle.audience(Some(&before), &transferred),
            Audience::Everybody
        );
        let mut resolved = before.clone();
        resolved.status = ConversationStatus::Resolved;
        assert_eq!(
            throttle.audience(Some(&before), &resolved),
            Audience::Everybody
        );
        let mut renamed = before.clone();
        renamed.visitor.name = "Ming".into();
        assert_eq!(
            throttle.audience(Some(&before), &renamed),
            Audience::Everybody
        );
    }

    #[test]
    fn a_burst_is_flushed_once_at_the_delay_after_its_first_change() {
        let mut throttle = SummaryThrottle::default();
        let t0 = Instant::now();
        throttle.hold("k1", t0);
        throttle.hold("k2", t0 + Duration::from_millis(500));
        throttle.hold("k1", t0 + Duration::from_millis(1500));
        assert_eq!(
            throttle.flush_at(),
            Some(t0 + SUMMARY_DELAY),
            "later changes do not push the flush back"
        );
        assert!(throttle.is_held("k1") && throttle.is_held("k2"));

        let mut flushed: Vec<String> = throttle.flush().into_iter().collect();
        flushed.sort();
        assert_eq!(flushed, ["k1", "k2"], "each once");
        assert_eq!(throttle.flush_at(), None, "an idle hub never wakes");
        assert!(throttle.flush().is_empty(), "flushed once only");

        let t1 = t0 + Duration::from_secs(7);
        throttle.hold("k1", t1);
        assert_eq!(throttle.flush_at(), Some(t1 + SUMMARY_DELAY), "a new burst");
    }

    #[test]
    fn a_move_in_the_queue_settles_what_was_held() {
        let mut throttle = SummaryThrottle::default();
        let t0 = Instant::now();
        let before = summary("k1", 2, "alice");
        throttle.hold("k1", t0);
        throttle.hold("k2", t0);
        let transferred = summary("k1", 2, "bob");
        assert_eq!(
            throttle.audience(Some(&before), &transferred),
            Audience::Everybody
        );
        assert!(!throttle.is_held("k1"), "everybody has the latest");
        assert_eq!(throttle.flush().into_iter().collect::<Vec<_>>(), ["k2"]);
    }

    #[test]
    fn clearing_forgets_what_was_held_and_the_flush() {
        let mut throttle = SummaryThrottle::default();
        throttle.hold("k1", Instant::now());
        throttle.clear();
        assert!(!throttle.is_held("k1"));
        assert_eq!(throttle.flush_at(), None);
    }
}
