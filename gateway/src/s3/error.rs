//! The one S3 error table: every S3 error code the gateway can answer with, its exact HTTP status
//! and AWS's default message, plus [`S3Error`], the error value handlers return and that renders
//! itself as the S3 error XML body.
//!
//! Invariants: a code's status and default message live only here (see the AWS "ErrorResponses"
//! page, cross-checked with s3s and MinIO); every text placed in the XML body is escaped; HEAD
//! responses and 304 Not Modified never carry a body; every response carries `x-amz-request-id`.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use http::{header, HeaderValue, Response, StatusCode};

/// The `<Code>` of a row: its identifier, or the name given with `as "…"` (codes with a dot).
macro_rules! code_name {
    ($code:ident) => {
        stringify!($code)
    };
    ($code:ident, $name:literal) => {
        $name
    };
}

macro_rules! s3_error_codes {
    ($( $code:ident $(as $name:literal)? => $status:ident, $message:literal; )*) => {
        /// An S3 error code, named exactly as it appears in `<Code>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum S3ErrorCode { $( $code, )* }

        impl S3ErrorCode {
            /// The code as written in the `<Code>` element.
            pub fn as_str(&self) -> &'static str {
                match self { $( Self::$code => code_name!($code $(, $name)?), )* }
            }

            /// The HTTP status AWS answers with for this code.
            pub fn status(&self) -> StatusCode {
                match self { $( Self::$code => StatusCode::$status, )* }
            }

            /// AWS's default human-readable message for this code.
            pub fn default_message(&self) -> &'static str {
                match self { $( Self::$code => $message, )* }
            }
        }
    };
}

s3_error_codes! {
    AccessControlListNotSupported => BAD_REQUEST, "The bucket does not allow ACLs.";
    AccessDenied => FORBIDDEN, "Access Denied";
    AuthorizationHeaderMalformed => BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => BAD_REQUEST, "Error parsing the X-Amz-Credential parameter.";
    BadDigest => BAD_REQUEST, "The Content-MD5 or checksum value that you specified did not match what the server received.";
    BucketAlreadyExists => CONFLICT, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.";
    BucketAlreadyOwnedByYou => CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => CONFLICT, "The bucket you tried to delete is not empty.";
    ConditionalRequestConflict => CONFLICT, "A conflicting conditional operation is currently in progress against this resource. Please try again.";
    EntityTooLarge => BAD_REQUEST, "Your proposed upload exceeds the maximum allowed object size.";
    EntityTooSmall => BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IncorrectNumberOfFilesInPostRequest => BAD_REQUEST, "POST requires exactly one file upload per request.";
    IncompleteBody => BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InternalError => INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => FORBIDDEN, "The AWS Access Key Id you provided does not exist in our records.";
    InvalidArgument => BAD_REQUEST, "Invalid Argument";
    InvalidBucketName => BAD_REQUEST, "The specified bucket is not valid.";
    InvalidChunkSizeError => FORBIDDEN, "Only the last chunk is allowed to have a size less than 8192 bytes.";
    InvalidDigest => BAD_REQUEST, "The Content-MD5 you specified is not valid.";
    InvalidPartNumber => RANGE_NOT_SATISFIABLE, "The requested partnumber is not satisfiable.";
    InvalidPolicyDocument => BAD_REQUEST, "The content of the form does not meet the conditions specified in the policy document.";
    InvalidPart => BAD_REQUEST, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.";
    InvalidPartOrder => BAD_REQUEST, "The list of parts was not in ascending order. The parts list must be specified in order by part number.";
    InvalidRange => RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable.";
    InvalidRequest => BAD_REQUEST, "Invalid Request";
    KmsNotFoundException as "KMS.NotFoundException" => BAD_REQUEST, "The specified KMS key does not exist.";
    InvalidToken => BAD_REQUEST, "The provided token is malformed or otherwise invalid.";
    ExpiredToken => BAD_REQUEST, "The provided token has expired.";
    MalformedPolicy => BAD_REQUEST, "Policies must be valid JSON and the first byte must be '{'";
    NoSuchBucketPolicy => NOT_FOUND, "The bucket policy does not exist";
    InvalidTag => BAD_REQUEST, "The TagValue you have provided is invalid.";
    InvalidStorageClass => BAD_REQUEST, "The storage class you specified is not valid.";
    KeyTooLongError => BAD_REQUEST, "Your key is too long.";
    MalformedTrailerError => BAD_REQUEST, "The request contained trailing data that was not well-formed or did not conform to our published schema.";
    MalformedPOSTRequest => BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    MalformedXML => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MaxMessageLengthExceeded => BAD_REQUEST, "Your request was too big.";
    MetadataTooLarge => BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    MissingContentLength => LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    MissingSecurityHeader => BAD_REQUEST, "Your request is missing a required header.";
    NoSuchBucket => NOT_FOUND, "The specified bucket does not exist.";
    NoSuchKey => NOT_FOUND, "The specified key does not exist.";
    NoSuchUpload => NOT_FOUND, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.";
    NoSuchVersion => NOT_FOUND, "The specified version does not exist.";
    NotImplemented => NOT_IMPLEMENTED, "A header you provided implies functionality that is not implemented.";
    NotModified => NOT_MODIFIED, "Not Modified";
    PreconditionFailed => PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold.";
    RequestTimeTooSkewed => FORBIDDEN, "The difference between the request time and the server's time is too large.";
    RequestTimeout => BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period.";
    ServerSideEncryptionConfigurationNotFoundError => NOT_FOUND, "The server side encryption configuration was not found";
    ServiceUnavailable => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SignatureDoesNotMatch => FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    SlowDown => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    XAmzContentSHA256Mismatch => BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
}

/// An S3 error as sent to the client: code, message, optional `<Resource>` and extra elements
/// (`("Region", "us-east-1")`, `("Key", …)`, `("BucketName", …)` …) written in order.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    pub resource: Option<String>,
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `Content-Range: bytes */size` on 416).
    pub headers: Vec<(&'static str, String)>,
    /// What caused it, for the request log; never sent to the client.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl S3Error {
    /// An error with the code's default message.
    pub fn new(code: S3ErrorCode) -> Self {
        Self {
            code,
            message: code.default_message().to_owned(),
            resource: None,
            extra: Vec::new(),
            headers: Vec::new(),
            source: None,
        }
    }

    /// Records the cause (logged with its chain, not sent).
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Logs the cause chain, if there is one (a failure of the service itself): an error for a
    /// 500, a warning otherwise.
    pub fn log_cause(&self) {
        if let Some(cause) = self.cause_chain() {
            if self.code == S3ErrorCode::InternalError {
                tracing::error!(code = self.code.as_str(), error = %cause, "request failed");
            } else {
                tracing::warn!(code = self.code.as_str(), error = %cause, "request failed");
            }
        }
    }

    /// The cause and its sources as one line (`a: b: c`), if there is a cause.
    pub fn cause_chain(&self) -> Option<String> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        let mut parts: Vec<String> = Vec::new();
        // Source chains are short; the bound guards against a cyclic `source()`.
        for _ in 0..16 {
            let Some(error) = current else { break };
            let text = error.to_string();
            // Errors that print their source already (`context: cause`) are not repeated.
            if !parts.last().is_some_and(|last| last.ends_with(&text)) {
                parts.push(text);
            }
            current = error.source();
        }
        (!parts.is_empty()).then(|| parts.join(": "))
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Adds an element after `<Message>`; `name` must be a valid XML element name.
    pub fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// Adds a response header; `name` must be a valid lowercase header name.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The `<Error>` document (without the HTTP framing).
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut xml = String::with_capacity(256 + self.message.len());
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        push_element(&mut xml, "Code", self.code.as_str());
        push_element(&mut xml, "Message", &self.message);
        for (name, value) in &self.extra {
            push_element(&mut xml, name, value);
        }
        if let Some(resource) = &self.resource {
            push_element(&mut xml, "Resource", resource);
        }
        push_element(&mut xml, "RequestId", request_id);
        push_element(&mut xml, "HostId", request_id);
        xml.push_str("</Error>");
        xml
    }

    /// The complete HTTP response: status, `x-amz-request-id`, and the XML body unless the
    /// request was a HEAD or the status is 304 (both must not carry a body).
    pub fn to_response(&self, request_id: &str, is_head: bool) -> Response<Body> {
        let status = self.code.status();
        let with_body = !is_head && status != StatusCode::NOT_MODIFIED;
        let body = if with_body {
            Body::from(self.to_xml(request_id))
        } else {
            Body::empty()
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-amz-request-id", value.clone());
            headers.insert("x-amz-id-2", value);
        }
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(*name, value);
            }
        }
        if with_body {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        response
    }
}

impl From<S3ErrorCode> for S3Error {
    fn from(code: S3ErrorCode) -> Self {
        Self::new(code)
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for S3Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn push_element(xml: &mut String, name: &str, value: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
    crate::s3::escape::escape_into(xml, value);
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn statuses_match_aws() {
        assert_eq!(S3ErrorCode::NoSuchKey.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            S3ErrorCode::MissingContentLength.status(),
            StatusCode::LENGTH_REQUIRED
        );
        assert_eq!(
            S3ErrorCode::InvalidRange.status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            S3ErrorCode::SlowDown.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(S3ErrorCode::BucketNotEmpty.status(), StatusCode::CONFLICT);
        assert_eq!(
            S3ErrorCode::SignatureDoesNotMatch.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            S3ErrorCode::XAmzContentSHA256Mismatch.as_str(),
            "XAmzContentSHA256Mismatch"
        );
    }

    #[tokio::test]
    async fn response_has_escaped_xml_and_request_id() {
        let error = S3Error::new(S3ErrorCode::NoSuchKey)
            .with_resource("/bucket/a<b>&c")
            .with_extra("Key", "a<b>&c");
        let response = error.to_response("REQ1", false);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["x-amz-request-id"], "REQ1");
        assert_eq!(response.headers()["content-type"], "application/xml");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
        ));
        assert!(text.contains("<Key>a&lt;b&gt;&amp;c</Key>"));
        assert!(text.contains("<Resource>/bucket/a&lt;b&gt;&amp;c</Resource>"));
        assert!(text.contains("<RequestId>REQ1</RequestId>"));
    }

    #[tokio::test]
    async fn head_and_not_modified_have_no_body() {
        for (error, is_head) in [
            (S3Error::new(S3ErrorCode::NoSuchKey), true),
            (S3Error::new(S3ErrorCode::NotModified), false),
        ] {
            let response = error.to_response("R", is_head);
            assert!(response.headers().get("content-type").is_none());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(body.is_empty());
        }
    }
}
