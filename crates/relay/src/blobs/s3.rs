//! Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph, R2…), so
//! that every relay of a cluster serves every file. A `PUT` is durable
//! when the store answers it, and atomic: there is no half-written object
//! to sweep.

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

use super::{BlobError, BlobStore, digest_of, is_digest, key_of};

/// Blobs in one bucket, named like [`super::BlobDir`]'s files.
#[derive(Debug)]
pub struct S3Blobs {
    store: AmazonS3,
}

fn remote(error: object_store::Error) -> BlobError {
    BlobError::Remote(error.to_string())
}

impl S3Blobs {
    /// The bucket `url` names (`s3://BUCKET`), with the endpoint,
    /// region and credentials from the usual `AWS_*` variables
    /// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`…).
    pub fn from_env(url: &str) -> Result<S3Blobs, BlobError> {
        let store = AmazonS3Builder::from_env()
            .with_url(url)
            .build()
            .map_err(remote)?;
        Ok(S3Blobs { store })
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, bytes: Bytes) -> Result<String, BlobError> {
        let digest = digest_of(&bytes);
        let key = Path::from(key_of(&digest)?);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(remote)?;
        Ok(digest)
    }

    async fn get(&self, digest: &str) -> Result<Bytes, BlobError> {
        let key = Path::from(key_of(digest)?);
        match self.store.get(&key).await {
            Ok(found) => found.bytes().await.map_err(remote),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::Missing(digest.to_owned())),
            Err(error) => Err(remote(error)),
        }
    }

    async fn list(&self) -> Result<Vec<(String, SystemTime)>, BlobError> {
        let objects: Vec<_> = self.store.list(None).try_collect().await.map_err(remote)?;
        Ok(objects
            .into_iter()
            .filter_map(|object| {
                let name = object.location.filename()?.to_owned();
                is_digest(&name).then(|| (name, SystemTime::from(object.last_modified)))
            })
            .collect())
    }

    async fn put_at(&self, digest: &str) -> Result<Option<SystemTime>, BlobError> {
        let key = Path::from(key_of(digest)?);
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(SystemTime::from(meta.last_modified))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(remote(error)),
        }
    }

    async fn remove(&self, digest: &str) -> Result<(), BlobError> {
        let key = Path::from(key_of(digest)?);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(remote(error)),
        }
    }
}
