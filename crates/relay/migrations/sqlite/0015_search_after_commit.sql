-- Search indexing after the commit instead of inside it (issue 15).
--
-- Writing the trigram index in the message's own transaction was the
-- largest single cost of a message on SQLite: it doubled the ack's p50 and
-- tripled its p99 at 5,000 symmetric msg/s (docs/benchmarks.md). Now the
-- message's transaction only appends its key to `message_search_backlog`
-- (one small row at the end of a tiny table), and the writer thread moves
-- the backlog into `message_search` later, many rows per transaction,
-- between message batches (store/sqlite/writer/index.rs).
--
-- The backlog is committed with the message, so a crash loses nothing to
-- index: `search_indexed_upto` (in `settings`) is the last backlog id whose
-- message is in `message_search`; every row past it is still to index, and
-- a relay that starts with such rows indexes them before any search is
-- answered. The row at the mark itself is kept: rowids then keep growing
-- (SQLite gives max(rowid) + 1, and an empty table would start again at 1),
-- so backlog ids order every message ever indexed, the mark included.
--
-- The table's name starts with `message_search`, like the index's own
-- tables: it is SQLite's way of keeping the index, which PostgreSQL does
-- not need (its trigger stays), and the schema comparison leaves it out.
DROP TRIGGER message_search_insert;

CREATE TABLE message_search_backlog (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL
);

CREATE TRIGGER message_search_backlog_insert AFTER INSERT ON messages
WHEN NEW.event IS NULL
BEGIN
    INSERT INTO message_search_backlog (conversation_id, seq)
    VALUES (NEW.conversation_id, NEW.seq);
END;
