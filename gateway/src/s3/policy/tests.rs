//! Whole-document tests: parsing, validation messages and evaluation.

use super::*;

const ACCOUNT: &str = "000000000000";

fn user(name: &str) -> Principal {
    Principal::User {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        account: ACCOUNT.to_string(),
        canonical_id: format!("canon-{name}"),
    }
}

fn bucket_policy(json: &str) -> Policy {
    Policy::parse(json.as_bytes(), PolicyKind::Bucket("photos")).unwrap()
}

fn refused(json: &str, kind: PolicyKind<'_>) -> String {
    Policy::parse(json.as_bytes(), kind)
        .unwrap_err()
        .to_string()
}

fn ask(
    policy: &Policy,
    who: &Principal,
    action: &str,
    resource: &str,
    keys: &ContextKeys,
) -> Decision {
    policy.evaluate(&Request {
        principal: who,
        action,
        resource,
        keys,
    })
}

const PUBLIC_READ: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "PublicRead",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["s3:GetObject"],
    "Resource": ["arn:aws:s3:::photos/*"]
  }]
}"#;

#[test]
fn public_read_allows_anyone_to_get_objects_only() {
    let policy = bucket_policy(PUBLIC_READ);
    let keys = ContextKeys::new();
    let anyone = Principal::Anonymous;
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:GetObject",
            "arn:aws:s3:::photos/a.jpg",
            &keys
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:PutObject",
            "arn:aws:s3:::photos/a.jpg",
            &keys
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:GetObject",
            "arn:aws:s3:::other/a.jpg",
            &keys
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:ListBucket",
            "arn:aws:s3:::photos",
            &keys
        ),
        Decision::NotApplicable
    );
    assert!(policy.is_public());
}

#[test]
fn explicit_deny_wins_inside_one_policy_and_across_sources() {
    let policy = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]},
          {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::000000000000:user/mallory"]},"Action":"s3:Delete*","Resource":"arn:aws:s3:::photos/*"}
        ]}"#,
    );
    let keys = ContextKeys::new();
    let object = "arn:aws:s3:::photos/k";
    assert_eq!(
        ask(&policy, &user("alice"), "s3:DeleteObject", object, &keys),
        Decision::Allow
    );
    assert_eq!(
        ask(&policy, &user("mallory"), "s3:DeleteObject", object, &keys),
        Decision::Deny
    );
    assert_eq!(
        ask(&policy, &user("mallory"), "s3:GetObject", object, &keys),
        Decision::Allow
    );
    assert_eq!(combine([Decision::Allow, Decision::Deny]), Decision::Deny);
    assert_eq!(
        combine([Decision::NotApplicable, Decision::Allow]),
        Decision::Allow
    );
    assert_eq!(combine([Decision::NotApplicable]), Decision::Deny);
    assert_eq!(combine([]), Decision::Deny);
}

#[test]
fn principals_by_arn_account_root_canonical_id_and_not_principal() {
    let policy = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"},
          {"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos"},
          {"Effect":"Allow","Principal":{"CanonicalUser":"canon-carol"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"},
          {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::photos"}
        ]}"#,
    );
    let keys = ContextKeys::new();
    let object = "arn:aws:s3:::photos/k";
    assert_eq!(
        ask(&policy, &user("alice"), "s3:GetObject", object, &keys),
        Decision::Allow
    );
    assert_eq!(
        ask(&policy, &user("bob"), "s3:GetObject", object, &keys),
        Decision::NotApplicable
    );
    // Granting to the account delegates to it: its root is allowed, its users still need
    // their own identity policy (AWS), so the grant alone does not reach bob.
    assert_eq!(
        ask(
            &policy,
            &user("bob"),
            "s3:ListBucket",
            "arn:aws:s3:::photos",
            &keys
        ),
        Decision::NotApplicable
    );
    let root = Principal::User {
        arn: format!("arn:aws:iam::{ACCOUNT}:root"),
        account: ACCOUNT.to_string(),
        canonical_id: "canon-root".to_string(),
    };
    assert_eq!(
        ask(
            &policy,
            &root,
            "s3:ListBucket",
            "arn:aws:s3:::photos",
            &keys
        ),
        Decision::Allow
    );
    // A Deny naming the account reaches every principal of it.
    let deny = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
          {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}
        ]}"#,
    );
    assert_eq!(
        ask(&deny, &user("bob"), "s3:GetObject", object, &keys),
        Decision::Deny
    );
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:ListBucket",
            "arn:aws:s3:::photos",
            &keys
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(&policy, &user("carol"), "s3:PutObject", object, &keys),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:DeleteBucket",
            "arn:aws:s3:::photos",
            &keys
        ),
        Decision::Deny
    );
    assert_eq!(
        ask(
            &policy,
            &user("bob"),
            "s3:DeleteBucket",
            "arn:aws:s3:::photos",
            &keys
        ),
        Decision::NotApplicable
    );
    assert!(
        !policy.is_public(),
        "a Deny with NotPrincipal grants nothing, an Allow to one account is not public"
    );
}

#[test]
fn not_action_and_not_resource() {
    let policy = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
          {"Effect":"Deny","Principal":"*","NotAction":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::photos/*"},
          {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::photos/private/*"}
        ]}"#,
    );
    let keys = ContextKeys::new();
    let anyone = Principal::Anonymous;
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:PutObject",
            "arn:aws:s3:::photos/x",
            &keys
        ),
        Decision::Deny
    );
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:GetObject",
            "arn:aws:s3:::photos/x",
            &keys
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &policy,
            &anyone,
            "s3:GetObject",
            "arn:aws:s3:::photos/private/x",
            &keys
        ),
        Decision::NotApplicable
    );
}

#[test]
fn conditions_source_ip_secure_transport_and_username_variables() {
    let policy = bucket_policy(
        r#"{"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*",
           "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"Bool":{"aws:SecureTransport":true}}},
          {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/alice","arn:aws:iam::000000000000:user/bob"]},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos",
           "Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}},
          {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/alice","arn:aws:iam::000000000000:user/bob"]},"Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::photos/home/${aws:username}/*"}
        ]}"#,
    );
    let mut keys = ContextKeys::from_pairs([
        ("aws:SourceIp", "10.9.9.9"),
        ("aws:SecureTransport", "true"),
    ]);
    let object = "arn:aws:s3:::photos/x";
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:GetObject",
            object,
            &keys
        ),
        Decision::Allow
    );
    keys.insert("aws:SecureTransport", "false");
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:GetObject",
            object,
            &keys
        ),
        Decision::NotApplicable
    );
    keys.insert("aws:SecureTransport", "true");
    keys.insert("aws:SourceIp", "192.168.1.1");
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:GetObject",
            object,
            &keys
        ),
        Decision::NotApplicable
    );
    assert!(
        !policy.is_public(),
        "every grant to * is limited by source IP"
    );

    let mut alice =
        ContextKeys::from_pairs([("aws:username", "alice"), ("s3:prefix", "home/alice/docs/")]);
    let bucket = "arn:aws:s3:::photos";
    assert_eq!(
        ask(&policy, &user("alice"), "s3:ListBucket", bucket, &alice),
        Decision::Allow
    );
    alice.insert("s3:prefix", "home/bob/");
    assert_eq!(
        ask(&policy, &user("alice"), "s3:ListBucket", bucket, &alice),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(
            &policy,
            &user("alice"),
            "s3:PutObject",
            "arn:aws:s3:::photos/home/alice/f",
            &alice
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &policy,
            &user("alice"),
            "s3:PutObject",
            "arn:aws:s3:::photos/home/bob/f",
            &alice
        ),
        Decision::NotApplicable
    );
}

#[test]
fn variables_are_literal_before_version_2012() {
    let policy = bucket_policy(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/${aws:username}/*"}]}"#,
    );
    let keys = ContextKeys::from_pairs([("aws:username", "alice")]);
    assert_eq!(
        ask(
            &policy,
            &user("alice"),
            "s3:GetObject",
            "arn:aws:s3:::photos/alice/x",
            &keys
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        ask(
            &policy,
            &user("alice"),
            "s3:GetObject",
            "arn:aws:s3:::photos/${aws:username}/x",
            &keys
        ),
        Decision::Allow
    );
}

#[test]
fn actions_match_case_insensitively_with_wildcards() {
    let policy = bucket_policy(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"S3:get*","Resource":"arn:aws:s3:::photos/*"}}"#,
    );
    let keys = ContextKeys::new();
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:GetObjectTagging",
            "arn:aws:s3:::photos/x",
            &keys
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &policy,
            &Principal::Anonymous,
            "s3:PutObject",
            "arn:aws:s3:::photos/x",
            &keys
        ),
        Decision::NotApplicable
    );
}

#[test]
fn identity_policies_have_no_principal_and_builtins_parse() {
    for name in ["readwrite", "readonly", "writeonly"] {
        let document = builtin_policy_document(name).unwrap();
        Policy::parse(document.as_bytes(), PolicyKind::Identity).unwrap();
    }
    assert!(builtin_policy_document("consoleAdmin").is_none());
    let readonly = Policy::parse(
        builtin_policy_document("readonly").unwrap().as_bytes(),
        PolicyKind::Identity,
    )
    .unwrap();
    let keys = ContextKeys::new();
    let alice = user("alice");
    assert_eq!(
        ask(
            &readonly,
            &alice,
            "s3:GetObject",
            "arn:aws:s3:::any/k",
            &keys
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &readonly,
            &alice,
            "s3:ListAllMyBuckets",
            "arn:aws:s3:::",
            &keys
        ),
        Decision::Allow
    );
    assert_eq!(
        ask(
            &readonly,
            &alice,
            "s3:PutObject",
            "arn:aws:s3:::any/k",
            &keys
        ),
        Decision::NotApplicable
    );
    let message = refused(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
        PolicyKind::Identity,
    );
    assert!(
        message.contains("should not specify a principal"),
        "{message}"
    );
    // Identity policies may name other services' actions; they simply never match S3 requests.
    Policy::parse(
        br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn malformed_policies_name_the_problem() {
    let bucket = PolicyKind::Bucket("photos");
    let cases: &[(&str, &str)] = &[
        ("", "first byte must be '{'"),
        ("[1]", "first byte must be '{'"),
        ("{", "valid JSON"),
        (r#"{"Statement":[]}"#, "Statement is empty"),
        (
            r#"{"Version":"2012-10-17"}"#,
            "Missing required field Statement",
        ),
        (
            r#"{"Version":"2019-01-01","Statement":[]}"#,
            "valid version",
        ),
        (r#"{"Statemnt":[]}"#, "Unknown field Statemnt"),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Missing required field Principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Permit","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Invalid effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObjekt","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "invalid action: s3:GetObjekt",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"iam:CreateUser","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "invalid action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            "invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos"}]}"#,
            "Action does not apply",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Action does not apply",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Invalid principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Invalid principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            "cannot both",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
            "Missing required field Resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::photos/*"}]}"#,
            "Action is empty",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"nope"}}}]}"#,
            "Invalid value",
        ),
        (
            r#"{"Statement":[{"Sid":"S1","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"s3:bogus":"x"}}}]}"#,
            "invalid condition key: s3:bogus (in statement \"S1\")",
        ),
    ];
    for (json, expected) in cases {
        let message = refused(json, bucket);
        assert!(message.contains(expected), "{json}: {message}");
    }
    let huge = format!(
        r#"{{"Statement":[],"Id":"{}"}}"#,
        "x".repeat(MAX_BUCKET_POLICY_BYTES)
    );
    assert!(refused(&huge, bucket).contains("cannot exceed"));
}

#[test]
fn wildcard_bucket_resources_and_service_resources() {
    Policy::parse(
        br#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pho*"}]}"#,
        PolicyKind::Bucket("photos"),
    )
    .unwrap();
    let message = refused(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::vid*"}]}"#,
        PolicyKind::Bucket("photos"),
    );
    assert!(message.contains("invalid resource"), "{message}");
}
