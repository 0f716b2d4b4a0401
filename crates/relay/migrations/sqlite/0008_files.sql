-- Files in conversations (issue 18). The bytes live in the blob store,
-- named by `digest` (SHA-256, hex); a row is written only after its blob
-- is durable, so a row never names a missing blob. A file is uploaded
-- first (message_id NULL: pending, its uploader's alone) and attached by
-- the send that names it, in the same transaction as the message.
CREATE TABLE files (
    id               TEXT PRIMARY KEY,
    digest           TEXT NOT NULL,
    name             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    content_type     TEXT NOT NULL,
    width            INTEGER,
    height           INTEGER,
    owner_kind       TEXT NOT NULL CHECK (owner_kind IN ('visitor', 'agent')),
    owner_id         TEXT NOT NULL,
    -- Set at upload when known (an agent's, a returning visitor's), else
    -- by the send that attaches it.
    conversation_id  TEXT REFERENCES conversations (id),
    message_id       TEXT,
    -- Whether the visitor may fetch it: not attached to an internal note.
    public           INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);

CREATE INDEX files_conversation ON files (conversation_id);
CREATE INDEX files_owner_pending ON files (owner_kind, owner_id) WHERE message_id IS NULL;
CREATE INDEX files_digest ON files (digest);

-- The attachments of a message as JSON (a list of kefu_protocol::Attachment);
-- NULL for a message without any.
ALTER TABLE messages ADD COLUMN attachments TEXT;
