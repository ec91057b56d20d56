//! Long-running operations that answer with an XML document (CopyObject, UploadPartCopy):
//! if the work is not done within [`KEEP_ALIVE_AFTER`], the answer is committed as 200 and a
//! space is sent every [`KEEP_ALIVE_EVERY`] until the document follows, as S3 does, so that
//! clients' read timeouts (botocore: 60 s) do not fire during a copy of gigabytes.
//!
//! An error found after that point is sent as an `<Error>` document inside the 200 answer;
//! S3 documents this for these operations and botocore (`_handle_200_error`) and s3cmd check
//! for it. The XML declaration goes first so the whitespace never precedes it. The work runs
//! in its own task, so a client that goes away does not cut a copy off half-way through.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};

use super::{internal, xml_response, S3Result};
use crate::s3::error::{S3Error, S3ErrorCode};

/// How long an operation may run before the 200 is committed.
pub const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(5);
/// Interval between keep-alive spaces.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(5);

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn without_declaration(doc: &str) -> &str {
    doc.strip_prefix(DECLARATION).unwrap_or(doc)
}

/// Runs `work` (which yields an XML document) with keep-alive answers for long runs.
pub async fn xml_with_keep_alive<F>(request_id: String, work: F) -> S3Result
where
    F: Future<Output = Result<String, S3Error>> + Send + 'static,
{
    let mut task = tokio::spawn(work);
    if let Ok(joined) = tokio::time::timeout(KEEP_ALIVE_AFTER, &mut task).await {
        return xml_response(joined.map_err(|e| internal(&e))??);
    }
    let tail = futures::stream::unfold(Some(task), move |state| {
        let request_id = request_id.clone();
        async move {
            let mut task = state?;
            tokio::select! {
                joined = &mut task => {
                    let doc = match joined {
                        Ok(Ok(doc)) => without_declaration(&doc).to_string(),
                        Ok(Err(error)) => {
                            error.log_cause();
                            without_declaration(&error.to_xml(&request_id)).to_string()
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "keep-alive task failed");
                            let error = S3Error::new(S3ErrorCode::InternalError);
                            without_declaration(&error.to_xml(&request_id)).to_string()
                        }
                    };
                    Some((Ok::<Bytes, Infallible>(Bytes::from(doc)), None))
                }
                () = tokio::time::sleep(KEEP_ALIVE_EVERY) => {
                    Some((Ok(Bytes::from_static(b" ")), Some(task)))
                }
            }
        }
    });
    let head = futures::stream::once(async {
        Ok::<Bytes, Infallible>(Bytes::from_static(DECLARATION.as_bytes()))
    });
    use futures::StreamExt;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(Body::from_stream(head.chain(tail)))
        .map_err(|e| internal(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn quick_work_answers_normally_and_slow_work_keeps_the_connection_alive() {
        let quick = xml_with_keep_alive("r".into(), async { Ok(format!("{DECLARATION}<A/>")) })
            .await
            .unwrap();
        let body = quick.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], format!("{DECLARATION}<A/>").as_bytes());

        let failing = xml_with_keep_alive("r".into(), async {
            Err(S3Error::new(S3ErrorCode::NoSuchKey))
        })
        .await;
        assert_eq!(failing.unwrap_err().code, S3ErrorCode::NoSuchKey);

        let slow = xml_with_keep_alive("rid".into(), async {
            tokio::time::sleep(Duration::from_secs(17)).await;
            Err(S3Error::new(S3ErrorCode::ServiceUnavailable))
        })
        .await
        .unwrap();
        assert_eq!(slow.status(), StatusCode::OK);
        let body = slow.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.starts_with(DECLARATION), "{text}");
        let rest = text.strip_prefix(DECLARATION).unwrap();
        assert!(rest.starts_with("  "), "{text}");
        assert!(
            rest.trim_start()
                .starts_with("<Error><Code>ServiceUnavailable</Code>"),
            "{text}"
        );
        assert!(!rest.contains("<?xml"), "{text}");
    }
}
