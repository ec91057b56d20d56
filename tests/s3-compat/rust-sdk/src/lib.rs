//! Harness for the Rust `aws-sdk-s3` client tests: spawns a real `strata server` that serves
//! plain HTTP on one port and HTTPS on a second (`--tls-listen`), with a throwaway CA and
//! server certificate generated at run time (rcgen), and builds SDK clients with the SDK's
//! default settings (default checksums, `behavior-version-latest`) for either transport.
//!
//! Invariants: every wait is bounded (start-up poll, shutdown); a spawned server is stopped
//! (SIGTERM, then SIGKILL) when its [`Server`] is dropped, even when a test panics; nothing
//! here talks to anything but 127.0.0.1. The TLS stack is rustls with the ring provider, for
//! the SDK (aws-smithy-http-client `rustls-ring`) and for the raw presigned requests alike.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rand::{RngCore, SeedableRng};
use sha1::Digest as _;

pub const ACCESS_KEY: &str = "STRATASDKTESTKEY0001";
pub const SECRET_KEY: &str = "sdk-test-secret-0123456789abcdefABCDEF";
pub const REGION: &str = "us-east-1";
pub const MIB: usize = 1024 * 1024;

/// The `strata` binary: `$STRATA_BIN`, else `strata` next to this test's target directory
/// (`cargo test --workspace` builds it, the gateway crate having integration tests).
pub fn strata_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_BIN") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    // target/release/deps/<test-binary> → target/release/strata
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("strata");
    candidate.is_file().then_some(candidate)
}

/// Which port of the server a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
}

pub const TRANSPORTS: [Transport; 2] = [Transport::Http, Transport::Https];

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it.
pub struct TestCertificates {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCertificates {
    pub fn generate() -> TestCertificates {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Strata throwaway test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();
        TestCertificates {
            ca_pem: ca_cert.pem(),
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        }
    }
}

/// A spawned `strata server` (HTTP and HTTPS), stopped on drop.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub certificates: TestCertificates,
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Server {
    /// Starts a server, or `None` (after saying why) when no strata binary was built.
    pub fn start() -> Option<Server> {
        let Some(binary) = strata_binary() else {
            eprintln!(
                "SKIPPED: no strata binary (set STRATA_BIN or `cargo build --release -p strata-gateway`)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let certificates = TestCertificates::generate();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &certificates.cert_pem).unwrap();
        std::fs::write(&key, &certificates.key_pem).unwrap();
        let (http, https) = (free_port(), free_port());
        let log = std::fs::File::create(dir.path().join("strata.log")).unwrap();
        let child = Command::new(&binary)
            .args(["server", "--no-fsync", "--listen", &http.to_string()])
            .args(["--tls-listen", &https.to_string()])
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("STRATA_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_SECRET_KEY", SECRET_KEY)
            .env("STRATA_LOG", "info,strata_gateway::s3::payload::body=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            dir,
            http,
            https,
            certificates,
        };
        server.wait_ready();
        Some(server)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("strata exited with {status} during start:\n{}", self.log());
            }
            if health_ready(self.http) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("strata not ready within 60 s:\n{}", self.log());
    }

    /// The server's log so far (for failure messages and payload-mode checks).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("strata.log")).unwrap_or_default()
    }

    pub fn endpoint(&self, transport: Transport) -> String {
        match transport {
            Transport::Http => format!("http://{}", self.http),
            Transport::Https => format!("https://{}", self.https),
        }
    }

    /// An SDK client with default settings apart from endpoint, credentials and path style.
    pub fn client(&self, transport: Transport) -> aws_sdk_s3::Client {
        let builder = aws_smithy_http_client::Builder::new();
        let http_client = match transport {
            Transport::Http => builder.build_http(),
            Transport::Https => builder
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .tls_context(
                    tls::TlsContext::builder()
                        .with_trust_store(
                            tls::TrustStore::empty()
                                .with_pem_certificate(self.certificates.ca_pem.as_bytes()),
                        )
                        .build()
                        .unwrap(),
                )
                .build_https(),
        };
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint(transport))
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                None,
                None,
                "strata-test",
            ))
            .http_client(http_client)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// One raw HTTP/1.1 request (hyper, over TCP or rustls) to a full URL from presigning.
    pub async fn raw_request(
        &self,
        transport: Transport,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (http::StatusCode, http::HeaderMap, Bytes) {
        let uri: http::Uri = url.parse().unwrap();
        let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap();
        let authority = uri.authority().unwrap().as_str().to_owned();
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).unwrap();
        let address = match transport {
            Transport::Http => self.http,
            Transport::Https => self.https,
        };
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let response = match transport {
            Transport::Http => send(hyper_util::rt::TokioIo::new(tcp), request).await,
            Transport::Https => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(
                    self.certificates.ca_pem.as_bytes(),
                ) {
                    roots.add(cert.unwrap()).unwrap();
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .unwrap();
                send(hyper_util::rt::TokioIo::new(tls), request).await
            }
        };
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(60), body.collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        (parts.status, parts.headers, body)
    }
}

use rustls_pki_types::pem::PemObject as _;

async fn send<Io>(
    io: Io,
    request: http::Request<Full<Bytes>>,
) -> http::Response<hyper::body::Incoming>
where
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    tokio::time::timeout(Duration::from_secs(60), sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

fn health_ready(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_strata/health/ready HTTP/1.0\r\nHost: x\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic incompressible bytes.
pub fn data(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (size as u64).rotate_left(17));
    let mut body = vec![0u8; size];
    rng.fill_bytes(&mut body);
    body
}

/// A fresh bucket name per test and transport.
pub fn bucket_name(test: &str, transport: Transport) -> String {
    let suffix = match transport {
        Transport::Http => "http",
        Transport::Https => "https",
    };
    format!("{}-{suffix}", test.replace('_', "-"))
}

/// Base64 of an S3 flexible checksum, computed here (never taken from the server).
pub fn checksum_b64(algorithm: &str, body: &[u8]) -> String {
    let raw: Vec<u8> = match algorithm {
        "CRC32" => (crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, body) as u32)
            .to_be_bytes()
            .to_vec(),
        "CRC32C" => (crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, body) as u32)
            .to_be_bytes()
            .to_vec(),
        "CRC64NVME" => crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, body)
            .to_be_bytes()
            .to_vec(),
        "SHA1" => sha1::Sha1::digest(body).to_vec(),
        "SHA256" => sha2::Sha256::digest(body).to_vec(),
        other => panic!("unknown algorithm {other}"),
    };
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// COMPOSITE multipart checksum: the checksum of the concatenated raw part checksums, `-N`.
pub fn composite_checksum_b64(algorithm: &str, parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend(
            base64::engine::general_purpose::STANDARD
                .decode(checksum_b64(algorithm, part))
                .unwrap(),
        );
    }
    format!("{}-{}", checksum_b64(algorithm, &joined), parts.len())
}

/// The quoted hex MD5 ETag of a single-part object.
pub fn md5_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5::Md5::digest(body)))
}

/// The multipart ETag: MD5 of the concatenated binary part MD5s, `-N`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend_from_slice(&md5::Md5::digest(part));
    }
    format!(
        "\"{}-{}\"",
        hex::encode(md5::Md5::digest(&joined)),
        parts.len()
    )
}

/// The payload modes the server logged for request bodies (`payload="…"`), in order.
pub fn logged_payload_modes(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains("request body"))
        .filter_map(|line| {
            let start = line.find("payload=")? + "payload=".len();
            let rest = line.get(start..)?.trim_start_matches('"');
            let end = rest.find(['"', ' ']).unwrap_or(rest.len());
            rest.get(..end).map(str::to_owned)
        })
        .collect()
}
