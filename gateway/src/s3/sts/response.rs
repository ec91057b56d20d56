//! The XML answers of the STS calls: `AssumeRoleResponse` and `GetCallerIdentityResponse`, in
//! the STS namespace, element order as in AWS's API reference examples.
//!
//! Invariants: every value is escaped (through `text_element`); `Expiration` is ISO 8601 in UTC
//! with whole seconds, as AWS writes it (`2026-12-07T23:59:59Z`).

use std::time::{SystemTime, UNIX_EPOCH};

use super::token::TemporaryCredentials;
use super::{document_start, text_element};

/// The body of a successful `AssumeRole`.
pub fn assume_role_xml(
    creds: &TemporaryCredentials,
    assumed_role_arn: &str,
    assumed_role_id: &str,
    request_id: &str,
) -> String {
    let mut out = document_start("AssumeRoleResponse");
    out.push_str("<AssumeRoleResult><AssumedRoleUser>");
    text_element(&mut out, "Arn", assumed_role_arn);
    text_element(&mut out, "AssumedRoleId", assumed_role_id);
    out.push_str("</AssumedRoleUser><Credentials>");
    text_element(&mut out, "AccessKeyId", &creds.access_key);
    text_element(&mut out, "SecretAccessKey", &creds.secret_key);
    text_element(&mut out, "SessionToken", &creds.session_token);
    text_element(&mut out, "Expiration", &iso8601_seconds(creds.expiration));
    out.push_str("</Credentials></AssumeRoleResult>");
    response_metadata(&mut out, request_id);
    out.push_str("</AssumeRoleResponse>");
    out
}

/// The body of a successful `GetCallerIdentity`.
pub fn caller_identity_xml(arn: &str, user_id: &str, account: &str, request_id: &str) -> String {
    let mut out = document_start("GetCallerIdentityResponse");
    out.push_str("<GetCallerIdentityResult>");
    text_element(&mut out, "Arn", arn);
    text_element(&mut out, "UserId", user_id);
    text_element(&mut out, "Account", account);
    out.push_str("</GetCallerIdentityResult>");
    response_metadata(&mut out, request_id);
    out.push_str("</GetCallerIdentityResponse>");
    out
}

fn response_metadata(out: &mut String, request_id: &str) {
    out.push_str("<ResponseMetadata>");
    text_element(out, "RequestId", request_id);
    out.push_str("</ResponseMetadata>");
}

/// `YYYY-MM-DDTHH:MM:SSZ`; times before 1970 or beyond year 9999 are clamped to those bounds.
fn iso8601_seconds(at: SystemTime) -> String {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let at = time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn assume_role_document_is_aws_shape_and_escaped() {
        let creds = TemporaryCredentials {
            access_key: "ASIAABCDEFGHIJKLMNOP".to_string(),
            secret_key: "se/cr+et<&>".to_string(),
            session_token: "token_-".to_string(),
            expiration: UNIX_EPOCH + Duration::from_secs(1_796_687_999),
        };
        let xml = assume_role_xml(
            &creds,
            "arn:aws:sts::123456789012:assumed-role/x/a&b",
            "AROA:a&b",
            "req\"1",
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <AssumeRoleResult><AssumedRoleUser>\
             <Arn>arn:aws:sts::123456789012:assumed-role/x/a&amp;b</Arn>\
             <AssumedRoleId>AROA:a&amp;b</AssumedRoleId></AssumedRoleUser>\
             <Credentials><AccessKeyId>ASIAABCDEFGHIJKLMNOP</AccessKeyId>\
             <SecretAccessKey>se/cr+et&lt;&amp;&gt;</SecretAccessKey>\
             <SessionToken>token_-</SessionToken>\
             <Expiration>2026-12-07T23:59:59Z</Expiration></Credentials></AssumeRoleResult>\
             <ResponseMetadata><RequestId>req&quot;1</RequestId></ResponseMetadata>\
             </AssumeRoleResponse>"
        );
    }

    #[test]
    fn caller_identity_document_is_aws_shape_and_escaped() {
        let xml = caller_identity_xml(
            "arn:aws:iam::123456789012:user/<alice>",
            "AKIA'1",
            "123456789012",
            "r-1",
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult>\
             <Arn>arn:aws:iam::123456789012:user/&lt;alice&gt;</Arn>\
             <UserId>AKIA&apos;1</UserId><Account>123456789012</Account>\
             </GetCallerIdentityResult>\
             <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
             </GetCallerIdentityResponse>"
        );
    }

    #[test]
    fn expiration_is_whole_seconds_utc_and_clamped() {
        assert_eq!(iso8601_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601_seconds(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            iso8601_seconds(UNIX_EPOCH + Duration::from_millis(1_796_687_999_999)),
            "2026-12-07T23:59:59Z"
        );
        assert_eq!(
            iso8601_seconds(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 100)),
            "9999-12-31T23:59:59Z"
        );
    }
}
