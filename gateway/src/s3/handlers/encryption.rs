//! Bucket default encryption: PutBucketEncryption, GetBucketEncryption and
//! DeleteBucketEncryption (`?encryption`). The configuration is stored with the bucket by the
//! engine; objects written without SSE headers into the bucket get its default.

use http::StatusCode;
use serde::Deserialize;

use super::{empty_response, read_request_document, xml_response, S3Request, S3Result};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{parse_document, XmlWriter};
use crate::sse::BucketDefaultEncryption;

/// Largest configuration document read.
const MAX_DOCUMENT: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
struct ConfigurationXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ApplyServerSideEncryptionByDefault")]
    default: Option<DefaultXml>,
    #[serde(rename = "BucketKeyEnabled")]
    bucket_key_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct DefaultXml {
    #[serde(rename = "SSEAlgorithm")]
    algorithm: String,
    #[serde(rename = "KMSMasterKeyID")]
    kms_key_id: Option<String>,
}

/// The configuration of a PutBucketEncryption document: exactly one rule with a default.
fn parse_configuration(body: &[u8]) -> Result<BucketDefaultEncryption, S3Error> {
    let document: ConfigurationXml = parse_document(body, "ServerSideEncryptionConfiguration")?;
    let [rule] = document.rules.as_slice() else {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    };
    let default = rule
        .default
        .as_ref()
        .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
    let algorithm = default.algorithm.trim();
    match algorithm {
        "AES256" if default.kms_key_id.is_some() => {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument).with_message(
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
            ))
        }
        "AES256" | "aws:kms" | "aws:kms:dsse" => {}
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
    Ok(BucketDefaultEncryption {
        algorithm: algorithm.to_string(),
        kms_key_id: default.kms_key_id.clone().filter(|k| !k.is_empty()),
        bucket_key_enabled: rule.bucket_key_enabled.unwrap_or(false),
    })
}

pub async fn handle_put_bucket_encryption(req: S3Request, bucket: &str) -> S3Result {
    let engine = req.engine.clone();
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_DOCUMENT).await?;
    let configuration = parse_configuration(&body)?;
    let resolved = engine.bucket(bucket).await?;
    engine
        .set_bucket_encryption(&resolved, Some(configuration))
        .await?;
    empty_response(StatusCode::OK)
}

pub async fn handle_get_bucket_encryption(req: S3Request, bucket: &str) -> S3Result {
    let resolved = req.engine.bucket(bucket).await?;
    let Some(configuration) = resolved.default_encryption() else {
        return Err(
            S3Error::new(S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError)
                .with_extra("BucketName", bucket.to_string()),
        );
    };
    let mut w = XmlWriter::new("ServerSideEncryptionConfiguration");
    w.open("Rule").open("ApplyServerSideEncryptionByDefault");
    w.text("SSEAlgorithm", &configuration.algorithm);
    w.optional("KMSMasterKeyID", configuration.kms_key_id.as_deref());
    w.close("ApplyServerSideEncryptionByDefault");
    w.text(
        "BucketKeyEnabled",
        if configuration.bucket_key_enabled {
            "true"
        } else {
            "false"
        },
    );
    w.close("Rule");
    xml_response(w.finish("ServerSideEncryptionConfiguration"))
}

pub async fn handle_delete_bucket_encryption(req: S3Request, bucket: &str) -> S3Result {
    let resolved = req.engine.bucket(bucket).await?;
    req.engine.set_bucket_encryption(&resolved, None).await?;
    empty_response(StatusCode::NO_CONTENT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse_and_bad_ones_are_malformed() {
        let doc = br#"<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"#;
        let parsed = parse_configuration(doc).unwrap();
        assert_eq!(parsed.algorithm, "AES256");
        assert!(!parsed.bucket_key_enabled);
        let kms = br#"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k1</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"#;
        let parsed = parse_configuration(kms).unwrap();
        assert_eq!(parsed.kms_key_id.as_deref(), Some("k1"));
        assert!(parsed.bucket_key_enabled);
        for bad in [
            &b"<ServerSideEncryptionConfiguration>"[..],
            b"<ServerSideEncryptionConfiguration></ServerSideEncryptionConfiguration>",
            b"<Other><Rule/></Other>",
            br#"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"#,
        ] {
            assert_eq!(
                parse_configuration(bad).unwrap_err().code,
                S3ErrorCode::MalformedXML
            );
        }
    }
}
