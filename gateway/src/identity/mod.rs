//! Who may sign requests and what they own: users, their access keys, named identity policies,
//! and every bucket's owner and access settings, loaded from the catalog into one immutable
//! [`Directory`] that requests read without locks.
//!
//! Invariants:
//! - the directory is rebuilt whenever the catalog's access generation changes (every user,
//!   key, policy, bucket creation/deletion or bucket access change bumps it in its own commit);
//!   with a catalog shared by several gateways (etcd) the generation is read before every
//!   request is authenticated, so a key disabled on one gateway is refused by every gateway on
//!   the next request; a catalog of its own (RocksDB) changes only through this process, which
//!   rebuilds after each change;
//! - the root credentials (the configured or generated admin key pair) are not stored in the
//!   catalog and always work: they are the way back in;
//! - secrets are stored sealed ([`secrets`]) and live in memory only inside the [`Keyring`];
//! - a stored policy that no longer parses (it cannot: it was validated when stored) grants
//!   nothing rather than failing every request.

pub mod secrets;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use metadata::model::{AccessKeyRecord, BucketAccess, BucketRecord, PolicyRecord, UserRecord};
use metadata::{Catalog, MetaError};
use rand::distr::{Alphanumeric, SampleString};
use tracing::warn;

use crate::s3::acl::{Acl, ObjectOwnership, PublicAccessBlock};
use crate::s3::auth::Keyring;
use crate::s3::policy::{builtin_policy_document, Policy, PolicyKind, Principal};
use crate::sse::keys::Keyring as MasterKeyring;

/// The one account every Strata user belongs to (ARNs, `GetCallerIdentity`).
pub const ACCOUNT_ID: &str = "000000000000";
/// Name the root credentials are shown under.
pub const ROOT_NAME: &str = "root";

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("cannot seal the secret: {0}")]
    Seal(#[from] secrets::SecretError),
    #[error("metadata task failed: {0}")]
    Task(String),
}

impl IdentityError {
    /// The bucket whose access settings were to change does not exist.
    pub fn is_no_such_bucket(&self) -> bool {
        matches!(self, IdentityError::Meta(MetaError::NoSuchBucket))
    }

    /// The catalog cannot be reached (the caller may retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, IdentityError::Meta(MetaError::Unavailable(_)))
    }
}

/// A user as requests see it.
#[derive(Debug)]
pub struct UserEntry {
    pub name: String,
    pub canonical_id: String,
    pub arn: String,
    /// Full rights on everything: the root credentials.
    pub admin: bool,
    pub policy_names: Vec<String>,
    /// The attached policies, parsed (unknown names are left out).
    pub policies: Vec<Arc<Policy>>,
}

impl UserEntry {
    /// This user as a policy principal.
    pub fn principal(&self) -> Principal {
        Principal::User {
            arn: self.arn.clone(),
            account: ACCOUNT_ID.to_string(),
            canonical_id: self.canonical_id.clone(),
        }
    }
}

/// A bucket's owner and access settings.
#[derive(Debug)]
pub struct BucketEntry {
    pub owner: String,
    pub created_ms: u64,
    pub region: String,
    pub access: BucketAccess,
    /// The bucket policy, parsed.
    pub policy: Option<Arc<Policy>>,
    /// The bucket ACL, decoded (`None`: private to the owner).
    pub acl: Option<Acl>,
    /// Object Ownership (never set: `BucketOwnerEnforced`, AWS's default; ACLs disabled).
    pub ownership: ObjectOwnership,
    /// The public access block (never set: nothing blocked).
    pub public_access_block: PublicAccessBlock,
}

impl BucketEntry {
    /// Whether the bucket's ACLs (and its objects') take part in authorization.
    pub fn acls_enabled(&self) -> bool {
        self.ownership.acls_enabled()
    }
}

/// One access key's state.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub user: String,
    pub active: bool,
    pub created_ms: u64,
}

/// Everything authorization reads, as of one access generation.
#[derive(Debug)]
pub struct Directory {
    pub generation: u64,
    /// Secrets of the active keys and of the root credentials.
    pub keyring: Keyring,
    keys: HashMap<String, KeyEntry>,
    users: BTreeMap<String, Arc<UserEntry>>,
    root: Arc<UserEntry>,
    root_access_key: String,
    buckets: BTreeMap<String, Arc<BucketEntry>>,
    policies: BTreeMap<String, PolicyRecord>,
}

impl Directory {
    /// The user an active access key belongs to.
    pub fn user_of_key(&self, access_key: &str) -> Option<Arc<UserEntry>> {
        if access_key == self.root_access_key {
            return Some(self.root.clone());
        }
        let key = self.keys.get(access_key).filter(|k| k.active)?;
        self.users.get(&key.user).cloned()
    }

    pub fn user(&self, name: &str) -> Option<&Arc<UserEntry>> {
        self.users.get(name)
    }

    pub fn root(&self) -> &Arc<UserEntry> {
        &self.root
    }

    pub fn bucket(&self, name: &str) -> Option<&Arc<BucketEntry>> {
        self.buckets.get(name)
    }

    /// Every bucket, by name.
    pub fn buckets(&self) -> impl Iterator<Item = (&String, &Arc<BucketEntry>)> {
        self.buckets.iter()
    }

    /// Every user (the root credentials excluded), by name.
    pub fn users(&self) -> impl Iterator<Item = &Arc<UserEntry>> {
        self.users.values()
    }

    /// Every access key (disabled ones too) with its state.
    pub fn keys(&self) -> impl Iterator<Item = (&String, &KeyEntry)> {
        self.keys.iter()
    }

    pub fn policies(&self) -> impl Iterator<Item = &PolicyRecord> {
        self.policies.values()
    }

    /// The display name of a canonical id (owners in listings and ACLs).
    pub fn display_name(&self, canonical_id: &str) -> String {
        if canonical_id == self.root.canonical_id {
            return ROOT_NAME.to_string();
        }
        self.users
            .values()
            .find(|u| u.canonical_id == canonical_id)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| canonical_id.to_string())
    }
}

/// A policy by name: a stored one, else a built-in.
fn policy_document<'a>(
    name: &str,
    stored: &'a BTreeMap<String, PolicyRecord>,
) -> Option<std::borrow::Cow<'a, str>> {
    match stored.get(name) {
        Some(record) => Some(record.document.as_str().into()),
        None => builtin_policy_document(name).map(Into::into),
    }
}

/// Whether `name` is a built-in identity policy.
pub fn is_builtin_policy(name: &str) -> bool {
    builtin_policy_document(name).is_some()
}

fn parse_stored(document: &str, kind: PolicyKind<'_>, what: &str) -> Option<Arc<Policy>> {
    match Policy::parse(document.as_bytes(), kind) {
        Ok(policy) => Some(Arc::new(policy)),
        Err(error) => {
            warn!(what, %error, "stored policy does not parse; it grants nothing");
            None
        }
    }
}

/// The root credentials as a user.
fn root_entry(access_key: &str) -> UserEntry {
    UserEntry {
        name: ROOT_NAME.to_string(),
        // Buckets made before users existed name the root access key as their owner.
        canonical_id: access_key.to_string(),
        arn: format!("arn:aws:iam::{ACCOUNT_ID}:root"),
        admin: true,
        policy_names: Vec::new(),
        policies: Vec::new(),
    }
}

/// A new random canonical id (64 lower-case hex characters, like S3's).
fn new_canonical_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A new access key id: 20 upper-case letters and digits starting with `SK` (the `AKIA`/`ASIA`
/// prefixes are AWS's).
pub fn new_access_key_id() -> String {
    let tail = Alphanumeric
        .sample_string(&mut rand::rng(), 18)
        .to_uppercase();
    format!("SK{tail}")
}

/// A new 40-character secret key.
pub fn new_secret_key() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// User names: 1–64 of `[A-Za-z0-9_+=,.@-]`, as IAM allows.
pub fn validate_user_name(name: &str) -> Result<(), IdentityError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        && name != ROOT_NAME;
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Invalid {
            what: "user name",
            reason: format!(
                "{name:?}: 1 to 64 of letters, digits and _+=,.@- (and not {ROOT_NAME:?})"
            ),
        })
    }
}

/// What the admin API shows of a user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserView {
    pub name: String,
    pub canonical_id: String,
    pub arn: String,
    pub policies: Vec<String>,
    pub access_keys: Vec<String>,
}

/// What the admin API shows of an access key (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    pub access_key: String,
    pub user: String,
    pub status: &'static str,
    pub created_ms: u64,
}

/// A freshly created key pair: the only time the secret is shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewKey {
    pub user: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Loads and serves the [`Directory`]; makes every identity change.
pub struct IdentityService {
    catalog: Catalog,
    master: MasterKeyring,
    root_access_key: String,
    root_secret_key: String,
    /// Other gateways may change the catalog: check the generation on every request.
    shared: bool,
    current: Mutex<Arc<Directory>>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Runs a catalog call off the reactor.
async fn blocking<T: Send + 'static>(
    catalog: &Catalog,
    call: impl FnOnce(&Catalog) -> Result<T, MetaError> + Send + 'static,
) -> Result<T, IdentityError> {
    let catalog = catalog.clone();
    tokio::task::spawn_blocking(move || call(&catalog))
        .await
        .map_err(|e| IdentityError::Task(e.to_string()))?
        .map_err(IdentityError::from)
}

impl IdentityService {
    /// Loads the directory. `shared`: other gateways use the same catalog.
    pub async fn new(
        catalog: Catalog,
        master: MasterKeyring,
        root_access_key: String,
        root_secret_key: String,
        shared: bool,
    ) -> Result<Arc<Self>, IdentityError> {
        let snapshot = blocking(&catalog, |c| c.load_identity()).await?;
        let directory = build(&snapshot, &master, &root_access_key, &root_secret_key);
        Ok(Arc::new(Self {
            catalog,
            master,
            root_access_key,
            root_secret_key,
            shared,
            current: Mutex::new(Arc::new(directory)),
        }))
    }

    /// The directory as last loaded (no catalog read).
    pub fn cached(&self) -> Arc<Directory> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current directory: with a shared catalog, after checking its generation.
    pub async fn current(&self) -> Result<Arc<Directory>, IdentityError> {
        let cached = self.cached();
        if !self.shared {
            return Ok(cached);
        }
        let generation = blocking(&self.catalog, |c| c.identity_generation()).await?;
        if generation == cached.generation {
            return Ok(cached);
        }
        self.reload().await
    }

    /// Reads the catalog again and replaces the directory.
    pub async fn reload(&self) -> Result<Arc<Directory>, IdentityError> {
        let snapshot = blocking(&self.catalog, |c| c.load_identity()).await?;
        let directory = Arc::new(build(
            &snapshot,
            &self.master,
            &self.root_access_key,
            &self.root_secret_key,
        ));
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        // Never go back to an older generation (two reloads racing).
        if directory.generation >= current.generation || directory.generation == 0 {
            *current = directory.clone();
        }
        Ok(current.clone())
    }

    /// Runs a change, then reloads so that this gateway's next request sees it.
    async fn change<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Catalog) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, IdentityError> {
        let out = blocking(&self.catalog, call).await?;
        self.reload().await?;
        Ok(out)
    }

    fn check_policy_names(&self, policies: &[String]) -> Result<(), IdentityError> {
        for name in policies {
            if name.is_empty() || name.len() > 128 {
                return Err(IdentityError::Invalid {
                    what: "policy name",
                    reason: format!("{name:?}"),
                });
            }
        }
        Ok(())
    }

    /// Creates a user with `policies` attached.
    pub async fn create_user(
        &self,
        name: &str,
        policies: Vec<String>,
    ) -> Result<UserView, IdentityError> {
        validate_user_name(name)?;
        self.check_policy_names(&policies)?;
        let record = UserRecord {
            name: name.to_string(),
            canonical_id: new_canonical_id(),
            created_ms: crate::engine::now_ms(),
            policies: Vec::new(),
            access_keys: Vec::new(),
        };
        let user = record.clone();
        let name = name.to_string();
        let stored = self
            .change(move |c| {
                c.create_user(&user)?;
                if policies.is_empty() {
                    return Ok(user);
                }
                c.set_user_policies(&name, &policies, &is_builtin_policy)
                    .inspect_err(|_| {
                        // Leave nothing half made.
                        let _ = c.delete_user(&name);
                    })
            })
            .await?;
        Ok(user_view(&stored))
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), IdentityError> {
        let name = name.to_string();
        self.change(move |c| c.delete_user(&name).map(|_| ())).await
    }

    pub async fn set_user_policies(
        &self,
        name: &str,
        policies: Vec<String>,
    ) -> Result<UserView, IdentityError> {
        self.check_policy_names(&policies)?;
        let name = name.to_string();
        let user = self
            .change(move |c| c.set_user_policies(&name, &policies, &is_builtin_policy))
            .await?;
        Ok(user_view(&user))
    }

    pub async fn list_users(&self) -> Result<Vec<UserView>, IdentityError> {
        let snapshot = blocking(&self.catalog, |c| c.load_identity()).await?;
        Ok(snapshot.users.iter().map(user_view).collect())
    }

    /// Creates an access key for `user`; the secret is in the answer and nowhere else.
    pub async fn create_key(&self, user: &str) -> Result<NewKey, IdentityError> {
        let access_key = new_access_key_id();
        let secret_key = new_secret_key();
        let record = AccessKeyRecord {
            access_key: access_key.clone(),
            user: user.to_string(),
            sealed_secret: secrets::seal(&self.master, &access_key, &secret_key)?,
            active: true,
            created_ms: crate::engine::now_ms(),
        };
        self.change(move |c| c.create_access_key(&record)).await?;
        Ok(NewKey {
            user: user.to_string(),
            access_key,
            secret_key,
        })
    }

    pub async fn set_key_active(
        &self,
        access_key: &str,
        active: bool,
    ) -> Result<(), IdentityError> {
        let access_key = access_key.to_string();
        self.change(move |c| c.set_access_key_active(&access_key, active).map(|_| ()))
            .await
    }

    pub async fn delete_key(&self, access_key: &str) -> Result<(), IdentityError> {
        let access_key = access_key.to_string();
        self.change(move |c| c.delete_access_key(&access_key).map(|_| ()))
            .await
    }

    /// Every key (of `user` only, if given), without secrets.
    pub async fn list_keys(&self, user: Option<&str>) -> Result<Vec<KeyView>, IdentityError> {
        let snapshot = blocking(&self.catalog, |c| c.load_identity()).await?;
        Ok(snapshot
            .keys
            .iter()
            .filter(|k| user.is_none_or(|u| k.user == u))
            .map(|k| KeyView {
                access_key: k.access_key.clone(),
                user: k.user.clone(),
                status: if k.active { "active" } else { "disabled" },
                created_ms: k.created_ms,
            })
            .collect())
    }

    /// Stores a named identity policy after validating it.
    pub async fn put_policy(&self, name: &str, document: &str) -> Result<(), IdentityError> {
        self.check_policy_names(&[name.to_string()])?;
        if is_builtin_policy(name) {
            return Err(IdentityError::Invalid {
                what: "policy name",
                reason: format!("{name:?} is a built-in policy"),
            });
        }
        Policy::parse(document.as_bytes(), PolicyKind::Identity).map_err(|e| {
            IdentityError::Invalid {
                what: "policy",
                reason: e.to_string(),
            }
        })?;
        let record = PolicyRecord {
            name: name.to_string(),
            document: document.to_string(),
            created_ms: crate::engine::now_ms(),
        };
        self.change(move |c| c.put_policy(&record)).await
    }

    pub async fn delete_policy(&self, name: &str) -> Result<(), IdentityError> {
        let name = name.to_string();
        self.change(move |c| c.delete_policy(&name)).await
    }

    /// Named policies (stored ones, then the built-ins) with their documents.
    pub async fn list_policies(&self) -> Result<Vec<(String, String, bool)>, IdentityError> {
        let snapshot = blocking(&self.catalog, |c| c.load_identity()).await?;
        let mut out: Vec<(String, String, bool)> = snapshot
            .policies
            .iter()
            .map(|p| (p.name.clone(), p.document.clone(), false))
            .collect();
        for name in ["readwrite", "readonly", "writeonly"] {
            if let Some(document) = builtin_policy_document(name) {
                out.push((name.to_string(), document.to_string(), true));
            }
        }
        Ok(out)
    }

    /// Changes a bucket's access settings; `update` may refuse with a catalog error.
    pub async fn update_bucket_access(
        &self,
        bucket: &str,
        update: impl Fn(&mut BucketAccess) -> Result<(), MetaError> + Send + 'static,
    ) -> Result<BucketRecord, IdentityError> {
        let bucket = bucket.to_string();
        self.change(move |c| c.update_bucket_access(&bucket, &update))
            .await
    }

    /// Makes the directory current after a change made elsewhere in this process (a bucket
    /// created or deleted through the engine).
    pub async fn note_change(&self) {
        if let Err(error) = self.reload().await {
            warn!(%error, "cannot reload the access directory");
        }
    }
}

fn user_view(user: &UserRecord) -> UserView {
    UserView {
        name: user.name.clone(),
        canonical_id: user.canonical_id.clone(),
        arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", user.name),
        policies: user.policies.clone(),
        access_keys: user.access_keys.clone(),
    }
}

/// Builds the directory of one snapshot. Keys whose secret cannot be opened (a master key
/// removed from the keyring) are left out with a warning.
pub(crate) fn build(
    snapshot: &metadata::catalog::IdentitySnapshot,
    master: &MasterKeyring,
    root_access_key: &str,
    root_secret_key: &str,
) -> Directory {
    let policies: BTreeMap<String, PolicyRecord> = snapshot
        .policies
        .iter()
        .map(|p| (p.name.clone(), p.clone()))
        .collect();
    let mut parsed: HashMap<String, Option<Arc<Policy>>> = HashMap::new();
    let mut users = BTreeMap::new();
    for record in &snapshot.users {
        let attached = record
            .policies
            .iter()
            .filter_map(|name| {
                parsed
                    .entry(name.clone())
                    .or_insert_with(|| {
                        policy_document(name, &policies).and_then(|doc| {
                            parse_stored(&doc, PolicyKind::Identity, "identity policy")
                        })
                    })
                    .clone()
            })
            .collect();
        let view = user_view(record);
        users.insert(
            record.name.clone(),
            Arc::new(UserEntry {
                name: record.name.clone(),
                canonical_id: record.canonical_id.clone(),
                arn: view.arn,
                admin: false,
                policy_names: record.policies.clone(),
                policies: attached,
            }),
        );
    }
    let mut secrets_of = vec![(root_access_key.to_string(), root_secret_key.to_string())];
    let mut keys = HashMap::new();
    for key in &snapshot.keys {
        keys.insert(
            key.access_key.clone(),
            KeyEntry {
                user: key.user.clone(),
                active: key.active,
                created_ms: key.created_ms,
            },
        );
        if !key.active || key.access_key == root_access_key {
            continue;
        }
        match secrets::open(master, &key.access_key, &key.sealed_secret) {
            Ok(secret) => secrets_of.push((key.access_key.clone(), secret)),
            Err(error) => warn!(access_key = %key.access_key, %error, "access key unusable"),
        }
    }
    let buckets = snapshot
        .buckets
        .iter()
        .map(|record| {
            let access = record.access.clone().unwrap_or_default();
            let policy = access.policy.as_deref().and_then(|doc| {
                parse_stored(doc, PolicyKind::Bucket(&record.name), "bucket policy")
            });
            let acl = access.acl.as_deref().and_then(|bytes| {
                Acl::decode(bytes)
                    .inspect_err(|error| {
                        warn!(bucket = %record.name, %error, "stored bucket ACL unreadable; private")
                    })
                    .ok()
            });
            let ownership = access
                .ownership
                .as_deref()
                .and_then(ObjectOwnership::parse)
                .unwrap_or_default();
            // An unreadable block blocks everything rather than nothing.
            let public_access_block = match access.public_access_block.as_deref() {
                None => PublicAccessBlock::default(),
                Some(bytes) => PublicAccessBlock::decode(bytes).unwrap_or_else(|error| {
                    warn!(bucket = %record.name, %error, "stored public access block unreadable");
                    PublicAccessBlock {
                        block_public_acls: true,
                        ignore_public_acls: true,
                        block_public_policy: true,
                        restrict_public_buckets: true,
                    }
                }),
            };
            (
                record.name.clone(),
                Arc::new(BucketEntry {
                    owner: record.owner.clone(),
                    created_ms: record.created_ms,
                    region: record.region.clone(),
                    access,
                    policy,
                    acl,
                    ownership,
                    public_access_block,
                }),
            )
        })
        .collect();
    Directory {
        generation: snapshot.generation,
        keyring: Keyring::new(secrets_of),
        keys,
        users,
        root: Arc::new(root_entry(root_access_key)),
        root_access_key: root_access_key.to_string(),
        buckets,
        policies,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;
