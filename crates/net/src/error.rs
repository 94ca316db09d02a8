//! The one error type of the crate.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::service::ServiceKind;

/// Which file of a certificate/key pair an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The PEM certificate chain (leaf first).
    Certificate,
    /// The PEM private key.
    PrivateKey,
}

impl std::fmt::Display for FileRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileRole::Certificate => "certificate file",
            FileRole::PrivateKey => "private key file",
        })
    }
}

/// Everything that can go wrong in the network layer.
///
/// Each message is one sentence naming the offending file, address or limit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// An I/O error on an established connection.
    #[error("connection i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer sent nothing (or could not take our output) within the idle timeout.
    #[error("connection timed out after {0:?} without progress")]
    Timeout(std::time::Duration),
    /// A line exceeded the caller's limit before its LF arrived.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        max: usize,
    },
    /// The peer closed the connection in the middle of a line or a counted read.
    #[error("connection closed by the peer in the middle of a line or literal")]
    UnexpectedEof,
    /// The stream is gone (a TLS handshake on it failed earlier).
    #[error("connection is closed")]
    Closed,
    /// `start_tls` on a connection that already speaks TLS.
    #[error("TLS is already active on this connection")]
    AlreadyTls,
    /// `start_tls_default` on a connection that has no TLS configuration.
    #[error("no TLS configuration is available for this connection")]
    NoTlsConfig,
    /// The TLS handshake failed (bad record, alert, ALPN mismatch, ...).
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The TLS handshake did not finish within the handshake timeout.
    #[error("TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(std::time::Duration),

    /// A listening socket could not be opened.
    #[error("cannot listen on {addr} for {service}: {reason}")]
    Bind {
        /// The service of the listener.
        service: ServiceKind,
        /// The address asked for.
        addr: SocketAddr,
        /// Lower-case description ("address already in use").
        reason: String,
        /// The OS error kind, for callers that branch on it.
        kind: io::ErrorKind,
    },
    /// `serve` was given a listener whose service has no handler.
    #[error("no handler was registered for the {service} listener")]
    NoHandler {
        /// The service of the listener.
        service: ServiceKind,
    },
    /// rustls refused the server configuration.
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(rustls::Error),
    /// The SIGHUP handler could not be installed.
    #[error("cannot install the SIGHUP handler: {0}")]
    Signal(io::Error),

    /// A certificate or key file does not exist.
    #[error("{role} {} does not exist", .path.display())]
    FileMissing {
        /// Which file.
        role: FileRole,
        /// Its path.
        path: PathBuf,
    },
    /// A certificate or key file exists but cannot be read.
    #[error("cannot read {role} {}: {reason}", .path.display())]
    FileUnreadable {
        /// Which file.
        role: FileRole,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificate file holds no PEM `CERTIFICATE` section.
    #[error("no certificate found in {}", .path.display())]
    NoCertificate {
        /// The certificate path.
        path: PathBuf,
    },
    /// The certificate file is not valid PEM / X.509.
    #[error("invalid certificate in {}: {reason}", .path.display())]
    InvalidCertificate {
        /// The certificate path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file holds no PEM private key section.
    #[error("no private key found in {}", .path.display())]
    NoKey {
        /// The key path.
        path: PathBuf,
    },
    /// The key file holds a private key that cannot be used (truncated, unsupported type, ...).
    #[error("invalid private key in {}: {reason}", .path.display())]
    InvalidKey {
        /// The key path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private key is not the key of the certificate.
    #[error("private key {} does not match certificate {}", .key.display(), .cert.display())]
    KeyMismatch {
        /// The certificate path.
        cert: PathBuf,
        /// The key path.
        key: PathBuf,
    },
    /// The leaf certificate's notAfter is in the past.
    #[error("certificate {} expired on {not_after}", .path.display())]
    CertExpired {
        /// The certificate path.
        path: PathBuf,
        /// The notAfter time, as written in the certificate.
        not_after: String,
    },
    /// The leaf certificate's notBefore is in the future.
    #[error("certificate {} is not valid before {not_before}", .path.display())]
    CertNotYetValid {
        /// The certificate path.
        path: PathBuf,
        /// The notBefore time, as written in the certificate.
        not_before: String,
    },
    /// The certificate does not name the server's hostname.
    #[error(
        "certificate {} does not cover hostname {hostname} (it names: {})",
        .path.display(),
        if .names.is_empty() { "nothing".to_owned() } else { .names.join(", ") }
    )]
    HostnameNotCovered {
        /// The certificate path.
        path: PathBuf,
        /// The hostname that was checked.
        hostname: String,
        /// The DNS names the certificate does carry.
        names: Vec<String>,
    },
}

/// Lower-case, OS-independent wording of an I/O error kind, for one-sentence messages.
pub(crate) fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => err.to_string(),
    }
}
