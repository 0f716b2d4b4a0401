//! The writer's memory of conversation summaries.
//!
//! Every chat message changes its conversation's summary, which the hub
//! needs with the message. Reading it back with a join, and reading the
//! conversation's state before writing, cost more than the insert itself;
//! since the writer is the only connection that changes conversations, it
//! can instead keep each summary as it committed it and apply a message to
//! it in memory. Other writes (claim, read marks…) still read their summary
//! back from the database, and the result is remembered here.

use std::collections::HashMap;

use kefu_protocol::agent::{ConversationSummary, VisitorSummary};

use super::super::{VisitorDetails, default_visitor_name};

/// More conversations than this and the memory starts over: a relay with
/// that many conversations moving at once reads a few summaries back.
const MOST_REMEMBERED: usize = 50_000;

#[derive(Default)]
pub(super) struct Summaries {
    by_id: HashMap<String, ConversationSummary>,
    /// Conversation id of each remembered visitor.
    of_visitor: HashMap<String, String>,
}

impl Summaries {
    pub fn get(&self, conversation_id: &str) -> Option<&ConversationSummary> {
        self.by_id.get(conversation_id)
    }

    pub fn of_visitor(&self, visitor_id: &str) -> Option<&ConversationSummary> {
        self.of_visitor
            .get(visitor_id)
            .and_then(|id| self.by_id.get(id))
    }

    /// Takes a summary as now committed (or about to be, in this batch).
    pub fn remember(&mut self, summary: &ConversationSummary) {
        if self.by_id.len() >= MOST_REMEMBERED && !self.by_id.contains_key(&summary.id) {
            self.forget_all();
        }
        self.of_visitor
            .insert(summary.visitor.id.clone(), summary.id.clone());
        self.by_id.insert(summary.id.clone(), summary.clone());
    }

    /// After a rollback: this conversation's memory may be ahead of the
    /// database. (Its visitor's entry finds nothing and is read again.)
    pub fn forget(&mut self, conversation_id: &str) {
        self.by_id.remove(conversation_id);
    }

    /// After a failed commit, memory may be ahead of the database.
    pub fn forget_all(&mut self) {
        self.by_id.clear();
        self.of_visitor.clear();
    }
}

/// What the visitor's row reads after storing `details` (a field the page
/// did not send keeps its value), as agents see it.
pub(super) fn with_details(visitor: &VisitorSummary, details: &VisitorDetails) -> VisitorSummary {
    fn keep_or(old: &Option<String>, new: &Option<String>) -> Option<String> {
        new.clone().or_else(|| old.clone())
    }
    let profile = &details.profile;
    VisitorSummary {
        id: visitor.id.clone(),
        name: match &profile.name {
            Some(name) if !name.trim().is_empty() => name.clone(),
            Some(_) => default_visitor_name(&visitor.id),
            None => visitor.name.clone(),
        },
        online: visitor.online,
        page_url: keep_or(&visitor.page_url, &profile.page_url),
        page_title: keep_or(&visitor.page_title, &profile.page_title),
        email: keep_or(&visitor.email, &profile.email),
        lang: keep_or(&visitor.lang, &profile.lang),
        referrer: keep_or(&visitor.referrer, &profile.referrer),
        user_agent: keep_or(&visitor.user_agent, &details.user_agent),
        address: keep_or(&visitor.address, &details.address),
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::visitor::VisitorProfile;

    use super::*;

    fn visitor() -> VisitorSummary {
        VisitorSummary {
            id: "v-1234".into(),
            name: "Ann".into(),
            email: Some("ann@example.com".into()),
            page_url: Some("https://shop.example/a".into()),
            ..VisitorSummary::default()
        }
    }

    #[test]
    fn fields_not_sent_keep_their_value() {
        let details = VisitorDetails {
            profile: VisitorProfile {
                page_url: Some("https://shop.example/b".into()),
                ..VisitorProfile::default()
            },
            user_agent: Some("Firefox".into()),
            address: None,
        };
        let after = with_details(&visitor(), &details);
        assert_eq!(after.name, "Ann");
        assert_eq!(after.email.as_deref(), Some("ann@example.com"));
        assert_eq!(after.page_url.as_deref(), Some("https://shop.example/b"));
        assert_eq!(after.user_agent.as_deref(), Some("Firefox"));
    }

    #[test]
    fn a_blank_name_shows_the_default_one() {
        let details = VisitorDetails {
            profile: VisitorProfile {
                name: Some("  ".into()),
                ..VisitorProfile::default()
            },
            user_agent: None,
            address: None,
        };
        assert_eq!(with_details(&visitor(), &details).name, "Visitor #1234");
    }

    #[test]
    fn nothing_sent_changes_nothing() {
        assert_eq!(
            with_details(&visitor(), &VisitorDetails::default()),
            visitor()
        );
    }
}
