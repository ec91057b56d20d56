//! Browser POST uploads: the multipart/form-data body (multer, through
//! `s3::handlers::post_object::read_form_fields`), the policy signature
//! (`s3::auth::verify_post_signature`, V4 and V2) and the policy itself.
//!
//! Input: the Content-Type header value, a `\n`, then the body. Credentials are AWS's example
//! key (`AKIAIOSFODNN7EXAMPLE`), so signed seeds from AWS's POST examples verify.
//! Properties: no panic, no hang; the form is read to its end (file included) or refused.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::auth::{verify_post_signature, AuthConfig, Keyring};
use strata_gateway::s3::handlers::post_object::{post_signature, read_form_fields};
use strata_gateway::s3::post_policy::parse_policy;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => return,
    };
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return;
    };
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return;
    };
    // The body arrives in pieces, as from the network; the piece size varies with the input.
    let piece = 1 + body.len() % 97;
    let pieces: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(piece)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let mut form = multer::Multipart::new(futures::stream::iter(pieces), boundary);
    let keyring = Keyring::new(vec![(ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())]);
    futures::executor::block_on(async {
        let Ok((fields, file)) = read_form_fields(&mut form).await else {
            return;
        };
        if let Some(mut file) = file {
            let _ = file.file_name();
            while let Ok(Some(_chunk)) = file.chunk().await {}
        }
        let Some(policy) = field(&fields, "policy") else {
            return;
        };
        let signature = post_signature(policy, &fields);
        let _ = verify_post_signature(&signature, &keyring, &AuthConfig::default());
        if let Ok(parsed) = parse_policy(policy) {
            let _ = parsed.check(std::time::SystemTime::UNIX_EPOCH, &fields, "examplebucket");
        }
    });
});
