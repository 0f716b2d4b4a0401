//! Deleting a conversation with everything that names it: its messages
//! (notes and timeline events too), its files' rows, its search rows, the
//! agents' read marks, and its visitor (profile and page trail). A visitor
//! row exists only with its one conversation (it is written by the first
//! send), so the conversation goes with its visitor, and a visitor who
//! writes again starts afresh.
//!
//! Only a resolved conversation is deleted, checked in the deleting
//! transaction: one that is open is in the hub's routing table and on
//! agents' screens, and has to be resolved first (whose ending they see).
//! The blobs the removed rows named are the caller's to remove
//! ([`crate::prune`]), once no other row names them.
//!
//! The statements are shared by both backends (`$1` reads the same in
//! SQLite and PostgreSQL); the search rows are each backend's own.

/// What a deletion removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The conversations deleted.
    pub conversations: Vec<String>,
    /// The blobs (files and thumbnails) the removed file rows named; other
    /// rows may still name some of them.
    pub digests: Vec<String>,
}

impl Deleted {
    /// Adds what a file row named: its blob and its thumbnail's.
    pub(super) fn named(&mut self, digest: String, thumbnail: Option<String>) {
        self.digests.push(digest);
        self.digests.extend(thumbnail);
    }
}

/// Which id a statement binds as `$1`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key {
    Conversation,
    Visitor,
}

/// Remove the file rows, answering the blobs each named: the
/// conversation's, and its visitor's uploads never sent.
pub(super) const FILES: [(Key, &str); 2] = [
    (
        Key::Conversation,
        "DELETE FROM files WHERE conversation_id = $1 RETURNING digest, thumbnail_digest",
    ),
    (
        Key::Visitor,
        "DELETE FROM files WHERE owner_kind = 'visitor' AND owner_id = $1 AND message_id IS NULL
         RETURNING digest, thumbnail_digest",
    ),
];

/// The other rows, children before parents (foreign keys). The agents
/// are few: naming each lets the read marks' primary key find the rows.
pub(super) const ROWS: [(Key, &str); 5] = [
    (
        Key::Conversation,
        "DELETE FROM agent_reads WHERE agent_id IN (SELECT id FROM agents) AND conversation_id = $1",
    ),
    (
        Key::Conversation,
        "DELETE FROM messages WHERE conversation_id = $1",
    ),
    (Key::Conversation, "DELETE FROM conversations WHERE id = $1"),
    (Key::Visitor, "DELETE FROM page_views WHERE visitor_id = $1"),
    (Key::Visitor, "DELETE FROM visitors WHERE id = $1"),
];

/// The id `key` names.
pub(super) fn bound<'a>(key: Key, conversation_id: &'a str, visitor_id: &'a str) -> &'a str {
    match key {
        Key::Conversation => conversation_id,
        Key::Visitor => visitor_id,
    }
}
