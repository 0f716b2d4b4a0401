//! The retention setting: a running relay deletes the resolved
//! conversations with nothing new for longer than `retention`, with their
//! visitors and files, at start and then hourly.
//!
//! A sweep deletes in batches of [`BATCH`], each one write, so the writer
//! serves other requests between them. Relays of a cluster may sweep at
//! once: each deletion re-checks its conversation under a lock and skips
//! one already gone (see `store::deletion`).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::blobs::BlobStore;
use crate::prune::{self, Erased, PruneError};
use crate::store::Store;

/// How often a relay sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Conversations deleted in one write.
pub const BATCH: u32 = 100;
/// Expired conversations read at a time. Each read scans the conversations
/// (no index on `updated_at`: it would cost every message a page), so
/// they are read many batches at once, not once a batch.
const SCAN: u32 = 100 * BATCH;

/// Deletes every resolved conversation with nothing new since before
/// `before`, in batches, until none is left or `stopping` turns true.
pub async fn sweep(
    store: &dyn Store,
    blobs: Option<&dyn BlobStore>,
    before: OffsetDateTime,
    stopping: &watch::Receiver<bool>,
) -> Result<Erased, PruneError> {
    let mut total = Erased::default();
    while !*stopping.borrow() {
        let ids = store.expired_conversations(before, SCAN).await?;
        if ids.is_empty() {
            break;
        }
        let mut deleted_any = false;
        for batch in ids.chunks(BATCH as usize) {
            if *stopping.borrow() {
                break;
            }
            let erased = prune::delete_conversations(store, blobs, batch).await?;
            deleted_any |= !erased.conversations.is_empty();
            total.conversations.extend(erased.conversations);
            total.blobs += erased.blobs;
        }
        // All skipped (reopened meanwhile, or deleted by another relay):
        // the next read would find the same ones again.
        if !deleted_any {
            break;
        }
    }
    Ok(total)
}

/// Sweeps at start and every [`SWEEP_EVERY`] until the relay stops. A
/// failed sweep is logged and tried again at the next.
pub async fn run(
    store: Arc<dyn Store>,
    blobs: Option<Arc<dyn BlobStore>>,
    retention: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
        let before = OffsetDateTime::now_utc() - retention;
        match sweep(store.as_ref(), blobs.as_deref(), before, &stopping).await {
            Ok(erased) if !erased.conversations.is_empty() => tracing::info!(
                conversations = erased.conversations.len(),
                files = erased.blobs,
                "deleted conversations past the retention"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the retention sweep failed"),
        }
    }
}
