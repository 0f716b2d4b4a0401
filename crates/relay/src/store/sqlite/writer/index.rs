//! The writer's half of search indexing (see `sqlite::indexing`): moves the
//! backlog of committed messages into the FTS5 index, [`INDEX_CHUNK`] rows
//! per transaction, between message batches.
//!
//! Message batches come first: the writer indexes only when no request is
//! waiting, or when a chunk's worth has piled up, and one chunk at a time,
//! so a message waits behind at most one chunk. An indexing transaction
//! does not sync the WAL (`synchronous = NORMAL`): losing it in a crash
//! loses no message, only work the next start does again, and the next
//! message commit syncs it anyway.

use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};

use super::super::indexing::{INDEX_DELAY, IndexProgress};
use super::super::statements::{execute, query_optional};

/// Most backlog rows indexed in one transaction: about a tenth of a second
/// of messages at 10,000 msg/s, which takes a few milliseconds to index
/// (docs/benchmarks.md), so that a message batch queued behind it waits
/// little.
const INDEX_CHUNK: i64 = 1024;

/// The last backlog id whose message is in the index; kept in `settings`.
const MARK_KEY: &str = "search_indexed_upto";

pub(in super::super) struct Indexer {
    progress: Arc<IndexProgress>,
    /// The last backlog id indexed (the mark).
    indexed: i64,
    /// The last backlog id committed.
    written: i64,
    /// A search or the tick asked for the backlog to be indexed.
    requested: bool,
    /// After a failed attempt, none before this.
    retry_at: Option<Instant>,
}

impl Indexer {
    /// Reads the mark and the backlog the last process left: a non-empty
    /// one is indexed first, before searches are answered.
    pub(in super::super) fn open(conn: &Connection) -> rusqlite::Result<Indexer> {
        let indexed = query_optional(
            conn,
            "SELECT value FROM settings WHERE key = ?",
            [MARK_KEY],
            |row| row.get::<_, i64>(0),
        )?
        .unwrap_or(0);
        let written = last_backlog_id(conn)?.max(indexed);
        Ok(Indexer {
            progress: IndexProgress::new(indexed, written),
            indexed,
            written,
            requested: written > indexed,
            retry_at: None,
        })
    }

    pub(in super::super) fn progress(&self) -> Arc<IndexProgress> {
        self.progress.clone()
    }

    /// Index what is waiting, as soon as message batches leave room.
    pub(super) fn request(&mut self) {
        self.requested = true;
    }

    /// Called after each commit of a message batch, before its replies.
    pub(super) fn committed(&mut self, conn: &Connection) {
        match last_backlog_id(conn) {
            Ok(written) => {
                self.written = written.max(self.written);
                self.progress.committed(self.written);
            }
            Err(error) => tracing::warn!(%error, "reading the search backlog"),
        }
    }

    /// Whether the writer should index a chunk now.
    pub(super) fn due(&self) -> bool {
        let waiting = self.written - self.indexed;
        waiting > 0
            && (self.requested || waiting >= INDEX_CHUNK)
            && self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Indexes the next chunk of the backlog; returns whether it committed.
    pub(super) fn index_chunk(&mut self, conn: &mut Connection) -> bool {
        match index_chunk(conn, self.indexed) {
            Ok(upto) => {
                self.retry_at = None;
                // `None`: nothing past the mark after all (only if the
                // backlog changed behind the writer's back); nothing is
                // left to index either way.
                self.indexed = upto.unwrap_or(self.written);
                if self.indexed >= self.written {
                    self.requested = false;
                }
                self.progress.indexed(self.indexed);
                upto.is_some()
            }
            Err(error) => {
                // Searches waiting for the index time out meanwhile; the
                // messages are safe in the backlog.
                tracing::warn!(%error, "indexing messages for search");
                self.retry_at = Some(Instant::now() + INDEX_DELAY);
                false
            }
        }
    }

    /// Indexes the whole backlog, before the writer closes.
    pub(super) fn drain(&mut self, conn: &mut Connection) {
        while self.written > self.indexed && self.retry_at.is_none() {
            self.index_chunk(conn);
        }
    }
}

fn last_backlog_id(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(query_optional(
        conn,
        "SELECT max(id) FROM message_search_backlog",
        [],
        |row| row.get::<_, Option<i64>>(0),
    )?
    .flatten()
    .unwrap_or(0))
}

/// Indexes up to [`INDEX_CHUNK`] backlog rows past `mark`, in backlog
/// order (so the index's rowids keep message order), and returns the new
/// mark; `None` when nothing was past it.
fn index_chunk(conn: &mut Connection, mark: i64) -> rusqlite::Result<Option<i64>> {
    conn.pragma_update(None, "synchronous", "normal")?;
    let indexed = index_chunk_unsynced(conn, mark);
    // Message commits must sync again whatever happened.
    conn.pragma_update(None, "synchronous", "full")?;
    indexed
}

fn index_chunk_unsynced(conn: &mut Connection, mark: i64) -> rusqlite::Result<Option<i64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The stored mark, read under the write lock, is the one that counts:
    // another process opening the database (an admin command) indexes the
    // backlog too, and rows indexed twice would be found twice.
    let stored = query_optional(
        &tx,
        "SELECT value FROM settings WHERE key = ?",
        [MARK_KEY],
        |row| row.get::<_, i64>(0),
    )?;
    let mark = stored.map_or(mark, |stored| stored.max(mark));
    let upto = query_optional(
        &tx,
        "SELECT max(id) FROM (SELECT id FROM message_search_backlog WHERE id > ?
            ORDER BY id LIMIT ?)",
        (mark, INDEX_CHUNK),
        |row| row.get::<_, Option<i64>>(0),
    )?
    .flatten();
    let Some(upto) = upto else {
        return Ok(None);
    };
    // A message deleted since it was queued is simply not found.
    execute(
        &tx,
        "INSERT INTO message_search (text, conversation_id, seq, internal, at)
         SELECT m.text || char(1), m.conversation_id, m.seq, m.internal, m.at
         FROM message_search_backlog b
         CROSS JOIN messages m ON m.conversation_id = b.conversation_id AND m.seq = b.seq
         WHERE b.id > ? AND b.id <= ?
         ORDER BY b.id",
        (mark, upto),
    )?;
    // The mark's own row stays, so that ids keep growing (migration 0015).
    execute(
        &tx,
        "DELETE FROM message_search_backlog WHERE id < ?",
        [upto],
    )?;
    execute(
        &tx,
        "INSERT INTO settings (key, value) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (MARK_KEY, upto),
    )?;
    tx.commit()?;
    Ok(Some(upto))
}
