//! Search indexing after the commit: what searches and the writer share.
//!
//! A message's transaction only queues it for the index (migrations 0015
//! and 0017, `statements::insert_row`); the writer thread indexes the
//! queue (the backlog) later, many rows per transaction
//! ([`writer::Indexer`](super::writer::Indexer)). Two things tell it when:
//!
//! - [`tick`]: [`INDEX_DELAY`] after a commit left the backlog non-empty,
//!   so a message nobody searches for is indexed within about
//!   2 × [`INDEX_DELAY`] of its ack while the writer keeps up.
//! - a search: before it reads, it waits until the index holds every
//!   message committed when it started ([`IndexProgress::caught_up`]). So a
//!   search sees every message acknowledged before it, whatever the delay,
//!   after a restart too (the writer then starts with the backlog the last
//!   process left).
//!
//! Progress is counted in backlog ids, which grow with every message: the
//! writer publishes the highest id committed before it replies to anyone,
//! and the highest id indexed after each indexing transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::super::StoreError;

/// How long the writer lets committed messages wait before it indexes
/// them unasked. Longer gathers more rows per indexing transaction (each
/// costs a new FTS5 segment, and merging segments later, whatever its
/// size); shorter makes messages searchable sooner by anyone not searching
/// (a search never waits for it: it asks).
pub(super) const INDEX_DELAY: Duration = Duration::from_millis(200);

pub(super) struct IndexProgress {
    /// The highest backlog id committed; set before any of its messages is
    /// acknowledged.
    written: AtomicI64,
    /// The highest backlog id whose message is in the index.
    indexed: watch::Sender<i64>,
    /// Wakes [`tick`] when a commit leaves messages to index.
    waiting: Notify,
}

impl IndexProgress {
    pub(super) fn new(indexed: i64, written: i64) -> Arc<IndexProgress> {
        Arc::new(IndexProgress {
            written: AtomicI64::new(written),
            indexed: watch::Sender::new(indexed),
            waiting: Notify::new(),
        })
    }

    /// The writer committed backlog ids up to `written`.
    pub(super) fn committed(&self, written: i64) {
        self.written.store(written, Ordering::Release);
        if written > *self.indexed.borrow() {
            // One stored permit at most: ticks come every INDEX_DELAY
            // while messages keep coming, none while the relay is idle.
            self.waiting.notify_one();
        }
    }

    /// The writer indexed backlog ids up to `indexed`.
    pub(super) fn indexed(&self, indexed: i64) {
        self.indexed.send_replace(indexed);
    }

    /// Returns once the index holds every message committed when it was
    /// called, asking the writer (with `ask`, sent on `writes`) to index
    /// them now; refused past `deadline` with [`StoreError::TimedOut`].
    pub(super) async fn caught_up<R>(
        &self,
        (writes, ask): (&mpsc::Sender<R>, R),
        deadline: Instant,
        budget: Duration,
    ) -> Result<(), StoreError> {
        let target = self.written.load(Ordering::Acquire);
        let mut indexed = self.indexed.subscribe();
        if *indexed.borrow_and_update() >= target {
            return Ok(());
        }
        let caught_up = async {
            writes.send(ask).await.map_err(|_| StoreError::Closed)?;
            // The sender lives as long as `self`: this ends by the deadline.
            indexed
                .wait_for(|&upto| upto >= target)
                .await
                .map_err(|_| StoreError::Closed)?;
            Ok(())
        };
        tokio::time::timeout_at(deadline, caught_up)
            .await
            .map_err(|_| StoreError::TimedOut(budget))?
    }
}

/// Asks the writer to index (sends `ask()` on `writes`), [`INDEX_DELAY`]
/// after a commit left messages to index; ends with the store's last
/// sender.
pub(super) async fn tick<R>(
    progress: Arc<IndexProgress>,
    writes: mpsc::WeakSender<R>,
    ask: impl Fn() -> R,
) {
    loop {
        progress.waiting.notified().await;
        tokio::time::sleep(INDEX_DELAY).await;
        let Some(writes) = writes.upgrade() else {
            return;
        };
        if writes.send(ask()).await.is_err() {
            return;
        }
    }
}
