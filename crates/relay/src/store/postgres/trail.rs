//! The visitor's page trail: new pages in, the oldest beyond the bound out,
//! the newest shown as the page the visitor is on, and the cluster told.

use kefu_protocol::trail::{MAX_TRAIL, PageView};
use sqlx::postgres::PgPool;

use super::super::{StoreError, to_millis};
use super::bus;
use super::writes::{self, visitor_conversation};
use crate::cluster::ChangeRef;

pub(super) async fn record_page_views(
    pool: &PgPool,
    visitor_id: &str,
    views: &[PageView],
) -> Result<bool, StoreError> {
    let mut tx = writes::begin(pool).await?;
    let Some(conversation_id) = visitor_conversation(&mut tx, visitor_id).await? else {
        return Ok(false);
    };
    let Some(newest) = views.last() else {
        return Ok(true);
    };
    // Lock the visitor's row first: concurrent writers of one trail take
    // turns, so the bound holds when both commit.
    sqlx::query(
        "UPDATE visitors SET page_url = $1, page_title = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(&newest.url)
    .bind(&newest.title)
    .bind(to_millis(newest.at))
    .bind(visitor_id)
    .execute(&mut *tx)
    .await?;
    let mut ids = Vec::with_capacity(views.len());
    for view in views {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO page_views (visitor_id, url, title, referrer, at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(visitor_id)
        .bind(&view.url)
        .bind(&view.title)
        .bind(&view.referrer)
        .bind(to_millis(view.at))
        .fetch_one(&mut *tx)
        .await?;
        ids.push(id);
    }
    sqlx::query(
        "DELETE FROM page_views WHERE visitor_id = $1 AND id NOT IN (
             SELECT id FROM page_views WHERE visitor_id = $1 ORDER BY at DESC, id DESC LIMIT $2)",
    )
    .bind(visitor_id)
    .bind(MAX_TRAIL as i64)
    .execute(&mut *tx)
    .await?;
    let change = ChangeRef::PageViews {
        conversation_id,
        ids,
    };
    bus::notify(&mut tx, &change).await?;
    writes::commit(tx).await?;
    Ok(true)
}
