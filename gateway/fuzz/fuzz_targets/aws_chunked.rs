//! The aws-chunked decoder (`s3::payload::chunked`), with trailers, in its three modes.
//!
//! Input: one control byte, then the body. Control bits 0-1 pick the mode (unsigned trailer,
//! signed, signed with trailer: the signing material of AWS's examples, secret
//! `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`, 2013-05-24, us-east-1); bits 2-7 the size of the
//! pieces the body arrives in (1..=64 bytes).
//! Properties: no panic; the outcome (data, error code, trailers) does not depend on how the
//! body is split into pieces; an error is the stream's last item; the data is never longer
//! than the body.
#![no_main]

use bytes::Bytes;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use strata_gateway::engine::BodyError;
use strata_gateway::s3::auth::SigningKey;
use strata_gateway::s3::error::{S3Error, S3ErrorCode};
use strata_gateway::s3::payload::chunked::{decode_aws_chunked, ChunkSigner, ChunkedMode};

/// `derive_signing_key(secret, "20130524", "us-east-1")` of AWS's example credentials.
const EXAMPLE_SIGNING_KEY: &str =
    "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378";
/// Seed signatures of AWS's "PUT Object" chunked example, without and with a trailer.
const SEED_SIGNED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SEED_TRAILER: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).unwrap_or(0);
    }
    out
}

fn mode(selector: u8) -> ChunkedMode {
    let signer = |seed: &str| ChunkSigner {
        signing_key: SigningKey(hex32(EXAMPLE_SIGNING_KEY)),
        scope: "20130524/us-east-1/s3/aws4_request".to_owned(),
        timestamp: "20130524T000000Z".to_owned(),
        seed_signature: hex32(seed),
    };
    match selector & 3 {
        1 => ChunkedMode::Signed {
            signer: signer(SEED_SIGNED),
            trailer: false,
        },
        2 => ChunkedMode::Signed {
            signer: signer(SEED_TRAILER),
            trailer: true,
        },
        _ => ChunkedMode::UnsignedTrailer,
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    data: Vec<u8>,
    error: Option<S3ErrorCode>,
    trailers: Option<Vec<(String, String)>>,
}

fn decode(body: &[u8], piece: usize, selector: u8) -> Outcome {
    let pieces: Vec<Result<Bytes, BodyError>> = body
        .chunks(piece)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let (mut stream, trailers) =
        decode_aws_chunked(Box::pin(futures::stream::iter(pieces)), mode(selector));
    futures::executor::block_on(async move {
        let mut data = Vec::new();
        let mut error = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(failure) => {
                    let s3 = failure
                        .downcast_ref::<S3Error>()
                        .expect("the decoder fails with S3 errors only");
                    error = Some(s3.code);
                    assert!(
                        stream.next().await.is_none(),
                        "an error must be the last item"
                    );
                    break;
                }
            }
        }
        Outcome {
            data,
            error,
            trailers: trailers.get().cloned(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let piece = 1 + usize::from(control >> 2);
    let whole = decode(body, body.len().max(1), control);
    assert!(whole.data.len() <= body.len());
    let split = decode(body, piece, control);
    assert_eq!(
        whole, split,
        "the outcome depends on how the body is split ({piece}-byte pieces)"
    );
});
