-- Read state per agent. Each agent has its own read position in each
-- conversation (`agent_reads`); `conversations.agent_read_seq` and `unread`
-- stay, as the position of the agent who answers the visitor (the one the
-- visitor's "seen" shows). `visitor_messages` counts the visitor's messages,
-- so that an agent's unread count is that count minus the one its mark holds.

ALTER TABLE conversations ADD COLUMN visitor_messages INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET visitor_messages = (
    SELECT count(*) FROM messages m
    WHERE m.conversation_id = conversations.id AND m.author_kind = 'visitor');

CREATE TABLE agent_reads (
    agent_id          TEXT NOT NULL REFERENCES agents (id),
    conversation_id   TEXT NOT NULL REFERENCES conversations (id),
    read_seq          INTEGER NOT NULL,
    -- The visitor's messages at or below read_seq.
    visitor_messages  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
) WITHOUT ROWID;

-- Until now the one shared mark was, in effect, the assignee's.
INSERT INTO agent_reads (agent_id, conversation_id, read_seq, visitor_messages)
SELECT c.assignee, c.id, c.agent_read_seq, (
    SELECT count(*) FROM messages m
    WHERE m.conversation_id = c.id AND m.author_kind = 'visitor' AND m.seq <= c.agent_read_seq)
FROM conversations c
WHERE c.assignee IS NOT NULL AND c.agent_read_seq > 0;
