//! S3 access control lists as AWS defines them: the ACL model ([`Acl`], [`Grant`], [`Grantee`],
//! [`Permission`]), canned ACLs, the `x-amz-grant-*` headers and the `<AccessControlPolicy>`
//! document ([`request`], [`document`]), the stored form ([`stored`]), and the two bucket
//! settings that govern ACLs: Object Ownership ([`ownership`]) and Public Access Block
//! ([`public_access`]).
//!
//! The module is pure: it never reads a catalog or a request body itself, so the handlers decide
//! where ACLs live and this module decides what they mean.
//!
//! Invariants:
//! - An [`Acl`] only ever holds grantees S3 can name without an account directory: canonical
//!   users and the three predefined groups. Email grantees are refused when parsed
//!   (`UnresolvableGrantByEmailAddress`), never stored.
//! - Grants keep the order they were given in; GetAcl returns them in that order.
//! - [`Acl::evaluate`] never answers [`Decision::Deny`]: an ACL can only grant. Its permission
//!   to action mapping is AWS's "Mapping of ACL permissions and access policy permissions"
//!   table, in [`permission_for_action`], and nowhere else.
//! - The resource owner may always read and write the ACL (implicit READ_ACP and WRITE_ACP),
//!   even after an ACL that no longer names them: this is how S3 lets an owner who revoked
//!   every grant restore the ACL (s3-tests `test_bucket_acl_revoke_all`).

pub mod document;
pub mod ownership;
pub mod public_access;
pub mod request;
pub mod stored;

#[cfg(test)]
mod tests;

pub use ownership::ObjectOwnership;
pub use public_access::PublicAccessBlock;
pub use request::{acl_from_headers, acl_from_request};
pub use stored::StoredFormatError;

use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::policy::{Decision, Principal};

/// Most grants one ACL may carry (AWS: "An ACL can have up to 100 grants").
pub const MAX_GRANTS: usize = 100;

/// The owner of a bucket or an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The canonical id grants and principals are matched by.
    pub id: String,
    /// Shown in `<DisplayName>`; empty when unknown (then not written).
    pub display_name: String,
}

impl Owner {
    pub fn new(id: impl Into<String>, display_name: impl Into<String>) -> Owner {
        Owner {
            id: id.into(),
            display_name: display_name.into(),
        }
    }
}

/// S3's predefined groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Everyone, signed or not.
    AllUsers,
    /// Every signed request, of any account.
    AuthenticatedUsers,
    /// The server-access-log writer; no Strata principal is a member.
    LogDelivery,
}

impl Group {
    pub const ALL: [Group; 3] = [
        Group::AllUsers,
        Group::AuthenticatedUsers,
        Group::LogDelivery,
    ];

    /// The `<URI>` S3 names the group by.
    pub fn uri(self) -> &'static str {
        match self {
            Group::AllUsers => "http://acs.amazonaws.com/groups/global/AllUsers",
            Group::AuthenticatedUsers => {
                "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
            }
            Group::LogDelivery => "http://acs.amazonaws.com/groups/s3/LogDelivery",
        }
    }

    /// The group a `<URI>` or `uri=` names; exact match, as S3 compares them.
    pub fn from_uri(uri: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|group| group.uri() == uri)
    }

    /// The name used in the stored form.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Group::AllUsers => "AllUsers",
            Group::AuthenticatedUsers => "AuthenticatedUsers",
            Group::LogDelivery => "LogDelivery",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|group| group.name() == name)
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    CanonicalUser {
        id: String,
        display_name: Option<String>,
    },
    Group(Group),
}

impl Grantee {
    /// A canonical-user grantee without a display name.
    pub fn user(id: impl Into<String>) -> Grantee {
        Grantee::CanonicalUser {
            id: id.into(),
            display_name: None,
        }
    }

    /// The grantee for an owner, display name included when known.
    pub fn owner(owner: &Owner) -> Grantee {
        Grantee::CanonicalUser {
            id: owner.id.clone(),
            display_name: (!owner.display_name.is_empty()).then(|| owner.display_name.clone()),
        }
    }

    /// True when `principal` is this grantee or a member of it.
    pub fn matches(&self, principal: &Principal) -> bool {
        match (self, principal) {
            (Grantee::Group(Group::AllUsers), _) => true,
            (Grantee::Group(Group::AuthenticatedUsers), Principal::User { .. }) => true,
            (Grantee::CanonicalUser { id, .. }, Principal::User { canonical_id, .. }) => {
                id == canonical_id
            }
            _ => false,
        }
    }

    /// AWS's definition of a public grantee: the AllUsers or AuthenticatedUsers group.
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            Grantee::Group(Group::AllUsers | Group::AuthenticatedUsers)
        )
    }
}

/// An ACL permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Read,
        Permission::Write,
        Permission::ReadAcp,
        Permission::WriteAcp,
        Permission::FullControl,
    ];

    /// The name in `<Permission>` (and in the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    /// Parses a `<Permission>` value; exact, upper case, as S3 writes them.
    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL
            .into_iter()
            .find(|permission| permission.as_str() == name)
    }

    /// True when holding `self` gives `needed` (FULL_CONTROL gives everything).
    fn covers(self, needed: Permission) -> bool {
        self == needed || self == Permission::FullControl
    }
}

/// One grant of an ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

impl Grant {
    pub fn new(grantee: Grantee, permission: Permission) -> Grant {
        Grant {
            grantee,
            permission,
        }
    }
}

/// What an ACL is attached to: the same permission means different actions on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclTarget {
    Bucket,
    Object,
}

/// The ACL of one bucket or object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub owner: Owner,
    pub grants: Vec<Grant>,
}

impl Acl {
    /// The default ACL of a new resource: the owner has FULL_CONTROL, nobody else anything.
    pub fn private(owner: &Owner) -> Acl {
        Acl {
            owner: owner.clone(),
            grants: vec![Grant::new(Grantee::owner(owner), Permission::FullControl)],
        }
    }

    /// The ACL a canned name (`x-amz-acl`) stands for, exactly as AWS's "Canned ACL" table lists
    /// it, owner's FULL_CONTROL first.
    ///
    /// `bucket_owner` is `Some` for an object (the owner of its bucket) and `None` for a bucket:
    /// `bucket-owner-read` and `bucket-owner-full-control` add the bucket owner's grant on
    /// objects only, and only when the bucket owner is someone else; on a bucket S3 ignores
    /// them, which leaves the owner-only ACL. `aws-exec-read` gives Amazon EC2 read access to
    /// AMI bundles; Strata has no EC2 to grant it to, so it is the owner-only ACL as well.
    /// Any other name is `InvalidArgument`.
    pub fn canned(name: &str, owner: &Owner, bucket_owner: Option<&Owner>) -> Result<Acl, S3Error> {
        let mut acl = Acl::private(owner);
        let mut add =
            |grantee: Grantee, permission| acl.grants.push(Grant::new(grantee, permission));
        let other_bucket_owner = bucket_owner.filter(|bucket_owner| bucket_owner.id != owner.id);
        match name {
            "private" | "aws-exec-read" => {}
            "public-read" => add(Grantee::Group(Group::AllUsers), Permission::Read),
            "public-read-write" => {
                add(Grantee::Group(Group::AllUsers), Permission::Read);
                add(Grantee::Group(Group::AllUsers), Permission::Write);
            }
            "authenticated-read" => {
                add(Grantee::Group(Group::AuthenticatedUsers), Permission::Read);
            }
            "log-delivery-write" => {
                add(Grantee::Group(Group::LogDelivery), Permission::Write);
                add(Grantee::Group(Group::LogDelivery), Permission::ReadAcp);
            }
            "bucket-owner-read" => {
                if let Some(bucket_owner) = other_bucket_owner {
                    add(Grantee::owner(bucket_owner), Permission::Read);
                }
            }
            "bucket-owner-full-control" => {
                if let Some(bucket_owner) = other_bucket_owner {
                    add(Grantee::owner(bucket_owner), Permission::FullControl);
                }
            }
            _ => {
                return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                    .with_extra("ArgumentName", "x-amz-acl")
                    .with_extra("ArgumentValue", name))
            }
        }
        Ok(acl)
    }

    /// AWS's definition of a public ACL: any grant to AllUsers or AuthenticatedUsers.
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|grant| grant.grantee.is_public())
    }

    /// True when the ACL grants nothing but FULL_CONTROL to `id` (S3's test for "equivalent to
    /// bucket-owner-full-control" when ACLs are disabled).
    pub fn is_full_control_only_for(&self, id: &str) -> bool {
        self.grants.iter().all(|grant| {
            grant.permission == Permission::FullControl
                && matches!(&grant.grantee, Grantee::CanonicalUser { id: grantee, .. } if grantee == id)
        })
    }

    /// The canonical ids the grants name, in order (the caller checks that they exist: S3
    /// answers `InvalidArgument` for a grant to an unknown id).
    pub fn canonical_ids(&self) -> impl Iterator<Item = &str> {
        self.grants.iter().filter_map(|grant| match &grant.grantee {
            Grantee::CanonicalUser { id, .. } => Some(id.as_str()),
            Grantee::Group(_) => None,
        })
    }

    /// What this ACL says about `principal` doing `action` (`s3:GetObject`, any case) on its
    /// `target`: `Allow` when a grant to a grantee matching the principal carries a permission
    /// that gives the action, else `NotApplicable`. Never `Deny`.
    ///
    /// For object writes the caller passes the bucket's ACL with [`AclTarget::Bucket`] (bucket
    /// WRITE is what lets a grantee create and delete objects).
    pub fn evaluate(&self, principal: &Principal, action: &str, target: AclTarget) -> Decision {
        self.evaluate_grants(principal, action, target, false)
    }

    /// [`Acl::evaluate`] with Public Access Block's `IgnorePublicAcls` applied: grants to
    /// AllUsers and AuthenticatedUsers are skipped.
    pub fn evaluate_ignoring_public_grants(
        &self,
        principal: &Principal,
        action: &str,
        target: AclTarget,
    ) -> Decision {
        self.evaluate_grants(principal, action, target, true)
    }

    fn evaluate_grants(
        &self,
        principal: &Principal,
        action: &str,
        target: AclTarget,
        ignore_public: bool,
    ) -> Decision {
        let Some(needed) = permission_for_action(action, target) else {
            return Decision::NotApplicable;
        };
        let is_owner = matches!(principal, Principal::User { canonical_id, .. } if *canonical_id == self.owner.id);
        if is_owner && matches!(needed, Permission::ReadAcp | Permission::WriteAcp) {
            return Decision::Allow;
        }
        let granted = self.grants.iter().any(|grant| {
            !(ignore_public && grant.grantee.is_public())
                && grant.permission.covers(needed)
                && grant.grantee.matches(principal)
        });
        if granted {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }
}

/// The ACL permission that gives `action` on `target` (AWS's "Mapping of ACL permissions and
/// access policy permissions"); `None` for actions no ACL permission gives. FULL_CONTROL gives
/// each of them. Object WRITE gives nothing: writes are governed by the bucket's WRITE.
pub fn permission_for_action(action: &str, target: AclTarget) -> Option<Permission> {
    const BUCKET: &[(&str, Permission)] = &[
        ("s3:ListBucket", Permission::Read),
        ("s3:ListBucketVersions", Permission::Read),
        ("s3:ListBucketMultipartUploads", Permission::Read),
        ("s3:PutObject", Permission::Write),
        ("s3:DeleteObject", Permission::Write),
        ("s3:DeleteObjectVersion", Permission::Write),
        ("s3:GetBucketAcl", Permission::ReadAcp),
        ("s3:PutBucketAcl", Permission::WriteAcp),
    ];
    const OBJECT: &[(&str, Permission)] = &[
        ("s3:GetObject", Permission::Read),
        ("s3:GetObjectVersion", Permission::Read),
        ("s3:GetObjectAcl", Permission::ReadAcp),
        ("s3:GetObjectVersionAcl", Permission::ReadAcp),
        ("s3:PutObjectAcl", Permission::WriteAcp),
        ("s3:PutObjectVersionAcl", Permission::WriteAcp),
    ];
    let table = match target {
        AclTarget::Bucket => BUCKET,
        AclTarget::Object => OBJECT,
    };
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(action))
        .map(|(_, permission)| *permission)
}
