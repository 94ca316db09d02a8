//! The TOML schema as written by users. Every table refuses unknown keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use sealpost_types::Domain;

use crate::{
    AuthRules, CertificateFiles, Config, FailureChoice, LimitsConfig, OutboundConfig,
    SenderAuthConfig, SmtpConfig, StoreConfig, TlsConfig,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub hostname: String,
    pub data_dir: PathBuf,
    pub tls: RawTls,
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub dns: RawDns,
    #[serde(default)]
    pub outbound: RawOutbound,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub smtp: RawSmtp,
    #[serde(default)]
    pub sender_auth: RawSenderAuth,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Further certificates, chosen by SNI: `[[tls.certificate]]` tables.
    #[serde(default)]
    pub certificate: Vec<RawCertificate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    #[serde(default)]
    pub smtp: Vec<String>,
    #[serde(default)]
    pub submission: Vec<String>,
    #[serde(default)]
    pub submissions: Vec<String>,
    #[serde(default)]
    pub imap: Vec<String>,
    #[serde(default)]
    pub imaps: Vec<String>,
    #[serde(default)]
    pub pop3: Vec<String>,
    #[serde(default)]
    pub pop3s: Vec<String>,
}

/// The services of `[listen]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceName {
    Smtp,
    Submission,
    Submissions,
    Imap,
    Imaps,
    Pop3,
    Pop3s,
}

impl ServiceName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Smtp => "smtp",
            ServiceName::Submission => "submission",
            ServiceName::Submissions => "submissions",
            ServiceName::Imap => "imap",
            ServiceName::Imaps => "imaps",
            ServiceName::Pop3 => "pop3",
            ServiceName::Pop3s => "pop3s",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    #[serde(default = "default_backend")]
    pub backend: String,
    pub url: Option<String>,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            backend: default_backend(),
            url: None,
        }
    }
}

fn default_backend() -> String {
    "sqlite".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub nameservers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    #[serde(default = "default_remote_port")]
    pub remote_port: u16,
    pub max_connections: Option<usize>,
    pub max_connections_per_domain: Option<usize>,
    pub delay_warning_secs: Option<u64>,
    pub lifetime_secs: Option<u64>,
    #[serde(default = "default_mta_sts_port")]
    pub mta_sts_port: u16,
    pub ca_file: Option<PathBuf>,
}

impl Default for RawOutbound {
    fn default() -> Self {
        Self {
            remote_port: default_remote_port(),
            max_connections: None,
            max_connections_per_domain: None,
            delay_warning_secs: None,
            lifetime_secs: None,
            mta_sts_port: default_mta_sts_port(),
            ca_file: None,
        }
    }
}

fn default_remote_port() -> u16 {
    25
}

/// RFC 8461 §3.3: the policy is fetched over HTTPS.
fn default_mta_sts_port() -> u16 {
    443
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_sessions_per_user_ip: Option<usize>,
    pub handshake_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub max_message_size: Option<u64>,
    pub max_recipients: Option<usize>,
    pub max_errors: Option<usize>,
    pub max_auth_failures: Option<usize>,
    pub save_sent: Option<bool>,
}

/// `[sender_auth]` and its `[sender_auth.domain."…"]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSenderAuth {
    pub enabled: Option<bool>,
    pub dmarc_reject: Option<String>,
    pub dmarc_quarantine: Option<String>,
    pub defer_on_temperror: Option<bool>,
    pub reject_ambiguous_from: Option<bool>,
    pub trusted_arc_sealers: Option<Vec<String>>,
    #[serde(default)]
    pub domain: std::collections::BTreeMap<String, RawAuthRules>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthRules {
    pub dmarc_reject: Option<String>,
    pub dmarc_quarantine: Option<String>,
    pub defer_on_temperror: Option<bool>,
    pub reject_ambiguous_from: Option<bool>,
    pub trusted_arc_sealers: Option<Vec<String>>,
}

impl RawAuthRules {
    /// These rules over `base`: a key left out keeps the base's value.
    fn over(&self, table: &str, base: &AuthRules) -> Result<AuthRules, String> {
        let choice = |key: &str, value: &Option<String>, default: FailureChoice| {
            match value {
            None => Ok(default),
            Some(text) => FailureChoice::parse(text).ok_or_else(|| {
                format!("{table}.{key}: {text:?} is unknown (expected \"reject\", \"junk\" or \"deliver\")")
            }),
        }
        };
        let trusted_arc_sealers = match &self.trusted_arc_sealers {
            None => base.trusted_arc_sealers.clone(),
            Some(list) => list
                .iter()
                .map(|name| {
                    Domain::parse(name)
                        .map(|domain| domain.as_str().to_ascii_lowercase())
                        .map_err(|error| {
                            format!(
                                "{table}.trusted_arc_sealers: {name:?} is not a domain: {error}"
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(AuthRules {
            dmarc_reject: choice("dmarc_reject", &self.dmarc_reject, base.dmarc_reject)?,
            dmarc_quarantine: choice(
                "dmarc_quarantine",
                &self.dmarc_quarantine,
                base.dmarc_quarantine,
            )?,
            defer_on_temperror: self.defer_on_temperror.unwrap_or(base.defer_on_temperror),
            reject_ambiguous_from: self
                .reject_ambiguous_from
                .unwrap_or(base.reject_ambiguous_from),
            trusted_arc_sealers,
        })
    }
}

impl RawSenderAuth {
    fn validate(&self) -> Result<SenderAuthConfig, String> {
        // serde's flatten does not combine with deny_unknown_fields: the keys are repeated.
        let own = RawAuthRules {
            dmarc_reject: self.dmarc_reject.clone(),
            dmarc_quarantine: self.dmarc_quarantine.clone(),
            defer_on_temperror: self.defer_on_temperror,
            reject_ambiguous_from: self.reject_ambiguous_from,
            trusted_arc_sealers: self.trusted_arc_sealers.clone(),
        };
        let rules = own.over("sender_auth", &AuthRules::default())?;
        let mut domains = Vec::new();
        for (name, raw) in &self.domain {
            let domain = Domain::parse(name)
                .map_err(|error| format!("sender_auth.domain.{name:?}: not a domain: {error}"))?;
            let table = format!("sender_auth.domain.\"{name}\"");
            domains.push((
                domain.as_str().to_ascii_lowercase(),
                raw.over(&table, &rules)?,
            ));
        }
        Ok(SenderAuthConfig {
            enabled: self.enabled.unwrap_or(true),
            rules,
            domains,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 50;
pub const DEFAULT_MAX_SESSIONS_PER_USER_IP: usize = 10;
pub const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
/// `[outbound]`: 100 connections, 10 per domain (Postfix: 100 and 20).
pub const DEFAULT_OUTBOUND_CONNECTIONS: usize = 100;
pub const DEFAULT_OUTBOUND_CONNECTIONS_PER_DOMAIN: usize = 10;
/// RFC 5321 §4.5.4.1: give up after 4-5 days; warn after 4 hours (Postfix's
/// delay_warning_time is off by default; 4 h is Exim's and sendmail's).
pub const DEFAULT_DELAY_WARNING_SECS: u64 = 4 * 3600;
pub const DEFAULT_QUEUE_LIFETIME_SECS: u64 = 5 * 24 * 3600;
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
pub const DEFAULT_MAX_RECIPIENTS: usize = 100;
pub const DEFAULT_MAX_ERRORS: usize = 10;
pub const DEFAULT_MAX_AUTH_FAILURES: usize = 3;
const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn addresses(key: &str, values: &[String]) -> Result<Vec<SocketAddr>, String> {
    values
        .iter()
        .map(|value| {
            value.parse::<SocketAddr>().map_err(|_| {
                format!("listen.{key}: {value:?} is not an \"ip:port\" address (e.g. \"0.0.0.0:25\" or \"[::]:25\")")
            })
        })
        .collect()
}

fn positive(key: &str, value: Option<u64>, default: u64) -> Result<Duration, String> {
    match value {
        Some(0) => Err(format!("limits.{key} must be at least 1")),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Ok(Duration::from_secs(default)),
    }
}

fn at_least_one(key: &str, value: Option<usize>, default: usize) -> Result<usize, String> {
    at_least_one_in("limits", key, value, default)
}

fn at_least_one_in(
    table: &str,
    key: &str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, String> {
    match value {
        Some(0) => Err(format!("{table}.{key} must be at least 1")),
        Some(count) => Ok(count),
        None => Ok(default),
    }
}

impl RawConfig {
    /// Checks values that TOML types cannot express and resolves paths against `base`.
    pub fn validate(self, base: &Path) -> Result<Config, String> {
        let hostname = Domain::parse(&self.hostname).map_err(|error| {
            format!(
                "hostname {:?} is not a valid host name: {error}",
                self.hostname
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir must not be empty".to_string());
        }
        let listen_table = [
            (ServiceName::Smtp, &self.listen.smtp),
            (ServiceName::Submission, &self.listen.submission),
            (ServiceName::Submissions, &self.listen.submissions),
            (ServiceName::Imap, &self.listen.imap),
            (ServiceName::Imaps, &self.listen.imaps),
            (ServiceName::Pop3, &self.listen.pop3),
            (ServiceName::Pop3s, &self.listen.pop3s),
        ];
        let mut listen = Vec::new();
        for (service, values) in listen_table {
            for addr in addresses(service.as_str(), values)? {
                if let Some((other, _)) = listen.iter().find(|(_, existing)| *existing == addr) {
                    let other: &ServiceName = other;
                    return Err(format!(
                        "listen.{}: {addr} is already used by listen.{}",
                        service.as_str(),
                        other.as_str()
                    ));
                }
                listen.push((service, addr));
            }
        }
        let store = match self.store.backend.as_str() {
            "sqlite" => {
                if self.store.url.is_some() {
                    return Err("store.url is only used with backend = \"postgres\"".to_string());
                }
                StoreConfig::Sqlite
            }
            "postgres" => {
                return Err("store.backend \"postgres\" is not available in this version yet; use \"sqlite\"".to_string());
            }
            other => {
                return Err(format!(
                    "store.backend {other:?} is unknown (expected \"sqlite\")"
                ));
            }
        };
        let dns_nameservers = self
            .dns
            .nameservers
            .iter()
            .map(|value| {
                value.parse::<SocketAddr>().map_err(|_| {
                    format!("dns.nameservers: {value:?} is not an \"ip:port\" address")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.outbound.remote_port == 0 {
            return Err("outbound.remote_port must not be 0".to_string());
        }
        let lifetime_secs = self
            .outbound
            .lifetime_secs
            .unwrap_or(DEFAULT_QUEUE_LIFETIME_SECS);
        if lifetime_secs == 0 {
            return Err("outbound.lifetime_secs must be at least 1".to_string());
        }
        if self.outbound.mta_sts_port == 0 {
            return Err("outbound.mta_sts_port must not be 0".to_string());
        }
        let outbound = OutboundConfig {
            remote_port: self.outbound.remote_port,
            mta_sts_port: self.outbound.mta_sts_port,
            ca_file: self
                .outbound
                .ca_file
                .as_deref()
                .map(|path| resolve(base, path)),
            max_connections: at_least_one_in(
                "outbound",
                "max_connections",
                self.outbound.max_connections,
                DEFAULT_OUTBOUND_CONNECTIONS,
            )?,
            max_connections_per_domain: at_least_one_in(
                "outbound",
                "max_connections_per_domain",
                self.outbound.max_connections_per_domain,
                DEFAULT_OUTBOUND_CONNECTIONS_PER_DOMAIN,
            )?,
            // 0: never warn.
            delay_warning: match self
                .outbound
                .delay_warning_secs
                .unwrap_or(DEFAULT_DELAY_WARNING_SECS)
            {
                0 => None,
                seconds => Some(Duration::from_secs(seconds)),
            },
            lifetime: Duration::from_secs(lifetime_secs),
        };
        let limits = LimitsConfig {
            max_connections: at_least_one(
                "max_connections",
                self.limits.max_connections,
                DEFAULT_MAX_CONNECTIONS,
            )?,
            max_connections_per_ip: at_least_one(
                "max_connections_per_ip",
                self.limits.max_connections_per_ip,
                DEFAULT_MAX_CONNECTIONS_PER_IP,
            )?,
            max_sessions_per_user_ip: at_least_one(
                "max_sessions_per_user_ip",
                self.limits.max_sessions_per_user_ip,
                DEFAULT_MAX_SESSIONS_PER_USER_IP,
            )?,
            handshake_timeout: positive(
                "handshake_timeout_secs",
                self.limits.handshake_timeout_secs,
                DEFAULT_HANDSHAKE_TIMEOUT_SECS,
            )?,
            idle_timeout: positive(
                "idle_timeout_secs",
                self.limits.idle_timeout_secs,
                DEFAULT_IDLE_TIMEOUT_SECS,
            )?,
            shutdown_grace: positive(
                "shutdown_grace_secs",
                self.limits.shutdown_grace_secs,
                DEFAULT_SHUTDOWN_GRACE_SECS,
            )?,
        };
        let smtp = SmtpConfig {
            max_message_size: match self.smtp.max_message_size {
                Some(0) => return Err("smtp.max_message_size must be at least 1".to_string()),
                Some(size) => size,
                None => DEFAULT_MAX_MESSAGE_SIZE,
            },
            max_recipients: at_least_one_in(
                "smtp",
                "max_recipients",
                self.smtp.max_recipients,
                DEFAULT_MAX_RECIPIENTS,
            )?,
            max_errors: at_least_one_in(
                "smtp",
                "max_errors",
                self.smtp.max_errors,
                DEFAULT_MAX_ERRORS,
            )?,
            max_auth_failures: at_least_one_in(
                "smtp",
                "max_auth_failures",
                self.smtp.max_auth_failures,
                DEFAULT_MAX_AUTH_FAILURES,
            )?,
            save_sent: self.smtp.save_sent.unwrap_or(true),
        };
        let sender_auth = self.sender_auth.validate()?;
        let log_level = self.log.level.unwrap_or_else(|| "info".to_string());
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            return Err(format!(
                "log.level {log_level:?} is unknown (expected one of {})",
                LOG_LEVELS.join(", ")
            ));
        }
        Ok(Config {
            source: PathBuf::new(),
            hostname,
            data_dir: resolve(base, &self.data_dir),
            tls: TlsConfig {
                default: CertificateFiles {
                    cert: resolve(base, &self.tls.cert),
                    key: resolve(base, &self.tls.key),
                },
                additional: self
                    .tls
                    .certificate
                    .iter()
                    .map(|entry| CertificateFiles {
                        cert: resolve(base, &entry.cert),
                        key: resolve(base, &entry.key),
                    })
                    .collect(),
            },
            listen,
            store,
            dns_nameservers,
            outbound_remote_port: self.outbound.remote_port,
            outbound,
            limits,
            smtp,
            sender_auth,
            log_level,
        })
    }
}
