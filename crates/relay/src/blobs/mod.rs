//! The bytes of uploaded files, behind [`BlobStore`]: a store names each
//! file by the SHA-256 of its content (so the same screenshot sent twice is
//! kept once) and answers `put` only once the bytes are durable.
//!
//! [`BlobDir`] is the default: a directory (by default beside the SQLite
//! file), one file per blob under a two-character fan-out, written to
//! `tmp/` first, fsync'd, renamed into place, and the directory fsync'd, so
//! that a crash leaves either the whole blob or none (and perhaps a stray
//! file in `tmp/`, which [`BlobStore::sweep_staging`] removes). A cluster
//! points every relay at one shared directory (`files_dir`) or at one
//! S3-compatible bucket ([`S3Blobs`], `files_url`).

mod s3;

pub use s3::S3Blobs;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob {0}")]
    Missing(String),
    #[error("blob store I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob store task failed: {0}")]
    Task(String),
    #[error("object store: {0}")]
    Remote(String),
}

/// Where file contents live.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` and returns their digest once they are durable.
    async fn put(&self, bytes: Bytes) -> Result<String, BlobError>;
    async fn get(&self, digest: &str) -> Result<Bytes, BlobError>;
    /// Every digest stored, with when it was last put (for the orphan
    /// sweep, which leaves recent ones to uploads still in flight).
    async fn list(&self) -> Result<Vec<(String, SystemTime)>, BlobError>;
    /// When the blob was last put; `None` when it is not stored.
    async fn put_at(&self, digest: &str) -> Result<Option<SystemTime>, BlobError>;
    /// Removes a blob; one already gone is no error.
    async fn remove(&self, digest: &str) -> Result<(), BlobError>;

    /// Removes what crashed uploads left half-written more than
    /// `older_than` ago; returns how many. A store whose writes are atomic
    /// (S3) leaves nothing.
    async fn sweep_staging(&self, _older_than: Duration) -> Result<usize, BlobError> {
        Ok(0)
    }
}

/// Where a blob lives inside a store: under a two-character fan-out.
fn key_of(digest: &str) -> Result<String, BlobError> {
    if !is_digest(digest) {
        return Err(BlobError::Missing(digest.to_owned()));
    }
    Ok(format!("{}/{digest}", &digest[..2]))
}

/// The SHA-256 of `bytes`, in lowercase hex: a blob's name.
pub fn digest_of(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Whether `digest` is a name this module makes: it becomes a path, so
/// nothing else may pass.
fn is_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The directory of uploaded files for a database URL when none is
/// configured: `PATH.files` beside a SQLite file; `None` for PostgreSQL,
/// whose relays must be told one they share.
pub fn default_dir(database_url: &str) -> Option<PathBuf> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    Some(PathBuf::from(format!("{path}.files")))
}

/// Blobs as files in a directory.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
}

impl BlobDir {
    /// Uses (and creates) `root`.
    pub fn open(root: &Path) -> Result<BlobDir, BlobError> {
        let staging = root.join("tmp");
        std::fs::create_dir_all(&staging).map_err(|source| BlobError::Io {
            path: staging,
            source,
        })?;
        Ok(BlobDir {
            root: root.to_owned(),
        })
    }

    fn path_of(&self, digest: &str) -> Result<PathBuf, BlobError> {
        Ok(self.root.join(key_of(digest)?))
    }

    fn sweep_staging_blocking(&self, older_than: Duration) -> Result<usize, BlobError> {
        let staging = self.root.join("tmp");
        let io = |source| BlobError::Io {
            path: staging.clone(),
            source,
        };
        let mut removed = 0;
        for entry in std::fs::read_dir(&staging).map_err(io)? {
            let entry = entry.map_err(io)?;
            let age = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| SystemTime::now().duration_since(modified).ok());
            if age.is_some_and(|age| age >= older_than)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let digest = digest_of(bytes);
        let target = self.path_of(&digest)?;
        if let Ok(existing) = std::fs::File::options().append(true).open(&target) {
            // Only ever renamed into place once durable. Marked as put now,
            // so that the orphan sweep leaves it to the row about to name it.
            existing
                .set_modified(SystemTime::now())
                .map_err(|source| BlobError::Io {
                    path: target.clone(),
                    source,
                })?;
            return Ok(digest);
        }
        let fan_out = self.root.join(&digest[..2]);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| BlobError::Io { path, source }
        };
        let created = !fan_out.exists();
        std::fs::create_dir_all(&fan_out).map_err(io(&fan_out))?;
        let staged = self
            .root
            .join("tmp")
            .join(format!("{digest}.{}", rand::random::<u64>()));
        let mut file = std::fs::File::create(&staged).map_err(io(&staged))?;
        file.write_all(bytes).map_err(io(&staged))?;
        file.sync_all().map_err(io(&staged))?;
        drop(file);
        std::fs::rename(&staged, &target).map_err(io(&target))?;
        sync_dir(&fan_out)?;
        if created {
            sync_dir(&self.root)?;
        }
        Ok(digest)
    }
}

/// Makes a rename or a new entry in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| BlobError::Io {
            path: dir.to_owned(),
            source,
        })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| BlobError::Task(error.to_string()))?
}

#[async_trait]
impl BlobStore for BlobDir {
    async fn put(&self, bytes: Bytes) -> Result<String, BlobError> {
        let store = self.clone();
        blocking(move || store.put_blocking(&bytes)).await
    }

    async fn get(&self, digest: &str) -> Result<Bytes, BlobError> {
        let path = self.path_of(digest)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::Missing(digest.to_owned()))
            }
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }

    async fn list(&self) -> Result<Vec<(String, SystemTime)>, BlobError> {
        let root = self.root.clone();
        blocking(move || {
            let io = |path: &Path| {
                let path = path.to_owned();
                move |source| BlobError::Io { path, source }
            };
            let mut digests = Vec::new();
            for fan_out in std::fs::read_dir(&root).map_err(io(&root))? {
                let fan_out = fan_out.map_err(io(&root))?.path();
                if !fan_out.is_dir() {
                    continue;
                }
                for blob in std::fs::read_dir(&fan_out).map_err(io(&fan_out))? {
                    let blob = blob.map_err(io(&fan_out))?;
                    let name = blob.file_name();
                    let Some(name) = name.to_str().filter(|name| is_digest(name)) else {
                        continue;
                    };
                    let put = blob.metadata().and_then(|meta| meta.modified());
                    digests.push((name.to_owned(), put.map_err(io(&blob.path()))?));
                }
            }
            Ok(digests)
        })
        .await
    }

    async fn sweep_staging(&self, older_than: Duration) -> Result<usize, BlobError> {
        let store = self.clone();
        blocking(move || store.sweep_staging_blocking(older_than)).await
    }

    async fn put_at(&self, digest: &str) -> Result<Option<SystemTime>, BlobError> {
        let path = self.path_of(digest)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => meta
                .modified()
                .map(Some)
                .map_err(|source| BlobError::Io { path, source }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }

    async fn remove(&self, digest: &str) -> Result<(), BlobError> {
        let path = self.path_of(digest)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_round_trip_by_content_and_refuse_made_up_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobDir::open(dir.path()).expect("open");
        let digest = blobs.put(Bytes::from_static(b"hello")).await.expect("put");
        assert_eq!(digest, digest_of(b"hello"));
        assert_eq!(
            blobs
                .put(Bytes::from_static(b"hello"))
                .await
                .expect("again"),
            digest
        );
        assert_eq!(&blobs.get(&digest).await.expect("get")[..], b"hello");
        let listed = blobs.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, digest);
        assert_eq!(
            blobs.put_at(&digest).await.expect("put at"),
            Some(listed[0].1)
        );
        for bad in [
            "../../etc/passwd",
            "tmp",
            &digest[..63],
            &digest.to_uppercase(),
        ] {
            assert!(
                matches!(blobs.get(bad).await, Err(BlobError::Missing(_))),
                "{bad}"
            );
        }
        blobs.remove(&digest).await.expect("remove");
        blobs.remove(&digest).await.expect("remove twice");
        assert!(matches!(
            blobs.get(&digest).await,
            Err(BlobError::Missing(_))
        ));
        assert!(blobs.list().await.expect("list").is_empty());
        assert_eq!(blobs.put_at(&digest).await.expect("gone"), None);
    }
}
