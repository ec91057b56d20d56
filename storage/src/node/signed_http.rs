//! HTTP bodies of wire protocol 2 (`crate::signed_body` over hyper): [`SealedBody`], an answer
//! or request body known up front whose pieces are sealed as they are sent; [`ChannelBody`], a
//! streamed upload whose pieces a writer seals and sends through a channel; and
//! [`VerifiedBody`], which reads a received body and hands out each chunk's payload only after
//! its tag verified.
//!
//! Invariants: sealing and verifying run one chunk (at most `MAX_CHUNK_PAYLOAD` bytes) per poll,
//! so neither side holds the reactor for long; a received payload is never visible before its
//! tag verified; the end of a received body is reported only after the final chunk verified and
//! the transport body ended with nothing after it; every read of the transport is bounded by
//! the caller's idle timeout.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::signed_body::{self, BodyAuthError, ChunkDecoder, ChunkSigner, Decoded};

/// A body whose payload pieces are known up front, sent as a signed chunk chain: each piece is
/// sealed when hyper asks for it, and the final chunk closes the body. Its length is exact.
#[derive(Debug)]
pub struct SealedBody {
    pieces: VecDeque<Bytes>,
    ready: VecDeque<Bytes>,
    signer: Option<ChunkSigner>,
    remaining: u64,
}

impl SealedBody {
    pub fn new(signer: ChunkSigner, pieces: impl IntoIterator<Item = Bytes>) -> Self {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = signed_body::sealed_len(pieces.iter().map(|p| p.len() as u64));
        SealedBody {
            pieces,
            ready: VecDeque::new(),
            signer: Some(signer),
            remaining,
        }
    }
}

impl Body for SealedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.ready.is_empty() {
            if let Some(piece) = this.pieces.pop_front() {
                if let Some(signer) = this.signer.as_mut() {
                    this.ready.extend(signer.seal_piece(&piece));
                }
            } else if let Some(signer) = this.signer.take() {
                this.ready
                    .push_back(Bytes::copy_from_slice(&signer.finish()));
            }
        }
        let next = this.ready.pop_front();
        if let Some(chunk) = &next {
            this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.signer.is_none() && self.ready.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A streamed upload body: sealed pieces from a writer, `remaining` bytes in all (its exact
/// length, sent as `content-length`). If the writer goes away before sending them all, the
/// body fails instead of ending, so the request is aborted and the final chunk never arrives.
pub struct ChannelBody {
    receiver: tokio::sync::mpsc::Receiver<Vec<Bytes>>,
    pending: VecDeque<Bytes>,
    remaining: u64,
}

impl ChannelBody {
    pub fn new(receiver: tokio::sync::mpsc::Receiver<Vec<Bytes>>, wire_len: u64) -> Self {
        ChannelBody {
            receiver,
            pending: VecDeque::new(),
            remaining: wire_len,
        }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        // Each round hands out a piece or takes one message from the writer: bounded by the
        // writer's messages.
        loop {
            if let Some(piece) = self.pending.pop_front() {
                let len = piece.len() as u64;
                if len > self.remaining {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "shard upload longer than its header says",
                    ))));
                }
                self.remaining -= len;
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            match self.receiver.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "shard upload abandoned",
                    ))))
                }
                Poll::Ready(Some(pieces)) => self.pending.extend(pieces),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Why a received body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifiedBodyError {
    #[error("the body stalled")]
    Stalled,
    #[error("the body failed: {0}")]
    Transport(#[source] hyper::Error),
    #[error(transparent)]
    Auth(#[from] BodyAuthError),
}

/// A received body read as a signed chunk chain.
pub struct VerifiedBody<B> {
    body: B,
    raw: BytesMut,
    decoder: ChunkDecoder,
    transport_ended: bool,
    idle_timeout: Duration,
}

impl<B> VerifiedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    pub fn new(body: B, decoder: ChunkDecoder, idle_timeout: Duration) -> Self {
        VerifiedBody {
            body,
            raw: BytesMut::new(),
            decoder,
            transport_ended: false,
            idle_timeout,
        }
    }

    /// The next verified payload; `None` once the final chunk verified and the body ended.
    /// Each transport read consumes body bytes or ends the body, so the loop is bounded by the
    /// body's length.
    pub async fn next_payload(&mut self) -> Result<Option<Bytes>, VerifiedBodyError> {
        loop {
            match self.decoder.decode(&self.raw)? {
                Decoded::Chunk { payload, consumed } => {
                    let chunk = self.raw.split_to(consumed).freeze();
                    return Ok(Some(chunk.slice(payload)));
                }
                Decoded::End { consumed } => {
                    let _ = self.raw.split_to(consumed);
                    // Bytes already buffered after the final chunk fail the next decode.
                    continue;
                }
                Decoded::NeedMore => {}
            }
            match (self.decoder.is_finished(), self.transport_ended) {
                (true, true) => return Ok(None),
                (false, true) => {
                    return Err(BodyAuthError::Truncated {
                        chunks: self.decoder.chunks(),
                    }
                    .into())
                }
                _ => {}
            }
            // Either more bytes are needed, or the final chunk verified and the transport must
            // now end (any byte after it fails the decode above).
            match tokio::time::timeout(self.idle_timeout, self.body.frame()).await {
                Err(_) => return Err(VerifiedBodyError::Stalled),
                Ok(None) => self.transport_ended = true,
                Ok(Some(Err(err))) => return Err(VerifiedBodyError::Transport(err)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.raw.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// Every payload of the body, concatenated, at most `limit` bytes (`Err(None)` past it).
    pub async fn read_all(
        &mut self,
        limit: u64,
        capacity_hint: u64,
    ) -> Result<Bytes, Option<VerifiedBodyError>> {
        let capacity = usize::try_from(capacity_hint.min(limit)).unwrap_or(0);
        let mut out = BytesMut::with_capacity(capacity);
        // Each round takes one verified chunk or ends: bounded by the body's length.
        while let Some(payload) = self.next_payload().await.map_err(Some)? {
            if (out.len() + payload.len()) as u64 > limit {
                return Err(None);
            }
            out.extend_from_slice(&payload);
        }
        Ok(out.freeze())
    }
}
