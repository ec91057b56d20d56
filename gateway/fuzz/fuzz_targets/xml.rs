//! Every XML request document the gateway parses: CompleteMultipartUpload, Delete (DeleteObjects),
//! CreateBucketConfiguration, Tagging and AccessControlPolicy (PutBucketAcl/PutObjectAcl).
//!
//! Input: the document; each parser reads every input (they share one corpus).
//! Properties: no panic; any failure is `MalformedXML` (or, for tagging, `InvalidTag`); a tag
//! set that parses is rendered by `tagging_xml` into a document that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::error::{S3Error, S3ErrorCode};
use strata_gateway::s3::handlers::acl::policy_is_owner_only;
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
    malformed(policy_is_owner_only(data, "owner"));
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
