//! `kefu-relay export`: conversations with their messages as JSON Lines,
//! one conversation per line, for archiving or loading into other tools.
//!
//! The store is read in pages (of conversations, then of each one's
//! messages), so memory holds one page of ids and one conversation at a
//! time however large the database is. It reads while the relay runs; a
//! message committed during the export may or may not be in it.

use std::io::Write;

use kefu_protocol::Message;
use kefu_protocol::agent::ConversationSummary;
use kefu_protocol::trail::PageView;
use serde::Serialize;
use time::OffsetDateTime;

use crate::store::{Page, Store, StoreError};

/// Conversations read per query.
const CONVERSATION_PAGE: u32 = 200;
/// Messages read per query.
const MESSAGE_PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the store")]
    Store(#[from] StoreError),
    #[error("cannot write the export")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is neither a date (2026-01-31) nor an RFC 3339 time (2026-01-31T08:00:00Z)")]
pub struct BadDate(String);

/// One line of the export: the conversation's summary fields, then all its
/// messages in `seq` order, internal notes and timeline events included
/// (`"internal": true`), then the visitor's page trail as stored (oldest
/// first, the newest [`MAX_TRAIL`](kefu_protocol::trail::MAX_TRAIL) at most).
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    summary: &'a ConversationSummary,
    messages: &'a [Message],
    page_views: &'a [PageView],
}

/// `2026-01-31` (midnight UTC) or an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<OffsetDateTime, BadDate> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let date_only = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")
        .ok()
        .and_then(|format| time::Date::parse(text, &format).ok());
    date_only
        .map(|date| date.midnight().assume_utc())
        .ok_or_else(|| BadDate(text.to_owned()))
}

/// Writes every conversation active since `since` (all without it) to
/// `out`; answers how many.
pub async fn write_jsonl(
    store: &dyn Store,
    since: Option<OffsetDateTime>,
    mut out: impl Write,
) -> Result<u64, ExportError> {
    let mut written = 0;
    let mut after: Option<String> = None;
    loop {
        let ids = store
            .conversation_ids(since, after.as_deref(), CONVERSATION_PAGE)
            .await?;
        for id in &ids {
            // Conversations are never deleted, but be exact if one were.
            let Some(summary) = store.conversation(id).await? else {
                continue;
            };
            let messages = all_messages(store, id).await?;
            let page_views = store.page_trail(&summary.visitor.id).await?;
            serde_json::to_writer(
                &mut out,
                &Line {
                    summary: &summary,
                    messages: &messages,
                    page_views: &page_views,
                },
            )
            .map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        match ids.last() {
            Some(last) if ids.len() == CONVERSATION_PAGE as usize => after = Some(last.clone()),
            _ => break,
        }
    }
    out.flush()?;
    Ok(written)
}

async fn all_messages(
    store: &dyn Store,
    conversation_id: &str,
) -> Result<Vec<Message>, StoreError> {
    let mut messages: Vec<Message> = Vec::new();
    loop {
        let after = messages.last().map_or(0, |message| message.seq);
        let page = Page::After {
            after,
            limit: MESSAGE_PAGE,
        };
        let batch = store.messages(conversation_id, page, true).await?;
        let full = batch.len() == MESSAGE_PAGE as usize;
        messages.extend(batch);
        if !full {
            return Ok(messages);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_a_time() {
        let date = parse_since("2026-01-31").expect("date");
        assert_eq!(date.unix_timestamp(), 1_769_817_600);
        let time = parse_since("2026-01-31T08:00:00+08:00").expect("time");
        assert_eq!(time, date);
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("2026-02-30").is_err());
    }
}
