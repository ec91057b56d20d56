//! Tests of the ACL model, the canned ACLs, the request forms and the evaluation matrix.
#![allow(clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue};

use super::*;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

fn alice() -> Owner {
    Owner::new("alice-id", "alice")
}

fn bob() -> Owner {
    Owner::new("bob-id", "bob")
}

fn user(canonical_id: &str) -> Principal {
    Principal::User {
        arn: format!("arn:aws:iam::111122223333:user/{canonical_id}"),
        account: "111122223333".to_owned(),
        canonical_id: canonical_id.to_owned(),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn owner_grant(owner: &Owner, permission: Permission) -> Grant {
    Grant::new(Grantee::owner(owner), permission)
}

fn group_grant(group: Group, permission: Permission) -> Grant {
    Grant::new(Grantee::Group(group), permission)
}

// ---- canned ACLs ----

#[test]
fn canned_acls_have_exactly_the_documented_grants() {
    use Permission::*;
    let owner = alice();
    let full = owner_grant(&owner, FullControl);
    let cases: Vec<(&str, Vec<Grant>)> = vec![
        ("private", vec![full.clone()]),
        ("aws-exec-read", vec![full.clone()]),
        (
            "public-read",
            vec![full.clone(), group_grant(Group::AllUsers, Read)],
        ),
        (
            "public-read-write",
            vec![
                full.clone(),
                group_grant(Group::AllUsers, Read),
                group_grant(Group::AllUsers, Write),
            ],
        ),
        (
            "authenticated-read",
            vec![full.clone(), group_grant(Group::AuthenticatedUsers, Read)],
        ),
        (
            "log-delivery-write",
            vec![
                full.clone(),
                group_grant(Group::LogDelivery, Write),
                group_grant(Group::LogDelivery, ReadAcp),
            ],
        ),
        // On a bucket these two are ignored: the owner-only ACL.
        ("bucket-owner-read", vec![full.clone()]),
        ("bucket-owner-full-control", vec![full.clone()]),
    ];
    for (name, grants) in cases {
        let acl = Acl::canned(name, &owner, None).unwrap();
        assert_eq!(acl.owner, owner, "{name}");
        assert_eq!(acl.grants, grants, "{name}");
    }
}

#[test]
fn bucket_owner_canned_acls_add_the_bucket_owner_on_objects() {
    let writer = alice();
    let bucket_owner = bob();
    let acl = Acl::canned("bucket-owner-read", &writer, Some(&bucket_owner)).unwrap();
    assert_eq!(
        acl.grants,
        vec![
            owner_grant(&writer, Permission::FullControl),
            owner_grant(&bucket_owner, Permission::Read),
        ]
    );
    let acl = Acl::canned("bucket-owner-full-control", &writer, Some(&bucket_owner)).unwrap();
    assert_eq!(
        acl.grants,
        vec![
            owner_grant(&writer, Permission::FullControl),
            owner_grant(&bucket_owner, Permission::FullControl),
        ]
    );
    // The bucket owner writing its own object gets one grant, not two.
    let acl = Acl::canned("bucket-owner-full-control", &writer, Some(&writer)).unwrap();
    assert_eq!(acl, Acl::private(&writer));
    // Other canned ACLs ignore the bucket owner.
    let acl = Acl::canned("public-read", &writer, Some(&bucket_owner)).unwrap();
    assert_eq!(acl, Acl::canned("public-read", &writer, None).unwrap());
}

#[test]
fn unknown_canned_acl_is_invalid_argument() {
    for name in ["", "Private", "public", "bucket-owner", "public-read "] {
        let error = Acl::canned(name, &alice(), None).unwrap_err();
        assert_eq!(error.code, S3ErrorCode::InvalidArgument, "{name:?}");
    }
}

#[test]
fn public_means_a_grant_to_all_or_authenticated_users() {
    let owner = alice();
    for (name, public) in [
        ("private", false),
        ("public-read", true),
        ("public-read-write", true),
        ("authenticated-read", true),
        ("log-delivery-write", false),
    ] {
        assert_eq!(
            Acl::canned(name, &owner, None).unwrap().is_public(),
            public,
            "{name}"
        );
    }
}

// ---- grant headers ----

#[test]
fn grant_headers_list_quoted_and_bare_grantees() {
    let map = headers(&[
        (
            "x-amz-grant-read",
            r#"id="bob-id", uri="http://acs.amazonaws.com/groups/global/AllUsers""#,
        ),
        ("x-amz-grant-full-control", "ID=carol-id"),
        (
            "x-amz-grant-write",
            "uri=http://acs.amazonaws.com/groups/s3/LogDelivery",
        ),
        ("x-amz-grant-read-acp", r#"id = "dave-id" "#),
        ("x-amz-grant-read-acp", "id=erin-id"),
        (
            "x-amz-grant-write-acp",
            "Uri=\"http://acs.amazonaws.com/groups/global/AuthenticatedUsers\"",
        ),
    ]);
    let acl = Acl::from_grant_headers(&map, &alice()).unwrap().unwrap();
    assert_eq!(acl.owner, alice());
    // Header order, then order within the header; no implicit owner grant.
    assert_eq!(
        acl.grants,
        vec![
            Grant::new(Grantee::user("bob-id"), Permission::Read),
            group_grant(Group::AllUsers, Permission::Read),
            group_grant(Group::LogDelivery, Permission::Write),
            Grant::new(Grantee::user("dave-id"), Permission::ReadAcp),
            Grant::new(Grantee::user("erin-id"), Permission::ReadAcp),
            group_grant(Group::AuthenticatedUsers, Permission::WriteAcp),
            Grant::new(Grantee::user("carol-id"), Permission::FullControl),
        ]
    );
    assert!(Acl::from_grant_headers(&HeaderMap::new(), &alice())
        .unwrap()
        .is_none());
}

#[test]
fn grant_headers_refuse_emails_unknown_groups_and_bad_syntax() {
    let cases: [(&'static str, S3ErrorCode); 8] = [
        (
            r#"emailAddress="x@example.com""#,
            S3ErrorCode::UnresolvableGrantByEmailAddress,
        ),
        (
            r#"id="bob-id", emailaddress=x@example.com"#,
            S3ErrorCode::UnresolvableGrantByEmailAddress,
        ),
        (
            "uri=http://acs.amazonaws.com/groups/global/Everyone",
            S3ErrorCode::InvalidArgument,
        ),
        (
            "uri=https://acs.amazonaws.com/groups/global/AllUsers",
            S3ErrorCode::InvalidArgument,
        ),
        ("bob-id", S3ErrorCode::InvalidArgument),
        ("name=bob", S3ErrorCode::InvalidArgument),
        (r#"id="""#, S3ErrorCode::InvalidArgument),
        (r#"id="bob-id", "#, S3ErrorCode::InvalidArgument),
    ];
    for (value, code) in cases {
        let map = headers(&[("x-amz-grant-read", value)]);
        let error = Acl::from_grant_headers(&map, &alice()).unwrap_err();
        assert_eq!(error.code, code, "{value}");
    }
    let map = headers(&[("x-amz-grant-read", r#"id="unterminated"#)]);
    assert!(Acl::from_grant_headers(&map, &alice()).is_err());
}

#[test]
fn grant_headers_carry_at_most_one_hundred_grants() {
    let ids = |count: usize| {
        (0..count)
            .map(|n| format!("id=user-{n}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut map = HeaderMap::new();
    map.insert(
        "x-amz-grant-read",
        HeaderValue::from_str(&ids(100)).unwrap(),
    );
    assert_eq!(
        Acl::from_grant_headers(&map, &alice())
            .unwrap()
            .unwrap()
            .grants
            .len(),
        100
    );
    map.insert("x-amz-grant-write", HeaderValue::from_static("id=one-more"));
    assert_eq!(
        Acl::from_grant_headers(&map, &alice()).unwrap_err().code,
        S3ErrorCode::InvalidArgument
    );
}

// ---- one way to name an ACL ----

#[test]
fn a_request_names_its_acl_exactly_one_way() {
    let owner = alice();
    let body = Acl::canned("public-read", &owner, None).unwrap().to_xml();
    let canned = headers(&[("x-amz-acl", "public-read")]);
    let grant = headers(&[("x-amz-grant-read", "id=bob-id")]);
    let both = headers(&[("x-amz-acl", "private"), ("x-amz-grant-read", "id=bob-id")]);

    let acl = acl_from_request(&canned, b"", &owner, None).unwrap();
    assert_eq!(acl, Acl::canned("public-read", &owner, None).unwrap());
    let acl = acl_from_request(&grant, b"  \n", &owner, None).unwrap();
    assert_eq!(
        acl.grants,
        vec![Grant::new(Grantee::user("bob-id"), Permission::Read)]
    );
    let acl = acl_from_request(&HeaderMap::new(), body.as_bytes(), &owner, None).unwrap();
    assert!(acl.is_public());

    let error = acl_from_request(&both, b"", &owner, None).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::InvalidRequest);
    assert_eq!(
        error.message,
        "Specifying both Canned ACLs and Header Grants is not allowed"
    );
    for map in [&canned, &grant] {
        let error = acl_from_request(map, body.as_bytes(), &owner, None).unwrap_err();
        assert_eq!(error.code, S3ErrorCode::InvalidRequest);
    }
    let error = acl_from_request(&HeaderMap::new(), b"", &owner, None).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::MissingSecurityHeader);
    assert_eq!(
        error.extra,
        vec![("MissingHeaderName", "x-amz-acl".to_owned())]
    );
    // A write without ACL headers keeps the caller's default.
    assert!(acl_from_headers(&HeaderMap::new(), &owner, None)
        .unwrap()
        .is_none());
    assert_eq!(
        acl_from_headers(&both, &owner, None).unwrap_err().code,
        S3ErrorCode::InvalidRequest
    );
}

#[test]
fn a_body_cannot_change_the_owner() {
    let body = Acl::private(&bob()).to_xml();
    let error = acl_from_request(&HeaderMap::new(), body.as_bytes(), &alice(), None).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::AccessDenied);
    // The resource's owner record wins over the display name a body sends.
    let body = Acl::private(&Owner::new("alice-id", "someone else")).to_xml();
    let acl = acl_from_request(&HeaderMap::new(), body.as_bytes(), &alice(), None).unwrap();
    assert_eq!(acl.owner, alice());
}

// ---- evaluation ----

/// Every grantee kind against every principal kind, each permission, on both targets.
#[test]
fn evaluation_matrix() {
    use Decision::{Allow, NotApplicable};
    let owner = alice();
    let anonymous = Principal::Anonymous;
    let bob = user("bob-id");
    let carol = user("carol-id");
    let grantees = [
        (Grantee::Group(Group::AllUsers), [Allow, Allow, Allow]),
        (
            Grantee::Group(Group::AuthenticatedUsers),
            [NotApplicable, Allow, Allow],
        ),
        (
            Grantee::Group(Group::LogDelivery),
            [NotApplicable, NotApplicable, NotApplicable],
        ),
        (
            Grantee::user("bob-id"),
            [NotApplicable, Allow, NotApplicable],
        ),
    ];
    // (target, action, permissions that give it)
    let actions: [(AclTarget, &str, &[Permission]); 10] = [
        (AclTarget::Bucket, "s3:ListBucket", &[Permission::Read]),
        (
            AclTarget::Bucket,
            "s3:listbucketversions",
            &[Permission::Read],
        ),
        (AclTarget::Bucket, "s3:PutObject", &[Permission::Write]),
        (AclTarget::Bucket, "S3:DELETEOBJECT", &[Permission::Write]),
        (AclTarget::Bucket, "s3:GetBucketAcl", &[Permission::ReadAcp]),
        (
            AclTarget::Bucket,
            "s3:PutBucketAcl",
            &[Permission::WriteAcp],
        ),
        (AclTarget::Object, "s3:GetObject", &[Permission::Read]),
        (
            AclTarget::Object,
            "s3:GetObjectVersionAcl",
            &[Permission::ReadAcp],
        ),
        (
            AclTarget::Object,
            "s3:PutObjectAcl",
            &[Permission::WriteAcp],
        ),
        // No permission gives object writes on the object itself.
        (AclTarget::Object, "s3:PutObject", &[]),
    ];
    for (grantee, by_principal) in &grantees {
        for permission in Permission::ALL {
            let acl = Acl {
                owner: owner.clone(),
                grants: vec![Grant::new(grantee.clone(), permission)],
            };
            for (target, action, giving) in actions {
                let gives = (permission == Permission::FullControl && !giving.is_empty())
                    || giving.contains(&permission);
                for (principal, expected) in
                    [&anonymous, &bob, &carol].into_iter().zip(by_principal)
                {
                    let expected = if gives { *expected } else { NotApplicable };
                    assert_eq!(
                        acl.evaluate(principal, action, target),
                        expected,
                        "{grantee:?} {permission:?} {principal:?} {action} {target:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn acls_never_deny_and_ignore_unmapped_actions() {
    let acl = Acl::canned("public-read-write", &alice(), None).unwrap();
    for action in ["s3:PutBucketPolicy", "s3:GetObject", "s3:DeleteBucket", "*"] {
        assert_eq!(
            acl.evaluate(&Principal::Anonymous, action, AclTarget::Bucket),
            Decision::NotApplicable,
            "{action}"
        );
    }
    assert_eq!(
        acl.evaluate(&Principal::Anonymous, "s3:PutObject", AclTarget::Bucket),
        Decision::Allow
    );
    assert_eq!(
        acl.evaluate_ignoring_public_grants(
            &Principal::Anonymous,
            "s3:PutObject",
            AclTarget::Bucket
        ),
        Decision::NotApplicable
    );
}

#[test]
fn the_owner_may_always_read_and_write_the_acl() {
    let revoked = Acl {
        owner: alice(),
        grants: Vec::new(),
    };
    let owner = user("alice-id");
    for (action, target, expected) in [
        ("s3:GetBucketAcl", AclTarget::Bucket, Decision::Allow),
        ("s3:PutBucketAcl", AclTarget::Bucket, Decision::Allow),
        ("s3:GetObjectAcl", AclTarget::Object, Decision::Allow),
        ("s3:PutObjectVersionAcl", AclTarget::Object, Decision::Allow),
        ("s3:ListBucket", AclTarget::Bucket, Decision::NotApplicable),
        ("s3:GetObject", AclTarget::Object, Decision::NotApplicable),
    ] {
        assert_eq!(
            revoked.evaluate(&owner, action, target),
            expected,
            "{action}"
        );
        assert_eq!(
            revoked.evaluate(&user("bob-id"), action, target),
            Decision::NotApplicable,
            "{action}"
        );
    }
}

#[test]
fn lists_canonical_ids_and_recognizes_owner_only_acls() {
    let mut acl = Acl::canned("authenticated-read", &alice(), None).unwrap();
    acl.grants
        .push(Grant::new(Grantee::user("bob-id"), Permission::Read));
    assert_eq!(
        acl.canonical_ids().collect::<Vec<_>>(),
        ["alice-id", "bob-id"]
    );
    assert!(!acl.is_full_control_only_for("alice-id"));
    assert!(Acl::private(&alice()).is_full_control_only_for("alice-id"));
    assert!(!Acl::private(&alice()).is_full_control_only_for("bob-id"));
    assert_eq!(
        Group::from_uri(AUTHENTICATED_USERS),
        Some(Group::AuthenticatedUsers)
    );
    assert_eq!(Group::from_uri(&ALL_USERS.to_lowercase()), None);
}

/// Found by the xml fuzz target: a raw control character in an id parsed, but its rendering
/// (`&#x1;`) did not parse back. Such a document is malformed.
#[test]
fn control_characters_in_ids_are_malformed() {
    let body = "<AccessControlPolicy><Owner><ID>owner</ID></Owner><AccessControlList><Grant>\
        <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">\
        <ID>ow\u{1}ner</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>\
        </AccessControlList></AccessControlPolicy>";
    assert_eq!(
        Acl::from_xml(body.as_bytes()).unwrap_err().code,
        S3ErrorCode::MalformedACLError
    );
    let fine = body.replace('\u{1}', "");
    let acl = Acl::from_xml(fine.as_bytes()).unwrap();
    assert_eq!(Acl::from_xml(acl.to_xml().as_bytes()).unwrap(), acl);
}
