//! Request bodies left unread. An answer given before the request body was read to its end (an
//! error found from the headers alone: a PUT refused with 503, a missing bucket, a failed
//! precondition) must not leave the connection open for another request. The client may still
//! be about to send that body: one that sent `Expect: 100-continue` and got no `100 Continue`
//! skips it, one that did not (or whose wait ran out) sends it anyway, and the server cannot
//! tell which. hyper reads what has already arrived and then gives up on the body, but when its
//! connection task runs late, the *next* request's bytes have arrived by then and are taken for
//! the rest of the old body: that request is then parsed from its middle and answered with a
//! bare `400 Bad Request` (seen intermittently after PUTs refused with 503).
//!
//! [`track`] wraps the request body and records whether it reached its end; the pipeline
//! answers `Connection: close` when it did not, so the client opens a new connection for its
//! next request and no byte of an unread body is ever parsed as a request.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// Whether a tracked request body was read to its end (or was empty).
#[derive(Debug, Clone)]
pub struct BodyRead(Arc<AtomicBool>);

impl BodyRead {
    pub fn to_end(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Wraps `request`'s body so that reading it to its end is recorded in the returned flag.
pub fn track(request: Request<Body>) -> (Request<Body>, BodyRead) {
    let flag = BodyRead(Arc::new(AtomicBool::new(false)));
    let request = request.map(|inner| {
        flag.0.store(inner.is_end_stream(), Ordering::Relaxed);
        Body::new(Tracked {
            inner,
            done: Arc::clone(&flag.0),
        })
    });
    (request, flag)
}

struct Tracked {
    inner: Body,
    done: Arc<AtomicBool>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // The end: no more frames, or (with a declared length) the last byte has arrived.
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            self.done.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_flag_is_set_only_once_the_body_ended() {
        let (request, read) = track(Request::new(Body::empty()));
        assert!(read.to_end(), "an empty body counts as read");
        drop(request);

        let chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))];
        let body = Body::from_stream(futures::stream::iter(chunks));
        let (request, read) = track(Request::new(body));
        assert!(!read.to_end());
        let mut body = request.into_body();
        let first = body.frame().await;
        assert!(first.is_some());
        assert!(!read.to_end(), "one of two chunks read");
        drop(body);
        assert!(!read.to_end(), "dropped unread");

        let body = Body::from_stream(futures::stream::iter(vec![Ok::<_, std::io::Error>(
            Bytes::from_static(b"abcd"),
        )]));
        let (request, read) = track(Request::new(body));
        let collected = request.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"abcd");
        assert!(read.to_end());
    }
}
