-- Every message moves its conversation's entry in this index (updated_at
-- changes), which cost the writer a page or two per message. Only `export
-- --since` filtered on it; that walks conversations by id instead.
DROP INDEX IF EXISTS conversations_updated;
