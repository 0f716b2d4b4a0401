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

/// Waiting visitors first, longest-waiting on top; then the others, most
/// recently active on top; resolved ones last.
pub fn urgency(a: &Conversation, b: &Conversation) -> Ordering {
    let rank = |c: &Conversation| match c.summary.status {
        ConversationStatus::Waiting => 0,
        ConversationStatus::Active => 1,
        ConversationStatus::Resolved => 2,
    };
    rank(a)
        .cmp(&rank(b))
        .then_with(|| match a.summary.status {
            ConversationStatus::Waiting => {
                let since =
                    |c: &Conversation| c.summary.waiting_since.unwrap_or(c.summary.updated_at);
                since(a).cmp(&since(b))
            }
            _ => b.summary.updated_at.cmp(&a.summary.updated_at),
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
    shown.sort_by(|a, b| urgency(a, b));
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
            c.activity
                || c.summary.status == ConversationStatus::Waiting
                || (c.unread() > 0 && Filter::Mine.admits(c, me))
        })
        .collect();
    busy.sort_by(|a, b| urgency(a, b));
    busy.into_iter().map(|c| c.summary.id.clone()).collect()
}
