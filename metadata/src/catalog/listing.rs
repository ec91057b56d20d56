//! Listing of objects and multipart uploads with S3 prefix / delimiter / marker semantics.
//!
//! Both listings are one forward range scan over the rows of `bid ‖ prefix`. Keys are ordered by
//! their UTF-8 bytes. With a delimiter, a key that contains it after the prefix rolls up into
//! the common prefix `prefix ..= delimiter`, emitted once; the walk then **seeks past** that
//! common prefix (`successor`) rather than reading its keys, so 10 prefixes of a million keys
//! list in about 10 scans (DESIGN §3). Scans start small when a delimiter is given and double
//! while no rollup happens, so few rows are read and few scans are made either way.
//!
//! Invariants: every returned item (key or common prefix) sorts after the marker; a marker
//! inside a common prefix (or equal to one) skips that whole common prefix; entries and common
//! prefixes together never exceed the maximum; `is_truncated` is true only if a further item
//! exists, and then the next marker is the last item returned.

use super::{Catalog, MAX_PAGES, PAGE_ROWS};
use crate::keys;
use crate::kv::Table;
use crate::model::{self, BucketId, ObjectHead, UploadRecord};
use crate::MetaError;

/// First scan size when a delimiter may cause seeks.
const DELIMITED_FIRST_PAGE: usize = 16;

/// Parameters of an object listing (V1 and V2 alike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive: V1 marker, V2 start-after or decoded continuation token.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<(String, ObjectHead)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, when truncated.
    pub next_marker: Option<String>,
}

/// Parameters of a ListMultipartUploads request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only meaningful with `key_marker`: list that key's uploads initiated after this one.
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadListPage {
    pub uploads: Vec<UploadRecord>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// One listed item.
enum Item<T> {
    Entry(String, T),
    Prefix(String),
}

/// What a walk needs to know about one table's key layout.
struct Walk<'a> {
    table: Table,
    start: Vec<u8>,
    end: Vec<u8>,
    prefix: &'a str,
    delimiter: Option<&'a str>,
    max: usize,
    /// Row key just past every row whose key starts with the given common prefix.
    seek_past: &'a dyn Fn(&str) -> Vec<u8>,
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

fn invalid_key(e: std::string::FromUtf8Error) -> MetaError {
    MetaError::Corrupt(format!("object key is not UTF-8: {e}"))
}

impl Catalog {
    /// Every key of `bucket` that starts with `prefix`, in order (read page by page; at most
    /// `MAX_PAGES` pages). For admin work over whole buckets, not for requests.
    pub fn keys_under(&self, bucket: &BucketId, prefix: &str) -> Result<Vec<String>, MetaError> {
        let mut keys = Vec::new();
        let mut query = ListQuery {
            prefix: prefix.to_string(),
            delimiter: None,
            start_after: None,
            max_keys: PAGE_ROWS,
        };
        for _ in 0..MAX_PAGES {
            let page = self.list_objects(bucket, &query)?;
            keys.extend(page.entries.into_iter().map(|(key, _)| key));
            match (page.is_truncated, keys.last()) {
                (true, Some(last)) => query.start_after = Some(last.clone()),
                _ => break,
            }
        }
        Ok(keys)
    }

    /// One page of the live objects of `bucket`.
    pub fn list_objects(&self, bucket: &BucketId, q: &ListQuery) -> Result<ListPage, MetaError> {
        let base = keys::object_key(bucket, q.prefix.as_bytes());
        let delimiter = q.delimiter.as_deref();
        let seek_past = |cp: &str| keys::successor(&keys::object_key(bucket, cp.as_bytes()));
        let mut start = base.clone();
        if let Some(marker) = &q.start_after {
            start = start.max(keys::next_key(&keys::object_key(bucket, marker.as_bytes())));
            if let Some(cp) = common_prefix(marker, &q.prefix, delimiter) {
                start = start.max(seek_past(cp));
            }
        }
        let walk = Walk {
            table: Table::Objects,
            start,
            end: keys::successor(&base),
            prefix: &q.prefix,
            delimiter,
            max: q.max_keys,
            seek_past: &seek_past,
        };
        let (items, is_truncated) = self.walk(walk, |row_key, value| {
            let key = keys::object_key_suffix(row_key)
                .ok_or_else(|| MetaError::Corrupt("short object row key".to_string()))?;
            let key = String::from_utf8(key.to_vec()).map_err(invalid_key)?;
            Ok((key, model::decode::<ObjectHead>(value)?))
        })?;
        let mut page = ListPage {
            is_truncated,
            ..ListPage::default()
        };
        for item in items {
            match item {
                Item::Entry(key, head) => {
                    page.next_marker = Some(key.clone());
                    page.entries.push((key, head));
                }
                Item::Prefix(cp) => {
                    page.next_marker = Some(cp.clone());
                    page.common_prefixes.push(cp);
                }
            }
        }
        if !is_truncated {
            page.next_marker = None;
        }
        Ok(page)
    }

    /// One page of the multipart uploads in progress in `bucket`, ordered by key, then by
    /// initiation (upload sequence).
    pub fn list_uploads(
        &self,
        bucket: &BucketId,
        q: &UploadListQuery,
    ) -> Result<UploadListPage, MetaError> {
        let base = keys::upload_prefix_range_start(bucket, q.prefix.as_bytes());
        let delimiter = q.delimiter.as_deref();
        let seek_past =
            |cp: &str| keys::successor(&keys::upload_prefix_range_start(bucket, cp.as_bytes()));
        let mut start = base.clone();
        if let Some(marker) = &q.key_marker {
            let after = match q
                .upload_id_marker
                .as_deref()
                .and_then(super::parse_opaque_id)
            {
                Some(useq) => keys::next_key(&keys::upload_key(bucket, marker.as_bytes(), useq)),
                None => keys::successor(&keys::upload_key_prefix(bucket, marker.as_bytes())),
            };
            start = start.max(after);
            if let Some(cp) = common_prefix(marker, &q.prefix, delimiter) {
                start = start.max(seek_past(cp));
            }
        }
        let walk = Walk {
            table: Table::Uploads,
            start,
            end: keys::successor(&base),
            prefix: &q.prefix,
            delimiter,
            max: q.max_uploads,
            seek_past: &seek_past,
        };
        let (items, is_truncated) = self.walk(walk, |_, value| {
            let upload: UploadRecord = model::decode(value)?;
            Ok((upload.key.clone(), upload))
        })?;
        let mut page = UploadListPage {
            is_truncated,
            ..UploadListPage::default()
        };
        for item in items {
            match item {
                Item::Entry(_, upload) => {
                    page.next_key_marker = Some(upload.key.clone());
                    page.next_upload_id_marker = Some(upload.upload_id.clone());
                    page.uploads.push(upload);
                }
                Item::Prefix(cp) => {
                    page.next_key_marker = Some(cp.clone());
                    page.next_upload_id_marker = None;
                    page.common_prefixes.push(cp);
                }
            }
        }
        if !is_truncated {
            page.next_key_marker = None;
            page.next_upload_id_marker = None;
        }
        Ok(page)
    }

    /// Walks rows from `walk.start`, rolling keys up into common prefixes and seeking past
    /// them. Returns at most `walk.max` items and whether a further item exists.
    fn walk<T>(
        &self,
        walk: Walk<'_>,
        decode: impl Fn(&[u8], &[u8]) -> Result<(String, T), MetaError>,
    ) -> Result<(Vec<Item<T>>, bool), MetaError> {
        let mut items = Vec::new();
        if walk.max == 0 {
            return Ok((items, false));
        }
        let delimited = walk.delimiter.is_some_and(|d| !d.is_empty());
        let mut from = walk.start;
        let mut page_size = if delimited {
            DELIMITED_FIRST_PAGE
        } else {
            walk.max.saturating_add(1).min(PAGE_ROWS)
        };
        // The common prefix whose remaining keys are being skipped.
        let mut skipping: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.kv().scan(walk.table, &from, &walk.end, page_size)?;
            let full = page.len() == page_size;
            let last_row = page.last().map(|(key, _)| keys::next_key(key));
            for (row_key, value) in &page {
                let (key, entry) = decode(row_key, value)?;
                if let Some(cp) = &skipping {
                    if key.starts_with(cp.as_str()) {
                        continue;
                    }
                    skipping = None;
                }
                if !key.starts_with(walk.prefix) {
                    continue;
                }
                let item = match common_prefix(&key, walk.prefix, walk.delimiter) {
                    Some(cp) => {
                        skipping = Some(cp.to_string());
                        Item::Prefix(cp.to_string())
                    }
                    None => Item::Entry(key, entry),
                };
                if items.len() == walk.max {
                    return Ok((items, true));
                }
                items.push(item);
            }
            if !full {
                return Ok((items, false));
            }
            match (&skipping, last_row) {
                (Some(cp), _) => {
                    from = (walk.seek_past)(cp);
                    page_size = DELIMITED_FIRST_PAGE;
                }
                (None, Some(next)) => {
                    from = next;
                    page_size = page_size.saturating_mul(2).min(PAGE_ROWS);
                }
                (None, None) => return Ok((items, false)),
            }
            if !walk.end.is_empty() && from >= walk.end {
                return Ok((items, false));
            }
            if from.is_empty() {
                // The common prefix was all 0xFF bytes: nothing can follow it.
                return Ok((items, false));
            }
        }
        Err(MetaError::Db("listing exceeded its scan bound".to_string()))
    }
}
