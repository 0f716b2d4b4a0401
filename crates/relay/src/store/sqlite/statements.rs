//! Statements on the writer's connection, run from its cache of prepared
//! statements: shared by the writer's operations and its memory of client
//! ids, below both.

use kefu_protocol::Message;
use rusqlite::{Connection, OptionalExtension, Params, Row};

use super::super::rows::{attachments_to_sql, event_to_sql, link_to_sql, seq_to_sql};
use super::super::to_millis;

pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub(super) fn query_optional<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(sql)?.query_row(params, read).optional()
}

/// The id the query selects, if a row matches.
pub(super) fn query_id(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> rusqlite::Result<Option<String>> {
    query_optional(conn, sql, params, |row| row.get(0))
}

/// Stores `message`, and queues it for search unless it is a timeline
/// event (whose text is a rendering, not something said). Two plain
/// statements rather than a trigger: a trigger would make SQLite keep a
/// statement journal for every insert (migration 0017).
pub(super) fn insert_row(conn: &Connection, message: &Message) -> rusqlite::Result<()> {
    execute(
        conn,
        "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                               author_name, text, internal, at, event, link, attachments)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            &message.conversation_id,
            seq_to_sql(message.seq),
            &message.id,
            &message.client_id,
            message.author.kind.as_str(),
            &message.author.id,
            &message.author.name,
            &message.text,
            message.internal,
            to_millis(message.at),
            event_to_sql(message.event.as_deref()),
            link_to_sql(message.link.as_deref()),
            attachments_to_sql(&message.attachments),
        ),
    )?;
    if message.event.is_none() {
        execute(
            conn,
            "INSERT INTO message_search_backlog (conversation_id, seq) VALUES (?, ?)",
            (&message.conversation_id, seq_to_sql(message.seq)),
        )?;
    }
    Ok(())
}
