//! Files in conversations: their rows, the reads both backends answer with
//! the same SQL, and the rule of who may fetch one.
//!
//! A file's bytes are in the blob store (`crate::blobs`); its row, written
//! only once those are durable, says whose it is and where it belongs. An
//! upload is *pending* (its uploader's alone) until a `send` names it; the
//! send attaches it to its message in the message's own transaction (see
//! each backend's `attach_files`), so an acknowledged message always names
//! rows, and rows always name durable blobs.

use async_trait::async_trait;
use kefu_protocol::files::Thumbnail;
use kefu_protocol::{Attachment, AuthorKind};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Type};
use time::OffsetDateTime;

use super::reads::ReadSide;
use super::rows::row;
use super::{StoreError, to_time};

/// Selects a [`FileRow`]; callers append `WHERE …`. `$1`-style parameters
/// read the same in SQLite and PostgreSQL.
pub(super) const FILE_SELECT: &str = "SELECT id, digest, name, size, content_type, width, height,
        thumbnail_digest, thumbnail_width, thumbnail_height,
        owner_kind, owner_id, conversation_id, message_id, public, created_at FROM files";

/// Who uploaded a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOwner {
    pub kind: AuthorKind,
    pub id: String,
}

/// A file whose blob is durable, to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub attachment: Attachment,
    /// The blob's name in the blob store.
    pub digest: String,
    /// Its thumbnail's blob, when `attachment.thumbnail` is set; durable too.
    pub thumbnail_digest: Option<String>,
    pub owner: FileOwner,
    /// The conversation it is for, when known at upload.
    pub conversation_id: Option<String>,
}

/// A file as its row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub attachment: Attachment,
    pub digest: String,
    /// Set exactly when `attachment.thumbnail` is.
    pub thumbnail_digest: Option<String>,
    pub owner: FileOwner,
    pub conversation_id: Option<String>,
    /// The message it was sent with; `None` while pending.
    pub message_id: Option<String>,
    /// Sent with a message the visitor sees (not an internal note).
    pub public: bool,
    pub created_at: OffsetDateTime,
}

/// Who asks for a file.
#[derive(Debug, Clone, Copy)]
pub enum FileReader<'a> {
    /// A visitor, with the conversation they have (if any).
    Visitor {
        visitor_id: &'a str,
        conversation_id: Option<&'a str>,
    },
    /// Any enabled agent reads every conversation.
    Agent { agent_id: &'a str },
}

impl StoredFile {
    /// Whether `reader` may fetch this file: its uploader always; a visitor
    /// a file sent in their conversation and not in an internal note; an
    /// agent any file sent in a conversation.
    pub fn readable_by(&self, reader: FileReader<'_>) -> bool {
        match reader {
            FileReader::Visitor {
                visitor_id,
                conversation_id,
            } => {
                self.owned_by(AuthorKind::Visitor, visitor_id)
                    || (self.public
                        && conversation_id.is_some()
                        && self.conversation_id.as_deref() == conversation_id)
            }
            FileReader::Agent { agent_id } => {
                self.owned_by(AuthorKind::Agent, agent_id) || self.message_id.is_some()
            }
        }
    }

    fn owned_by(&self, kind: AuthorKind, id: &str) -> bool {
        self.owner.kind == kind && self.owner.id == id
    }
}

row! {
    pub(super) struct FileRow {
        id: String,
        digest: String,
        name: String,
        size: i64,
        content_type: String,
        width: Option<i64>,
        height: Option<i64>,
        thumbnail_digest: Option<String>,
        thumbnail_width: Option<i64>,
        thumbnail_height: Option<i64>,
        owner_kind: String,
        owner_id: String,
        conversation_id: Option<String>,
        message_id: Option<String>,
        public: bool,
        created_at: i64,
    }
}

impl TryFrom<FileRow> for StoredFile {
    type Error = StoreError;

    fn try_from(row: FileRow) -> Result<StoredFile, StoreError> {
        let dimension = |value: Option<i64>| value.and_then(|v| u32::try_from(v).ok());
        let thumbnail = match (
            &row.thumbnail_digest,
            dimension(row.thumbnail_width),
            dimension(row.thumbnail_height),
        ) {
            (Some(_), Some(width), Some(height)) => Some(Thumbnail { width, height }),
            _ => None,
        };
        Ok(StoredFile {
            attachment: Attachment {
                id: row.id,
                name: row.name,
                size: u64::try_from(row.size).unwrap_or(0),
                content_type: row.content_type,
                width: dimension(row.width),
                height: dimension(row.height),
                thumbnail,
            },
            digest: row.digest,
            thumbnail_digest: thumbnail.and(row.thumbnail_digest),
            owner: FileOwner {
                kind: AuthorKind::parse(&row.owner_kind).ok_or_else(|| {
                    StoreError::Corrupt(format!("file owner kind {:?}", row.owner_kind))
                })?,
                id: row.owner_id,
            },
            conversation_id: row.conversation_id,
            message_id: row.message_id,
            public: row.public,
            created_at: to_time(row.created_at),
        })
    }
}

/// The file reads of a [`super::Store`].
#[async_trait]
pub trait FileReads: Send + Sync {
    async fn file(&self, id: &str) -> Result<Option<StoredFile>, StoreError>;

    /// Bytes counted against a conversation's budget: the files sent in
    /// `conversation_id` plus `owner`'s pending uploads.
    async fn file_bytes(
        &self,
        conversation_id: Option<&str>,
        owner: &FileOwner,
    ) -> Result<u64, StoreError>;

    /// Every blob digest some row names, files' and thumbnails': the
    /// blobs to keep.
    async fn file_digests(&self) -> Result<Vec<String>, StoreError>;

    /// Whether some row names `digest`, as a file or a thumbnail.
    async fn names_digest(&self, digest: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T> FileReads for T
where
    T: ReadSide,
    for<'q> <T::Db as Database>::Arguments<'q>: IntoArguments<'q, T::Db>,
    for<'q> &'q str: Encode<'q, T::Db> + Type<T::Db>,
    for<'q> Option<&'q str>: Encode<'q, T::Db> + Type<T::Db>,
    for<'r> String: Decode<'r, T::Db> + Type<T::Db>,
    for<'r> i64: Decode<'r, T::Db> + Type<T::Db>,
    usize: ColumnIndex<<T::Db as Database>::Row>,
    for<'r> FileRow: FromRow<'r, <T::Db as Database>::Row>,
    for<'c> &'c mut <T::Db as Database>::Connection: Executor<'c, Database = T::Db>,
{
    async fn file(&self, id: &str) -> Result<Option<StoredFile>, StoreError> {
        let (_, pool) = self.read_side();
        let row: Option<FileRow> = sqlx::query_as(&format!("{FILE_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(StoredFile::try_from).transpose()
    }

    async fn file_bytes(
        &self,
        conversation_id: Option<&str>,
        owner: &FileOwner,
    ) -> Result<u64, StoreError> {
        let (_, pool) = self.read_side();
        let bytes: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files
             WHERE conversation_id = $1
                OR (owner_kind = $2 AND owner_id = $3 AND message_id IS NULL)",
        )
        .bind(conversation_id)
        .bind(owner.kind.as_str())
        .bind(owner.id.as_str())
        .fetch_one(pool)
        .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    async fn file_digests(&self) -> Result<Vec<String>, StoreError> {
        let (_, pool) = self.read_side();
        Ok(sqlx::query_scalar(
            "SELECT digest FROM files
             UNION SELECT thumbnail_digest FROM files WHERE thumbnail_digest IS NOT NULL",
        )
        .fetch_all(pool)
        .await?)
    }

    async fn names_digest(&self, digest: &str) -> Result<bool, StoreError> {
        let (_, pool) = self.read_side();
        let named: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM files WHERE digest = $1
             UNION ALL SELECT CAST(1 AS BIGINT) FROM files WHERE thumbnail_digest = $1
             LIMIT 1",
        )
        .bind(digest)
        .fetch_optional(pool)
        .await?;
        Ok(named.is_some())
    }
}

/// Records a [`NewFile`]; binds its id, digest, name, size, content type,
/// width, height, thumbnail digest, width and height, owner kind, owner
/// id, conversation id and now (ms).
pub(super) const INSERT_FILE: &str = "INSERT INTO files (id, digest, name, size, content_type,
        width, height, thumbnail_digest, thumbnail_width, thumbnail_height,
        owner_kind, owner_id, conversation_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// Attaches one pending upload to the message being written; binds the
/// conversation id, the message id, whether it is public, the file id, and
/// the author's kind and id. Changes one row, or none when the file is not
/// the author's pending upload (for this conversation).
pub(super) const ATTACH_FILE: &str = "UPDATE files SET conversation_id = $1, message_id = $2,
        public = $3
    WHERE id = $4 AND owner_kind = $5 AND owner_id = $6 AND message_id IS NULL
      AND (conversation_id IS NULL OR conversation_id = $1)";

/// Forgets pending uploads older than the bound time (ms).
pub(super) const PRUNE_FILES: &str =
    "DELETE FROM files WHERE message_id IS NULL AND created_at < $1";

/// Who sends a message with attachments, and where it goes.
pub(super) struct Sending<'a> {
    pub author: (AuthorKind, &'a str),
    pub conversation_id: &'a str,
    pub message_id: &'a str,
    pub public: bool,
}

/// A file size or dimension as SQL's signed integers keep it.
pub(super) fn int_to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Why a send's attachments were refused; nothing of the send is stored.
pub(super) fn attachments_refused() -> StoreError {
    StoreError::NotFound("attachment (an unsent upload of yours)")
}
