//! S3 Object Ownership: the bucket setting that decides who owns uploaded objects and whether
//! ACLs are in force, with its `<OwnershipControls>` document and CreateBucket's
//! `x-amz-object-ownership` header.
//!
//! Invariants: a document holds exactly one rule with one of the three known values, anything
//! else is `MalformedXML`; an unknown header value is `InvalidArgument`. With
//! `BucketOwnerEnforced` (AWS's default for new buckets since April 2023) ACLs are disabled:
//! the bucket owner owns every object, and only ACLs equivalent to "bucket owner has
//! FULL_CONTROL" may be written ([`ObjectOwnership::check_acl_write`]).

use serde::Deserialize;

use super::{Acl, Owner};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::header_str;
use crate::s3::xml::{parse_document, XmlWriter};

/// The CreateBucket header naming the bucket's Object Ownership.
pub const OBJECT_OWNERSHIP_HEADER: &str = "x-amz-object-ownership";

const ROOT: &str = "OwnershipControls";

/// Who owns the objects written to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ObjectOwnership {
    /// ACLs are disabled; the bucket owner owns every object.
    #[default]
    BucketOwnerEnforced,
    /// The bucket owner owns objects written with the `bucket-owner-full-control` canned ACL;
    /// the writer owns the others. ACLs are in force.
    BucketOwnerPreferred,
    /// The writer owns the object. ACLs are in force.
    ObjectWriter,
}

impl ObjectOwnership {
    pub const ALL: [ObjectOwnership; 3] = [
        ObjectOwnership::BucketOwnerEnforced,
        ObjectOwnership::BucketOwnerPreferred,
        ObjectOwnership::ObjectWriter,
    ];

    /// The name S3 uses in XML and in the header (also a fine stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }

    /// The setting named `name` (exact, as S3 spells it).
    pub fn parse(name: &str) -> Option<ObjectOwnership> {
        ObjectOwnership::ALL
            .into_iter()
            .find(|ownership| ownership.as_str() == name)
    }

    /// CreateBucket's `x-amz-object-ownership`: `None` when absent (the caller applies the
    /// default), `InvalidArgument` for an unknown value.
    pub fn from_header(headers: &http::HeaderMap) -> Result<Option<ObjectOwnership>, S3Error> {
        let Some(value) = header_str(headers, OBJECT_OWNERSHIP_HEADER) else {
            return Ok(None);
        };
        ObjectOwnership::parse(value.trim())
            .map(Some)
            .ok_or_else(|| {
                S3Error::new(S3ErrorCode::InvalidArgument)
                    .with_message("Invalid x-amz-object-ownership header")
                    .with_extra("ArgumentName", OBJECT_OWNERSHIP_HEADER)
                    .with_extra("ArgumentValue", value)
            })
    }

    /// Parses a PutBucketOwnershipControls body.
    pub fn from_xml(body: &[u8]) -> Result<ObjectOwnership, S3Error> {
        let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
        let controls: OwnershipControlsXml = parse_document(body, ROOT)?;
        let [rule] = <[RuleXml; 1]>::try_from(controls.rules).map_err(|_| malformed())?;
        let [name] = <[String; 1]>::try_from(rule.object_ownership).map_err(|_| malformed())?;
        ObjectOwnership::parse(name.trim()).ok_or_else(malformed)
    }

    /// The GetBucketOwnershipControls body.
    pub fn to_xml(self) -> String {
        let mut w = XmlWriter::new(ROOT);
        w.open("Rule")
            .text("ObjectOwnership", self.as_str())
            .close("Rule");
        w.finish(ROOT)
    }

    /// False when ACLs are disabled (`BucketOwnerEnforced`): they no longer grant anything.
    pub fn acls_enabled(self) -> bool {
        self != ObjectOwnership::BucketOwnerEnforced
    }

    /// The owner of an object `writer` uploads to a bucket of `bucket_owner`, given the write's
    /// canned ACL (`x-amz-acl`), if any.
    pub fn object_owner<'a>(
        self,
        writer: &'a Owner,
        bucket_owner: &'a Owner,
        canned_acl: Option<&str>,
    ) -> &'a Owner {
        match self {
            ObjectOwnership::BucketOwnerEnforced => bucket_owner,
            ObjectOwnership::BucketOwnerPreferred
                if canned_acl.map(str::trim) == Some("bucket-owner-full-control") =>
            {
                bucket_owner
            }
            ObjectOwnership::BucketOwnerPreferred | ObjectOwnership::ObjectWriter => writer,
        }
    }

    /// Whether an ACL may be written (PutBucketAcl, PutObjectAcl, or the ACL headers of a
    /// write) on a bucket with this setting: with ACLs disabled, only an ACL granting the
    /// bucket owner FULL_CONTROL and nothing else is accepted (AWS: the
    /// `bucket-owner-full-control` canned ACL "or an equivalent"); any other is
    /// `AccessControlListNotSupported`. The caller builds `acl` with the resource's owner, which
    /// for a new object is [`ObjectOwnership::object_owner`] (the bucket owner here).
    pub fn check_acl_write(self, acl: &Acl, bucket_owner: &Owner) -> Result<(), S3Error> {
        if self.acls_enabled() || acl.is_full_control_only_for(&bucket_owner.id) {
            Ok(())
        } else {
            Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported))
        }
    }

    /// Whether CreateBucket may set `acl` on a bucket created with this setting: with ACLs
    /// disabled only the owner-only ACL is allowed, anything else is
    /// `InvalidBucketAclWithObjectOwnership`.
    pub fn check_create_bucket_acl(self, acl: &Acl) -> Result<(), S3Error> {
        if self.acls_enabled() || acl.is_full_control_only_for(&acl.owner.id) {
            Ok(())
        } else {
            Err(S3Error::new(
                S3ErrorCode::InvalidBucketAclWithObjectOwnership,
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
struct OwnershipControlsXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ObjectOwnership", default)]
    object_ownership: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::s3::acl::{Grant, Grantee, Permission};
    use http::{HeaderMap, HeaderValue};

    fn document(rules: &str) -> String {
        format!(
            "<OwnershipControls xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</OwnershipControls>"
        )
    }

    #[test]
    fn renders_and_parses_each_setting() {
        for ownership in ObjectOwnership::ALL {
            let xml = ownership.to_xml();
            assert_eq!(
                xml,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
                    document(&format!(
                        "<Rule><ObjectOwnership>{}</ObjectOwnership></Rule>",
                        ownership.as_str()
                    ))
                )
            );
            assert_eq!(
                ObjectOwnership::from_xml(xml.as_bytes()).unwrap(),
                ownership
            );
        }
        // As aws-cli sends it (no namespace, whitespace between elements).
        let cli = b"<OwnershipControls>\n  <Rule>\n    <ObjectOwnership>ObjectWriter</ObjectOwnership>\n  </Rule>\n</OwnershipControls>";
        assert_eq!(
            ObjectOwnership::from_xml(cli).unwrap(),
            ObjectOwnership::ObjectWriter
        );
    }

    #[test]
    fn refuses_bad_documents_with_malformed_xml() {
        let rule = "<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>";
        for body in [
            document(""),
            document(&format!("{rule}{rule}")),
            document("<Rule></Rule>"),
            document("<Rule><ObjectOwnership>objectwriter</ObjectOwnership></Rule>"),
            document("<Rule><ObjectOwnership>Everyone</ObjectOwnership></Rule>"),
            "<Other><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></Other>"
                .to_owned(),
            "<OwnershipControls><Rule>".to_owned(),
        ] {
            assert_eq!(
                ObjectOwnership::from_xml(body.as_bytes()).unwrap_err().code,
                S3ErrorCode::MalformedXML,
                "{body}"
            );
        }
    }

    #[test]
    fn reads_the_create_bucket_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(ObjectOwnership::from_header(&headers).unwrap(), None);
        headers.insert(
            OBJECT_OWNERSHIP_HEADER,
            HeaderValue::from_static("BucketOwnerPreferred"),
        );
        assert_eq!(
            ObjectOwnership::from_header(&headers).unwrap(),
            Some(ObjectOwnership::BucketOwnerPreferred)
        );
        headers.insert(OBJECT_OWNERSHIP_HEADER, HeaderValue::from_static("Mine"));
        assert_eq!(
            ObjectOwnership::from_header(&headers).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn decides_the_object_owner() {
        let writer = Owner::new("writer", "");
        let bucket_owner = Owner::new("bucket-owner", "");
        let full = Some("bucket-owner-full-control");
        let cases = [
            (ObjectOwnership::BucketOwnerEnforced, None, "bucket-owner"),
            (
                ObjectOwnership::BucketOwnerEnforced,
                Some("private"),
                "bucket-owner",
            ),
            (ObjectOwnership::BucketOwnerPreferred, full, "bucket-owner"),
            (
                ObjectOwnership::BucketOwnerPreferred,
                Some("private"),
                "writer",
            ),
            (ObjectOwnership::BucketOwnerPreferred, None, "writer"),
            (ObjectOwnership::ObjectWriter, full, "writer"),
        ];
        for (ownership, canned, expected) in cases {
            assert_eq!(
                ownership.object_owner(&writer, &bucket_owner, canned).id,
                expected,
                "{ownership:?} {canned:?}"
            );
        }
        assert_eq!(
            ObjectOwnership::default(),
            ObjectOwnership::BucketOwnerEnforced
        );
    }

    #[test]
    fn disabled_acls_accept_only_bucket_owner_full_control() {
        let bucket_owner = Owner::new("bucket-owner", "");
        let writer = Owner::new("writer", "");
        let enforced = ObjectOwnership::BucketOwnerEnforced;
        let equivalent = Acl::canned("private", &bucket_owner, Some(&bucket_owner)).unwrap();
        assert!(enforced.check_acl_write(&equivalent, &bucket_owner).is_ok());
        // The flow of a PutObject with `bucket-owner-full-control`: the bucket owner owns the
        // object, so the ACL is the bucket owner's FULL_CONTROL alone, and it is accepted.
        let canned = Some("bucket-owner-full-control");
        let owner = enforced.object_owner(&writer, &bucket_owner, canned);
        let acl = Acl::canned("bucket-owner-full-control", owner, Some(&bucket_owner)).unwrap();
        assert!(enforced.check_acl_write(&acl, &bucket_owner).is_ok());
        // An ACL that still names the writer is not equivalent.
        let both = Acl::canned("bucket-owner-full-control", &writer, Some(&bucket_owner)).unwrap();
        assert_eq!(
            enforced
                .check_acl_write(&both, &bucket_owner)
                .unwrap_err()
                .code,
            S3ErrorCode::AccessControlListNotSupported
        );
        let public = Acl::canned("public-read", &bucket_owner, None).unwrap();
        assert_eq!(
            enforced
                .check_acl_write(&public, &bucket_owner)
                .unwrap_err()
                .code,
            S3ErrorCode::AccessControlListNotSupported
        );
        assert!(ObjectOwnership::ObjectWriter
            .check_acl_write(&public, &bucket_owner)
            .is_ok());
        assert_eq!(
            enforced.check_create_bucket_acl(&public).unwrap_err().code,
            S3ErrorCode::InvalidBucketAclWithObjectOwnership
        );
        let mut extra = Acl::private(&bucket_owner);
        extra
            .grants
            .push(Grant::new(Grantee::user("reader"), Permission::Read));
        assert!(enforced.check_create_bucket_acl(&extra).is_err());
        assert!(enforced
            .check_create_bucket_acl(&Acl::private(&bucket_owner))
            .is_ok());
        assert!(ObjectOwnership::BucketOwnerPreferred
            .check_create_bucket_acl(&public)
            .is_ok());
    }
}
