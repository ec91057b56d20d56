//! The S3 protocol layer: routing, authentication, request/response formats and errors.
//!
//! This layer never touches shards or the catalog: it turns HTTP requests into calls on
//! [`crate::engine::Engine`] and engine results into S3 responses.

pub mod access;
pub mod auth;
pub mod authorize;
pub mod context_keys;
pub mod endpoint;
pub mod error;
pub mod escape;
pub mod handlers;
pub mod headers;
pub mod limits;
pub mod payload;
pub mod policy;
pub mod post_policy;
pub mod service;
pub mod sse;
pub mod state;
pub mod support;
pub mod tagging;
pub mod unread;
pub mod xml;
