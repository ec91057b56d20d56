//! The policy document of browser-based POST uploads: base64 JSON with an `expiration` and a
//! list of `conditions` every form field must satisfy (S3 "Creating a POST policy").
//!
//! Conditions: `{"field": "value"}` and `["eq", "$field", "value"]` (exact match),
//! `["starts-with", "$field", "prefix"]` (for Content-Type: each comma-separated value), and
//! `["content-length-range", min, max]` (the file size). Field names compare
//! case-insensitively; `bucket` is the bucket the form is posted to. Every form field except
//! the signature fields, `policy`, `file`, `x-amz-checksum-*` (verified against the file) and
//! `x-ignore-*` must be named by a condition, else
//! the upload is refused ("Extra input fields"), so a signed policy cannot be stretched by
//! adding fields. Failures are `AccessDenied` "Invalid according to Policy: …", as in S3; a
//! document that does not parse is `InvalidPolicyDocument`.

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use super::error::{S3Error, S3ErrorCode};

/// Largest policy document accepted (decoded).
const MAX_POLICY_BYTES: usize = 20 * 1024;
/// Most conditions in one policy.
const MAX_CONDITIONS: usize = 100;

/// Fields a policy never needs to mention.
const EXEMPT_FIELDS: &[&str] = &[
    "policy",
    "x-amz-signature",
    "signature",
    "awsaccesskeyid",
    "file",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Equals { field: String, value: String },
    StartsWith { field: String, prefix: String },
    ContentLengthRange { min: u64, max: u64 },
}

#[derive(Debug, Clone)]
pub struct PostPolicy {
    pub expiration: SystemTime,
    pub conditions: Vec<Condition>,
}

fn invalid_policy(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidPolicyDocument)
        .with_message(format!("Invalid Policy: {message}"))
}

fn denied(message: String) -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied)
        .with_message(format!("Invalid according to Policy: {message}"))
}

/// `$name` → `name` (lowercase).
fn field_name(raw: &Value) -> Result<String, S3Error> {
    raw.as_str()
        .and_then(|s| s.strip_prefix('$'))
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| invalid_policy("Condition field names must start with '$'."))
}

fn number(raw: &Value) -> Option<u64> {
    match raw {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_condition(raw: &Value, out: &mut Vec<Condition>) -> Result<(), S3Error> {
    match raw {
        Value::Object(map) => {
            if map.is_empty() {
                return Err(invalid_policy("Invalid condition: empty object."));
            }
            for (field, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| invalid_policy("Condition values must be strings."))?;
                out.push(Condition::Equals {
                    field: field.trim_start_matches('$').to_ascii_lowercase(),
                    value: value.to_string(),
                });
            }
            Ok(())
        }
        Value::Array(items) => {
            let op = items
                .first()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| invalid_policy("Invalid condition."))?;
            match (op.as_str(), items.len()) {
                ("content-length-range", 3) => {
                    let min = items.get(1).and_then(number);
                    let max = items.get(2).and_then(number);
                    match (min, max) {
                        (Some(min), Some(max)) if min <= max => {
                            out.push(Condition::ContentLengthRange { min, max });
                            Ok(())
                        }
                        _ => Err(invalid_policy("Invalid content-length-range.")),
                    }
                }
                ("eq" | "starts-with", 3) => {
                    let field = field_name(items.get(1).unwrap_or(&Value::Null))?;
                    let value = items
                        .get(2)
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid_policy("Condition values must be strings."))?
                        .to_string();
                    out.push(if op == "eq" {
                        Condition::Equals { field, value }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value,
                        }
                    });
                    Ok(())
                }
                _ => Err(invalid_policy(&format!(
                    "Invalid condition operator {op:?}."
                ))),
            }
        }
        _ => Err(invalid_policy("Conditions must be objects or arrays.")),
    }
}

/// Decodes and parses the form's `policy` field.
pub fn parse_policy(encoded: &str) -> Result<PostPolicy, S3Error> {
    let raw = BASE64
        .decode(encoded.trim())
        .map_err(|_| invalid_policy("Policy is not valid base64."))?;
    if raw.len() > MAX_POLICY_BYTES {
        return Err(invalid_policy("Policy document is too large."));
    }
    let document: Value =
        serde_json::from_slice(&raw).map_err(|_| invalid_policy("Invalid JSON."))?;
    let expiration = document
        .get("expiration")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_policy("Policy missing expiration."))?;
    // ISO 8601 in UTC as S3 documents it (`2030-01-01T00:00:00Z`, optional fraction): RFC
    // 3339's other spellings (a space or lower-case `t`, offsets) are refused like S3 does.
    let iso8601 = expiration.len() >= 20
        && expiration.as_bytes().get(10) == Some(&b'T')
        && expiration.ends_with('Z');
    let expiration =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .ok()
            .filter(|_| iso8601)
            .ok_or_else(|| invalid_policy("Invalid 'expiration' value."))?;
    let expiration = SystemTime::from(expiration);
    let list = document
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_policy("Policy missing conditions."))?;
    if list.len() > MAX_CONDITIONS {
        return Err(invalid_policy("Too many conditions."));
    }
    let mut conditions = Vec::with_capacity(list.len());
    for condition in list {
        parse_condition(condition, &mut conditions)?;
    }
    Ok(PostPolicy {
        expiration,
        conditions,
    })
}

impl PostPolicy {
    /// The file size bounds, if the policy sets them.
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::ContentLengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }

    /// Checks expiry and every field condition. `fields` are the form fields before the file
    /// (lowercase names); `bucket` is the bucket posted to.
    pub fn check(
        &self,
        now: SystemTime,
        fields: &[(String, String)],
        bucket: &str,
    ) -> Result<(), S3Error> {
        if now > self.expiration {
            return Err(denied("Policy expired.".to_string()));
        }
        let value_of = |name: &str| -> String {
            if name == "bucket" {
                return bucket.to_string();
            }
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        for condition in &self.conditions {
            let ok = match condition {
                Condition::Equals { field, value } => value_of(field) == *value,
                Condition::StartsWith { field, prefix } if field == "content-type" => {
                    value_of(field)
                        .split(',')
                        .all(|v| v.trim().starts_with(prefix.as_str()))
                }
                Condition::StartsWith { field, prefix } => value_of(field).starts_with(prefix),
                Condition::ContentLengthRange { .. } => true,
            };
            if !ok {
                return Err(denied(format!(
                    "Policy Condition failed: {}",
                    describe(condition)
                )));
            }
        }
        let extra: Vec<&str> = fields
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                !EXEMPT_FIELDS.contains(name)
                    && !name.starts_with("x-ignore-")
                    // The file's checksum, verified against the file, like `file` itself.
                    && !name.starts_with("x-amz-checksum-")
            })
            .filter(|name| {
                !self.conditions.iter().any(|c| match c {
                    Condition::Equals { field, .. } | Condition::StartsWith { field, .. } => {
                        field == name
                    }
                    Condition::ContentLengthRange { .. } => false,
                })
            })
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(())
    }
}

fn describe(condition: &Condition) -> String {
    match condition {
        Condition::Equals { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
        Condition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
        }
        Condition::ContentLengthRange { min, max } => {
            format!("[\"content-length-range\", {min}, {max}]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn encode(json: &str) -> String {
        BASE64.encode(json)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const POLICY: &str = r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [
        {"bucket": "photos"}, ["starts-with", "$key", "user/"], ["eq", "$Content-Type", "image/png"],
        ["content-length-range", 1, "1048576"], {"x-amz-algorithm": "AWS4-HMAC-SHA256"}]}"#;

    #[test]
    fn parses_every_condition_form() {
        let policy = parse_policy(&encode(POLICY)).unwrap();
        assert_eq!(policy.conditions.len(), 5);
        assert_eq!(policy.content_length_range(), Some((1, 1_048_576)));
        assert_eq!(
            policy.conditions[2],
            Condition::Equals {
                field: "content-type".into(),
                value: "image/png".into()
            }
        );
        let with_millis = r#"{"expiration": "2030-01-01T00:00:00.000Z", "conditions": []}"#;
        assert!(parse_policy(&encode(with_millis)).is_ok());
    }

    #[test]
    fn bad_documents_are_invalid_policy() {
        for bad in [
            "not json",
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            r#"{"expiration": "2030-01-01 00:00:00.123456", "conditions": []}"#,
            r#"{"expiration": "2030-01-01 00:00:00Z", "conditions": []}"#,
            r#"{"expiration": "2030-01-01T00:00:00+01:00", "conditions": []}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{}]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z"}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "x"]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["in", "$key", "x"]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 5, 1]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [7]}"#,
        ] {
            assert_eq!(
                parse_policy(&encode(bad)).unwrap_err().code,
                S3ErrorCode::InvalidPolicyDocument,
                "{bad}"
            );
        }
        assert_eq!(
            parse_policy("%%%").unwrap_err().code,
            S3ErrorCode::InvalidPolicyDocument
        );
    }

    #[test]
    fn conditions_expiry_and_extra_fields_are_enforced() {
        let policy = parse_policy(&encode(POLICY)).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let good = fields(&[
            ("key", "user/a.png"),
            ("content-type", "image/png"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
            ("x-ignore-me", "1"),
        ]);
        assert!(policy.check(now, &good, "photos").is_ok());
        let denied = |f: &[(String, String)], bucket: &str| {
            let e = policy.check(now, f, bucket).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::AccessDenied);
            e.message
        };
        assert!(denied(&good, "other").contains("bucket"));
        let mut wrong_key = good.clone();
        wrong_key[0].1 = "admin/a.png".into();
        assert!(denied(&wrong_key, "photos").contains("starts-with"));
        let mut extra = good.clone();
        extra.push(("x-amz-meta-evil".into(), "1".into()));
        assert!(denied(&extra, "photos").contains("Extra input fields: x-amz-meta-evil"));
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert!(policy
            .check(later, &good, "photos")
            .unwrap_err()
            .message
            .contains("expired"));
    }
}
