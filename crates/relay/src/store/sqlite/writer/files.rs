//! Uploaded files: recording one, attaching pending ones to the message
//! that sends them, and forgetting those never sent. The SQL is shared
//! with PostgreSQL (`store::files`).

use kefu_protocol::Attachment;
use rusqlite::Connection;

use super::super::super::files::{
    ATTACH_FILE, FILE_SELECT, FileRow, INSERT_FILE, NewFile, PRUNE_FILES, Sending, StoredFile,
    attachments_refused, int_to_sql,
};
use super::super::super::{StoreError, now_millis, to_millis};
use super::super::statements::{execute, query_optional};
use super::op::{Applied, Written};

pub(super) fn add_file(conn: &Connection, file: &NewFile) -> Result<Applied, StoreError> {
    let attachment = &file.attachment;
    execute(
        conn,
        INSERT_FILE,
        (
            &attachment.id,
            &file.digest,
            &attachment.name,
            int_to_sql(attachment.size),
            &attachment.content_type,
            attachment.width,
            attachment.height,
            &file.thumbnail_digest,
            attachment.thumbnail.map(|thumbnail| thumbnail.width),
            attachment.thumbnail.map(|thumbnail| thumbnail.height),
            file.owner.kind.as_str(),
            &file.owner.id,
            &file.conversation_id,
            to_millis(now_millis()),
        ),
    )?;
    Ok((Written::Done, Vec::new()))
}

pub(super) fn prune_files(conn: &Connection, before_ms: i64) -> Result<Applied, StoreError> {
    let removed = execute(conn, PRUNE_FILES, [before_ms])?;
    Ok((Written::Count(removed as u64), Vec::new()))
}

/// Attaches the author's pending uploads `ids` to the message being
/// written; any id that is not one refuses the whole send.
pub(super) fn attach_files(
    conn: &Connection,
    sending: &Sending<'_>,
    ids: &[String],
) -> Result<Vec<Attachment>, StoreError> {
    let mut attachments = Vec::with_capacity(ids.len());
    for id in ids {
        let attached = execute(
            conn,
            ATTACH_FILE,
            (
                sending.conversation_id,
                sending.message_id,
                sending.public,
                id,
                sending.author.0.as_str(),
                sending.author.1,
            ),
        )?;
        if attached != 1 {
            return Err(attachments_refused());
        }
        let row = query_optional(
            conn,
            &format!("{FILE_SELECT} WHERE id = $1"),
            [id],
            FileRow::from_rusqlite,
        )?
        .ok_or_else(attachments_refused)?;
        attachments.push(StoredFile::try_from(row)?.attachment);
    }
    Ok(attachments)
}
