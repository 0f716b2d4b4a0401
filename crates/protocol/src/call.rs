//! Remote-assistance calls (WebRTC screen sharing): the signalling frames
//! the relay forwards between the participants of one call. Media never
//! passes through the relay.
//!
//! A call belongs to a conversation. An agent starts it (`call_invite`),
//! the visitor accepts or declines; agents take part from the assist page
//! (`/assist`, opened from a one-time link), each as one peer of a mesh.
//! Every participant is a *peer* with an opaque id; offers, answers and ICE
//! candidates go from one peer to another named peer of the same call
//! (`call_signal`), and the relay refuses anything addressed outside it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Author;

/// Most peers in one call: the visitor and four agents. In a mesh the
/// visitor's browser encodes and uploads its screen once per agent, so
/// upload bandwidth and CPU grow with every agent; past a handful, a
/// selective forwarding unit (SFU), which takes one upload and fans it
/// out, would replace the mesh.
pub const MAX_CALL_PEERS: usize = 5;

/// Largest `data` of a `call_signal`, in bytes: a session description
/// with audio and video is a few KiB; this also keeps a signal inside one
/// PostgreSQL notification when it crosses relays.
pub const MAX_SIGNAL_BYTES: usize = 6 * 1024;

/// What a `call_signal` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// An SDP offer (`data` is the SDP text).
    Offer,
    /// An SDP answer.
    Answer,
    /// A trickled ICE candidate (`data` is `RTCIceCandidate.toJSON()` as
    /// JSON text).
    Ice,
}

/// A participant → relay signal for another peer of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalTo {
    pub call_id: String,
    /// The peer it is for.
    pub to: String,
    pub kind: SignalKind,
    pub data: String,
}

/// A relay → participant signal from another peer of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalFrom {
    pub call_id: String,
    /// The peer it comes from.
    pub from: String,
    pub kind: SignalKind,
    pub data: String,
}

/// A participant of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPeer {
    pub peer: String,
    /// The visitor or the agent taking part (names are untrusted text).
    pub who: Author,
}

/// Relay → visitor: an agent asks to see the visitor's screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInvite {
    pub call_id: String,
    pub conversation_id: String,
    pub by: Author,
}

/// Relay → a peer that just joined: who it is in the call, who else is
/// there, and the ICE servers to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallWelcome {
    pub call_id: String,
    pub conversation_id: String,
    /// This peer's own id.
    pub you: String,
    /// The other peers, in the order they joined.
    pub peers: Vec<CallPeer>,
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
}

/// Relay → peers: somebody joined or left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPeerChange {
    pub call_id: String,
    #[serde(flatten)]
    pub peer: CallPeer,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// A participant (or an agent) hung up.
    HungUp,
    /// The visitor declined.
    Declined,
    /// Nobody joined in time.
    Unanswered,
    /// The visitor, or the last agent, left or went offline.
    Left,
}

impl CallEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CallEndReason::HungUp => "hung up",
            CallEndReason::Declined => "declined",
            CallEndReason::Unanswered => "unanswered",
            CallEndReason::Left => "everybody left",
        }
    }
}

/// Relay → everybody in the call (and the visitor): the call is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEnded {
    pub call_id: String,
    pub reason: CallEndReason,
}

/// Relay → agent: a one-time link to the assist page for a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLink {
    pub call_id: String,
    pub conversation_id: String,
    /// The assist page, on the relay the agent is connected to:
    /// `/assist#code=…`. Its code works once, until `expires_at`.
    pub path: String,
    /// The same as a whole URL, when the relay knows its public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Assist page → relay, on `/ws/assist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AssistRequest {
    /// First frame: the one-time code from the link.
    Hello {
        code: String,
    },
    CallSignal(SignalTo),
    /// Leaves the call; it goes on for the others.
    CallLeave {
        call_id: String,
    },
    /// Ends the call for everybody.
    CallHangup {
        call_id: String,
    },
}

/// Relay → assist page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AssistEvent {
    CallWelcome(CallWelcome),
    CallJoined(CallPeerChange),
    CallLeft(CallPeerChange),
    CallSignal(SignalFrom),
    CallEnded(CallEnded),
    Error(crate::ErrorFrame),
}
