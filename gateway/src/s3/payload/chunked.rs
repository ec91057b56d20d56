//! Decoder for the `aws-chunked` content encoding: strips the framing
//! (`<hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n` … `0…\r\n` [trailers] `\r\n`), verifies the
//! chained chunk signatures and the trailer signature of the signed modes, and hands the trailer
//! headers to the body layer through a [`TrailerSlot`].
//!
//! Follows "Signature Calculation: Transferring Payload in Multiple Chunks" and its trailer page.
//! Tolerances real clients need: the CRLF after the trailer (or after the final chunk) may be
//! missing; an empty line may sit between the final chunk and the trailer lines; bare LF is
//! accepted as a line end. Invariants: a chunk header is at most [`MAX_CHUNK_HEADER`] bytes and
//! the trailer at most [`MAX_TRAILER_BYTES`]; data is streamed out as it arrives (a chunk's
//! signature is checked when the chunk ends, so a bad signature is always reported before the
//! stream ends); any failure is the stream's last item.

use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::engine::{BodyError, BodyStream};
use crate::s3::auth::{chunk_signature, trailer_signature, PayloadMode, SigningKey};
use crate::s3::error::{S3Error, S3ErrorCode};

/// Longest accepted chunk header line (size, extensions, signature).
pub const MAX_CHUNK_HEADER: usize = 4096;
/// Longest accepted trailer section.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Most trailer headers accepted.
const MAX_TRAILER_LINES: usize = 32;
/// Largest chunk size accepted (the largest S3 part).
const MAX_CHUNK_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Bytes of stray whitespace tolerated after the final CRLF.
const MAX_TRAILING_WHITESPACE: usize = 64;

/// Trailer headers (lower-case name, trimmed value), set once the trailer has been read (and,
/// in the signed-trailer mode, verified).
pub type TrailerSlot = Arc<OnceLock<Vec<(String, String)>>>;

/// The signing material of the signed modes.
#[derive(Debug, Clone)]
pub struct ChunkSigner {
    pub signing_key: SigningKey,
    pub scope: String,
    pub timestamp: String,
    pub seed_signature: [u8; 32],
}

/// Which aws-chunked variant the body uses.
#[derive(Debug, Clone)]
pub enum ChunkedMode {
    Signed { signer: ChunkSigner, trailer: bool },
    UnsignedTrailer,
}

impl ChunkedMode {
    /// The aws-chunked variant of a payload mode, `None` for non-streaming payloads.
    pub fn from_payload(payload: &PayloadMode) -> Option<Self> {
        match payload {
            PayloadMode::StreamingSigned {
                seed_signature,
                signing_key,
                scope,
                timestamp,
            }
            | PayloadMode::StreamingSignedTrailer {
                seed_signature,
                signing_key,
                scope,
                timestamp,
            } => Some(Self::Signed {
                signer: ChunkSigner {
                    signing_key: signing_key.clone(),
                    scope: scope.clone(),
                    timestamp: timestamp.clone(),
                    seed_signature: *seed_signature,
                },
                trailer: matches!(payload, PayloadMode::StreamingSignedTrailer { .. }),
            }),
            PayloadMode::StreamingUnsignedTrailer => Some(Self::UnsignedTrailer),
            PayloadMode::Unsigned | PayloadMode::Sha256Hex(_) => None,
        }
    }

    fn has_trailer(&self) -> bool {
        match self {
            Self::Signed { trailer, .. } => *trailer,
            Self::UnsignedTrailer => true,
        }
    }
}

/// Decodes an aws-chunked body; the trailers appear in the slot before the stream ends.
pub fn decode_aws_chunked(inner: BodyStream, mode: ChunkedMode) -> (BodyStream, TrailerSlot) {
    let trailers: TrailerSlot = Arc::new(OnceLock::new());
    let previous_signature = match &mode {
        ChunkedMode::Signed { signer, .. } => signer.seed_signature,
        ChunkedMode::UnsignedTrailer => [0; 32],
    };
    let decoder = Decoder {
        inner,
        inner_done: false,
        buffer: BytesMut::new(),
        state: State::Header,
        mode,
        previous_signature,
        chunk_hasher: Sha256::new(),
        trailers: Arc::clone(&trailers),
        failed: false,
    };
    let stream = futures::stream::unfold(decoder, |mut decoder| async move {
        let item = decoder.next_item().await?;
        Some((item, decoder))
    });
    (Box::pin(stream), trailers)
}

enum State {
    Header,
    Data {
        remaining: u64,
        signature: Option<[u8; 32]>,
    },
    DataEnd {
        signature: Option<[u8; 32]>,
    },
    FinalLineEnd,
    Trailer(TrailerState),
    End,
    Done,
}

#[derive(Default)]
struct TrailerState {
    lines: Vec<(String, String)>,
    signature: Option<String>,
    bytes: usize,
    skipped_blank: bool,
}

enum Step {
    Data(Bytes),
    NeedMore,
    Continue,
    Done,
}

struct Decoder {
    inner: BodyStream,
    inner_done: bool,
    buffer: BytesMut,
    state: State,
    mode: ChunkedMode,
    previous_signature: [u8; 32],
    chunk_hasher: Sha256,
    trailers: TrailerSlot,
    failed: bool,
}

fn framing_error(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::IncompleteBody)
        .with_message(format!("Malformed aws-chunked body: {message}"))
}

fn signature_error(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::SignatureDoesNotMatch).with_message(message.to_owned())
}

fn trailer_error(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedTrailerError).with_message(message.to_owned())
}

impl Decoder {
    async fn next_item(&mut self) -> Option<Result<Bytes, BodyError>> {
        if self.failed {
            return None;
        }
        // Each turn consumes buffered input, emits data or reads from the finite inner stream.
        loop {
            match self.step() {
                Ok(Step::Data(bytes)) => return Some(Ok(bytes)),
                Ok(Step::Continue) => {}
                Ok(Step::Done) => return None,
                Ok(Step::NeedMore) if self.inner_done => {
                    self.failed = true;
                    return Some(Err(Box::new(framing_error(
                        "the body ended in the middle of a chunk",
                    ))));
                }
                Ok(Step::NeedMore) => match self.inner.next().await {
                    Some(Ok(bytes)) => self.buffer.extend_from_slice(&bytes),
                    Some(Err(error)) => {
                        self.failed = true;
                        return Some(Err(error));
                    }
                    None => self.inner_done = true,
                },
                Err(error) => {
                    self.failed = true;
                    return Some(Err(Box::new(error)));
                }
            }
        }
    }

    fn step(&mut self) -> Result<Step, S3Error> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Header => self.step_header(),
            State::Data {
                remaining,
                signature,
            } => self.step_data(remaining, signature),
            State::DataEnd { signature } => self.step_data_end(signature),
            State::FinalLineEnd => self.step_final_line_end(),
            State::Trailer(trailer) => self.step_trailer(trailer),
            State::End => self.step_end(),
            State::Done => Ok(Step::Done),
        }
    }

    /// Takes one line (without its CRLF/LF) if a whole one is buffered.
    fn take_line(&mut self, limit: usize, too_long: &str) -> Result<Option<Bytes>, S3Error> {
        let window = &self.buffer[..self.buffer.len().min(limit + 2)];
        match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let mut line = self.buffer.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                if line.len() > limit {
                    return Err(framing_error(too_long));
                }
                Ok(Some(line.freeze()))
            }
            None if self.buffer.len() > limit + 1 => Err(framing_error(too_long)),
            None => Ok(None),
        }
    }

    fn step_header(&mut self) -> Result<Step, S3Error> {
        let Some(line) = self.take_line(MAX_CHUNK_HEADER, "chunk header too long")? else {
            self.state = State::Header;
            return Ok(Step::NeedMore);
        };
        let line =
            std::str::from_utf8(&line).map_err(|_| framing_error("chunk header is not text"))?;
        let mut fields = line.split(';');
        let size_text = fields.next().unwrap_or("").trim();
        if size_text.is_empty() || size_text.len() > 16 {
            return Err(framing_error("invalid chunk size"));
        }
        let size =
            u64::from_str_radix(size_text, 16).map_err(|_| framing_error("invalid chunk size"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(framing_error("chunk too large"));
        }
        let signature = match &self.mode {
            ChunkedMode::UnsignedTrailer => None,
            ChunkedMode::Signed { .. } => {
                let value = fields
                    .filter_map(|field| field.trim().strip_prefix("chunk-signature="))
                    .next()
                    .ok_or_else(|| signature_error("The chunk is missing its chunk-signature."))?;
                let mut signature = [0u8; 32];
                hex::decode_to_slice(value.trim(), &mut signature).map_err(|_| {
                    signature_error("The chunk-signature is not 64 hexadecimal characters.")
                })?;
                Some(signature)
            }
        };
        self.chunk_hasher = Sha256::new();
        if size > 0 {
            self.state = State::Data {
                remaining: size,
                signature,
            };
            return Ok(Step::Continue);
        }
        // The final, empty chunk: its signature covers no data.
        self.verify_chunk(signature)?;
        self.state = if self.mode.has_trailer() {
            State::Trailer(TrailerState::default())
        } else {
            State::FinalLineEnd
        };
        Ok(Step::Continue)
    }

    fn step_data(&mut self, remaining: u64, signature: Option<[u8; 32]>) -> Result<Step, S3Error> {
        if self.buffer.is_empty() {
            self.state = State::Data {
                remaining,
                signature,
            };
            return Ok(Step::NeedMore);
        }
        let take = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(self.buffer.len());
        let data = self.buffer.split_to(take).freeze();
        if signature.is_some() {
            self.chunk_hasher.update(&data);
        }
        let remaining = remaining - take as u64;
        self.state = if remaining == 0 {
            State::DataEnd { signature }
        } else {
            State::Data {
                remaining,
                signature,
            }
        };
        Ok(Step::Data(data))
    }

    fn step_data_end(&mut self, signature: Option<[u8; 32]>) -> Result<Step, S3Error> {
        match self.buffer.first() {
            None => {
                self.state = State::DataEnd { signature };
                return Ok(Step::NeedMore);
            }
            Some(b'\n') => self.buffer.advance(1),
            Some(b'\r') => match self.buffer.get(1) {
                None => {
                    self.state = State::DataEnd { signature };
                    return Ok(Step::NeedMore);
                }
                Some(b'\n') => self.buffer.advance(2),
                Some(_) => {
                    return Err(framing_error("chunk data is longer than its declared size"))
                }
            },
            Some(_) => return Err(framing_error("chunk data is longer than its declared size")),
        }
        self.verify_chunk(signature)?;
        self.state = State::Header;
        Ok(Step::Continue)
    }

    /// Checks a finished chunk's signature and chains it.
    fn verify_chunk(&mut self, signature: Option<[u8; 32]>) -> Result<(), S3Error> {
        let (ChunkedMode::Signed { signer, .. }, Some(provided)) = (&self.mode, signature) else {
            return Ok(());
        };
        let data_hash: [u8; 32] = std::mem::take(&mut self.chunk_hasher).finalize().into();
        let expected = chunk_signature(
            &signer.signing_key,
            &signer.timestamp,
            &signer.scope,
            &self.previous_signature,
            &data_hash,
        );
        if !bool::from(expected.ct_eq(&provided)) {
            return Err(signature_error(
                "The request signature we calculated does not match the signature you provided (chunk-signature).",
            ));
        }
        self.previous_signature = expected;
        Ok(())
    }

    /// After the final chunk of a body without trailer: CRLF, or nothing (end of body).
    fn step_final_line_end(&mut self) -> Result<Step, S3Error> {
        if self.buffer.is_empty() && !self.inner_done {
            self.state = State::FinalLineEnd;
            return Ok(Step::NeedMore);
        }
        if self.buffer.starts_with(b"\r\n") {
            self.buffer.advance(2);
        } else if self.buffer.starts_with(b"\n") {
            self.buffer.advance(1);
        } else if self.buffer.as_ref() == b"\r" && !self.inner_done {
            self.state = State::FinalLineEnd;
            return Ok(Step::NeedMore);
        }
        self.state = State::End;
        Ok(Step::Continue)
    }

    fn step_trailer(&mut self, mut trailer: TrailerState) -> Result<Step, S3Error> {
        // An over-long trailer line is a malformed trailer, like too many trailer bytes in all.
        let line = match self
            .take_line(MAX_TRAILER_BYTES, "trailer too long")
            .map_err(|_| trailer_error("The trailer is too large."))?
        {
            Some(line) => line,
            // A trailer whose last CRLF is missing ends with the body.
            None if self.inner_done => {
                let rest = self.buffer.split().freeze();
                if !rest.is_empty() {
                    self.trailer_line(&mut trailer, &rest)?;
                }
                return self.finish_trailer(trailer);
            }
            None => {
                self.state = State::Trailer(trailer);
                return Ok(Step::NeedMore);
            }
        };
        if line.is_empty() {
            if trailer.lines.is_empty() && trailer.signature.is_none() && !trailer.skipped_blank {
                // Some clients end the empty final chunk with CRLF before the trailer lines.
                trailer.skipped_blank = true;
                self.state = State::Trailer(trailer);
                return Ok(Step::Continue);
            }
            return self.finish_trailer(trailer);
        }
        self.trailer_line(&mut trailer, &line)?;
        self.state = State::Trailer(trailer);
        Ok(Step::Continue)
    }

    fn trailer_line(&self, trailer: &mut TrailerState, line: &[u8]) -> Result<(), S3Error> {
        trailer.bytes += line.len();
        if trailer.bytes > MAX_TRAILER_BYTES || trailer.lines.len() >= MAX_TRAILER_LINES {
            return Err(trailer_error("The trailer is too large."));
        }
        let text =
            std::str::from_utf8(line).map_err(|_| trailer_error("The trailer is not text."))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| trailer_error("A trailer line is not of the form name:value."))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == "x-amz-trailer-signature" {
            trailer.signature = Some(value);
        } else {
            trailer.lines.push((name, value));
        }
        Ok(())
    }

    fn finish_trailer(&mut self, trailer: TrailerState) -> Result<Step, S3Error> {
        if let ChunkedMode::Signed { signer, .. } = &self.mode {
            let provided = trailer.signature.as_deref().ok_or_else(|| {
                signature_error("The trailer is missing x-amz-trailer-signature.")
            })?;
            let mut provided_bytes = [0u8; 32];
            hex::decode_to_slice(provided, &mut provided_bytes).map_err(|_| {
                signature_error("The x-amz-trailer-signature is not 64 hexadecimal characters.")
            })?;
            let mut canonical = Vec::with_capacity(trailer.bytes + trailer.lines.len() * 2);
            for (name, value) in &trailer.lines {
                canonical.extend_from_slice(name.as_bytes());
                canonical.push(b':');
                canonical.extend_from_slice(value.as_bytes());
                canonical.push(b'\n');
            }
            let expected = trailer_signature(
                &signer.signing_key,
                &signer.timestamp,
                &signer.scope,
                &self.previous_signature,
                &canonical,
            );
            if !bool::from(expected.ct_eq(&provided_bytes)) {
                return Err(signature_error(
                    "The request signature we calculated does not match the signature you provided (x-amz-trailer-signature).",
                ));
            }
        }
        let _ = self.trailers.set(trailer.lines);
        self.state = State::End;
        Ok(Step::Continue)
    }

    /// Only a few bytes of whitespace may follow the encoded body.
    fn step_end(&mut self) -> Result<Step, S3Error> {
        if self.buffer.len() > MAX_TRAILING_WHITESPACE
            || self.buffer.iter().any(|b| !b.is_ascii_whitespace())
        {
            return Err(framing_error("unexpected data after the final chunk"));
        }
        if self.inner_done {
            self.buffer.clear();
            self.state = State::Done;
            if self.trailers.get().is_none() {
                let _ = self.trailers.set(Vec::new());
            }
            return Ok(Step::Done);
        }
        self.state = State::End;
        Ok(Step::NeedMore)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::s3::auth::derive_signing_key;

    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn signer(seed: &str) -> ChunkSigner {
        let mut seed_signature = [0u8; 32];
        hex::decode_to_slice(seed, &mut seed_signature).unwrap();
        ChunkSigner {
            signing_key: SigningKey(derive_signing_key(SECRET_KEY, "20130524", "us-east-1")),
            scope: "20130524/us-east-1/s3/aws4_request".to_owned(),
            timestamp: "20130524T000000Z".to_owned(),
            seed_signature,
        }
    }

    /// The body of the AWS "PUT Object" aws-chunked example: 64 KiB + 1 KiB of 'a'.
    fn aws_signed_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        body
    }

    fn signed_mode() -> ChunkedMode {
        ChunkedMode::Signed {
            signer: signer("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
            trailer: false,
        }
    }

    /// The body of the AWS trailer example (signed chunks, CRC32C trailer).
    pub(crate) fn aws_trailer_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n");
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n");
        body.extend_from_slice(b"x-amz-checksum-crc32c:sOO8/Q==\r\n");
        body.extend_from_slice(b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n");
        body
    }

    fn trailer_mode() -> ChunkedMode {
        ChunkedMode::Signed {
            signer: signer("106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"),
            trailer: true,
        }
    }

    /// Feeds `body` in pieces of `piece` bytes; returns the decoded bytes or the final error.
    async fn decode(
        body: &[u8],
        piece: usize,
        mode: ChunkedMode,
    ) -> (Result<Vec<u8>, S3Error>, TrailerSlot) {
        let pieces: Vec<Result<Bytes, BodyError>> = body
            .chunks(piece)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let (mut stream, trailers) =
            decode_aws_chunked(Box::pin(futures::stream::iter(pieces)), mode);
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(data) => out.extend_from_slice(&data),
                Err(error) => {
                    // The error must be the last item.
                    assert!(stream.next().await.is_none());
                    let s3 = error.downcast_ref::<S3Error>().cloned().unwrap();
                    return (Err(s3), trailers);
                }
            }
        }
        (Ok(out), trailers)
    }

    #[tokio::test]
    async fn aws_signed_example_decodes_in_any_piece_size() {
        for piece in [1, 7, 100, 4096, 70_000] {
            let (result, trailers) = decode(&aws_signed_body(), piece, signed_mode()).await;
            assert_eq!(result.unwrap(), vec![b'a'; 66560], "piece size {piece}");
            assert_eq!(trailers.get(), Some(&Vec::new()));
        }
    }

    #[tokio::test]
    async fn aws_signed_example_tampering() {
        // A flipped bit in the data of each chunk.
        for position in [200, 65_700] {
            let mut body = aws_signed_body();
            body[position] ^= 1;
            let (result, _) = decode(&body, 4096, signed_mode()).await;
            assert_eq!(
                result.unwrap_err().code,
                S3ErrorCode::SignatureDoesNotMatch,
                "{position}"
            );
        }
        // A flipped signature of the second and of the final chunk.
        for signature in ["0055627c", "b6c6ea8a"] {
            let body = String::from_utf8(aws_signed_body())
                .unwrap()
                .replace(signature, "1055627c");
            let (result, _) = decode(body.as_bytes(), 4096, signed_mode()).await;
            assert_eq!(result.unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch);
        }
        // Another seed (e.g. signed for another request).
        let other = ChunkedMode::Signed {
            signer: signer(&"00".repeat(32)),
            trailer: false,
        };
        assert_eq!(
            decode(&aws_signed_body(), 4096, other)
                .await
                .0
                .unwrap_err()
                .code,
            S3ErrorCode::SignatureDoesNotMatch
        );
        // A chunk without its signature.
        let body = String::from_utf8(aws_signed_body()).unwrap().replace(
            ";chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "",
        );
        assert_eq!(
            decode(body.as_bytes(), 4096, signed_mode())
                .await
                .0
                .unwrap_err()
                .code,
            S3ErrorCode::SignatureDoesNotMatch
        );
    }

    #[tokio::test]
    async fn final_crlf_may_be_missing() {
        let mut body = aws_signed_body();
        body.truncate(body.len() - 2);
        assert_eq!(
            decode(&body, 999, signed_mode()).await.0.unwrap().len(),
            66560
        );
        let mut body = aws_trailer_body();
        body.truncate(body.len() - 2);
        assert_eq!(
            decode(&body, 999, trailer_mode()).await.0.unwrap().len(),
            66560
        );
        body.truncate(body.len() - 2);
        let (result, trailers) = decode(&body, 999, trailer_mode()).await;
        assert_eq!(result.unwrap().len(), 66560);
        assert_eq!(
            trailers.get().unwrap(),
            &vec![("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]
        );
    }

    #[tokio::test]
    async fn aws_trailer_example() {
        for piece in [1, 13, 65_600] {
            let (result, trailers) = decode(&aws_trailer_body(), piece, trailer_mode()).await;
            assert_eq!(result.unwrap(), vec![b'a'; 66560]);
            assert_eq!(
                trailers.get().unwrap(),
                &vec![("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]
            );
        }
        // An empty line between the final chunk and the trailer is tolerated.
        let body = String::from_utf8(aws_trailer_body())
            .unwrap()
            .replace("f992\r\nx-amz", "f992\r\n\r\nx-amz");
        assert_eq!(
            decode(body.as_bytes(), 4096, trailer_mode())
                .await
                .0
                .unwrap()
                .len(),
            66560
        );
        // Tampered trailer value, tampered trailer signature, missing trailer signature.
        for (from, to) in [
            ("sOO8/Q==", "sOO8/R=="),
            (
                "x-amz-trailer-signature:d81f",
                "x-amz-trailer-signature:e81f",
            ),
            ("x-amz-trailer-signature:", "x-amz-other-header:"),
        ] {
            let body = String::from_utf8(aws_trailer_body())
                .unwrap()
                .replace(from, to);
            let (result, trailers) = decode(body.as_bytes(), 4096, trailer_mode()).await;
            assert_eq!(
                result.unwrap_err().code,
                S3ErrorCode::SignatureDoesNotMatch,
                "{to}"
            );
            assert!(trailers.get().is_none());
        }
    }

    #[tokio::test]
    async fn unsigned_trailer_variants() {
        let body = b"8\r\nabcdefgh\r\n3\r\nijk\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        for end in [body.len(), body.len() - 2, body.len() - 4] {
            let (result, trailers) = decode(&body[..end], 5, ChunkedMode::UnsignedTrailer).await;
            assert_eq!(result.unwrap(), b"abcdefghijk");
            assert_eq!(
                trailers.get().unwrap(),
                &vec![("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned())]
            );
        }
        // Chunk extensions are ignored in the unsigned mode; a trailer may be absent.
        let (result, trailers) = decode(
            b"2;ext=1\r\nab\r\n0\r\n\r\n",
            3,
            ChunkedMode::UnsignedTrailer,
        )
        .await;
        assert_eq!(result.unwrap(), b"ab");
        assert_eq!(trailers.get(), Some(&Vec::new()));
    }

    #[tokio::test]
    async fn malformed_framing_is_rejected() {
        let oversize = format!("{}\r\n", "1".repeat(MAX_CHUNK_HEADER + 10));
        let no_newline = "a".repeat(MAX_CHUNK_HEADER * 2);
        let cases: [&[u8]; 6] = [
            oversize.as_bytes(),
            no_newline.as_bytes(),
            b"zz\r\nab\r\n0\r\n\r\n",
            b"8\r\nabc",
            b"2\r\nabc\r\n0\r\n\r\n",
            b"2\r\nab\r\n",
        ];
        for body in cases {
            let (result, _) = decode(body, 1000, ChunkedMode::UnsignedTrailer).await;
            assert_eq!(
                result.unwrap_err().code,
                S3ErrorCode::IncompleteBody,
                "{:?}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
        }
        let long_trailer = format!(
            "2\r\nab\r\n0\r\nx-amz-meta-pad:{}\r\n\r\n",
            "p".repeat(MAX_TRAILER_BYTES + 1)
        );
        for body in [
            &b"2\r\nab\r\n0\r\nno colon here\r\n\r\n"[..],
            b"2\r\nab\r\n0\r\n\r\ngarbage",
            long_trailer.as_bytes(),
        ] {
            let (result, _) = decode(body, 1000, ChunkedMode::UnsignedTrailer).await;
            assert_eq!(result.unwrap_err().code, S3ErrorCode::MalformedTrailerError);
        }
        // Data after the final chunk of a body without trailer.
        let mut body = aws_signed_body();
        body.extend_from_slice(b"garbage");
        let (result, _) = decode(&body, 1000, signed_mode()).await;
        assert_eq!(result.unwrap_err().code, S3ErrorCode::IncompleteBody);
    }
}
