-- A visitor's or an agent's message written in one round trip (issue 15).
--
-- Each of `kefu_visitor_send` and `kefu_agent_send` is the whole write that
-- store/postgres used to make in about ten statements (the resend check,
-- the visitor upsert, the conversation row lock and update, a reopen
-- event, the attachments, the message, its summary and the NOTIFY). The
-- relay calls one with a single statement outside any BEGIN, which is its
-- own transaction: committed (synchronous_commit stays on) before the
-- answer comes back, and the conversation row lock, which orders writers
-- on every relay, held for one statement's work and the commit rather than
-- for ten round trips.
--
-- What is decided stays in Rust: the relay passes what the store's rules
-- (store/rules.rs) decide for each state the conversation can be in (see
-- `kefu_agent_send`), the default visitor name, the channel and the largest
-- payload. A refused write raises one of these SQLSTATEs, which the relay
-- turns back into its error:
--   KF404  the conversation does not exist
--   KF403  an attachment is not an unsent upload of the author's
--   KF409  the rules refuse the reply; the message is the state's index
--          in store/rules.rs `states`
-- and a resend racing its original trips `messages_client_id` (23505), as
-- before: the relay then answers with the original.
--
-- A new message's NOTIFY carries it and its summary as rows (the columns of
-- `messages`, and those store/rows.rs selects for a summary), which the
-- relays decode with the row types they read the tables with; relays
-- that do not know `rows` read the message back, as for one too large.

-- Tells the cluster of message `m`, with its conversation's summary as this
-- transaction leaves it (see store/postgres/bus.rs).
CREATE FUNCTION kefu_notify_message(m messages, p_channel TEXT, p_node TEXT,
                                    p_origin BIGINT, p_max_payload INTEGER)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    summary json;
    payload TEXT;
BEGIN
    SELECT row_to_json(s) INTO summary FROM (
        SELECT c.id, c.status, c.assignee, c.last_seq, c.unread, c.visitor_messages,
               c.preview, c.visitor_read_seq, c.waiting_since, c.updated_at,
               v.id AS visitor_id, v.name, v.email, v.page_url, v.page_title, v.referrer,
               v.lang, v.user_agent, v.address
        FROM conversations c JOIN visitors v ON v.id = c.visitor_id
        WHERE c.id = m.conversation_id) s;
    payload := json_build_object('t', 'message', 'conversation_id', m.conversation_id,
        'seq', m.seq, 'node', p_node, 'origin', p_origin,
        'rows', json_build_object('message', row_to_json(m), 'summary', summary))::TEXT;
    IF octet_length(payload) > p_max_payload THEN
        payload := json_build_object('t', 'message', 'conversation_id', m.conversation_id,
            'seq', m.seq, 'node', p_node, 'origin', p_origin)::TEXT;
    END IF;
    PERFORM pg_notify(p_channel, payload);
END;
$$;

-- Attaches the author's pending uploads `p_ids` to message `p_message_id`
-- (store/files.rs `ATTACH_FILE`) and returns them as the `attachments`
-- column keeps them (kefu_protocol::Attachment's JSON), in the order given;
-- NULL for none.
CREATE FUNCTION kefu_attach_files(p_ids TEXT[], p_conversation_id TEXT, p_message_id TEXT,
                                  p_public BOOLEAN, p_author_kind TEXT, p_author_id TEXT)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    attached INTEGER;
    attachments TEXT;
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE files SET conversation_id = p_conversation_id, message_id = p_message_id,
                     public = p_public
    WHERE id = ANY (p_ids) AND owner_kind = p_author_kind AND owner_id = p_author_id
      AND message_id IS NULL
      AND (conversation_id IS NULL OR conversation_id = p_conversation_id);
    GET DIAGNOSTICS attached = ROW_COUNT;
    -- An id given twice attaches once, and refuses the send as before.
    IF attached <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'attachment refused' USING ERRCODE = 'KF403';
    END IF;
    SELECT json_agg(jsonb_strip_nulls(jsonb_build_object(
               'id', f.id, 'name', f.name, 'size', f.size, 'content_type', f.content_type,
               'width', f.width, 'height', f.height,
               'thumbnail', CASE WHEN f.thumbnail_digest IS NOT NULL
                                  AND f.thumbnail_width IS NOT NULL
                                  AND f.thumbnail_height IS NOT NULL
                             THEN jsonb_build_object('width', f.thumbnail_width,
                                                     'height', f.thumbnail_height) END))
               ORDER BY array_position(p_ids, f.id))::TEXT
    INTO attachments
    FROM files f WHERE f.id = ANY (p_ids);
    RETURN attachments;
END;
$$;

-- Records what the page says of a visitor; a field it did not send keeps
-- its old value. The name as stored. (Also store/postgres/writes.rs
-- `upsert_visitor`.)
CREATE FUNCTION kefu_upsert_visitor(
    p_visitor_id TEXT, p_name TEXT, p_email TEXT, p_page_url TEXT, p_page_title TEXT,
    p_referrer TEXT, p_lang TEXT, p_user_agent TEXT, p_address TEXT, p_at BIGINT)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    v_name TEXT;
BEGIN
    INSERT INTO visitors AS old (id, name, email, page_url, page_title, referrer, lang,
                                 user_agent, created_at, updated_at, address)
    VALUES (p_visitor_id, p_name, p_email, p_page_url, p_page_title, p_referrer, p_lang,
            p_user_agent, p_at, p_at, p_address)
    ON CONFLICT (id) DO UPDATE SET
        name = coalesce(excluded.name, old.name),
        email = coalesce(excluded.email, old.email),
        page_url = coalesce(excluded.page_url, old.page_url),
        page_title = coalesce(excluded.page_title, old.page_title),
        referrer = coalesce(excluded.referrer, old.referrer),
        lang = coalesce(excluded.lang, old.lang),
        user_agent = coalesce(excluded.user_agent, old.user_agent),
        address = coalesce(excluded.address, old.address),
        updated_at = excluded.updated_at
    RETURNING name INTO v_name;
    RETURN v_name;
END;
$$;

-- A visitor's message: creates the conversation on the first, reopens a
-- resolved one (with its event, just before the message), and returns the
-- stored message, or the original of a resend.
CREATE FUNCTION kefu_visitor_send(
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
    v_name := kefu_upsert_visitor(p_visitor_id, p_name, p_email, p_page_url, p_page_title,
                                  p_referrer, p_lang, p_user_agent, p_address, p_at);
    IF v_name IS NULL OR v_name ~ '^[[:space:]]*$' THEN
        v_name := p_default_name;
    END IF;
    INSERT INTO conversations (id, visitor_id, status, waiting_since, created_at, updated_at)
    VALUES (p_new_conversation_id, p_visitor_id, 'waiting', p_at, p_at, p_at)
    ON CONFLICT (visitor_id) DO NOTHING;
    -- Takes the row lock that orders concurrent writers, and reopens a
    -- resolved conversation (every expression sees the old row), making
    -- room for the reopen event before the message.
    WITH old AS (SELECT id, status FROM conversations WHERE visitor_id = p_visitor_id FOR UPDATE)
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
            kefu_attach_files(p_attachments, v_conversation, p_message_id, TRUE, 'visitor',
                              p_visitor_id))
    RETURNING * INTO m;
    PERFORM kefu_notify_message(m, p_channel, p_node, p_origin, p_max_payload);
    RETURN m;
END;
$$;

-- An agent's reply or internal note. `p_decisions` holds what the store's
-- rule for a reply decides ('proceed', 'assign' or 'refuse') in each of
-- the states store/rules.rs `states` lists, in its order: index
-- 1 + 2 × (0 waiting, 1 active, 2 resolved) + (1 if the agent is the
-- assignee, else 0). A refusal raises KF409 with that index less one.
CREATE FUNCTION kefu_agent_send(
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
    v_state INTEGER;
    v_assign BOOLEAN;
BEGIN
    SELECT * INTO m FROM messages
    WHERE author_kind = 'agent' AND author_id = p_agent_id AND client_id = p_client_id;
    IF FOUND THEN
        RETURN m;
    END IF;
    SELECT status, assignee, last_seq + 1, visitor_messages
    INTO v_status, v_assignee, v_seq, v_visitor_messages
    FROM conversations WHERE id = p_conversation_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation' USING ERRCODE = 'KF404';
    END IF;
    v_state := 1 + 2 * CASE v_status WHEN 'waiting' THEN 0 WHEN 'active' THEN 1 ELSE 2 END
        + CASE WHEN v_assignee IS NOT DISTINCT FROM p_agent_id THEN 1 ELSE 0 END;
    CASE p_decisions[v_state]
        WHEN 'proceed' THEN v_assign := FALSE;
        WHEN 'assign' THEN v_assign := TRUE;
        ELSE RAISE EXCEPTION '%', v_state - 1 USING ERRCODE = 'KF409';
    END CASE;
    -- A reply means the agent has read what came before it; a note
    -- changes neither the preview nor the read marks.
    UPDATE conversations SET last_seq = v_seq, updated_at = p_at,
        preview = CASE WHEN p_internal THEN preview ELSE p_preview END,
        agent_read_seq = CASE WHEN p_internal THEN agent_read_seq ELSE v_seq END,
        unread = CASE WHEN p_internal THEN unread ELSE 0 END,
        status = CASE WHEN v_assign THEN 'active' ELSE status END,
        assignee = CASE WHEN v_assign THEN p_agent_id ELSE assignee END,
        waiting_since = CASE WHEN v_assign THEN NULL ELSE waiting_since END
    WHERE id = p_conversation_id;
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
            kefu_attach_files(p_attachments, p_conversation_id, p_message_id, NOT p_internal,
                              'agent', p_agent_id))
    RETURNING * INTO m;
    PERFORM kefu_notify_message(m, p_channel, p_node, p_origin, p_max_payload);
    RETURN m;
END;
$$;

-- Message writes in one statement (store/postgres/batch.rs): `p_writes` is
-- a JSON array of writes, each the arguments of `kefu_visitor_send`
-- ("kind": "visitor") or `kefu_agent_send` ("kind": "agent") by name, made
-- in the array's order; the stored messages (or a resend's original), in
-- the same order. A statement is one transaction: any write that raises
-- undoes them all, and the relay then makes each alone.
CREATE FUNCTION kefu_send_batch(p_writes jsonb, p_channel TEXT, p_node TEXT,
                                p_max_payload INTEGER)
RETURNS SETOF messages LANGUAGE plpgsql AS $$
DECLARE
    w jsonb;
BEGIN
    FOR w IN SELECT e.value FROM jsonb_array_elements(p_writes) WITH ORDINALITY AS e (value, i)
             ORDER BY e.i LOOP
        IF w->>'kind' = 'visitor' THEN
            RETURN NEXT kefu_visitor_send(
                w->>'visitor_id', w->>'client_id', w->>'message_id', w->>'event_id',
                w->>'conversation_id', w->>'text', w->>'preview', (w->>'at')::BIGINT,
                w->>'default_name', w->>'name', w->>'email', w->>'page_url',
                w->>'page_title', w->>'referrer', w->>'lang', w->>'user_agent',
                w->>'address',
                ARRAY(SELECT jsonb_array_elements_text(w->'attachments')),
                p_channel, p_node, (w->>'origin')::BIGINT, p_max_payload);
        ELSE
            RETURN NEXT kefu_agent_send(
                w->>'conversation_id', w->>'agent_id', w->>'agent_name', w->>'client_id',
                w->>'message_id', w->>'text', w->>'preview', (w->>'internal')::BOOLEAN,
                w->>'link', (w->>'at')::BIGINT,
                ARRAY(SELECT jsonb_array_elements_text(w->'attachments')),
                ARRAY(SELECT jsonb_array_elements_text(w->'decisions')),
                p_channel, p_node, (w->>'origin')::BIGINT, p_max_payload);
        END IF;
    END LOOP;
END;
$$;
