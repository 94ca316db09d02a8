//! What can go wrong when looking a destination up, sorted into "retry later" and "give up".

/// A failed lookup. [`DnsError::is_temporary`] tells the queue whether to retry (RFC 5321
/// §4.5.4.1) or to bounce; [`DnsError::enhanced_status`] gives the RFC 3463 code for the DSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The domain does not exist (NXDOMAIN): a permanent failure.
    #[error("the domain {domain} does not exist (NXDOMAIN)")]
    NxDomain { domain: String },
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    #[error("the domain {domain} accepts no mail (null MX, RFC 7505)")]
    NullMx { domain: String },
    /// Neither the MX hosts nor (without MX) the domain itself have an address: permanent.
    #[error("no mail server address found for {domain}")]
    NoAddresses { domain: String },
    /// SERVFAIL, REFUSED, timeout, unreachable server, DNSSEC failure: try again later.
    #[error("temporary DNS failure looking up {name}: {reason}")]
    Temporary { name: String, reason: String },
    /// The name cannot be put on the wire (too long, bad label).
    #[error("{name:?} is not a valid DNS name: {reason}")]
    InvalidName { name: String, reason: String },
    /// The resolver could not be built (e.g. an unreadable /etc/resolv.conf).
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
}

impl DnsError {
    /// Whether the queue should keep the message and retry (RFC 5321 §4.5.4.1).
    pub fn is_temporary(&self) -> bool {
        matches!(self, DnsError::Temporary { .. } | DnsError::Setup(_))
    }

    /// The enhanced status code (RFC 3463) for a DSN or an SMTP reply about this failure.
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            // RFC 7505 §4.2: mail to a null MX domain is bounced with 5.1.10.
            DnsError::NullMx { .. } => "5.1.10",
            // RFC 3463 §3.2: X.1.2 "Bad destination system address".
            DnsError::NxDomain { .. } | DnsError::InvalidName { .. } => "5.1.2",
            // RFC 3463 §3.5: X.4.4 "Unable to route".
            DnsError::NoAddresses { .. } => "5.4.4",
            // RFC 3463 §3.5: X.4.3 "Directory server failure" (DNS unavailable).
            DnsError::Temporary { .. } | DnsError::Setup(_) => "4.4.3",
        }
    }
}
