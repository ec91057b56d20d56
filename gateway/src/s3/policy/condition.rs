//! Condition blocks of the policy language: the operators clients use (String*, Numeric*,
//! Date*, Bool, BinaryEquals, IpAddress/NotIpAddress, Arn*, Null), their `…IfExists` forms and
//! the `ForAnyValue:`/`ForAllValues:` set qualifiers, evaluated against the request's context
//! keys as AWS defines it.
//!
//! Invariants: a policy value of the wrong type (a bad IP, number, date or bool) is refused when
//! the policy is stored, never at request time; key names are compared case-insensitively
//! (the tag key after `/` in `s3:ExistingObjectTag/<key>` keeps its case, as AWS does); several
//! values for one key are ORed, several keys and operators are ANDed; a missing key fails a
//! positive operator, satisfies a negated one, and satisfies any `…IfExists` operator; with
//! `ForAllValues` an absent or empty key is satisfied, with `ForAnyValue` it is not.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::pattern::{self, Case};
use super::PolicyError;

/// The request's condition context: each key (lowercased, see [`normalize_key`]) with its
/// values. Most keys have one value; tag-key lists have several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextKeys {
    values: HashMap<String, Vec<String>>,
}

impl ContextKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a context from single-valued pairs (tests and simple callers).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut keys = Self::new();
        for (key, value) in pairs {
            keys.insert(key, value);
        }
        keys
    }

    /// Sets `key` to the single value `value`.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(normalize_key(key), vec![value.into()]);
    }

    /// Sets `key` to several values (for example `s3:RequestObjectTagKeys`).
    pub fn insert_many(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(normalize_key(key), values);
    }

    /// All values of `key`; `None` when the key is absent from the request.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&normalize_key(key)).map(Vec::as_slice)
    }

    /// All values of a key already in [`normalize_key`] form (no allocation per lookup).
    pub fn get_normalized(&self, normalized: &str) -> Option<&[String]> {
        self.values.get(normalized).map(Vec::as_slice)
    }

    /// The value of a single-valued key (policy variables use this).
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some([value]) => Some(value),
            _ => None,
        }
    }
}

/// Lowercases the `service:name` part of a key, keeping what follows a `/` (a tag key) as is.
pub fn normalize_key(key: &str) -> String {
    match key.split_once('/') {
        Some((name, rest)) => format!("{}/{rest}", name.to_ascii_lowercase()),
        None => key.to_ascii_lowercase(),
    }
}

/// The comparison an operator makes, without its negation, qualifier or `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
}

/// `ForAnyValue:` / `ForAllValues:` in front of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    AnyValue,
    AllValues,
}

/// One parsed operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Compare {
        comparison: Comparison,
        negated: bool,
        if_exists: bool,
        qualifier: Option<SetQualifier>,
    },
    Null,
}

fn parse_operator(name: &str) -> Option<Operator> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Some(SetQualifier::AnyValue), rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Some(SetQualifier::AllValues), rest)
    } else {
        (None, name)
    };
    if rest == "Null" {
        return qualifier.is_none().then_some(Operator::Null);
    }
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    use Comparison as C;
    let (comparison, negated) = match base {
        "StringEquals" => (C::StringEquals, false),
        "StringNotEquals" => (C::StringEquals, true),
        "StringEqualsIgnoreCase" => (C::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (C::StringEqualsIgnoreCase, true),
        "StringLike" => (C::StringLike, false),
        "StringNotLike" => (C::StringLike, true),
        "NumericEquals" => (C::NumericEquals, false),
        "NumericNotEquals" => (C::NumericEquals, true),
        "NumericLessThan" => (C::NumericLessThan, false),
        "NumericLessThanEquals" => (C::NumericLessThanEquals, false),
        "NumericGreaterThan" => (C::NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (C::NumericGreaterThanEquals, false),
        "DateEquals" => (C::DateEquals, false),
        "DateNotEquals" => (C::DateEquals, true),
        "DateLessThan" => (C::DateLessThan, false),
        "DateLessThanEquals" => (C::DateLessThanEquals, false),
        "DateGreaterThan" => (C::DateGreaterThan, false),
        "DateGreaterThanEquals" => (C::DateGreaterThanEquals, false),
        "Bool" => (C::Bool, false),
        "BinaryEquals" => (C::BinaryEquals, false),
        "IpAddress" => (C::IpAddress, false),
        "NotIpAddress" => (C::IpAddress, true),
        "ArnEquals" | "ArnLike" => (C::ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (C::ArnLike, true),
        _ => return None,
    };
    Some(Operator::Compare {
        comparison,
        negated,
        if_exists,
        qualifier,
    })
}

/// One `operator: { key: values }` test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    operator: Operator,
    /// As written in the policy (for messages); compared through [`ContextKeys`].
    key: String,
    /// `key` normalized once at parse time ([`normalize_key`]): the lookup of every request.
    normalized_key: String,
    values: Vec<String>,
}

/// Condition keys of S3 (and the global `aws:` keys S3 evaluates). Keys ending in `/` take a
/// suffix (a tag key).
const KNOWN_KEYS: &[&str] = &[
    "aws:currenttime",
    "aws:epochtime",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:referer",
    "aws:securetransport",
    "aws:sourceip",
    "aws:tokenissuetime",
    "aws:useragent",
    "aws:userid",
    "aws:username",
    "aws:multifactorauthpresent",
    "aws:multifactorauthage",
    "aws:requestedregion",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:viaawsservice",
    "aws:calledvia",
    "aws:principaltag/",
    "aws:requesttag/",
    "aws:resourcetag/",
    "aws:tagkeys",
    "s3:authtype",
    "s3:delimiter",
    "s3:existingobjecttag/",
    "s3:locationconstraint",
    "s3:max-keys",
    "s3:object-lock-legal-hold",
    "s3:object-lock-mode",
    "s3:object-lock-remaining-retention-days",
    "s3:object-lock-retain-until-date",
    "s3:prefix",
    "s3:requestobjecttag/",
    "s3:requestobjecttagkeys",
    "s3:resourceaccount",
    "s3:signatureage",
    "s3:signatureversion",
    "s3:tlsversion",
    "s3:versionid",
    "s3:x-amz-acl",
    "s3:x-amz-content-sha256",
    "s3:x-amz-copy-source",
    "s3:x-amz-grant-full-control",
    "s3:x-amz-grant-read",
    "s3:x-amz-grant-read-acp",
    "s3:x-amz-grant-write",
    "s3:x-amz-grant-write-acp",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-server-side-encryption-customer-algorithm",
    "s3:x-amz-storage-class",
    "s3:x-amz-website-redirect-location",
    "s3:objectcreationoperation",
    "s3:if-match",
    "s3:if-none-match",
];

fn known_key(key: &str) -> bool {
    let normalized = normalize_key(key);
    KNOWN_KEYS
        .iter()
        .any(|known| match known.strip_suffix('/') {
            Some(prefix) => normalized
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|tag| !tag.is_empty()),
            None => normalized == *known,
        })
}

fn parse_number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// ISO 8601 / RFC 3339 date-times, plain dates, or epoch seconds, as AWS accepts.
fn parse_date(value: &str) -> Option<i128> {
    let value = value.trim();
    if let Ok(epoch) = value.parse::<i64>() {
        return Some(i128::from(epoch) * 1_000_000_000);
    }
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(at.unix_timestamp_nanos());
    }
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &date_only)
        .ok()
        .map(|date| date.midnight().assume_utc().unix_timestamp_nanos())
}

fn parse_network(value: &str) -> Option<IpNet> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .ok()
        .or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl Condition {
    /// Parses one `operator` with its `key` and `values`, checking names and value types.
    pub fn parse(operator: &str, key: &str, values: Vec<String>) -> Result<Self, PolicyError> {
        let parsed = parse_operator(operator)
            .ok_or_else(|| PolicyError::new(format!("Invalid Condition type : {operator}")))?;
        if !known_key(key) {
            return Err(PolicyError::new(format!(
                "Policy has an invalid condition key: {key}"
            )));
        }
        if values.is_empty() {
            return Err(PolicyError::new(format!(
                "Condition {operator} on {key} has no value"
            )));
        }
        let typed_ok = |value: &String| match parsed {
            Operator::Null => parse_bool(value).is_some(),
            Operator::Compare { comparison, .. } => match comparison {
                Comparison::NumericEquals
                | Comparison::NumericLessThan
                | Comparison::NumericLessThanEquals
                | Comparison::NumericGreaterThan
                | Comparison::NumericGreaterThanEquals => parse_number(value).is_some(),
                Comparison::DateEquals
                | Comparison::DateLessThan
                | Comparison::DateLessThanEquals
                | Comparison::DateGreaterThan
                | Comparison::DateGreaterThanEquals => parse_date(value).is_some(),
                Comparison::Bool => parse_bool(value).is_some(),
                Comparison::IpAddress => parse_network(value).is_some(),
                _ => true,
            },
        };
        if let Some(bad) = values.iter().find(|value| !typed_ok(value)) {
            return Err(PolicyError::new(format!(
                "Invalid value for condition {operator} on {key}: {bad}"
            )));
        }
        Ok(Self {
            operator: parsed,
            key: key.to_string(),
            normalized_key: normalize_key(key),
            values,
        })
    }

    /// The condition key as written in the policy.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the request's context satisfies this condition.
    pub fn holds(&self, keys: &ContextKeys) -> bool {
        let present = keys
            .get_normalized(&self.normalized_key)
            .filter(|values| !values.is_empty());
        let Operator::Compare {
            comparison,
            negated,
            if_exists,
            qualifier,
        } = self.operator
        else {
            // Null: "true" asks for the key to be absent, "false" for it to be present.
            return self
                .values
                .iter()
                .any(|value| parse_bool(value) == Some(present.is_none()));
        };
        let Some(request_values) = present else {
            return match qualifier {
                Some(SetQualifier::AllValues) => true,
                Some(SetQualifier::AnyValue) => if_exists,
                None => if_exists || negated,
            };
        };
        // Whether one request value satisfies the operator (negation applied per value).
        let value_holds = |request_value: &String| {
            let any_match = self
                .values
                .iter()
                .any(|policy_value| compare(comparison, request_value, policy_value, keys));
            any_match != negated
        };
        match qualifier {
            Some(SetQualifier::AllValues) => request_values.iter().all(value_holds),
            Some(SetQualifier::AnyValue) => request_values.iter().any(value_holds),
            // Without a qualifier: positive operators need one match; negated ones need no
            // request value to match.
            None if negated => request_values.iter().all(value_holds),
            None => request_values.iter().any(value_holds),
        }
    }
}

/// The positive comparison of one request value with one policy value.
fn compare(comparison: Comparison, request: &str, policy: &str, keys: &ContextKeys) -> bool {
    use Comparison as C;
    match comparison {
        C::StringEquals => pattern::expand(policy, keys).is_some_and(|p| p == request),
        C::StringEqualsIgnoreCase => pattern::expand(policy, keys)
            .is_some_and(|p| p.to_lowercase() == request.to_lowercase()),
        C::StringLike => pattern::matches(policy, request, Case::Sensitive, Some(keys)),
        C::NumericEquals
        | C::NumericLessThan
        | C::NumericLessThanEquals
        | C::NumericGreaterThan
        | C::NumericGreaterThanEquals => {
            let (Some(r), Some(p)) = (parse_number(request), parse_number(policy)) else {
                return false;
            };
            match comparison {
                C::NumericEquals => r == p,
                C::NumericLessThan => r < p,
                C::NumericLessThanEquals => r <= p,
                C::NumericGreaterThan => r > p,
                _ => r >= p,
            }
        }
        C::DateEquals
        | C::DateLessThan
        | C::DateLessThanEquals
        | C::DateGreaterThan
        | C::DateGreaterThanEquals => {
            let (Some(r), Some(p)) = (parse_date(request), parse_date(policy)) else {
                return false;
            };
            match comparison {
                C::DateEquals => r == p,
                C::DateLessThan => r < p,
                C::DateLessThanEquals => r <= p,
                C::DateGreaterThan => r > p,
                _ => r >= p,
            }
        }
        C::Bool => parse_bool(request).is_some() && parse_bool(request) == parse_bool(policy),
        C::BinaryEquals => request == policy,
        C::IpAddress => match (request.trim().parse::<IpAddr>(), parse_network(policy)) {
            (Ok(address), Some(network)) => network.contains(&address),
            _ => false,
        },
        C::ArnLike => arn_like(policy, request, keys),
    }
}

/// ARN matching: the six `:`-separated parts are compared one by one, each with wildcards.
fn arn_like(policy: &str, request: &str, keys: &ContextKeys) -> bool {
    let policy_parts: Vec<&str> = policy.splitn(6, ':').collect();
    let request_parts: Vec<&str> = request.splitn(6, ':').collect();
    policy_parts.len() == 6
        && request_parts.len() == 6
        && policy_parts
            .iter()
            .zip(&request_parts)
            .all(|(p, r)| pattern::matches(p, r, Case::Sensitive, Some(keys)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(operator: &str, key: &str, values: &[&str]) -> Condition {
        Condition::parse(
            operator,
            key,
            values.iter().map(|v| v.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn string_operators() {
        let keys =
            ContextKeys::from_pairs([("s3:prefix", "home/alice/"), ("aws:username", "alice")]);
        assert!(cond("StringEquals", "s3:prefix", &["x", "home/alice/"]).holds(&keys));
        assert!(!cond("StringEquals", "s3:prefix", &["HOME/alice/"]).holds(&keys));
        assert!(cond("StringEqualsIgnoreCase", "s3:prefix", &["HOME/alice/"]).holds(&keys));
        assert!(cond("StringLike", "s3:prefix", &["home/${aws:username}/*"]).holds(&keys));
        assert!(!cond("StringLike", "s3:prefix", &["home/bob/*"]).holds(&keys));
        assert!(cond("StringNotLike", "s3:prefix", &["home/bob/*"]).holds(&keys));
        assert!(!cond("StringNotEquals", "s3:prefix", &["a", "home/alice/"]).holds(&keys));
        // Key names are case-insensitive.
        assert!(cond("StringEquals", "S3:Prefix", &["home/alice/"]).holds(&keys));
    }

    #[test]
    fn missing_keys_if_exists_and_null() {
        let keys = ContextKeys::from_pairs([("s3:prefix", "p")]);
        assert!(!cond("StringEquals", "s3:delimiter", &["/"]).holds(&keys));
        assert!(cond("StringNotEquals", "s3:delimiter", &["/"]).holds(&keys));
        assert!(cond("StringEqualsIfExists", "s3:delimiter", &["/"]).holds(&keys));
        assert!(!cond("StringEqualsIfExists", "s3:prefix", &["q"]).holds(&keys));
        assert!(cond("Null", "s3:delimiter", &["true"]).holds(&keys));
        assert!(!cond("Null", "s3:prefix", &["true"]).holds(&keys));
        assert!(cond("Null", "s3:prefix", &["false"]).holds(&keys));
    }

    #[test]
    fn numbers_dates_bools_binary() {
        let keys = ContextKeys::from_pairs([
            ("s3:max-keys", "50"),
            ("aws:currenttime", "2026-12-07T12:00:00Z"),
            ("aws:securetransport", "false"),
            ("s3:x-amz-content-sha256", "AAAA"),
        ]);
        assert!(cond("NumericLessThanEquals", "s3:max-keys", &["50"]).holds(&keys));
        assert!(!cond("NumericLessThan", "s3:max-keys", &["50"]).holds(&keys));
        assert!(cond("NumericGreaterThan", "s3:max-keys", &["10.5"]).holds(&keys));
        assert!(cond("NumericNotEquals", "s3:max-keys", &["10"]).holds(&keys));
        assert!(cond("DateLessThan", "aws:CurrentTime", &["2027-01-01"]).holds(&keys));
        assert!(cond(
            "DateGreaterThan",
            "aws:CurrentTime",
            &["2026-12-07T11:59:59+00:00"]
        )
        .holds(&keys));
        assert!(!cond("DateGreaterThan", "aws:CurrentTime", &["1796644800"]).holds(&keys));
        assert!(cond("Bool", "aws:SecureTransport", &["False"]).holds(&keys));
        assert!(!cond("Bool", "aws:SecureTransport", &["true"]).holds(&keys));
        assert!(cond("BinaryEquals", "s3:x-amz-content-sha256", &["AAAA"]).holds(&keys));
    }

    #[test]
    fn ip_addresses_v4_and_v6() {
        let v4 = ContextKeys::from_pairs([("aws:SourceIp", "10.1.2.3")]);
        assert!(cond("IpAddress", "aws:SourceIp", &["10.0.0.0/8"]).holds(&v4));
        assert!(cond("IpAddress", "aws:SourceIp", &["10.1.2.3"]).holds(&v4));
        assert!(!cond("IpAddress", "aws:SourceIp", &["192.168.0.0/16"]).holds(&v4));
        assert!(cond("NotIpAddress", "aws:SourceIp", &["192.168.0.0/16"]).holds(&v4));
        assert!(!cond("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8", "::1"]).holds(&v4));
        let v6 = ContextKeys::from_pairs([("aws:SourceIp", "2001:db8::5")]);
        assert!(cond("IpAddress", "aws:SourceIp", &["2001:db8::/32"]).holds(&v6));
        assert!(!cond("IpAddress", "aws:SourceIp", &["10.0.0.0/8"]).holds(&v6));
    }

    #[test]
    fn set_qualifiers() {
        let mut keys = ContextKeys::new();
        keys.insert_many("s3:RequestObjectTagKeys", vec!["a".into(), "b".into()]);
        assert!(cond(
            "ForAllValues:StringEquals",
            "s3:RequestObjectTagKeys",
            &["a", "b", "c"]
        )
        .holds(&keys));
        assert!(!cond(
            "ForAllValues:StringEquals",
            "s3:RequestObjectTagKeys",
            &["a"]
        )
        .holds(&keys));
        assert!(cond(
            "ForAnyValue:StringEquals",
            "s3:RequestObjectTagKeys",
            &["b"]
        )
        .holds(&keys));
        assert!(!cond(
            "ForAnyValue:StringEquals",
            "s3:RequestObjectTagKeys",
            &["z"]
        )
        .holds(&keys));
        assert!(cond(
            "ForAnyValue:StringNotEquals",
            "s3:RequestObjectTagKeys",
            &["a"]
        )
        .holds(&keys));
        assert!(!cond(
            "ForAllValues:StringNotEquals",
            "s3:RequestObjectTagKeys",
            &["a"]
        )
        .holds(&keys));
        // Absent key: ForAllValues holds, ForAnyValue does not.
        let empty = ContextKeys::new();
        assert!(cond(
            "ForAllValues:StringEquals",
            "s3:RequestObjectTagKeys",
            &["a"]
        )
        .holds(&empty));
        assert!(!cond(
            "ForAnyValue:StringEquals",
            "s3:RequestObjectTagKeys",
            &["a"]
        )
        .holds(&empty));
    }

    #[test]
    fn arn_matching_is_per_part() {
        let keys =
            ContextKeys::from_pairs([("aws:PrincipalArn", "arn:aws:iam::000000000000:user/alice")]);
        assert!(cond("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*:user/a*"]).holds(&keys));
        assert!(!cond("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*:user/b*"]).holds(&keys));
        assert!(cond(
            "ArnNotEquals",
            "aws:PrincipalArn",
            &["arn:aws:iam::*:user/bob"]
        )
        .holds(&keys));
        assert!(!cond("ArnLike", "aws:PrincipalArn", &["alice"]).holds(&keys));
    }

    #[test]
    fn tag_keys_keep_their_case() {
        let keys = ContextKeys::from_pairs([("s3:ExistingObjectTag/Project", "x")]);
        assert!(cond("StringEquals", "s3:existingobjecttag/Project", &["x"]).holds(&keys));
        assert!(!cond("StringEquals", "s3:ExistingObjectTag/project", &["x"]).holds(&keys));
    }

    #[test]
    fn bad_conditions_are_refused_with_their_reason() {
        let err = |operator: &str, key: &str, value: &str| {
            Condition::parse(operator, key, vec![value.to_string()])
                .unwrap_err()
                .to_string()
        };
        assert!(err("StringEqualz", "s3:prefix", "x").contains("Invalid Condition type"));
        assert!(err("StringEquals", "s3:nosuchkey", "x").contains("invalid condition key"));
        assert!(err("StringEquals", "s3:ExistingObjectTag/", "x").contains("invalid condition key"));
        assert!(err("IpAddress", "aws:SourceIp", "10.0.0.300/8").contains("Invalid value"));
        assert!(err("NumericEquals", "s3:max-keys", "ten").contains("Invalid value"));
        assert!(err("DateLessThan", "aws:CurrentTime", "yesterday").contains("Invalid value"));
        assert!(err("Bool", "aws:SecureTransport", "yes").contains("Invalid value"));
        assert!(err("ForAnyValue:Null", "s3:prefix", "true").contains("Invalid Condition type"));
        assert!(Condition::parse("StringEquals", "s3:prefix", vec![]).is_err());
    }
}
