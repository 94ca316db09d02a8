//! The configuration file (CONTRACT.md): TOML, unknown keys refused, relative paths resolved
//! against the file's folder, safe defaults. Loading yields an immutable [`Config`].
#![forbid(unsafe_code)]

mod schema;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealpost_types::Domain;

pub use schema::{RawConfig, ServiceName};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A validated configuration with absolute paths.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    pub hostname: Domain,
    pub data_dir: PathBuf,
    pub tls: TlsConfig,
    pub listen: Vec<(ServiceName, SocketAddr)>,
    pub store: StoreConfig,
    pub dns_nameservers: Vec<SocketAddr>,
    pub outbound_remote_port: u16,
    pub outbound: OutboundConfig,
    pub limits: LimitsConfig,
    pub smtp: SmtpConfig,
    pub sender_auth: SenderAuthConfig,
    pub log_level: String,
}

/// `[sender_auth]`: checks on mail arriving on port 25 (SPF, DKIM, DMARC, ARC) and what a
/// DMARC failure leads to, with `[sender_auth.domain."…"]` overrides per receiving domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderAuthConfig {
    /// Off: no checks and no Authentication-Results on port 25.
    pub enabled: bool,
    /// The rules of every receiving domain without its own table.
    pub rules: AuthRules,
    /// (domain in lower case, its rules) for the domains with a table.
    pub domains: Vec<(String, AuthRules)>,
}

impl Default for SenderAuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: AuthRules::default(),
            domains: Vec::new(),
        }
    }
}

impl SenderAuthConfig {
    /// The rules for mail to `domain`.
    pub fn rules_for(&self, domain: &str) -> &AuthRules {
        self.domains
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(domain.trim_end_matches('.')))
            .map_or(&self.rules, |(_, rules)| rules)
    }
}

/// What a DMARC failure leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureChoice {
    Reject,
    Junk,
    Deliver,
}

impl FailureChoice {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reject" => Some(FailureChoice::Reject),
            "junk" => Some(FailureChoice::Junk),
            "deliver" => Some(FailureChoice::Deliver),
            _ => None,
        }
    }
}

/// The rules of one receiving domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRules {
    /// A DMARC failure where the sender's domain publishes p=reject (default: reject).
    pub dmarc_reject: FailureChoice,
    /// A DMARC failure under p=quarantine (default: junk).
    pub dmarc_quarantine: FailureChoice,
    /// 451 when a DNS failure leaves the DMARC outcome open (default: true).
    pub defer_on_temperror: bool,
    /// Refuse messages with several From fields, or a From naming several domains or none
    /// (default: true).
    pub reject_ambiguous_from: bool,
    /// Forwarders whose valid ARC seal overrides a DMARC failure (default: none).
    pub trusted_arc_sealers: Vec<String>,
}

impl Default for AuthRules {
    fn default() -> Self {
        Self {
            dmarc_reject: FailureChoice::Reject,
            dmarc_quarantine: FailureChoice::Junk,
            defer_on_temperror: true,
            reject_ambiguous_from: true,
            trusted_arc_sealers: Vec::new(),
        }
    }
}

/// `[smtp]`: limits and behaviour of the SMTP service.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Largest message accepted, in octets (SIZE, RFC 1870).
    pub max_message_size: u64,
    /// Recipients per message; more get 452 4.5.3.
    pub max_recipients: usize,
    /// Client errors per session before 421 and close.
    pub max_errors: usize,
    /// Failed AUTH attempts per session before 421 and close.
    pub max_auth_failures: usize,
    /// File a copy of each message a user submits (587/465) in their Sent mailbox, marked
    /// \Seen; the copy their client APPENDs right after is then not stored again.
    pub save_sent: bool,
}

#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub default: CertificateFiles,
    /// Further certificates, chosen by SNI.
    pub additional: Vec<CertificateFiles>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite,
}

/// `[outbound]`: the delivery of queued mail to other domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// TCP port of remote MX hosts (25; another only in tests).
    pub remote_port: u16,
    /// HTTPS port of MTA-STS policy hosts (443; another only in tests).
    pub mta_sts_port: u16,
    /// CA certificates trusted besides the system's for MTA-STS (policy hosts and MX hosts).
    pub ca_file: Option<PathBuf>,
    /// Connections open at once to all remote hosts.
    pub max_connections: usize,
    /// Connections open at once to one destination domain.
    pub max_connections_per_domain: usize,
    /// The sender is told once when a message still waits this long; `None`: never.
    pub delay_warning: Option<Duration>,
    /// Queued mail is bounced this long after it was accepted.
    pub lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// IMAP sessions of one account from one address at a time (Dovecot's
    /// `mail_max_userip_connections`).
    pub max_sessions_per_user_ip: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Validates configuration text as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|error| invalid(describe_toml_error(text, &error)))?;
        let base = config_folder(path);
        let mut config = raw.validate(&base).map_err(invalid)?;
        config.source = path.to_path_buf();
        Ok(config)
    }
}

/// The folder relative paths are resolved against: the config file's own folder, made
/// absolute so that the server does not depend on its working directory.
fn config_folder(path: &Path) -> PathBuf {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&folder).unwrap_or(folder)
}

/// One line naming where and what: "line 5 in [tls]: unknown field `colour`, expected ...".
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    let Some(span) = error.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let error_line = text.lines().nth(line - 1).unwrap_or("").trim_start();
    if error_line.starts_with('[') {
        // The error is about a table header itself, which lives at the top level.
        return format!("line {line}: {message}");
    }
    // The table the offending key sits in: the last [header] above it.
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .map(|header| format!(" in {header}"))
        .unwrap_or_default();
    format!("line {line}{table}: {message}")
}

#[cfg(test)]
mod tests;
