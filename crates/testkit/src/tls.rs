//! TLS for tests: a client that trusts any server certificate, and a server certificate
//! store made from a fresh self-signed certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use sealpost_net::{CertPaths, CertStore};

/// The crypto provider the server uses (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration (TLS 1.2 and 1.3) that accepts any server certificate, so that
/// tests can talk TLS to a server with a self-signed or deliberately wrong certificate and
/// look at what it sends. The handshake signatures are still checked.
///
/// Returned by value so that a test can adjust it (SNI, ALPN) before wrapping it in an `Arc`.
pub fn tls_client() -> ClientConfig {
    sealpost_net::opportunistic_client_config().unwrap()
}

/// A certificate store holding a fresh self-signed certificate for `localhost`, its PEM
/// files written to `dir` (which must outlive the store's use: reloads read them again).
pub fn self_signed_cert_store(dir: &Path) -> Arc<CertStore> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    CertStore::load(CertPaths { cert, key }, Vec::new()).unwrap()
}
