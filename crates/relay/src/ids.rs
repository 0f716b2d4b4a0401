//! Identifiers the relay makes: connection ids, which live as long as the
//! process, and the random ids of stored rows and sessions.
//!
//! A leaf, so that the store, the hub and the transport can all name a
//! connection and mint ids without depending on one another (or on
//! credentials, which is what [`crate::auth`] is about).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one client connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// As carried between cluster nodes; meaningful only on its own node.
    pub fn raw(self) -> u64 {
        self.0
    }

    pub fn from_raw(raw: u64) -> ConnId {
        ConnId(raw)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A random opaque identifier (UUIDv7: time-ordered, so indexes stay compact).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
