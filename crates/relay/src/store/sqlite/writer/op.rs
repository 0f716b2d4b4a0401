//! What the writer is asked to do, and what it answers.

use kefu_protocol::agent::{AgentInfo, ConversationSummary, Role};
use kefu_protocol::trail::PageView;
use kefu_protocol::{AuthorKind, Message, Seq, TimelineEvent};

use super::super::super::lanes::Lane;
use super::super::super::{
    AgentSend, Block, Change, NewFile, ResolveScope, VisitorDetails, VisitorSend,
};
use crate::ids::ConnId;

pub(in super::super) enum WriteOp {
    VisitorSend(VisitorSend),
    AgentSend(AgentSend),
    Claim {
        conversation_id: String,
        agent: AgentInfo,
    },
    Transfer {
        conversation_id: String,
        by: AgentInfo,
        to_agent: String,
    },
    Resolve {
        conversation_id: String,
        by: AgentInfo,
        scope: ResolveScope,
    },
    MarkRead {
        conversation_id: String,
        reader: ReadBy,
        up_to_seq: Seq,
    },
    UpdateVisitor {
        visitor_id: String,
        details: VisitorDetails,
    },
    PageViews {
        visitor_id: String,
        views: Vec<PageView>,
    },
    AddAgent {
        name: String,
        role: Role,
        token_hash: String,
    },
    DisableAgent {
        name: String,
    },
    SetAgentToken {
        name: String,
        token_hash: String,
    },
    Block(Block),
    Unblock {
        range: String,
    },
    /// A timeline event that changes nothing else (a call's steps).
    RecordEvent {
        conversation_id: String,
        event: TimelineEvent,
        origin: Option<ConnId>,
    },
    AddFile(NewFile),
    PruneFiles {
        before_ms: i64,
    },
    DeleteConversations(Vec<Doomed>),
}

impl WriteOp {
    /// The writer's queue this goes to: a visitor's own writes queue
    /// behind everyone else's (see `store::lanes`).
    pub(in super::super) fn lane(&self) -> Lane {
        match self {
            WriteOp::VisitorSend(_)
            | WriteOp::UpdateVisitor { .. }
            | WriteOp::PageViews { .. }
            | WriteOp::MarkRead {
                reader: ReadBy::Visitor,
                ..
            } => Lane::Visitor,
            WriteOp::AddFile(file) if file.owner.kind == AuthorKind::Visitor => Lane::Visitor,
            WriteOp::MarkRead { .. }
            | WriteOp::AddFile(_)
            | WriteOp::AgentSend(_)
            | WriteOp::Claim { .. }
            | WriteOp::Transfer { .. }
            | WriteOp::Resolve { .. }
            | WriteOp::AddAgent { .. }
            | WriteOp::DisableAgent { .. }
            | WriteOp::SetAgentToken { .. }
            | WriteOp::Block(_)
            | WriteOp::Unblock { .. }
            // A call's steps, which a visitor's may be: begun by an agent,
            // and as few as the hub lets a call take.
            | WriteOp::RecordEvent { .. }
            | WriteOp::PruneFiles { .. }
            | WriteOp::DeleteConversations(_) => Lane::Staff,
        }
    }
}

/// A resolved conversation to delete, as a reader found it.
pub(in super::super) struct Doomed {
    pub id: String,
    /// Deleted only if still at this `seq`: nothing written since the read.
    pub last_seq: i64,
    /// The rowids of its rows in `message_search`.
    pub search_rows: Vec<i64>,
}

/// [`Reader`](super::super::super::Reader), owned for the queue.
pub(in super::super) enum ReadBy {
    Visitor,
    Agent(AgentInfo),
}

pub(in super::super) enum Written {
    Message(Message),
    Summary(ConversationSummary),
    Agent(AgentInfo),
    /// How many rows a write removed.
    Count(u64),
    Deleted(super::super::super::Deleted),
    Done,
    /// Nothing was written: the visitor has no conversation yet.
    NoConversation,
}

/// What a write answers, and the changes it publishes once committed, in
/// order (a timeline event before the message that caused it).
pub(super) type Applied = (Written, Vec<Change>);

#[cfg(test)]
mod tests {
    use kefu_protocol::agent::{AgentInfo, Role};

    use super::*;

    fn agent() -> AgentInfo {
        AgentInfo {
            id: "a".into(),
            name: "Ann".into(),
            role: Role::Agent,
        }
    }

    fn mark_read(reader: ReadBy) -> WriteOp {
        WriteOp::MarkRead {
            conversation_id: "c".into(),
            reader,
            up_to_seq: 1,
        }
    }

    #[test]
    fn a_visitors_writes_queue_in_the_visitors_lane_and_no_one_elses() {
        let send = VisitorSend {
            visitor_id: "v".into(),
            details: VisitorDetails::default(),
            client_id: "k".into(),
            text: "hi".into(),
            attachments: Vec::new(),
            origin: None,
        };
        let reply = AgentSend {
            agent: agent(),
            conversation_id: "c".into(),
            client_id: "k".into(),
            text: "hello".into(),
            internal: false,
            link: None,
            attachments: Vec::new(),
            origin: None,
        };
        let claim = WriteOp::Claim {
            conversation_id: "c".into(),
            agent: agent(),
        };
        let profile = WriteOp::UpdateVisitor {
            visitor_id: "v".into(),
            details: VisitorDetails::default(),
        };
        for (op, lane) in [
            (WriteOp::VisitorSend(send), Lane::Visitor),
            (profile, Lane::Visitor),
            (mark_read(ReadBy::Visitor), Lane::Visitor),
            (WriteOp::AgentSend(reply), Lane::Staff),
            (claim, Lane::Staff),
            (mark_read(ReadBy::Agent(agent())), Lane::Staff),
            (WriteOp::PruneFiles { before_ms: 0 }, Lane::Staff),
        ] {
            assert_eq!(op.lane(), lane);
        }
    }
}
