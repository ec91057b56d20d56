//! Listing conformance: prefix, delimiter, max-keys, markers, pagination, seek-past-common-
//! prefix efficiency, byte-order of unusual keys, and multipart-upload listing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use metadata::{Catalog, KvStore, ListPage, ListQuery, UploadListQuery};

conformance!(
    prefix_and_delimiter,
    max_keys_and_common_prefix_markers,
    pagination_reaches_every_key_once,
    unusual_keys_sort_by_bytes,
    uploads_listing,
);

fn query(
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max_keys: usize,
) -> ListQuery {
    ListQuery {
        prefix: prefix.to_string(),
        delimiter: delimiter.map(str::to_string),
        start_after: start_after.map(str::to_string),
        max_keys,
    }
}

fn keys_of(page: &ListPage) -> Vec<&str> {
    page.entries.iter().map(|(k, _)| k.as_str()).collect()
}

fn bucket_with(catalog: &Catalog, name: &str, keys: &[&str]) -> [u8; 16] {
    let bid = catalog.create_bucket(name, "o", "r", 0).unwrap().id;
    for key in keys {
        put(catalog, &bid, key);
    }
    bid
}

fn prefix_and_delimiter(catalog: &Catalog) {
    let keys = ["a", "a/", "a/b", "a/c/d", "b", "ba", "c/x", "c/y/z"];
    let bid = bucket_with(catalog, "list", &keys);
    // A neighbouring bucket must never leak into the listing.
    bucket_with(catalog, "list-neighbour", &["a/zzz", "b"]);

    let all = catalog
        .list_objects(&bid, &query("", None, None, 100))
        .unwrap();
    assert_eq!(keys_of(&all), keys.to_vec());
    assert!(all.common_prefixes.is_empty() && !all.is_truncated && all.next_marker.is_none());

    let top = catalog
        .list_objects(&bid, &query("", Some("/"), None, 100))
        .unwrap();
    assert_eq!(keys_of(&top), vec!["a", "b", "ba"]);
    assert_eq!(top.common_prefixes, vec!["a/", "c/"]);

    let under_a = catalog
        .list_objects(&bid, &query("a/", Some("/"), None, 100))
        .unwrap();
    assert_eq!(keys_of(&under_a), vec!["a/", "a/b"]);
    assert_eq!(under_a.common_prefixes, vec!["a/c/"]);

    let prefix_a = catalog
        .list_objects(&bid, &query("a", None, None, 100))
        .unwrap();
    assert_eq!(keys_of(&prefix_a), vec!["a", "a/", "a/b", "a/c/d"]);
    let prefix_a_delim = catalog
        .list_objects(&bid, &query("a", Some("/"), None, 100))
        .unwrap();
    assert_eq!(keys_of(&prefix_a_delim), vec!["a"]);
    assert_eq!(prefix_a_delim.common_prefixes, vec!["a/"]);

    let nothing = catalog
        .list_objects(&bid, &query("zz", Some("/"), None, 100))
        .unwrap();
    assert!(nothing.entries.is_empty() && nothing.common_prefixes.is_empty());

    // Multi-character delimiter, and one that never occurs.
    let multi = catalog
        .list_objects(&bid, &query("", Some("/y/"), None, 100))
        .unwrap();
    assert_eq!(multi.common_prefixes, vec!["c/y/"]);
    assert_eq!(multi.entries.len(), 7);
    let never = catalog
        .list_objects(&bid, &query("", Some("#"), None, 100))
        .unwrap();
    assert_eq!(never.entries.len(), 8);

    // start_after before the prefix starts at the prefix; after it, lists nothing.
    let early = catalog
        .list_objects(&bid, &query("c/", None, Some("a"), 100))
        .unwrap();
    assert_eq!(keys_of(&early), vec!["c/x", "c/y/z"]);
    let late = catalog
        .list_objects(&bid, &query("c/", None, Some("d"), 100))
        .unwrap();
    assert!(late.entries.is_empty());
}

fn max_keys_and_common_prefix_markers(catalog: &Catalog) {
    let bid = bucket_with(catalog, "maxkeys", &["a", "a/", "a/b", "b/1", "b/2", "c"]);
    let zero = catalog
        .list_objects(&bid, &query("", None, None, 0))
        .unwrap();
    assert_eq!(zero, ListPage::default());

    // Entries and common prefixes together count toward max_keys.
    let first = catalog
        .list_objects(&bid, &query("", Some("/"), None, 2))
        .unwrap();
    assert_eq!(keys_of(&first), vec!["a"]);
    assert_eq!(first.common_prefixes, vec!["a/"]);
    assert!(first.is_truncated);
    assert_eq!(first.next_marker.as_deref(), Some("a/"));

    // Continuing from a common prefix skips every key under it.
    let second = catalog
        .list_objects(&bid, &query("", Some("/"), Some("a/"), 2))
        .unwrap();
    assert_eq!(keys_of(&second), vec!["c"]);
    assert_eq!(second.common_prefixes, vec!["b/"]);
    assert!(!second.is_truncated);
    let third = catalog
        .list_objects(&bid, &query("", Some("/"), Some("b/"), 2))
        .unwrap();
    assert_eq!(keys_of(&third), vec!["c"]);
    assert!(!third.is_truncated && third.next_marker.is_none());

    // A marker inside a common prefix also skips the rest of it.
    let inside = catalog
        .list_objects(&bid, &query("", Some("/"), Some("b/1"), 10))
        .unwrap();
    assert_eq!(keys_of(&inside), vec!["c"]);
    assert!(inside.common_prefixes.is_empty());

    // Exactly max_keys items left: not truncated.
    let exact = catalog
        .list_objects(&bid, &query("", None, Some("b/1"), 2))
        .unwrap();
    assert_eq!(keys_of(&exact), vec!["b/2", "c"]);
    assert!(!exact.is_truncated);
    let one = catalog
        .list_objects(&bid, &query("", None, None, 1))
        .unwrap();
    assert_eq!(
        (keys_of(&one), one.is_truncated, one.next_marker.as_deref()),
        (vec!["a"], true, Some("a"))
    );
}

fn pagination_reaches_every_key_once(catalog: &Catalog) {
    let bid = catalog.create_bucket("pages", "o", "r", 0).unwrap().id;
    let mut expected = BTreeSet::new();
    for i in 0..2500u32 {
        // Mixed shapes: short, long, nested, so byte order differs from insertion order.
        let key = format!("{}/{:x}-{}", i % 7, i.wrapping_mul(2_654_435_761), i);
        put(catalog, &bid, &key);
        expected.insert(key);
    }
    for page_size in [1, 7, 1000] {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..3000 {
            let page = catalog
                .list_objects(&bid, &query("", None, marker.as_deref(), page_size))
                .unwrap();
            assert!(page.entries.len() <= page_size);
            seen.extend(page.entries.iter().map(|(k, _)| k.clone()));
            if !page.is_truncated {
                break;
            }
            marker = page.next_marker.clone();
            assert_eq!(marker.as_deref(), seen.last().map(String::as_str));
        }
        assert_eq!(
            seen,
            expected.iter().cloned().collect::<Vec<_>>(),
            "page size {page_size}"
        );
    }
    // Paginating with a delimiter under one prefix.
    let under: Vec<_> = expected
        .iter()
        .filter(|k| k.starts_with("3/"))
        .cloned()
        .collect();
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..1000 {
        let page = catalog
            .list_objects(&bid, &query("3/", Some("/"), marker.as_deref(), 100))
            .unwrap();
        seen.extend(page.entries.iter().map(|(k, _)| k.clone()));
        if !page.is_truncated {
            break;
        }
        marker = page.next_marker;
    }
    assert_eq!(seen, under);
}

fn unusual_keys_sort_by_bytes(catalog: &Catalog) {
    let keys = [
        "with space",
        "del\u{7f}",
        "tab\tkey",
        "é",
        "日本/語",
        "日本/x",
        "\u{1}",
        "~",
        "ab\u{0}c",
        "ab",
    ];
    let bid = bucket_with(catalog, "unicode", &keys);
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let all = catalog
        .list_objects(&bid, &query("", None, None, 100))
        .unwrap();
    assert_eq!(keys_of(&all), sorted);
    let delim = catalog
        .list_objects(&bid, &query("", Some("/"), None, 100))
        .unwrap();
    assert_eq!(delim.common_prefixes, vec!["日本/"]);
    let after = catalog
        .list_objects(&bid, &query("日本/", None, Some("日本/x"), 100))
        .unwrap();
    assert_eq!(
        keys_of(&after),
        vec!["日本/語"],
        "byte order, not code-point-agnostic order"
    );
    let under = catalog
        .list_objects(&bid, &query("日本/", None, None, 100))
        .unwrap();
    assert_eq!(keys_of(&under), vec!["日本/x", "日本/語"]);
    for key in keys {
        assert_eq!(
            catalog.get_object(&bid, key).unwrap().unwrap().parts[0].size,
            key.len() as u64
        );
    }
}

fn uploads_listing(catalog: &Catalog) {
    let bid = catalog.create_bucket("uploads", "o", "r", 0).unwrap().id;
    let other = catalog
        .create_bucket("uploads-other", "o", "r", 0)
        .unwrap()
        .id;
    start_upload(catalog, &other, "a/1");
    let mut expected = Vec::new();
    for key in ["a/1", "a/2", "b", "a/1", "c/x/y", "b\u{0}z", "a/1"] {
        expected.push(start_upload(catalog, &bid, key));
    }
    // Ordered by key bytes, then initiation.
    expected.sort_by(|x, y| (x.key.as_bytes(), x.useq).cmp(&(y.key.as_bytes(), y.useq)));
    let ids = |uploads: &[metadata::UploadRecord]| {
        uploads
            .iter()
            .map(|u| u.upload_id.clone())
            .collect::<Vec<_>>()
    };

    let q = |prefix: &str,
             delimiter: Option<&str>,
             key_marker: Option<&str>,
             id_marker: Option<&str>,
             max| UploadListQuery {
        prefix: prefix.to_string(),
        delimiter: delimiter.map(str::to_string),
        key_marker: key_marker.map(str::to_string),
        upload_id_marker: id_marker.map(str::to_string),
        max_uploads: max,
    };
    let all = catalog
        .list_uploads(&bid, &q("", None, None, None, 100))
        .unwrap();
    assert_eq!(ids(&all.uploads), ids(&expected));
    assert!(!all.is_truncated);

    let top = catalog
        .list_uploads(&bid, &q("", Some("/"), None, None, 100))
        .unwrap();
    assert_eq!(top.common_prefixes, vec!["a/", "c/"]);
    let top_keys: Vec<_> = top.uploads.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(top_keys, vec!["b", "b\u{0}z"]);
    let under_a = catalog
        .list_uploads(&bid, &q("a/", None, None, None, 100))
        .unwrap();
    assert_eq!(under_a.uploads.len(), 4);

    // Page one upload at a time with (key, upload id) markers: every upload exactly once.
    let mut seen = Vec::new();
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    for _ in 0..100 {
        let page = catalog
            .list_uploads(
                &bid,
                &q("", None, key_marker.as_deref(), id_marker.as_deref(), 1),
            )
            .unwrap();
        seen.extend(ids(&page.uploads));
        if !page.is_truncated {
            break;
        }
        key_marker = page.next_key_marker;
        id_marker = page.next_upload_id_marker;
    }
    assert_eq!(seen, ids(&expected));

    // A key marker alone skips every upload of that key.
    let after_a1 = catalog
        .list_uploads(&bid, &q("", None, Some("a/1"), None, 100))
        .unwrap();
    assert_eq!(after_a1.uploads.first().unwrap().key, "a/2");
    // With a delimiter, pages of size 1 step over common prefixes.
    let first = catalog
        .list_uploads(&bid, &q("", Some("/"), None, None, 1))
        .unwrap();
    assert_eq!(
        (first.common_prefixes.clone(), first.is_truncated),
        (vec!["a/".to_string()], true)
    );
    assert_eq!(first.next_key_marker.as_deref(), Some("a/"));
    assert_eq!(first.next_upload_id_marker, None);
    let next = catalog
        .list_uploads(&bid, &q("", Some("/"), Some("a/"), None, 1))
        .unwrap();
    assert_eq!(next.uploads[0].key, "b");
    assert_eq!(
        catalog
            .list_uploads(&bid, &q("", None, None, None, 0))
            .unwrap()
            .uploads
            .len(),
        0
    );
}

/// 10 prefixes × 1,000 keys list as 10 common prefixes in a handful of scans, reading few rows.
fn assert_delimiter_listing_seeks(kv: Arc<CountingKv>) {
    let catalog = Catalog::new(kv.clone()).unwrap();
    let bid = catalog.create_bucket("seek", "o", "r", 0).unwrap().id;
    for p in 0..10 {
        for i in 0..1000 {
            put(&catalog, &bid, &format!("p{p}/{i:04}"));
        }
    }
    kv.reset();
    let page = catalog
        .list_objects(&bid, &query("", Some("/"), None, 1000))
        .unwrap();
    let expected: Vec<String> = (0..10).map(|p| format!("p{p}/")).collect();
    assert_eq!(page.common_prefixes, expected);
    assert!(page.entries.is_empty() && !page.is_truncated);
    let (scans, rows) = kv.counts();
    assert!(scans <= 12, "{scans} scans for 10 common prefixes");
    assert!(rows <= 200, "{rows} rows read for 10 common prefixes");

    kv.reset();
    let page = catalog
        .list_objects(&bid, &query("", Some("/"), Some("p2/"), 3))
        .unwrap();
    assert_eq!(page.common_prefixes, vec!["p3/", "p4/", "p5/"]);
    assert_eq!(page.next_marker.as_deref(), Some("p5/"));
    assert!(kv.counts().0 <= 5);

    // Without a delimiter, a page of 1,000 keys is read in one or two scans.
    kv.reset();
    let page = catalog
        .list_objects(&bid, &query("p7/", None, None, 1000))
        .unwrap();
    assert_eq!(page.entries.len(), 1000);
    assert!(kv.counts().0 <= 2, "{:?}", kv.counts());
}

#[test]
fn delimiter_listing_seeks_past_common_prefixes_in_memory() {
    assert_delimiter_listing_seeks(CountingKv::memory());
}

#[test]
fn delimiter_listing_seeks_past_common_prefixes_rocks() {
    let dir = tempfile::tempdir().unwrap();
    let rocks: Arc<dyn KvStore> =
        Arc::new(metadata::RocksKvStore::open(dir.path(), false).unwrap());
    assert_delimiter_listing_seeks(CountingKv::new(rocks));
}
