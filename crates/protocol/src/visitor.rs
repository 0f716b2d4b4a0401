//! Frames on `/ws/visitor` (and, as JSON bodies, on the long-poll endpoints).

use serde::{Deserialize, Serialize};

use crate::call::{CallEnded, CallInvite, CallPeerChange, CallWelcome, SignalFrom, SignalTo};
use crate::trail::PageViewReport;
use crate::{Ack, Broadcast, ErrorFrame, Message, Presence, ReadReceipt, Reconnect, Seq, Typing};

/// What the visitor's page tells about the visitor. Every field is optional
/// and untrusted; the relay bounds their length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Visitor → relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorRequest {
    /// First frame of a connection. Without a token the relay makes a new
    /// visitor; with one it resumes that visitor and replays every message of
    /// its conversation with `seq > after_seq`.
    Hello {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        after_seq: Option<Seq>,
        #[serde(default)]
        profile: Option<VisitorProfile>,
    },
    Send {
        client_id: String,
        text: String,
        /// Ids of files this visitor uploaded, sent with the message.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    Typing {
        active: bool,
    },
    Read {
        up_to_seq: Seq,
    },
    /// Adds to what agents know of the visitor, e.g. the email left while no
    /// agent was online. Fields left out keep their value.
    Profile(VisitorProfile),
    /// The visitor opened a page of the site (see [`crate::trail`]).
    PageView(PageViewReport),
    /// Shares the screen in a call an agent asked for: the visitor joins it.
    CallAccept {
        call_id: String,
    },
    /// Refuses to share: the call ends; the chat goes on.
    CallDecline {
        call_id: String,
    },
    CallSignal(SignalTo),
    /// Stops sharing: the call ends for everybody.
    CallHangup {
        call_id: String,
    },
}

/// Relay → visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorEvent {
    Welcome(VisitorWelcome),
    Ack(Ack),
    Message(Message),
    Typing(Typing),
    Read(ReadReceipt),
    Presence(Presence),
    Broadcast(Broadcast),
    Error(ErrorFrame),
    Reconnect(Reconnect),
    CallInvite(CallInvite),
    CallWelcome(CallWelcome),
    CallJoined(CallPeerChange),
    CallLeft(CallPeerChange),
    CallSignal(SignalFrom),
    CallEnded(CallEnded),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorWelcome {
    pub visitor_id: String,
    /// Keep it (e.g. in localStorage) and present it in the next `hello`.
    pub token: String,
    /// Absent until the visitor's first `send` creates the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    pub agents_online: u32,
    /// The configured welcome text, shown first and never stored.
    pub greeting: String,
    /// Long-poll only: names this page's event stream in later requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}
