//! Recording a timeline event in the write that makes it happen (see
//! `store::events`): the conversation's next message, and the change that
//! publishes it with the summary it left.

use kefu_protocol::agent::ConversationSummary;
use kefu_protocol::{Message, TimelineEvent};
use rusqlite::Connection;
use time::OffsetDateTime;

use super::super::super::events::event_message;
use super::super::super::rows::seq_to_sql;
use super::super::super::{Change, StoreError, to_millis};
use super::super::statements::{execute, insert_row};
use crate::ids::ConnId;

/// Stores `event` as the conversation's next message, at `at`, and moves
/// `summary` past it. Not remembered among the client ids: nobody resends
/// an event.
pub(super) fn record(
    conn: &Connection,
    summary: &mut ConversationSummary,
    event: TimelineEvent,
    at: OffsetDateTime,
) -> Result<Message, StoreError> {
    let message = event_message(&summary.id, summary.last_seq + 1, event, at);
    insert_row(conn, &message)?;
    execute(
        conn,
        "UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?",
        (seq_to_sql(message.seq), to_millis(at), &summary.id),
    )?;
    summary.last_seq = message.seq;
    summary.updated_at = at;
    Ok(message)
}

/// The change that publishes a recorded event with the summary it left.
/// `origin` is the connection whose request made it happen, when the hub
/// must know (a visitor's reopening send: see `hub`'s auto-assignment).
pub(super) fn change(
    message: Message,
    summary: ConversationSummary,
    origin: Option<ConnId>,
) -> Change {
    Change::Message {
        message,
        summary,
        origin,
    }
}
