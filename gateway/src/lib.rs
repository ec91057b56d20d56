//! The Strata gateway: the S3 protocol layer (`s3`), the object service (`engine`) and the
//! process roles built from them (`server`). The `strata` binary is a thin CLI over this crate.

pub mod admin;
pub mod bench;
pub mod catalog_setup;
pub mod checksum;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod identity;
pub mod metrics;
pub mod node_roles;
pub mod s3;
pub mod server;
pub mod shutdown;
pub mod sse;
pub mod tls;
