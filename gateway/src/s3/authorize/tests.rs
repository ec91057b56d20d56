use std::sync::Arc;

use super::*;
use crate::identity::tests::directory;
use crate::s3::access::tests::every_endpoint_on;
use crate::s3::policy::ContextKeys;

fn access_of(access_key: Option<&str>) -> Access {
    let directory = Arc::new(directory());
    let caller = match access_key {
        None => Caller::anonymous(),
        Some(key) => Caller {
            user: Some(directory.user_of_key(key).unwrap()),
            session_policy: None,
            access_key: key.to_string(),
        },
    };
    Access::new(directory, caller, ContextKeys::new())
}

const TRAITS: [RequestTraits; 2] = [
    RequestTraits {
        addresses_version: false,
        sets_tags: false,
        sets_acl: false,
    },
    RequestTraits {
        addresses_version: true,
        sets_tags: true,
        sets_acl: true,
    },
];

/// The sample directory plus bucket `name` (owned by alice) with `policy`.
fn directory_with(name: &str, policy: &str) -> Arc<Directory> {
    let mut snapshot = crate::identity::tests::sample();
    snapshot.buckets.push(crate::identity::tests::bucket(
        name,
        "alice-id",
        Some(policy),
    ));
    Arc::new(crate::identity::build(
        &snapshot,
        &crate::identity::tests::master(),
        "ROOTKEY",
        "root-secret",
    ))
}

/// A user with no policy, on a bucket someone else owns: every operation is refused before
/// its handler runs, and the deferred checks (DeleteObjects keys, POST form keys) refuse too.
#[test]
fn every_endpoint_is_denied_to_a_user_without_rights() {
    let carol = access_of(Some("AKCAROL"));
    let anonymous = access_of(None);
    for who in [&carol, &anonymous] {
        for traits in TRAITS {
            for endpoint in every_endpoint_on("alices") {
                match who.require_endpoint(&endpoint, traits) {
                    Err(error) => assert_eq!(error.code, S3ErrorCode::AccessDenied, "{endpoint:?}"),
                    Ok(Some(Deferred::DeletePerKey)) => {
                        let permission = Permission {
                            action: "s3:DeleteObject",
                            resource: access::object_arn("alices", "k"),
                        };
                        assert!(who.require(&permission, Some("alices")).is_err());
                    }
                    Ok(Some(Deferred::PutFormKey)) => {
                        let put = Endpoint::PutObject {
                            bucket: "alices".into(),
                            key: "k".into(),
                        };
                        assert!(who.require_endpoint(&put, traits).is_err());
                    }
                    Ok(None) => panic!("{endpoint:?} was allowed"),
                }
            }
        }
    }
    assert!(!carol.lists_bucket("alices"));
}

/// The owner, root and a `readwrite` user may do everything on the bucket.
#[test]
fn owners_root_and_readwrite_users_are_allowed() {
    for key in ["AKALICE", "ROOTKEY"] {
        let who = access_of(Some(key));
        for traits in TRAITS {
            for endpoint in every_endpoint_on("alices") {
                assert!(
                    who.require_endpoint(&endpoint, traits).is_ok(),
                    "{key} {endpoint:?}"
                );
            }
        }
        assert!(who.lists_bucket("alices"));
    }
}

#[test]
fn bucket_policies_and_identity_policies_grant_what_they_name() {
    let get_pub = Endpoint::GetObject {
        bucket: "pub".into(),
        key: "page.html".into(),
    };
    let put_pub = Endpoint::PutObject {
        bucket: "pub".into(),
        key: "page.html".into(),
    };
    let plain = RequestTraits::default();
    // The public-read bucket policy lets anyone read, nobody but the owner write.
    for who in [
        access_of(None),
        access_of(Some("AKCAROL")),
        access_of(Some("AKBOB")),
    ] {
        assert!(who.require_endpoint(&get_pub, plain).is_ok());
        assert!(who.require_endpoint(&put_pub, plain).is_err());
    }
    // Bob's own policy reads pub/* only.
    let bob = access_of(Some("AKBOB"));
    let get_alices = Endpoint::GetObject {
        bucket: "alices".into(),
        key: "k".into(),
    };
    assert!(bob.require_endpoint(&get_alices, plain).is_err());
    // A missing bucket is NoSuchBucket for a signed caller, not AccessDenied.
    let missing = Endpoint::ListObjectsV2 {
        bucket: "nope".into(),
    };
    assert_eq!(
        bob.require_endpoint(&missing, plain).unwrap_err().code,
        S3ErrorCode::NoSuchBucket
    );
}

#[test]
fn explicit_deny_beats_every_allow_and_session_policies_narrow() {
    let directory = directory_with(
        "locked",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::locked/*"}]}"#,
    );
    let alice = Caller {
        user: directory.user_of_key("AKALICE"),
        session_policy: None,
        access_key: "AKALICE".into(),
    };
    let who = Access::new(directory.clone(), alice.clone(), ContextKeys::new());
    let delete = Endpoint::DeleteObject {
        bucket: "locked".into(),
        key: "k".into(),
    };
    let get = Endpoint::GetObject {
        bucket: "locked".into(),
        key: "k".into(),
    };
    let plain = RequestTraits::default();
    // Alice owns the bucket and has readwrite, yet the bucket policy's deny wins.
    assert!(who.require_endpoint(&delete, plain).is_err());
    assert!(who.require_endpoint(&get, plain).is_ok());
    // Root is the way back in.
    let root = Caller {
        user: directory.user_of_key("ROOTKEY"),
        session_policy: None,
        access_key: "ROOTKEY".into(),
    };
    assert!(Access::new(directory.clone(), root, ContextKeys::new())
        .require_endpoint(&delete, plain)
        .is_ok());
    // A session policy allowing only GetObject narrows readwrite to reads.
    let session = Policy::parse(
        br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        crate::s3::policy::PolicyKind::Identity,
    )
    .unwrap();
    let narrowed = Caller {
        session_policy: Some(Arc::new(session)),
        ..alice
    };
    let who = Access::new(directory, narrowed, ContextKeys::new());
    assert!(who.require_endpoint(&get, plain).is_ok());
    let put = Endpoint::PutObject {
        bucket: "alices".into(),
        key: "k".into(),
    };
    assert!(who.require_endpoint(&put, plain).is_err());
}

#[test]
fn existing_object_tags_are_read_only_for_policies_that_ask_and_then_decide() {
    let directory = directory_with(
        "tagged",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::tagged/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/secret":"yes"}}}]}"#,
    );
    let alice = Caller {
        user: directory.user_of_key("AKALICE"),
        session_policy: None,
        access_key: "AKALICE".into(),
    };
    let get = Endpoint::GetObject {
        bucket: "tagged".into(),
        key: "k".into(),
    };
    let plain = RequestTraits::default();
    let mut who = Access::new(directory.clone(), alice.clone(), ContextKeys::new());
    assert!(who.needs_existing_tags("tagged"));
    assert!(!who.needs_existing_tags("alices"));
    assert!(who.require_endpoint(&get, plain).is_ok());
    who.add_existing_tags(&[("secret".to_string(), "yes".to_string())]);
    assert!(who.require_endpoint(&get, plain).is_err());
    let mut other = Access::new(directory, alice, ContextKeys::new());
    other.add_existing_tags(&[("secret".to_string(), "no".to_string())]);
    assert!(other.require_endpoint(&get, plain).is_ok());
}
