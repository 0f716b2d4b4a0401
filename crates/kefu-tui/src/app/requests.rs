//! The requests the app builds in more than one place: both the agent's
//! actions and the relay's frames page history and send replies.

use kefu_protocol::agent::AgentRequest;

use super::{Outgoing, PAGE};

/// A page of `id`'s history ending before `before_seq` (or the newest).
pub(super) fn history_request(id: &str, before_seq: Option<u64>) -> AgentRequest {
    AgentRequest::History {
        conversation_id: id.to_owned(),
        before_seq,
        limit: Some(PAGE),
    }
}

/// The `send` for a reply; a resend reuses it, `client_id` and all.
pub(super) fn send_request(conversation_id: &str, out: &Outgoing) -> AgentRequest {
    AgentRequest::Send {
        conversation_id: conversation_id.to_owned(),
        client_id: out.client_id.clone(),
        text: out.text.clone(),
        internal: out.internal,
        link: out.link.clone(),
        attachments: out.attachments.iter().map(|file| file.id.clone()).collect(),
    }
}
