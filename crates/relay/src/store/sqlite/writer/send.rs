//! The two sends: a visitor's message and an agent's reply or note, the
//! visitor's with the timeline event it may cause (a reopen).

use kefu_protocol::agent::{ConversationStatus, ConversationSummary};
use kefu_protocol::trail::LinkCard;
use kefu_protocol::{Author, AuthorKind, Message, TimelineEvent};
use rusqlite::Connection;

use super::super::super::files::Sending;
use super::super::super::rows::seq_to_sql;
use super::super::super::rules::{self, Decision};
use super::super::super::{
    AgentSend, Change, StoreError, VisitorSend, now_millis, preview_of, to_millis,
};
use super::super::client_ids::ClientIds;
use super::super::statements::{execute, insert_row};
use super::super::summaries::{Summaries, with_details};
use super::conversation::{
    assign, current_summary, move_agent_mark, require_summary, state_of, upsert_visitor,
    visitor_conversation,
};
use super::event;
use super::files::attach_files;
use super::op::{Applied, Written};
use crate::ids::{self, ConnId};

/// A visitor writes to their one conversation, so a resend is looked for
/// there before anything changes.
pub(super) fn visitor_send(
    conn: &Connection,
    summaries: &Summaries,
    client_ids: &mut ClientIds,
    send: &VisitorSend,
) -> Result<Applied, StoreError> {
    let existing = match summaries.of_visitor(&send.visitor_id) {
        Some(summary) => Some(summary.clone()),
        None => visitor_conversation(conn, &send.visitor_id)?
            .map(|id| require_summary(conn, &id))
            .transpose()?,
    };
    let author = (AuthorKind::Visitor, send.visitor_id.as_str());
    if let Some(summary) = &existing
        && let Some(original) = client_ids.find(conn, &summary.id, author, &send.client_id)?
    {
        return Ok((Written::Message(original), Vec::new()));
    }
    let now = now_millis();
    let now_ms = to_millis(now);
    let mut summary = match existing {
        Some(summary) => summary,
        None => open_conversation(conn, send, now_ms)?,
    };
    let visitor = with_details(&summary.visitor, &send.details);
    if visitor != summary.visitor {
        upsert_visitor(conn, &send.visitor_id, &send.details, now_ms)?;
        summary.visitor = visitor;
    }
    let author = Author {
        kind: AuthorKind::Visitor,
        id: send.visitor_id.clone(),
        name: summary.visitor.name.clone(),
    };
    let mut changes = Vec::new();
    if summary.status == ConversationStatus::Resolved {
        execute(
            conn,
            "UPDATE conversations SET status = 'waiting', assignee = NULL,
             waiting_since = ? WHERE id = ?",
            (now_ms, &summary.id),
        )?;
        summary.status = ConversationStatus::Waiting;
        summary.assignee = None;
        summary.waiting_since = Some(now);
        let reopened = TimelineEvent::Reopened { by: author.clone() };
        let event = event::record(conn, &mut summary, reopened, now)?;
        // The change that reopens carries the visitor's connection: the hub
        // auto-assigns on it (only the relay the visitor wrote to does).
        changes.push(event::change(event, summary.clone(), send.origin));
    }

    let new = NewMessage {
        author,
        client_id: &send.client_id,
        text: &send.text,
        internal: false,
        link: None,
        attachments: &send.attachments,
    };
    let message = append_message(conn, client_ids, &mut summary, new, now)?;
    summary.unread = summary.unread.saturating_add(1);
    summary.visitor_messages += 1;
    summary.preview = preview_of(&send.text, send.attachments.len());
    execute(
        conn,
        "UPDATE conversations SET last_seq = ?, unread = unread + 1,
         visitor_messages = visitor_messages + 1, preview = ?, updated_at = ?
         WHERE id = ?",
        (
            seq_to_sql(summary.last_seq),
            &summary.preview,
            now_ms,
            &summary.id,
        ),
    )?;
    Ok(message_change(changes, message, summary, send.origin))
}

/// The visitor's first message: their row and their conversation.
fn open_conversation(
    conn: &Connection,
    send: &VisitorSend,
    now_ms: i64,
) -> Result<ConversationSummary, StoreError> {
    upsert_visitor(conn, &send.visitor_id, &send.details, now_ms)?;
    let id = ids::new_id();
    execute(
        conn,
        "INSERT INTO conversations (id, visitor_id, status, waiting_since, created_at, updated_at)
         VALUES (?1, ?2, 'waiting', ?3, ?3, ?3)",
        (&id, &send.visitor_id, now_ms),
    )?;
    require_summary(conn, &id)
}

pub(super) fn agent_send(
    conn: &Connection,
    summaries: &Summaries,
    client_ids: &mut ClientIds,
    send: &AgentSend,
) -> Result<Applied, StoreError> {
    // The conversation first: `find` remembers every conversation it is
    // asked about, and a made-up id must not take room there.
    let mut summary = current_summary(conn, summaries, &send.conversation_id)?;
    let author = (AuthorKind::Agent, send.agent.id.as_str());
    if let Some(original) = client_ids.find(conn, &send.conversation_id, author, &send.client_id)? {
        return Ok((Written::Message(original), Vec::new()));
    }
    let now = now_millis();
    let now_ms = to_millis(now);
    // A reply that takes the conversation records no `claimed` event: the
    // reply itself shows who took it.
    if rules::reply(&state_of(&summary), &send.agent, send.internal)? == Decision::Assign {
        assign(conn, &send.conversation_id, &send.agent.id, now_ms)?;
        summary.status = ConversationStatus::Active;
        summary.assignee = Some(send.agent.id.clone());
        summary.waiting_since = None;
    }
    let author = Author {
        kind: AuthorKind::Agent,
        id: send.agent.id.clone(),
        name: send.agent.name.clone(),
    };
    let new = NewMessage {
        author,
        client_id: &send.client_id,
        text: &send.text,
        internal: send.internal,
        attachments: &send.attachments,
        link: send.link.as_ref(),
    };
    let message = append_message(conn, client_ids, &mut summary, new, now)?;
    let seq = seq_to_sql(message.seq);
    if send.internal {
        execute(
            conn,
            "UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?",
            (seq, now_ms, &send.conversation_id),
        )?;
    } else {
        // A reply means the agent has read what came before it.
        summary.preview = preview_of(&send.text, send.attachments.len());
        summary.unread = 0;
        execute(
            conn,
            "UPDATE conversations SET last_seq = ?1, preview = ?2, updated_at = ?3,
             agent_read_seq = ?1, unread = 0 WHERE id = ?4",
            (seq, &summary.preview, now_ms, &send.conversation_id),
        )?;
    }
    // Whatever the agent writes, it has read what came before.
    move_agent_mark(
        conn,
        &send.agent.id,
        &send.conversation_id,
        message.seq,
        summary.visitor_messages,
    )?;
    Ok(message_change(Vec::new(), message, summary, send.origin))
}

/// Answers with `message` and publishes it after the `earlier` changes of
/// the same write (the timeline event it caused).
fn message_change(
    mut earlier: Vec<Change>,
    message: Message,
    summary: ConversationSummary,
    origin: Option<ConnId>,
) -> Applied {
    earlier.push(Change::Message {
        message: message.clone(),
        summary,
        origin,
    });
    (Written::Message(message), earlier)
}

/// What a send adds to its conversation; the conversation gives the rest.
struct NewMessage<'a> {
    author: Author,
    client_id: &'a str,
    text: &'a str,
    internal: bool,
    link: Option<&'a LinkCard>,
    /// Ids of the author's pending uploads.
    attachments: &'a [String],
}

/// Stores `new` as the conversation's next message, written `at`, and
/// moves `summary` past it.
fn append_message(
    conn: &Connection,
    client_ids: &mut ClientIds,
    summary: &mut ConversationSummary,
    new: NewMessage<'_>,
    at: time::OffsetDateTime,
) -> Result<Message, StoreError> {
    let id = ids::new_id();
    let sending = Sending {
        author: (new.author.kind, &new.author.id),
        conversation_id: &summary.id,
        message_id: &id,
        public: !new.internal,
    };
    let attachments = attach_files(conn, &sending, new.attachments)?;
    let message = Message {
        conversation_id: summary.id.clone(),
        seq: summary.last_seq + 1,
        id,
        client_id: new.client_id.to_owned(),
        author: new.author,
        text: new.text.to_owned(),
        at,
        internal: new.internal,
        event: None,
        link: new.link.cloned().map(Box::new),
        attachments,
    };
    insert_row(conn, &message)?;
    client_ids.stored(&message);
    summary.last_seq = message.seq;
    summary.updated_at = at;
    Ok(message)
}
