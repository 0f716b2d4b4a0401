//! Which conversations the queue shows, and in what order.

use std::cmp::Ordering;
use std::collections::HashMap;

use kefu_protocol::agent::ConversationStatus;

use super::conversation::Conversation;

/// The queue's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Waiting,
    Mine,
    All,
}

impl Filter {
    pub const ALL: [Filter; 3] = [Filter::Waiting, Filter::Mine, Filter::All];

    pub fn label(self) -> &'static str {
        match self {
            Filter::Waiting => "Waiting",
            Filter::Mine => "Mine",
            Filter::All => "All",
        }
    }

    /// The next tab to the right (`step` 1) or left (`step` -1), wrapping.
    pub fn cycle(self, step: isize) -> Filter {
        let at = Filter::ALL.iter().position(|f| *f == self).unwrap_or(0);
        let len = Filter::ALL.len() as isize;
        Filter::ALL[(at as isize + step).rem_euclid(len) as usize]
    }

    pub fn admits(self, conversation: &Conversation, me: Option<&str>) -> bool {
        let summary = &conversation.summary;
        match self {
            Filter::Waiting => summary.status == ConversationStatus::Waiting,
            Filter::Mine => {
                summary.status == ConversationStatus::Active
                    && me.is_some()
                    && summary.assignee.as_deref() == me
            }
            Filter::All => true,
        }
    }
}

/// How much a conversation needs this agent, most first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// The agent's own chat with visitor messages not yet looked at: the
    /// customer is already theirs and is waiting on them.
    OwnNews,
    /// A visitor nobody has taken yet.
    Waiting,
    /// Everything else that is open: the agent's quiet chats, colleagues'.
    Open,
    Resolved,
}

fn need(c: &Conversation, me: Option<&str>) -> Need {
    match c.summary.status {
        ConversationStatus::Waiting => Need::Waiting,
        ConversationStatus::Resolved => Need::Resolved,
        ConversationStatus::Active if has_own_news(c, me) => Need::OwnNews,
        ConversationStatus::Active => Need::Open,
    }
}

/// Something new from the visitor (or a colleague's note) in one of the
/// agent's own chats.
pub fn has_own_news(c: &Conversation, me: Option<&str>) -> bool {
    Filter::Mine.admits(c, me) && (c.unread() > 0 || c.activity)
}

/// The agent's own chats with news first, the one whose visitor has waited
/// longest for an answer on top; then waiting visitors, longest-waiting on
/// top; then the other open chats, most recently active on top; resolved
/// ones last.
pub fn urgency(a: &Conversation, b: &Conversation, me: Option<&str>) -> Ordering {
    let rank = need(a, me);
    rank.cmp(&need(b, me))
        .then_with(|| match rank {
            Need::OwnNews => a.summary.updated_at.cmp(&b.summary.updated_at),
            Need::Waiting => {
                let since =
                    |c: &Conversation| c.summary.waiting_since.unwrap_or(c.summary.updated_at);
                since(a).cmp(&since(b))
            }
            Need::Open | Need::Resolved => b.summary.updated_at.cmp(&a.summary.updated_at),
        })
        .then_with(|| a.summary.id.cmp(&b.summary.id))
}

/// The ids of the conversations under `filter`, in queue order.
pub fn rows(
    conversations: &HashMap<String, Conversation>,
    filter: Filter,
    me: Option<&str>,
) -> Vec<String> {
    let mut shown: Vec<&Conversation> = conversations
        .values()
        .filter(|c| filter.admits(c, me))
        .collect();
    shown.sort_by(|a, b| urgency(a, b, me));
    shown.into_iter().map(|c| c.summary.id.clone()).collect()
}

/// Conversations with something new for this agent (a visitor waiting, a
/// message not looked at, unread messages in their own conversations), most
/// urgent first, leaving out `except`.
pub fn with_activity(
    conversations: &HashMap<String, Conversation>,
    me: Option<&str>,
    except: Option<&str>,
) -> Vec<String> {
    let mut busy: Vec<&Conversation> = conversations
        .values()
        .filter(|c| Some(c.id()) != except)
        .filter(|c| {
            c.activity || c.summary.status == ConversationStatus::Waiting || has_own_news(c, me)
        })
        .collect();
    busy.sort_by(|a, b| urgency(a, b, me));
    busy.into_iter().map(|c| c.summary.id.clone()).collect()
}
