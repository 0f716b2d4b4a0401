-- Full-text search over message text and visitor names and emails
-- (issue 17), with pg_trgm: trigram GIN indexes serve `ILIKE '%term%'`,
-- which matches inside words and in scripts written without spaces
-- (Chinese, Japanese), where PostgreSQL's word-based full text search
-- (to_tsvector) finds nothing without an extra parser. A term under three
-- characters (`蓝色`) yields no trigram and is matched by a scan, newest
-- first, within the query's statement_timeout (store/search.rs).
--
-- `message_search` mirrors SQLite's: its own copy of each message's text
-- with a growing id, so "newest first" is id order and a page's cursor is
-- an id, the same on both backends. The trigger writes it in the same
-- transaction as the message: an acknowledged message is searchable.
-- Timeline events are not indexed.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE message_search (
    id               BIGSERIAL PRIMARY KEY,
    conversation_id  TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    internal         BOOLEAN NOT NULL,
    at               BIGINT NOT NULL,
    text             TEXT NOT NULL
);

INSERT INTO message_search (conversation_id, seq, internal, at, text)
SELECT conversation_id, seq, internal, at, text FROM messages
WHERE event IS NULL
ORDER BY at, conversation_id, seq;

CREATE INDEX message_search_text ON message_search USING gin (text gin_trgm_ops);
CREATE INDEX visitors_name_search ON visitors USING gin (name gin_trgm_ops);
CREATE INDEX visitors_email_search ON visitors USING gin (email gin_trgm_ops);

CREATE FUNCTION message_search_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO message_search (conversation_id, seq, internal, at, text)
    VALUES (NEW.conversation_id, NEW.seq, NEW.internal, NEW.at, NEW.text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.event IS NULL)
EXECUTE FUNCTION message_search_insert();
