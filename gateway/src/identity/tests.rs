use metadata::catalog::IdentitySnapshot;
use metadata::model::{AccessKeyRecord, BucketAccess, BucketRecord, PolicyRecord, UserRecord};

use super::*;

pub(crate) fn master() -> MasterKeyring {
    let mut ring = MasterKeyring::default();
    ring.push("m", [3; 32]);
    ring
}

pub(crate) fn user(name: &str, policies: &[&str]) -> UserRecord {
    UserRecord {
        name: name.to_string(),
        canonical_id: format!("{name}-id"),
        created_ms: 1,
        policies: policies.iter().map(|p| p.to_string()).collect(),
        access_keys: Vec::new(),
    }
}

pub(crate) fn key(access: &str, user: &str, secret: &str, active: bool) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key: access.to_string(),
        user: user.to_string(),
        sealed_secret: secrets::seal(&master(), access, secret).unwrap(),
        active,
        created_ms: 2,
    }
}

pub(crate) fn bucket(name: &str, owner: &str, policy: Option<&str>) -> BucketRecord {
    BucketRecord {
        name: name.to_string(),
        id: [1; 16],
        created_ms: 3,
        owner: owner.to_string(),
        region: "us-east-1".to_string(),
        default_encryption: None,
        access: policy.map(|p| BucketAccess {
            policy: Some(p.to_string()),
            ..BucketAccess::default()
        }),
    }
}

/// alice (readwrite), bob (a stored policy) with a disabled second key, carol (nothing).
pub(crate) fn sample() -> IdentitySnapshot {
    IdentitySnapshot {
        generation: 7,
        users: vec![
            user("alice", &["readwrite"]),
            user("bob", &["bobs", "missing"]),
            user("carol", &[]),
        ],
        keys: vec![
            key("AKALICE", "alice", "alice-secret", true),
            key("AKBOB", "bob", "bob-secret", true),
            key("AKBOBOLD", "bob", "old-secret", false),
            key("AKCAROL", "carol", "carol-secret", true),
        ],
        policies: vec![PolicyRecord {
            name: "bobs".to_string(),
            document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}]}"#.to_string(),
            created_ms: 4,
        }],
        buckets: vec![
            bucket("alices", "alice-id", None),
            bucket(
                "pub",
                "alice-id",
                Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}]}"#),
            ),
        ],
    }
}

pub(crate) fn directory() -> Directory {
    build(&sample(), &master(), "ROOTKEY", "root-secret")
}

#[test]
fn keys_users_and_policies_come_from_the_snapshot() {
    let dir = directory();
    assert_eq!(dir.generation, 7);
    assert_eq!(dir.keyring.secret("AKALICE"), Some("alice-secret"));
    assert_eq!(dir.keyring.secret("ROOTKEY"), Some("root-secret"));
    // A disabled key has no secret in memory and no user.
    assert_eq!(dir.keyring.secret("AKBOBOLD"), None);
    assert!(dir.user_of_key("AKBOBOLD").is_none());
    assert!(dir.user_of_key("nope").is_none());
    let bob = dir.user_of_key("AKBOB").unwrap();
    assert_eq!(bob.name, "bob");
    assert_eq!(bob.arn, "arn:aws:iam::000000000000:user/bob");
    // The missing policy name grants nothing; the stored one is parsed.
    assert_eq!(bob.policies.len(), 1);
    let root = dir.user_of_key("ROOTKEY").unwrap();
    assert!(root.admin);
    assert_eq!(dir.display_name("alice-id"), "alice");
    assert_eq!(dir.display_name("ROOTKEY"), "root");
    assert!(dir.bucket("pub").unwrap().policy.is_some());
    assert!(dir.bucket("alices").unwrap().policy.is_none());
    assert!(!format!("{dir:?}").contains("alice-secret"));
}

#[test]
fn a_key_sealed_under_a_lost_master_key_is_left_out() {
    let mut snapshot = sample();
    let mut other = MasterKeyring::default();
    other.push("other", [9; 32]);
    snapshot.keys[0].sealed_secret = secrets::seal(&other, "AKALICE", "x").unwrap();
    let dir = build(&snapshot, &master(), "ROOTKEY", "root-secret");
    assert_eq!(dir.keyring.secret("AKALICE"), None);
    assert_eq!(dir.keyring.secret("AKBOB"), Some("bob-secret"));
}

#[test]
fn user_names_follow_iam_rules() {
    assert!(validate_user_name("svc.backup@team-1").is_ok());
    for bad in ["", "root", "a b", "a/b", &"x".repeat(65)] {
        assert!(validate_user_name(bad).is_err(), "{bad:?}");
    }
    let id = new_access_key_id();
    assert_eq!(id.len(), 20);
    assert!(
        id.starts_with("SK")
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    assert_eq!(new_secret_key().len(), 40);
}

#[tokio::test]
async fn the_service_sees_changes_at_once_and_other_catalog_users_after_a_generation_check() {
    let catalog = Catalog::in_memory();
    let service = IdentityService::new(
        catalog.clone(),
        master(),
        "ROOTKEY".into(),
        "root-secret".into(),
        true,
    )
    .await
    .unwrap();
    let created = service
        .create_user("dave", vec!["readonly".into()])
        .await
        .unwrap();
    assert_eq!(created.policies, ["readonly"]);
    let pair = service.create_key("dave").await.unwrap();
    let dir = service.current().await.unwrap();
    assert_eq!(
        dir.keyring.secret(&pair.access_key),
        Some(pair.secret_key.as_str())
    );
    // Another gateway on the same catalog disables the key: the next check sees it.
    catalog
        .set_access_key_active(&pair.access_key, false)
        .unwrap();
    let dir = service.current().await.unwrap();
    assert!(dir.user_of_key(&pair.access_key).is_none());
    assert!(matches!(
        service.create_user("dave", vec![]).await,
        Err(IdentityError::Meta(MetaError::UserExists))
    ));
    assert!(matches!(
        service.create_user("erin", vec!["no-such".into()]).await,
        Err(IdentityError::Meta(MetaError::NoSuchPolicy))
    ));
    // The failed attach left no half-made user behind.
    assert!(service
        .list_users()
        .await
        .unwrap()
        .iter()
        .all(|u| u.name != "erin"));
    assert!(service.put_policy("readonly", "{}").await.is_err());
    assert!(matches!(
        service
            .put_policy("p", r#"{"Statement":[{"Effect":"Maybe"}]}"#)
            .await,
        Err(IdentityError::Invalid { .. })
    ));
}
