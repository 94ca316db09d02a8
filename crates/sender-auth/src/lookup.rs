//! The DNS questions sender authentication asks, behind one trait: the server answers them
//! with the shared [`sealpost_dns::Resolver`] (timeouts, TTL cache); tests with a
//! [`MemoryZone`] that also logs every question asked.
//!
//! An answer is either records or nothing: NXDOMAIN and NODATA are both empty, which is what
//! SPF counts as a "void lookup" (RFC 7208 §4.6.4). Only a failure to get an answer (timeout,
//! SERVFAIL) is an error, which the checks turn into `temperror`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use async_trait::async_trait;
use sealpost_dns::{DnsError, MxAnswer, Resolver};
use sealpost_types::Domain;

/// No answer could be had for `name` (timeout, SERVFAIL, unreachable server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("temporary DNS failure for {name}: {reason}")]
pub struct TemporaryDnsError {
    pub name: String,
    pub reason: String,
}

/// The lookups of SPF, DMARC and iprev. Names may end with a dot or not, in any case.
#[async_trait]
pub trait DnsLookup: Send + Sync {
    /// The TXT records at `name`, each record's strings joined without separator (RFC 7208
    /// §3.3, RFC 7489 §6.6.3).
    async fn txt(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError>;
    /// The A records at `name`.
    async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, TemporaryDnsError>;
    /// The AAAA records at `name`.
    async fn ipv6(&self, name: &str) -> Result<Vec<Ipv6Addr>, TemporaryDnsError>;
    /// The exchanges of the MX records at `name`, by preference; a null MX gives none.
    async fn mx(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError>;
    /// The names the PTR records of `address` point to.
    async fn ptr(&self, address: IpAddr) -> Result<Vec<String>, TemporaryDnsError>;
    /// Whether `domain` publishes a null MX (RFC 7505 §3: one MX record with the root as
    /// exchange): it sends no mail that could be answered, and accepts none.
    async fn null_mx(&self, domain: &str) -> Result<bool, TemporaryDnsError>;
}

/// A name that cannot be asked (too long, an empty label) has no records.
fn answer<T>(result: Result<Vec<T>, DnsError>) -> Result<Vec<T>, TemporaryDnsError> {
    match result {
        Ok(records) => Ok(records),
        Err(DnsError::InvalidName { .. } | DnsError::NxDomain { .. }) => Ok(Vec::new()),
        Err(DnsError::Temporary { name, reason }) => Err(TemporaryDnsError { name, reason }),
        Err(other) => Err(TemporaryDnsError {
            name: String::new(),
            reason: other.to_string(),
        }),
    }
}

#[async_trait]
impl DnsLookup for Resolver {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError> {
        answer(Resolver::txt(self, name).await)
    }
    async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, TemporaryDnsError> {
        answer(Resolver::ipv4(self, name).await)
    }
    async fn ipv6(&self, name: &str) -> Result<Vec<Ipv6Addr>, TemporaryDnsError> {
        answer(Resolver::ipv6(self, name).await)
    }
    async fn mx(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError> {
        answer(Resolver::mx_exchanges(self, name).await)
    }
    async fn ptr(&self, address: IpAddr) -> Result<Vec<String>, TemporaryDnsError> {
        answer(Resolver::ptr(self, address).await)
    }
    async fn null_mx(&self, domain: &str) -> Result<bool, TemporaryDnsError> {
        let Ok(domain) = Domain::parse(domain.trim_end_matches('.')) else {
            return Ok(false);
        };
        match Resolver::mx(self, &domain).await {
            Ok(MxAnswer::NullMx) => Ok(true),
            Ok(_) => Ok(false),
            Err(DnsError::Temporary { name, reason }) => Err(TemporaryDnsError { name, reason }),
            Err(_) => Ok(false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Txt,
    A,
    Aaaa,
    Mx,
    Ptr,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Txt => "TXT",
            Kind::A => "A",
            Kind::Aaaa => "AAAA",
            Kind::Mx => "MX",
            Kind::Ptr => "PTR",
        }
    }
}

/// An in-memory zone for tests: records by (name, type), names that fail temporarily, and a
/// log of every question in the form `"TXT example.com"`.
#[derive(Debug, Default)]
pub struct MemoryZone {
    records: HashMap<(String, Kind), Vec<String>>,
    failing: Vec<String>,
    asked: Mutex<Vec<String>>,
}

/// Lower case without the final dot: how names are compared.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn ptr_key(address: IpAddr) -> String {
    address.to_string()
}

impl MemoryZone {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, name: &str, kind: Kind, value: String) -> Self {
        self.records
            .entry((key(name), kind))
            .or_default()
            .push(value);
        self
    }

    /// A TXT record (its strings already joined).
    pub fn txt(self, name: &str, value: &str) -> Self {
        self.add(name, Kind::Txt, value.to_string())
    }
    pub fn a(self, name: &str, address: Ipv4Addr) -> Self {
        self.add(name, Kind::A, address.to_string())
    }
    pub fn aaaa(self, name: &str, address: Ipv6Addr) -> Self {
        self.add(name, Kind::Aaaa, address.to_string())
    }
    /// An MX record; records are returned in the order added. An exchange of "." makes a
    /// null MX (RFC 7505) when it is the only one.
    pub fn mx(self, name: &str, exchange: &str) -> Self {
        self.add(name, Kind::Mx, key(exchange))
    }
    pub fn ptr(self, address: IpAddr, target: &str) -> Self {
        self.add(&ptr_key(address), Kind::Ptr, key(target))
    }
    /// Every question about `name` fails temporarily (as SERVFAIL or a timeout would).
    pub fn failing(mut self, name: &str) -> Self {
        self.failing.push(key(name));
        self
    }

    /// The questions asked so far, in order, as `"TYPE name"`.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// How many questions were asked so far.
    pub fn asked_count(&self) -> usize {
        self.asked.lock().map(|log| log.len()).unwrap_or_default()
    }

    fn lookup(&self, name: &str, kind: Kind) -> Result<Vec<String>, TemporaryDnsError> {
        let name = key(name);
        if let Ok(mut log) = self.asked.lock() {
            log.push(format!("{} {name}", kind.label()));
        }
        if self.failing.contains(&name) {
            return Err(TemporaryDnsError {
                name,
                reason: "SERVFAIL".to_string(),
            });
        }
        Ok(self.records.get(&(name, kind)).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl DnsLookup for MemoryZone {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError> {
        self.lookup(name, Kind::Txt)
    }
    async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, TemporaryDnsError> {
        Ok(self
            .lookup(name, Kind::A)?
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect())
    }
    async fn ipv6(&self, name: &str) -> Result<Vec<Ipv6Addr>, TemporaryDnsError> {
        Ok(self
            .lookup(name, Kind::Aaaa)?
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect())
    }
    async fn mx(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError> {
        let mut exchanges = self.lookup(name, Kind::Mx)?;
        // The root (".", kept as "") is no host.
        exchanges.retain(|exchange| !exchange.is_empty());
        Ok(exchanges)
    }
    async fn null_mx(&self, domain: &str) -> Result<bool, TemporaryDnsError> {
        let exchanges = self.lookup(domain, Kind::Mx)?;
        Ok(matches!(exchanges.as_slice(), [root] if root.is_empty()))
    }
    async fn ptr(&self, address: IpAddr) -> Result<Vec<String>, TemporaryDnsError> {
        self.lookup(&ptr_key(address), Kind::Ptr)
    }
}
