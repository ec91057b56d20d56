//! Payload decoding: everything between the HTTP request body and the byte stream the engine
//! stores. `body` enforces what the headers promised (length, signed SHA-256, flexible
//! checksum), `chunked` strips and verifies the `aws-chunked` framing, `checksum` parses client
//! digests (`Content-MD5`, flexible checksum values) into S3 errors; the checksum arithmetic
//! itself is the shared `crate::checksum`, which the engine uses too. The stream types are the
//! engine's own ([`crate::engine::BodyStream`]), so a verified body is handed over without
//! conversion.
//!
//! Inside the group the arrows run one way: `body` → `chunked`, `body` → `checksum`.

pub mod body;
pub mod checksum;
pub mod chunked;
