//! Why a delivery attempt got no verdict, in the terms of the queue (retry or bounce), of
//! DSNs (RFC 3463 status codes) and of TLS-RPT (RFC 8460 result types).

use std::io;
use std::net::SocketAddr;

use sealpost_smtp::client::{ProtocolError, Reply, SendError, SessionEnd};

/// Why a target gave no verdict (or why a recipient cannot be sent at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("no delivery targets")]
    NoTargets,
    /// Our EHLO name is not a domain or address literal (RFC 5321 §4.1.1.1): configuration.
    #[error("invalid EHLO name {0:?}")]
    InvalidHostname(String),
    #[error("connect to {0} failed: {1}")]
    Connect(SocketAddr, String),
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// A greeting other than 220, or EHLO and HELO refused (RFC 5321 §3.1, §4.1.1.1).
    #[error("session refused: {}", show(.0))]
    Refused(Reply),
    /// 421 (RFC 5321 §3.8).
    #[error("service closing: {}", show(.0))]
    ServiceClosing(Reply),
    /// TLS was required and the server does not offer STARTTLS (RFC 3207 §4).
    #[error("TLS required, STARTTLS not offered")]
    TlsNotOffered,
    /// TLS was required and STARTTLS was refused (RFC 3207 §4: 454).
    #[error("TLS required, STARTTLS refused: {}", show(.0))]
    StartTlsRefused(Reply),
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(String),
    /// The handshake failed because the certificate did not verify (DANE or MTA-STS).
    #[error("TLS certificate rejected: {detail}")]
    Certificate {
        problem: CertificateProblem,
        detail: String,
    },
    #[error("the server's bytes were not SMTP: {0}")]
    Protocol(ProtocolError),
    #[error("connection lost")]
    ConnectionLost,
    #[error("timed out waiting for the server")]
    TimedOut,
    #[error("I/O error: {0}")]
    Io(String),
    /// The envelope cannot be sent to this server as it is (nothing was sent).
    #[error("cannot send: {0}")]
    Send(SendError),
}

impl Failure {
    /// Whether retrying cannot help: an envelope that no server can take as it is.
    /// (SMTPUTF8 or REQUIRETLS not offered, or a size limit, is decided per server: RFC 6531
    /// §3.2, RFC 8689 §4.2.1, RFC 1870 §6 — another MX may offer them, so the last server
    /// tried decides, and the result is permanent only if that was such a refusal.)
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Failure::Send(
                SendError::InvalidSender
                    | SendError::InvalidRecipient(_)
                    | SendError::InvalidDsnParameter(_)
                    | SendError::SmtpUtf8NotOffered
                    | SendError::RequireTlsNotOffered
                    | SendError::TooBig { .. }
            )
        )
    }

    /// The RFC 3463 status code that describes this failure in a report and in the queue.
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            // X.4.4 "Unable to route" (no host to try).
            Failure::NoTargets => "4.4.4",
            // X.3.5 "System incorrectly configured" (our own name).
            Failure::InvalidHostname(_) => "4.3.5",
            // X.4.1 "No answer from host".
            Failure::Connect(..) | Failure::ConnectTimeout(_) => "4.4.1",
            // X.4.2 "Bad connection".
            Failure::Refused(_)
            | Failure::ServiceClosing(_)
            | Failure::Protocol(_)
            | Failure::ConnectionLost
            | Failure::TimedOut
            | Failure::Io(_) => "4.4.2",
            // RFC 8689 §5 / RFC 3463 X.7.10 "Encryption needed".
            Failure::TlsNotOffered
            | Failure::StartTlsRefused(_)
            | Failure::TlsHandshake(_)
            | Failure::Certificate { .. } => "4.7.10",
            Failure::Send(error) => match error {
                // X.1.7 "Bad sender's mailbox address syntax".
                SendError::InvalidSender => "5.1.7",
                // X.1.3 "Bad destination mailbox address syntax".
                SendError::InvalidRecipient(_) => "5.1.3",
                // X.5.4 "Invalid command arguments".
                SendError::InvalidDsnParameter(_) => "5.5.4",
                // RFC 6531 §3.7.5 / RFC 6533 X.6.7: non-ASCII addresses not permitted.
                SendError::SmtpUtf8NotOffered => "5.6.7",
                // RFC 8689 §5: REQUIRETLS support required.
                SendError::RequireTlsNotOffered => "5.7.30",
                // X.3.4 "Message too big for system".
                SendError::TooBig { .. } => "5.3.4",
                _ => "4.3.0",
            },
        }
    }

    /// The envelope itself is at fault: no other server needs to be tried.
    pub(super) fn is_envelope_error(&self) -> bool {
        matches!(
            self,
            Failure::Send(
                SendError::InvalidSender
                    | SendError::InvalidRecipient(_)
                    | SendError::InvalidDsnParameter(_)
                    | SendError::NoRecipients
            )
        )
    }
}

/// A reply on one line: `CODE ENHANCED TEXT...`.
pub(crate) fn show(reply: &Reply) -> String {
    let mut text = reply.code.to_string();
    if !reply.enhanced.is_empty() {
        text.push(' ');
        text.push_str(&reply.enhanced);
    }
    for line in &reply.lines {
        text.push(' ');
        text.push_str(line);
    }
    text
}

/// Why a certificate was refused, as TLS-RPT reports it (RFC 8460 §4.3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProblem {
    /// `certificate-host-mismatch`: not valid for the MX host name.
    HostMismatch,
    /// `certificate-expired`.
    Expired,
    /// `certificate-not-trusted`: no chain to a trusted CA (or the DANE-TA anchor).
    NotTrusted,
    /// `validation-failure`: anything else, e.g. no TLSA record matches.
    Invalid,
}

impl CertificateProblem {
    /// The RFC 8460 §4.3 result type.
    pub fn result_type(self) -> &'static str {
        match self {
            CertificateProblem::HostMismatch => "certificate-host-mismatch",
            CertificateProblem::Expired => "certificate-expired",
            CertificateProblem::NotTrusted => "certificate-not-trusted",
            CertificateProblem::Invalid => "validation-failure",
        }
    }
}

/// A failed handshake: a refused certificate by kind, anything else as it was said.
pub(super) fn handshake_failure(error: io::Error) -> Failure {
    use rustls::CertificateError as E;
    let detail = error.to_string();
    let problem = match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(certificate)) => match certificate {
            E::NotValidForName | E::NotValidForNameContext { .. } => {
                CertificateProblem::HostMismatch
            }
            E::Expired | E::ExpiredContext { .. } => CertificateProblem::Expired,
            E::UnknownIssuer | E::BadSignature => CertificateProblem::NotTrusted,
            _ => CertificateProblem::Invalid,
        },
        _ => return Failure::TlsHandshake(detail),
    };
    Failure::Certificate { problem, detail }
}

/// The failure a session end stands for; `None` after our QUIT.
pub(super) fn session_failure(end: SessionEnd) -> Option<Failure> {
    match end {
        SessionEnd::Quit(_) => None,
        SessionEnd::Refused(reply) => Some(Failure::Refused(reply)),
        SessionEnd::ServiceClosing(reply) => Some(Failure::ServiceClosing(reply)),
        SessionEnd::Protocol(error) => Some(Failure::Protocol(error)),
        SessionEnd::ConnectionLost => Some(Failure::ConnectionLost),
        SessionEnd::TimedOut => Some(Failure::TimedOut),
    }
}
