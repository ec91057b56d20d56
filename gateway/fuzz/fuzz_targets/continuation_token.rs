//! ListObjectsV2 continuation tokens (`s3::handlers::list::{encode_token, decode_token}`).
//!
//! Input: a token as a client would send it back (and, read as a key, a key to encode).
//! Properties: no panic; a token that does not decode is `InvalidArgument`; a decoded key
//! re-encodes to a token that decodes to the same key; every key survives encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::error::S3ErrorCode;
use strata_gateway::s3::handlers::list::{decode_token, encode_token};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match decode_token(&text) {
        Ok(key) => assert_eq!(decode_token(&encode_token(&key)).ok(), Some(key)),
        Err(error) => assert_eq!(error.code, S3ErrorCode::InvalidArgument),
    }
    let token = encode_token(&text);
    assert_eq!(decode_token(&token).ok().as_deref(), Some(text.as_ref()));
});
