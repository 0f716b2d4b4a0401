-- A batch's plain writes made together, set by set (issue 15).
--
-- 0014's `kefu_send_batch` made each write of a batch by itself: for a
-- visitor's message a resend check, the conversation's update, a read of
-- the visitor, the message's insert and its summary read for the NOTIFY,
-- each a statement started and torn down, about 160 µs of PostgreSQL's CPU
-- a write on this machine. Most writes are plain: a message to a
-- conversation that goes on, which changes nothing but that conversation's
-- counters. Those of a batch are now made by one statement (the message
-- inserts, one update per conversation, the agents' read marks, the
-- NOTIFYs), which computes each write's sequence number and the summary as
-- the write leaves it from running counts over the batch; the writes of a
-- conversation in the batch keep their order. Measured (docs/benchmarks.md):
-- a batch of 256 plain writes in 15–18 ms of PostgreSQL's time instead of
-- 31–33; the break-even is three or four writes a batch.
--
-- A conversation any of whose writes in the batch is not plain (a
-- resend, a visitor's first message, a reopen, new details of the visitor,
-- a claim, a refusal, files) has all its writes made one by one after, in
-- their order, as before, by `kefu_send_one`: the same write a batch of one
-- would make, which tests compare the batch against.
--
-- The batch's conversation rows are locked first, in the order of their
-- ids (store/postgres/batch.rs), all in one statement; the writes are then
-- read and decided on by the next, which sees every row as it is once
-- they are all locked.

-- One write of a batch (its JSON as store/postgres/sends.rs makes it) by
-- itself, with 0013's functions.
CREATE FUNCTION kefu_send_one(p_write jsonb, p_channel TEXT, p_node TEXT,
                              p_max_payload INTEGER)
RETURNS messages LANGUAGE plpgsql AS $$
BEGIN
    IF p_write->>'kind' = 'visitor' THEN
        RETURN kefu_visitor_send(
            p_write->>'visitor_id', p_write->>'client_id', p_write->>'message_id',
            p_write->>'event_id', p_write->>'conversation_id', p_write->>'text',
            p_write->>'preview', (p_write->>'at')::BIGINT, p_write->>'default_name',
            p_write->>'name', p_write->>'email', p_write->>'page_url',
            p_write->>'page_title', p_write->>'referrer', p_write->>'lang',
            p_write->>'user_agent', p_write->>'address',
            ARRAY(SELECT jsonb_array_elements_text(p_write->'attachments')),
            p_channel, p_node, (p_write->>'origin')::BIGINT, p_max_payload);
    END IF;
    RETURN kefu_agent_send(
        p_write->>'conversation_id', p_write->>'agent_id', p_write->>'agent_name',
        p_write->>'client_id', p_write->>'message_id', p_write->>'text',
        p_write->>'preview', (p_write->>'internal')::BOOLEAN, p_write->>'link',
        (p_write->>'at')::BIGINT,
        ARRAY(SELECT jsonb_array_elements_text(p_write->'attachments')),
        ARRAY(SELECT jsonb_array_elements_text(p_write->'decisions')),
        p_channel, p_node, (p_write->>'origin')::BIGINT, p_max_payload);
END;
$$;

CREATE OR REPLACE FUNCTION kefu_send_batch(p_writes jsonb, p_channel TEXT, p_node TEXT,
                                           p_max_payload INTEGER)
RETURNS SETOF messages LANGUAGE plpgsql AS $$
DECLARE
    v_conversations conversations[];
    v_plain BIGINT[];
    v_plain_answers messages[];
    -- Each write's answer, at its place in the batch.
    v_answers messages[] := array_fill(NULL::messages, ARRAY[jsonb_array_length(p_writes)]);
    v_write RECORD;
    v_message messages;
    v_stored messages[] := '{}';
BEGIN
    -- The batch's conversations, locked in the byte order of their ids, as
    -- the relay sorts them (see store/postgres/batch.rs). A row that
    -- changed while this waited for it is read as it is now; everything
    -- else is read by the next statement, whose snapshot is taken once all
    -- are locked.
    SELECT coalesce(array_agg(l), '{}') INTO v_conversations
    FROM (SELECT * FROM conversations c
          WHERE c.id = ANY (ARRAY(SELECT e->>'conversation_id'
                                  FROM jsonb_array_elements(p_writes) e
                                  WHERE e->>'kind' = 'agent'))
             OR c.visitor_id = ANY (ARRAY(SELECT e->>'visitor_id'
                                          FROM jsonb_array_elements(p_writes) e
                                          WHERE e->>'kind' = 'visitor'))
          ORDER BY c.id COLLATE "C" FOR UPDATE) l;

    WITH w AS (
        SELECT * FROM ROWS FROM (jsonb_to_recordset(p_writes) AS (
            kind TEXT, visitor_id TEXT, client_id TEXT, message_id TEXT, text TEXT,
            preview TEXT, at BIGINT, default_name TEXT, name TEXT, email TEXT,
            page_url TEXT, page_title TEXT, referrer TEXT, lang TEXT, user_agent TEXT,
            address TEXT, origin BIGINT, conversation_id TEXT, agent_id TEXT,
            agent_name TEXT, internal BOOLEAN, link TEXT, decisions jsonb, attachments jsonb))
        WITH ORDINALITY AS x(kind, visitor_id, client_id, message_id, text, preview, at,
            default_name, name, email, page_url, page_title, referrer, lang, user_agent,
            address, origin, conversation_id, agent_id, agent_name, internal, link,
            decisions, attachments, i)
    ),
    locked AS (SELECT * FROM unnest(v_conversations)),
    -- Each write with its conversation as locked, and whether it is plain:
    -- not a resend (nor sent twice in this batch), and it changes no more
    -- than its conversation's counters (no new or reopened conversation,
    -- no claim, no new detail of the visitor, no refusal, no files).
    placed AS (
        SELECT w.i, w.kind, w.client_id, w.message_id, w.text, w.preview, w.at,
               w.origin, w.link,
               CASE w.kind WHEN 'visitor' THEN FALSE ELSE w.internal END AS internal,
               coalesce(w.visitor_id, w.agent_id) AS author_id,
               CASE WHEN w.kind = 'agent' THEN w.agent_name
                    WHEN v.name IS NULL OR v.name ~ '^[[:space:]]*$' THEN w.default_name
                    ELSE v.name END AS author_name,
               c.id AS conversation, c.status, c.assignee, c.last_seq, c.unread,
               c.visitor_messages, c.agent_read_seq, c.preview AS old_preview,
               c.visitor_read_seq, c.waiting_since,
               v.id AS visitor_id, v.name, v.email, v.page_url, v.page_title, v.referrer,
               v.lang, v.user_agent, v.address,
               c.id IS NOT NULL
               AND coalesce(jsonb_array_length(w.attachments), 0) = 0
               AND count(*) OVER (PARTITION BY w.kind, coalesce(w.visitor_id, w.agent_id),
                                               w.client_id) = 1
               AND (SELECT o.seq FROM messages o
                    WHERE o.author_kind = w.kind AND o.author_id = coalesce(w.visitor_id, w.agent_id)
                      AND o.client_id = w.client_id) IS NULL
               AND CASE w.kind WHEN 'visitor' THEN
                   c.status <> 'resolved'
                   AND (w.name IS NULL OR v.name = w.name) AND (w.email IS NULL OR v.email = w.email)
                   AND (w.page_url IS NULL OR v.page_url = w.page_url)
                   AND (w.page_title IS NULL OR v.page_title = w.page_title)
                   AND (w.referrer IS NULL OR v.referrer = w.referrer)
                   AND (w.lang IS NULL OR v.lang = w.lang)
                   AND (w.user_agent IS NULL OR v.user_agent = w.user_agent)
                   AND (w.address IS NULL OR v.address = w.address)
                 ELSE w.decisions->>(2 * CASE c.status WHEN 'waiting' THEN 0
                                                      WHEN 'active' THEN 1 ELSE 2 END
                                     + CASE WHEN c.assignee IS NOT DISTINCT FROM w.agent_id
                                            THEN 1 ELSE 0 END) = 'proceed'
                 END IS TRUE AS plain
        FROM w
        LEFT JOIN locked lv ON lv.visitor_id = w.visitor_id
        LEFT JOIN locked c ON c.id = coalesce(lv.id, w.conversation_id)
        LEFT JOIN visitors v ON v.id = c.visitor_id
    ),
    -- The writes of conversations whose every write in the batch is plain,
    -- in order, with running counts.
    counted AS (
        SELECT p.*,
               row_number() OVER run AS k,
               count(*) FILTER (WHERE p.kind = 'visitor') OVER run AS visitors_so_far,
               max(p.i) FILTER (WHERE p.kind = 'agent' AND NOT p.internal) OVER run AS last_reply,
               max(p.i) FILTER (WHERE NOT p.internal) OVER run AS last_public
        FROM placed p
        WHERE p.conversation IN (SELECT conversation FROM placed GROUP BY conversation
                                 HAVING bool_and(plain))
        WINDOW run AS (PARTITION BY p.conversation ORDER BY p.i ROWS UNBOUNDED PRECEDING)
    ),
    -- The conversation as each write leaves it.
    states AS (
        SELECT c.*, c.last_seq + c.k AS seq,
               c.visitor_messages + c.visitors_so_far AS visitor_messages_now,
               CASE WHEN c.last_reply IS NULL THEN c.unread + c.visitors_so_far
                    ELSE c.visitors_so_far - r.visitors_so_far END AS unread_now,
               CASE WHEN c.last_reply IS NULL THEN c.agent_read_seq
                    ELSE c.last_seq + r.k END AS agent_read_seq_now,
               coalesce(pub.preview, c.old_preview) AS preview_now,
               max(c.k) OVER (PARTITION BY c.conversation) = c.k AS last
        FROM counted c
        LEFT JOIN counted r ON r.i = c.last_reply
        LEFT JOIN counted pub ON pub.i = c.last_public
    ),
    stored AS (
        INSERT INTO messages (conversation_id, seq, id, client_id, author_kind, author_id,
                              author_name, text, internal, at, link)
        SELECT conversation, seq, message_id, client_id, kind, author_id, author_name, text,
               internal, at, link
        FROM states ORDER BY conversation, seq
        RETURNING *
    ),
    updated AS (
        UPDATE conversations c SET last_seq = s.seq, unread = s.unread_now,
            visitor_messages = s.visitor_messages_now, agent_read_seq = s.agent_read_seq_now,
            preview = s.preview_now, updated_at = s.at
        FROM states s
        WHERE s.last AND c.id = s.conversation
          AND c.id = ANY (ARRAY(SELECT (l).id FROM unnest(v_conversations) l))
    ),
    read AS (
        INSERT INTO agent_reads (agent_id, conversation_id, read_seq, visitor_messages)
        SELECT DISTINCT ON (author_id, conversation) author_id, conversation, seq,
               visitor_messages_now
        FROM states WHERE kind = 'agent' ORDER BY author_id, conversation, seq DESC
        ON CONFLICT (agent_id, conversation_id) DO UPDATE
        SET read_seq = excluded.read_seq, visitor_messages = excluded.visitor_messages
        WHERE agent_reads.read_seq < excluded.read_seq
    ),
    announced AS (
        SELECT s.i, s.m, pg_notify(p_channel, CASE WHEN octet_length(s.payload) <= p_max_payload
            THEN s.payload
            ELSE json_build_object('t', 'message', 'conversation_id', s.conversation,
                'seq', s.seq, 'node', p_node, 'origin', s.origin)::TEXT END) AS notified
        FROM (SELECT s.*, ROW(st.*)::messages AS m,
                     json_build_object('t', 'message', 'conversation_id', s.conversation,
                         'seq', s.seq, 'node', p_node, 'origin', s.origin,
                         'rows', json_build_object('message', row_to_json(st),
                                                   'summary', row_to_json(summary))
                     )::TEXT AS payload
              FROM states s JOIN stored st ON st.conversation_id = s.conversation
                                           AND st.seq = s.seq
              -- The columns 0012's `kefu_notify_message` sends, as the
              -- write leaves them.
              CROSS JOIN LATERAL (
                  SELECT s.conversation AS id, s.status, s.assignee, s.seq AS last_seq,
                         s.unread_now AS unread, s.visitor_messages_now AS visitor_messages,
                         s.preview_now AS preview, s.visitor_read_seq, s.waiting_since,
                         s.at AS updated_at, s.visitor_id, s.name, s.email, s.page_url,
                         s.page_title, s.referrer, s.lang, s.user_agent, s.address) summary
              ORDER BY s.i) s
    )
    SELECT coalesce(array_agg(i), '{}'), coalesce(array_agg(m), '{}')
    INTO v_plain, v_plain_answers
    FROM announced;
    v_stored := v_plain_answers;
    FOR k IN 1 .. cardinality(v_plain) LOOP
        v_answers[v_plain[k]] := v_plain_answers[k];
    END LOOP;

    -- The other writes, one by one in their order.
    FOR v_write IN SELECT e.value, e.i
                   FROM jsonb_array_elements(p_writes) WITH ORDINALITY AS e (value, i)
                   WHERE e.i <> ALL (v_plain) ORDER BY e.i LOOP
        v_message := kefu_send_one(v_write.value, p_channel, p_node, p_max_payload);
        v_answers[v_write.i] := v_message;
        -- A resend answers with its original, whose id is not this write's.
        IF v_message.id = v_write.value->>'message_id' THEN
            v_stored := v_stored || v_message;
        END IF;
    END LOOP;

    INSERT INTO message_search (conversation_id, seq, internal, at, text)
    SELECT s.conversation_id, s.seq, s.internal, s.at, s.text
    FROM unnest(v_stored) AS s
    ORDER BY s.conversation_id, s.seq
    ON CONFLICT (conversation_id, seq) DO NOTHING;

    RETURN QUERY SELECT * FROM unnest(v_answers);
END;
$$;
