//! The routing table: the open conversations, each visitor's conversation,
//! and which conversations each agent connection follows.
//!
//! Invariants:
//! - `conversations` holds the waiting and active conversations as last
//!   committed (a resolved one is dropped), and a visitor has at most one
//!   open conversation, the latest committed.
//! - An agent connection sees a conversation while it waits, when its agent
//!   is the assignee, or when it opened it through `history` (at most
//!   [`MAX_WATCHED`] such conversations, the oldest forgotten first).

use std::collections::HashMap;
use std::num::NonZeroUsize;

use kefu_protocol::agent::{ConversationStatus, ConversationSummary};
use lru::LruCache;

use crate::ids::ConnId;

/// Conversations an agent connection follows through `history`, at most.
const MAX_WATCHED: NonZeroUsize = NonZeroUsize::new(256).expect("not zero");

#[derive(Default)]
pub(super) struct Routes {
    /// Waiting and active conversations, as last committed.
    conversations: HashMap<String, ConversationSummary>,
    /// How many of `conversations` wait. Counted as they change rather than
    /// on each ask: every visitor's first message asks (the waiting cap),
    /// and a flood must not cost the hub task a pass over all of them.
    waiting: usize,
    conversation_of_visitor: HashMap<String, String>,
    /// Per agent connection that opened any, the conversations it follows
    /// beyond those it sees anyway, the oldest forgotten first. A set, not a
    /// list: every summary the hub publishes asks each agent connection
    /// whether it follows that conversation, a scan of up to 256 ids per
    /// connection for each message (docs/benchmarks.md, *an agent
    /// connection's scans*).
    watched: HashMap<ConnId, LruCache<String, ()>>,
}

impl Routes {
    /// Updates the table from a committed summary, with the visitor's
    /// presence filled in; returns it, and the open conversation's summary
    /// it replaces (`None` for a new, reopened or already resolved one).
    pub(super) fn remember(
        &mut self,
        mut summary: ConversationSummary,
        visitor_online: bool,
    ) -> (ConversationSummary, Option<ConversationSummary>) {
        summary.visitor.online = visitor_online;
        let is_waiting = |s: &ConversationSummary| s.status == ConversationStatus::Waiting;
        let before = if summary.status == ConversationStatus::Resolved {
            self.conversation_of_visitor.remove(&summary.visitor.id);
            self.conversations.remove(&summary.id)
        } else {
            self.conversation_of_visitor
                .insert(summary.visitor.id.clone(), summary.id.clone());
            self.conversations
                .insert(summary.id.clone(), summary.clone())
        };
        if before.as_ref().is_some_and(is_waiting) {
            self.waiting -= 1;
        }
        if is_waiting(&summary) {
            self.waiting += 1;
        }
        (summary, before)
    }

    /// Forgets every conversation (not what connections watch): the store's
    /// state is about to be remembered again.
    pub(super) fn forget_conversations(&mut self) {
        self.conversations.clear();
        self.conversation_of_visitor.clear();
        self.waiting = 0;
    }

    pub(super) fn conversation(&self, conversation_id: &str) -> Option<&ConversationSummary> {
        self.conversations.get(conversation_id)
    }

    /// A visitor's open conversation.
    pub(super) fn conversation_of(&self, visitor_id: &str) -> Option<&ConversationSummary> {
        self.conversation_of_visitor
            .get(visitor_id)
            .and_then(|id| self.conversations.get(id))
    }

    /// Records whether a visitor is online in their open conversation's
    /// summary. False if the visitor has no open conversation, i.e. no agent
    /// needs to hear of them.
    pub(super) fn set_visitor_online(&mut self, visitor_id: &str, online: bool) -> bool {
        let Some(conversation_id) = self.conversation_of_visitor.get(visitor_id) else {
            return false;
        };
        if let Some(summary) = self.conversations.get_mut(conversation_id) {
            summary.visitor.online = online;
        }
        true
    }

    /// Every open conversation, least recently updated first.
    pub(super) fn open(&self) -> Vec<ConversationSummary> {
        let mut conversations: Vec<ConversationSummary> =
            self.conversations.values().cloned().collect();
        conversations.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)));
        conversations
    }

    /// Conversations waiting for an agent.
    pub(super) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Whether agent `agent_id`'s connection `conn` follows a conversation:
    /// everybody while it waits, then its assignee and whoever opened it
    /// through `history`.
    pub(super) fn sees(&self, conn: ConnId, agent_id: &str, summary: &ConversationSummary) -> bool {
        summary.status == ConversationStatus::Waiting
            || summary.assignee.as_deref() == Some(agent_id)
            || self
                .watched
                .get(&conn)
                .is_some_and(|watched| watched.contains(summary.id.as_str()))
    }

    /// Has agent `agent_id`'s connection `conn` follow a conversation. If it
    /// did not already, and did not see it while `behind` (its summary was
    /// held back from the connection), returns the current summary, so that
    /// it follows from an up-to-date one.
    pub(super) fn watch(
        &mut self,
        conn: ConnId,
        agent_id: &str,
        conversation_id: String,
        behind: bool,
    ) -> Option<ConversationSummary> {
        if (self.watched.get(&conn))
            .is_some_and(|watched| watched.contains(conversation_id.as_str()))
        {
            return None;
        }
        let missed = match self.conversations.get(&conversation_id) {
            Some(summary) if behind && !self.sees(conn, agent_id, summary) => Some(summary.clone()),
            _ => None,
        };
        // `contains` above leaves the order alone, so the one pushed out
        // when full is the one watched first.
        (self.watched.entry(conn))
            .or_insert_with(|| LruCache::new(MAX_WATCHED))
            .push(conversation_id, ());
        missed
    }

    /// Forgets what a closed connection followed.
    pub(super) fn unwatch_all(&mut self, conn: ConnId) {
        self.watched.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::agent::VisitorSummary;
    use time::OffsetDateTime;

    use super::*;

    fn summary(
        id: &str,
        status: ConversationStatus,
        assignee: Option<&str>,
    ) -> ConversationSummary {
        ConversationSummary {
            id: id.into(),
            visitor: VisitorSummary {
                id: "v1".into(),
                ..VisitorSummary::default()
            },
            status,
            assignee: assignee.map(Into::into),
            last_seq: 1,
            unread: 1,
            visitor_messages: 0,
            preview: String::new(),
            visitor_read_seq: 0,
            waiting_since: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn everybody_sees_a_waiting_conversation_then_its_assignee_and_watchers() {
        let mut routes = Routes::default();
        let (alice, bob) = (ConnId::from_raw(1), ConnId::from_raw(2));
        let waiting = summary("k1", ConversationStatus::Waiting, None);
        assert!(routes.sees(alice, "alice", &waiting) && routes.sees(bob, "bob", &waiting));

        let (active, _) = routes.remember(
            summary("k1", ConversationStatus::Active, Some("alice")),
            true,
        );
        assert!(active.visitor.online, "presence filled in");
        assert!(routes.sees(alice, "alice", &active));
        assert!(!routes.sees(bob, "bob", &active));
        assert_eq!(routes.watch(bob, "bob", "k1".into(), false), None);
        assert!(routes.sees(bob, "bob", &active));
        routes.unwatch_all(bob);
        assert!(!routes.sees(bob, "bob", &active));
    }

    #[test]
    fn watching_a_conversation_held_back_returns_its_latest_summary_once() {
        let mut routes = Routes::default();
        let bob = ConnId::from_raw(2);
        routes.remember(
            summary("k1", ConversationStatus::Active, Some("alice")),
            false,
        );
        let missed = routes.watch(bob, "bob", "k1".into(), true);
        assert_eq!(missed.map(|s| s.id), Some("k1".into()));
        assert_eq!(routes.watch(bob, "bob", "k1".into(), true), None, "once");
    }

    #[test]
    fn a_connection_follows_at_most_max_watched_conversations() {
        let mut routes = Routes::default();
        let bob = ConnId::from_raw(2);
        for n in 0..=MAX_WATCHED.get() {
            routes.watch(bob, "bob", format!("k{n}"), false);
        }
        let first = summary("k0", ConversationStatus::Active, Some("alice"));
        let second = summary("k1", ConversationStatus::Active, Some("alice"));
        let last = summary(&format!("k{MAX_WATCHED}"), ConversationStatus::Active, None);
        assert!(!routes.sees(bob, "bob", &first), "the oldest is forgotten");
        assert!(routes.sees(bob, "bob", &second));
        assert!(routes.sees(bob, "bob", &last));
        // Watching again does not make one newer: the next forgotten is
        // still the oldest watched.
        routes.watch(bob, "bob", "k1".into(), false);
        routes.watch(bob, "bob", "another".into(), false);
        assert!(
            !routes.sees(bob, "bob", &second),
            "watched first, forgotten first"
        );
        assert!(routes.sees(bob, "bob", &last));
    }

    #[test]
    fn the_waiting_count_follows_every_change() {
        let mut routes = Routes::default();
        let count = |routes: &Routes| {
            let counted = routes
                .open()
                .iter()
                .filter(|c| c.status == ConversationStatus::Waiting)
                .count();
            assert_eq!(routes.waiting(), counted, "kept count = recount");
            counted
        };
        routes.remember(summary("k1", ConversationStatus::Waiting, None), false);
        routes.remember(summary("k2", ConversationStatus::Waiting, None), false);
        routes.remember(summary("k1", ConversationStatus::Waiting, None), false);
        assert_eq!(count(&routes), 2, "an update of a waiting one");
        routes.remember(summary("k1", ConversationStatus::Active, Some("a")), false);
        assert_eq!(count(&routes), 1, "claimed");
        routes.remember(summary("k2", ConversationStatus::Resolved, None), false);
        assert_eq!(count(&routes), 0, "resolved");
        routes.remember(summary("k3", ConversationStatus::Resolved, None), false);
        assert_eq!(count(&routes), 0, "resolved before it was seen");
        routes.remember(summary("k2", ConversationStatus::Waiting, None), false);
        assert_eq!(count(&routes), 1, "reopened");
        routes.forget_conversations();
        assert_eq!(count(&routes), 0);
    }

    #[test]
    fn a_resolved_conversation_leaves_the_table() {
        let mut routes = Routes::default();
        routes.remember(summary("k1", ConversationStatus::Waiting, None), false);
        assert_eq!(routes.waiting(), 1);
        assert!(routes.set_visitor_online("v1", true));
        assert!(
            routes
                .conversation_of("v1")
                .is_some_and(|s| s.visitor.online)
        );

        let (_, before) = routes.remember(summary("k1", ConversationStatus::Resolved, None), true);
        assert!(before.is_some(), "it replaced the open one");
        assert!(routes.conversation("k1").is_none());
        assert!(routes.conversation_of("v1").is_none());
        assert!(!routes.set_visitor_online("v1", false), "nobody to tell");
        assert!(routes.open().is_empty());
    }
}
