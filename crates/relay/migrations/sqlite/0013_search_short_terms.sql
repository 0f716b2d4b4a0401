-- Two-character terms through the trigram index (issue 17).
--
-- A trigram index cannot look up `订单` directly, and scanning every message
-- with LIKE takes over a second at a million messages when the term is rare
-- (docs/benchmarks.md). But every place `订单` occurs is the start of some
-- indexed trigram `订单X`, once each text ends with a sentinel (char(1)) so
-- that a term at its very end starts one too (`订单\x01`). The search reads
-- those trigrams from the index's own vocabulary (a range of sorted terms)
-- and matches any of them: a rare term costs a few index lookups, an absent
-- one none. Common terms, with hundreds of such trigrams, keep LIKE, which
-- stops as soon as a page is full (store/sqlite/search.rs).
--
-- The index is rebuilt with the sentinel; rowids stay in message order.
CREATE VIRTUAL TABLE message_search_terms USING fts5vocab(message_search, 'row');

DROP TRIGGER message_search_insert;
DELETE FROM message_search;

INSERT INTO message_search (text, conversation_id, seq, internal, at)
SELECT text || char(1), conversation_id, seq, internal, at FROM messages
WHERE event IS NULL
ORDER BY at, conversation_id, seq;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN NEW.event IS NULL
BEGIN
    INSERT INTO message_search (text, conversation_id, seq, internal, at)
    VALUES (NEW.text || char(1), NEW.conversation_id, NEW.seq, NEW.internal, NEW.at);
END;
