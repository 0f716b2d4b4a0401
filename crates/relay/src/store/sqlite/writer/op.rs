//! What the writer is asked to do, and what it answers.

use kefu_protocol::agent::{AgentInfo, ConversationSummary, Role};
use kefu_protocol::trail::PageView;
use kefu_protocol::{Message, Seq, TimelineEvent};

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
