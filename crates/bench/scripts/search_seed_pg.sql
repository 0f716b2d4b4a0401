-- Seeds a kefu PostgreSQL database (made by `kefu-relay migrate`) with
-- :messages messages for search benchmarks, the same phrases and shape as
-- search_seed.py: resolved conversations of 20 messages, each numbered.
--
--   psql -v messages=1000000 -f crates/bench/scripts/search_seed_pg.sql "$DATABASE"
--
-- One statement per table, and the copy into `message_search` that the
-- relay's batches make of every message they store (migration 0014).
-- Queries are timed with kefu-bench-search.
\timing on
INSERT INTO visitors (id, name, email, created_at, updated_at)
SELECT 'v' || i, 'Visitor ' || i, 'user' || i || '@example.com', 0, 0
FROM generate_series(0, :messages / 20 - 1) AS i;

INSERT INTO conversations (id, visitor_id, status, last_seq, created_at, updated_at)
SELECT 'c' || i, 'v' || i, 'resolved', 20, 0, i
FROM generate_series(0, :messages / 20 - 1) AS i;

INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                      author_name, text, internal, at)
SELECT 'c' || (i % (:messages / 20)), i / (:messages / 20) + 1, 'm' || i, 'k' || i,
       'visitor', 'v' || (i % (:messages / 20)), 'Visitor',
       (ARRAY['where is my order', '我的订单还没到', 'I want the blue shirt in size M',
              '想要一件蓝色的衬衫', 'can I pay by card', '退货需要多久', 'thanks, that helps',
              'the tracking number does not work', '请问有优惠券吗', 'is it in stock',
              'shipping to Berlin takes how long', '谢谢你的帮助', 'refund please',
              'the app crashes on login', '我想修改地址', 'hello?'])[i % 16 + 1] || ' #' || i,
       FALSE, i
FROM generate_series(0, :messages - 1) AS i;

INSERT INTO message_search (conversation_id, seq, internal, at, text)
SELECT conversation_id, seq, internal, at, text FROM messages ORDER BY at;

VACUUM ANALYZE;
SELECT pg_size_pretty(pg_database_size(current_database())) AS database_size;
