//! The S3 request pipeline: request id → authentication → routing → handler → response
//! headers. Every response, error or not, carries `x-amz-request-id` and `x-amz-id-2`; errors
//! become S3 XML (no body on HEAD).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use http::{HeaderValue, Method, Request, Response};
use tracing::{info, Instrument};

use super::authorize::request_traits;
use super::endpoint::{parse_endpoint, virtual_host_bucket, Endpoint, Query};
use super::error::{S3Error, S3ErrorCode};
use super::handlers::{
    access_settings, acl, attributes, bucket, copy, list, multipart, object, policy, post_object,
    tagging, S3Request, S3Result,
};
use super::limits::{deadline_exceeded, streams_object_data, IdleTimeoutBody};
use super::state::Authenticated;
pub use super::state::S3Service;
use super::support::check_request_headers;
use super::unread;
use crate::metrics::CountingBody;

/// A fresh request id: 16 upper-case hex characters, like S3's.
pub fn new_request_id() -> String {
    hex::encode_upper(rand::random::<[u8; 8]>())
}

/// The axum handler for every S3 request.
pub async fn handle_s3(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    service.engine.note_foreground();
    let request_id = new_request_id();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("s3", request_id = %request_id, method = %method, path = %path);
    let close_after = expects_continue_without_body(request.headers());
    async move {
        let started = Instant::now();
        let is_head = method == Method::HEAD;
        let metrics = Arc::clone(&service.metrics);
        let (request, body_read) = unread::track(request);
        let idle = service.limits.body_idle_timeout;
        let request = request.map(|body| {
            Body::new(IdleTimeoutBody::new(
                CountingBody::new(body, metrics.received_bytes()),
                idle,
            ))
        });
        // A request with a body takes one of the bounded upload slots until it is answered.
        let (operation, outcome) = match service.limits.admit(request.headers()) {
            Ok(slot) => {
                let answer = dispatch(service, request, &request_id).await;
                drop(slot);
                answer
            }
            Err(error) => ("SlowDown", Err(error)),
        };
        // Answered before the body was read to its end: the connection must not carry another
        // request (see `unread`).
        let close_after = close_after || !body_read.to_end();
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                error.log_cause();
                error.to_response(&request_id, is_head)
            }
        };
        metrics.observe_request(operation, response.status().as_u16(), started.elapsed());
        let mut response =
            response.map(|body| Body::new(CountingBody::new(body, metrics.sent_bytes())));
        let headers = response.headers_mut();
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", id.clone());
            headers.insert("x-amz-id-2", id);
        }
        headers.insert("server", HeaderValue::from_static("Strata"));
        if close_after {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        info!(
            operation = %operation,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }
    .instrument(span)
    .await
}

/// True for a request that announces `Expect: 100-continue` but has no body (`Content-Length:
/// 0`). hyper answers such a request with its final status and no `100 Continue` (RFC 9110
/// §10.1.1 allows that), and the botocore vendored in aws-cli v1 (1.43, in awscli 1.46) then
/// keeps that early status line for the *next* request on the same connection: its response
/// is misparsed, the client waits out its 60 s read timeout and retries. `aws s3 sync` of a
/// tree with an empty file hits this. Closing the connection after such a response makes the
/// client reset its state (a reconnect per empty upload, which is cheap).
fn expects_continue_without_body(headers: &http::HeaderMap) -> bool {
    let expects_continue = headers
        .get(http::header::EXPECT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("100-continue"));
    let empty = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim() == "0");
    expects_continue && empty && !headers.contains_key(http::header::TRANSFER_ENCODING)
}

/// The path in path style: a virtual-hosted request's bucket (from `Host`) goes in front.
/// Signatures are still checked against the path as sent.
fn path_style_path(service: &S3Service, parts: &http::request::Parts) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    match virtual_host_bucket(host, &service.domains) {
        Some(bucket) => format!("/{bucket}{}", parts.uri.path()),
        None => parts.uri.path().to_string(),
    }
}

/// Authenticates, routes and handles; also names the operation for logs and metrics
/// (`Unauthenticated` and `BadRequest` before an endpoint is known). An error without a
/// `<Resource>` gets the endpoint's here, the one place it is filled in.
async fn dispatch(
    service: Arc<S3Service>,
    request: Request<Body>,
    request_id: &str,
) -> (&'static str, S3Result) {
    let (parts, body) = request.into_parts();
    let path = path_style_path(&service, &parts);
    let query = Query::parse(parts.uri.query());
    if post_object::is_form_upload(&parts.method, &parts.headers) {
        // Browser uploads carry their signature inside the form (the policy), not in headers.
        match parse_endpoint(&parts.method, &path, &query, false) {
            Ok(endpoint @ Endpoint::PostObject { .. }) => {
                if let Err(error) = check_request_headers(&parts.headers) {
                    return (
                        endpoint.name(),
                        fill_resource(Err(error), endpoint.resource()),
                    );
                }
                let bucket = endpoint.bucket().unwrap_or_default();
                let outcome = post_object::handle_post_object(&service, parts, body, bucket).await;
                return (endpoint.name(), fill_resource(outcome, endpoint.resource()));
            }
            Ok(_) => {}
            Err(error) => return ("BadRequest", Err(error)),
        }
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if path == "/" && super::sts::is_sts_request(&parts.method, content_type, parts.uri.query()) {
        let answer = super::handlers::sts::handle_sts(&service, parts, body, request_id).await;
        return ("STS", Ok(answer));
    }
    let Authenticated {
        auth,
        caller,
        directory,
    } = match service.authenticate(&parts).await {
        Ok(authenticated) => authenticated,
        Err(error) => return ("Unauthenticated", Err(error)),
    };
    let copy = parts.headers.contains_key("x-amz-copy-source");
    let endpoint = match parse_endpoint(&parts.method, &path, &query, copy) {
        Ok(endpoint) => endpoint,
        Err(error) => return ("BadRequest", Err(error)),
    };
    let operation = endpoint.name();
    let resource = endpoint.resource();
    // Headers of features Strata lacks are refused before any handler runs (support.rs).
    if let Err(error) = check_request_headers(&parts.headers) {
        return (operation, fill_resource(Err(error), resource));
    }
    // The one authorization decision every operation passes (authorize.rs).
    let mut access = service.access(&parts, &query, auth.scheme, caller, directory);
    if let (Some(bucket), Some(key)) = (endpoint.bucket(), endpoint.key()) {
        let (tags, acl) = (
            access.needs_existing_tags(bucket),
            access.needs_object_acl(bucket),
        );
        if tags || acl {
            // Only policies that ask about tags, and buckets with ACLs enabled, cost this
            // read; a missing object has no tags and no ACL.
            if let Ok(object) = service.engine.head_object(bucket, key).await {
                access.add_existing_tags(&super::tagging::stored_tags(object.headers()));
                access.set_object_acl(super::handlers::acl::stored_object_acl(&object));
            }
        }
    }
    let access = Arc::new(access);
    let traits = request_traits(&parts.headers, query.pairs());
    let expected_owner = endpoint.bucket().map_or(Ok(()), |bucket| {
        access.check_expected_owner(&parts.headers, "x-amz-expected-bucket-owner", bucket)
    });
    if let Err(error) = access
        .require_endpoint(&endpoint, traits)
        .and(expected_owner)
    {
        return (operation, fill_resource(Err(error), resource));
    }
    let changes_buckets = matches!(
        endpoint,
        Endpoint::CreateBucket { .. } | Endpoint::DeleteBucket { .. }
    );
    let customer_keys_allowed =
        service.sse_c_allow_http || parts.extensions.get::<super::state::OverTls>().is_some();
    let read_of_key = reads_a_key(&endpoint).map(str::to_string);
    let access_after = Arc::clone(&access);
    let req = S3Request {
        customer_keys_allowed,
        engine: service.engine.clone(),
        identity: service.identity.clone(),
        method: parts.method,
        headers: parts.headers,
        query,
        auth,
        access,
        body,
        request_id: request_id.to_string(),
    };
    let outcome = if streams_object_data(&endpoint) {
        route(req, endpoint).await
    } else {
        let deadline = service.limits.request_timeout;
        tokio::time::timeout(deadline, route(req, endpoint))
            .await
            .unwrap_or_else(|_| Err(deadline_exceeded(deadline)))
    };
    // As S3: a missing key is 404 only to a caller who may list the bucket (who could learn
    // it anyway); anyone else gets 403, so reads cannot probe which keys exist.
    let outcome = match (outcome, read_of_key) {
        (Err(error), Some(bucket))
            if error.code == S3ErrorCode::NoSuchKey && !may_list(&access_after, &bucket) =>
        {
            Err(S3Error::new(S3ErrorCode::AccessDenied))
        }
        (outcome, _) => outcome,
    };
    if changes_buckets && outcome.is_ok() {
        // Bucket owners are part of the access directory: this gateway's next request must
        // know the new bucket (other gateways see the generation change).
        service.identity.note_change().await;
    }
    (operation, fill_resource(outcome, resource))
}

/// The bucket of an object read whose `NoSuchKey` depends on the right to list (S3 answers
/// 403 instead to a caller without `s3:ListBucket`).
fn reads_a_key(endpoint: &Endpoint) -> Option<&str> {
    use Endpoint as E;
    match endpoint {
        E::GetObject { bucket, .. }
        | E::HeadObject { bucket, .. }
        | E::GetObjectAttributes { bucket, .. }
        | E::GetObjectTagging { bucket, .. }
        | E::GetObjectAcl { bucket, .. } => Some(bucket),
        _ => None,
    }
}

/// Whether the caller may list `bucket` (decided only when a read found no key).
fn may_list(access: &super::authorize::Access, bucket: &str) -> bool {
    let list = super::access::Permission {
        action: "s3:ListBucket",
        resource: super::access::bucket_arn(bucket),
    };
    access.decide(&list, Some(bucket)) == super::policy::Decision::Allow
}

/// Gives an error the request's `<Resource>` unless the handler named another one.
fn fill_resource(outcome: S3Result, resource: Option<String>) -> S3Result {
    match (outcome, resource) {
        (Err(error), Some(resource)) if error.resource.is_none() => {
            Err(error.with_resource(resource))
        }
        (outcome, _) => outcome,
    }
}

async fn route(req: S3Request, endpoint: Endpoint) -> S3Result {
    use Endpoint as E;
    // `versionId` addresses a version: checked here, once, for every call that takes one.
    let addressed = match &endpoint {
        E::DeleteObject { bucket, key } => Some((bucket, key, true)),
        E::GetObject { bucket, key }
        | E::HeadObject { bucket, key }
        | E::GetObjectTagging { bucket, key }
        | E::PutObjectTagging { bucket, key }
        | E::DeleteObjectTagging { bucket, key }
        | E::GetObjectAcl { bucket, key }
        | E::PutObjectAcl { bucket, key }
        | E::GetObjectAttributes { bucket, key } => Some((bucket, key, false)),
        _ => None,
    };
    if let Some((bucket, key, is_delete)) = addressed {
        let gate = object::version_id_gate(&req.engine, &req.query, bucket, key, is_delete);
        if let Some(answer) = gate.await? {
            return answer;
        }
    }
    match endpoint {
        E::ListBuckets => bucket::handle_list_buckets(req).await,
        E::CreateBucket { bucket } => bucket::handle_create_bucket(req, &bucket).await,
        E::HeadBucket { bucket } => bucket::handle_head_bucket(req, &bucket).await,
        E::DeleteBucket { bucket } => bucket::handle_delete_bucket(req, &bucket).await,
        E::GetBucketLocation { bucket } => bucket::handle_get_bucket_location(req, &bucket).await,
        E::GetBucketEncryption { bucket } => {
            super::handlers::encryption::handle_get_bucket_encryption(req, &bucket).await
        }
        E::PutBucketEncryption { bucket } => {
            super::handlers::encryption::handle_put_bucket_encryption(req, &bucket).await
        }
        E::DeleteBucketEncryption { bucket } => {
            super::handlers::encryption::handle_delete_bucket_encryption(req, &bucket).await
        }
        E::GetBucketVersioning { bucket } => {
            bucket::handle_get_bucket_versioning(req, &bucket).await
        }
        E::ListObjectsV1 { bucket } => list::handle_list_objects_v1(req, &bucket).await,
        E::ListObjectsV2 { bucket } => list::handle_list_objects_v2(req, &bucket).await,
        E::ListMultipartUploads { bucket } => {
            list::handle_list_multipart_uploads(req, &bucket).await
        }
        E::DeleteObjects { bucket } => object::handle_delete_objects(req, &bucket).await,
        E::PutObject { bucket, key } => object::handle_put_object(req, &bucket, &key).await,
        E::CopyObject { bucket, key } => copy::handle_copy_object(req, &bucket, &key).await,
        E::GetObject { bucket, key } => object::handle_get_object(req, &bucket, &key).await,
        E::HeadObject { bucket, key } => object::handle_head_object(req, &bucket, &key).await,
        E::DeleteObject { bucket, key } => object::handle_delete_object(req, &bucket, &key).await,
        E::CreateMultipartUpload { bucket, key } => {
            multipart::handle_create_multipart_upload(req, &bucket, &key).await
        }
        E::UploadPart {
            bucket,
            key,
            upload_id,
            part_number,
        } => multipart::handle_upload_part(req, &bucket, &key, &upload_id, part_number).await,
        E::CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::handle_complete_multipart_upload(req, &bucket, &key, &upload_id).await,
        E::AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::handle_abort_multipart_upload(req, &bucket, &key, &upload_id).await,
        E::ListParts {
            bucket,
            key,
            upload_id,
        } => multipart::handle_list_parts(req, &bucket, &key, &upload_id).await,
        E::UploadPartCopy {
            bucket,
            key,
            upload_id,
            part_number,
        } => copy::handle_upload_part_copy(req, &bucket, &key, &upload_id, part_number).await,
        E::ListObjectVersions { bucket } => list::handle_list_object_versions(req, &bucket).await,
        E::GetBucketAcl { bucket } => acl::handle_get_bucket_acl(req, &bucket).await,
        E::PutBucketAcl { bucket } => acl::handle_put_bucket_acl(req, &bucket).await,
        E::GetBucketPolicy { bucket } => policy::handle_get_bucket_policy(req, &bucket).await,
        E::PutBucketPolicy { bucket } => policy::handle_put_bucket_policy(req, &bucket).await,
        E::DeleteBucketPolicy { bucket } => policy::handle_delete_bucket_policy(req, &bucket).await,
        E::GetBucketPolicyStatus { bucket } => {
            policy::handle_get_bucket_policy_status(req, &bucket).await
        }
        E::GetBucketOwnershipControls { bucket } => {
            access_settings::handle_get_ownership_controls(req, &bucket).await
        }
        E::PutBucketOwnershipControls { bucket } => {
            access_settings::handle_put_ownership_controls(req, &bucket).await
        }
        E::DeleteBucketOwnershipControls { bucket } => {
            access_settings::handle_delete_ownership_controls(req, &bucket).await
        }
        E::GetPublicAccessBlock { bucket } => {
            access_settings::handle_get_public_access_block(req, &bucket).await
        }
        E::PutPublicAccessBlock { bucket } => {
            access_settings::handle_put_public_access_block(req, &bucket).await
        }
        E::DeletePublicAccessBlock { bucket } => {
            access_settings::handle_delete_public_access_block(req, &bucket).await
        }
        E::GetObjectAcl { bucket, key } => acl::handle_get_object_acl(req, &bucket, &key).await,
        E::PutObjectAcl { bucket, key } => acl::handle_put_object_acl(req, &bucket, &key).await,
        E::GetObjectTagging { bucket, key } => {
            tagging::handle_get_object_tagging(req, &bucket, &key).await
        }
        E::PutObjectTagging { bucket, key } => {
            tagging::handle_put_object_tagging(req, &bucket, &key).await
        }
        E::DeleteObjectTagging { bucket, key } => {
            tagging::handle_delete_object_tagging(req, &bucket, &key).await
        }
        E::GetObjectAttributes { bucket, key } => {
            attributes::handle_get_object_attributes(req, &bucket, &key).await
        }
        // A POST to a bucket that is not multipart/form-data.
        E::PostObject { .. } => Err(S3Error::new(S3ErrorCode::MalformedPOSTRequest)),
        E::NotImplemented { operation } => Err(S3Error::new(S3ErrorCode::NotImplemented)
            .with_message(format!("{operation} is not implemented"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_after_their_endpoint() {
        assert_eq!(Endpoint::ListBuckets.name(), "ListBuckets");
        let get = Endpoint::GetObject {
            bucket: "b".into(),
            key: "weird {key} (1)".into(),
        };
        assert_eq!(get.name(), "GetObject");
    }

    use http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_empty_bodies_that_expect_continue_close_the_connection() {
        let empty = [("expect", "100-continue"), ("content-length", "0")];
        assert!(expects_continue_without_body(&headers(&empty)));
        assert!(expects_continue_without_body(&headers(&[
            ("expect", "100-Continue"),
            ("content-length", " 0"),
        ])));
        assert!(!expects_continue_without_body(&headers(&[
            ("expect", "100-continue"),
            ("content-length", "10"),
        ])));
        assert!(!expects_continue_without_body(&headers(&[(
            "content-length",
            "0"
        )])));
        assert!(!expects_continue_without_body(&headers(&[
            ("expect", "100-continue"),
            ("content-length", "0"),
            ("transfer-encoding", "chunked"),
        ])));
        assert!(!expects_continue_without_body(&headers(&[(
            "expect",
            "100-continue"
        )])));
    }
}
