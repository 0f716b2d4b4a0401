//! Removing files nobody can reach (`kefu-relay prune-files`): uploads
//! never sent, blobs no row names, and what a crash left half-written; and
//! deleting conversations with their files (`kefu-relay
//! delete-conversation`, the retention setting).
//!
//! Rows go first, then blobs: a blob is removed only when no row names it
//! and it was put before a moment the rows were read after, so an upload
//! between its blob and its row (a few milliseconds) is never robbed of its
//! blob. Blobs are content-addressed: one that a remaining message shares
//! stays.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::blobs::{BlobError, BlobStore};
use crate::store::{Deleted, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
}

/// What a prune removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Uploads never sent, forgotten.
    pub unsent: u64,
    /// Blobs no row named, removed.
    pub blobs: usize,
    /// Half-written files of crashed uploads, removed.
    pub staged: usize,
}

/// Forgets uploads not sent within `unsent_after`, then removes blobs no
/// row names that are older than `grace`.
pub async fn prune_files(
    store: &dyn Store,
    blobs: &dyn BlobStore,
    unsent_after: Duration,
    grace: Duration,
) -> Result<Pruned, PruneError> {
    let cutoff = time::OffsetDateTime::now_utc() - unsent_after;
    let unsent = store.prune_files(cutoff).await?;
    let staged = blobs.sweep_staging(grace).await?;
    let put_before = SystemTime::now() - grace;
    let removed = remove_orphans(store, blobs, put_before).await?;
    Ok(Pruned {
        unsent,
        blobs: removed,
        staged,
    })
}

/// What a deletion removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Erased {
    /// The conversations deleted, with their visitors.
    pub conversations: Vec<String>,
    /// Their blobs (files and thumbnails) that no other row named, removed.
    pub blobs: usize,
}

/// Deletes the resolved conversations among `ids` (see
/// [`Store::delete_conversations`]), then the blobs their files named that
/// no remaining row names. Without a blob store (a PostgreSQL relay with no
/// files configured) there are no blobs to remove.
pub async fn delete_conversations(
    store: &dyn Store,
    blobs: Option<&dyn BlobStore>,
    ids: &[String],
) -> Result<Erased, PruneError> {
    let started = SystemTime::now();
    let Deleted {
        conversations,
        digests,
    } = store.delete_conversations(ids).await?;
    let removed = match blobs {
        Some(blobs) if !digests.is_empty() => {
            let candidates: HashSet<String> = digests.into_iter().collect();
            // A blob put again since the deletion began (the same bytes
            // uploaded anew, whose row may not be written yet) is left to
            // `prune-files`.
            remove_if_unnamed(store, blobs, candidates, started).await?
        }
        _ => 0,
    };
    crate::telemetry::deleted(conversations.len(), removed);
    Ok(Erased {
        conversations,
        blobs: removed,
    })
}

/// Removes every stored blob that no row names and that was put before
/// `put_before`; answers how many. Lists the whole store: for the daily
/// `prune-files`, not for every deletion.
async fn remove_orphans(
    store: &dyn Store,
    blobs: &dyn BlobStore,
    put_before: SystemTime,
) -> Result<usize, PruneError> {
    // Listed before the rows are read: a blob put after this is not seen.
    let stored = blobs.list().await?;
    let named: HashSet<String> = store.file_digests().await?.into_iter().collect();
    let mut removed = 0;
    for (digest, put) in stored {
        if put < put_before && !named.contains(&digest) {
            blobs.remove(&digest).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes those of `candidates` that no row names and that were put
/// before `put_before`; answers how many. One look-up each, by index, so a
/// deletion costs what it deleted, however many files the relay holds.
async fn remove_if_unnamed(
    store: &dyn Store,
    blobs: &dyn BlobStore,
    candidates: HashSet<String>,
    put_before: SystemTime,
) -> Result<usize, PruneError> {
    let mut removed = 0;
    for digest in candidates {
        // Read before the rows, as the listing in `remove_orphans` is.
        let Some(put) = blobs.put_at(&digest).await? else {
            continue;
        };
        if put < put_before && !store.names_digest(&digest).await? {
            blobs.remove(&digest).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
