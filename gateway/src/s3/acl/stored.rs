//! The stored forms of an [`Acl`] and a [`PublicAccessBlock`]: JSON objects whose first member
//! is the format version, `{"v":1,…}`.
//!
//! Invariants: `decode(encode(x)) == x`; the bytes of version 1 are frozen by the golden tests
//! below (a change to them is a new version, with the old one still decoded); an unknown
//! version, permission or group is an error, never a default.

use serde::{Deserialize, Serialize};

use super::{Acl, Grant, Grantee, Group, Owner, Permission, PublicAccessBlock};

/// The version written by [`Acl::encode`] and [`PublicAccessBlock::encode`].
pub const STORED_VERSION: u32 = 1;

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredFormatError {
    #[error("stored ACL record is not valid JSON")]
    Json(#[from] serde_json::Error),
    #[error("stored ACL record has unknown format version {0}")]
    UnknownVersion(u32),
    #[error("stored ACL record names an unknown {kind} {value:?}")]
    UnknownName { kind: &'static str, value: String },
}

#[derive(Deserialize)]
struct VersionTag {
    v: u32,
}

#[derive(Serialize, Deserialize)]
struct StoredAcl {
    v: u32,
    owner: StoredOwner,
    grants: Vec<StoredGrant>,
}

#[derive(Serialize, Deserialize)]
struct StoredOwner {
    id: String,
    display_name: String,
}

#[derive(Serialize, Deserialize)]
struct StoredGrant {
    grantee: StoredGrantee,
    permission: String,
}

#[derive(Serialize, Deserialize)]
enum StoredGrantee {
    CanonicalUser {
        id: String,
        display_name: Option<String>,
    },
    Group(String),
}

#[derive(Serialize, Deserialize)]
struct StoredPublicAccessBlock {
    v: u32,
    block_public_acls: bool,
    ignore_public_acls: bool,
    block_public_policy: bool,
    restrict_public_buckets: bool,
}

fn check_version(bytes: &[u8]) -> Result<(), StoredFormatError> {
    let tag: VersionTag = serde_json::from_slice(bytes)?;
    if tag.v == STORED_VERSION {
        Ok(())
    } else {
        Err(StoredFormatError::UnknownVersion(tag.v))
    }
}

/// Serializes a stored record; these plain structs of strings and booleans always serialize.
fn to_json<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

impl Acl {
    /// The stored form (version 1).
    pub fn encode(&self) -> Vec<u8> {
        let grants = self
            .grants
            .iter()
            .map(|grant| StoredGrant {
                grantee: match &grant.grantee {
                    Grantee::CanonicalUser { id, display_name } => StoredGrantee::CanonicalUser {
                        id: id.clone(),
                        display_name: display_name.clone(),
                    },
                    Grantee::Group(group) => StoredGrantee::Group(group.name().to_owned()),
                },
                permission: grant.permission.as_str().to_owned(),
            })
            .collect();
        to_json(&StoredAcl {
            v: STORED_VERSION,
            owner: StoredOwner {
                id: self.owner.id.clone(),
                display_name: self.owner.display_name.clone(),
            },
            grants,
        })
    }

    /// Reads back what [`Acl::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Acl, StoredFormatError> {
        check_version(bytes)?;
        let stored: StoredAcl = serde_json::from_slice(bytes)?;
        let mut grants = Vec::with_capacity(stored.grants.len());
        for grant in stored.grants {
            let grantee = match grant.grantee {
                StoredGrantee::CanonicalUser { id, display_name } => {
                    Grantee::CanonicalUser { id, display_name }
                }
                StoredGrantee::Group(name) => Grantee::Group(Group::from_name(&name).ok_or(
                    StoredFormatError::UnknownName {
                        kind: "group",
                        value: name,
                    },
                )?),
            };
            let permission =
                Permission::parse(&grant.permission).ok_or(StoredFormatError::UnknownName {
                    kind: "permission",
                    value: grant.permission,
                })?;
            grants.push(Grant::new(grantee, permission));
        }
        Ok(Acl {
            owner: Owner {
                id: stored.owner.id,
                display_name: stored.owner.display_name,
            },
            grants,
        })
    }
}

impl PublicAccessBlock {
    /// The stored form (version 1).
    pub fn encode(&self) -> Vec<u8> {
        to_json(&StoredPublicAccessBlock {
            v: STORED_VERSION,
            block_public_acls: self.block_public_acls,
            ignore_public_acls: self.ignore_public_acls,
            block_public_policy: self.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets,
        })
    }

    /// Reads back what [`PublicAccessBlock::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<PublicAccessBlock, StoredFormatError> {
        check_version(bytes)?;
        let stored: StoredPublicAccessBlock = serde_json::from_slice(bytes)?;
        Ok(PublicAccessBlock {
            block_public_acls: stored.block_public_acls,
            ignore_public_acls: stored.ignore_public_acls,
            block_public_policy: stored.block_public_policy,
            restrict_public_buckets: stored.restrict_public_buckets,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Version 1 of the ACL record, frozen: stored ACLs must keep decoding.
    const ACL_V1: &str = concat!(
        r#"{"v":1,"owner":{"id":"owner-id","display_name":"alice"},"grants":["#,
        r#"{"grantee":{"CanonicalUser":{"id":"owner-id","display_name":"alice"}},"permission":"FULL_CONTROL"},"#,
        r#"{"grantee":{"CanonicalUser":{"id":"bob-id","display_name":null}},"permission":"READ_ACP"},"#,
        r#"{"grantee":{"Group":"AllUsers"},"permission":"READ"},"#,
        r#"{"grantee":{"Group":"AuthenticatedUsers"},"permission":"WRITE"},"#,
        r#"{"grantee":{"Group":"LogDelivery"},"permission":"WRITE_ACP"}]}"#
    );

    fn sample_acl() -> Acl {
        let owner = Owner::new("owner-id", "alice");
        let mut acl = Acl::private(&owner);
        acl.grants.extend([
            Grant::new(Grantee::user("bob-id"), Permission::ReadAcp),
            Grant::new(Grantee::Group(Group::AllUsers), Permission::Read),
            Grant::new(Grantee::Group(Group::AuthenticatedUsers), Permission::Write),
            Grant::new(Grantee::Group(Group::LogDelivery), Permission::WriteAcp),
        ]);
        acl
    }

    #[test]
    fn acl_record_bytes_are_frozen() {
        let acl = sample_acl();
        assert_eq!(String::from_utf8(acl.encode()).unwrap(), ACL_V1);
        assert_eq!(Acl::decode(ACL_V1.as_bytes()).unwrap(), acl);
    }

    #[test]
    fn public_access_block_record_bytes_are_frozen() {
        const V1: &str = r#"{"v":1,"block_public_acls":true,"ignore_public_acls":false,"block_public_policy":true,"restrict_public_buckets":false}"#;
        let block = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: false,
            block_public_policy: true,
            restrict_public_buckets: false,
        };
        assert_eq!(String::from_utf8(block.encode()).unwrap(), V1);
        assert_eq!(PublicAccessBlock::decode(V1.as_bytes()).unwrap(), block);
    }

    #[test]
    fn unknown_versions_and_names_are_errors() {
        let future = ACL_V1.replacen(r#""v":1"#, r#""v":2"#, 1);
        assert!(matches!(
            Acl::decode(future.as_bytes()),
            Err(StoredFormatError::UnknownVersion(2))
        ));
        let bad_group = ACL_V1.replace("LogDelivery", "Everybody");
        assert!(matches!(
            Acl::decode(bad_group.as_bytes()),
            Err(StoredFormatError::UnknownName { kind: "group", .. })
        ));
        let bad_permission = ACL_V1.replace("WRITE_ACP", "EXECUTE");
        assert!(matches!(
            Acl::decode(bad_permission.as_bytes()),
            Err(StoredFormatError::UnknownName {
                kind: "permission",
                ..
            })
        ));
        assert!(matches!(
            Acl::decode(b"not json"),
            Err(StoredFormatError::Json(_))
        ));
        assert!(matches!(
            PublicAccessBlock::decode(br#"{"v":7}"#),
            Err(StoredFormatError::UnknownVersion(7))
        ));
    }
}
