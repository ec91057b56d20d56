//! Buckets: create, look up, list and delete. Name validation is the protocol layer's job;
//! here a bucket is a catalog record with a never-reused id.

use metadata::model::BucketRecord;

use super::{now_ms, Engine, EngineError};

impl Engine {
    /// Creates a bucket owned by `owner`; `BucketExists` if the name is taken.
    pub async fn create_bucket(
        &self,
        name: &str,
        owner: &str,
    ) -> Result<BucketRecord, EngineError> {
        let name = name.to_string();
        let owner = owner.to_string();
        let region = self.config.region.clone();
        self.meta(move |c| c.create_bucket(&name, &owner, &region, now_ms()))
            .await
    }

    pub async fn head_bucket(&self, name: &str) -> Result<BucketRecord, EngineError> {
        self.bucket(name).await
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>, EngineError> {
        self.meta(|c| c.list_buckets()).await
    }

    /// Deletes an empty bucket; its unfinished uploads are aborted and collected.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), EngineError> {
        let name = name.to_string();
        self.meta(move |c| c.delete_bucket(&name)).await
    }
}
