-- kefu schema v1. Times are unix milliseconds (UTC).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  TEXT NOT NULL UNIQUE,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

-- A visitor row is written with the visitor's first message, never on a page view.
CREATE TABLE visitors (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    email       TEXT,
    page_url    TEXT,
    page_title  TEXT,
    referrer    TEXT,
    lang        TEXT,
    user_agent  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One conversation per visitor: it is reopened when the visitor writes again.
CREATE TABLE conversations (
    id                TEXT PRIMARY KEY,
    visitor_id        TEXT NOT NULL UNIQUE REFERENCES visitors (id),
    status            TEXT NOT NULL CHECK (status IN ('waiting', 'active', 'resolved')),
    assignee          TEXT REFERENCES agents (id),
    last_seq          INTEGER NOT NULL DEFAULT 0,
    unread            INTEGER NOT NULL DEFAULT 0,
    agent_read_seq    INTEGER NOT NULL DEFAULT 0,
    visitor_read_seq  INTEGER NOT NULL DEFAULT 0,
    preview           TEXT NOT NULL DEFAULT '',
    waiting_since     INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE INDEX conversations_open ON conversations (status) WHERE status <> 'resolved';
CREATE INDEX conversations_updated ON conversations (updated_at);

CREATE TABLE messages (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    seq              INTEGER NOT NULL,
    id               TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    author_kind      TEXT NOT NULL CHECK (author_kind IN ('visitor', 'agent', 'system')),
    author_id        TEXT NOT NULL,
    author_name      TEXT NOT NULL,
    text             TEXT NOT NULL,
    internal         INTEGER NOT NULL DEFAULT 0,
    at               INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

-- client_id is an idempotency key per author: a resend finds the original.
CREATE UNIQUE INDEX messages_client_id ON messages (author_kind, author_id, client_id);
