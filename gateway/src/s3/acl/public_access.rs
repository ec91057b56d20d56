//! S3 Block Public Access: the four switches of a bucket's `<PublicAccessBlockConfiguration>`,
//! and the two of them that concern ACLs.
//!
//! Invariants: a missing element is `false` (AWS's default for each switch); a value that is
//! not an XML Schema boolean (`true`, `false`, `1`, `0`) is `MalformedXML`. Rendering writes all
//! four switches, in AWS's order.
//!
//! What the switches mean (AWS "Blocking public access to your Amazon S3 storage"):
//! `BlockPublicAcls` refuses writes of public ACLs ([`PublicAccessBlock::check_acl_write`]);
//! `IgnorePublicAcls` makes public grants grant nothing
//! ([`PublicAccessBlock::evaluate_acl`]); `BlockPublicPolicy` and `RestrictPublicBuckets`
//! concern bucket policies and are the policy layer's to apply.

use serde::Deserialize;

use super::{Acl, AclTarget};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::policy::{Decision, Principal};
use crate::s3::xml::{parse_document, XmlWriter};

const ROOT: &str = "PublicAccessBlockConfiguration";

/// A bucket's Block Public Access settings; `Default` is all off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Deserialize)]
struct ConfigurationXml {
    #[serde(rename = "BlockPublicAcls")]
    block_public_acls: Option<String>,
    #[serde(rename = "IgnorePublicAcls")]
    ignore_public_acls: Option<String>,
    #[serde(rename = "BlockPublicPolicy")]
    block_public_policy: Option<String>,
    #[serde(rename = "RestrictPublicBuckets")]
    restrict_public_buckets: Option<String>,
}

/// An XML Schema boolean; absent is `false`.
fn switch(value: Option<String>) -> Result<bool, S3Error> {
    match value.as_deref().map(str::trim) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
}

fn text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

impl PublicAccessBlock {
    /// Parses a PutPublicAccessBlock body.
    pub fn from_xml(body: &[u8]) -> Result<PublicAccessBlock, S3Error> {
        let document: ConfigurationXml = parse_document(body, ROOT)?;
        Ok(PublicAccessBlock {
            block_public_acls: switch(document.block_public_acls)?,
            ignore_public_acls: switch(document.ignore_public_acls)?,
            block_public_policy: switch(document.block_public_policy)?,
            restrict_public_buckets: switch(document.restrict_public_buckets)?,
        })
    }

    /// The GetPublicAccessBlock body.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new(ROOT);
        w.text("BlockPublicAcls", text(self.block_public_acls))
            .text("IgnorePublicAcls", text(self.ignore_public_acls))
            .text("BlockPublicPolicy", text(self.block_public_policy))
            .text("RestrictPublicBuckets", text(self.restrict_public_buckets));
        w.finish(ROOT)
    }

    /// `BlockPublicAcls`: a write carrying a public ACL (PutBucketAcl, PutObjectAcl, or the ACL
    /// headers of a write) is `AccessDenied`.
    pub fn check_acl_write(&self, acl: &Acl) -> Result<(), S3Error> {
        if self.block_public_acls && acl.is_public() {
            Err(S3Error::new(S3ErrorCode::AccessDenied))
        } else {
            Ok(())
        }
    }

    /// What `acl` says about a request under these settings: with `IgnorePublicAcls` its public
    /// grants give nothing.
    pub fn evaluate_acl(
        &self,
        acl: &Acl,
        principal: &Principal,
        action: &str,
        target: AclTarget,
    ) -> Decision {
        if self.ignore_public_acls {
            acl.evaluate_ignoring_public_grants(principal, action, target)
        } else {
            acl.evaluate(principal, action, target)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::s3::acl::Owner;

    #[test]
    fn renders_all_four_switches_in_order() {
        let block = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: false,
            block_public_policy: true,
            restrict_public_buckets: false,
        };
        assert_eq!(
            block.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PublicAccessBlockConfiguration \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls>\
             <IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>\
             <RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>"
        );
        assert_eq!(
            PublicAccessBlock::from_xml(block.to_xml().as_bytes()).unwrap(),
            block
        );
    }

    #[test]
    fn missing_switches_are_off_and_booleans_are_xml_schema_booleans() {
        let body = b"<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  <IgnorePublicAcls>1</IgnorePublicAcls>\n  <RestrictPublicBuckets> true </RestrictPublicBuckets>\n</PublicAccessBlockConfiguration>";
        assert_eq!(
            PublicAccessBlock::from_xml(body).unwrap(),
            PublicAccessBlock {
                block_public_acls: false,
                ignore_public_acls: true,
                block_public_policy: false,
                restrict_public_buckets: true,
            }
        );
        assert_eq!(
            PublicAccessBlock::from_xml(b"<PublicAccessBlockConfiguration/>").unwrap(),
            PublicAccessBlock::default()
        );
        for body in [
            &b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>"[..],
            b"<PublicAccessBlockConfiguration><BlockPublicPolicy>TRUE</BlockPublicPolicy></PublicAccessBlockConfiguration>",
            b"<PublicAccessBlockConfiguration><BlockPublicAcls>",
            b"<OtherConfiguration><BlockPublicAcls>true</BlockPublicAcls></OtherConfiguration>",
        ] {
            assert_eq!(
                PublicAccessBlock::from_xml(body).unwrap_err().code,
                S3ErrorCode::MalformedXML
            );
        }
    }

    #[test]
    fn acl_switches_block_and_ignore_public_grants() {
        let owner = Owner::new("owner", "");
        let public = Acl::canned("public-read", &owner, None).unwrap();
        let private = Acl::private(&owner);
        let block = PublicAccessBlock {
            block_public_acls: true,
            ..PublicAccessBlock::default()
        };
        assert_eq!(
            block.check_acl_write(&public).unwrap_err().code,
            S3ErrorCode::AccessDenied
        );
        assert!(block.check_acl_write(&private).is_ok());
        assert!(PublicAccessBlock::default()
            .check_acl_write(&public)
            .is_ok());

        let ignore = PublicAccessBlock {
            ignore_public_acls: true,
            ..PublicAccessBlock::default()
        };
        let anonymous = Principal::Anonymous;
        assert_eq!(
            PublicAccessBlock::default().evaluate_acl(
                &public,
                &anonymous,
                "s3:ListBucket",
                AclTarget::Bucket
            ),
            Decision::Allow
        );
        assert_eq!(
            ignore.evaluate_acl(&public, &anonymous, "s3:ListBucket", AclTarget::Bucket),
            Decision::NotApplicable
        );
    }
}
