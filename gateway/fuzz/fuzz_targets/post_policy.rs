//! The POST policy document (`s3::post_policy::parse_policy` and `PostPolicy::check`).
//!
//! Input: the policy's JSON (base64-encoded here, as the form carries it), then optionally a
//! NUL byte and form fields as `name=value` lines to check against it.
//! Properties: no panic; a failure to parse is `InvalidPolicyDocument`; a parsed
//! content-length-range has min <= max; a check fails only with `AccessDenied`.
#![no_main]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::error::S3ErrorCode;
use strata_gateway::s3::post_policy::parse_policy;

fuzz_target!(|data: &[u8]| {
    let (json, form) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    let policy = match parse_policy(&encoded) {
        Ok(policy) => policy,
        Err(error) => {
            assert_eq!(error.code, S3ErrorCode::InvalidPolicyDocument);
            return;
        }
    };
    if let Some((min, max)) = policy.content_length_range() {
        assert!(min <= max);
    }
    let fields: Vec<(String, String)> = String::from_utf8_lossy(form)
        .lines()
        .take(64)
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    for now in [
        SystemTime::UNIX_EPOCH,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
    ] {
        if let Err(error) = policy.check(now, &fields, "examplebucket") {
            assert_eq!(error.code, S3ErrorCode::AccessDenied);
        }
    }
});
