//! `sealpost check`: is the configured certificate usable for this hostname, now?

use std::time::SystemTime;

use super::CertPaths;
use super::load::load_pair;
use super::names::{best_coverage, normalise};
use crate::error::NetError;

/// What `sealpost check` reports about a healthy certificate/key pair.
#[derive(Debug, Clone)]
pub struct CertReport {
    /// The names the certificate is valid for (DNS SANs, or the CN when it has none).
    pub subject_names: Vec<String>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// End of validity as written in the certificate, e.g. `Mar  1 12:00:00 2027 +00:00`.
    pub not_after_text: String,
    /// Number of certificates in the chain file (leaf included).
    pub chain_len: usize,
    /// The key algorithm: `RSA`, `ECDSA` or `ED25519`.
    pub key_algorithm: String,
}

/// Checks that the pair is readable, the key matches, the leaf is valid at `now` and (when a
/// hostname is given: `"mail.example.com"` or `Some(..)`) names `hostname`; each failure is
/// its own [`NetError`] variant naming the path. Pass `None` for SNI-only certificates.
pub fn inspect_certificate<'a>(
    paths: &CertPaths,
    hostname: impl Into<Option<&'a str>>,
    now: SystemTime,
) -> Result<CertReport, NetError> {
    let hostname: Option<&str> = hostname.into();
    let provider = super::provider();
    let pair = load_pair(paths, &provider)?;
    let leaf = pair.leaf;
    if now < leaf.not_before {
        return Err(NetError::CertNotYetValid {
            path: paths.cert.clone(),
            not_before: leaf.not_before_text,
        });
    }
    if now > leaf.not_after {
        return Err(NetError::CertExpired {
            path: paths.cert.clone(),
            not_after: leaf.not_after_text,
        });
    }
    // RFC 6125 §6.4, RFC 7817 §3: the server's own name must be a DNS-ID of its certificate.
    if let Some(hostname) = hostname
        && best_coverage(&leaf.dns_names, &normalise(hostname)).is_none()
    {
        return Err(NetError::HostnameNotCovered {
            path: paths.cert.clone(),
            hostname: hostname.to_owned(),
            names: leaf.dns_names,
        });
    }
    Ok(CertReport {
        subject_names: leaf.dns_names,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        not_after_text: leaf.not_after_text,
        chain_len: pair.key.cert.len(),
        key_algorithm: format!("{:?}", pair.key.key.algorithm()),
    })
}
