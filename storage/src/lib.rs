//! Strata's storage layer: shard identities, the erasure codec, the on-disk shard format and
//! the `ShardStore` trait with its local-directory and fault-injecting implementations, and the
//! scrubber that re-verifies local shard files in the background.
//!
//! This crate knows nothing of S3 or of metadata; the engine in the gateway composes it.
//! Erasure coding is synchronous CPU work: async callers run it in `spawn_blocking`.

pub mod cluster_auth;
pub mod codec;
pub mod error;
pub mod faulty;
pub mod format;
pub mod http_store;
pub mod id;
pub mod local;
pub mod node;
pub mod node_tls;
pub mod scrub;
pub mod signed_body;
pub mod store;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

pub use codec::{ErasureCodec, Geometry};
pub use error::StorageError;
pub use faulty::FaultyShardStore;
pub use format::{BackReference, CodecId, FrameChecksum, ShardHeader};
pub use http_store::{HttpShardStore, HttpStoreConfig};
pub use id::{ShardGroupId, ShardId};
pub use local::LocalShardStore;
pub use node::{serve_node, NodeConfig};
pub use node_tls::NodeTlsClient;
pub use scrub::{ScrubConfig, ScrubReport, ScrubStatus};
pub use store::{ShardStat, ShardStore, ShardWriter, StoreHealth};
