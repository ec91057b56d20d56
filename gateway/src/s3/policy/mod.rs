//! The AWS access-policy language as S3 uses it: bucket policies and identity (user) policies,
//! parsed and validated once when stored ([`Policy::parse`]) and evaluated per request
//! ([`Policy::evaluate`]).
//!
//! A statement applies to a request when its principal (bucket policies only), action,
//! resource and every condition match. A policy's answer is [`Decision::Deny`] if any applying
//! statement denies, else [`Decision::Allow`] if any allows, else [`Decision::NotApplicable`].
//! Combining the answers of several sources (identity policies, the bucket policy, ACLs) —
//! explicit deny wins, then any allow, else implicit deny — is [`combine`].
//!
//! Invariants: evaluation never fails and never panics (everything that could be wrong was
//! refused at parse time); actions compare case-insensitively, resources case-sensitively;
//! the anonymous principal matches only `"*"` principals.

mod actions;
mod condition;
mod document;
mod pattern;

pub use actions::{resource_kind, ResourceKind};
pub use condition::{normalize_key, ContextKeys};
pub use document::{PolicyKind, MAX_BUCKET_POLICY_BYTES, MAX_IDENTITY_POLICY_BYTES};

use condition::Condition;
use pattern::Case;

/// Why a policy document was refused; the message is what `MalformedPolicy` returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    message: String,
}

impl PolicyError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Prefixes the statement (by Sid when it has one) the problem was found in.
    fn in_statement(self, index: usize, sid: Option<&serde_json::Value>) -> Self {
        let at = match sid.and_then(|s| s.as_str()) {
            Some(sid) => format!("statement {sid:?}"),
            None => format!("statement {index}"),
        };
        Self::new(format!("{} (in {at})", self.message))
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An unsigned request.
    Anonymous,
    /// A signed request by a user (or a temporary credential of one).
    User {
        /// `arn:aws:iam::<account>:user/<name>`
        arn: String,
        /// The 12-digit account id the user belongs to.
        account: String,
        /// The canonical id ACL grants name.
        canonical_id: String,
    },
}

/// One request as policies see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `s3:GetObject`, …
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key` (or `*` for service actions).
    pub resource: &'a str,
    pub keys: &'a ContextKeys,
}

/// The answer of one policy (or one source) to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NotApplicable,
}

/// Combines the answers of every source AWS-style: an explicit deny anywhere wins, then an
/// allow anywhere, else the request is implicitly denied.
pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    let mut allowed = false;
    for decision in decisions {
        match decision {
            Decision::Deny => return Decision::Deny,
            Decision::Allow => allowed = true,
            Decision::NotApplicable => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalSet {
    Anyone,
    Listed {
        /// Account ids, `arn:aws:iam::<account>:root`, user or role ARNs.
        users: Vec<String>,
        canonical_ids: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PrincipalClause {
    negated: bool,
    set: PrincipalSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ActionClause {
    negated: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourceClause {
    negated: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    /// `None` in identity policies: the statement is about the user it is attached to.
    principal: Option<PrincipalClause>,
    action: ActionClause,
    resource: ResourceClause,
    conditions: Vec<Condition>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

impl PrincipalSet {
    /// Whether the set names `principal`. An account (`"123456789012"`,
    /// `arn:aws:iam::123456789012:root`) names the account's root for an `Allow` — as on AWS,
    /// granting to an account delegates to it, and its users still need their own identity
    /// policy — but every principal of the account for a `Deny`.
    fn contains(&self, principal: &Principal, effect: Effect) -> bool {
        match (self, principal) {
            (PrincipalSet::Anyone, _) => true,
            (PrincipalSet::Listed { .. }, Principal::Anonymous) => false,
            (
                PrincipalSet::Listed {
                    users,
                    canonical_ids,
                },
                Principal::User {
                    arn,
                    account,
                    canonical_id,
                },
            ) => {
                let account_root = format!("arn:aws:iam::{account}:root");
                let is_root = *arn == account_root;
                let names_account = |name: &String| name == account || *name == account_root;
                users.iter().any(|name| {
                    name == arn || (names_account(name) && (is_root || effect == Effect::Deny))
                }) || canonical_ids.iter().any(|id| id == canonical_id)
            }
        }
    }
}

impl Statement {
    fn applies(&self, request: &Request<'_>) -> bool {
        let principal_ok = self.principal.as_ref().is_none_or(|clause| {
            clause.set.contains(request.principal, self.effect) != clause.negated
        });
        let action_ok = self
            .action
            .patterns
            .iter()
            .any(|p| pattern::matches(p, request.action, Case::Insensitive, None))
            != self.action.negated;
        let resource_ok =
            self.resource.patterns.iter().any(|p| {
                pattern::matches(p, request.resource, Case::Sensitive, Some(request.keys))
            }) != self.resource.negated;
        principal_ok
            && action_ok
            && resource_ok
            && self.conditions.iter().all(|c| c.holds(request.keys))
    }
}

/// Condition keys whose presence keeps an `Allow` to everyone from making a policy public
/// (AWS's rule for `GetBucketPolicyStatus`: the grant is limited to known callers).
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:userid",
    "aws:username",
];

impl Policy {
    /// This policy's answer to `request`.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        let mut allowed = false;
        for statement in &self.statements {
            if statement.applies(request) {
                match statement.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }

    /// Every user or account principal the policy names (in Principal or NotPrincipal).
    pub fn principal_names(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .filter_map(|statement| statement.principal.as_ref())
            .flat_map(|clause| match &clause.set {
                PrincipalSet::Anyone => [].iter(),
                PrincipalSet::Listed { users, .. } => users.iter(),
            })
            .map(String::as_str)
    }

    /// Whether any condition names a key starting with `prefix` (compared case-insensitively):
    /// the authorizer reads an object's tags only for policies that ask about them.
    pub fn uses_condition_key_prefix(&self, prefix: &str) -> bool {
        let prefix = prefix.to_ascii_lowercase();
        self.statements.iter().any(|statement| {
            statement
                .conditions
                .iter()
                .any(|c| c.key().to_ascii_lowercase().starts_with(&prefix))
        })
    }

    /// Whether the policy grants anything to everyone (anonymous callers included) without a
    /// condition that limits who the caller is: `GetBucketPolicyStatus`'s `IsPublic`, and what
    /// a public-access block refuses.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|statement| {
            // `NotPrincipal` in an Allow grants to everyone but the listed principals.
            let to_everyone = matches!(
                &statement.principal,
                Some(PrincipalClause {
                    negated: false,
                    set: PrincipalSet::Anyone,
                }) | Some(PrincipalClause { negated: true, .. })
            );
            statement.effect == Effect::Allow
                && to_everyone
                && !statement
                    .conditions
                    .iter()
                    .any(|c| RESTRICTING_KEYS.contains(&normalize_key(c.key()).as_str()))
        })
    }
}

/// MinIO-style built-in identity policies, by name.
pub fn builtin_policy_document(name: &str) -> Option<&'static str> {
    match name {
        "readwrite" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#,
        ),
        "readonly" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObject","s3:ListAllMyBuckets","s3:ListBucket"],"Resource":["arn:aws:s3:::*"]}]}"#,
        ),
        "writeonly" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
