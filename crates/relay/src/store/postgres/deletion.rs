//! Deleting resolved conversations on PostgreSQL (see `store::deletion`),
//! in one transaction. Each conversation is locked as it is checked, in id
//! order, so relays sweeping at once wait for each other (never deadlock)
//! and the second finds it gone; a send racing the deletion either reopens
//! the conversation first (and it is kept) or finds it gone.

use sqlx::postgres::PgPool;

use super::super::StoreError;
use super::super::deletion::{Deleted, FILES, ROWS, bound};
use super::writes::{begin, commit};

pub(super) async fn delete_conversations(
    pool: &PgPool,
    ids: &[String],
) -> Result<Deleted, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = begin(pool).await?;
    let mut deleted = Deleted::default();
    for id in &ids {
        let visitor_id: Option<String> = sqlx::query_scalar(
            "SELECT visitor_id FROM conversations WHERE id = $1 AND status = 'resolved'
             FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(visitor_id) = visitor_id else {
            continue;
        };
        for (key, sql) in FILES {
            let named: Vec<(String, Option<String>)> = sqlx::query_as(sql)
                .bind(bound(key, id, &visitor_id))
                .fetch_all(&mut *tx)
                .await?;
            for (digest, thumbnail) in named {
                deleted.named(digest, thumbnail);
            }
        }
        sqlx::query("DELETE FROM message_search WHERE conversation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for (key, sql) in ROWS {
            sqlx::query(sql)
                .bind(bound(key, id, &visitor_id))
                .execute(&mut *tx)
                .await?;
        }
        deleted.conversations.push(id.clone());
    }
    commit(tx).await?;
    Ok(deleted)
}
