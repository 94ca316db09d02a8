//! The resolver: MX routing (RFC 5321 §5.1, RFC 7505), TXT, and DNSSEC-validated TLSA
//! (RFC 7672) over hickory-resolver.
//!
//! Two hickory resolvers share the configured name servers:
//! - `plain` answers routing questions (MX, A/AAAA, TXT). It does not validate DNSSEC, so
//!   delivery never depends on whether the upstream server passes DNSSEC records through.
//!   It is also the one handed to mail-auth ([`Resolver::hickory`]).
//! - `validating` runs hickory's own DNSSEC validator (RRSIG/DNSKEY/DS chain from the IANA
//!   root trust anchors, NSEC/NSEC3 denial) and answers the DANE questions: TLSA and the
//!   DNSSEC status of MX and address records (RFC 7672 §2.1–2.2).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use sealpost_types::Domain;
use tokio::task::JoinSet;

use crate::dane::{DnssecStatus, TlsaRecord};
use crate::error::DnsError;

/// At most this many MX hosts are resolved for one destination (after sorting): a domain
/// publishing hundreds of MX records must not turn one delivery into hundreds of lookups.
/// Postfix stops at 5 addresses by default (`smtp_mx_address_limit`).
pub const MAX_MX_HOSTS: usize = 16;

/// Timeouts and trust anchors. The defaults suit production.
#[derive(Clone)]
pub struct ResolverOptions {
    /// How long one query to one name server may take (default 5 s).
    pub timeout: Duration,
    /// How many times a query is sent before giving up (default 2).
    pub attempts: usize,
    /// DNSSEC trust anchors; `None` means the IANA root keys compiled into hickory
    /// (KSK-2017 and KSK-2024). Tests put the key of a signed test zone here.
    pub trust_anchors: Option<Arc<TrustAnchors>>,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            timeout: Duration::from_secs(5),
            attempts: 2,
            trust_anchors: None,
        }
    }
}

impl std::fmt::Debug for ResolverOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverOptions")
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("custom_trust_anchors", &self.trust_anchors.is_some())
            .finish()
    }
}

/// One MX record (RFC 1035 §3.3.9), the exchange in lower case without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    pub preference: u16,
    pub host: String,
}

/// The answer to "where does mail for this domain go?" before addresses are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// MX hosts by ascending preference, shuffled among equal preferences (RFC 5321 §5.1).
    Hosts(Vec<MxHost>),
    /// A single MX with the root as exchange: the domain accepts no mail (RFC 7505 §3).
    NullMx,
    /// The domain exists but has no MX (NODATA): the domain itself is the implicit MX
    /// (RFC 5321 §5.1).
    NoMx,
    /// The domain does not exist (NXDOMAIN).
    NxDomain,
}

/// One host a delivery attempt may connect to, with its addresses (IPv6 first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The MX exchange (or the domain itself for an implicit MX), lower case, no final dot.
    /// This is the name TLS certificates and TLSA records are checked against.
    pub host: String,
    pub preference: u16,
    /// AAAA then A addresses; never empty.
    pub addresses: Vec<IpAddr>,
    /// True when there was no MX and the domain itself is the target (RFC 5321 §5.1).
    pub implicit: bool,
}

/// TLSA records for one service and whether DNSSEC vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaAnswer {
    /// The records found (empty for NXDOMAIN/NODATA). For a `Bogus` answer these come from the
    /// non-validating resolver and are for reporting only (TLS-RPT).
    pub records: Vec<TlsaRecord>,
    /// The DNSSEC status of the TLSA RRset, or of its denial of existence.
    pub dnssec: DnssecStatus,
}

impl TlsaAnswer {
    /// Only authenticated TLSA records count (RFC 7672 §2.2, RFC 6698 §4.1): anything but
    /// `Secure` means "no DANE" — except `Bogus`, which the caller treats as a temporary
    /// failure when the server's address records were secure (RFC 7672 §2.2).
    pub fn authenticated(&self) -> bool {
        self.dnssec == DnssecStatus::Secure
    }
}

/// The record types whose DNSSEC status DANE needs (RFC 7672 §2.2.1, §2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecuredRecord {
    Mx,
    A,
    Aaaa,
}

/// The one resolver of the process, shared by the queue and sender-auth.
#[derive(Clone)]
pub struct Resolver {
    plain: TokioResolver,
    validating: TokioResolver,
    /// Upper bound for one lookup, whatever hickory does inside (retries, several servers).
    deadline: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Records(Lookup),
    NoData,
    NxDomain,
}

impl Resolver {
    /// The resolver for `[dns] nameservers` of the configuration (CONTRACT.md); an empty list
    /// means the system's `/etc/resolv.conf`.
    pub fn from_config(config: &sealpost_config::Config) -> Result<Self, DnsError> {
        Self::new(&config.dns_nameservers, ResolverOptions::default())
    }

    /// A resolver asking `nameservers` (UDP, then TCP for truncated answers), or the system's
    /// name servers when the list is empty.
    pub fn new(nameservers: &[SocketAddr], options: ResolverOptions) -> Result<Self, DnsError> {
        let config = if nameservers.is_empty() {
            let (config, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|err| DnsError::Setup(format!("/etc/resolv.conf: {err}")))?;
            config
        } else {
            let servers = nameservers
                .iter()
                .map(|address| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = address.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = address.port();
                    NameServerConfig::new(address.ip(), true, vec![udp, tcp])
                })
                .collect();
            ResolverConfig::from_name_servers(servers)
        };
        let server_count = config.name_servers().len().max(1);
        let attempts = options.attempts.max(1);

        let mut opts = ResolverOpts::default();
        opts.timeout = options.timeout;
        opts.attempts = attempts;
        // Mail routing follows the DNS only, never /etc/hosts (as Postfix's default
        // smtp_host_lookup = dns).
        opts.use_hosts_file = ResolveHosts::Never;
        // Every name we ask is fully qualified: no search list, no ndots games.
        opts.ndots = 0;

        let plain =
            TokioResolver::builder_with_config(config.clone(), TokioRuntimeProvider::default())
                .with_options(opts.clone())
                .build()
                .map_err(|err| DnsError::Setup(err.to_string()))?;

        let mut validating_opts = opts;
        validating_opts.validate = true;
        let trust_anchors = options
            .trust_anchors
            .clone()
            .unwrap_or_else(|| Arc::new(TrustAnchors::default()));
        let validating =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(validating_opts)
                .with_trust_anchor(trust_anchors)
                .build()
                .map_err(|err| DnsError::Setup(err.to_string()))?;

        // Each server may be tried `attempts` times; DNSSEC validation adds a few chained
        // queries (DNSKEY, DS), which mostly hit the cache. One timeout of slack on top.
        let per_query = options.timeout.saturating_mul(attempts as u32);
        let deadline = per_query
            .saturating_mul(server_count as u32)
            .saturating_add(options.timeout);
        Ok(Resolver {
            plain,
            validating,
            deadline,
        })
    }

    /// The non-validating hickory resolver (with its cache), for libraries that take one:
    /// `mail_auth::MessageAuthenticator(resolver.hickory().clone())`.
    pub fn hickory(&self) -> &TokioResolver {
        &self.plain
    }

    /// The MX records of `domain` (RFC 5321 §5.1).
    pub async fn mx(&self, domain: &Domain) -> Result<MxAnswer, DnsError> {
        let name = fqdn(domain.as_str())?;
        let outcome = classify(
            domain.as_str(),
            bounded(self.deadline, self.plain.lookup(name, RecordType::MX)).await,
        )?;
        let lookup = match outcome {
            Outcome::NxDomain => return Ok(MxAnswer::NxDomain),
            Outcome::NoData => return Ok(MxAnswer::NoMx),
            Outcome::Records(lookup) => lookup,
        };
        let records: Vec<(u16, &Name)> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some((mx.preference, &mx.exchange)),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            // Only a CNAME chain came back, without MX at its end: NODATA.
            return Ok(MxAnswer::NoMx);
        }
        // RFC 7505 §3: a null MX is a single MX whose exchange is the root (".").
        if let [(_, exchange)] = records.as_slice()
            && exchange.is_root()
        {
            return Ok(MxAnswer::NullMx);
        }
        // RFC 7505 §3 forbids a null MX beside other MX records; should one appear anyway, the
        // root is no host to connect to and the other records are used.
        let mut hosts: Vec<MxHost> = records
            .into_iter()
            .filter(|(_, exchange)| !exchange.is_root())
            .map(|(preference, exchange)| MxHost {
                preference,
                host: host_name(exchange),
            })
            .collect();
        // A host listed twice is tried once, at its best preference.
        hosts.sort_by_key(|host| host.preference);
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|host| seen.insert(host.host.clone()));
        // RFC 5321 §5.1: "If there are multiple destinations with the same preference and
        // there is no clear reason to favor one ..., the SMTP client SHOULD pick one at
        // random": shuffle all, then a stable sort keeps the random order within a preference.
        hosts.shuffle(&mut rand::rng());
        hosts.sort_by_key(|host| host.preference);
        Ok(MxAnswer::Hosts(hosts))
    }

    /// The ordered hosts a delivery to `domain` tries, each with its addresses.
    ///
    /// MX hosts by preference (random among equals), or the domain itself when it has no MX
    /// (RFC 5321 §5.1 implicit MX). An MX host without addresses is skipped; only when no host
    /// has any address does the lookup fail: temporarily if any lookup failed temporarily,
    /// permanently ([`DnsError::NoAddresses`]) otherwise. A null MX is
    /// [`DnsError::NullMx`] (RFC 7505 §4: bounce with 5.1.10), a missing domain
    /// [`DnsError::NxDomain`].
    pub async fn delivery_targets(&self, domain: &Domain) -> Result<Vec<Target>, DnsError> {
        let hosts = match self.mx(domain).await? {
            MxAnswer::NullMx => {
                return Err(DnsError::NullMx {
                    domain: domain.to_string(),
                });
            }
            MxAnswer::NxDomain => {
                return Err(DnsError::NxDomain {
                    domain: domain.to_string(),
                });
            }
            MxAnswer::NoMx => {
                // RFC 5321 §5.1: no MX, so the domain is "treated as if it was associated
                // with an implicit MX RR, with a preference of 0, pointing to that host".
                let addresses = self.addresses(domain.as_str()).await?;
                if addresses.is_empty() {
                    return Err(DnsError::NoAddresses {
                        domain: domain.to_string(),
                    });
                }
                return Ok(vec![Target {
                    host: domain.to_string(),
                    preference: 0,
                    addresses,
                    implicit: true,
                }]);
            }
            MxAnswer::Hosts(hosts) => hosts,
        };

        let mut lookups = JoinSet::new();
        for (index, host) in hosts.iter().take(MAX_MX_HOSTS).enumerate() {
            let resolver = self.plain.clone();
            let deadline = self.deadline;
            let name = host.host.clone();
            lookups
                .spawn(async move { (index, resolve_addresses(&resolver, deadline, &name).await) });
        }
        let mut resolved: Vec<Option<Result<Vec<IpAddr>, DnsError>>> =
            vec![None; hosts.len().min(MAX_MX_HOSTS)];
        while let Some(joined) = lookups.join_next().await {
            if let Ok((index, result)) = joined
                && let Some(slot) = resolved.get_mut(index)
            {
                *slot = Some(result);
            }
        }

        let mut targets = Vec::new();
        let mut temporary: Option<DnsError> = None;
        for (host, result) in hosts.into_iter().zip(resolved) {
            match result {
                Some(Ok(addresses)) if !addresses.is_empty() => targets.push(Target {
                    host: host.host,
                    preference: host.preference,
                    addresses,
                    implicit: false,
                }),
                // An MX host that does not resolve is skipped, not fatal.
                Some(Ok(_)) => {
                    tracing::debug!(host = %host.host, %domain, "MX host has no address");
                }
                Some(Err(err)) => {
                    tracing::debug!(host = %host.host, %domain, %err, "MX host lookup failed");
                    if err.is_temporary() {
                        temporary.get_or_insert(err);
                    }
                }
                None => {
                    temporary.get_or_insert(DnsError::Temporary {
                        name: host.host.clone(),
                        reason: "the address lookup did not finish".to_string(),
                    });
                }
            }
        }
        if targets.is_empty() {
            return Err(temporary.unwrap_or_else(|| DnsError::NoAddresses {
                domain: domain.to_string(),
            }));
        }
        Ok(targets)
    }

    /// The addresses of `host`, AAAA before A, CNAMEs followed. Empty when the name has no
    /// address (NODATA or NXDOMAIN); an error only when a lookup failed temporarily and the
    /// other family gave nothing.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        resolve_addresses(&self.plain, self.deadline, host).await
    }

    /// The IPv4 addresses (A records) of `host`, CNAMEs followed; empty when it has none
    /// (NODATA or NXDOMAIN). SPF (RFC 7208 §5.3) asks one family, the client's.
    pub async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.answers(host, RecordType::A, |data| match data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// The IPv6 addresses (AAAA records) of `host`; empty when it has none.
    pub async fn ipv6(&self, host: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        self.answers(host, RecordType::AAAA, |data| match data {
            RData::AAAA(aaaa) => Some(aaaa.0),
            _ => None,
        })
        .await
    }

    /// The exchanges of the MX records at `name` by preference, as written (a null MX gives
    /// no exchange); empty when there are none. Unlike [`Resolver::mx`] this takes any name,
    /// such as an SPF macro expansion (RFC 7208 §5.4), and does not shuffle.
    pub async fn mx_exchanges(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let mut exchanges = self
            .answers(name, RecordType::MX, |data| match data {
                RData::MX(mx) if !mx.exchange.is_root() => {
                    Some((mx.preference, host_name(&mx.exchange)))
                }
                _ => None,
            })
            .await?;
        exchanges.sort_by_key(|(preference, _)| *preference);
        Ok(exchanges.into_iter().map(|(_, host)| host).collect())
    }

    /// The names of the PTR records for `address` (RFC 1035 §3.5, RFC 3596 §2.5); empty when
    /// there are none.
    pub async fn ptr(&self, address: IpAddr) -> Result<Vec<String>, DnsError> {
        let query = Name::from(address);
        let shown = query.to_ascii();
        self.answers_at(query, &shown, RecordType::PTR, |data| match data {
            RData::PTR(ptr) => Some(host_name(&ptr.0)),
            _ => None,
        })
        .await
    }

    /// What `pick` takes from the answer records of one type at `name` (CNAMEs are in the
    /// answer too); empty on NODATA or NXDOMAIN.
    async fn answers<T>(
        &self,
        name: &str,
        record_type: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Vec<T>, DnsError> {
        self.answers_at(fqdn(name)?, name, record_type, pick).await
    }

    /// [`Resolver::answers`] for a name already on the wire (`shown` names it in errors).
    async fn answers_at<T>(
        &self,
        query: Name,
        shown: &str,
        record_type: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Vec<T>, DnsError> {
        let outcome = classify(
            shown,
            bounded(self.deadline, self.plain.lookup(query, record_type)).await,
        )?;
        Ok(match outcome {
            Outcome::Records(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| pick(&record.data))
                .collect(),
            Outcome::NoData | Outcome::NxDomain => Vec::new(),
        })
    }

    /// The TXT records at `name`, the strings of each record joined (RFC 7208 §3.3 and
    /// RFC 8461 §3.1 read a record as the concatenation of its strings). Empty when the name
    /// has none (NODATA or NXDOMAIN).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.answers(name, RecordType::TXT, |data| match data {
            RData::TXT(txt) => {
                let joined: Vec<u8> = txt.txt_data.iter().flatten().copied().collect();
                Some(String::from_utf8_lossy(&joined).into_owned())
            }
            _ => None,
        })
        .await
    }

    /// The TLSA records of a TCP service on `host` (RFC 7672 §2.2: `_25._tcp.<MX host>`),
    /// looked up through the validating resolver.
    pub async fn tlsa(&self, host: &str, port: u16) -> Result<TlsaAnswer, DnsError> {
        let host = host.trim_end_matches('.');
        // RFC 6698 §3: the TLSA owner name is _<port>._<protocol>.<base domain>.
        let owner = format!("_{port}._tcp.{host}");
        let (records, dnssec) = self.validated(&owner, RecordType::TLSA).await?;
        let records = if dnssec == DnssecStatus::Bogus {
            // The validator discards a bogus answer; fetch the records without validation so
            // that a failure report (RFC 8460 "tlsa-invalid") can show them.
            let query = fqdn(&owner)?;
            match classify(
                &owner,
                bounded(self.deadline, self.plain.lookup(query, RecordType::TLSA)).await,
            ) {
                Ok(Outcome::Records(lookup)) => lookup.answers().to_vec(),
                _ => Vec::new(),
            }
        } else {
            records
        };
        let records = records
            .iter()
            .filter_map(|record| match &record.data {
                RData::TLSA(tlsa) => Some(TlsaRecord {
                    usage: u8::from(tlsa.cert_usage),
                    selector: u8::from(tlsa.selector),
                    matching: u8::from(tlsa.matching),
                    data: tlsa.cert_data.clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(TlsaAnswer { records, dnssec })
    }

    /// The DNSSEC status of an RRset (or of its non-existence), as DANE needs it for the MX
    /// RRset (RFC 7672 §2.2.1) and the MX host's address records (RFC 7672 §2.2.2).
    pub async fn dnssec_status(
        &self,
        name: &str,
        record: SecuredRecord,
    ) -> Result<DnssecStatus, DnsError> {
        let record_type = match record {
            SecuredRecord::Mx => RecordType::MX,
            SecuredRecord::A => RecordType::A,
            SecuredRecord::Aaaa => RecordType::AAAA,
        };
        let (_, status) = self.validated(name, record_type).await?;
        Ok(status)
    }

    /// A lookup through the validating resolver: the answer records (CNAMEs included) and
    /// the status of the whole answer. A bogus answer is reported as `Bogus`, not as an error.
    async fn validated(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<(Vec<Record>, DnssecStatus), DnsError> {
        let query = fqdn(name)?;
        let result = bounded(self.deadline, self.validating.lookup(query, record_type)).await;
        match result {
            Ok(lookup) => {
                let records: Vec<Record> = lookup
                    .answers()
                    .iter()
                    .filter(|record| record.record_type() != RecordType::RRSIG)
                    .cloned()
                    .collect();
                let status = combined_status(records.iter().map(|record| record.proof));
                Ok((records, status))
            }
            Err(NetError::Dns(HickoryDnsError::NoRecordsFound(no_records))) => {
                // RFC 4035 §5.4: a denial of existence is as secure as its NSEC/NSEC3 proof.
                let status = no_records
                    .authorities
                    .as_deref()
                    .map(|records| {
                        combined_status(
                            records
                                .iter()
                                .filter(|record| record.record_type() != RecordType::RRSIG)
                                .map(|record| record.proof),
                        )
                    })
                    .unwrap_or(DnssecStatus::Indeterminate);
                Ok((Vec::new(), status))
            }
            Err(NetError::Dns(HickoryDnsError::DnssecBogus)) => {
                Ok((Vec::new(), DnssecStatus::Bogus))
            }
            Err(NetError::Dns(HickoryDnsError::Nsec { proof, .. })) => {
                Ok((Vec::new(), status_of(proof)))
            }
            Err(err) => Err(temporary(name, &err)),
        }
    }
}

/// AAAA and A lookups of `host` side by side; IPv6 first.
async fn resolve_addresses(
    resolver: &TokioResolver,
    deadline: Duration,
    host: &str,
) -> Result<Vec<IpAddr>, DnsError> {
    let name = fqdn(host)?;
    let (v6, v4) = tokio::join!(
        bounded(deadline, resolver.lookup(name.clone(), RecordType::AAAA)),
        bounded(deadline, resolver.lookup(name, RecordType::A)),
    );
    let mut addresses = Vec::new();
    let mut failure = None;
    for result in [v6, v4] {
        match classify(host, result) {
            Ok(Outcome::Records(lookup)) => {
                for record in lookup.answers() {
                    let address = match &record.data {
                        RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                        RData::A(a) => IpAddr::V4(a.0),
                        _ => continue,
                    };
                    if !addresses.contains(&address) {
                        addresses.push(address);
                    }
                }
            }
            Ok(Outcome::NoData | Outcome::NxDomain) => {}
            Err(err) => {
                failure.get_or_insert(err);
            }
        }
    }
    match failure {
        // One family answered: usable now, even if the other failed.
        Some(err) if addresses.is_empty() => Err(err),
        _ => Ok(addresses),
    }
}

/// Runs a hickory lookup with an upper bound on its duration.
async fn bounded(
    deadline: Duration,
    lookup: impl Future<Output = Result<Lookup, NetError>>,
) -> Result<Lookup, NetError> {
    match tokio::time::timeout(deadline, lookup).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout),
    }
}

/// Sorts a hickory result into records, NODATA, NXDOMAIN, or a temporary failure.
fn classify(name: &str, result: Result<Lookup, NetError>) -> Result<Outcome, DnsError> {
    match result {
        Ok(lookup) if lookup.answers().is_empty() => Ok(Outcome::NoData),
        Ok(lookup) => Ok(Outcome::Records(lookup)),
        Err(NetError::Dns(HickoryDnsError::NoRecordsFound(no_records))) => {
            if no_records.response_code == ResponseCode::NXDomain {
                Ok(Outcome::NxDomain)
            } else {
                Ok(Outcome::NoData)
            }
        }
        // SERVFAIL, REFUSED, timeouts, unreachable servers: RFC 5321 §4.5.4.1 retry later.
        Err(err) => Err(temporary(name, &err)),
    }
}

fn temporary(name: &str, err: &NetError) -> DnsError {
    DnsError::Temporary {
        name: name.to_string(),
        reason: err.to_string(),
    }
}

/// `name` as an absolute DNS name (a final dot is added when missing).
fn fqdn(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(DnsError::InvalidName {
            name: name.to_string(),
            reason: "empty name".to_string(),
        });
    }
    Name::from_ascii(format!("{trimmed}.")).map_err(|err| DnsError::InvalidName {
        name: name.to_string(),
        reason: err.to_string(),
    })
}

/// A DNS name as a host name: lower case, without the final dot.
fn host_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn status_of(proof: Proof) -> DnssecStatus {
    match proof {
        Proof::Secure => DnssecStatus::Secure,
        Proof::Insecure => DnssecStatus::Insecure,
        Proof::Bogus => DnssecStatus::Bogus,
        Proof::Indeterminate => DnssecStatus::Indeterminate,
    }
}

/// The status of a set of records: secure only if every record is (RFC 4035 §4.3).
fn combined_status(proofs: impl Iterator<Item = Proof>) -> DnssecStatus {
    let mut combined: Option<DnssecStatus> = None;
    for proof in proofs {
        let status = status_of(proof);
        combined = Some(match (combined, status) {
            (None, status) => status,
            (Some(DnssecStatus::Bogus), _) | (_, DnssecStatus::Bogus) => DnssecStatus::Bogus,
            (Some(DnssecStatus::Indeterminate), _) | (_, DnssecStatus::Indeterminate) => {
                DnssecStatus::Indeterminate
            }
            (Some(DnssecStatus::Insecure), _) | (_, DnssecStatus::Insecure) => {
                DnssecStatus::Insecure
            }
            (Some(DnssecStatus::Secure), DnssecStatus::Secure) => DnssecStatus::Secure,
        });
    }
    combined.unwrap_or(DnssecStatus::Indeterminate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_status_is_secure_only_when_all_are() {
        use Proof::*;
        assert_eq!(
            combined_status([Secure, Secure].into_iter()),
            DnssecStatus::Secure
        );
        assert_eq!(
            combined_status([Secure, Insecure].into_iter()),
            DnssecStatus::Insecure
        );
        assert_eq!(
            combined_status([Insecure, Bogus, Secure].into_iter()),
            DnssecStatus::Bogus
        );
        assert_eq!(
            combined_status([Secure, Indeterminate].into_iter()),
            DnssecStatus::Indeterminate
        );
        assert_eq!(
            combined_status(std::iter::empty()),
            DnssecStatus::Indeterminate
        );
    }

    #[test]
    fn names_are_made_absolute() {
        assert_eq!(
            fqdn("example.com").map(|n| n.to_ascii()),
            Ok("example.com.".to_string())
        );
        assert_eq!(
            fqdn("_25._tcp.mx.example.com.").map(|n| n.to_ascii()),
            Ok("_25._tcp.mx.example.com.".to_string())
        );
        assert!(matches!(fqdn("."), Err(DnsError::InvalidName { .. })));
        assert!(matches!(
            fqdn(&"a".repeat(64)),
            Err(DnsError::InvalidName { .. })
        ));
    }

    #[test]
    fn host_names_lose_the_final_dot_and_case() {
        let name = Name::from_ascii("MX1.Example.COM.").unwrap();
        assert_eq!(host_name(&name), "mx1.example.com");
    }
}
