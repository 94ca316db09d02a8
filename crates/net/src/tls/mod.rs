//! TLS: certificate loading, SNI selection, hot reload, per-service rustls configuration.
//!
//! A [`CertStore`] holds every configured certificate chain with its key. It is the rustls
//! certificate resolver of every [`rustls::ServerConfig`] built by [`server_config`], and it
//! reads the current certificate set at each handshake, so [`CertStore::reload`] affects new
//! handshakes only while established sessions keep their keys.

mod client;
mod inspect;
mod load;
mod names;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureScheme};
use tokio::task::JoinHandle;

pub use client::{
    DaneMatcher, DaneVerdict, RootsError, dane_client_config, opportunistic_client_config,
    pkix_client_config, trust_roots,
};
pub use inspect::{CertReport, inspect_certificate};

use crate::error::NetError;
use crate::service::ServiceKind;
use load::{LoadedPair, load_pair};
use names::{Coverage, best_coverage, normalise};

/// Where one certificate chain and its private key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC): RSA, ECDSA or Ed25519.
    pub key: PathBuf,
}

/// The aws-lc-rs provider with rustls' defaults: AES-GCM and ChaCha20-Poly1305 suites only,
/// all with (EC)DHE key exchange, X25519MLKEM768 first.
fn provider() -> Arc<CryptoProvider> {
    // RFC 9325 §4.1-4.2: only AEAD suites with forward secrecy (asserted in the tests below).
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// One loaded certificate with the names it may be selected by.
struct CertEntry {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
}

/// An immutable set of certificates.
struct CertSet {
    default: CertEntry,
    extra: Vec<CertEntry>,
}

impl CertSet {
    fn all(&self) -> impl Iterator<Item = &CertEntry> {
        std::iter::once(&self.default).chain(self.extra.iter())
    }
}

/// Every configured certificate, selectable by SNI, reloadable while serving.
pub struct CertStore {
    provider: Arc<CryptoProvider>,
    default_paths: CertPaths,
    extra_paths: Vec<CertPaths>,
    current: RwLock<Arc<CertSet>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("default", &self.default_paths)
            .field("extra", &self.extra_paths)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the default certificate and any extra ones (selected by SNI).
    ///
    /// Fails with an error naming the first file that is missing, unreadable, holds no
    /// certificate or key, or whose key does not match its certificate.
    pub fn load(default: CertPaths, extra: Vec<CertPaths>) -> Result<Arc<CertStore>, NetError> {
        let provider = provider();
        let set = load_set(&default, &extra, &provider)?;
        Ok(Arc::new(CertStore {
            provider,
            default_paths: default,
            extra_paths: extra,
            current: RwLock::new(Arc::new(set)),
        }))
    }

    /// Re-reads every file and swaps the whole set atomically.
    ///
    /// On any error the certificates in use stay untouched and the error is returned.
    pub fn reload(&self) -> Result<(), NetError> {
        let set = load_set(&self.default_paths, &self.extra_paths, &self.provider)?;
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(set);
        Ok(())
    }

    /// The configured files, the default first.
    pub fn paths(&self) -> impl Iterator<Item = &CertPaths> {
        std::iter::once(&self.default_paths).chain(self.extra_paths.iter())
    }

    /// The certificate a client would get for `sni`, given the signature schemes it offers
    /// (an empty slice means "any").
    ///
    /// Candidates are the certificates naming `sni` exactly, then those covering it with a
    /// wildcard (configuration order within each); the first whose key can sign with an
    /// offered scheme wins. No candidate: the default certificate.
    pub fn select(&self, sni: Option<&str>, schemes: &[SignatureScheme]) -> Arc<CertifiedKey> {
        let set = self.snapshot();
        let mut candidates: Vec<(Coverage, &CertEntry)> = match sni {
            Some(name) => {
                let name = normalise(name);
                set.all()
                    .filter_map(|e| best_coverage(&e.names, &name).map(|c| (c, e)))
                    .collect()
            }
            None => Vec::new(),
        };
        // A stable sort keeps configuration order among equally good matches.
        candidates.sort_by_key(|&(coverage, _)| coverage);
        let can_sign =
            |e: &CertEntry| schemes.is_empty() || e.key.key.choose_scheme(schemes).is_some();
        let chosen = candidates
            .iter()
            .map(|&(_, e)| e)
            .find(|e| can_sign(e))
            .or_else(|| candidates.first().map(|&(_, e)| e))
            .unwrap_or(&set.default);
        Arc::clone(&chosen.key)
    }

    fn snapshot(&self) -> Arc<CertSet> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // RFC 6066 §3: the client's server_name picks the certificate; unknown or absent
        // names get the default one (strict SNI is not enforced, SECURITY-TESTS TLS-06).
        Some(self.select(client_hello.server_name(), client_hello.signature_schemes()))
    }
}

fn load_set(
    default: &CertPaths,
    extra: &[CertPaths],
    provider: &CryptoProvider,
) -> Result<CertSet, NetError> {
    let load = |paths: &CertPaths| -> Result<CertEntry, NetError> {
        let LoadedPair { key, leaf } = load_pair(paths, provider)?;
        if leaf.not_after < std::time::SystemTime::now() {
            tracing::warn!(cert = %paths.cert.display(), not_after = %leaf.not_after_text,
                "serving an expired certificate");
        }
        Ok(CertEntry {
            key,
            names: leaf.dns_names,
        })
    };
    Ok(CertSet {
        default: load(default)?,
        extra: extra.iter().map(load).collect::<Result<_, _>>()?,
    })
}

/// The rustls configuration of one service; build it once per service and share it.
///
/// TLS 1.2 and 1.3 only, aws-lc-rs with AEAD + ECDHE suites, no 0-RTT, ALPN per service, the
/// certificate chosen by `certs` at every handshake.
pub fn server_config(
    certs: Arc<CertStore>,
    service: ServiceKind,
) -> Result<Arc<ServerConfig>, NetError> {
    let provider = Arc::clone(&certs.provider);
    // RFC 8996 §2-3, RFC 9325 §3.1.1: TLS 1.2 and 1.3 only.
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(NetError::TlsConfig)?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    // RFC 7301 §3.2: with ALPN configured, rustls answers a client whose offer has no overlap
    // with alert no_application_protocol (120); a client without ALPN is served (ALPACA).
    config.alpn_protocols = service.alpn().iter().map(|p| p.to_vec()).collect();
    // RFC 8446 §8, RFC 9325 §3.10: no 0-RTT data is ever accepted.
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    Ok(Arc::new(config))
}

/// Reloads `certs` on every SIGHUP, logging the outcome; runs until the task is aborted.
///
/// Call it from inside the tokio runtime (tokio's signal and spawn functions need one).
pub fn spawn_reload_on_sighup(certs: Arc<CertStore>) -> Result<JoinHandle<()>, NetError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).map_err(NetError::Signal)?;
    Ok(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let store = Arc::clone(&certs);
            match tokio::task::spawn_blocking(move || store.reload()).await {
                Ok(Ok(())) => tracing::info!(
                    certificates = certs.paths().count(),
                    "TLS certificates reloaded"
                ),
                Ok(Err(e)) => tracing::error!(
                    error = %e,
                    "TLS certificate reload failed; the previous certificates stay in use"
                ),
                Err(e) => tracing::error!(error = %e, "TLS certificate reload task failed"),
            }
        }
    }))
}

#[cfg(test)]
mod tests;
