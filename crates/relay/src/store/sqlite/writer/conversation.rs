//! The writes that change a conversation's state without a message
//! (claim, transfer, resolve, each with its timeline event; read marks, the
//! visitor's details), and the reads of its summary that every write starts
//! from.

use kefu_protocol::agent::{AgentInfo, ConversationSummary};
use kefu_protocol::{Author, AuthorKind, ReadReceipt, Seq, TimelineEvent};
use rusqlite::Connection;
use time::OffsetDateTime;

use super::super::super::events::agent_author;
use super::super::super::rows::{SUMMARY_SELECT, SummaryRow, seq_from_sql, seq_to_sql};
use super::super::super::rules::{self, ConversationState, Decision};
use super::super::super::{Change, StoreError, VisitorDetails, now_millis, to_millis};
use super::super::statements::{execute, query_id, query_optional};
use super::super::summaries::Summaries;
use super::event;
use super::op::{Applied, Written};

/// The conversation's summary as committed so far, from memory if there.
pub(super) fn current_summary(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    match summaries.get(conversation_id) {
        Some(summary) => Ok(summary.clone()),
        None => require_summary(conn, conversation_id),
    }
}

pub(super) fn state_of(summary: &ConversationSummary) -> ConversationState {
    ConversationState {
        status: summary.status,
        assignee: summary.assignee.clone(),
        last_seq: summary.last_seq,
    }
}

fn conversation_state(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
) -> Result<ConversationState, StoreError> {
    match summaries.get(conversation_id) {
        Some(summary) => Ok(state_of(summary)),
        None => require_summary(conn, conversation_id).map(|summary| state_of(&summary)),
    }
}

pub(super) fn require_summary(
    conn: &Connection,
    conversation_id: &str,
) -> Result<ConversationSummary, StoreError> {
    query_optional(
        conn,
        &format!("{SUMMARY_SELECT} WHERE c.id = ?"),
        [conversation_id],
        SummaryRow::from_rusqlite,
    )?
    .map(ConversationSummary::try_from)
    .transpose()?
    .ok_or(StoreError::NotFound("conversation"))
}

/// Records `event`, which the write so far made happen, and publishes it
/// with the summary it leaves.
fn event_change(
    conn: &Connection,
    conversation_id: &str,
    event: TimelineEvent,
    at: OffsetDateTime,
) -> Result<Applied, StoreError> {
    let mut summary = require_summary(conn, conversation_id)?;
    let message = event::record(conn, &mut summary, event, at)?;
    Ok((
        Written::Summary(summary.clone()),
        vec![event::change(message, summary, None)],
    ))
}

pub(super) fn assign(
    conn: &Connection,
    conversation_id: &str,
    agent_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    execute(
        conn,
        "UPDATE conversations SET status = 'active', assignee = ?, waiting_since = NULL,
         updated_at = ? WHERE id = ?",
        (agent_id, now_ms, conversation_id),
    )?;
    Ok(())
}

pub(super) fn claim(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    agent: &AgentInfo,
) -> Result<Applied, StoreError> {
    let summary = current_summary(conn, summaries, conversation_id)?;
    if rules::claim(&state_of(&summary), agent)? == Decision::Unchanged {
        return Ok((Written::Summary(summary), Vec::new()));
    }
    let now = now_millis();
    assign(conn, conversation_id, &agent.id, to_millis(now))?;
    let by = agent_author(agent);
    event_change(conn, conversation_id, TimelineEvent::Claimed { by }, now)
}

pub(super) fn transfer(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    by: &AgentInfo,
    to_agent: &str,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, summaries, conversation_id)?;
    rules::transfer(&state, by)?;
    let Some(to_name) = query_optional(
        conn,
        "SELECT name FROM agents WHERE id = ? AND disabled = 0",
        [to_agent],
        |row| row.get::<_, String>(0),
    )?
    else {
        return Err(StoreError::NotFound("agent"));
    };
    let now = now_millis();
    assign(conn, conversation_id, to_agent, to_millis(now))?;
    let event = TimelineEvent::Transferred {
        by: agent_author(by),
        to: Author {
            kind: AuthorKind::Agent,
            id: to_agent.to_owned(),
            name: to_name,
        },
    };
    event_change(conn, conversation_id, event, now)
}

pub(super) fn resolve(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    by: &AgentInfo,
) -> Result<Applied, StoreError> {
    let summary = current_summary(conn, summaries, conversation_id)?;
    if rules::resolve(&state_of(&summary), by)? == Decision::Unchanged {
        return Ok((Written::Summary(summary), Vec::new()));
    }
    let now = now_millis();
    execute(
        conn,
        "UPDATE conversations SET status = 'resolved', waiting_since = NULL, updated_at = ?
         WHERE id = ?",
        (to_millis(now), conversation_id),
    )?;
    let by = agent_author(by);
    event_change(conn, conversation_id, TimelineEvent::Resolved { by }, now)
}

pub(super) fn mark_read(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    reader: AuthorKind,
    up_to_seq: Seq,
) -> Result<Applied, StoreError> {
    let state = conversation_state(conn, summaries, conversation_id)?;
    let up_to = seq_to_sql(up_to_seq.min(state.last_seq));
    let moved = match reader {
        AuthorKind::Visitor => execute(
            conn,
            "UPDATE conversations SET visitor_read_seq = ?1 WHERE id = ?2 AND visitor_read_seq < ?1",
            (up_to, conversation_id),
        )?,
        AuthorKind::Agent => execute(
            conn,
            "UPDATE conversations SET agent_read_seq = ?1, unread = (
                 SELECT count(*) FROM messages
                 WHERE conversation_id = ?2 AND author_kind = 'visitor' AND seq > ?1)
             WHERE id = ?2 AND agent_read_seq < ?1",
            (up_to, conversation_id),
        )?,
        AuthorKind::System => return Err(StoreError::Forbidden("the system reads nothing")),
    };
    if moved == 0 {
        return Ok((Written::Done, Vec::new()));
    }
    let summary = require_summary(conn, conversation_id)?;
    let receipt = ReadReceipt {
        conversation_id: conversation_id.to_owned(),
        reader,
        up_to_seq: seq_from_sql(up_to),
    };
    Ok((Written::Done, vec![Change::Read { receipt, summary }]))
}

pub(super) fn upsert_visitor(
    conn: &Connection,
    visitor_id: &str,
    details: &VisitorDetails,
    now_ms: i64,
) -> Result<(), StoreError> {
    let profile = &details.profile;
    // A field the page did not send keeps its old value.
    execute(
        conn,
        "INSERT INTO visitors (id, name, email, page_url, page_title, referrer, lang, user_agent,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, name),
             email = coalesce(excluded.email, email),
             page_url = coalesce(excluded.page_url, page_url),
             page_title = coalesce(excluded.page_title, page_title),
             referrer = coalesce(excluded.referrer, referrer),
             lang = coalesce(excluded.lang, lang),
             user_agent = coalesce(excluded.user_agent, user_agent),
             updated_at = excluded.updated_at",
        (
            visitor_id,
            &profile.name,
            &profile.email,
            &profile.page_url,
            &profile.page_title,
            &profile.referrer,
            &profile.lang,
            &details.user_agent,
            now_ms,
        ),
    )?;
    Ok(())
}

/// The visitor's conversation, if they ever wrote.
pub(super) fn visitor_conversation(
    conn: &Connection,
    visitor_id: &str,
) -> rusqlite::Result<Option<String>> {
    query_id(
        conn,
        "SELECT id FROM conversations WHERE visitor_id = ?",
        [visitor_id],
    )
}

pub(super) fn update_visitor(
    conn: &Connection,
    visitor_id: &str,
    details: &VisitorDetails,
) -> Result<Applied, StoreError> {
    let Some(conversation_id) = visitor_conversation(conn, visitor_id)? else {
        // Page views of visitors who never wrote are not recorded.
        return Ok((Written::Done, Vec::new()));
    };
    let before = require_summary(conn, &conversation_id)?;
    upsert_visitor(conn, visitor_id, details, to_millis(now_millis()))?;
    let after = require_summary(conn, &conversation_id)?;
    if before.visitor == after.visitor {
        return Ok((Written::Done, Vec::new()));
    }
    Ok((Written::Done, vec![Change::Summary { summary: after }]))
}
