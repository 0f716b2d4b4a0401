//! Uploaded files on PostgreSQL: recording one, attaching pending ones in
//! the transaction of the message that sends them, and forgetting those
//! never sent. The SQL is shared with SQLite (`store::files`).

use kefu_protocol::Attachment;
use sqlx::PgPool;

use super::super::files::{
    ATTACH_FILE, FILE_SELECT, FileRow, INSERT_FILE, NewFile, PRUNE_FILES, Sending, StoredFile,
    attachments_refused, int_to_sql,
};
use super::super::{StoreError, now_millis, to_millis};
use super::writes::Tx;

pub(super) async fn add_file(pool: &PgPool, file: &NewFile) -> Result<(), StoreError> {
    let attachment = &file.attachment;
    sqlx::query(INSERT_FILE)
        .bind(&attachment.id)
        .bind(&file.digest)
        .bind(&attachment.name)
        .bind(int_to_sql(attachment.size))
        .bind(&attachment.content_type)
        .bind(attachment.width.map(i64::from))
        .bind(attachment.height.map(i64::from))
        .bind(&file.thumbnail_digest)
        .bind(
            attachment
                .thumbnail
                .map(|thumbnail| i64::from(thumbnail.width)),
        )
        .bind(
            attachment
                .thumbnail
                .map(|thumbnail| i64::from(thumbnail.height)),
        )
        .bind(file.owner.kind.as_str())
        .bind(&file.owner.id)
        .bind(&file.conversation_id)
        .bind(to_millis(now_millis()))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn prune_files(pool: &PgPool, before_ms: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(PRUNE_FILES)
        .bind(before_ms)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Attaches the author's pending uploads `ids` to the message being
/// written in `tx`; any id that is not one refuses the whole send.
pub(super) async fn attach_files(
    tx: &mut Tx,
    sending: &Sending<'_>,
    ids: &[String],
) -> Result<Vec<Attachment>, StoreError> {
    let mut attachments = Vec::with_capacity(ids.len());
    for id in ids {
        let done = sqlx::query(ATTACH_FILE)
            .bind(sending.conversation_id)
            .bind(sending.message_id)
            .bind(sending.public)
            .bind(id)
            .bind(sending.author.0.as_str())
            .bind(sending.author.1)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(attachments_refused());
        }
        let row: FileRow = sqlx::query_as(&format!("{FILE_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        attachments.push(StoredFile::try_from(row)?.attachment);
    }
    Ok(attachments)
}
