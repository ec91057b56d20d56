//! The optional HTTPS listener: loads and checks the certificate chain and private key (PEM)
//! once at start, and turns a TCP listener into an [`axum::serve::Listener`] of TLS streams.
//!
//! Invariants: a bad certificate setup is refused at start with an error naming the config
//! field (missing file, no PEM block, unreadable key, key that does not belong to the leaf
//! certificate), never at the first connection. Handshakes run in their own tasks, each bounded
//! by the handshake timeout, so a client that connects and stalls holds only its own socket and
//! never the accept loop; at most [`MAX_PENDING_HANDSHAKES`] run at once. Only HTTP/1.1 is
//! offered by ALPN (the gateway speaks nothing else). Crypto is rustls with the `ring` provider.
//! Graceful shutdown is axum's: once the signal fires no new connection is taken and in-flight
//! requests on TLS connections drain exactly like plain ones.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::config::{ConfigError, TlsConfig};

/// Handshakes allowed in flight at once; further connections wait in the kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 512;

/// Reads `config.cert` and `config.key` and builds the rustls server configuration.
pub fn load_server_config(config: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let certificates = read_certificates(&config.cert)?;
    let key = read_private_key(&config.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls_cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => tls_error(
                "tls_key",
                format!(
                    "{} is not the private key of the certificate in {}",
                    config.key.display(),
                    config.cert.display()
                ),
            ),
            other => tls_error(
                "tls_key",
                format!(
                    "cannot use {} with {}: {other}",
                    config.key.display(),
                    config.cert.display()
                ),
            ),
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn tls_error(field: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { field, message }
}

fn read_pem_file(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| tls_error(field, format!("cannot read {}: {e}", path.display())))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_pem_file("tls_cert", path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tls_error(
                "tls_cert",
                format!("{} is not valid PEM: {e}", path.display()),
            )
        })?;
    if certificates.is_empty() {
        return Err(tls_error(
            "tls_cert",
            format!("{} holds no CERTIFICATE block", path.display()),
        ));
    }
    Ok(certificates)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read_pem_file("tls_key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        tls_error(
            "tls_key",
            format!(
                "{} holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
                path.display()
            ),
        )
    })
}

/// A listener yielding TLS streams whose handshake has completed.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener`; handshakes longer than `handshake_timeout` are dropped.
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        let acceptor_task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(config),
            handshake_timeout,
            sender,
        ));
        Ok(TlsListener {
            local,
            ready,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Stop taking connections as soon as the server lets go of the listener.
        self.acceptor_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = ready.closed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await;
            drop(permit);
            match outcome {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Connection-level errors concern one client only; anything else (e.g. out of file
/// descriptors) is worth a pause before trying again, as hyper and axum do.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept error on the TLS listener");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is dropped; never resolve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(dir: &Path, cert: &str, key: &str) -> TlsConfig {
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        TlsConfig {
            cert: cert_path,
            key: key_path,
            listen: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn missing_and_malformed_files_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsConfig {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
            listen: None,
            handshake_timeout: Duration::from_secs(10),
        };
        let err = load_server_config(&missing).unwrap_err().to_string();
        assert!(
            err.contains("tls_cert") && err.contains("nope.pem"),
            "{err}"
        );

        let err = load_server_config(&config(dir.path(), "not pem at all\n", ""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tls_cert") && err.contains("no CERTIFICATE"),
            "{err}"
        );

        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let err = load_server_config(&config(dir.path(), truncated, ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_cert"), "{err}");
    }
}
