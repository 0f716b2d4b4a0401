//! What an agent's `welcome` holds of the open conversations: the most
//! urgent, at most `WELCOME_MAX_CONVERSATIONS` and
//! `WELCOME_MAX_CONVERSATION_BYTES` of JSON, with the totals when some are
//! left out. A flood of 20,000 waiting conversations once made a 61.6 MB
//! `welcome`, more than kefu-tui reads in one frame.

use std::cmp::Reverse;

use kefu_protocol::agent::{
    AgentReadMark, ConversationStatus, ConversationSummary, ConversationTotals,
    WELCOME_MAX_CONVERSATION_BYTES, WELCOME_MAX_CONVERSATIONS,
};

/// Picks the conversations of `agent_id`'s `welcome` from every open one,
/// most urgent first: its own, then the waiting oldest first (they have
/// waited longest), then the others' newest first. `read_marks` keeps the
/// marks of those picked. The totals come back when some were left out.
pub fn bounded(
    mut open: Vec<ConversationSummary>,
    read_marks: &mut Vec<AgentReadMark>,
    agent_id: &str,
) -> (Vec<ConversationSummary>, Option<ConversationTotals>) {
    let mut totals = ConversationTotals::default();
    for summary in &open {
        match summary.status {
            ConversationStatus::Waiting => totals.waiting += 1,
            _ => totals.active += 1,
        }
    }
    open.sort_by_key(|summary| {
        let own = summary.assignee.as_deref() == Some(agent_id);
        let waiting = summary.status == ConversationStatus::Waiting;
        let rank = if own {
            0
        } else if waiting {
            1
        } else {
            2
        };
        let oldest_first = if waiting {
            summary.waiting_since.unwrap_or(summary.updated_at)
        } else {
            time::OffsetDateTime::UNIX_EPOCH
        };
        (rank, oldest_first, Reverse(summary.updated_at))
    });
    let all = open.len();
    let mut bytes = 0;
    let mut kept = 0;
    for summary in open.iter().take(WELCOME_MAX_CONVERSATIONS) {
        // A summary always serializes; a failure would only count it as empty.
        bytes += serde_json::to_vec(summary).map_or(0, |json| json.len() + 1);
        if bytes > WELCOME_MAX_CONVERSATION_BYTES {
            break;
        }
        kept += 1;
    }
    if kept == all {
        return (open, None);
    }
    open.truncate(kept);
    read_marks.retain(|mark| {
        open.iter()
            .any(|summary| summary.id == mark.conversation_id)
    });
    (open, Some(totals))
}

#[cfg(test)]
mod tests {
    use kefu_protocol::agent::VisitorSummary;
    use time::OffsetDateTime;

    use super::*;

    fn summary(
        id: usize,
        status: ConversationStatus,
        assignee: Option<&str>,
    ) -> ConversationSummary {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(id as i64);
        ConversationSummary {
            id: format!("c{id}"),
            visitor: VisitorSummary {
                id: format!("v{id}"),
                ..VisitorSummary::default()
            },
            status,
            assignee: assignee.map(str::to_owned),
            last_seq: 1,
            unread: 0,
            visitor_messages: 1,
            preview: "hi".into(),
            visitor_read_seq: 0,
            waiting_since: (status == ConversationStatus::Waiting).then_some(at),
            updated_at: at,
        }
    }

    #[test]
    fn a_few_are_all_kept_in_urgency_order_without_totals() {
        let open = vec![
            summary(1, ConversationStatus::Active, Some("bob")),
            summary(2, ConversationStatus::Active, Some("bob")),
            summary(3, ConversationStatus::Waiting, None),
            summary(4, ConversationStatus::Active, Some("me")),
            summary(5, ConversationStatus::Waiting, None),
        ];
        let (kept, totals) = bounded(open, &mut Vec::new(), "me");
        let ids: Vec<&str> = kept.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["c4", "c3", "c5", "c2", "c1"]);
        assert_eq!(totals, None);
    }

    #[test]
    fn a_flood_keeps_the_own_and_oldest_waiting_and_says_how_many() {
        let mut open: Vec<_> = (0..20_000)
            .rev()
            .map(|id| summary(id + 10, ConversationStatus::Waiting, None))
            .collect();
        open.push(summary(5, ConversationStatus::Active, Some("me")));
        let mut marks = vec![
            AgentReadMark {
                conversation_id: "c5".into(),
                up_to_seq: 1,
                visitor_messages: 1,
            },
            AgentReadMark {
                conversation_id: "c19000".into(),
                up_to_seq: 1,
                visitor_messages: 1,
            },
        ];
        let (kept, totals) = bounded(open, &mut marks, "me");
        assert_eq!(kept.len(), WELCOME_MAX_CONVERSATIONS);
        assert_eq!(kept[0].id, "c5", "the agent's own chat first");
        assert_eq!(kept[1].id, "c10", "then the one waiting longest");
        assert_eq!(
            totals,
            Some(ConversationTotals {
                waiting: 20_000,
                active: 1
            })
        );
        assert_eq!(marks.len(), 1, "only the marks of conversations kept");
    }

    #[test]
    fn large_summaries_are_bounded_by_bytes() {
        let big = "\u{1}".repeat(2048);
        let open: Vec<_> = (0..WELCOME_MAX_CONVERSATIONS)
            .map(|id| {
                let mut summary = summary(id, ConversationStatus::Waiting, None);
                summary.visitor.name = big.clone();
                summary.visitor.page_title = Some(big.clone());
                summary.visitor.user_agent = Some(big.clone());
                summary
            })
            .collect();
        let (kept, totals) = bounded(open, &mut Vec::new(), "me");
        let bytes: usize = kept
            .iter()
            .map(|s| serde_json::to_vec(s).expect("json").len())
            .sum();
        assert!(bytes <= WELCOME_MAX_CONVERSATION_BYTES);
        assert!(kept.len() < WELCOME_MAX_CONVERSATIONS);
        assert!(totals.is_some());
    }
}
