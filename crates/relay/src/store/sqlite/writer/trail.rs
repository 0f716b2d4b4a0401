//! The visitor's page trail: new pages in, the oldest beyond the bound out,
//! and the newest shown as the page the visitor is on.

use kefu_protocol::trail::{MAX_TRAIL, PageView};
use rusqlite::Connection;

use super::super::super::{Change, StoreError, to_millis};
use super::super::statements::execute;
use super::conversation::{require_summary, visitor_conversation};
use super::op::{Applied, Written};

pub(super) fn record_page_views(
    conn: &Connection,
    visitor_id: &str,
    views: &[PageView],
) -> Result<Applied, StoreError> {
    let Some(conversation_id) = visitor_conversation(conn, visitor_id)? else {
        return Ok((Written::NoConversation, Vec::new()));
    };
    let Some(newest) = views.last() else {
        return Ok((Written::Done, Vec::new()));
    };
    for view in views {
        execute(
            conn,
            "INSERT INTO page_views (visitor_id, url, title, referrer, at) VALUES (?, ?, ?, ?, ?)",
            (
                visitor_id,
                &view.url,
                &view.title,
                &view.referrer,
                to_millis(view.at),
            ),
        )?;
    }
    execute(
        conn,
        "DELETE FROM page_views WHERE visitor_id = ?1 AND id NOT IN (
             SELECT id FROM page_views WHERE visitor_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2)",
        (visitor_id, MAX_TRAIL as i64),
    )?;
    // The visitor's referrer stays where they came from to the site.
    execute(
        conn,
        "UPDATE visitors SET page_url = ?, page_title = ?, updated_at = ? WHERE id = ?",
        (&newest.url, &newest.title, to_millis(newest.at), visitor_id),
    )?;
    let summary = require_summary(conn, &conversation_id)?;
    let change = Change::PageViews {
        summary,
        views: views.to_vec(),
    };
    Ok((Written::Done, vec![change]))
}
