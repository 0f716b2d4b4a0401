-- A resend is recognised by the writer instead (store/sqlite/client_ids.rs):
-- this index put every message on one more page than its own row, a WAL
-- frame more to write per message. PostgreSQL keeps its index: several
-- relays write there.
DROP INDEX IF EXISTS messages_client_id;
