//! Removing files nobody can reach (`kefu-relay prune-files`): uploads
//! never sent, blobs no row names, and what a crash left half-written.
//!
//! Rows go first, then blobs: a blob is removed only when no row names it
//! and it was put longer than the grace ago, so an upload between its blob
//! and its row (a few milliseconds) is never robbed of its blob.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::blobs::{BlobError, BlobStore};
use crate::store::{Store, StoreError};

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
    // Listed before the rows are read: a blob put after this is not seen.
    let stored = blobs.list().await?;
    let named: HashSet<String> = store.file_digests().await?.into_iter().collect();
    let now = SystemTime::now();
    let mut removed = 0;
    for (digest, put) in stored {
        let old = now.duration_since(put).is_ok_and(|age| age >= grace);
        if old && !named.contains(&digest) {
            blobs.remove(&digest).await?;
            removed += 1;
        }
    }
    Ok(Pruned {
        unsent,
        blobs: removed,
        staged,
    })
}
