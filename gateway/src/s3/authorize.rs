//! The one authorization point: every S3 request, once authenticated, is decided here before
//! any handler runs, the way AWS evaluates it — an explicit deny in any applicable policy
//! wins, then an allow from the caller's identity policies, the bucket policy, the bucket
//! owner's full control of their bucket, or an ACL grant; anything else is an implicit deny.
//! An STS session policy further limits what its session may do (both must allow).
//!
//! Checks known only after the body is read (DeleteObjects per key, a POST form's key) and
//! the read right on a copy source are made by the handlers through the same [`Access`].
//!
//! Invariants: nothing here performs I/O (the [`Directory`] is in memory), so authorizing
//! costs no catalog read; the root credentials may do everything (they are the way back in
//! from a policy that locks everyone out); an anonymous caller is allowed only what a policy
//! or ACL grants to everyone; a bucket absent from the directory has no owner and no policy.

use std::sync::Arc;

use http::HeaderMap;

use super::access::{self, Deferred, Permission, RequestTraits};
use super::acl::{Acl, AclTarget};
use super::endpoint::Endpoint;
use super::error::{S3Error, S3ErrorCode};
use super::policy::{combine, ContextKeys, Decision, Policy, Principal, Request};
use crate::identity::{BucketEntry, Directory, UserEntry};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None`: the anonymous principal.
    pub user: Option<Arc<UserEntry>>,
    /// The session policy of an STS temporary credential.
    pub session_policy: Option<Arc<Policy>>,
    /// The access key that signed (empty when anonymous).
    pub access_key: String,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self {
            user: None,
            session_policy: None,
            access_key: String::new(),
        }
    }

    pub fn principal(&self) -> Principal {
        match &self.user {
            Some(user) => user.principal(),
            None => Principal::Anonymous,
        }
    }

    /// The canonical id new buckets and objects are owned by (empty when anonymous).
    pub fn canonical_id(&self) -> &str {
        self.user
            .as_ref()
            .map_or("", |user| user.canonical_id.as_str())
    }

    pub fn is_root(&self) -> bool {
        self.user.as_ref().is_some_and(|user| user.admin)
    }
}

/// The decisions of one request: made at dispatch, and by handlers for their later checks.
#[derive(Debug)]
pub struct Access {
    directory: Arc<Directory>,
    caller: Caller,
    principal: Principal,
    keys: ContextKeys,
    /// The addressed object's ACL, read first when its bucket has ACLs enabled.
    object_acl: Option<Acl>,
}

/// The traits of a request that change the permissions it needs.
pub fn request_traits(headers: &HeaderMap, query: &[(String, String)]) -> RequestTraits {
    RequestTraits {
        addresses_version: query.iter().any(|(name, _)| name == "versionId"),
        sets_tags: headers.contains_key("x-amz-tagging"),
        sets_acl: headers.contains_key("x-amz-acl")
            || headers
                .keys()
                .any(|name| name.as_str().starts_with("x-amz-grant-")),
    }
}

fn denied() -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied)
}

impl Access {
    pub fn new(directory: Arc<Directory>, caller: Caller, keys: ContextKeys) -> Self {
        let principal = caller.principal();
        Self {
            directory,
            caller,
            principal,
            keys,
            object_acl: None,
        }
    }

    /// Whether a policy that applies to requests on `bucket` asks about an existing object's
    /// tags (`s3:ExistingObjectTag/<key>`): then the caller must read them first
    /// ([`Access::add_existing_tags`]) so that such a condition is decided on the real tags.
    pub fn needs_existing_tags(&self, bucket: &str) -> bool {
        const PREFIX: &str = "s3:ExistingObjectTag/";
        let in_user = self.caller.user.as_ref().is_some_and(|user| {
            user.policies
                .iter()
                .any(|p| p.uses_condition_key_prefix(PREFIX))
        });
        let in_session = self
            .caller
            .session_policy
            .as_ref()
            .is_some_and(|p| p.uses_condition_key_prefix(PREFIX));
        let in_bucket = self
            .directory
            .bucket(bucket)
            .and_then(|entry| entry.policy.as_ref())
            .is_some_and(|p| p.uses_condition_key_prefix(PREFIX));
        in_user || in_session || in_bucket
    }

    /// Adds the existing object's tags as `s3:ExistingObjectTag/<key>` condition keys.
    pub fn add_existing_tags(&mut self, tags: &[(String, String)]) {
        for (name, value) in tags {
            self.keys
                .insert(&format!("s3:ExistingObjectTag/{name}"), value.clone());
        }
    }

    /// The directory's entry of `bucket`, `NoSuchBucket` when it has none (the handlers of
    /// bucket access settings read it).
    pub fn bucket_entry(&self, bucket: &str) -> Result<&BucketEntry, S3Error> {
        self.directory
            .bucket(bucket)
            .map(|entry| entry.as_ref())
            .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchBucket).with_extra("BucketName", bucket))
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The owner id and display name of the caller (for listings and new resources).
    pub fn owner(&self) -> (String, String) {
        let id = self.caller.canonical_id().to_string();
        let name = self.directory.display_name(&id);
        (id, name)
    }

    /// The display name of a canonical id.
    pub fn display_name(&self, canonical_id: &str) -> String {
        self.directory.display_name(canonical_id)
    }

    /// This request's answer for one permission on (a resource in) `bucket`.
    pub fn decide(&self, permission: &Permission, bucket: Option<&str>) -> Decision {
        let entry = bucket.and_then(|name| self.directory.bucket(name));
        let request = Request {
            principal: &self.principal,
            action: permission.action,
            resource: &permission.resource,
            keys: &self.keys,
        };
        let combined = if self.caller.is_root() {
            Decision::Allow
        } else {
            let mut decisions = Vec::with_capacity(4);
            if let Some(user) = &self.caller.user {
                decisions.extend(user.policies.iter().map(|p| p.evaluate(&request)));
            }
            if let Some(entry) = entry {
                decisions.push(self.bucket_decision(entry, &request));
                if let (true, Some(acl)) = (entry.acls_enabled(), &self.object_acl) {
                    decisions.push(entry.public_access_block.evaluate_acl(
                        acl,
                        &self.principal,
                        permission.action,
                        AclTarget::Object,
                    ));
                }
            }
            combine(decisions)
        };
        match (&self.caller.session_policy, combined) {
            (Some(session), Decision::Allow) if session.evaluate(&request) != Decision::Allow => {
                Decision::Deny
            }
            (_, combined) => combined,
        }
    }

    /// What the bucket itself says: its policy, its owner's full control, its ACL.
    fn bucket_decision(&self, entry: &BucketEntry, request: &Request<'_>) -> Decision {
        let from_policy = entry
            .policy
            .as_ref()
            .map_or(Decision::NotApplicable, |policy| {
                let decision = policy.evaluate(request);
                // RestrictPublicBuckets: a public policy grants nothing to callers outside the
                // account (every user is in it; the anonymous caller is not). Denies still hold.
                let restricted = entry.public_access_block.restrict_public_buckets
                    && self.caller.user.is_none()
                    && policy.is_public();
                if restricted && decision == Decision::Allow {
                    Decision::NotApplicable
                } else {
                    decision
                }
            });
        if from_policy == Decision::Deny {
            return Decision::Deny;
        }
        let owns = self.caller.user.is_some() && entry.owner == self.caller.canonical_id();
        if owns || from_policy == Decision::Allow {
            return Decision::Allow;
        }
        match (&entry.acl, entry.acls_enabled()) {
            (Some(acl), true) => entry.public_access_block.evaluate_acl(
                acl,
                &self.principal,
                request.action,
                AclTarget::Bucket,
            ),
            _ => Decision::NotApplicable,
        }
    }

    /// Whether the decision needs the addressed object's ACL: its bucket has ACLs enabled.
    pub fn needs_object_acl(&self, bucket: &str) -> bool {
        self.directory
            .bucket(bucket)
            .is_some_and(|entry| entry.acls_enabled())
    }

    /// The addressed object's ACL (from its stored access record).
    pub fn set_object_acl(&mut self, acl: Option<Acl>) {
        self.object_acl = acl;
    }

    /// `Ok` if this request may exercise `permission`, else `AccessDenied`.
    pub fn require(&self, permission: &Permission, bucket: Option<&str>) -> Result<(), S3Error> {
        match self.decide(permission, bucket) {
            Decision::Allow => Ok(()),
            Decision::Deny | Decision::NotApplicable => Err(denied()),
        }
    }

    /// Decides `endpoint` before its handler runs; returns the checks the handler makes later.
    pub fn require_endpoint(
        &self,
        endpoint: &Endpoint,
        traits: RequestTraits,
    ) -> Result<Option<Deferred>, S3Error> {
        let (needed, deferred) = access::permissions(endpoint, traits);
        let bucket = endpoint.bucket();
        for permission in &needed {
            if let Err(error) = self.require(permission, bucket) {
                return Err(self.missing_bucket_or(bucket, endpoint, error));
            }
        }
        if deferred.is_some() && bucket.is_some_and(|b| self.directory.bucket(b).is_none()) {
            return Err(S3Error::new(S3ErrorCode::NoSuchBucket));
        }
        Ok(deferred)
    }

    /// A request on a bucket that does not exist is answered `NoSuchBucket` (as S3 does)
    /// rather than `AccessDenied`, except for CreateBucket whose bucket never exists yet.
    fn missing_bucket_or(
        &self,
        bucket: Option<&str>,
        endpoint: &Endpoint,
        error: S3Error,
    ) -> S3Error {
        match bucket {
            Some(name)
                if self.directory.bucket(name).is_none()
                    && !matches!(endpoint, Endpoint::CreateBucket { .. }) =>
            {
                S3Error::new(S3ErrorCode::NoSuchBucket)
            }
            _ => error,
        }
    }

    /// `x-amz-expected-bucket-owner` (or the copy source's): the account id, or the bucket
    /// owner's canonical id; another value is `AccessDenied`, as S3 answers a wrong owner.
    pub fn check_expected_owner(
        &self,
        headers: &HeaderMap,
        header: &str,
        bucket: &str,
    ) -> Result<(), S3Error> {
        let Some(expected) = headers.get(header) else {
            return Ok(());
        };
        let expected = expected.to_str().unwrap_or("").trim();
        let owner = self
            .directory
            .bucket(bucket)
            .map(|entry| entry.owner.as_str());
        if expected == crate::identity::ACCOUNT_ID || owner.is_some_and(|o| o == expected) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// Whether ListBuckets shows `bucket` to this caller: root sees all, others the buckets
    /// they own or may list.
    pub fn lists_bucket(&self, bucket: &str) -> bool {
        if self.caller.is_root() && self.caller.session_policy.is_none() {
            return true;
        }
        let Some(entry) = self.directory.bucket(bucket) else {
            return false;
        };
        if self.caller.user.is_some() && entry.owner == self.caller.canonical_id() {
            return true;
        }
        let permission = Permission {
            action: "s3:ListBucket",
            resource: access::bucket_arn(bucket),
        };
        self.decide(&permission, Some(bucket)) == Decision::Allow
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
