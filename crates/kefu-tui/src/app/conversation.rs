//! One conversation as the client holds it: the relay's summary, the messages
//! seen so far (keyed by `seq`, which makes duplicates impossible), replies
//! not yet acknowledged, and the agent's draft.

use std::collections::BTreeMap;

use kefu_protocol::agent::{
    AgentReadMark, ConversationStatus, ConversationSummary, VisitorSummary,
};
use kefu_protocol::trail::LinkCard;
use kefu_protocol::{Attachment, Message, Seq, TimelineEvent};
use time::OffsetDateTime;

use crate::compose::Buffer;

/// Typing without news for this long counts as stopped (protocol: ~6 s).
pub(super) const TYPING_STALE: time::Duration = time::Duration::seconds(6);

#[derive(Debug, Clone)]
pub struct Conversation {
    pub summary: ConversationSummary,
    /// Everything known of the history, by `seq`: live messages and pages
    /// overlap after a reconnect, and the map keeps one of each.
    pub messages: BTreeMap<Seq, Message>,
    /// Replies sent but not acknowledged, oldest first.
    pub outgoing: Vec<Outgoing>,
    pub draft: Draft,
    /// Rows scrolled up from the newest message.
    pub scroll: usize,
    /// Messages that came while scrolled up, not yet scrolled down to.
    pub new_below: usize,
    /// `history` was asked for: this connection follows the conversation, and
    /// must ask again after a reconnect to follow it on the new one.
    pub followed: bool,
    /// An older page was asked for and has not come yet.
    pub loading_older: bool,
    /// Something happened here that the agent has not looked at.
    pub activity: bool,
    /// When the visitor was last reported typing.
    pub visitor_typing: Option<OffsetDateTime>,
    /// The highest `seq` this client marked read.
    pub read_sent: Seq,
    /// This agent's own read position (read state is per agent): what the
    /// relay last said, or what this client marked since.
    pub read_mark: Option<AgentReadMark>,
    /// The search hit it was opened at: shown highlighted.
    pub hit: Option<Hit>,
}

/// A search hit a conversation was opened at (see `finder`): the message,
/// and the words to highlight in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub seq: Seq,
    pub terms: Vec<String>,
}

/// What the agent is writing in one conversation.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub buffer: Buffer,
    /// The next send is an internal note, not a reply.
    pub internal: bool,
    /// Uploaded files that go with the next message.
    pub attachments: Vec<Attachment>,
    /// Uploads still on their way (the message waits for them).
    pub uploading: usize,
}

/// A reply on its way: kept, with its `client_id`, until the relay's ack
/// says it is stored, so that it can be resent after a reconnect without
/// being stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub client_id: String,
    pub text: String,
    pub internal: bool,
    /// Sent as a link card (`/link URL LABEL`); `text` is its label.
    pub link: Option<LinkCard>,
    /// Files it carries (named by id in the `send`).
    pub attachments: Vec<Attachment>,
    pub state: SendState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendState {
    /// Sent (or waiting for a connection to be sent on); no ack yet.
    Pending,
    /// The relay refused it. `retry` says whether sending it again can
    /// succeed (a busy or failing relay), unlike a refusal that will stand
    /// (the chat is someone else's now); either way the agent can take the
    /// text back into compose or drop it.
    Failed { reason: String, retry: bool },
}

impl Conversation {
    pub fn new(summary: ConversationSummary) -> Conversation {
        Conversation {
            summary,
            messages: BTreeMap::new(),
            outgoing: Vec::new(),
            draft: Draft::default(),
            scroll: 0,
            new_below: 0,
            followed: false,
            loading_older: false,
            activity: false,
            visitor_typing: None,
            read_sent: 0,
            read_mark: None,
            hit: None,
        }
    }

    /// A stand-in until the summary arrives: the relay sends a new
    /// conversation's first message just before its summary (a reopened
    /// one's first is the reopen event, which names the visitor).
    pub fn from_first_message(message: &Message) -> Conversation {
        let visitor = message
            .event
            .as_deref()
            .map_or(&message.author, TimelineEvent::by);
        let summary = ConversationSummary {
            id: message.conversation_id.clone(),
            visitor: VisitorSummary {
                id: visitor.id.clone(),
                name: visitor.name.clone(),
                online: true,
                ..VisitorSummary::default()
            },
            status: ConversationStatus::Waiting,
            assignee: None,
            last_seq: message.seq,
            // Counted when the message is inserted.
            unread: 0,
            visitor_messages: 0,
            preview: if message.is_event() {
                String::new()
            } else {
                message.text.clone()
            },
            visitor_read_seq: 0,
            waiting_since: Some(message.at),
            updated_at: message.at,
        };
        Conversation::new(summary)
    }

    pub fn id(&self) -> &str {
        &self.summary.id
    }

    /// The visitor's messages this agent has not read (its own count, not
    /// the summary's, which is the answering agent's).
    pub fn unread(&self) -> u64 {
        self.summary.unread_for(self.read_mark.as_ref())
    }

    /// Takes a read position of this agent's; marks only move forward.
    pub fn read_up_to(&mut self, mark: AgentReadMark) {
        let newer = self
            .read_mark
            .as_ref()
            .is_none_or(|held| mark.up_to_seq > held.up_to_seq);
        if newer {
            self.read_mark = Some(mark);
        }
    }

    pub fn oldest_seq(&self) -> Option<Seq> {
        self.messages.keys().next().copied()
    }

    /// Every message down to `seq` 1 is held: there is nothing older to load.
    pub fn complete(&self) -> bool {
        self.summary.last_seq == 0 || self.oldest_seq() == Some(1)
    }

    /// Stores a message; a reply of ours that is still pending counts as
    /// acknowledged once the relay shows it stored. Returns whether the
    /// message was new.
    pub fn insert(&mut self, message: Message) -> bool {
        self.outgoing
            .retain(|out| out.client_id != message.client_id);
        if message.seq > self.summary.last_seq {
            self.summary.last_seq = message.seq;
        }
        let seq = message.seq;
        self.messages.insert(seq, message).is_none()
    }

    /// Whether messages are missing just below `seq` while older ones are
    /// held: a page that starts at `seq` did not reach back to what was held
    /// before a reconnect.
    pub fn gap_below(&self, seq: Seq) -> bool {
        match self.messages.range(..seq).next_back() {
            Some((&below, _)) => below + 1 < seq,
            None => false,
        }
    }

    pub fn visitor_is_typing(&self, now: OffsetDateTime) -> bool {
        self.visitor_typing
            .is_some_and(|at| now - at < TYPING_STALE)
    }

    pub fn pending(&self) -> impl Iterator<Item = &Outgoing> {
        self.outgoing
            .iter()
            .filter(|out| out.state == SendState::Pending)
    }

    /// Unsent text would be lost if the program ended now.
    pub fn has_unsent(&self) -> bool {
        !self.draft.buffer.is_blank()
            || !self.draft.attachments.is_empty()
            || !self.outgoing.is_empty()
    }
}
