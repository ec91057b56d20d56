//! STS requests on the S3 port: recognising them ([`is_sts_request`]) and reading their form or
//! query parameters into an [`StsAction`] ([`parse_sts_request`]).
//!
//! aws-cli and boto3 send `POST /` with an `application/x-www-form-urlencoded` body (botocore's
//! query serializer, spaces as `%20`); MinIO-style clients may put the same parameters in the
//! query string of a GET or POST (HTML form encoding, spaces as `+`). Both decode the same way.
//!
//! Invariants, as AWS STS: `Version` is 2011-06-15; an unknown `Action` is `InvalidAction`;
//! `DurationSeconds` is 900..=43200 (default 3600); `Policy` is at most 2048 characters and a JSON
//! object (its statements are for the policy parser of the caller); `RoleSessionName` is 2..=64
//! characters of `[\w+=,.@-]`. Deliberate differences, kept for MinIO's clients: `RoleArn` and
//! `RoleSessionName` may be absent (AWS answers `MissingParameter`; MinIO ignores the role), and
//! `RoleArn` has no 20-character minimum (MinIO's examples pass short placeholders such as
//! `arn:xxx:xxx`); both are still checked when present. A parameter with an empty value counts
//! as absent and the first of repeated parameters wins, as with Go's `Form.Get` in MinIO.

use std::time::Duration;

use http::Method;
use percent_encoding::percent_decode_str;

use super::{StsError, STS_API_VERSION};

/// Shortest session AWS grants (15 minutes).
pub const MIN_DURATION: Duration = Duration::from_secs(900);
/// Longest session AWS grants (12 hours).
pub const MAX_DURATION: Duration = Duration::from_secs(43_200);
/// Session length when `DurationSeconds` is absent (1 hour).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3_600);
/// Longest session policy, in characters (AWS: "shouldn't exceed 2,048 characters").
pub const MAX_POLICY_CHARS: usize = 2_048;
/// Longest form or query accepted: a 2048-character policy of 3-byte characters, each byte
/// percent-encoded, is 18 KiB; the caller should stop reading a body at this size too.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

const MAX_ROLE_ARN_CHARS: usize = 2_048;
const MIN_SESSION_NAME_CHARS: usize = 2;
const MAX_SESSION_NAME_CHARS: usize = 64;

/// An STS call the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsAction {
    AssumeRole(AssumeRoleRequest),
    GetCallerIdentity,
}

/// The validated parameters of `AssumeRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleRequest {
    /// Within [`MIN_DURATION`]..=[`MAX_DURATION`].
    pub duration: Duration,
    /// The session policy as sent: a JSON object of at most [`MAX_POLICY_CHARS`] characters.
    pub policy: Option<String>,
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
}

/// Whether a request to the path-style root `/` (the caller checks the path) is an STS call: a
/// POST with a form body, or any request whose query names an `Action`. S3 itself never sends
/// either to `/` (browser POST uploads go to a bucket and use `multipart/form-data`).
pub fn is_sts_request(method: &Method, content_type: Option<&str>, query: Option<&str>) -> bool {
    let query_has_action = query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("Action"))
    });
    query_has_action || (*method == Method::POST && content_type.is_some_and(is_form_content_type))
}

/// `application/x-www-form-urlencoded`, with any parameters (`; charset=utf-8`).
fn is_form_content_type(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Reads an STS call from a form body (POST) or a query string; a caller with both passes them
/// joined by `&`, the body first.
pub fn parse_sts_request(form_or_query: &str) -> Result<StsAction, StsError> {
    if form_or_query.len() > MAX_FORM_BYTES {
        return Err(StsError::invalid_parameter_value(format!(
            "The request parameters exceed {MAX_FORM_BYTES} bytes"
        )));
    }
    let params = FormParams::parse(form_or_query)?;
    let Some(action) = params.get("Action") else {
        return Err(StsError::missing_action());
    };
    // AWS's query protocol looks an operation up by (Action, Version): a wrong or absent
    // version is "Could not find operation", the same answer as an unknown action.
    let version = params.get("Version");
    if version != Some(STS_API_VERSION) {
        return Err(StsError::invalid_action(format!(
            "Could not find operation {action} for version {}",
            version.unwrap_or("NO_VERSION_SPECIFIED")
        )));
    }
    match action {
        "AssumeRole" => parse_assume_role(&params).map(StsAction::AssumeRole),
        "GetCallerIdentity" => Ok(StsAction::GetCallerIdentity),
        other => Err(StsError::invalid_action(format!(
            "Could not find operation {other} for version {STS_API_VERSION}"
        ))),
    }
}

fn parse_assume_role(params: &FormParams) -> Result<AssumeRoleRequest, StsError> {
    let duration = match params.get("DurationSeconds") {
        None => DEFAULT_DURATION,
        Some(text) => parse_duration(text)?,
    };
    let policy = params.get("Policy").map(check_policy).transpose()?;
    let role_arn = params.get("RoleArn").map(check_role_arn).transpose()?;
    let session_name = params
        .get("RoleSessionName")
        .map(check_session_name)
        .transpose()?;
    Ok(AssumeRoleRequest {
        duration,
        policy,
        role_arn,
        session_name,
    })
}

/// AWS's wording for a broken constraint of one parameter.
fn constraint_error(value: &str, member: &str, constraint: &str) -> StsError {
    StsError::validation_error(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
         {constraint}"
    ))
}

fn parse_duration(text: &str) -> Result<Duration, StsError> {
    let seconds: u64 = text
        .parse()
        .map_err(|_| constraint_error(text, "durationSeconds", "Member must be a number"))?;
    if seconds < MIN_DURATION.as_secs() {
        return Err(constraint_error(
            text,
            "durationSeconds",
            "Member must have value greater than or equal to 900",
        ));
    }
    if seconds > MAX_DURATION.as_secs() {
        return Err(constraint_error(
            text,
            "durationSeconds",
            "Member must have value less than or equal to 43200",
        ));
    }
    Ok(Duration::from_secs(seconds))
}

fn check_policy(policy: &str) -> Result<String, StsError> {
    if policy.chars().count() > MAX_POLICY_CHARS {
        return Err(StsError::packed_policy_too_large());
    }
    match serde_json::from_str::<serde_json::Value>(policy) {
        Ok(serde_json::Value::Object(_)) => Ok(policy.to_string()),
        Ok(_) => Err(StsError::malformed_policy_document(
            "The session policy must be a JSON object.",
        )),
        Err(error) => Err(StsError::malformed_policy_document(format!(
            "Syntax errors in policy: {error}"
        ))),
    }
}

fn check_role_arn(role_arn: &str) -> Result<String, StsError> {
    if role_arn.chars().count() > MAX_ROLE_ARN_CHARS {
        return Err(constraint_error(
            role_arn,
            "roleArn",
            "Member must have length less than or equal to 2048",
        ));
    }
    // AWS's pattern for ARNs: printable text, tab, line feed and carriage return.
    let printable = role_arn
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control());
    if !printable {
        return Err(constraint_error(
            role_arn,
            "roleArn",
            "Member must satisfy regular expression pattern: \
             [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u0085\\u00A0-\\uD7FF\\uE000-\\uFFFD\\u10000-\\u10FFFF]+",
        ));
    }
    Ok(role_arn.to_string())
}

fn check_session_name(name: &str) -> Result<String, StsError> {
    let length = name.chars().count();
    if length < MIN_SESSION_NAME_CHARS {
        return Err(constraint_error(
            name,
            "roleSessionName",
            "Member must have length greater than or equal to 2",
        ));
    }
    if length > MAX_SESSION_NAME_CHARS {
        return Err(constraint_error(
            name,
            "roleSessionName",
            "Member must have length less than or equal to 64",
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if !name.chars().all(allowed) {
        return Err(constraint_error(
            name,
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(name.to_string())
}

/// Decoded `name=value` pairs in request order.
struct FormParams {
    pairs: Vec<(String, String)>,
}

impl FormParams {
    fn parse(text: &str) -> Result<FormParams, StsError> {
        let mut pairs = Vec::new();
        for pair in text.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((form_decode(name)?, form_decode(value)?));
        }
        Ok(FormParams { pairs })
    }

    /// The first value of `name`; an empty value counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }
}

/// Form decoding: `+` is a space, then percent-decoding, and the result must be UTF-8.
fn form_decode(text: &str) -> Result<String, StsError> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            StsError::invalid_parameter_value("A request parameter is not percent-encoded UTF-8")
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The body aws-cli 2 (botocore's query serializer) sends for
    /// `aws sts assume-role --role-arn arn:aws:iam::123456789012:role/x
    /// --role-session-name session-1 --duration-seconds 900 --policy '{"Version": …}'`.
    const AWS_CLI_BODY: &str = "Action=AssumeRole&Version=2011-06-15\
        &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx&RoleSessionName=session-1\
        &Policy=%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D\
        &DurationSeconds=900";

    fn assume_role(form: &str) -> AssumeRoleRequest {
        match parse_sts_request(form).unwrap() {
            StsAction::AssumeRole(request) => request,
            other => panic!("not AssumeRole: {other:?}"),
        }
    }

    #[test]
    fn aws_cli_body_parses() {
        let request = assume_role(AWS_CLI_BODY);
        assert_eq!(
            request,
            AssumeRoleRequest {
                duration: Duration::from_secs(900),
                policy: Some(r#"{"Version": "2012-10-17", "Statement": []}"#.to_string()),
                role_arn: Some("arn:aws:iam::123456789012:role/x".to_string()),
                session_name: Some("session-1".to_string()),
            }
        );
    }

    #[test]
    fn query_form_with_plus_spaces_and_default_duration() {
        let request = assume_role(
            "Action=AssumeRole&Version=2011-06-15&Policy=%7B%22Version%22:+%222012-10-17%22%7D",
        );
        assert_eq!(request.duration, DEFAULT_DURATION);
        assert_eq!(
            request.policy.as_deref(),
            Some(r#"{"Version": "2012-10-17"}"#)
        );
    }

    #[test]
    fn role_and_session_name_may_be_absent_like_minio() {
        let request = assume_role("Action=AssumeRole&Version=2011-06-15&RoleSessionName=");
        assert_eq!((request.role_arn, request.session_name), (None, None));
    }

    #[test]
    fn get_caller_identity_parses() {
        let action = parse_sts_request("Action=GetCallerIdentity&Version=2011-06-15").unwrap();
        assert_eq!(action, StsAction::GetCallerIdentity);
    }

    #[test]
    fn duration_outside_aws_range_is_validation_error() {
        for (value, bound) in [
            ("899", "greater than or equal to 900"),
            ("43201", "less than or equal to 43200"),
        ] {
            let error = parse_sts_request(&format!(
                "Action=AssumeRole&Version=2011-06-15&DurationSeconds={value}"
            ))
            .unwrap_err();
            assert_eq!(error.code, "ValidationError");
            assert_eq!(error.status, http::StatusCode::BAD_REQUEST);
            assert_eq!(
                error.message,
                format!(
                    "1 validation error detected: Value '{value}' at 'durationSeconds' failed to \
                     satisfy constraint: Member must have value {bound}"
                )
            );
        }
        let error = parse_sts_request("Action=AssumeRole&Version=2011-06-15&DurationSeconds=1h")
            .unwrap_err();
        assert_eq!(error.code, "ValidationError");
        assert_eq!(
            assume_role("Action=AssumeRole&Version=2011-06-15&DurationSeconds=43200").duration,
            MAX_DURATION
        );
    }

    #[test]
    fn wrong_or_missing_version_is_invalid_action() {
        let error = parse_sts_request("Action=AssumeRole&Version=2011-06-16").unwrap_err();
        assert_eq!(error.code, "InvalidAction");
        assert_eq!(
            error.message,
            "Could not find operation AssumeRole for version 2011-06-16"
        );
        let error = parse_sts_request("Action=AssumeRole").unwrap_err();
        assert_eq!(
            error.message,
            "Could not find operation AssumeRole for version NO_VERSION_SPECIFIED"
        );
    }

    #[test]
    fn unknown_or_missing_action_is_refused() {
        let error = parse_sts_request("Action=GetSessionToken&Version=2011-06-15").unwrap_err();
        assert_eq!((error.code, error.status.as_u16()), ("InvalidAction", 400));
        // Actions are case-sensitive in AWS.
        let error = parse_sts_request("Action=assumerole&Version=2011-06-15").unwrap_err();
        assert_eq!(error.code, "InvalidAction");
        let error = parse_sts_request("Version=2011-06-15").unwrap_err();
        assert_eq!((error.code, error.status.as_u16()), ("MissingAction", 400));
    }

    #[test]
    fn session_name_is_checked_when_present() {
        let too_long = "n".repeat(65);
        for name in ["a", "bad%20name", "x%2Fy", too_long.as_str()] {
            let error = parse_sts_request(&format!(
                "Action=AssumeRole&Version=2011-06-15&RoleSessionName={name}"
            ))
            .unwrap_err();
            assert_eq!(error.code, "ValidationError", "{name}");
            assert!(error.message.contains("'roleSessionName'"), "{name}");
        }
        let request = assume_role(
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName=a_b%2Bc%3Dd%2C.%40-9",
        );
        assert_eq!(request.session_name.as_deref(), Some("a_b+c=d,.@-9"));
    }

    #[test]
    fn role_arn_with_control_characters_is_refused() {
        let error =
            parse_sts_request("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%00x").unwrap_err();
        assert_eq!(error.code, "ValidationError");
        // MinIO-style placeholders shorter than AWS's 20-character minimum pass.
        let request = assume_role("Action=AssumeRole&Version=2011-06-15&RoleArn=arn:xxx:xxx");
        assert_eq!(request.role_arn.as_deref(), Some("arn:xxx:xxx"));
    }

    #[test]
    fn policy_over_2048_characters_is_packed_policy_too_large() {
        let policy_of = |length: usize| {
            let filler = "x".repeat(length - r#"{"Sid":""}"#.len());
            format!(r#"{{"Sid":"{filler}"}}"#)
        };
        let at_limit = policy_of(MAX_POLICY_CHARS);
        let request = assume_role(&format!(
            "Action=AssumeRole&Version=2011-06-15&Policy={at_limit}"
        ));
        assert_eq!(request.policy.map(|p| p.chars().count()), Some(2048));
        let error = parse_sts_request(&format!(
            "Action=AssumeRole&Version=2011-06-15&Policy={}",
            policy_of(MAX_POLICY_CHARS + 1)
        ))
        .unwrap_err();
        assert_eq!(
            (error.code, error.status.as_u16()),
            ("PackedPolicyTooLarge", 400)
        );
    }

    #[test]
    fn policy_must_be_a_json_object() {
        for policy in ["not-json", "%5B%5D", "%7B%22a%22%3A"] {
            let error = parse_sts_request(&format!(
                "Action=AssumeRole&Version=2011-06-15&Policy={policy}"
            ))
            .unwrap_err();
            assert_eq!(error.code, "MalformedPolicyDocument", "{policy}");
        }
    }

    #[test]
    fn undecodable_or_oversized_forms_are_refused() {
        let error =
            parse_sts_request("Action=AssumeRole&Version=2011-06-15&Policy=%FF").unwrap_err();
        assert_eq!(error.code, "InvalidParameterValue");
        let huge = format!(
            "Action=GetCallerIdentity&Version=2011-06-15&X={}",
            "a".repeat(MAX_FORM_BYTES)
        );
        assert_eq!(
            parse_sts_request(&huge).unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn first_of_repeated_parameters_wins() {
        let request = assume_role(
            "Action=AssumeRole&Version=2011-06-15&DurationSeconds=1000&DurationSeconds=1",
        );
        assert_eq!(request.duration, Duration::from_secs(1000));
    }

    #[test]
    fn sts_requests_are_recognised() {
        let form = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert!(is_sts_request(&Method::POST, form, None));
        assert!(is_sts_request(
            &Method::POST,
            Some("Application/X-WWW-Form-Urlencoded"),
            None
        ));
        assert!(is_sts_request(
            &Method::GET,
            None,
            Some("Version=2011-06-15&Action=AssumeRole")
        ));
        assert!(is_sts_request(
            &Method::POST,
            None,
            Some("Action=AssumeRole")
        ));
        // S3 calls on the root: ListBuckets, and POST forms that are not URL-encoded.
        assert!(!is_sts_request(&Method::GET, None, None));
        assert!(!is_sts_request(
            &Method::GET,
            None,
            Some("x-id=ListBuckets&Actions=1")
        ));
        assert!(!is_sts_request(
            &Method::POST,
            Some("multipart/form-data; boundary=x"),
            None
        ));
        assert!(!is_sts_request(&Method::GET, form, None));
    }
}
