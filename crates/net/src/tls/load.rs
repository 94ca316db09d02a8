//! Reading PEM certificate chains and private keys from disk.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use super::CertPaths;
use super::names::normalise;
use crate::error::{FileRole, NetError, io_reason};

/// Certificate and key files are small; anything larger is a wrong path (or `/dev/zero`).
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// One certificate chain with its key, checked to belong together.
#[derive(Debug)]
pub(crate) struct LoadedPair {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) leaf: LeafInfo,
}

/// What the rest of the crate needs to know about a leaf certificate.
#[derive(Debug, Clone)]
pub(crate) struct LeafInfo {
    /// Normalised DNS names: the DNS SANs, or the CN when there is no DNS SAN.
    pub(crate) dns_names: Vec<String>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    pub(crate) not_before_text: String,
    pub(crate) not_after_text: String,
}

/// Reads, parses and cross-checks one certificate/key pair.
pub(crate) fn load_pair(
    paths: &CertPaths,
    provider: &CryptoProvider,
) -> Result<LoadedPair, NetError> {
    let cert_pem = read_pem_file(FileRole::Certificate, &paths.cert)?;
    let key_pem = read_pem_file(FileRole::PrivateKey, &paths.key)?;
    let chain = parse_chain(&paths.cert, &cert_pem)?;
    let key = parse_key(&paths.key, &key_pem)?;
    let leaf = match chain.first() {
        Some(der) => leaf_info(&paths.cert, der)?,
        None => {
            return Err(NetError::NoCertificate {
                path: paths.cert.clone(),
            });
        }
    };
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| NetError::InvalidKey {
                path: paths.key.clone(),
                reason: format!("unsupported key type or malformed key data ({e})"),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // aws-lc-rs derives the public key of RSA, ECDSA and Ed25519 keys, so `Unknown` does not
        // happen with our provider; treat it as rustls' own `CertifiedKey::from_der` does.
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(TlsError::InconsistentKeys(_)) => {
            return Err(NetError::KeyMismatch {
                cert: paths.cert.clone(),
                key: paths.key.clone(),
            });
        }
        Err(e) => {
            return Err(NetError::InvalidCertificate {
                path: paths.cert.clone(),
                reason: e.to_string(),
            });
        }
    }
    Ok(LoadedPair {
        key: Arc::new(certified),
        leaf,
    })
}

/// Reads a whole PEM file (bounded), mapping failures to errors that name the file.
fn read_pem_file(role: FileRole, path: &Path) -> Result<Vec<u8>, NetError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NetError::FileMissing {
            role,
            path: path.to_path_buf(),
        },
        _ => NetError::FileUnreadable {
            role,
            path: path.to_path_buf(),
            reason: io_reason(&e),
        },
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| NetError::FileUnreadable {
            role,
            path: path.to_path_buf(),
            reason: io_reason(&e),
        })?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(NetError::FileUnreadable {
            role,
            path: path.to_path_buf(),
            reason: "file is larger than 1 MiB, which no PEM certificate or key is".to_owned(),
        });
    }
    Ok(bytes)
}

/// All `CERTIFICATE` sections, leaf first.
fn parse_chain(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| NetError::InvalidCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(NetError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// The first private key section (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, NetError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => NetError::NoKey {
            path: path.to_path_buf(),
        },
        other => NetError::InvalidKey {
            path: path.to_path_buf(),
            reason: describe_pem_error(&other),
        },
    })
}

/// pki-types prints PEM markers as byte lists; name them as text instead.
fn describe_pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "missing the end marker \"-----END {}-----\" (is the file complete?)",
            String::from_utf8_lossy(end_marker)
        ),
        other => other.to_string(),
    }
}

/// Names and validity period of the leaf certificate.
pub(crate) fn leaf_info(path: &Path, der: &CertificateDer<'_>) -> Result<LeafInfo, NetError> {
    let invalid = |reason: String| NetError::InvalidCertificate {
        path: path.to_path_buf(),
        reason,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| invalid(format!("cannot parse the leaf certificate: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| invalid(format!("bad subjectAltName extension: {e}")))?;
    let mut dns_names: Vec<String> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|n| match n {
            GeneralName::DNSName(name) => Some(normalise(name)),
            _ => None,
        })
        .collect();
    if dns_names.is_empty() {
        // RFC 6125 §6.4.4: the CN is consulted only when the certificate has no DNS-ID.
        dns_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(normalise)
            .collect();
    }
    let validity = cert.validity();
    Ok(LeafInfo {
        dns_names,
        not_before: to_system_time(validity.not_before.timestamp()),
        not_after: to_system_time(validity.not_after.timestamp()),
        not_before_text: validity.not_before.to_string(),
        not_after_text: validity.not_after.to_string(),
    })
}

fn to_system_time(unix_secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix_secs.unsigned_abs());
    let t = if unix_secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.unwrap_or(UNIX_EPOCH)
}
