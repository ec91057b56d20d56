//! Parsing and validation of policy documents (JSON) into [`Policy`]: bucket policies and
//! identity (user) policies share the language and differ in what they must and must not say.
//!
//! Invariants: every rejection is a [`PolicyError`] whose message names the problem the way
//! AWS's `MalformedPolicy` does; documents are size-limited before they are parsed; in a
//! document without `"Version": "2012-10-17"` a `${…}` is literal text, as AWS treats it.

use serde_json::{Map, Value};

use super::actions::{self, ResourceKind};
use super::condition::Condition;
use super::pattern::{self, Case};
use super::{
    ActionClause, Effect, Policy, PolicyError, PrincipalClause, PrincipalSet, ResourceClause,
    Statement,
};

/// Largest bucket policy AWS accepts (20 KiB).
pub const MAX_BUCKET_POLICY_BYTES: usize = 20 * 1024;
/// Largest identity policy accepted (IAM's managed-policy limit, 6,144 characters).
pub const MAX_IDENTITY_POLICY_BYTES: usize = 6144;

/// Which kind of document is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind<'a> {
    /// A bucket policy attached to `bucket`: needs a principal, resources in the bucket.
    Bucket(&'a str),
    /// A user's policy (or an STS session policy): no principal.
    Identity,
}

fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError::new(message)
}

/// A string or a non-empty array of strings.
fn string_list(value: &Value, field: &str) -> Result<Vec<String>, PolicyError> {
    let items = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(malformed(format!("{field} must contain only strings"))),
            })
            .collect::<Result<_, _>>()?,
        Value::Array(_) => return Err(malformed(format!("{field} is empty"))),
        _ => {
            return Err(malformed(format!(
                "{field} must be a string or a list of strings"
            )))
        }
    };
    Ok(items)
}

/// Writes `${` as `${$}{` so that a pre-2012 document's variables stay literal text.
fn literal_variables(text: String, variables: bool) -> String {
    if variables || !text.contains("${") {
        text
    } else {
        text.replace("${", "${$}{")
    }
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(document: &[u8], kind: PolicyKind<'_>) -> Result<Self, PolicyError> {
        let limit = match kind {
            PolicyKind::Bucket(_) => MAX_BUCKET_POLICY_BYTES,
            PolicyKind::Identity => MAX_IDENTITY_POLICY_BYTES,
        };
        if document.len() > limit {
            return Err(malformed(format!(
                "Policies cannot exceed {limit} bytes (this one has {})",
                document.len()
            )));
        }
        let text = std::str::from_utf8(document)
            .map_err(|_| malformed("Policies must be valid UTF-8 JSON"))?;
        if !text.trim_start().starts_with('{') {
            return Err(malformed(
                "Policies must be valid JSON and the first byte must be '{'",
            ));
        }
        let root: Value = serde_json::from_str(text)
            .map_err(|e| malformed(format!("Policies must be valid JSON: {e}")))?;
        let Value::Object(root) = root else {
            return Err(malformed("Policies must be a JSON object"));
        };
        for field in root.keys() {
            if !matches!(field.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("Unknown field {field}")));
            }
        }
        let variables = match root.get("Version") {
            None => false,
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            Some(other) => {
                return Err(malformed(format!(
                    "The policy must contain a valid version string, not {other}"
                )))
            }
        };
        if root.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(malformed("Id must be a string"));
        }
        let statements = match root.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect::<Vec<_>>(),
            Some(Value::Array(_)) => return Err(malformed("Statement is empty")),
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => return Err(malformed("Statement must be an object or a list")),
            None => return Err(malformed("Missing required field Statement")),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, value)| match value {
                Value::Object(fields) => parse_statement(fields, kind, variables)
                    .map_err(|e| e.in_statement(index, fields.get("Sid"))),
                _ => Err(malformed(format!("Statement {index} must be an object"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { statements })
    }
}

fn parse_statement(
    fields: &Map<String, Value>,
    kind: PolicyKind<'_>,
    variables: bool,
) -> Result<Statement, PolicyError> {
    for field in fields.keys() {
        if !matches!(
            field.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(malformed(format!("Unknown field {field}")));
        }
    }
    if fields.get("Sid").is_some_and(|sid| !sid.is_string()) {
        return Err(malformed("Sid must be a string"));
    }
    let effect = match fields.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => return Err(malformed(format!("Invalid effect: {other}"))),
        None => return Err(malformed("Missing required field Effect")),
    };
    let principal = parse_principal(fields, kind)?;
    let action = parse_actions(fields, kind)?;
    let resource = parse_resources(fields, kind, variables)?;
    if let (
        PolicyKind::Bucket(_),
        ActionClause {
            negated: false,
            patterns,
        },
    ) = (kind, &action)
    {
        check_actions_apply(patterns, &resource)?;
    }
    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(operators)) => {
            let mut conditions = Vec::new();
            for (operator, block) in operators {
                let Value::Object(block) = block else {
                    return Err(malformed(format!("Condition {operator} must be an object")));
                };
                for (key, values) in block {
                    let values = condition_values(values, operator)?
                        .into_iter()
                        .map(|v| literal_variables(v, variables))
                        .collect();
                    conditions.push(Condition::parse(operator, key, values)?);
                }
            }
            conditions
        }
        Some(_) => return Err(malformed("Condition must be an object")),
    };
    Ok(Statement {
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// Condition values may be strings, numbers or booleans, alone or in a list.
fn condition_values(value: &Value, operator: &str) -> Result<Vec<String>, PolicyError> {
    let scalar = |item: &Value| match item {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(malformed(format!(
            "Condition {operator} values must be strings, numbers or booleans"
        ))),
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        single => Ok(vec![scalar(single)?]),
    }
}

fn parse_principal(
    fields: &Map<String, Value>,
    kind: PolicyKind<'_>,
) -> Result<Option<PrincipalClause>, PolicyError> {
    let (value, negated) = match (fields.get("Principal"), fields.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(malformed("Principal and NotPrincipal cannot both be given"))
        }
        (Some(value), None) => (value, false),
        (None, Some(value)) => (value, true),
        (None, None) => {
            return match kind {
                PolicyKind::Bucket(_) => Err(malformed("Missing required field Principal")),
                PolicyKind::Identity => Ok(None),
            }
        }
    };
    if kind == PolicyKind::Identity {
        return Err(malformed("Policy document should not specify a principal"));
    }
    let set = match value {
        Value::String(s) if s == "*" => PrincipalSet::Anyone,
        Value::Object(kinds) if !kinds.is_empty() => {
            let mut users = Vec::new();
            let mut canonical_ids = Vec::new();
            let mut anyone = false;
            for (principal_kind, names) in kinds {
                let names = string_list(names, "Principal")?;
                match principal_kind.as_str() {
                    "AWS" => {
                        for name in names {
                            if name == "*" {
                                anyone = true;
                            } else if is_account_id(&name)
                                || name.starts_with("arn:aws:iam::")
                                || name.starts_with("arn:aws:sts::")
                            {
                                users.push(name);
                            } else {
                                return Err(malformed(format!(
                                    "Invalid principal in policy: {name}"
                                )));
                            }
                        }
                    }
                    "CanonicalUser" => canonical_ids.extend(names),
                    // Service and federated principals never sign requests to Strata.
                    "Service" | "Federated" => {}
                    other => {
                        return Err(malformed(format!("Invalid principal in policy: {other}")))
                    }
                }
            }
            if anyone {
                PrincipalSet::Anyone
            } else {
                PrincipalSet::Listed {
                    users,
                    canonical_ids,
                }
            }
        }
        other => return Err(malformed(format!("Invalid principal in policy: {other}"))),
    };
    Ok(Some(PrincipalClause { negated, set }))
}

fn is_account_id(name: &str) -> bool {
    name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
}

fn parse_actions(
    fields: &Map<String, Value>,
    kind: PolicyKind<'_>,
) -> Result<ActionClause, PolicyError> {
    let (value, negated) = match (fields.get("Action"), fields.get("NotAction")) {
        (Some(_), Some(_)) => return Err(malformed("Action and NotAction cannot both be given")),
        (Some(value), None) => (value, false),
        (None, Some(value)) => (value, true),
        (None, None) => return Err(malformed("Missing required field Action")),
    };
    let patterns = string_list(value, "Action")?;
    for action in &patterns {
        if action == "*" {
            continue;
        }
        let Some((service, name)) = action.split_once(':') else {
            return Err(malformed(format!("Policy has invalid action: {action}")));
        };
        let service_ok = !service.is_empty() && service.bytes().all(|b| b.is_ascii_alphanumeric());
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?' || b == b'-');
        let is_s3 = service.eq_ignore_ascii_case("s3");
        let known =
            is_s3 && (pattern::has_wildcard(name) || actions::resource_kind(action).is_some());
        let allowed_elsewhere = matches!(kind, PolicyKind::Identity) && !is_s3;
        if !service_ok || !name_ok || !(known || allowed_elsewhere) {
            return Err(malformed(format!("Policy has invalid action: {action}")));
        }
    }
    Ok(ActionClause { negated, patterns })
}

fn parse_resources(
    fields: &Map<String, Value>,
    kind: PolicyKind<'_>,
    variables: bool,
) -> Result<ResourceClause, PolicyError> {
    let (value, negated) = match (fields.get("Resource"), fields.get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(malformed("Resource and NotResource cannot both be given"))
        }
        (Some(value), None) => (value, false),
        (None, Some(value)) => (value, true),
        (None, None) => return Err(malformed("Missing required field Resource")),
    };
    let patterns = string_list(value, "Resource")?
        .into_iter()
        .map(|r| literal_variables(r, variables))
        .collect::<Vec<_>>();
    for resource in &patterns {
        if resource == "*" {
            continue;
        }
        let valid = match kind {
            PolicyKind::Bucket(bucket) => {
                resource.strip_prefix("arn:aws:s3:::").is_some_and(|rest| {
                    let bucket_part = rest.split('/').next().unwrap_or(rest);
                    bucket_part == bucket
                        || bucket_part.contains("${")
                        || (pattern::has_wildcard(bucket_part)
                            && pattern::matches(bucket_part, bucket, Case::Sensitive, None))
                })
            }
            PolicyKind::Identity => {
                resource.starts_with("arn:") && resource.split(':').count() >= 6
            }
        };
        if !valid {
            return Err(malformed(format!(
                "Policy has invalid resource: {resource}"
            )));
        }
    }
    Ok(ResourceClause { negated, patterns })
}

/// Bucket policies: every action must apply to some resource of its statement (AWS refuses
/// `s3:GetObject` on `arn:aws:s3:::bucket`). Wildcard actions apply if any action they
/// cover does.
fn check_actions_apply(
    actions_in: &[String],
    resource: &ResourceClause,
) -> Result<(), PolicyError> {
    if resource.negated {
        return Ok(());
    }
    let covers = |kind: ResourceKind| {
        resource.patterns.iter().any(|r| {
            let rest = r.strip_prefix("arn:aws:s3:::").unwrap_or(r);
            let bucket_part = rest.split('/').next().unwrap_or(rest);
            match kind {
                ResourceKind::Object => r == "*" || rest.contains('/') || bucket_part.contains('*'),
                ResourceKind::Bucket => r == "*" || !rest.contains('/'),
                ResourceKind::Service => r == "*",
            }
        })
    };
    for action in actions_in {
        let applies = if action == "*" || pattern::has_wildcard(action) {
            actions::all().any(|(name, kind)| {
                pattern::matches(action, &name, Case::Insensitive, None) && covers(kind)
            })
        } else {
            actions::resource_kind(action).is_some_and(covers)
        };
        if !applies {
            return Err(malformed(format!(
                "Action does not apply to any resource(s) in statement: {action}"
            )));
        }
    }
    Ok(())
}
