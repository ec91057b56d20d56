//! Object tagging: GetObjectTagging, PutObjectTagging, DeleteObjectTagging.
//!
//! A tag change rewrites the live version's record in place: the ETag, LastModified and data
//! stay, as in S3 (tagging is a sub-resource, not a new object). The tag set's rules and its
//! storage are in [`crate::s3::tagging`].

use http::StatusCode;

use super::{empty_response, read_request_document, xml_response, S3Request, S3Result};
use crate::s3::error::S3Error;
use crate::s3::tagging::{
    parse_tagging_xml, stored_tags, tagging_xml, to_query_form, MAX_TAGGING_BODY, TAGGING_HEADER,
};

pub async fn handle_get_object_tagging(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let version = req
        .engine
        .head_object(bucket, key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    xml_response(tagging_xml(&stored_tags(version.headers())))
}

pub async fn handle_put_object_tagging(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let engine = req.engine.clone();
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_TAGGING_BODY).await?;
    let tags = parse_tagging_xml(&body)?;
    let bucket = engine.bucket(bucket).await?;
    engine
        .set_stored_header(&bucket, key, TAGGING_HEADER, to_query_form(&tags))
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    empty_response(StatusCode::OK)
}

pub async fn handle_delete_object_tagging(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let bucket = req.engine.bucket(bucket).await?;
    req.engine
        .set_stored_header(&bucket, key, TAGGING_HEADER, None)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    empty_response(StatusCode::NO_CONTENT)
}
