//! Where mail for a destination domain goes and what TLS each host must offer.
//!
//! [`Router::route`] resolves the MX targets (RFC 5321 §5.1) and then applies, per host:
//! - **DANE** (RFC 7672) when the MX RRset is DNSSEC-secure (§2.2.1) and the host's TLSA
//!   records `_PORT._tcp.HOST` are authenticated: the certificate must match them, no
//!   fallback (§2.2). All records unusable: TLS still required, unauthenticated (§3.1.3 /
//!   §2.2). A bogus or failed TLSA lookup skips the host (§2.2: it may be an attack).
//! - **MTA-STS** (RFC 8461) for hosts without DANE (DANE takes precedence, §2): in `enforce`
//!   mode only the hosts the policy names are tried, with a PKIX-valid certificate (§4.2,
//!   §5); `testing` changes nothing (§5: report only).
//! - Otherwise opportunistic STARTTLS (RFC 7435).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig as TlsConfig;
use rustls::pki_types::CertificateDer;
use sealpost_dns::{
    DaneMatch, DnsError, DnssecStatus, Resolver, SecuredRecord, Target, TlsaRecord, tlsa_match,
};
use sealpost_net::{DaneMatcher, DaneVerdict};
use sealpost_types::Domain;

use crate::deliver::HostTls;
use crate::mta_sts::{Mode, MtaSts, Policy};

/// What applies to one host, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPolicy {
    /// Authenticated TLSA records: DANE.
    Dane,
    /// Authenticated but unusable TLSA records: TLS required, not authenticated.
    DaneUnusable,
    /// In an MTA-STS `enforce` policy: PKIX-verified TLS required.
    MtaSts,
    /// Opportunistic TLS.
    Opportunistic,
}

/// The result of [`Router::route`].
#[derive(Debug, Clone)]
pub struct Route {
    /// The targets to try, in order.
    pub targets: Vec<Target>,
    /// The TLS demanded of particular hosts (for `DeliveryOptions::hosts`).
    pub hosts: HashMap<String, HostTls>,
    /// Per host, what applied.
    pub policies: HashMap<String, HostPolicy>,
    /// The domain's MTA-STS policy, if it has one.
    pub mta_sts: Option<Arc<Policy>>,
    /// Per DANE host, its TLSA records as text (`usage selector matching hex`), for
    /// TLS-RPT's `policy-string` (RFC 8460 §4.4).
    pub tlsa: HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// Policy leaves no host to try (a temporary failure: RFC 8461 §5, RFC 7672 §2.2).
    #[error("{0}")]
    Policy(String),
}

impl RouteError {
    pub fn is_temporary(&self) -> bool {
        match self {
            RouteError::Dns(error) => error.is_temporary(),
            RouteError::Policy(_) => true,
        }
    }

    /// RFC 3463 status of the failure.
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            RouteError::Dns(error) => error.enhanced_status(),
            // X.7.5 "Cryptographic failure" (RFC 3463 §3.8): no host passes the policy.
            RouteError::Policy(_) => "4.7.5",
        }
    }
}

/// The routing of every delivery: DNS, DANE and MTA-STS.
pub struct Router {
    resolver: Resolver,
    /// The port of remote MX hosts (25), which names their TLSA records.
    port: u16,
    mta_sts: Option<MtaSts>,
    /// PKIX verification for MX hosts under MTA-STS `enforce`.
    pkix: Option<Arc<TlsConfig>>,
    /// A configuration that accepts any certificate, for hosts whose TLSA records are all
    /// unusable (TLS still required).
    opportunistic: Arc<TlsConfig>,
    dane: bool,
}

impl Router {
    /// A router without MTA-STS and without DANE: MX routing only.
    pub fn new(resolver: Resolver, port: u16, opportunistic: Arc<TlsConfig>) -> Self {
        Router {
            resolver,
            port,
            mta_sts: None,
            pkix: None,
            opportunistic,
            dane: false,
        }
    }

    /// Enforces MTA-STS: `mta_sts` fetches policies; `pkix` verifies MX certificates.
    pub fn with_mta_sts(mut self, mta_sts: MtaSts, pkix: Arc<TlsConfig>) -> Self {
        self.mta_sts = Some(mta_sts);
        self.pkix = Some(pkix);
        self
    }

    /// Enforces DANE for hosts with authenticated TLSA records.
    pub fn with_dane(mut self) -> Self {
        self.dane = true;
        self
    }

    pub async fn route(&self, domain: &str) -> Result<Route, RouteError> {
        // RFC 5321 §4.1.3: an address literal names the host itself: no MX, no policy.
        if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let ip: IpAddr = literal
                .strip_prefix("IPv6:")
                .unwrap_or(literal)
                .parse()
                .map_err(|_| DnsError::InvalidName {
                    name: domain.to_string(),
                    reason: "not an address literal".to_string(),
                })?;
            return Ok(Route {
                targets: vec![Target {
                    host: ip.to_string(),
                    preference: 0,
                    addresses: vec![ip],
                    implicit: true,
                }],
                hosts: HashMap::new(),
                policies: HashMap::new(),
                mta_sts: None,
                tlsa: HashMap::new(),
            });
        }
        let parsed = Domain::parse(domain).map_err(|error| DnsError::InvalidName {
            name: domain.to_string(),
            reason: error.to_string(),
        })?;
        let (targets, mta_sts) = tokio::join!(self.resolver.delivery_targets(&parsed), async {
            match &self.mta_sts {
                Some(mta_sts) => mta_sts.policy(&self.resolver, domain).await,
                None => None,
            }
        });
        let targets = targets?;
        let mut route = Route {
            targets: Vec::with_capacity(targets.len()),
            hosts: HashMap::new(),
            policies: HashMap::new(),
            mta_sts,
            tlsa: HashMap::new(),
        };
        let secure_mx = self.dane && self.mx_is_secure(domain, &targets).await;
        let mut skipped = Vec::new();
        for target in targets {
            let policy = if secure_mx {
                match self.dane_for(&target.host).await {
                    Ok(Some((policy, tls, records))) => {
                        route.hosts.insert(target.host.clone(), tls);
                        route.tlsa.insert(target.host.clone(), records);
                        Some(policy)
                    }
                    Ok(None) => None,
                    Err(reason) => {
                        skipped.push(format!("{}: {reason}", target.host));
                        continue;
                    }
                }
            } else {
                None
            };
            let policy = match policy {
                Some(policy) => policy,
                None => match (&route.mta_sts, &self.pkix) {
                    (Some(sts), Some(pkix)) if sts.mode == Mode::Enforce => {
                        // RFC 8461 §4.1: a host the policy does not name is not tried.
                        if !sts.matches(&target.host) {
                            skipped
                                .push(format!("{}: not an mx of the MTA-STS policy", target.host));
                            continue;
                        }
                        route.hosts.insert(
                            target.host.clone(),
                            HostTls {
                                tls: Arc::clone(pkix),
                                require_tls: true,
                            },
                        );
                        HostPolicy::MtaSts
                    }
                    _ => HostPolicy::Opportunistic,
                },
            };
            route.policies.insert(target.host.clone(), policy);
            route.targets.push(target);
        }
        if route.targets.is_empty() {
            return Err(RouteError::Policy(format!(
                "no MX host of {domain} passes its TLS policy ({})",
                skipped.join("; ")
            )));
        }
        if !skipped.is_empty() {
            tracing::info!(%domain, skipped = %skipped.join("; "), "MX hosts skipped by policy");
        }
        Ok(route)
    }

    /// RFC 7672 §2.2.1: DANE applies only when the MX RRset (or, without MX, the domain's
    /// address records) is DNSSEC-secure.
    async fn mx_is_secure(&self, domain: &str, targets: &[Target]) -> bool {
        let record = if targets.iter().any(|t| t.implicit) {
            SecuredRecord::A
        } else {
            SecuredRecord::Mx
        };
        matches!(
            self.resolver.dnssec_status(domain, record).await,
            Ok(DnssecStatus::Secure)
        )
    }

    /// The DANE requirement of one host: `None` when it has no (authenticated) TLSA
    /// records, an error when the host must be skipped.
    async fn dane_for(
        &self,
        host: &str,
    ) -> Result<Option<(HostPolicy, HostTls, Vec<String>)>, String> {
        let answer = self
            .resolver
            .tlsa(host, self.port)
            .await
            .map_err(|error| format!("TLSA lookup failed: {error}"))?;
        match answer.dnssec {
            DnssecStatus::Secure if answer.records.is_empty() => Ok(None),
            DnssecStatus::Secure => {
                let text: Vec<String> = answer.records.iter().map(tlsa_text).collect();
                let usable: Vec<TlsaRecord> = answer
                    .records
                    .into_iter()
                    .filter(TlsaRecord::is_usable)
                    .collect();
                if usable.is_empty() {
                    // RFC 7672 §2.2 / §3.1.3: TLS is still mandatory, though unauthenticated.
                    return Ok(Some((
                        HostPolicy::DaneUnusable,
                        HostTls {
                            tls: Arc::clone(&self.opportunistic),
                            require_tls: true,
                        },
                        text,
                    )));
                }
                let matcher: Arc<dyn DaneMatcher> = Arc::new(TlsaMatcher(usable));
                let tls = sealpost_net::dane_client_config(matcher)
                    .map_err(|error| format!("DANE TLS configuration: {error}"))?;
                Ok(Some((
                    HostPolicy::Dane,
                    HostTls {
                        tls: Arc::new(tls),
                        require_tls: true,
                    },
                    text,
                )))
            }
            // RFC 7672 §2.2: a bogus TLSA answer may be an attack: skip the host.
            DnssecStatus::Bogus => Err("TLSA records failed DNSSEC validation".to_string()),
            DnssecStatus::Insecure | DnssecStatus::Indeterminate => Ok(None),
        }
    }
}

/// A TLSA record in presentation form (RFC 6698 §2.2).
fn tlsa_text(record: &TlsaRecord) -> String {
    let hex: String = record.data.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{} {} {} {hex}",
        record.usage, record.selector, record.matching
    )
}

impl Policy {
    /// The policy's lines as published (RFC 8460 §4.4 `policy-string` for `sts`).
    pub fn lines(&self) -> Vec<String> {
        let mode = match self.mode {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        };
        let mut lines = vec!["version: STSv1".to_string(), format!("mode: {mode}")];
        lines.extend(self.mx.iter().map(|mx| format!("mx: {mx}")));
        lines.push(format!("max_age: {}", self.max_age));
        lines
    }
}

/// The TLS-RPT (RFC 8460 §4.4) view of one route's sessions.
impl Route {
    /// `policy-type` and `policy-string` for a host.
    pub fn tls_policy(&self, host: &str) -> (&'static str, Vec<String>) {
        match self.policies.get(host) {
            Some(HostPolicy::Dane | HostPolicy::DaneUnusable) => {
                ("tlsa", self.tlsa.get(host).cloned().unwrap_or_default())
            }
            _ => match &self.mta_sts {
                Some(policy) if policy.mode != Mode::None => ("sts", policy.lines()),
                _ => ("no-policy-found", Vec::new()),
            },
        }
    }
}

/// The TLSA records of one host, matched by the dns crate.
#[derive(Debug)]
struct TlsaMatcher(Vec<TlsaRecord>);

impl DaneMatcher for TlsaMatcher {
    fn verdict(&self, chain: &[CertificateDer<'_>]) -> DaneVerdict {
        match tlsa_match(&self.0, chain) {
            Some(DaneMatch::EndEntity) => DaneVerdict::EndEntity,
            Some(DaneMatch::TrustAnchor { anchor, .. }) => DaneVerdict::TrustAnchor(anchor),
            None => DaneVerdict::NoMatch,
        }
    }
}
