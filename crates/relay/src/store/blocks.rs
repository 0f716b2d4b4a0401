//! Blocked client addresses (`kefu-relay block`), as both backends store
//! them: a CIDR range, why, since when and until when.

use time::OffsetDateTime;

use super::{to_millis, to_time};

/// One blocked range of client addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// CIDR form, as `203.0.113.0/24` or `2001:db8::1/128`.
    pub range: String,
    pub reason: Option<String>,
    pub created_at: OffsetDateTime,
    /// `None`: until unblocked.
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
pub(super) struct BlockRow {
    range: String,
    reason: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
}

impl From<BlockRow> for Block {
    fn from(row: BlockRow) -> Self {
        Block {
            range: row.range,
            reason: row.reason,
            created_at: to_time(row.created_at),
            expires_at: row.expires_at.map(to_time),
        }
    }
}

impl Block {
    /// The columns to write, in the order `range, reason, created_at,
    /// expires_at`.
    pub(super) fn columns(&self) -> (&str, Option<&str>, i64, Option<i64>) {
        (
            &self.range,
            self.reason.as_deref(),
            to_millis(self.created_at),
            self.expires_at.map(to_millis),
        )
    }
}
