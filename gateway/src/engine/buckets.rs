//! Buckets: create, look up, list and delete. Name validation is the protocol layer's job;
//! here a bucket is a catalog record with a never-reused id, shown to callers as a
//! [`BucketInfo`] that a request resolves once and hands to every later call.

use super::healing::backup::CATALOG_BACKUP_BUCKET;
use super::view::BucketInfo;
use super::{now_ms, Engine, EngineError};

impl Engine {
    /// Creates a bucket owned by `owner`; `BucketExists` if the name is taken.
    pub async fn create_bucket(&self, name: &str, owner: &str) -> Result<BucketInfo, EngineError> {
        if name == CATALOG_BACKUP_BUCKET {
            return Err(EngineError::BucketExists);
        }
        let name = name.to_string();
        let owner = owner.to_string();
        let region = self.config.region.clone();
        let record = self
            .meta(move |c| c.create_bucket(&name, &owner, &region, now_ms()))
            .await?;
        Ok(BucketInfo { record })
    }

    /// Resolves a bucket by name (HeadBucket, and the first step of every request that works
    /// in a bucket); `NoSuchBucket` if there is none.
    /// The reserved bucket of catalog backups is never found here: no request reaches it.
    pub async fn bucket(&self, name: &str) -> Result<BucketInfo, EngineError> {
        if name == CATALOG_BACKUP_BUCKET {
            return Err(EngineError::NoSuchBucket);
        }
        let name = name.to_string();
        let record = self
            .meta(move |c| c.get_bucket(&name))
            .await?
            .ok_or(EngineError::NoSuchBucket)?;
        Ok(BucketInfo { record })
    }

    /// Every bucket but the reserved one of catalog backups.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, EngineError> {
        let records = self.meta(|c| c.list_buckets()).await?;
        Ok(records
            .into_iter()
            .filter(|record| record.name != CATALOG_BACKUP_BUCKET)
            .map(|record| BucketInfo { record })
            .collect())
    }

    /// Deletes an empty bucket; its unfinished uploads are aborted and collected.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), EngineError> {
        if name == CATALOG_BACKUP_BUCKET {
            return Err(EngineError::NoSuchBucket);
        }
        let name = name.to_string();
        self.meta(move |c| c.delete_bucket(&name)).await
    }
}
