//! The writes that change a conversation's state without a message
//! (claim, transfer, resolve, each with its timeline event; read marks, the
//! visitor's details), and the reads of its summary that every write starts
//! from.

use kefu_protocol::agent::{AgentInfo, AgentReadMark, ConversationSummary};
use kefu_protocol::{AuthorKind, ReadReceipt, Seq, TimelineEvent};
use rusqlite::Connection;
use time::OffsetDateTime;

use super::super::super::events::{self, agent_author};
use super::super::super::rows::{
    SUMMARY_SELECT, SummaryRow, count_from_sql, count_to_sql, seq_to_sql,
};
use super::super::super::rules::{self, ConversationState, Decision, ReadsForVisitor};
use super::super::super::{
    AgentMark, Change, ResolveScope, StoreError, VisitorDetails, now_millis, to_millis,
};
use super::super::statements::{execute, query_id, query_optional};
use super::super::summaries::Summaries;
use super::event;
use super::op::{Applied, ReadBy, Written};
use crate::ids::ConnId;

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
    let event = events::transferred(by, to_agent, to_name);
    event_change(conn, conversation_id, event, now)
}

pub(super) fn resolve(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    by: &AgentInfo,
    scope: ResolveScope,
) -> Result<Applied, StoreError> {
    let summary = current_summary(conn, summaries, conversation_id)?;
    if rules::resolve(&state_of(&summary), by, scope)? == Decision::Unchanged {
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
    reader: &ReadBy,
    up_to_seq: Seq,
) -> Result<Applied, StoreError> {
    let summary = current_summary(conn, summaries, conversation_id)?;
    let up_to = up_to_seq.min(summary.last_seq);
    let agent = match reader {
        ReadBy::Visitor => {
            let moved = execute(
                conn,
                "UPDATE conversations SET visitor_read_seq = ?1
                 WHERE id = ?2 AND visitor_read_seq < ?1",
                (seq_to_sql(up_to), conversation_id),
            )?;
            if moved == 0 {
                return Ok((Written::Done, Vec::new()));
            }
            let receipt = receipt(conversation_id, AuthorKind::Visitor, up_to);
            let summary = require_summary(conn, conversation_id)?;
            let change = Change::Read {
                receipt: Some(receipt),
                mark: None,
                summary,
            };
            return Ok((Written::Done, vec![change]));
        }
        ReadBy::Agent(agent) => agent,
    };
    let visitor_messages = if up_to == summary.last_seq {
        summary.visitor_messages
    } else {
        visitor_messages_up_to(conn, conversation_id, up_to)?
    };
    let own = move_agent_mark(conn, &agent.id, conversation_id, up_to, visitor_messages)?;
    let answers = match rules::reads_for_visitor(&state_of(&summary), agent) {
        ReadsForVisitor::Yes => true,
        ReadsForVisitor::No => false,
        ReadsForVisitor::IfReplied => has_replied(conn, conversation_id, &agent.id)?,
    };
    let seen = answers
        && execute(
            conn,
            "UPDATE conversations SET agent_read_seq = ?1, unread = (
                 SELECT count(*) FROM messages
                 WHERE conversation_id = ?2 AND author_kind = 'visitor' AND seq > ?1)
             WHERE id = ?2 AND agent_read_seq < ?1",
            (seq_to_sql(up_to), conversation_id),
        )? > 0;
    if !own && !seen {
        return Ok((Written::Done, Vec::new()));
    }
    let summary = if seen {
        require_summary(conn, conversation_id)?
    } else {
        summary
    };
    let change = Change::Read {
        receipt: seen.then(|| receipt(conversation_id, AuthorKind::Agent, up_to)),
        mark: own.then(|| AgentMark {
            agent_id: agent.id.clone(),
            mark: AgentReadMark {
                conversation_id: conversation_id.to_owned(),
                up_to_seq: up_to,
                visitor_messages,
            },
        }),
        summary,
    };
    Ok((Written::Done, vec![change]))
}

fn receipt(conversation_id: &str, reader: AuthorKind, up_to_seq: Seq) -> ReadReceipt {
    ReadReceipt {
        conversation_id: conversation_id.to_owned(),
        reader,
        up_to_seq,
    }
}

/// Moves an agent's own read mark forward to `seq`, which covers
/// `visitor_messages` of the visitor's messages; whether it moved.
pub(super) fn move_agent_mark(
    conn: &Connection,
    agent_id: &str,
    conversation_id: &str,
    seq: Seq,
    visitor_messages: u64,
) -> Result<bool, StoreError> {
    let moved = execute(
        conn,
        "INSERT INTO agent_reads (agent_id, conversation_id, read_seq, visitor_messages)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (agent_id, conversation_id) DO UPDATE
         SET read_seq = excluded.read_seq, visitor_messages = excluded.visitor_messages
         WHERE agent_reads.read_seq < excluded.read_seq",
        (
            agent_id,
            conversation_id,
            seq_to_sql(seq),
            count_to_sql(visitor_messages),
        ),
    )?;
    Ok(moved > 0)
}

fn visitor_messages_up_to(
    conn: &Connection,
    conversation_id: &str,
    seq: Seq,
) -> Result<u64, StoreError> {
    let count = query_optional(
        conn,
        "SELECT count(*) FROM messages
         WHERE conversation_id = ? AND author_kind = 'visitor' AND seq <= ?",
        (conversation_id, seq_to_sql(seq)),
        |row| row.get::<_, i64>(0),
    )?;
    Ok(count_from_sql(count.unwrap_or(0)))
}

fn has_replied(
    conn: &Connection,
    conversation_id: &str,
    agent_id: &str,
) -> Result<bool, StoreError> {
    let found = query_optional(
        conn,
        "SELECT 1 FROM messages WHERE conversation_id = ? AND author_kind = 'agent'
         AND author_id = ? AND NOT internal LIMIT 1",
        (conversation_id, agent_id),
        |row| row.get::<_, i64>(0),
    )?;
    Ok(found.is_some())
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
                               created_at, updated_at, address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, name),
             email = coalesce(excluded.email, email),
             page_url = coalesce(excluded.page_url, page_url),
             page_title = coalesce(excluded.page_title, page_title),
             referrer = coalesce(excluded.referrer, referrer),
             lang = coalesce(excluded.lang, lang),
             user_agent = coalesce(excluded.user_agent, user_agent),
             address = coalesce(excluded.address, address),
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
            &details.address,
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

/// Stores `event`, which changes nothing else about the conversation (a
/// call's steps), as its next message, published with `origin`.
pub(super) fn record_alone(
    conn: &Connection,
    summaries: &Summaries,
    conversation_id: &str,
    event: &TimelineEvent,
    origin: Option<ConnId>,
) -> Result<Applied, StoreError> {
    let mut summary = current_summary(conn, summaries, conversation_id)?;
    let message = event::record(conn, &mut summary, event.clone(), now_millis())?;
    Ok((Written::Done, vec![event::change(message, summary, origin)]))
}
