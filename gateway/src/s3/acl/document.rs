//! The `<AccessControlPolicy>` document: what GetBucketAcl/GetObjectAcl return
//! ([`Acl::to_xml`]) and what PutBucketAcl/PutObjectAcl accept as a body ([`Acl::from_xml`]).
//!
//! Invariants: `Acl::from_xml(Acl::to_xml(acl)) == acl` for every ACL; a body that is not
//! well-formed or breaks the schema is `MalformedACLError` (AWS's answer for both), an unknown
//! group URI `InvalidArgument`, an email grantee `UnresolvableGrantByEmailAddress`. The schema
//! rules enforced are the ones AWS enforces (cross-checked with Scality's cloudserver, which
//! tested them against AWS): an `<Owner>` with a non-empty `<ID>`, exactly one
//! `<AccessControlList>` (empty is allowed: it revokes everything), each grant with exactly one
//! grantee and one known permission, at most [`MAX_GRANTS`] grants.

use serde::Deserialize;

use super::{Acl, Grant, Grantee, Group, Owner, Permission, MAX_GRANTS};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{parse_document, XmlWriter};

/// The namespace of the `xsi:type` attribute on `<Grantee>`.
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

const ROOT: &str = "AccessControlPolicy";

fn malformed_acl() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedACLError)
}

/// `InvalidArgument` for a group URI S3 does not define.
pub(crate) fn invalid_group_uri(uri: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument)
        .with_message("Invalid group uri")
        .with_extra("ArgumentName", "uri")
        .with_extra("ArgumentValue", uri)
}

/// `UnresolvableGrantByEmailAddress`: Strata has no account directory to look emails up in.
pub(crate) fn email_refused(email: &str) -> S3Error {
    S3Error::new(S3ErrorCode::UnresolvableGrantByEmailAddress).with_extra("EmailAddress", email)
}

#[derive(Debug, Deserialize)]
struct PolicyXml {
    #[serde(rename = "Owner", default)]
    owners: Vec<OwnerXml>,
    #[serde(rename = "AccessControlList", default)]
    lists: Vec<GrantListXml>,
}

#[derive(Debug, Deserialize)]
struct OwnerXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "DisplayName")]
    display_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct GrantListXml {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantXml>,
}

#[derive(Debug, Deserialize)]
struct GrantXml {
    #[serde(rename = "Grantee", default)]
    grantees: Vec<GranteeXml>,
    #[serde(rename = "Permission", default)]
    permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct GranteeXml {
    /// `xsi:type` (quick-xml keys attributes by local name).
    #[serde(rename = "@type")]
    kind: Option<String>,
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "DisplayName")]
    display_name: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email: Option<String>,
}

/// Trimmed, and `None` when empty.
fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl GranteeXml {
    fn into_grantee(self) -> Result<Grantee, S3Error> {
        let id = non_empty(self.id);
        let uri = non_empty(self.uri);
        let email = non_empty(self.email);
        let display_name = non_empty(self.display_name);
        // Without `xsi:type` (some hand-written bodies), the one child present says the kind.
        let kind = match self.kind.as_deref().map(str::trim) {
            Some(kind) => kind.to_owned(),
            None => match (&id, &uri, &email) {
                (Some(_), None, None) => "CanonicalUser".to_owned(),
                (None, Some(_), None) => "Group".to_owned(),
                (None, None, Some(_)) => "AmazonCustomerByEmail".to_owned(),
                _ => return Err(malformed_acl()),
            },
        };
        match kind.as_str() {
            "CanonicalUser" => {
                let id = id.ok_or_else(malformed_acl)?;
                Ok(Grantee::CanonicalUser { id, display_name })
            }
            "Group" => {
                let uri = uri.ok_or_else(malformed_acl)?;
                Group::from_uri(&uri)
                    .map(Grantee::Group)
                    .ok_or_else(|| invalid_group_uri(&uri))
            }
            "AmazonCustomerByEmail" => Err(email_refused(email.as_deref().unwrap_or_default())),
            _ => Err(malformed_acl()),
        }
    }
}

impl Acl {
    /// Parses an `<AccessControlPolicy>` body as is: the owner it names is kept, so the caller
    /// compares it with the resource's (see [`super::acl_from_request`]).
    pub fn from_xml(body: &[u8]) -> Result<Acl, S3Error> {
        let policy: PolicyXml = parse_document(body, ROOT).map_err(|_| malformed_acl())?;
        let [owner] = <[OwnerXml; 1]>::try_from(policy.owners).map_err(|_| malformed_acl())?;
        let owner = Owner {
            id: non_empty(owner.id).ok_or_else(malformed_acl)?,
            display_name: non_empty(owner.display_name).unwrap_or_default(),
        };
        let [list] = <[GrantListXml; 1]>::try_from(policy.lists).map_err(|_| malformed_acl())?;
        if list.grants.len() > MAX_GRANTS {
            return Err(malformed_acl());
        }
        let mut grants = Vec::with_capacity(list.grants.len());
        for grant in list.grants {
            let [grantee] =
                <[GranteeXml; 1]>::try_from(grant.grantees).map_err(|_| malformed_acl())?;
            let [permission] =
                <[String; 1]>::try_from(grant.permissions).map_err(|_| malformed_acl())?;
            let permission = Permission::parse(permission.trim()).ok_or_else(malformed_acl)?;
            grants.push(Grant::new(grantee.into_grantee()?, permission));
        }
        let acl = Acl { owner, grants };
        // Control characters cannot be written back as XML 1.0 (a `&#x1;` reference does not
        // parse): an id or name holding one is malformed (found by the xml fuzz target).
        if acl.texts().any(|text| text.chars().any(char::is_control)) {
            return Err(malformed_acl());
        }
        Ok(acl)
    }

    /// Every id and display name the ACL holds.
    fn texts(&self) -> impl Iterator<Item = &str> {
        let grantees = self.grants.iter().flat_map(|grant| match &grant.grantee {
            Grantee::CanonicalUser { id, display_name } => {
                vec![id.as_str(), display_name.as_deref().unwrap_or("")]
            }
            Grantee::Group(_) => Vec::new(),
        });
        [self.owner.id.as_str(), self.owner.display_name.as_str()]
            .into_iter()
            .chain(grantees)
    }

    /// The GetBucketAcl/GetObjectAcl body: `<AccessControlPolicy>` in the S3 namespace, each
    /// grantee typed with `xsi:type`, grants in stored order. Empty display names are left out.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new(ROOT);
        w.open("Owner").text("ID", &self.owner.id);
        if !self.owner.display_name.is_empty() {
            w.text("DisplayName", &self.owner.display_name);
        }
        w.close("Owner").open("AccessControlList");
        for grant in &self.grants {
            w.open("Grant");
            match &grant.grantee {
                Grantee::CanonicalUser { id, display_name } => {
                    w.open_with_attributes(
                        "Grantee",
                        &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "CanonicalUser")],
                    )
                    .text("ID", id)
                    .optional(
                        "DisplayName",
                        display_name.as_deref().filter(|name| !name.is_empty()),
                    );
                }
                Grantee::Group(group) => {
                    w.open_with_attributes(
                        "Grantee",
                        &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "Group")],
                    )
                    .text("URI", group.uri());
                }
            }
            w.close("Grantee")
                .text("Permission", grant.permission.as_str())
                .close("Grant");
        }
        w.close("AccessControlList");
        w.finish(ROOT)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::s3::acl::acl_from_request;

    const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
    const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

    fn alice() -> Owner {
        Owner::new("alice-id", "alice")
    }

    fn owner_grant(owner: &Owner, permission: Permission) -> Grant {
        Grant::new(Grantee::owner(owner), permission)
    }

    fn group_grant(group: Group, permission: Permission) -> Grant {
        Grant::new(Grantee::Group(group), permission)
    }

    #[test]
    fn renders_the_document_aws_returns() {
        let mut acl = Acl::canned("public-read", &alice(), None).unwrap();
        acl.grants
            .push(Grant::new(Grantee::user("bob-id"), Permission::WriteAcp));
        let expected = concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        "<Owner><ID>alice-id</ID><DisplayName>alice</DisplayName></Owner>",
        "<AccessControlList>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">",
        "<ID>alice-id</ID><DisplayName>alice</DisplayName></Grantee>",
        "<Permission>FULL_CONTROL</Permission></Grant>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">",
        "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>",
        "<Permission>READ</Permission></Grant>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">",
        "<ID>bob-id</ID></Grantee><Permission>WRITE_ACP</Permission></Grant>",
        "</AccessControlList></AccessControlPolicy>"
    );
        assert_eq!(acl.to_xml(), expected);
    }

    #[test]
    fn documents_round_trip() {
        let owner = Owner::new("o<&>\"", "");
        let mut acl = Acl::private(&owner);
        for group in Group::ALL {
            for permission in Permission::ALL {
                acl.grants.push(group_grant(group, permission));
            }
        }
        acl.grants.push(Grant::new(
            Grantee::CanonicalUser {
                id: "carol-id".to_owned(),
                display_name: Some("Carol & co".to_owned()),
            },
            Permission::Read,
        ));
        assert_eq!(Acl::from_xml(acl.to_xml().as_bytes()).unwrap(), acl);
        let empty = Acl {
            owner: alice(),
            grants: Vec::new(),
        };
        assert_eq!(Acl::from_xml(empty.to_xml().as_bytes()).unwrap(), empty);
    }

    /// As botocore serializes `put_bucket_acl(AccessControlPolicy=…)` (aws-cli's
    /// `--access-control-policy` and boto3 alike): the list before the owner, DisplayName before
    /// ID, and the grantee type as an `xsi:type` attribute.
    #[test]
    fn parses_the_body_botocore_sends() {
        let body = concat!(
        "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><AccessControlList>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">",
        "<DisplayName>alice</DisplayName><ID>alice-id</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">",
        "<URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI></Grantee><Permission>READ</Permission></Grant>",
        "</AccessControlList><Owner><DisplayName>alice</DisplayName><ID>alice-id</ID></Owner></AccessControlPolicy>"
    );
        let acl = acl_from_request(&HeaderMap::new(), body.as_bytes(), &alice(), None).unwrap();
        assert_eq!(
            acl.grants,
            vec![
                owner_grant(&alice(), Permission::FullControl),
                group_grant(Group::AuthenticatedUsers, Permission::Read),
            ]
        );
    }

    /// Hand-written bodies (s3cmd-style, pretty-printed, no namespace, no `xsi:type`): the child
    /// element says what the grantee is.
    #[test]
    fn parses_untyped_grantees_by_their_child() {
        let body = format!(
        "<?xml version=\"1.0\"?>\n<AccessControlPolicy>\n  <Owner><ID>alice-id</ID></Owner>\n  <AccessControlList>\n    <Grant>\n      <Grantee><ID> bob-id </ID></Grantee>\n      <Permission>READ_ACP</Permission>\n    </Grant>\n    <Grant>\n      <Grantee><URI>{LOG_DELIVERY}</URI></Grantee>\n      <Permission>WRITE</Permission>\n    </Grant>\n  </AccessControlList>\n</AccessControlPolicy>"
    );
        let acl = Acl::from_xml(body.as_bytes()).unwrap();
        assert_eq!(acl.owner, Owner::new("alice-id", ""));
        assert_eq!(
            acl.grants,
            vec![
                Grant::new(Grantee::user("bob-id"), Permission::ReadAcp),
                group_grant(Group::LogDelivery, Permission::Write),
            ]
        );
        let empty =
        b"<AccessControlPolicy><Owner><ID>a</ID></Owner><AccessControlList/></AccessControlPolicy>";
        assert!(Acl::from_xml(empty).unwrap().grants.is_empty());
    }

    fn policy(grants: &str) -> String {
        format!(
        "<AccessControlPolicy><Owner><ID>alice-id</ID></Owner><AccessControlList>{grants}</AccessControlList></AccessControlPolicy>"
    )
    }

    fn typed(kind: &str, child: &str) -> String {
        format!(
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"{kind}\">{child}</Grantee><Permission>READ</Permission></Grant>"
    )
    }

    #[test]
    fn refuses_bad_documents_with_the_errors_aws_uses() {
        let malformed = S3ErrorCode::MalformedACLError;
        let cases: Vec<(String, S3ErrorCode)> = vec![
        ("<AccessControlPolicy><Owner>".to_owned(), malformed),
        ("not xml at all".to_owned(), malformed),
        ("<Other/>".to_owned(), malformed),
        (
            "<AccessControlPolicy><AccessControlList/></AccessControlPolicy>".to_owned(),
            malformed,
        ),
        (
            "<AccessControlPolicy><Owner><ID> </ID></Owner><AccessControlList/></AccessControlPolicy>"
                .to_owned(),
            malformed,
        ),
        (
            "<AccessControlPolicy><Owner><ID>alice-id</ID></Owner></AccessControlPolicy>".to_owned(),
            malformed,
        ),
        (
            policy("<Grant><Grantee><ID>b</ID></Grantee><Permission>EXECUTE</Permission></Grant>"),
            malformed,
        ),
        (
            policy("<Grant><Grantee><ID>b</ID></Grantee><Permission>read</Permission></Grant>"),
            malformed,
        ),
        (
            policy("<Grant><Grantee><ID>b</ID></Grantee></Grant>"),
            malformed,
        ),
        (
            policy("<Grant><Permission>READ</Permission></Grant>"),
            malformed,
        ),
        (
            policy("<Grant><Grantee/><Permission>READ</Permission></Grant>"),
            malformed,
        ),
        (
            policy(&format!(
                "<Grant><Grantee><ID>b</ID><URI>{ALL_USERS}</URI></Grantee><Permission>READ</Permission></Grant>"
            )),
            malformed,
        ),
        (policy(&typed("CanonicalUser", "")), malformed),
        (policy(&typed("Group", "<ID>b</ID>")), malformed),
        (policy(&typed("Robot", "<ID>b</ID>")), malformed),
        (
            policy(&typed(
                "Group",
                "<URI>http://acs.amazonaws.com/groups/global/Everyone</URI>",
            )),
            S3ErrorCode::InvalidArgument,
        ),
        (
            policy(&typed(
                "AmazonCustomerByEmail",
                "<EmailAddress>x@example.com</EmailAddress>",
            )),
            S3ErrorCode::UnresolvableGrantByEmailAddress,
        ),
        (
            policy("<Grant><Grantee><EmailAddress>x@example.com</EmailAddress></Grantee><Permission>READ</Permission></Grant>"),
            S3ErrorCode::UnresolvableGrantByEmailAddress,
        ),
    ];
        for (body, code) in cases {
            let error = Acl::from_xml(body.as_bytes()).unwrap_err();
            assert_eq!(error.code, code, "{body}");
        }
    }

    #[test]
    fn documents_carry_at_most_one_hundred_grants() {
        let grant = |n: usize| {
            format!(
                "<Grant><Grantee><ID>user-{n}</ID></Grantee><Permission>READ</Permission></Grant>"
            )
        };
        let hundred: String = (0..100).map(grant).collect();
        assert_eq!(
            Acl::from_xml(policy(&hundred).as_bytes())
                .unwrap()
                .grants
                .len(),
            100
        );
        let too_many = format!("{hundred}{}", grant(100));
        assert_eq!(
            Acl::from_xml(policy(&too_many).as_bytes())
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedACLError
        );
    }
}
