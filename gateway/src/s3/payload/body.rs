//! Request-body verification: turns an HTTP request body into the stream of payload bytes the
//! engine stores, enforcing everything the headers promised about it.
//!
//! What is enforced: the declared length (`Content-Length`, or `x-amz-decoded-content-length`
//! for aws-chunked), the signed SHA-256 (`x-amz-content-sha256: <hex>`), aws-chunked decoding and
//! its signatures (decided from `x-amz-content-sha256` alone, never from `Content-Encoding`, which
//! minio-go omits), and the flexible checksum from an `x-amz-checksum-*` header or trailer.
//! Invariants: bytes are passed on as they arrive and the verdict comes at the end, so any
//! failure is the stream's last item, an `Err` holding an [`S3Error`]; nothing after it. The
//! engine must not commit before it has seen the end of the stream. `PreparedBody::checksum` is
//! set only after the whole body has been read and verified. `Content-MD5` is checked by the
//! caller (the engine computes the MD5 for the ETag anyway): see `checksum::check_content_md5`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::checksum::validate_checksum_value;
use super::chunked::{decode_aws_chunked, ChunkedMode, TrailerSlot};
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher, ChecksumSlot};
use crate::engine::{BodyError, BodyStream};
use crate::s3::auth::{AuthContext, PayloadMode};
use crate::s3::error::{S3Error, S3ErrorCode};

/// A request body ready for the engine.
pub struct PreparedBody {
    /// Decoded payload bytes (aws-chunked framing removed); a failure is the last item.
    pub stream: BodyStream,
    /// Decoded length if known (`Content-Length` or `x-amz-decoded-content-length`).
    pub content_length: Option<u64>,
    /// The checksum algorithm the client asked for, if any.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// Set when the body has been fully read and verified: the algorithm and base64 value.
    pub checksum: ChecksumSlot,
}

/// Where the expected checksum value comes from.
enum ExpectedChecksum {
    /// `x-amz-checksum-<alg>` header (value validated as base64 of the right length).
    Header(String),
    /// Declared in `x-amz-trailer`; the value arrives in the aws-chunked trailer.
    Trailer,
    /// Only `x-amz-sdk-checksum-algorithm`: compute and report, nothing to compare.
    ComputeOnly,
}

/// Wraps the request body. See the module docs; errors here are about the headers alone.
pub fn prepare_body(
    body: axum::body::Body,
    headers: &HeaderMap,
    auth: &AuthContext,
) -> Result<PreparedBody, S3Error> {
    let chunked_mode = ChunkedMode::from_payload(&auth.payload);
    let content_length = parse_length(headers, "content-length")?;
    let decoded_length = parse_length(headers, "x-amz-decoded-content-length")?;
    let declared_length = match (&chunked_mode, content_length) {
        (Some(_), _) => decoded_length,
        (None, Some(length)) => Some(length),
        // No Content-Length: a chunked transfer without a length is refused like S3 does; a
        // request with neither header has an empty body.
        (None, None) if headers.contains_key(http::header::TRANSFER_ENCODING) => {
            return Err(S3Error::new(S3ErrorCode::MissingContentLength));
        }
        (None, None) => Some(0),
    };
    let (checksum_algorithm, expected) = expected_checksum(headers, chunked_mode.is_some())?;
    // Which framing and checksum source a client chose is what breaks servers when SDKs change
    // their defaults (S3-CLIENTS.md §2a); the client-matrix tests assert on this line.
    tracing::debug!(
        payload = auth.payload.wire_name(),
        checksum = checksum_algorithm.map_or("none", |algorithm| algorithm.name()),
        checksum_source = expected.source(),
        "request body"
    );
    let expected_sha256 = match auth.payload {
        PayloadMode::Sha256Hex(hash) => Some(hash),
        _ => None,
    };

    let raw: BodyStream = Box::pin(body.into_data_stream().map(|item| {
        item.map_err(|error| -> BodyError {
            Box::new(
                S3Error::new(S3ErrorCode::IncompleteBody).with_message(format!(
                    "The request body could not be read completely: {error}"
                )),
            )
        })
    }));
    let (payload, trailers) = match chunked_mode {
        Some(mode) => {
            let (stream, trailers) = decode_aws_chunked(raw, mode);
            (stream, Some(trailers))
        }
        None => (raw, None),
    };
    let checksum = Arc::new(OnceLock::new());
    let verifier = Verifier {
        inner: payload,
        received: 0,
        declared_length,
        sha256: expected_sha256.map(|hash| (Sha256::new(), hash)),
        checksum: checksum_algorithm.map(|algorithm| (algorithm, algorithm.hasher(), expected)),
        trailers,
        result: Arc::clone(&checksum),
        finished: false,
    };
    let stream = futures::stream::unfold(verifier, |mut verifier| async move {
        let item = verifier.next_item().await?;
        Some((item, verifier))
    });
    Ok(PreparedBody {
        stream: Box::pin(stream),
        content_length: declared_length,
        checksum_algorithm,
        checksum,
    })
}

/// The `S3Error` a body error carries (itself or anywhere in its source chain).
pub fn s3_error_of(err: &BodyError) -> Option<S3Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    // Source chains are short; the bound guards against a cyclic `source()`.
    for _ in 0..16 {
        let error = current?;
        if let Some(s3_error) = error.downcast_ref::<S3Error>() {
            return Some(s3_error.clone());
        }
        current = error.source();
    }
    None
}

fn parse_length(headers: &HeaderMap, name: &str) -> Result<Option<u64>, S3Error> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message(format!("Invalid {name} header"))
                .with_extra("ArgumentName", name.to_owned())
        })
}

fn expected_checksum(
    headers: &HeaderMap,
    streaming: bool,
) -> Result<(Option<ChecksumAlgorithm>, ExpectedChecksum), S3Error> {
    let mut in_headers = ChecksumAlgorithm::all().iter().filter_map(|algorithm| {
        headers
            .get(algorithm.header_name())
            .map(|value| (*algorithm, value))
    });
    let first = in_headers.next();
    if in_headers.next().is_some() {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    if let Some((algorithm, value)) = first {
        let invalid = || {
            S3Error::new(S3ErrorCode::InvalidRequest).with_message(format!(
                "Value for {} header is invalid.",
                algorithm.header_name()
            ))
        };
        let value = value.to_str().map_err(|_| invalid())?.trim().to_owned();
        validate_checksum_value(algorithm, &value)?;
        return Ok((Some(algorithm), ExpectedChecksum::Header(value)));
    }
    if streaming {
        if let Some(trailer) = headers
            .get("x-amz-trailer")
            .and_then(|value| value.to_str().ok())
        {
            let declared = trailer
                .split(',')
                .find_map(|name| ChecksumAlgorithm::from_header_name(name.trim()));
            if let Some(algorithm) = declared {
                return Ok((Some(algorithm), ExpectedChecksum::Trailer));
            }
        }
    }
    let sdk_algorithm = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|value| value.to_str().ok())
        .and_then(ChecksumAlgorithm::from_name);
    Ok((sdk_algorithm, ExpectedChecksum::ComputeOnly))
}

impl ExpectedChecksum {
    fn source(&self) -> &'static str {
        match self {
            Self::Header(_) => "header",
            Self::Trailer => "trailer",
            Self::ComputeOnly => "none",
        }
    }
}

struct Verifier {
    inner: BodyStream,
    received: u64,
    declared_length: Option<u64>,
    sha256: Option<(Sha256, [u8; 32])>,
    checksum: Option<(ChecksumAlgorithm, ChecksumHasher, ExpectedChecksum)>,
    trailers: Option<TrailerSlot>,
    result: ChecksumSlot,
    finished: bool,
}

impl Verifier {
    async fn next_item(&mut self) -> Option<Result<Bytes, BodyError>> {
        if self.finished {
            return None;
        }
        let item = self.inner.next().await;
        let outcome = match item {
            Some(Ok(data)) => self.take(data),
            Some(Err(error)) => Err(error),
            None => match self.finish() {
                Ok(()) => {
                    self.finished = true;
                    return None;
                }
                Err(error) => Err(Box::new(error) as BodyError),
            },
        };
        if outcome.is_err() {
            self.finished = true;
        }
        Some(outcome)
    }

    fn take(&mut self, data: Bytes) -> Result<Bytes, BodyError> {
        self.received = self.received.saturating_add(data.len() as u64);
        if let Some(declared) = self.declared_length {
            if self.received > declared {
                return Err(Box::new(
                    S3Error::new(S3ErrorCode::IncompleteBody).with_message(format!(
                        "The request body is longer than the declared length of {declared} bytes."
                    )),
                ));
            }
        }
        if let Some((hasher, _)) = &mut self.sha256 {
            hasher.update(&data);
        }
        if let Some((_, hasher, _)) = &mut self.checksum {
            hasher.update(&data);
        }
        Ok(data)
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        if let Some(declared) = self.declared_length {
            if self.received < declared {
                return Err(S3Error::new(S3ErrorCode::IncompleteBody));
            }
        }
        if let Some((hasher, expected)) = self.sha256.take() {
            let computed: [u8; 32] = hasher.finalize().into();
            if !bool::from(computed.ct_eq(&expected)) {
                return Err(S3Error::new(S3ErrorCode::XAmzContentSHA256Mismatch)
                    .with_extra("ClientComputedContentSHA256", hex::encode(expected))
                    .with_extra("S3ComputedContentSHA256", hex::encode(computed)));
            }
        }
        let Some((algorithm, hasher, expected)) = self.checksum.take() else {
            return Ok(());
        };
        let computed = hasher.finish_base64();
        let expected = match expected {
            ExpectedChecksum::Header(value) => Some(value),
            ExpectedChecksum::ComputeOnly => None,
            ExpectedChecksum::Trailer => {
                let trailer_value =
                    self.trailers
                        .as_ref()
                        .and_then(|slot| slot.get())
                        .and_then(|lines| {
                            lines
                                .iter()
                                .find(|(name, _)| name == algorithm.header_name())
                                .map(|(_, value)| value.clone())
                        });
                let value = trailer_value.ok_or_else(|| {
                    S3Error::new(S3ErrorCode::MalformedTrailerError).with_message(format!(
                        "The trailer {} declared in x-amz-trailer was not sent.",
                        algorithm.header_name()
                    ))
                })?;
                validate_checksum_value(algorithm, &value)?;
                Some(value)
            }
        };
        if let Some(expected) = expected {
            if !bool::from(expected.as_bytes().ct_eq(computed.as_bytes())) {
                return Err(S3Error::new(S3ErrorCode::BadDigest).with_message(format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                )));
            }
        }
        let _ = self.result.set((algorithm, computed));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::s3::auth::{authenticate, AuthConfig, Keyring};
    use std::time::{Duration, SystemTime};

    fn context(payload: PayloadMode) -> AuthContext {
        AuthContext {
            access_key: "AK".to_owned(),
            payload,
            scheme: crate::s3::context_keys::SigningScheme::V4Header,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn sha256_of(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// Reads the whole prepared body in pieces of `piece` bytes.
    async fn read(
        body: Vec<u8>,
        piece: usize,
        headers: &HeaderMap,
        auth: &AuthContext,
    ) -> (Result<Vec<u8>, S3Error>, PreparedBody) {
        let pieces: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(piece.max(1))
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let body = axum::body::Body::from_stream(futures::stream::iter(pieces));
        let mut prepared = prepare_body(body, headers, auth).unwrap();
        let mut stream =
            std::mem::replace(&mut prepared.stream, Box::pin(futures::stream::empty()));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(data) => out.extend_from_slice(&data),
                Err(error) => {
                    assert!(
                        stream.next().await.is_none(),
                        "the error must be the last item"
                    );
                    return (Err(s3_error_of(&error).unwrap()), prepared);
                }
            }
        }
        (Ok(out), prepared)
    }

    #[tokio::test]
    async fn signed_sha256_is_verified() {
        let data = b"Welcome to Amazon S3.".to_vec();
        let headers = headers(&[("content-length", "21")]);
        let (result, prepared) = read(
            data.clone(),
            5,
            &headers,
            &context(PayloadMode::Sha256Hex(sha256_of(&data))),
        )
        .await;
        assert_eq!(result.unwrap(), data);
        assert_eq!(prepared.content_length, Some(21));
        let mut tampered = data.clone();
        tampered[3] ^= 1;
        let (result, _) = read(
            tampered,
            5,
            &headers,
            &context(PayloadMode::Sha256Hex(sha256_of(&data))),
        )
        .await;
        assert_eq!(
            result.unwrap_err().code,
            S3ErrorCode::XAmzContentSHA256Mismatch
        );
    }

    #[tokio::test]
    async fn declared_length_is_enforced() {
        let headers = headers(&[("content-length", "10")]);
        let (result, _) = read(
            b"short".to_vec(),
            2,
            &headers,
            &context(PayloadMode::Unsigned),
        )
        .await;
        assert_eq!(result.unwrap_err().code, S3ErrorCode::IncompleteBody);
        let (result, _) = read(vec![b'x'; 11], 4, &headers, &context(PayloadMode::Unsigned)).await;
        assert_eq!(result.unwrap_err().code, S3ErrorCode::IncompleteBody);
        // Transfer-Encoding: chunked without any length is refused up front.
        let chunked = self::headers(&[("transfer-encoding", "chunked")]);
        let error = prepare_body(
            axum::body::Body::empty(),
            &chunked,
            &context(PayloadMode::Unsigned),
        )
        .err()
        .unwrap();
        assert_eq!(error.code, S3ErrorCode::MissingContentLength);
        let error = prepare_body(
            axum::body::Body::empty(),
            &self::headers(&[("content-length", "x")]),
            &context(PayloadMode::Unsigned),
        )
        .err()
        .unwrap();
        assert_eq!(error.code, S3ErrorCode::InvalidArgument);
    }

    #[tokio::test]
    async fn header_checksum_is_verified_and_reported() {
        let good = headers(&[
            ("content-length", "12"),
            ("x-amz-checksum-crc32", "HCkcow=="),
        ]);
        let (result, prepared) = read(
            b"Hello World!".to_vec(),
            5,
            &good,
            &context(PayloadMode::Unsigned),
        )
        .await;
        assert_eq!(result.unwrap(), b"Hello World!");
        assert_eq!(prepared.checksum_algorithm, Some(ChecksumAlgorithm::Crc32));
        assert_eq!(
            prepared.checksum.get(),
            Some(&(ChecksumAlgorithm::Crc32, "HCkcow==".to_owned()))
        );
        let (result, prepared) = read(
            b"Hello World?".to_vec(),
            5,
            &good,
            &context(PayloadMode::Unsigned),
        )
        .await;
        assert_eq!(result.unwrap_err().code, S3ErrorCode::BadDigest);
        assert!(prepared.checksum.get().is_none());
        // Malformed values and two checksums are refused before reading.
        for pairs in [
            vec![("content-length", "12"), ("x-amz-checksum-crc32", "nope")],
            vec![
                ("content-length", "12"),
                ("x-amz-checksum-crc32", "HCkcow=="),
                ("x-amz-checksum-sha1", "AAAA"),
            ],
        ] {
            let error = prepare_body(
                axum::body::Body::empty(),
                &headers(&pairs),
                &context(PayloadMode::Unsigned),
            )
            .err()
            .unwrap();
            assert_eq!(error.code, S3ErrorCode::InvalidRequest);
        }
        // Only x-amz-sdk-checksum-algorithm: computed and reported.
        let compute = headers(&[
            ("content-length", "12"),
            ("x-amz-sdk-checksum-algorithm", "crc32c"),
        ]);
        let (result, prepared) = read(
            b"Hello World!".to_vec(),
            5,
            &compute,
            &context(PayloadMode::Unsigned),
        )
        .await;
        result.unwrap();
        assert_eq!(
            prepared.checksum.get(),
            Some(&(ChecksumAlgorithm::Crc32c, "/mzx3A==".to_owned()))
        );
    }

    #[tokio::test]
    async fn unsigned_trailer_checksum() {
        let headers = headers(&[
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("x-amz-decoded-content-length", "12"),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("transfer-encoding", "chunked"),
        ]);
        let auth = context(PayloadMode::StreamingUnsignedTrailer);
        let body = b"c\r\nHello World!\r\n0\r\nx-amz-checksum-crc32:HCkcow==\r\n\r\n".to_vec();
        let (result, prepared) = read(body.clone(), 7, &headers, &auth).await;
        assert_eq!(result.unwrap(), b"Hello World!");
        assert_eq!(prepared.content_length, Some(12));
        assert_eq!(
            prepared.checksum.get(),
            Some(&(ChecksumAlgorithm::Crc32, "HCkcow==".to_owned()))
        );
        let wrong = String::from_utf8(body.clone())
            .unwrap()
            .replace("HCkcow==", "HCkcoA==");
        assert_eq!(
            read(wrong.into_bytes(), 7, &headers, &auth)
                .await
                .0
                .unwrap_err()
                .code,
            S3ErrorCode::BadDigest
        );
        let missing = b"c\r\nHello World!\r\n0\r\n\r\n".to_vec();
        assert_eq!(
            read(missing, 7, &headers, &auth).await.0.unwrap_err().code,
            S3ErrorCode::MalformedTrailerError
        );
        let short = b"b\r\nHello World\r\n0\r\nx-amz-checksum-crc32:HCkcow==\r\n\r\n".to_vec();
        assert_eq!(
            read(short, 7, &headers, &auth).await.0.unwrap_err().code,
            S3ErrorCode::IncompleteBody
        );
    }

    /// The AWS trailer example end to end: authenticate the seed request, then decode and verify
    /// the chunk signatures, the trailer signature and the CRC32C trailer.
    #[tokio::test]
    async fn aws_signed_trailer_example_end_to_end() {
        let headers = headers(&[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,\
                Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"),
        ]);
        let keyring = Keyring::new(vec![(
            "AKIAIOSFODNN7EXAMPLE".to_owned(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        )]);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        let uri: http::Uri = "/examplebucket/chunkObject.txt".parse().unwrap();
        let auth = authenticate(
            &http::Method::PUT,
            &uri,
            &headers,
            &keyring,
            &AuthConfig::default(),
            now,
        )
        .unwrap();
        assert!(matches!(
            auth.payload,
            PayloadMode::StreamingSignedTrailer { .. }
        ));

        let mut body = crate::s3::payload::chunked::tests::aws_trailer_body();
        let (result, prepared) = read(body.clone(), 8192, &headers, &auth).await;
        assert_eq!(result.unwrap(), vec![b'a'; 66560]);
        assert_eq!(
            prepared.checksum.get(),
            Some(&(ChecksumAlgorithm::Crc32c, "sOO8/Q==".to_owned()))
        );
        // A flipped bit in the payload breaks the chunk signature.
        body[500] ^= 0x20;
        let (result, prepared) = read(body, 8192, &headers, &auth).await;
        assert_eq!(result.unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch);
        assert!(prepared.checksum.get().is_none());
    }

    #[test]
    fn s3_error_of_finds_wrapped_errors() {
        #[derive(Debug)]
        struct Wrapper(S3Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("wrapper")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let direct: BodyError = Box::new(S3Error::new(S3ErrorCode::BadDigest));
        assert_eq!(s3_error_of(&direct).unwrap().code, S3ErrorCode::BadDigest);
        let wrapped: BodyError = Box::new(Wrapper(S3Error::new(S3ErrorCode::IncompleteBody)));
        assert_eq!(
            s3_error_of(&wrapped).unwrap().code,
            S3ErrorCode::IncompleteBody
        );
        let other: BodyError = Box::new(std::io::Error::other("x"));
        assert!(s3_error_of(&other).is_none());
    }
}
