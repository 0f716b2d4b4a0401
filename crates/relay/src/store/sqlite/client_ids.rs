//! The writer's memory of the client ids each conversation holds.
//!
//! A resend (the same author and `client_id` again) must get the message it
//! resends back, not a second copy. A unique index on those columns did
//! that, but an author's entries sit on their own page of the index, so
//! every message changed one more page than its own row: one more WAL frame
//! to write and fsync per message, a fifth of the writer's time at 10,000
//! messages a second (docs/benchmarks.md).
//!
//! Instead the writer remembers, for each conversation it writes to, a hash
//! of every (author, client id) stored there: read once from the
//! conversation's rows, which the primary key keeps together, and added to
//! with each insert. An unknown hash is a new message; a known one is looked
//! up among the conversation's rows, so a hash collision costs a scan, never
//! a lost message. A hash left behind by a rolled-back insert is harmless
//! the same way: only a stored row that memory lacked could duplicate, and
//! every insert goes through [`ClientIds::stored`].

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use kefu_protocol::{AuthorKind, Message};
use rusqlite::Connection;

use super::super::StoreError;
use super::super::rows::{MESSAGE_SELECT, MessageRow};
use super::statements::query_optional;

/// What the memory may hold, in hashes (about 16 bytes each with the
/// table around them), before the least recently written conversations
/// are forgotten; they are read again with their next message. About
/// 20 MiB.
pub(super) const MOST_REMEMBERED: usize = 1_000_000;
/// What remembering a conversation costs besides its hashes (its id, its
/// table), counted in hashes, so that many small conversations stay
/// within the limit too.
const CONVERSATION_COST: usize = 16;

pub(super) struct ClientIds {
    hasher: RandomState,
    by_conversation: HashMap<String, Remembered>,
    /// The size of `by_conversation`, in hashes ([`CONVERSATION_COST`]).
    total: usize,
    most: usize,
    /// Counts lookups; orders conversations by their last one.
    clock: u64,
}

struct Remembered {
    hashes: HashSet<u64>,
    used: u64,
}

impl ClientIds {
    pub fn new(most: usize) -> ClientIds {
        ClientIds {
            hasher: RandomState::new(),
            by_conversation: HashMap::new(),
            total: 0,
            most,
            clock: 0,
        }
    }

    /// The message this author already stored in the conversation under
    /// `client_id`, if any.
    pub fn find(
        &mut self,
        conn: &Connection,
        conversation_id: &str,
        author: (AuthorKind, &str),
        client_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let hash = self.hash(author, client_id);
        self.clock += 1;
        let known = match self.by_conversation.get_mut(conversation_id) {
            Some(remembered) => {
                remembered.used = self.clock;
                remembered.hashes.contains(&hash)
            }
            None => {
                let hashes = self.read(conn, conversation_id)?;
                let known = hashes.contains(&hash);
                self.total += CONVERSATION_COST + hashes.len();
                let used = self.clock;
                self.by_conversation
                    .insert(conversation_id.to_owned(), Remembered { hashes, used });
                self.forget_oldest_if_full();
                known
            }
        };
        if !known {
            return Ok(None);
        }
        query_optional(
            conn,
            &format!(
                "{MESSAGE_SELECT} WHERE conversation_id = ? AND author_kind = ? AND author_id = ?
                 AND client_id = ?"
            ),
            (conversation_id, author.0.as_str(), author.1, client_id),
            MessageRow::from_rusqlite,
        )?
        .map(Message::try_from)
        .transpose()
    }

    /// A message was inserted (its transaction may still roll back).
    pub fn stored(&mut self, message: &Message) {
        let hash = self.hash(
            (message.author.kind, &message.author.id),
            &message.client_id,
        );
        // A conversation not remembered is read whole when next looked up.
        if let Some(remembered) = self.by_conversation.get_mut(&message.conversation_id)
            && remembered.hashes.insert(hash)
        {
            self.total += 1;
            self.forget_oldest_if_full();
        }
    }

    /// The conversation was deleted: its hashes would only take room.
    pub fn forget(&mut self, conversation_id: &str) {
        if let Some(remembered) = self.by_conversation.remove(conversation_id) {
            self.total -= CONVERSATION_COST + remembered.hashes.len();
        }
    }

    fn hash(&self, (kind, author_id): (AuthorKind, &str), client_id: &str) -> u64 {
        self.hasher.hash_one((kind.as_str(), author_id, client_id))
    }

    fn read(&self, conn: &Connection, conversation_id: &str) -> rusqlite::Result<HashSet<u64>> {
        let mut statement = conn.prepare_cached(
            "SELECT author_kind, author_id, client_id FROM messages WHERE conversation_id = ?",
        )?;
        let mut rows = statement.query([conversation_id])?;
        let mut hashes = HashSet::new();
        while let Some(row) = rows.next()? {
            let (kind, author_id, client_id) = (
                row.get_ref(0)?.as_str()?,
                row.get_ref(1)?.as_str()?,
                row.get_ref(2)?.as_str()?,
            );
            hashes.insert(self.hasher.hash_one((kind, author_id, client_id)));
        }
        Ok(hashes)
    }

    /// Past the limit, forgets the least recently looked-up conversations
    /// until a quarter of the room is free again, so that this sort runs
    /// once per many messages rather than with each. The conversation in
    /// hand stays, even alone over the limit: forgotten, it would be read
    /// whole again with each of its messages.
    fn forget_oldest_if_full(&mut self) {
        if self.total <= self.most {
            return;
        }
        let mut by_age: Vec<(u64, usize, String)> = self
            .by_conversation
            .iter()
            .map(|(id, remembered)| (remembered.used, remembered.hashes.len(), id.clone()))
            .collect();
        by_age.sort_unstable();
        by_age.pop(); // the one in hand: just looked up or written to
        let target = self.most - self.most / 4;
        for (_, len, id) in by_age {
            if self.total <= target {
                break;
            }
            self.by_conversation.remove(&id);
            self.total -= CONVERSATION_COST + len;
        }
    }

    #[cfg(test)]
    fn remembered(&self, conversation_id: &str) -> bool {
        self.by_conversation.contains_key(conversation_id)
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::Author;

    use super::*;

    /// An in-memory database with the real schema: every migration the
    /// store runs ([`MIGRATOR`](super::super::MIGRATOR)), in order.
    fn database() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        for migration in super::super::MIGRATOR.iter() {
            conn.execute_batch(&migration.sql).expect("migrate");
        }
        // Messages without visitor and conversation rows will do here.
        conn.pragma_update(None, "foreign_keys", false)
            .expect("foreign keys off");
        conn
    }

    fn message(
        conversation_id: &str,
        seq: u64,
        author: (AuthorKind, &str),
        client_id: &str,
    ) -> Message {
        Message {
            conversation_id: conversation_id.to_owned(),
            seq,
            id: format!("{conversation_id}-{seq}"),
            client_id: client_id.to_owned(),
            author: Author {
                kind: author.0,
                id: author.1.to_owned(),
                name: author.1.to_owned(),
            },
            text: format!("text {seq}"),
            at: time::OffsetDateTime::UNIX_EPOCH,
            internal: false,
            event: None,
            link: None,
            attachments: Vec::new(),
        }
    }

    /// Writes the row, as the writer does, and tells `ids` of it.
    fn insert(conn: &Connection, ids: &mut ClientIds, message: &Message) {
        super::super::statements::insert_row(conn, message).expect("insert");
        ids.stored(message);
    }

    const ANN: (AuthorKind, &str) = (AuthorKind::Visitor, "ann");
    const BOB: (AuthorKind, &str) = (AuthorKind::Agent, "bob");

    fn find(
        conn: &Connection,
        ids: &mut ClientIds,
        conversation: &str,
        author: (AuthorKind, &str),
        client_id: &str,
    ) -> Option<Message> {
        ids.find(conn, conversation, author, client_id)
            .expect("find")
    }

    #[test]
    fn rows_stored_before_a_restart_are_found() {
        let conn = database();
        let original = message("k1", 1, ANN, "c1");
        insert(&conn, &mut ClientIds::new(10), &original);
        insert(&conn, &mut ClientIds::new(10), &message("k1", 2, BOB, "c2"));

        let mut ids = ClientIds::new(10);
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), Some(original));
        assert_eq!(
            find(&conn, &mut ids, "k1", ANN, "c2"),
            None,
            "another author's id"
        );
        assert_eq!(
            find(&conn, &mut ids, "k1", BOB, "c1"),
            None,
            "another author's id"
        );
        assert_eq!(
            find(&conn, &mut ids, "k2", ANN, "c1"),
            None,
            "another conversation"
        );
    }

    #[test]
    fn an_insert_is_found_by_the_next_lookup() {
        let conn = database();
        let mut ids = ClientIds::new(10);
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), None);
        let original = message("k1", 1, ANN, "c1");
        insert(&conn, &mut ids, &original);
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), Some(original));
    }

    #[test]
    fn a_remembered_id_without_its_row_is_a_new_message() {
        let conn = database();
        let mut ids = ClientIds::new(10);
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), None);
        // As after a rolled-back insert: memory has it, the table does not.
        ids.stored(&message("k1", 1, ANN, "c1"));
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), None);
    }

    #[test]
    fn past_the_limit_the_oldest_conversations_are_forgotten_and_read_again() {
        let conn = database();
        // Room for two conversations and four hashes.
        let mut ids = ClientIds::new(2 * CONVERSATION_COST + 4);
        let first = message("k1", 1, ANN, "c1");
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), None);
        insert(&conn, &mut ids, &first);
        insert(&conn, &mut ids, &message("k1", 2, ANN, "c2"));
        for seq in 1..=3 {
            let client_id = format!("b{seq}");
            assert_eq!(find(&conn, &mut ids, "k2", BOB, &client_id), None);
            insert(&conn, &mut ids, &message("k2", seq, BOB, &client_id));
        }
        assert!(ids.total <= ids.most, "{} remembered", ids.total);
        assert!(!ids.remembered("k1"), "the least recently used went first");
        assert!(ids.remembered("k2"));
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c1"), Some(first));
        assert!(ids.remembered("k1"));
    }

    #[test]
    fn a_conversation_alone_over_the_limit_stays_remembered() {
        let conn = database();
        let mut ids = ClientIds::new(CONVERSATION_COST + 1);
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c0"), None);
        for seq in 1..=3 {
            insert(
                &conn,
                &mut ids,
                &message("k1", seq, ANN, &format!("c{seq}")),
            );
        }
        assert!(ids.remembered("k1"), "not read again with every message");
        let last = message("k1", 3, ANN, "c3");
        assert_eq!(find(&conn, &mut ids, "k1", ANN, "c3"), Some(last));
    }
}
