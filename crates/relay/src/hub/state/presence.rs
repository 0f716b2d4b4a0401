//! Who is on this relay: visitors, with the grace before they count as gone,
//! and agents, with their availability.
//!
//! Invariants:
//! - A visitor is here from their first connection until `grace` after their
//!   last one closed; a connection within the grace keeps them here without
//!   a gap, so agents never see a visitor flicker between pages.
//! - Only the latest departure of a visitor can expire them: an older
//!   deadline whose visitor came back (and maybe left again) is skipped.
//! - Every agent seen since start is kept, so availability survives a
//!   reconnect; an agent is online while they have a connection.
//!
//! This part knows nothing of the cluster or of frames: it answers what
//! changed, and the hub decides whom to tell.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use kefu_protocol::AgentState;
use kefu_protocol::agent::AgentInfo;
use tokio::time::Instant;

use crate::ids::ConnId;

pub(super) struct LocalPresence {
    grace: Duration,
    /// Visitors shown as online: connected, or gone for less than the grace.
    visitors: HashMap<String, VisitorPresence>,
    /// When visitors who left should be announced offline, oldest first
    /// (the grace is constant, so pushing at the back keeps the order).
    offline_deadlines: VecDeque<(Instant, String)>,
    /// Every agent seen since start, so availability survives a reconnect.
    agents: HashMap<String, AgentEntry>,
}

#[derive(Default)]
struct VisitorPresence {
    conns: Vec<ConnId>,
    offline_at: Option<Instant>,
}

pub(super) struct AgentEntry {
    info: AgentInfo,
    state: AgentState,
    conns: Vec<ConnId>,
}

impl AgentEntry {
    pub(super) fn info(&self) -> &AgentInfo {
        &self.info
    }

    pub(super) fn state(&self) -> AgentState {
        self.state
    }

    pub(super) fn online(&self) -> bool {
        !self.conns.is_empty()
    }

    pub(super) fn available(&self) -> bool {
        self.online() && self.state == AgentState::Available
    }
}

impl LocalPresence {
    pub(super) fn new(grace: Duration) -> Self {
        LocalPresence {
            grace,
            visitors: HashMap::new(),
            offline_deadlines: VecDeque::new(),
            agents: HashMap::new(),
        }
    }

    /// A visitor connection opened. True if the visitor is newly here: they
    /// were neither connected nor within the grace of a departure.
    pub(super) fn visitor_arrived(&mut self, visitor_id: &str, conn: ConnId) -> bool {
        let presence = self.visitors.entry(visitor_id.to_owned()).or_default();
        let newly_here = presence.conns.is_empty() && presence.offline_at.is_none();
        presence.conns.push(conn);
        presence.offline_at = None;
        newly_here
    }

    /// A visitor connection closed at `now`.
    pub(super) fn visitor_left(&mut self, visitor_id: &str, conn: ConnId, now: Instant) {
        if let Some(presence) = self.visitors.get_mut(visitor_id) {
            presence.conns.retain(|c| *c != conn);
            if presence.conns.is_empty() {
                // Going offline is announced only after the grace, so a
                // visitor moving to the next page does not flicker.
                let at = now + self.grace;
                presence.offline_at = Some(at);
                self.offline_deadlines
                    .push_back((at, visitor_id.to_owned()));
            }
        }
    }

    /// When [`expire`](Self::expire) has something to look at next.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.offline_deadlines.front().map(|(at, _)| *at)
    }

    /// Forgets the visitors whose grace ended by `now`; returns them, in the
    /// order they left.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        while let Some((at, _)) = self.offline_deadlines.front() {
            if *at > now {
                break;
            }
            let Some((at, visitor_id)) = self.offline_deadlines.pop_front() else {
                break;
            };
            let expired = self
                .visitors
                .get(&visitor_id)
                .is_some_and(|p| p.conns.is_empty() && p.offline_at == Some(at));
            if expired {
                self.visitors.remove(&visitor_id);
                gone.push(visitor_id);
            }
        }
        gone
    }

    /// Whether a visitor counts as online here (connected, or within the
    /// grace).
    pub(super) fn visitor_here(&self, visitor_id: &str) -> bool {
        self.visitors.contains_key(visitor_id)
    }

    /// A visitor's open connections on this relay.
    pub(super) fn visitor_conns(&self, visitor_id: &str) -> &[ConnId] {
        self.visitors
            .get(visitor_id)
            .map_or(&[], |presence| presence.conns.as_slice())
    }

    /// The visitors to tell a joining relay about.
    pub(super) fn visitors_here(&self) -> impl Iterator<Item = &str> {
        self.visitors
            .iter()
            .filter(|(_, presence)| !presence.conns.is_empty() || presence.offline_at.is_some())
            .map(|(id, _)| id.as_str())
    }

    /// An agent connection opened (with the agent's current name and role).
    /// True if the agent came online; a new agent starts available.
    pub(super) fn agent_arrived(&mut self, info: AgentInfo, conn: ConnId) -> bool {
        let entry = self.agents.entry(info.id.clone()).or_insert(AgentEntry {
            info: info.clone(),
            state: AgentState::Available,
            conns: Vec::new(),
        });
        entry.info = info;
        let newly_online = !entry.online();
        entry.conns.push(conn);
        newly_online
    }

    /// An agent connection closed. True if the agent is now offline.
    pub(super) fn agent_left(&mut self, agent_id: &str, conn: ConnId) -> bool {
        let Some(entry) = self.agents.get_mut(agent_id) else {
            return false;
        };
        entry.conns.retain(|c| *c != conn);
        !entry.online()
    }

    /// An agent set their availability. True if it changed.
    pub(super) fn set_agent_state(&mut self, agent_id: &str, state: AgentState) -> bool {
        match self.agents.get_mut(agent_id) {
            Some(entry) if entry.state != state => {
                entry.state = state;
                true
            }
            _ => false,
        }
    }

    pub(super) fn agent(&self, agent_id: &str) -> Option<&AgentEntry> {
        self.agents.get(agent_id)
    }

    /// Every agent seen since start, online or not.
    pub(super) fn agents(&self) -> impl Iterator<Item = &AgentEntry> {
        self.agents.values()
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::agent::Role;

    use super::*;

    const GRACE: Duration = Duration::from_secs(10);
    const V1: &str = "v1";

    fn conn(raw: u64) -> ConnId {
        ConnId::from_raw(raw)
    }

    fn agent(id: &str, name: &str) -> AgentInfo {
        AgentInfo {
            id: id.into(),
            name: name.into(),
            role: Role::Agent,
        }
    }

    #[test]
    fn a_visitor_who_leaves_is_gone_only_after_the_grace() {
        let mut presence = LocalPresence::new(GRACE);
        let t0 = Instant::now();
        assert!(presence.visitor_arrived(V1, conn(1)), "newly here");
        assert_eq!(presence.next_deadline(), None, "nothing to expire");
        presence.visitor_left(V1, conn(1), t0);
        assert!(presence.visitor_here(V1), "still here within the grace");
        assert!(presence.visitor_conns(V1).is_empty());
        assert_eq!(presence.next_deadline(), Some(t0 + GRACE));

        let just_before = t0 + GRACE - Duration::from_millis(1);
        assert!(presence.expire(just_before).is_empty());
        assert!(presence.visitor_here(V1));
        assert_eq!(presence.expire(t0 + GRACE), [V1]);
        assert!(!presence.visitor_here(V1));
        assert_eq!(presence.next_deadline(), None);
        assert!(presence.expire(t0 + GRACE * 3).is_empty(), "gone once only");
    }

    #[test]
    fn a_visitor_who_reconnects_within_the_grace_never_goes_offline() {
        let mut presence = LocalPresence::new(GRACE);
        let t0 = Instant::now();
        presence.visitor_arrived(V1, conn(1));
        presence.visitor_left(V1, conn(1), t0);
        assert!(
            !presence.visitor_arrived(V1, conn(2)),
            "back within the grace: not news to anybody"
        );
        assert!(presence.expire(t0 + GRACE * 2).is_empty());
        assert!(presence.visitor_here(V1));
        assert_eq!(presence.visitor_conns(V1), [conn(2)]);
    }

    #[test]
    fn only_the_latest_departure_expires_a_visitor() {
        let mut presence = LocalPresence::new(GRACE);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(4);
        presence.visitor_arrived(V1, conn(1));
        presence.visitor_left(V1, conn(1), t0);
        presence.visitor_arrived(V1, conn(2));
        presence.visitor_left(V1, conn(2), t1);

        assert!(
            presence.expire(t0 + GRACE).is_empty(),
            "the first deadline is stale: they came back since"
        );
        assert!(presence.visitor_here(V1));
        assert_eq!(presence.next_deadline(), Some(t1 + GRACE));
        assert_eq!(presence.expire(t1 + GRACE), [V1]);
    }

    #[test]
    fn a_visitor_with_two_tabs_stays_while_one_is_open() {
        let mut presence = LocalPresence::new(GRACE);
        let t0 = Instant::now();
        assert!(presence.visitor_arrived(V1, conn(1)));
        assert!(!presence.visitor_arrived(V1, conn(2)), "here already");
        presence.visitor_left(V1, conn(1), t0);
        assert_eq!(presence.next_deadline(), None, "one tab is still open");
        assert_eq!(presence.visitor_conns(V1), [conn(2)]);
        assert!(presence.expire(t0 + GRACE * 2).is_empty());
        assert_eq!(presence.visitors_here().collect::<Vec<_>>(), [V1]);
    }

    #[test]
    fn visitors_expire_in_the_order_they_left() {
        let mut presence = LocalPresence::new(GRACE);
        let t0 = Instant::now();
        for (raw, id) in [(1, "a"), (2, "b"), (3, "c")] {
            presence.visitor_arrived(id, conn(raw));
        }
        presence.visitor_left("b", conn(2), t0);
        presence.visitor_left("a", conn(1), t0 + Duration::from_secs(1));
        presence.visitor_left("c", conn(3), t0 + Duration::from_secs(5));
        let second_later = t0 + GRACE + Duration::from_secs(1);
        assert_eq!(presence.expire(second_later), ["b", "a"]);
        assert_eq!(presence.visitors_here().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn an_agent_is_online_while_any_connection_is_open() {
        let mut presence = LocalPresence::new(GRACE);
        assert!(presence.agent_arrived(agent("alice", "Alice"), conn(1)));
        assert!(!presence.agent_arrived(agent("alice", "Alice"), conn(2)));
        assert!(!presence.agent_left("alice", conn(1)), "one left");
        assert!(presence.agent("alice").is_some_and(AgentEntry::online));
        assert!(presence.agent_left("alice", conn(2)), "now offline");
        assert!(!presence.agent("alice").is_some_and(AgentEntry::online));
        assert!(!presence.agent_left("nobody", conn(3)));
    }

    #[test]
    fn an_agents_availability_survives_a_reconnect() {
        let mut presence = LocalPresence::new(GRACE);
        presence.agent_arrived(agent("alice", "Alice"), conn(1));
        assert!(presence.agent("alice").is_some_and(AgentEntry::available));
        assert!(presence.set_agent_state("alice", AgentState::Away));
        assert!(
            !presence.set_agent_state("alice", AgentState::Away),
            "no change"
        );
        presence.agent_left("alice", conn(1));
        assert!(!presence.agent("alice").is_some_and(AgentEntry::available));

        assert!(presence.agent_arrived(agent("alice", "Alice Li"), conn(2)));
        let entry = presence.agent("alice").expect("alice is known");
        assert_eq!(entry.state(), AgentState::Away, "still away");
        assert!(!entry.available());
        assert_eq!(entry.info().name, "Alice Li", "the latest name");
        assert!(!presence.set_agent_state("nobody", AgentState::Away));
    }
}
