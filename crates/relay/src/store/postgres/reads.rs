//! PostgreSQL's text for the reads both backends share (see [`Queries`]).
//! A pool answers them, so that the bus can read what it is told of without
//! going through the store.

use std::marker::PhantomData;

use sqlx::Postgres;
use sqlx::postgres::PgPool;

use super::super::reads::{Queries, ReadSide};

pub(super) static READS: Queries<Postgres> = Queries {
    visitor_conversation: "SELECT id FROM conversations WHERE visitor_id = $1",
    summary: "WHERE c.id = $1",
    open_conversations: "WHERE c.status <> 'resolved' ORDER BY c.updated_at",
    messages_after: "WHERE conversation_id = $1 AND seq > $2 AND (NOT internal OR $3)
        ORDER BY seq LIMIT $4",
    messages_before: "WHERE conversation_id = $1 AND seq < $2 AND (NOT internal OR $3)
        ORDER BY seq DESC LIMIT $4",
    agents: "ORDER BY name",
    agent_by_token_hash: "WHERE token_hash = $1 AND NOT disabled",
    agent_credentials: "SELECT id, token_hash FROM agents WHERE NOT disabled",
    conversation_ids: "SELECT id FROM conversations WHERE updated_at >= $1 AND id > $2
        ORDER BY id LIMIT $3",
    expired_conversations: "SELECT id FROM conversations
        WHERE status = 'resolved' AND updated_at < $1 ORDER BY updated_at LIMIT $2",
    // The newest `limit`, turned oldest first.
    page_trail: "WHERE id IN (SELECT id FROM page_views WHERE visitor_id = $1
        ORDER BY at DESC, id DESC LIMIT $2) ORDER BY at, id",
    read_marks: "SELECT r.conversation_id, r.read_seq, r.visitor_messages
        FROM agent_reads r JOIN conversations c ON c.id = r.conversation_id
        WHERE r.agent_id = $1 AND c.status <> 'resolved'",
    blocks: "SELECT range, reason, created_at, expires_at FROM blocks
        WHERE expires_at IS NULL OR expires_at > $1 ORDER BY range",
    dialect: PhantomData,
};

impl ReadSide for PgPool {
    type Db = Postgres;

    fn read_side(&self) -> (&'static Queries<Postgres>, &PgPool) {
        (&READS, self)
    }
}
