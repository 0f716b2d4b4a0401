//! Deleting resolved conversations (see `store::deletion`). The search
//! rows come found: FTS5 finds a conversation's rows only by scanning the
//! whole index, which a reader does instead of the writer (see
//! `SqliteStore::delete_conversations`).

use rusqlite::Connection;

use super::super::super::StoreError;
use super::super::super::deletion::{Deleted, FILES, ROWS, bound};
use super::super::statements::{execute, query_optional};
use super::op::{Applied, Doomed, Written};

pub(super) fn delete_conversations(
    conn: &Connection,
    doomed: &[Doomed],
) -> Result<Applied, StoreError> {
    let mut deleted = Deleted::default();
    for conversation in doomed {
        // Unchanged since the search rows were found (every message moves
        // `last_seq`), so they are all of its rows.
        let Some(visitor_id) = query_optional(
            conn,
            "SELECT visitor_id FROM conversations
             WHERE id = ? AND status = 'resolved' AND last_seq = ?",
            (&conversation.id, conversation.last_seq),
            |row| row.get::<_, String>(0),
        )?
        else {
            continue;
        };
        for (key, sql) in FILES {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query([bound(key, &conversation.id, &visitor_id)])?;
            while let Some(row) = rows.next()? {
                deleted.named(row.get(0)?, row.get(1)?);
            }
        }
        for rowid in &conversation.search_rows {
            execute(conn, "DELETE FROM message_search WHERE rowid = ?", [rowid])?;
        }
        for (key, sql) in ROWS {
            execute(conn, sql, [bound(key, &conversation.id, &visitor_id)])?;
        }
        deleted.conversations.push(conversation.id.clone());
    }
    Ok((Written::Deleted(deleted), Vec::new()))
}
