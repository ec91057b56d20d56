//! Optional TLS between gateways and storage nodes (rustls, `ring` provider): the node's server
//! configuration from a certificate chain and key (PEM), and the gateway's client
//! configuration from the CA file it trusts, with an optional server-name override for nodes
//! addressed by IP or by a name their certificate does not carry.
//!
//! TLS adds confidentiality and hides which shards move; integrity and authenticity of every
//! request and answer do not depend on it (wire protocol 2 signs bodies both ways under the
//! cluster secret), so a cluster without TLS is still safe against tampering, not against
//! eavesdropping.
//!
//! Invariants: a bad setup is refused when it is loaded, with the file named (missing file, no
//! PEM block, unreadable key, key that is not the certificate's, CA file without a certificate),
//! never at the first connection; the client trusts only the configured CA's certificates (no
//! system roots); only HTTP/1.1 is offered by ALPN (the client's connector sets it); TLS 1.2
//! and 1.3 only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::StorageError;

/// A TLS handshake with a node (either side) that takes longer than this is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn invalid(message: String) -> StorageError {
    StorageError::InvalidArgument(message)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, StorageError> {
    let pem = std::fs::read(path)
        .map_err(|err| invalid(format!("cannot read {}: {err}", path.display())))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(format!("{} is not valid PEM: {err}", path.display())))?;
    if certificates.is_empty() {
        return Err(invalid(format!(
            "{} holds no CERTIFICATE block",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The node's TLS server configuration from `cert` (chain, leaf first) and `key` (PEM).
pub fn load_server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, StorageError> {
    let certificates = read_certificates(cert)?;
    let key_pem = std::fs::read(key)
        .map_err(|err| invalid(format!("cannot read {}: {err}", key.display())))?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
        invalid(format!(
            "{} holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {err}",
            key.display()
        ))
    })?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, private_key)
        .map_err(|err| {
            invalid(format!(
                "cannot use {} with {}: {err}",
                key.display(),
                cert.display()
            ))
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// How a gateway reaches nodes over TLS: whom it trusts, and which name it expects.
#[derive(Clone)]
pub struct NodeTlsClient {
    pub(crate) config: Arc<rustls::ClientConfig>,
    /// Name checked against every node's certificate instead of the host in its address.
    pub(crate) server_name: Option<String>,
}

impl std::fmt::Debug for NodeTlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl NodeTlsClient {
    /// Trusts the certificates in the PEM file `ca` (and nothing else).
    pub fn from_ca_file(ca: &Path, server_name: Option<String>) -> Result<Self, StorageError> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in read_certificates(ca)? {
            roots.add(certificate).map_err(|err| {
                invalid(format!(
                    "{} holds a certificate that cannot be trusted as a CA: {err}",
                    ca.display()
                ))
            })?;
        }
        if let Some(name) = &server_name {
            rustls::pki_types::ServerName::try_from(name.as_str())
                .map_err(|err| invalid(format!("server name {name:?}: {err}")))?;
        }
        // ALPN (http/1.1) is set by the connector (`HttpShardStore`), which requires it empty.
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| invalid(err.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(NodeTlsClient {
            config: Arc::new(config),
            server_name,
        })
    }
}
