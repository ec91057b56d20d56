//! Every XML request document the gateway parses: CompleteMultipartUpload, Delete (DeleteObjects),
//! CreateBucketConfiguration, Tagging, AccessControlPolicy (PutBucketAcl/PutObjectAcl),
//! OwnershipControls and PublicAccessBlockConfiguration.
//!
//! Input: the document; each parser reads every input (they share one corpus).
//! Properties: no panic; any failure is `MalformedXML` (tagging: or `InvalidTag`; ACLs:
//! `MalformedACLError`, `InvalidArgument` or `UnresolvableGrantByEmailAddress`); a tag set or
//! an ACL that parses is rendered into a document that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::acl::{Acl, ObjectOwnership, PublicAccessBlock};
use strata_gateway::s3::error::{S3Error, S3ErrorCode};
use strata_gateway::s3::tagging::{parse_tagging_xml, tagging_xml};
use strata_gateway::s3::xml::{
    parse, parse_document, CompleteMultipartUploadXml, CreateBucketConfigurationXml, DeleteXml,
};

fn malformed<T>(result: Result<T, S3Error>) {
    if let Err(error) = result {
        assert_eq!(error.code, S3ErrorCode::MalformedXML, "{}", error.message);
    }
}

fuzz_target!(|data: &[u8]| {
    malformed(parse::<CompleteMultipartUploadXml>(data));
    malformed(parse::<DeleteXml>(data));
    malformed(parse_document::<CreateBucketConfigurationXml>(
        data,
        "CreateBucketConfiguration",
    ));
    malformed(ObjectOwnership::from_xml(data));
    malformed(PublicAccessBlock::from_xml(data));
    match Acl::from_xml(data) {
        Ok(acl) => {
            let rendered = acl.to_xml();
            match Acl::from_xml(rendered.as_bytes()) {
                Ok(again) => assert_eq!(acl, again, "ACL changed through to_xml"),
                Err(error) => panic!(
                    "to_xml wrote an ACL that does not parse ({:?}): {rendered}",
                    error.code
                ),
            }
        }
        Err(error) => assert!(
            matches!(
                error.code,
                S3ErrorCode::MalformedACLError
                    | S3ErrorCode::InvalidArgument
                    | S3ErrorCode::UnresolvableGrantByEmailAddress
            ),
            "{:?}",
            error.code
        ),
    }
    match parse_tagging_xml(data) {
        Ok(tags) => {
            let rendered = tagging_xml(&tags);
            match parse_tagging_xml(rendered.as_bytes()) {
                Ok(again) => assert_eq!(tags, again, "tag set changed through tagging_xml"),
                Err(error) => panic!(
                    "tagging_xml wrote a document that does not parse ({:?}): {rendered}",
                    error.code
                ),
            }
        }
        Err(error) => assert!(
            matches!(
                error.code,
                S3ErrorCode::MalformedXML | S3ErrorCode::InvalidTag
            ),
            "{:?}",
            error.code
        ),
    }
});
