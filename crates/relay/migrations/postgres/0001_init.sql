-- kefu schema v1 for PostgreSQL. Times are unix milliseconds (UTC); the
-- shape mirrors migrations/sqlite so both backends keep the same contract.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE visitors (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    email       TEXT,
    page_url    TEXT,
    page_title  TEXT,
    referrer    TEXT,
    lang        TEXT,
    user_agent  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id                TEXT PRIMARY KEY,
    visitor_id        TEXT NOT NULL UNIQUE REFERENCES visitors (id),
    status            TEXT NOT NULL CHECK (status IN ('waiting', 'active', 'resolved')),
    assignee          TEXT REFERENCES agents (id),
    last_seq          BIGINT NOT NULL DEFAULT 0,
    unread            BIGINT NOT NULL DEFAULT 0,
    agent_read_seq    BIGINT NOT NULL DEFAULT 0,
    visitor_read_seq  BIGINT NOT NULL DEFAULT 0,
    preview           TEXT NOT NULL DEFAULT '',
    waiting_since     BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE INDEX conversations_open ON conversations (status) WHERE status <> 'resolved';
CREATE INDEX conversations_updated ON conversations (updated_at);

CREATE TABLE messages (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    seq              BIGINT NOT NULL,
    id               TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    author_kind      TEXT NOT NULL CHECK (author_kind IN ('visitor', 'agent', 'system')),
    author_id        TEXT NOT NULL,
    author_name      TEXT NOT NULL,
    text             TEXT NOT NULL,
    internal         BOOLEAN NOT NULL DEFAULT FALSE,
    at               BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE UNIQUE INDEX messages_client_id ON messages (author_kind, author_id, client_id);
