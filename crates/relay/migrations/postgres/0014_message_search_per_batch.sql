-- Search rows written once per batch instead of by a trigger per message
-- (issue 15).
--
-- In a writer backend's profile (docs/benchmarks.md) the row trigger that
-- copied each message into `message_search` (0004) took 12 % of the time:
-- a PL/pgSQL call and an INSERT statement, each started and torn down, for
-- every message. Every message that is searched (not a timeline event) is
-- now written by `kefu_send_batch` (0012), whose batches (store/postgres
-- /batch.rs) already carry up to 256 of them: it copies the messages it
-- stored into `message_search` with one INSERT at its end, still in the
-- batch's transaction, so an acknowledged message is searchable as before.
-- A message is copied once: a resend answers with its original, whose id
-- is not the write's, and a batch that committed but whose answer was lost
-- is made again write by write, each now finding its original under the
-- same id; so the copy also skips a message already there, by a unique
-- index that replaces 0010's on the conversation alone (which deletions
-- still use). Events (the reopen event, and those the relay inserts
-- itself) never were copied.

DROP TRIGGER message_search_insert ON messages;
DROP FUNCTION message_search_insert();
CREATE UNIQUE INDEX message_search_message ON message_search (conversation_id, seq);
DROP INDEX message_search_conversation;

CREATE OR REPLACE FUNCTION kefu_send_batch(p_writes jsonb, p_channel TEXT, p_node TEXT,
                                           p_max_payload INTEGER)
RETURNS SETOF messages LANGUAGE plpgsql AS $$
DECLARE
    w jsonb;
    m messages;
    stored messages[] := '{}';
BEGIN
    FOR w IN SELECT e.value FROM jsonb_array_elements(p_writes) WITH ORDINALITY AS e (value, i)
             ORDER BY e.i LOOP
        IF w->>'kind' = 'visitor' THEN
            m := kefu_visitor_send(
                w->>'visitor_id', w->>'client_id', w->>'message_id', w->>'event_id',
                w->>'conversation_id', w->>'text', w->>'preview', (w->>'at')::BIGINT,
                w->>'default_name', w->>'name', w->>'email', w->>'page_url',
                w->>'page_title', w->>'referrer', w->>'lang', w->>'user_agent',
                w->>'address',
                ARRAY(SELECT jsonb_array_elements_text(w->'attachments')),
                p_channel, p_node, (w->>'origin')::BIGINT, p_max_payload);
        ELSE
            m := kefu_agent_send(
                w->>'conversation_id', w->>'agent_id', w->>'agent_name', w->>'client_id',
                w->>'message_id', w->>'text', w->>'preview', (w->>'internal')::BOOLEAN,
                w->>'link', (w->>'at')::BIGINT,
                ARRAY(SELECT jsonb_array_elements_text(w->'attachments')),
                ARRAY(SELECT jsonb_array_elements_text(w->'decisions')),
                p_channel, p_node, (w->>'origin')::BIGINT, p_max_payload);
        END IF;
        -- A resend answers with its original, whose id is not this write's.
        IF m.id = w->>'message_id' THEN
            stored := stored || m;
        END IF;
        RETURN NEXT m;
    END LOOP;
    INSERT INTO message_search (conversation_id, seq, internal, at, text)
    SELECT s.conversation_id, s.seq, s.internal, s.at, s.text
    FROM unnest(stored) WITH ORDINALITY AS s
    ORDER BY s.ordinality
    ON CONFLICT (conversation_id, seq) DO NOTHING;
END;
$$;
