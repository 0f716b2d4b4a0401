//! Timeline events (claim, transfer, resolve, reopen) as the rows they are
//! stored as: a message of the conversation, written by the system, internal
//! (so no visitor ever gets one), carrying the event. Taking the next `seq`
//! is what puts them in order with the messages in history and resume, and
//! each backend stores one in the same transaction as the change it records.

use kefu_protocol::agent::AgentInfo;
use kefu_protocol::{Author, AuthorKind, Message, Seq, TimelineEvent};
use time::OffsetDateTime;

use crate::ids;

/// The author of every event: nobody who could write or resend.
const SYSTEM_NAME: &str = "kefu";

/// The event as message `seq` of its conversation.
pub(super) fn event_message(
    conversation_id: &str,
    seq: Seq,
    event: TimelineEvent,
    at: OffsetDateTime,
) -> Message {
    let id = ids::new_id();
    Message {
        conversation_id: conversation_id.to_owned(),
        seq,
        // Nobody resends an event; its own id keeps (author, client_id)
        // unique, as PostgreSQL's index requires.
        client_id: id.clone(),
        id,
        author: Author {
            kind: AuthorKind::System,
            id: SYSTEM_NAME.to_owned(),
            name: SYSTEM_NAME.to_owned(),
        },
        text: event.describe(),
        at,
        internal: true,
        event: Some(Box::new(event)),
        link: None,
        attachments: Vec::new(),
    }
}

pub(super) fn agent_author(agent: &AgentInfo) -> Author {
    Author {
        kind: AuthorKind::Agent,
        id: agent.id.clone(),
        name: agent.name.clone(),
    }
}

/// `by` handed the conversation to the agent `to_id`, named `to_name`.
pub(super) fn transferred(by: &AgentInfo, to_id: &str, to_name: String) -> TimelineEvent {
    TimelineEvent::Transferred {
        by: agent_author(by),
        to: Author {
            kind: AuthorKind::Agent,
            id: to_id.to_owned(),
            name: to_name,
        },
    }
}
