-- Full-text search over message text (issue 17).
--
-- FTS5 with the trigram tokenizer: it indexes every three-character run,
-- so a query matches inside words and in scripts written without spaces
-- (Chinese, Japanese, Thai), where a word tokenizer finds nothing. It
-- cannot look up a term shorter than three characters (`蓝色`); those are
-- matched with LIKE over this table's own copy of the text instead, newest
-- first, within the query's time budget (store/search.rs).
--
-- The table keeps its own copy of the text rather than pointing into
-- `messages` (external content needs an integer rowid, and `messages` is
-- WITHOUT ROWID). Its rowid grows with every message, so "newest first"
-- is rowid order and a page's cursor is a rowid.
--
-- The trigger writes the index in the same transaction as the message:
-- a message acknowledged (committed) is searchable, crash or not. Timeline
-- events are not indexed: their text is a rendering, not something said.
CREATE VIRTUAL TABLE message_search USING fts5(
    text,
    conversation_id UNINDEXED,
    seq UNINDEXED,
    internal UNINDEXED,
    at UNINDEXED,
    tokenize = 'trigram'
);

INSERT INTO message_search (text, conversation_id, seq, internal, at)
SELECT text, conversation_id, seq, internal, at FROM messages
WHERE event IS NULL
ORDER BY at, conversation_id, seq;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN NEW.event IS NULL
BEGIN
    INSERT INTO message_search (text, conversation_id, seq, internal, at)
    VALUES (NEW.text, NEW.conversation_id, NEW.seq, NEW.internal, NEW.at);
END;

-- Messages are never updated or deleted; visitors (name, email) are
-- matched with LIKE over their own table: one row per conversation, far
-- fewer than messages, and rewritten on every page view, so an index there
-- would cost more than the scan.
