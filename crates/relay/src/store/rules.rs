//! Who may do what to a conversation. Both backends read the conversation's
//! state inside their write transaction, ask these rules, and write what
//! they decide, so the rules cannot differ between SQLite and PostgreSQL.

use kefu_protocol::Seq;
use kefu_protocol::agent::{AgentInfo, ConversationStatus, Role};

use super::{ResolveScope, StoreError};

/// The parts of a conversation row a write decides on.
#[derive(Debug, Clone)]
pub(super) struct ConversationState {
    pub status: ConversationStatus,
    pub assignee: Option<String>,
    pub last_seq: Seq,
}

impl ConversationState {
    fn assigned_to(&self, agent: &AgentInfo) -> bool {
        self.assignee.as_deref() == Some(agent.id.as_str())
    }

    fn taken_by_other(&self, agent: &AgentInfo) -> bool {
        self.status == ConversationStatus::Active && !self.assigned_to(agent)
    }
}

/// What a write should do, when it may do anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Already so: write nothing, publish nothing.
    Unchanged,
    /// Assign the conversation to the acting agent (or the transfer target).
    Assign,
    /// Write without touching the assignment.
    Proceed,
}

/// An agent's message. A reply to a waiting or resolved conversation takes
/// it; a reply to someone else's is a conflict. Notes never change hands.
pub(super) fn reply(
    state: &ConversationState,
    agent: &AgentInfo,
    internal: bool,
) -> Result<Decision, StoreError> {
    if internal || state.assigned_to(agent) && state.status == ConversationStatus::Active {
        return Ok(Decision::Proceed);
    }
    if state.taken_by_other(agent) {
        return Err(StoreError::Conflict(
            "the conversation is assigned to another agent".into(),
        ));
    }
    Ok(Decision::Assign)
}

/// Racing claims: the first assigns, the rest find it taken.
pub(super) fn claim(state: &ConversationState, agent: &AgentInfo) -> Result<Decision, StoreError> {
    if state.status == ConversationStatus::Active {
        if state.assigned_to(agent) {
            return Ok(Decision::Unchanged);
        }
        return Err(StoreError::Conflict(
            "the conversation was already claimed by another agent".into(),
        ));
    }
    Ok(Decision::Assign)
}

/// The assignee or an admin may hand a conversation on; anyone may while
/// nobody has it.
pub(super) fn transfer(state: &ConversationState, by: &AgentInfo) -> Result<Decision, StoreError> {
    if state.taken_by_other(by) && by.role != Role::Admin {
        return Err(StoreError::Forbidden(
            "only the assignee or an admin may transfer this conversation",
        ));
    }
    Ok(Decision::Assign)
}

/// The assignee or an admin may resolve; anyone may resolve a waiting one.
/// Within [`ResolveScope::Waiting`] one that is no longer waiting is left
/// as it is.
pub(super) fn resolve(
    state: &ConversationState,
    by: &AgentInfo,
    scope: ResolveScope,
) -> Result<Decision, StoreError> {
    let in_scope = match scope {
        ResolveScope::Open => state.status != ConversationStatus::Resolved,
        ResolveScope::Waiting => state.status == ConversationStatus::Waiting,
    };
    if !in_scope {
        return Ok(Decision::Unchanged);
    }
    if state.taken_by_other(by) && by.role != Role::Admin {
        return Err(StoreError::Forbidden(
            "only the assignee or an admin may resolve this conversation",
        ));
    }
    Ok(Decision::Proceed)
}

/// Whether an agent's read counts for the visitor ("seen").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadsForVisitor {
    Yes,
    No,
    /// Only if the agent has replied in the conversation: the backend
    /// looks that up (only then, as it costs a query).
    IfReplied,
}

/// The assignee's read counts for the visitor; while nobody has the
/// conversation (waiting, or resolved), the read of an agent who has
/// replied in it does. Anybody else only looked.
pub(super) fn reads_for_visitor(state: &ConversationState, agent: &AgentInfo) -> ReadsForVisitor {
    match state.status {
        ConversationStatus::Active if state.assigned_to(agent) => ReadsForVisitor::Yes,
        ConversationStatus::Active => ReadsForVisitor::No,
        ConversationStatus::Waiting | ConversationStatus::Resolved => ReadsForVisitor::IfReplied,
    }
}

/// The states a rule tells apart for `agent`: waiting, active and resolved,
/// each held by nobody (or someone else) and then by `agent`. A write that
/// PostgreSQL makes in one statement (`kefu_agent_send`, migration 0012)
/// takes the rule's decision for each, and picks the one for the state it
/// finds at index 2 × (0 waiting, 1 active, 2 resolved) + (1 if held by
/// `agent`), counting from 0: the rule stays here, written once.
pub(super) fn states(agent: &AgentInfo) -> [ConversationState; 6] {
    let state = |status, mine: bool| ConversationState {
        status,
        assignee: mine.then(|| agent.id.clone()),
        last_seq: 0,
    };
    [
        state(ConversationStatus::Waiting, false),
        state(ConversationStatus::Waiting, true),
        state(ConversationStatus::Active, false),
        state(ConversationStatus::Active, true),
        state(ConversationStatus::Resolved, false),
        state(ConversationStatus::Resolved, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, role: Role) -> AgentInfo {
        AgentInfo {
            id: id.into(),
            name: id.into(),
            role,
        }
    }

    fn state(status: ConversationStatus, assignee: Option<&str>) -> ConversationState {
        ConversationState {
            status,
            assignee: assignee.map(str::to_owned),
            last_seq: 3,
        }
    }

    #[test]
    fn replies_take_free_conversations_and_respect_taken_ones() {
        let alice = agent("alice", Role::Agent);
        let waiting = state(ConversationStatus::Waiting, None);
        let resolved = state(ConversationStatus::Resolved, Some("bob"));
        let bobs = state(ConversationStatus::Active, Some("bob"));
        let alices = state(ConversationStatus::Active, Some("alice"));
        assert_eq!(reply(&waiting, &alice, false).ok(), Some(Decision::Assign));
        assert_eq!(reply(&resolved, &alice, false).ok(), Some(Decision::Assign));
        assert_eq!(reply(&alices, &alice, false).ok(), Some(Decision::Proceed));
        assert!(matches!(
            reply(&bobs, &alice, false),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            reply(&bobs, &alice, true).ok(),
            Some(Decision::Proceed),
            "notes are free"
        );
    }

    #[test]
    fn claims_transfers_and_resolves_follow_the_assignment() {
        let alice = agent("alice", Role::Agent);
        let root = agent("root", Role::Admin);
        let bobs = state(ConversationStatus::Active, Some("bob"));
        assert!(matches!(claim(&bobs, &alice), Err(StoreError::Conflict(_))));
        assert_eq!(
            claim(&bobs, &agent("bob", Role::Agent)).ok(),
            Some(Decision::Unchanged)
        );
        assert!(matches!(
            transfer(&bobs, &alice),
            Err(StoreError::Forbidden(_))
        ));
        assert_eq!(transfer(&bobs, &root).ok(), Some(Decision::Assign));
        let open = ResolveScope::Open;
        assert!(matches!(
            resolve(&bobs, &alice, open),
            Err(StoreError::Forbidden(_))
        ));
        assert_eq!(resolve(&bobs, &root, open).ok(), Some(Decision::Proceed));
        let waiting = state(ConversationStatus::Waiting, None);
        assert_eq!(
            resolve(&waiting, &alice, open).ok(),
            Some(Decision::Proceed)
        );
        let done = state(ConversationStatus::Resolved, Some("bob"));
        assert_eq!(resolve(&done, &alice, open).ok(), Some(Decision::Unchanged));
        // A bulk resolve leaves what an agent took meanwhile.
        let only_waiting = ResolveScope::Waiting;
        assert_eq!(
            resolve(&bobs, &root, only_waiting).ok(),
            Some(Decision::Unchanged)
        );
        assert_eq!(
            resolve(&waiting, &root, only_waiting).ok(),
            Some(Decision::Proceed)
        );
        assert_eq!(claim(&done, &alice).ok(), Some(Decision::Assign));
    }

    #[test]
    fn only_the_agent_answering_the_visitor_reads_for_them() {
        let alice = agent("alice", Role::Agent);
        let root = agent("root", Role::Admin);
        let alices = state(ConversationStatus::Active, Some("alice"));
        assert_eq!(reads_for_visitor(&alices, &alice), ReadsForVisitor::Yes);
        assert_eq!(reads_for_visitor(&alices, &root), ReadsForVisitor::No);
        let waiting = state(ConversationStatus::Waiting, None);
        assert_eq!(
            reads_for_visitor(&waiting, &alice),
            ReadsForVisitor::IfReplied
        );
    }
}
