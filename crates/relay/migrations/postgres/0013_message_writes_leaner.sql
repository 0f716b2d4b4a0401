-- Message writes with fewer statements in the common case (issue 15).
--
-- Profiled at 5,000 visitor messages a second offered to one relay,
-- PostgreSQL took 70 % of the machine's CPU, spread over executor start-up
-- and teardown of the many small statements each write makes inside
-- 0012's functions rather than over any one of them. So the usual write
-- now makes fewer, with the same arguments, results and refusals:
-- - a visitor's row is written only when the page says something new of
--   them (a name, a page) instead of on every message, as the SQLite
--   writer already does; otherwise it is only read for the name;
-- - a visitor's conversation is updated straight away, and inserted (then
--   updated) only when there is none: before, every message tried the
--   insert first. The visitor's row is read (or written) after that, under
--   the conversation's row lock;
-- - a message without files does not call `kefu_attach_files`;
-- - an agent's reply locks, checks and updates its conversation in one
--   statement; only a refused one reads the row again to say why.
-- Measured (docs/benchmarks.md): about 12 % less PostgreSQL CPU for the
-- same 60,000 writes; what remains is mostly executor start-up, index
-- upkeep and the search trigger, one write at a time.

CREATE OR REPLACE FUNCTION kefu_visitor_send(
    p_visitor_id TEXT, p_client_id TEXT, p_message_id TEXT, p_event_id TEXT,
    p_new_conversation_id TEXT, p_text TEXT, p_preview TEXT, p_at BIGINT,
    p_default_name TEXT, p_name TEXT, p_email TEXT, p_page_url TEXT, p_page_title TEXT,
    p_referrer TEXT, p_lang TEXT, p_user_agent TEXT, p_address TEXT, p_attachments TEXT[],
    p_channel TEXT, p_node TEXT, p_origin BIGINT, p_max_payload INTEGER)
RETURNS messages LANGUAGE plpgsql AS $$
DECLARE
    m messages;
    e messages;
    v_conversation TEXT;
    v_seq BIGINT;
    v_reopened BOOLEAN;
    v_name TEXT;
BEGIN
    SELECT * INTO m FROM messages
    WHERE author_kind = 'visitor' AND author_id = p_visitor_id AND client_id = p_client_id;
    IF FOUND THEN
        RETURN m;
    END IF;
    -- Takes the row lock that orders concurrent writers, and reopens a
    -- resolved conversation (every expression sees the old row), making
    -- room for the reopen event before the message. A visitor's first
    -- message finds no row, nor does one whose conversation was deleted
    -- (and their row with it) since: it writes the visitor's row, then the
    -- conversation that refers to it, and goes round again.
    LOOP
        WITH old AS (SELECT id, status FROM conversations
                     WHERE visitor_id = p_visitor_id FOR UPDATE)
        UPDATE conversations c SET
            last_seq = c.last_seq + CASE WHEN c.status = 'resolved' THEN 2 ELSE 1 END,
            unread = c.unread + 1, visitor_messages = c.visitor_messages + 1,
            preview = p_preview, updated_at = p_at,
            status = CASE WHEN c.status = 'resolved' THEN 'waiting' ELSE c.status END,
            assignee = CASE WHEN c.status = 'resolved' THEN NULL ELSE c.assignee END,
            waiting_since = CASE WHEN c.status = 'resolved' THEN p_at ELSE c.waiting_since END
        FROM old WHERE c.id = old.id
        RETURNING c.id, c.last_seq, old.status = 'resolved'
        INTO v_conversation, v_seq, v_reopened;
        EXIT WHEN FOUND;
        PERFORM kefu_upsert_visitor(p_visitor_id, p_name, p_email, p_page_url, p_page_title,
                                    p_referrer, p_lang, p_user_agent, p_address, p_at);
        INSERT INTO conversations (id, visitor_id, status, waiting_since, created_at,
                                   updated_at)
        VALUES (p_new_conversation_id, p_visitor_id, 'waiting', p_at, p_at, p_at)
        ON CONFLICT (visitor_id) DO NOTHING;
    END LOOP;
    -- Read under that lock, so in the order of this visitor's sends. A
    -- field the page did not send keeps its old value, so the row changes
    -- only if a field it sent differs from the stored one.
    SELECT name INTO v_name FROM visitors
    WHERE id = p_visitor_id
      AND (p_name IS NULL OR name = p_name) AND (p_email IS NULL OR email = p_email)
      AND (p_page_url IS NULL OR page_url = p_page_url)
      AND (p_page_title IS NULL OR page_title = p_page_title)
      AND (p_referrer IS NULL OR referrer = p_referrer) AND (p_lang IS NULL OR lang = p_lang)
      AND (p_user_agent IS NULL OR user_agent = p_user_agent)
      AND (p_address IS NULL OR address = p_address);
    IF NOT FOUND THEN
        v_name := kefu_upsert_visitor(p_visitor_id, p_name, p_email, p_page_url,
                                      p_page_title, p_referrer, p_lang, p_user_agent,
                                      p_address, p_at);
    END IF;
    IF v_name IS NULL OR v_name ~ '^[[:space:]]*$' THEN
        v_name := p_default_name;
    END IF;
    IF v_reopened THEN
        -- store/events.rs `event_message`, and TimelineEvent::describe.
        INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                              author_name, text, internal, at, event)
        VALUES (v_conversation, v_seq - 1, p_event_id, p_event_id, 'system', 'kefu', 'kefu',
                v_name || ' wrote again: the conversation is reopened', TRUE, p_at,
                json_build_object('kind', 'reopened', 'by', json_build_object(
                    'kind', 'visitor', 'id', p_visitor_id, 'name', v_name))::TEXT)
        RETURNING * INTO e;
        PERFORM kefu_notify_message(e, p_channel, p_node, p_origin, p_max_payload);
    END IF;
    INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                          author_name, text, internal, at, attachments)
    VALUES (v_conversation, v_seq, p_message_id, p_client_id, 'visitor', p_visitor_id, v_name,
            p_text, FALSE, p_at,
            CASE WHEN cardinality(p_attachments) > 0 THEN
                kefu_attach_files(p_attachments, v_conversation, p_message_id, TRUE,
                                  'visitor', p_visitor_id)
            END)
    RETURNING * INTO m;
    PERFORM kefu_notify_message(m, p_channel, p_node, p_origin, p_max_payload);
    RETURN m;
END;
$$;

-- An agent's reply or internal note; `p_decisions` as in 0012: what the
-- store's rule for a reply decides in each state store/rules.rs `states`
-- lists, index 1 + 2 × (0 waiting, 1 active, 2 resolved) + (1 if the agent
-- is the assignee). A refusal raises KF409 with that index less one.
CREATE OR REPLACE FUNCTION kefu_agent_send(
    p_conversation_id TEXT, p_agent_id TEXT, p_agent_name TEXT, p_client_id TEXT,
    p_message_id TEXT, p_text TEXT, p_preview TEXT, p_internal BOOLEAN, p_link TEXT,
    p_at BIGINT, p_attachments TEXT[], p_decisions TEXT[],
    p_channel TEXT, p_node TEXT, p_origin BIGINT, p_max_payload INTEGER)
RETURNS messages LANGUAGE plpgsql AS $$
DECLARE
    m messages;
    v_status TEXT;
    v_assignee TEXT;
    v_seq BIGINT;
    v_visitor_messages BIGINT;
BEGIN
    SELECT * INTO m FROM messages
    WHERE author_kind = 'agent' AND author_id = p_agent_id AND client_id = p_client_id;
    IF FOUND THEN
        RETURN m;
    END IF;
    -- The row lock, the rule's decision for the state it holds (`old`, with
    -- every expression seeing the old row) and the update, in one
    -- statement that changes nothing when the rule refuses. A reply means
    -- the agent has read what came before it; a note changes neither the
    -- preview nor the read marks.
    WITH old AS (
        SELECT id, p_decisions[1 + 2 * CASE status WHEN 'waiting' THEN 0
                                                   WHEN 'active' THEN 1 ELSE 2 END
                                 + CASE WHEN assignee IS NOT DISTINCT FROM p_agent_id
                                        THEN 1 ELSE 0 END] AS decision
        FROM conversations WHERE id = p_conversation_id FOR UPDATE)
    UPDATE conversations c SET last_seq = c.last_seq + 1, updated_at = p_at,
        preview = CASE WHEN p_internal THEN c.preview ELSE p_preview END,
        agent_read_seq = CASE WHEN p_internal THEN c.agent_read_seq ELSE c.last_seq + 1 END,
        unread = CASE WHEN p_internal THEN c.unread ELSE 0 END,
        status = CASE WHEN old.decision = 'assign' THEN 'active' ELSE c.status END,
        assignee = CASE WHEN old.decision = 'assign' THEN p_agent_id ELSE c.assignee END,
        waiting_since = CASE WHEN old.decision = 'assign' THEN NULL ELSE c.waiting_since END
    FROM old WHERE c.id = old.id AND old.decision IN ('proceed', 'assign')
    RETURNING c.last_seq, c.visitor_messages INTO v_seq, v_visitor_messages;
    IF NOT FOUND THEN
        SELECT status, assignee INTO v_status, v_assignee
        FROM conversations WHERE id = p_conversation_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation' USING ERRCODE = 'KF404';
        END IF;
        RAISE EXCEPTION '%', 2 * CASE v_status WHEN 'waiting' THEN 0
                                               WHEN 'active' THEN 1 ELSE 2 END
                             + CASE WHEN v_assignee IS NOT DISTINCT FROM p_agent_id
                                    THEN 1 ELSE 0 END
            USING ERRCODE = 'KF409';
    END IF;
    -- Whatever the agent writes, it has read what came before: every
    -- visitor message so far, as the conversation counts them.
    INSERT INTO agent_reads (agent_id, conversation_id, read_seq, visitor_messages)
    VALUES (p_agent_id, p_conversation_id, v_seq, v_visitor_messages)
    ON CONFLICT (agent_id, conversation_id) DO UPDATE
    SET read_seq = excluded.read_seq, visitor_messages = excluded.visitor_messages
    WHERE agent_reads.read_seq < excluded.read_seq;
    INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                          author_name, text, internal, at, link, attachments)
    VALUES (p_conversation_id, v_seq, p_message_id, p_client_id, 'agent', p_agent_id,
            p_agent_name, p_text, p_internal, p_at, p_link,
            CASE WHEN cardinality(p_attachments) > 0 THEN
                kefu_attach_files(p_attachments, p_conversation_id, p_message_id,
                                  NOT p_internal, 'agent', p_agent_id)
            END)
    RETURNING * INTO m;
    PERFORM kefu_notify_message(m, p_channel, p_node, p_origin, p_max_payload);
    RETURN m;
END;
$$;
