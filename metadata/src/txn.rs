//! Optimistic transactions over a [`KvStore`]: the only way the catalog reads-then-writes.
//!
//! A [`Txn`] reads from one consistent view; each checked read records what it saw (a
//! [`Check`]); writes are buffered (and visible to the transaction's own later reads). [`run`]
//! commits the buffered writes atomically on condition that every recorded read still holds,
//! and runs the whole closure again on a conflict — bounded, with jittered backoff — so a
//! read-modify-write is atomic without any in-process lock, across threads, processes and
//! gateways alike.
//!
//! Rules for closures given to [`run`]:
//! - they may run several times: no side effects other than through the `Txn` (allocating a
//!   sequence number that ends up unused is fine);
//! - every read a decision depends on goes through a checked read (`get`, `get_record`,
//!   `scan`); `peek`/`peek_scan` read the same view without a check, for values whose change
//!   cannot make the transaction wrong (reporting, hints);
//! - a closure that writes nothing commits nothing: its reads were one consistent snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keys;
use crate::kv::{covered_end, Check, Found, KvStore, KvView, Limits, Row, Table, WriteBatch};
use crate::model;
use crate::MetaError;

/// Attempts before a transaction gives up with [`MetaError::Conflict`].
pub const MAX_ATTEMPTS: u32 = 64;
/// Rows fetched per page by [`Txn::scan_all`].
const PAGE_ROWS: usize = 1000;
/// Pages [`Txn::scan_all`] reads at most (bounds every loop).
const MAX_PAGES: usize = 1_000_000;

/// One attempt of a transaction: a view, the checks of what was read, the buffered writes.
pub struct Txn<'a> {
    view: Box<dyn KvView + 'a>,
    limits: Limits,
    checks: Vec<Check>,
    checked_rows: HashSet<(Table, Vec<u8>)>,
    /// Rows read ahead by [`Txn::prefetch`], not yet checked.
    fetched: HashMap<(Table, Vec<u8>), Found>,
    writes: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    batch: WriteBatch,
}

impl<'a> Txn<'a> {
    fn new(view: Box<dyn KvView + 'a>, limits: Limits) -> Txn<'a> {
        Txn {
            view,
            limits,
            checks: Vec::new(),
            checked_rows: HashSet::new(),
            fetched: HashMap::new(),
            writes: BTreeMap::new(),
            batch: WriteBatch::new(),
        }
    }

    /// The limits of the store this transaction commits to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Operations (checks and writes) this transaction would commit so far.
    pub fn size(&self) -> usize {
        self.checks.len() + self.batch.ops.len()
    }

    /// The value of `key`, as written earlier in this transaction or as in the view; the
    /// commit fails if the row changes meanwhile.
    pub fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        if let Some(written) = self.writes.get(&(table, key.to_vec())) {
            return Ok(written.clone());
        }
        let found = match self.fetched.remove(&(table, key.to_vec())) {
            Some(found) => found,
            None => self.view.get(table, key)?,
        };
        if self.checked_rows.insert((table, key.to_vec())) {
            self.checks.push(Check::Row {
                table,
                key: key.to_vec(),
                seen: found.as_ref().map(|(_, stamp)| *stamp),
            });
        }
        Ok(found.map(|(value, _)| value))
    }

    /// Reads `keys` from the view in one go (one round trip on a remote store), so that the
    /// [`Txn::get`]s that follow need none. Adds no check by itself: a prefetched row is
    /// checked when it is read with `get`. Keys this transaction wrote or read already are
    /// skipped.
    pub fn prefetch(&mut self, keys: &[(Table, &[u8])]) -> Result<(), MetaError> {
        let wanted: Vec<(Table, &[u8])> = keys
            .iter()
            .filter(|(table, key)| {
                let row = (*table, key.to_vec());
                !self.writes.contains_key(&row)
                    && !self.checked_rows.contains(&row)
                    && !self.fetched.contains_key(&row)
            })
            .copied()
            .collect();
        let found = self.view.get_many(&wanted)?;
        for ((table, key), found) in wanted.into_iter().zip(found) {
            self.fetched.insert((table, key.to_vec()), found);
        }
        Ok(())
    }

    /// [`Txn::get`] decoded.
    pub fn get_record<T: DeserializeOwned>(
        &mut self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, MetaError> {
        self.get(table, key)?
            .map(|raw| model::decode(&raw))
            .transpose()
    }

    /// The value of `key` in the view (or as written by this transaction), without a check.
    pub fn peek(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        if let Some(written) = self.writes.get(&(table, key.to_vec())) {
            return Ok(written.clone());
        }
        if let Some(found) = self.fetched.get(&(table, key.to_vec())) {
            return Ok(found.as_ref().map(|(value, _)| value.clone()));
        }
        Ok(self.view.get(table, key)?.map(|(value, _)| value))
    }

    /// [`Txn::peek`] decoded.
    pub fn peek_record<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, MetaError> {
        self.peek(table, key)?
            .map(|raw| model::decode(&raw))
            .transpose()
    }

    /// Up to `limit` rows of `[start, end)` (empty `end`: unbounded), merged with this
    /// transaction's own writes; the commit fails if a row of the range covered is created or
    /// changed meanwhile.
    pub fn scan(
        &mut self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        let (rows, stamp) = self.view.scan(table, start, end, limit)?;
        let covered = covered_end(&rows, end, limit);
        self.checks.push(Check::Range {
            table,
            start: start.to_vec(),
            end: covered.clone(),
            seen: stamp,
        });
        Ok(self.merge_writes(table, start, &covered, rows, limit))
    }

    /// [`Txn::scan`] without a check.
    pub fn peek_scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        let (rows, _) = self.view.scan(table, start, end, limit)?;
        let covered = covered_end(&rows, end, limit);
        Ok(self.merge_writes(table, start, &covered, rows, limit))
    }

    /// Every row of `[start, end)`, page by page, checked.
    pub fn scan_all(
        &mut self,
        table: Table,
        start: &[u8],
        end: &[u8],
    ) -> Result<Vec<Row>, MetaError> {
        let mut rows = Vec::new();
        let mut from = start.to_vec();
        for _ in 0..MAX_PAGES {
            let page = self.scan(table, &from, end, PAGE_ROWS)?;
            let full = page.len() == PAGE_ROWS;
            if let Some((last, _)) = page.last() {
                from = keys::next_key(last);
            }
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
        Err(MetaError::Db(format!(
            "{} scan exceeded its bound",
            table.name()
        )))
    }

    fn merge_writes(
        &self,
        table: Table,
        start: &[u8],
        covered: &[u8],
        rows: Vec<Row>,
        limit: usize,
    ) -> Vec<Row> {
        let lower = (table, start.to_vec());
        let mine: Vec<_> = self
            .writes
            .range(lower..)
            .take_while(|((t, key), _)| {
                *t == table && (covered.is_empty() || key.as_slice() < covered)
            })
            .collect();
        if mine.is_empty() {
            return rows;
        }
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = rows.into_iter().collect();
        for ((_, key), value) in mine {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        merged.into_iter().take(limit).collect()
    }

    /// Buffers a put.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.writes
            .insert((table, key.clone()), Some(value.clone()));
        self.batch.put(table, key, value);
    }

    /// Buffers a put of an encoded record.
    pub fn put_record<T: Serialize>(
        &mut self,
        table: Table,
        key: impl Into<Vec<u8>>,
        record: &T,
    ) -> Result<(), MetaError> {
        let value = model::encode(record)?;
        self.put(table, key, value);
        Ok(())
    }

    /// Buffers a delete.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.writes.insert((table, key.clone()), None);
        self.batch.delete(table, key);
    }

    /// Whether this transaction has buffered any write.
    pub fn has_writes(&self) -> bool {
        !self.batch.is_empty()
    }
}

/// Runs `body` as an optimistic transaction over `kv`: commits its writes if nothing it read
/// (through checked reads) has changed, and runs it again otherwise — at most
/// [`MAX_ATTEMPTS`] times, then `Err(Conflict)`. An error from `body` aborts without writing.
pub fn run<T>(
    kv: &dyn KvStore,
    mut body: impl FnMut(&mut Txn<'_>) -> Result<T, MetaError>,
) -> Result<T, MetaError> {
    for attempt in 0..MAX_ATTEMPTS {
        let mut txn = Txn::new(kv.view()?, kv.limits());
        let value = body(&mut txn)?;
        if !txn.has_writes() {
            return Ok(value);
        }
        match kv.commit(txn.checks, txn.batch) {
            Ok(()) => return Ok(value),
            Err(MetaError::Conflict) => backoff(attempt),
            Err(other) => return Err(other),
        }
    }
    Err(MetaError::Conflict)
}

/// Sleeps a random time up to 2^attempt ms (capped at 50 ms) so that conflicting writers
/// spread out instead of colliding again.
fn backoff(attempt: u32) {
    let cap_ms = (1u64 << attempt.min(6)).min(50);
    let ms = rand::random_range(0..=cap_ms);
    std::thread::sleep(Duration::from_millis(ms));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kv::MemKvStore;
    use std::sync::Arc;

    /// Many threads increment one counter with read-modify-write transactions: no update is
    /// lost, so every conflict was detected and retried.
    #[test]
    fn concurrent_increments_are_never_lost() {
        let kv = Arc::new(MemKvStore::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let kv = Arc::clone(&kv);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        run(kv.as_ref(), |txn| {
                            let n = txn
                                .get(Table::System, b"n")?
                                .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                                .unwrap_or(0);
                            txn.put(Table::System, b"n".to_vec(), (n + 1).to_be_bytes().to_vec());
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let n = kv.get(Table::System, b"n").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(n.try_into().unwrap()), 400);
    }

    #[test]
    fn reads_see_the_transactions_own_writes() {
        let kv = MemKvStore::new();
        run(&kv, |txn| {
            txn.put(Table::Objects, b"b".to_vec(), b"1".to_vec());
            assert_eq!(txn.get(Table::Objects, b"b")?, Some(b"1".to_vec()));
            let rows = txn.scan(Table::Objects, b"", b"", 10)?;
            assert_eq!(rows.len(), 1);
            txn.delete(Table::Objects, b"b".to_vec());
            assert!(txn.scan(Table::Objects, b"", b"", 10)?.is_empty());
            Ok(())
        })
        .unwrap();
        assert!(kv.get(Table::Objects, b"b").unwrap().is_none());
    }
}
