//! Per-request limits of the S3 endpoint (the per-connection ones are in `server.rs`): a body
//! that stops arriving is abandoned ([`IdleTimeoutBody`]), requests with a body in progress are
//! capped (memory of upload buffers stays bounded), and calls that stream no object data have a
//! deadline ([`streams_object_data`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::endpoint::Endpoint;
use super::error::{S3Error, S3ErrorCode};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request limits of an [`super::state::S3Service`].
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub body_idle_timeout: Duration,
    pub request_timeout: Duration,
    inflight_bodies: Arc<Semaphore>,
}

impl RequestLimits {
    pub fn new(
        body_idle_timeout: Duration,
        request_timeout: Duration,
        max_inflight_bodies: usize,
    ) -> RequestLimits {
        RequestLimits {
            body_idle_timeout,
            request_timeout,
            inflight_bodies: Arc::new(Semaphore::new(max_inflight_bodies)),
        }
    }

    /// A slot for a request with a body, held until its response is ready; `Err` (503
    /// SlowDown, which S3 clients retry with back-off) when all are taken. Requests without a
    /// body need none.
    pub fn admit(&self, headers: &HeaderMap) -> Result<Option<OwnedSemaphorePermit>, S3Error> {
        if !has_body(headers) {
            return Ok(None);
        }
        Arc::clone(&self.inflight_bodies)
            .try_acquire_owned()
            .map(Some)
            .map_err(|_| {
                S3Error::new(S3ErrorCode::SlowDown)
                    .with_message("Too many uploads in progress. Please reduce your request rate.")
            })
    }
}

/// True when the request announces a body: a non-zero `Content-Length` or chunked framing.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Calls whose run time grows with object data (uploads, copies, Complete with its keep-alive
/// whitespace) have no overall deadline: their client is protected by the body idle timeout.
/// Every other call (GET/HEAD included: the deadline covers the time to its response head,
/// the object itself streams after) must answer within the request timeout.
pub fn streams_object_data(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::PutObject { .. }
            | Endpoint::UploadPart { .. }
            | Endpoint::CopyObject { .. }
            | Endpoint::UploadPartCopy { .. }
            | Endpoint::CompleteMultipartUpload { .. }
            | Endpoint::PostObject { .. }
    )
}

/// The answer of a call past its deadline.
pub fn deadline_exceeded(timeout: Duration) -> S3Error {
    S3Error::new(S3ErrorCode::ServiceUnavailable).with_message(format!(
        "The request did not complete within {} seconds. Please retry.",
        timeout.as_secs_f64()
    ))
}

/// A request body that fails with 400 `RequestTimeout` (S3's answer to an upload that stops
/// sending) when its reader has waited `timeout` for the next frame. Only time spent waiting
/// for the client counts: the clock starts when the reader asks for data.
pub struct IdleTimeoutBody<B> {
    inner: B,
    timeout: Duration,
    /// Running while the reader waits for a frame.
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    timed_out: bool,
}

impl<B> IdleTimeoutBody<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            timeout,
            sleep: None,
            waiting: false,
            timed_out: false,
        }
    }
}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = Instant::now() + this.timeout;
                if !this.waiting {
                    this.waiting = true;
                    match &mut this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let expired = this
                    .sleep
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.timed_out = true;
                tracing::info!(
                    timeout_ms = this.timeout.as_millis() as u64,
                    "request body stalled: abandoned"
                );
                Poll::Ready(Some(Err(Box::new(S3Error::new(
                    S3ErrorCode::RequestTimeout,
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_and_a_slow_reader_does_not() {
        // Two frames, then nothing: the third read times out after the idle timeout.
        let frames = futures::stream::iter(
            ["ab", "cd"].map(|s| Ok::<_, BoxError>(Frame::data(Bytes::from_static(s.as_bytes())))),
        )
        .chain(futures::stream::pending());
        let mut body = IdleTimeoutBody::new(StreamBody::new(frames), Duration::from_secs(5));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"ab"));
        // The reader is slow (60 s of processing): that time is not the client's.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let second = body.frame().await.unwrap().unwrap();
        assert_eq!(second.into_data().unwrap(), Bytes::from_static(b"cd"));
        let started = Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let s3 = error.downcast_ref::<S3Error>().unwrap();
        assert_eq!(s3.code, S3ErrorCode::RequestTimeout);
        assert!(body.frame().await.is_none());
    }

    #[test]
    fn only_requests_with_a_body_take_a_slot() {
        let limits = RequestLimits::new(Duration::from_secs(1), Duration::from_secs(1), 1);
        let mut with_body = HeaderMap::new();
        with_body.insert(http::header::CONTENT_LENGTH, "10".parse().unwrap());
        let mut empty = HeaderMap::new();
        empty.insert(http::header::CONTENT_LENGTH, "0".parse().unwrap());
        let held = limits.admit(&with_body).unwrap();
        assert!(held.is_some());
        assert_eq!(
            limits.admit(&with_body).unwrap_err().code,
            S3ErrorCode::SlowDown
        );
        assert!(limits.admit(&empty).unwrap().is_none());
        assert!(limits.admit(&HeaderMap::new()).unwrap().is_none());
        drop(held);
        assert!(limits.admit(&with_body).unwrap().is_some());
    }
}
