//! Uploaded files on PostgreSQL: recording one and forgetting those never
//! sent. The SQL is shared with SQLite (`store::files`); attaching pending
//! ones to the message that sends them is part of the message's write
//! (`kefu_attach_files`, migration 0012).

use sqlx::PgPool;

use super::super::files::{INSERT_FILE, NewFile, PRUNE_FILES, int_to_sql};
use super::super::{StoreError, now_millis, to_millis};

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
