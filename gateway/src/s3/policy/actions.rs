//! The S3 action names a policy may grant, and which kind of resource each applies to.
//!
//! Invariant: names are compared case-insensitively (IAM does); an action that applies to no
//! resource of a bucket policy's statement makes the policy malformed, as on AWS ("Action does
//! not apply to any resource(s) in statement").

/// What an action's resource ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `arn:aws:s3:::bucket`
    Bucket,
    /// `arn:aws:s3:::bucket/key`
    Object,
    /// No resource of a bucket (`s3:ListAllMyBuckets`, `s3:CreateJob`, …).
    Service,
}

use ResourceKind::{Bucket, Object, Service};

/// Every S3 action IAM knows, with its resource kind.
const ACTIONS: &[(&str, ResourceKind)] = &[
    ("AbortMultipartUpload", Object),
    ("BypassGovernanceRetention", Object),
    ("CreateBucket", Bucket),
    ("CreateJob", Service),
    ("DeleteBucket", Bucket),
    ("DeleteBucketOwnershipControls", Bucket),
    ("DeleteBucketPolicy", Bucket),
    ("DeleteBucketWebsite", Bucket),
    ("DeleteObject", Object),
    ("DeleteObjectTagging", Object),
    ("DeleteObjectVersion", Object),
    ("DeleteObjectVersionTagging", Object),
    ("GetAccelerateConfiguration", Bucket),
    ("GetAnalyticsConfiguration", Bucket),
    ("GetBucketAcl", Bucket),
    ("GetBucketCORS", Bucket),
    ("GetBucketLocation", Bucket),
    ("GetBucketLogging", Bucket),
    ("GetBucketNotification", Bucket),
    ("GetBucketObjectLockConfiguration", Bucket),
    ("GetBucketOwnershipControls", Bucket),
    ("GetBucketPolicy", Bucket),
    ("GetBucketPolicyStatus", Bucket),
    ("GetBucketPublicAccessBlock", Bucket),
    ("GetBucketRequestPayment", Bucket),
    ("GetBucketTagging", Bucket),
    ("GetBucketVersioning", Bucket),
    ("GetBucketWebsite", Bucket),
    ("GetEncryptionConfiguration", Bucket),
    ("GetIntelligentTieringConfiguration", Bucket),
    ("GetInventoryConfiguration", Bucket),
    ("GetLifecycleConfiguration", Bucket),
    ("GetMetricsConfiguration", Bucket),
    ("GetObject", Object),
    ("GetObjectAcl", Object),
    ("GetObjectAttributes", Object),
    ("GetObjectLegalHold", Object),
    ("GetObjectRetention", Object),
    ("GetObjectTagging", Object),
    ("GetObjectTorrent", Object),
    ("GetObjectVersion", Object),
    ("GetObjectVersionAcl", Object),
    ("GetObjectVersionAttributes", Object),
    ("GetObjectVersionForReplication", Object),
    ("GetObjectVersionTagging", Object),
    ("GetObjectVersionTorrent", Object),
    ("GetReplicationConfiguration", Bucket),
    ("ListAllMyBuckets", Service),
    ("ListBucket", Bucket),
    ("ListBucketMultipartUploads", Bucket),
    ("ListBucketVersions", Bucket),
    ("ListMultipartUploadParts", Object),
    ("ObjectOwnerOverrideToBucketOwner", Object),
    ("PutAccelerateConfiguration", Bucket),
    ("PutAnalyticsConfiguration", Bucket),
    ("PutBucketAcl", Bucket),
    ("PutBucketCORS", Bucket),
    ("PutBucketLogging", Bucket),
    ("PutBucketNotification", Bucket),
    ("PutBucketObjectLockConfiguration", Bucket),
    ("PutBucketOwnershipControls", Bucket),
    ("PutBucketPolicy", Bucket),
    ("PutBucketPublicAccessBlock", Bucket),
    ("PutBucketRequestPayment", Bucket),
    ("PutBucketTagging", Bucket),
    ("PutBucketVersioning", Bucket),
    ("PutBucketWebsite", Bucket),
    ("PutEncryptionConfiguration", Bucket),
    ("PutIntelligentTieringConfiguration", Bucket),
    ("PutInventoryConfiguration", Bucket),
    ("PutLifecycleConfiguration", Bucket),
    ("PutMetricsConfiguration", Bucket),
    ("PutObject", Object),
    ("PutObjectAcl", Object),
    ("PutObjectLegalHold", Object),
    ("PutObjectRetention", Object),
    ("PutObjectTagging", Object),
    ("PutObjectVersionAcl", Object),
    ("PutObjectVersionTagging", Object),
    ("PutReplicationConfiguration", Bucket),
    ("ReplicateDelete", Object),
    ("ReplicateObject", Object),
    ("ReplicateTags", Object),
    ("RestoreObject", Object),
];

/// The resource kind of an exact action name such as `s3:GetObject`; `None` if S3 has no such
/// action.
pub fn resource_kind(action: &str) -> Option<ResourceKind> {
    let name = action.get(..3).filter(|p| p.eq_ignore_ascii_case("s3:"))?;
    let name = &action[name.len()..];
    ACTIONS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, kind)| *kind)
}

/// Every action name with its kind, `s3:`-prefixed (for wildcard expansion in checks).
pub fn all() -> impl Iterator<Item = (String, ResourceKind)> {
    ACTIONS
        .iter()
        .map(|(name, kind)| (format!("s3:{name}"), *kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_need_the_prefix() {
        assert_eq!(resource_kind("s3:GetObject"), Some(Object));
        assert_eq!(resource_kind("S3:getobject"), Some(Object));
        assert_eq!(resource_kind("s3:ListBucket"), Some(Bucket));
        assert_eq!(resource_kind("s3:ListAllMyBuckets"), Some(Service));
        assert_eq!(resource_kind("GetObject"), None);
        assert_eq!(resource_kind("s3:GetObjekt"), None);
        assert_eq!(resource_kind("s3"), None);
        assert_eq!(resource_kind("é"), None);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = ACTIONS.iter().map(|(n, _)| n.to_lowercase()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
