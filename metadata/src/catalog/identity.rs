//! Users, their access keys and named identity policies (the `identity` table, shared by every
//! gateway on the catalog), and the access generation that also covers buckets' owners and
//! access settings.
//!
//! | row | value |
//! |---|---|
//! | `u/<name>` | [`UserRecord`] |
//! | `k/<access key id>` | [`AccessKeyRecord`] |
//! | `p/<policy name>` | [`PolicyRecord`] |
//! | `g` | generation: u64 big-endian |
//!
//! Invariants: every change of a user, key or policy, and every bucket creation, deletion or
//! access change ([`Catalog::update_bucket_access`]), bumps the generation in the same commit,
//! so a gateway that reads an unchanged generation knows its cached copy of all of it is current (one small read per
//! request instead of reloading keys and policies); a user row lists exactly the key rows
//! whose `user` is that user; a policy attached to a user exists or is one the caller defines
//! itself (built-ins are not stored); the catalog never sees a secret in the clear.

use super::Catalog;
use crate::keys;
use crate::kv::Table;
use crate::model::{self, AccessKeyRecord, BucketAccess, BucketRecord, PolicyRecord, UserRecord};
use crate::txn::Txn;
use crate::MetaError;

/// Most access keys one user may hold (bounds the commit that deletes a user).
pub const MAX_KEYS_PER_USER: usize = 50;
/// Rows of the identity table read when it is loaded whole (users, keys and policies).
const MAX_IDENTITY_ROWS: usize = 100_000;

const GENERATION_KEY: &[u8] = b"g";

fn user_key(name: &str) -> Vec<u8> {
    [b"u/".as_slice(), name.as_bytes()].concat()
}

fn access_key_key(access_key: &str) -> Vec<u8> {
    [b"k/".as_slice(), access_key.as_bytes()].concat()
}

fn policy_key(name: &str) -> Vec<u8> {
    [b"p/".as_slice(), name.as_bytes()].concat()
}

/// Everything in the identity table and every bucket record, read in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySnapshot {
    pub generation: u64,
    pub users: Vec<UserRecord>,
    pub keys: Vec<AccessKeyRecord>,
    pub policies: Vec<PolicyRecord>,
    pub buckets: Vec<BucketRecord>,
}

fn decode_generation(raw: Option<Vec<u8>>) -> Result<u64, MetaError> {
    match raw {
        None => Ok(0),
        Some(raw) => keys::read_u64(&raw, 0)
            .filter(|_| raw.len() == 8)
            .ok_or_else(|| MetaError::Corrupt("identity generation".to_string())),
    }
}

/// Reads the generation and writes the next one: every commit that changes who may do what
/// calls it.
pub(super) fn bump_generation(txn: &mut Txn<'_>) -> Result<(), MetaError> {
    let current = decode_generation(txn.get(Table::Identity, GENERATION_KEY)?)?;
    txn.put(
        Table::Identity,
        GENERATION_KEY.to_vec(),
        current.wrapping_add(1).to_be_bytes().to_vec(),
    );
    Ok(())
}

fn get_user(txn: &mut Txn<'_>, name: &str) -> Result<UserRecord, MetaError> {
    txn.get_record(Table::Identity, &user_key(name))?
        .ok_or(MetaError::NoSuchUser)
}

impl Catalog {
    /// The identity generation: changes with every user, key or policy change.
    pub fn identity_generation(&self) -> Result<u64, MetaError> {
        decode_generation(self.kv().get(Table::Identity, GENERATION_KEY)?)
    }

    /// The whole identity table, consistent as of one moment.
    pub fn load_identity(&self) -> Result<IdentitySnapshot, MetaError> {
        self.transact(|txn| {
            let generation = decode_generation(txn.get(Table::Identity, GENERATION_KEY)?)?;
            let rows = txn.scan(Table::Identity, b"k/", b"q/", MAX_IDENTITY_ROWS)?;
            let mut snapshot = IdentitySnapshot {
                generation,
                ..IdentitySnapshot::default()
            };
            for (key, value) in &rows {
                match key.get(..2) {
                    Some(b"k/") => snapshot.keys.push(model::decode(value)?),
                    Some(b"p/") => snapshot.policies.push(model::decode(value)?),
                    _ => {}
                }
            }
            let users = txn.scan(Table::Identity, b"u/", b"u0", MAX_IDENTITY_ROWS)?;
            for (_, value) in &users {
                snapshot.users.push(model::decode(value)?);
            }
            for (_, value) in &txn.scan(Table::Buckets, b"", b"", MAX_IDENTITY_ROWS)? {
                snapshot.buckets.push(model::decode(value)?);
            }
            Ok(snapshot)
        })
    }

    /// Changes a bucket's access settings (policy, ACL, ownership, public access block) by
    /// `update`, which may refuse; returns the record as stored.
    pub fn update_bucket_access(
        &self,
        name: &str,
        update: &dyn Fn(&mut BucketAccess) -> Result<(), MetaError>,
    ) -> Result<BucketRecord, MetaError> {
        self.transact(|txn| {
            let mut record: BucketRecord = txn
                .get_record(Table::Buckets, name.as_bytes())?
                .ok_or(MetaError::NoSuchBucket)?;
            let mut access = record.access.clone().unwrap_or_default();
            update(&mut access)?;
            record.access = Some(access);
            txn.put_record(Table::Buckets, name.as_bytes(), &record)?;
            bump_generation(txn)?;
            Ok(record)
        })
    }

    /// Creates a user; `UserExists` if the name is taken.
    pub fn create_user(&self, user: &UserRecord) -> Result<(), MetaError> {
        self.transact(|txn| {
            if txn.get(Table::Identity, &user_key(&user.name))?.is_some() {
                return Err(MetaError::UserExists);
            }
            let mut stored = user.clone();
            stored.access_keys.clear();
            txn.put_record(Table::Identity, user_key(&user.name), &stored)?;
            bump_generation(txn)
        })
    }

    pub fn get_user(&self, name: &str) -> Result<Option<UserRecord>, MetaError> {
        self.get_record(Table::Identity, &user_key(name))
    }

    /// Deletes a user and every access key of theirs.
    pub fn delete_user(&self, name: &str) -> Result<UserRecord, MetaError> {
        self.transact(|txn| {
            let user = get_user(txn, name)?;
            for access_key in &user.access_keys {
                txn.delete(Table::Identity, access_key_key(access_key));
            }
            txn.delete(Table::Identity, user_key(name));
            bump_generation(txn)?;
            Ok(user.clone())
        })
    }

    /// Replaces the policies attached to a user. `is_builtin` names the policies the caller
    /// defines itself; every other name must be a stored policy.
    pub fn set_user_policies(
        &self,
        name: &str,
        policies: &[String],
        is_builtin: &dyn Fn(&str) -> bool,
    ) -> Result<UserRecord, MetaError> {
        self.transact(|txn| {
            let mut user = get_user(txn, name)?;
            for policy in policies {
                if !is_builtin(policy) && txn.get(Table::Identity, &policy_key(policy))?.is_none() {
                    return Err(MetaError::NoSuchPolicy);
                }
            }
            user.policies = policies.to_vec();
            txn.put_record(Table::Identity, user_key(name), &user)?;
            bump_generation(txn)?;
            Ok(user)
        })
    }

    /// Adds an access key to its user; `AccessKeyExists` if the id is taken.
    pub fn create_access_key(&self, key: &AccessKeyRecord) -> Result<(), MetaError> {
        self.transact(|txn| {
            let mut user = get_user(txn, &key.user)?;
            if txn
                .get(Table::Identity, &access_key_key(&key.access_key))?
                .is_some()
            {
                return Err(MetaError::AccessKeyExists);
            }
            if user.access_keys.len() >= MAX_KEYS_PER_USER {
                return Err(MetaError::TooManyKeys(MAX_KEYS_PER_USER));
            }
            user.access_keys.push(key.access_key.clone());
            txn.put_record(Table::Identity, user_key(&user.name), &user)?;
            txn.put_record(Table::Identity, access_key_key(&key.access_key), key)?;
            bump_generation(txn)
        })
    }

    pub fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>, MetaError> {
        self.get_record(Table::Identity, &access_key_key(access_key))
    }

    /// Enables or disables an access key.
    pub fn set_access_key_active(
        &self,
        access_key: &str,
        active: bool,
    ) -> Result<AccessKeyRecord, MetaError> {
        self.transact(|txn| {
            let mut key: AccessKeyRecord = txn
                .get_record(Table::Identity, &access_key_key(access_key))?
                .ok_or(MetaError::NoSuchAccessKey)?;
            key.active = active;
            txn.put_record(Table::Identity, access_key_key(access_key), &key)?;
            bump_generation(txn)?;
            Ok(key)
        })
    }

    /// Deletes an access key.
    pub fn delete_access_key(&self, access_key: &str) -> Result<AccessKeyRecord, MetaError> {
        self.transact(|txn| {
            let key: AccessKeyRecord = txn
                .get_record(Table::Identity, &access_key_key(access_key))?
                .ok_or(MetaError::NoSuchAccessKey)?;
            if let Some(mut user) =
                txn.get_record::<UserRecord>(Table::Identity, &user_key(&key.user))?
            {
                user.access_keys.retain(|k| k != access_key);
                txn.put_record(Table::Identity, user_key(&user.name), &user)?;
            }
            txn.delete(Table::Identity, access_key_key(access_key));
            bump_generation(txn)?;
            Ok(key)
        })
    }

    /// Stores (creates or replaces) a named policy.
    pub fn put_policy(&self, policy: &PolicyRecord) -> Result<(), MetaError> {
        self.transact(|txn| {
            txn.put_record(Table::Identity, policy_key(&policy.name), policy)?;
            bump_generation(txn)
        })
    }

    pub fn get_policy(&self, name: &str) -> Result<Option<PolicyRecord>, MetaError> {
        self.get_record(Table::Identity, &policy_key(name))
    }

    /// Deletes a named policy; `PolicyInUse` while a user has it attached.
    pub fn delete_policy(&self, name: &str) -> Result<(), MetaError> {
        self.transact(|txn| {
            if txn.get(Table::Identity, &policy_key(name))?.is_none() {
                return Err(MetaError::NoSuchPolicy);
            }
            let users = txn.scan(Table::Identity, b"u/", b"u0", MAX_IDENTITY_ROWS)?;
            for (_, value) in &users {
                let user: UserRecord = model::decode(value)?;
                if user.policies.iter().any(|p| p == name) {
                    return Err(MetaError::PolicyInUse(name.to_string(), user.name));
                }
            }
            txn.delete(Table::Identity, policy_key(name));
            bump_generation(txn)
        })
    }
}
