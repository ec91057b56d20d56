//! What each S3 operation asks permission for: the IAM action(s) of an [`Endpoint`] and the
//! resource ARN each acts on, as AWS's "Actions, resources, and condition keys for Amazon S3"
//! table defines them. The authorization point evaluates exactly these.
//!
//! Invariants: the match over [`Endpoint`] is exhaustive (no wildcard arm), so a new operation
//! cannot compile without deciding what it needs; every endpoint but the ones whose target is
//! known only after the body is read (`DeleteObjects` per key, `PostObject` per form key, see
//! [`Deferred`]) needs at least one permission; a request addressing a version (`versionId`)
//! asks for the `…Version…` action where S3 has one; copy sources are checked separately
//! ([`copy_source_permission`]), read on the source as well as write on the target.

use super::endpoint::Endpoint;

/// The resource ARN of service-level actions (`s3:ListAllMyBuckets`): matched by `*` and
/// `arn:aws:s3:::*`, never by a bucket's ARN.
pub const SERVICE_RESOURCE: &str = "arn:aws:s3:::";

/// One permission a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// `s3:GetObject`, …
    pub action: &'static str,
    /// `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key` or [`SERVICE_RESOURCE`].
    pub resource: String,
}

/// Checks that can only be made once the body is parsed; the handler makes them through the
/// same authorizer, one per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// `DeleteObjects`: `s3:DeleteObject` (or `s3:DeleteObjectVersion`) on every listed key.
    DeletePerKey,
    /// `PostObject`: `s3:PutObject` on the form's key.
    PutFormKey,
}

/// What a request carries that changes the actions it needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTraits {
    /// `versionId` in the query.
    pub addresses_version: bool,
    /// `x-amz-tagging` on PutObject/CopyObject/CreateMultipartUpload.
    pub sets_tags: bool,
    /// `x-amz-acl` or an `x-amz-grant-*` header on a write.
    pub sets_acl: bool,
}

/// The ARN of a bucket.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// The ARN of an object.
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

fn on_bucket(action: &'static str, bucket: &str) -> Permission {
    Permission {
        action,
        resource: bucket_arn(bucket),
    }
}

fn on_object(action: &'static str, bucket: &str, key: &str) -> Permission {
    Permission {
        action,
        resource: object_arn(bucket, key),
    }
}

/// `plain`, or `versioned` when the request addresses a version.
fn versioned(traits: RequestTraits, plain: &'static str, versioned: &'static str) -> &'static str {
    if traits.addresses_version {
        versioned
    } else {
        plain
    }
}

/// The permission a copy (CopyObject, UploadPartCopy) needs on its source.
pub fn copy_source_permission(bucket: &str, key: &str, has_version: bool) -> Permission {
    let action = if has_version {
        "s3:GetObjectVersion"
    } else {
        "s3:GetObject"
    };
    on_object(action, bucket, key)
}

/// The permissions `endpoint` needs before it runs, and the checks it makes later.
pub fn permissions(
    endpoint: &Endpoint,
    traits: RequestTraits,
) -> (Vec<Permission>, Option<Deferred>) {
    use Endpoint as E;
    let writes_object = |bucket: &str, key: &str| {
        let mut needed = vec![on_object("s3:PutObject", bucket, key)];
        if traits.sets_tags {
            needed.push(on_object("s3:PutObjectTagging", bucket, key));
        }
        if traits.sets_acl {
            needed.push(on_object("s3:PutObjectAcl", bucket, key));
        }
        needed
    };
    let one = |permission: Permission| (vec![permission], None);
    match endpoint {
        E::ListBuckets => one(Permission {
            action: "s3:ListAllMyBuckets",
            resource: SERVICE_RESOURCE.to_string(),
        }),
        E::CreateBucket { bucket } => {
            let mut needed = vec![on_bucket("s3:CreateBucket", bucket)];
            if traits.sets_acl {
                needed.push(on_bucket("s3:PutBucketAcl", bucket));
            }
            (needed, None)
        }
        E::HeadBucket { bucket } => one(on_bucket("s3:ListBucket", bucket)),
        E::DeleteBucket { bucket } => one(on_bucket("s3:DeleteBucket", bucket)),
        E::GetBucketLocation { bucket } => one(on_bucket("s3:GetBucketLocation", bucket)),
        E::GetBucketVersioning { bucket } => one(on_bucket("s3:GetBucketVersioning", bucket)),
        E::ListObjectsV1 { bucket } | E::ListObjectsV2 { bucket } => {
            one(on_bucket("s3:ListBucket", bucket))
        }
        E::ListMultipartUploads { bucket } => {
            one(on_bucket("s3:ListBucketMultipartUploads", bucket))
        }
        E::ListObjectVersions { bucket } => one(on_bucket("s3:ListBucketVersions", bucket)),
        E::GetBucketAcl { bucket } => one(on_bucket("s3:GetBucketAcl", bucket)),
        E::GetBucketEncryption { bucket } => {
            one(on_bucket("s3:GetEncryptionConfiguration", bucket))
        }
        // AWS has no separate delete action: removing the configuration is a put.
        E::PutBucketEncryption { bucket } | E::DeleteBucketEncryption { bucket } => {
            one(on_bucket("s3:PutEncryptionConfiguration", bucket))
        }
        E::PutBucketAcl { bucket } => one(on_bucket("s3:PutBucketAcl", bucket)),
        E::GetBucketPolicy { bucket } => one(on_bucket("s3:GetBucketPolicy", bucket)),
        E::PutBucketPolicy { bucket } => one(on_bucket("s3:PutBucketPolicy", bucket)),
        E::DeleteBucketPolicy { bucket } => one(on_bucket("s3:DeleteBucketPolicy", bucket)),
        E::GetBucketPolicyStatus { bucket } => one(on_bucket("s3:GetBucketPolicyStatus", bucket)),
        E::GetBucketOwnershipControls { bucket } => {
            one(on_bucket("s3:GetBucketOwnershipControls", bucket))
        }
        // AWS has no separate delete actions for these two: removing is a put.
        E::PutBucketOwnershipControls { bucket } | E::DeleteBucketOwnershipControls { bucket } => {
            one(on_bucket("s3:PutBucketOwnershipControls", bucket))
        }
        E::GetPublicAccessBlock { bucket } => {
            one(on_bucket("s3:GetBucketPublicAccessBlock", bucket))
        }
        E::PutPublicAccessBlock { bucket } | E::DeletePublicAccessBlock { bucket } => {
            one(on_bucket("s3:PutBucketPublicAccessBlock", bucket))
        }
        E::PostObject { .. } => (Vec::new(), Some(Deferred::PutFormKey)),
        E::DeleteObjects { .. } => (Vec::new(), Some(Deferred::DeletePerKey)),
        E::PutObject { bucket, key }
        | E::CopyObject { bucket, key }
        | E::CreateMultipartUpload { bucket, key } => (writes_object(bucket, key), None),
        E::UploadPart { bucket, key, .. }
        | E::UploadPartCopy { bucket, key, .. }
        | E::CompleteMultipartUpload { bucket, key, .. } => {
            one(on_object("s3:PutObject", bucket, key))
        }
        E::GetObject { bucket, key } | E::HeadObject { bucket, key } => one(on_object(
            versioned(traits, "s3:GetObject", "s3:GetObjectVersion"),
            bucket,
            key,
        )),
        E::DeleteObject { bucket, key } => one(on_object(
            versioned(traits, "s3:DeleteObject", "s3:DeleteObjectVersion"),
            bucket,
            key,
        )),
        E::GetObjectTagging { bucket, key } => one(on_object(
            versioned(traits, "s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
            bucket,
            key,
        )),
        E::PutObjectTagging { bucket, key } => one(on_object(
            versioned(traits, "s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
            bucket,
            key,
        )),
        E::DeleteObjectTagging { bucket, key } => one(on_object(
            versioned(
                traits,
                "s3:DeleteObjectTagging",
                "s3:DeleteObjectVersionTagging",
            ),
            bucket,
            key,
        )),
        E::GetObjectAcl { bucket, key } => one(on_object(
            versioned(traits, "s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
            bucket,
            key,
        )),
        E::PutObjectAcl { bucket, key } => one(on_object(
            versioned(traits, "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
            bucket,
            key,
        )),
        E::GetObjectAttributes { bucket, key } => {
            // AWS asks for both GetObject and GetObjectAttributes (the attributes include
            // the object's ETag, size and checksums).
            let (get, attributes) = if traits.addresses_version {
                ("s3:GetObjectVersion", "s3:GetObjectVersionAttributes")
            } else {
                ("s3:GetObject", "s3:GetObjectAttributes")
            };
            (
                vec![
                    on_object(get, bucket, key),
                    on_object(attributes, bucket, key),
                ],
                None,
            )
        }
        E::AbortMultipartUpload { bucket, key, .. } => {
            one(on_object("s3:AbortMultipartUpload", bucket, key))
        }
        E::ListParts { bucket, key, .. } => {
            one(on_object("s3:ListMultipartUploadParts", bucket, key))
        }
        // Unimplemented operations read and change nothing, but only a caller who may list
        // buckets learns that they answer 501 (a caller with no rights gets 403, as for
        // every other operation).
        E::NotImplemented { .. } => one(Permission {
            action: "s3:ListAllMyBuckets",
            resource: SERVICE_RESOURCE.to_string(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::policy::resource_kind;
    use super::super::policy::ResourceKind;
    use super::*;

    /// One value of every endpoint variant (the authorization tests walk it too).
    pub(crate) fn every_endpoint() -> Vec<Endpoint> {
        every_endpoint_on("b")
    }

    /// One value of every endpoint variant on bucket `bucket` (key `k`, upload `u`).
    pub(crate) fn every_endpoint_on(bucket: &str) -> Vec<Endpoint> {
        let b = || bucket.to_string();
        let k = || "k".to_string();
        let u = || "u".to_string();
        use Endpoint as E;
        vec![
            E::ListBuckets,
            E::CreateBucket { bucket: b() },
            E::HeadBucket { bucket: b() },
            E::DeleteBucket { bucket: b() },
            E::GetBucketLocation { bucket: b() },
            E::GetBucketVersioning { bucket: b() },
            E::ListObjectsV1 { bucket: b() },
            E::ListObjectsV2 { bucket: b() },
            E::ListMultipartUploads { bucket: b() },
            E::ListObjectVersions { bucket: b() },
            E::GetBucketAcl { bucket: b() },
            E::PutBucketAcl { bucket: b() },
            E::GetBucketPolicy { bucket: b() },
            E::PutBucketPolicy { bucket: b() },
            E::DeleteBucketPolicy { bucket: b() },
            E::GetBucketPolicyStatus { bucket: b() },
            E::GetBucketOwnershipControls { bucket: b() },
            E::PutBucketOwnershipControls { bucket: b() },
            E::DeleteBucketOwnershipControls { bucket: b() },
            E::GetPublicAccessBlock { bucket: b() },
            E::PutPublicAccessBlock { bucket: b() },
            E::DeletePublicAccessBlock { bucket: b() },
            E::GetBucketEncryption { bucket: b() },
            E::PutBucketEncryption { bucket: b() },
            E::DeleteBucketEncryption { bucket: b() },
            E::PostObject { bucket: b() },
            E::DeleteObjects { bucket: b() },
            E::PutObject {
                bucket: b(),
                key: k(),
            },
            E::CopyObject {
                bucket: b(),
                key: k(),
            },
            E::GetObject {
                bucket: b(),
                key: k(),
            },
            E::HeadObject {
                bucket: b(),
                key: k(),
            },
            E::DeleteObject {
                bucket: b(),
                key: k(),
            },
            E::GetObjectTagging {
                bucket: b(),
                key: k(),
            },
            E::PutObjectTagging {
                bucket: b(),
                key: k(),
            },
            E::DeleteObjectTagging {
                bucket: b(),
                key: k(),
            },
            E::GetObjectAcl {
                bucket: b(),
                key: k(),
            },
            E::PutObjectAcl {
                bucket: b(),
                key: k(),
            },
            E::GetObjectAttributes {
                bucket: b(),
                key: k(),
            },
            E::CreateMultipartUpload {
                bucket: b(),
                key: k(),
            },
            E::UploadPart {
                bucket: b(),
                key: k(),
                upload_id: u(),
                part_number: 1,
            },
            E::UploadPartCopy {
                bucket: b(),
                key: k(),
                upload_id: u(),
                part_number: 1,
            },
            E::CompleteMultipartUpload {
                bucket: b(),
                key: k(),
                upload_id: u(),
            },
            E::AbortMultipartUpload {
                bucket: b(),
                key: k(),
                upload_id: u(),
            },
            E::ListParts {
                bucket: b(),
                key: k(),
                upload_id: u(),
            },
        ]
    }

    /// Every implemented endpoint needs a permission now or a deferred check, and every
    /// action named is a real S3 action whose resource kind matches the ARN given.
    #[test]
    fn every_endpoint_asks_for_a_real_action_on_the_right_resource() {
        for traits in [
            RequestTraits::default(),
            RequestTraits {
                addresses_version: true,
                sets_tags: true,
                sets_acl: true,
            },
        ] {
            for endpoint in every_endpoint() {
                let (needed, deferred) = permissions(&endpoint, traits);
                assert!(
                    !needed.is_empty() || deferred.is_some(),
                    "{endpoint:?} is unchecked"
                );
                for permission in needed {
                    let kind = resource_kind(permission.action)
                        .unwrap_or_else(|| panic!("{} is no S3 action", permission.action));
                    let expected = match kind {
                        ResourceKind::Service => SERVICE_RESOURCE.to_string(),
                        ResourceKind::Bucket => "arn:aws:s3:::b".to_string(),
                        ResourceKind::Object => "arn:aws:s3:::b/k".to_string(),
                    };
                    assert_eq!(
                        permission.resource, expected,
                        "{endpoint:?} {}",
                        permission.action
                    );
                }
            }
        }
    }

    #[test]
    fn versions_tags_and_acls_change_the_actions() {
        let get = Endpoint::GetObject {
            bucket: "b".into(),
            key: "k".into(),
        };
        let actions = |endpoint: &Endpoint, traits| {
            permissions(endpoint, traits)
                .0
                .into_iter()
                .map(|p| p.action)
                .collect::<Vec<_>>()
        };
        assert_eq!(actions(&get, RequestTraits::default()), ["s3:GetObject"]);
        let version = RequestTraits {
            addresses_version: true,
            ..Default::default()
        };
        assert_eq!(actions(&get, version), ["s3:GetObjectVersion"]);
        let put = Endpoint::PutObject {
            bucket: "b".into(),
            key: "k".into(),
        };
        let tagged = RequestTraits {
            sets_tags: true,
            sets_acl: true,
            ..Default::default()
        };
        assert_eq!(
            actions(&put, tagged),
            ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectAcl"]
        );
        assert_eq!(
            copy_source_permission("src", "a/b", true).action,
            "s3:GetObjectVersion"
        );
        assert_eq!(
            copy_source_permission("src", "a/b", false).resource,
            "arn:aws:s3:::src/a/b"
        );
    }
}
