//! AWS STS on the S3 port, as MinIO serves it: `AssumeRole` and `GetCallerIdentity` requests
//! (`request`), their XML answers (`response`), and stateless session tokens (`token`), plus
//! [`StsError`], the one STS error value, which renders AWS's STS `<ErrorResponse>` document.
//!
//! This module is pure: it parses, renders, seals and opens, and decides nothing about who may
//! call STS. Dispatch (authentication of the caller with SigV4 for service `sts`, the choice of
//! the parent identity, the validation of a session policy with the policy parser) stays with
//! the S3 layer.
//!
//! Invariants: every STS error carries AWS's code and HTTP status (AWS "Common Errors" page of
//! the STS API reference, checked against answers quoted in client issues); every value placed
//! in a document is XML-escaped with the one escaping rule of [`crate::s3::escape`]; a secret key
//! or a session token never appears in `Debug` output.

pub mod request;
pub mod response;
pub mod token;

pub use request::{
    is_sts_request, parse_sts_request, AssumeRoleRequest, StsAction, DEFAULT_DURATION,
    MAX_DURATION, MAX_FORM_BYTES, MAX_POLICY_CHARS, MIN_DURATION,
};
pub use response::{assume_role_xml, caller_identity_xml};
pub use token::{
    mint, SessionClaims, TemporaryCredentials, TokenKey, TokenKeyError, TokenKeys, MAX_TOKEN_CHARS,
    TOKEN_FORMAT_VERSION,
};

use http::StatusCode;

use crate::s3::escape::escape_into;

/// The namespace of every STS document (requests name it with `Version`).
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The one STS API version.
pub const STS_API_VERSION: &str = "2011-06-15";

/// An STS error: AWS's `<Code>`, a message for `<Message>`, and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StsError {
    pub code: &'static str,
    pub message: String,
    pub status: StatusCode,
}

impl StsError {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> StsError {
        StsError {
            code,
            message: message.into(),
            status,
        }
    }

    /// Unknown `Action`, or a `Version` other than 2011-06-15: AWS's query protocol answers both
    /// with "Could not find operation … for version …" (400).
    pub fn invalid_action(message: impl Into<String>) -> StsError {
        StsError::new("InvalidAction", StatusCode::BAD_REQUEST, message)
    }

    /// A parameter outside its constraints (400); AWS's messages read
    /// "1 validation error detected: Value '…' at '…' failed to satisfy constraint: …".
    pub fn validation_error(message: impl Into<String>) -> StsError {
        StsError::new("ValidationError", StatusCode::BAD_REQUEST, message)
    }

    /// A required parameter is absent (400).
    pub fn missing_parameter(message: impl Into<String>) -> StsError {
        StsError::new("MissingParameter", StatusCode::BAD_REQUEST, message)
    }

    /// No `Action` parameter (400).
    pub fn missing_action() -> StsError {
        StsError::new(
            "MissingAction",
            StatusCode::BAD_REQUEST,
            "The request is missing an action or a required parameter.",
        )
    }

    /// A parameter that cannot be read at all, such as bad percent-encoding (400).
    pub fn invalid_parameter_value(message: impl Into<String>) -> StsError {
        StsError::new("InvalidParameterValue", StatusCode::BAD_REQUEST, message)
    }

    /// A session policy over 2048 characters (400; MinIO's code for the same limit).
    pub fn packed_policy_too_large() -> StsError {
        StsError::new(
            "PackedPolicyTooLarge",
            StatusCode::BAD_REQUEST,
            format!("Session policy should not exceed {MAX_POLICY_CHARS} characters"),
        )
    }

    /// A session policy that is not a policy document (400).
    pub fn malformed_policy_document(message: impl Into<String>) -> StsError {
        StsError::new("MalformedPolicyDocument", StatusCode::BAD_REQUEST, message)
    }

    /// The caller may not do this (403).
    pub fn access_denied(message: impl Into<String>) -> StsError {
        StsError::new("AccessDenied", StatusCode::FORBIDDEN, message)
    }

    /// A session token past its expiry. AWS STS answers 403 with this exact message (no final
    /// period), as quoted by aws-cli/botocore and aws-sdk-java-v2 issue 1649.
    pub fn expired_token() -> StsError {
        StsError::new(
            "ExpiredToken",
            StatusCode::FORBIDDEN,
            "The security token included in the request is expired",
        )
    }

    /// A session token that does not open: not base64, unknown version or key id, or a failed
    /// authentication tag (403, AWS's exact message).
    pub fn invalid_client_token_id() -> StsError {
        StsError::new(
            "InvalidClientTokenId",
            StatusCode::FORBIDDEN,
            "The security token included in the request is invalid",
        )
    }

    /// A failure of the server itself (500), such as a token that could not be sealed.
    pub fn internal_failure() -> StsError {
        StsError::new(
            "InternalFailure",
            StatusCode::INTERNAL_SERVER_ERROR,
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// AWS's STS error document. `<Type>` is `Sender` for 4xx and `Receiver` for 5xx.
    pub fn error_xml(&self, request_id: &str) -> String {
        let fault = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        let mut out = document_start("ErrorResponse");
        out.push_str("<Error>");
        text_element(&mut out, "Type", fault);
        text_element(&mut out, "Code", self.code);
        text_element(&mut out, "Message", &self.message);
        out.push_str("</Error>");
        text_element(&mut out, "RequestId", request_id);
        out.push_str("</ErrorResponse>");
        out
    }
}

/// `<?xml …?><root xmlns="STS namespace">`. The S3 [`crate::s3::xml::XmlWriter`] always writes
/// the S3 namespace, so STS documents are built with these two helpers instead.
fn document_start(root: &str) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    out.push_str(root);
    out.push_str(" xmlns=\"");
    out.push_str(STS_NAMESPACE);
    out.push_str("\">");
    out
}

/// `<name>escaped value</name>`.
fn text_element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_is_aws_shape_and_escaped() {
        let error = StsError::validation_error("Value '<a&b>' at 'roleSessionName'");
        let xml = error.error_xml("req-1");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <Error><Type>Sender</Type><Code>ValidationError</Code>\
             <Message>Value &apos;&lt;a&amp;b&gt;&apos; at &apos;roleSessionName&apos;</Message>\
             </Error><RequestId>req-1</RequestId></ErrorResponse>"
        );
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn server_errors_are_receiver_faults() {
        let xml = StsError::internal_failure().error_xml("r");
        assert!(xml.contains("<Type>Receiver</Type><Code>InternalFailure</Code>"));
    }

    #[test]
    fn token_errors_have_aws_codes_and_statuses() {
        let invalid = StsError::invalid_client_token_id();
        assert_eq!(
            (invalid.code, invalid.status),
            ("InvalidClientTokenId", StatusCode::FORBIDDEN)
        );
        let expired = StsError::expired_token();
        assert_eq!(
            (expired.code, expired.status),
            ("ExpiredToken", StatusCode::FORBIDDEN)
        );
        assert_eq!(StsError::access_denied("no").status, StatusCode::FORBIDDEN);
    }
}
