//! Access control lists: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl, and the
//! `x-amz-acl` / `x-amz-grant-*` headers of writes (PutObject, CopyObject,
//! CreateMultipartUpload, POST uploads, CreateBucket).
//!
//! A bucket's Object Ownership decides whether ACLs exist at all (`s3::acl::ObjectOwnership`):
//! under `BucketOwnerEnforced` (AWS's default for new buckets, and every bucket that never set
//! it) ACLs are disabled — reads return the owner with FULL_CONTROL, writes that ask for that
//! same state succeed and change nothing, anything else is `AccessControlListNotSupported`.
//! Under `ObjectWriter` / `BucketOwnerPreferred` ACLs are stored (bucket ACLs in the bucket's
//! access record, object ACLs in the version's) and the authorizer honours them
//! (`authorize.rs`). A public access block refuses public ACLs (`BlockPublicAcls`) and makes
//! the authorizer ignore public grants (`IgnorePublicAcls`).

use http::{HeaderMap, StatusCode};

use super::{empty_response, read_request_document, xml_response, S3Request, S3Result};
use crate::engine::{Engine, ObjectAccess, ObjectInfo};
use crate::s3::acl::{acl_from_headers, acl_from_request, Acl, ObjectOwnership, Owner};
use crate::s3::authorize::Access;
use crate::s3::error::S3Error;
use crate::s3::handlers::policy::identity_error;

/// Largest PutBucketAcl/PutObjectAcl document read.
const MAX_ACL_BODY: usize = 64 * 1024;

/// The owner record of a canonical id (display name from the directory).
pub fn owner_of(access: &Access, id: &str) -> Owner {
    Owner::new(id, access.display_name(id))
}

/// The ACL stored with a version, if it has one that can be read.
pub fn stored_object_acl(object: &ObjectInfo) -> Option<Acl> {
    object
        .access()
        .and_then(|access| access.acl)
        .and_then(|bytes| Acl::decode(&bytes).ok())
}

/// The owner and ACL a new object gets from a write's headers (`x-amz-acl`, grants): checked
/// against the bucket's Object Ownership and public access block. `None`: the default (the
/// bucket owner's, private).
pub fn object_access_for_write(
    access: &Access,
    bucket: &str,
    headers: &HeaderMap,
) -> Result<Option<ObjectAccess>, S3Error> {
    let entry = access.bucket_entry(bucket)?;
    let bucket_owner = owner_of(access, &entry.owner);
    let (writer_id, writer_name) = access.owner();
    let writer = Owner::new(writer_id, writer_name);
    let canned = headers.get("x-amz-acl").and_then(|v| v.to_str().ok());
    let owner = entry
        .ownership
        .object_owner(&writer, &bucket_owner, canned)
        .clone();
    let Some(acl) = acl_from_headers(headers, &owner, Some(&bucket_owner))? else {
        return Ok((owner.id != bucket_owner.id).then(|| ObjectAccess {
            owner: owner.id.clone(),
            acl: None,
        }));
    };
    entry.ownership.check_acl_write(&acl, &bucket_owner)?;
    entry.public_access_block.check_acl_write(&acl)?;
    if !entry.acls_enabled() {
        return Ok(None);
    }
    Ok(Some(ObjectAccess {
        owner: owner.id.clone(),
        acl: Some(acl.encode()),
    }))
}

/// The access settings a CreateBucket asks for: Object Ownership (`x-amz-object-ownership`)
/// and an ACL (`x-amz-acl`, grants), as `(ownership, stored ACL)`. An ACL other than the
/// owner's FULL_CONTROL needs ACLs enabled (`InvalidBucketAclWithObjectOwnership`).
pub fn bucket_access_for_create(
    access: &Access,
    headers: &HeaderMap,
) -> Result<(Option<ObjectOwnership>, Option<Acl>), S3Error> {
    let ownership = ObjectOwnership::from_header(headers)?;
    let (id, name) = access.owner();
    let creator = Owner::new(id, name);
    let Some(acl) = acl_from_headers(headers, &creator, None)? else {
        return Ok((ownership, None));
    };
    let effective = ownership.unwrap_or_default();
    effective.check_create_bucket_acl(&acl)?;
    let stored =
        (effective.acls_enabled() && !acl.is_full_control_only_for(&creator.id)).then_some(acl);
    Ok((ownership, stored))
}

pub async fn handle_get_bucket_acl(req: S3Request, bucket: &str) -> S3Result {
    let entry = req.access.bucket_entry(bucket)?;
    let owner = owner_of(&req.access, &entry.owner);
    let acl = match (&entry.acl, entry.acls_enabled()) {
        (Some(acl), true) => acl.clone(),
        _ => Acl::private(&owner),
    };
    xml_response(acl.to_xml())
}

pub async fn handle_put_bucket_acl(req: S3Request, bucket: &str) -> S3Result {
    let entry = req.access.bucket_entry(bucket)?;
    let owner = owner_of(&req.access, &entry.owner);
    let (ownership, block) = (entry.ownership, entry.public_access_block);
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_ACL_BODY).await?;
    let acl = acl_from_request(&req.headers, &body, &owner, None)?;
    ownership.check_acl_write(&acl, &owner)?;
    block.check_acl_write(&acl)?;
    if !ownership.acls_enabled() {
        // The owner-only ACL of a bucket whose ACLs are disabled: nothing to change.
        return empty_response(StatusCode::OK);
    }
    let stored = acl.encode();
    req.identity
        .update_bucket_access(bucket, move |access| {
            access.acl = Some(stored.clone());
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::OK)
}

/// The addressed object (NoSuchKey with its key otherwise). (Takes the engine, not the
/// request: the body is not `Sync`, so `&S3Request` cannot be held across an await.)
async fn object_of(engine: &Engine, bucket: &str, key: &str) -> Result<ObjectInfo, S3Error> {
    engine
        .head_object(bucket, key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))
}

pub async fn handle_get_object_acl(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let entry = req.access.bucket_entry(bucket)?;
    let object = object_of(&req.engine, bucket, key).await?;
    let owner_id = object
        .access()
        .map_or_else(|| entry.owner.clone(), |access| access.owner);
    let owner = owner_of(&req.access, &owner_id);
    let acl = match (stored_object_acl(&object), entry.acls_enabled()) {
        (Some(acl), true) => acl,
        _ => Acl::private(&owner),
    };
    xml_response(acl.to_xml())
}

pub async fn handle_put_object_acl(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let entry = req.access.bucket_entry(bucket)?;
    let bucket_owner = owner_of(&req.access, &entry.owner);
    let (ownership, block) = (entry.ownership, entry.public_access_block);
    let object = object_of(&req.engine, bucket, key).await?;
    let owner_id = object
        .access()
        .map_or_else(|| entry.owner.clone(), |access| access.owner);
    let owner = owner_of(&req.access, &owner_id);
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_ACL_BODY).await?;
    let acl = acl_from_request(&req.headers, &body, &owner, Some(&bucket_owner))?;
    ownership.check_acl_write(&acl, &bucket_owner)?;
    block.check_acl_write(&acl)?;
    if !ownership.acls_enabled() {
        return empty_response(StatusCode::OK);
    }
    let resolved = req.engine.bucket(bucket).await?;
    req.engine
        .set_object_access(
            &resolved,
            key,
            ObjectAccess {
                owner: owner.id.clone(),
                acl: Some(acl.encode()),
            },
        )
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    empty_response(StatusCode::OK)
}
