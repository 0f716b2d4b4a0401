//! What connections ask the hub about remote-assistance calls.
//!
//! The hub keeps each call's participants (from the timeline events the
//! store committed, so every relay of a cluster knows the same ones) and
//! forwards signals between them. A step that changes a call — a join, a
//! leave, the end — is not taken by the hub: it answers the
//! [`Recording`] to store, the transport stores it, and the committed event
//! is what changes the call everywhere ("stored before anyone sees it").

use kefu_protocol::call::SignalTo;
use kefu_protocol::{Author, ErrorCode, ErrorFrame, TimelineEvent};
use tokio::sync::oneshot;

use super::{Command, Hub, HubClosed, Outbox};
use crate::ids::ConnId;

/// A call step to store, as the conversation's next timeline event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub conversation_id: String,
    pub event: TimelineEvent,
}

/// Why the hub refused a call request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    /// No such call (or it ended), or this connection is not in it.
    NoCall,
    /// The peer a signal is for is not in the call.
    NoPeer,
    /// The call has [`kefu_protocol::call::MAX_CALL_PEERS`] peers already.
    Full,
    /// The one-time code was used already.
    Spent,
    /// This connection is in the call already.
    Joined,
}

impl CallRefusal {
    /// The error frame a client gets, naming the call.
    pub fn frame(self, call_id: &str) -> ErrorFrame {
        let (code, why) = match self {
            CallRefusal::NoCall => (ErrorCode::NotFound, "no such call, or you are not in it"),
            CallRefusal::NoPeer => (ErrorCode::NotFound, "no such peer in this call"),
            CallRefusal::Full => (ErrorCode::Conflict, "the call is full"),
            CallRefusal::Spent => (ErrorCode::Forbidden, "this link was used already"),
            CallRefusal::Joined => (ErrorCode::Conflict, "already in this call"),
        };
        ErrorFrame::new(code, why).with_ref(call_id)
    }
}

pub(super) type Answer<T> = oneshot::Sender<Result<T, CallRefusal>>;

pub(super) enum CallCommand {
    /// The call going on in a conversation, if any.
    Find {
        conversation_id: String,
        reply: oneshot::Sender<Option<String>>,
    },
    /// A visitor connection accepts (joins) or declines.
    Answer {
        conn: ConnId,
        call_id: String,
        accept: bool,
        reply: Answer<Recording>,
    },
    /// An assist page joins as `who`, its peer id the link's one-time
    /// code id.
    Join {
        call_id: String,
        peer: String,
        who: Author,
        outbox: Outbox,
        reply: Answer<Recording>,
    },
    Signal {
        conn: ConnId,
        signal: SignalTo,
        reply: Answer<()>,
    },
    /// A participant leaves (`hang_up: false`) or ends the call; an agent's
    /// own connection may end any call.
    Leave {
        conn: ConnId,
        call_id: String,
        hang_up: bool,
        reply: Answer<Recording>,
    },
}

impl Hub {
    /// The call going on in a conversation, if any.
    pub async fn call_in(&self, conversation_id: String) -> Result<Option<String>, HubClosed> {
        self.ask(|reply| {
            Command::Call(CallCommand::Find {
                conversation_id,
                reply,
            })
        })
        .await
    }

    /// A visitor's connection accepts or declines a call: what to store.
    pub async fn answer_call(
        &self,
        conn: ConnId,
        call_id: String,
        accept: bool,
    ) -> Result<Result<Recording, CallRefusal>, HubClosed> {
        self.ask(|reply| {
            Command::Call(CallCommand::Answer {
                conn,
                call_id,
                accept,
                reply,
            })
        })
        .await
    }

    /// Registers an assist page's connection as peer `peer` about to join:
    /// what to store for it to join.
    pub async fn join_call(
        &self,
        call_id: String,
        peer: String,
        who: Author,
        outbox: Outbox,
    ) -> Result<Result<Recording, CallRefusal>, HubClosed> {
        self.ask(|reply| {
            Command::Call(CallCommand::Join {
                call_id,
                peer,
                who,
                outbox,
                reply,
            })
        })
        .await
    }

    /// Forwards a signal to another peer of the sender's call.
    pub async fn signal(
        &self,
        conn: ConnId,
        signal: SignalTo,
    ) -> Result<Result<(), CallRefusal>, HubClosed> {
        self.ask(|reply| {
            Command::Call(CallCommand::Signal {
                conn,
                signal,
                reply,
            })
        })
        .await
    }

    /// A participant leaves or hangs up: what to store.
    pub async fn leave_call(
        &self,
        conn: ConnId,
        call_id: String,
        hang_up: bool,
    ) -> Result<Result<Recording, CallRefusal>, HubClosed> {
        self.ask(|reply| {
            Command::Call(CallCommand::Leave {
                conn,
                call_id,
                hang_up,
                reply,
            })
        })
        .await
    }
}
