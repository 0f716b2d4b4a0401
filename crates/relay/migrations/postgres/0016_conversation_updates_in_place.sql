-- A message's update of its conversation row made in place (issue 15).
--
-- Every message moves its conversation's `updated_at`, and while an index
-- covered that column PostgreSQL could not update the row "HOT" (heap-only,
-- in its own page, no index touched): each message wrote a new entry in
-- every index of `conversations` (the primary key, the visitor's unique
-- key, the open ones, `updated_at`). Measured at 2,000 symmetric msg/s on
-- one relay, 5 % of the conversation updates were HOT
-- (`pg_stat_user_tables.n_tup_hot_upd`). SQLite dropped the same index for
-- the same reason (its migration 0002); the reads that filter on
-- `updated_at` (retention's scan, `export --since`) do not need it.
--
-- Each page keeps a fifth free, so that the next version of a row fits
-- beside it; pages written before this fill as they are rewritten.
DROP INDEX IF EXISTS conversations_updated;
ALTER TABLE conversations SET (fillfactor = 80);
