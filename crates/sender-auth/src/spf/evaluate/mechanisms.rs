//! Matching the mechanisms of RFC 7208 §5 against the client.

use std::net::IpAddr;

use mail_auth::spf::{Macro, Mechanism};

use super::{Abort, Evaluation, is_within};
use crate::spf::SpfResult;
use crate::spf::macros::query_name;
use crate::spf::record::Term;

impl Evaluation<'_> {
    /// Whether `term`'s mechanism matches the client, in the record of `domain`.
    pub(super) async fn term_matches(
        &mut self,
        term: &Term,
        domain: &str,
        depth: usize,
    ) -> Result<bool, Abort> {
        match &term.mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4 { addr, mask } => Ok(in_network(self.ip, IpAddr::V4(*addr), *mask, 0)),
            Mechanism::Ip6 { addr, mask } => Ok(in_network(self.ip, IpAddr::V6(*addr), 0, *mask)),
            Mechanism::A {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                self.a_matches(term, macro_string, domain, (*ip4_mask, *ip6_mask))
                    .await
            }
            Mechanism::Mx {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                self.mx_matches(term, macro_string, domain, (*ip4_mask, *ip6_mask))
                    .await
            }
            Mechanism::Ptr { macro_string } => self.ptr_matches(term, macro_string, domain).await,
            Mechanism::Exists { macro_string } => {
                self.exists_matches(term, macro_string, domain).await
            }
            Mechanism::Include { macro_string } => {
                self.include_matches(term, macro_string, domain, depth)
                    .await
            }
        }
    }

    /// RFC 7208 §5.3: an address record of the target, of the client's family, in the CIDR.
    async fn a_matches(
        &mut self,
        term: &Term,
        target: &Macro,
        domain: &str,
        masks: (u32, u128),
    ) -> Result<bool, Abort> {
        self.count_dns_term(&term.text)?;
        let Some(name) = self.target_name(target, domain, &term.text).await? else {
            return Ok(false);
        };
        let addresses = self
            .addresses(&name)
            .await
            .map_err(|error| Abort::dns(&term.text, &error))?;
        if addresses.is_empty() {
            self.count_void_lookup(&term.text)?;
        }
        Ok(addresses
            .iter()
            .any(|address| in_network(self.ip, *address, masks.0, masks.1)))
    }

    /// RFC 7208 §5.4: an address of one of the target's MX hosts, in the CIDR.
    async fn mx_matches(
        &mut self,
        term: &Term,
        target: &Macro,
        domain: &str,
        masks: (u32, u128),
    ) -> Result<bool, Abort> {
        self.count_dns_term(&term.text)?;
        let Some(name) = self.target_name(target, domain, &term.text).await? else {
            return Ok(false);
        };
        let exchanges = self
            .dns
            .mx(&name)
            .await
            .map_err(|error| Abort::dns(&term.text, &error))?;
        // RFC 7208 §5.4: no MX records (or a null MX) matches nothing; no fallback to A.
        if exchanges.is_empty() {
            self.count_void_lookup(&term.text)?;
            return Ok(false);
        }
        // RFC 7208 §4.6.4: more than 10 MX names is a permerror, decided before any of their
        // addresses is looked up.
        if exchanges.len() > self.limits.mx_names {
            return Err(Abort::permanent(format!(
                "{}: {name} has {} MX names, more than {}",
                term.text,
                exchanges.len(),
                self.limits.mx_names
            )));
        }
        for exchange in &exchanges {
            let Some(host) = query_name(exchange) else {
                continue;
            };
            let addresses = self
                .addresses(&host)
                .await
                .map_err(|error| Abort::dns(&term.text, &error))?;
            if addresses
                .iter()
                .any(|address| in_network(self.ip, *address, masks.0, masks.1))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// RFC 7208 §5.5: a validated PTR name of the client that is the target or below it.
    async fn ptr_matches(
        &mut self,
        term: &Term,
        target: &Macro,
        domain: &str,
    ) -> Result<bool, Abort> {
        self.count_dns_term(&term.text)?;
        let Some(target) = self.target_name(target, domain, &term.text).await? else {
            return Ok(false);
        };
        // RFC 7208 §5.5: a DNS error on the PTR lookup makes the mechanism not match. An empty
        // answer is not counted as a void lookup: the PTR records belong to the client, not to
        // the domain whose policy is evaluated.
        let Ok(names) = self.dns.ptr(self.ip).await else {
            return Ok(false);
        };
        // RFC 7208 §4.6.4: only the first 10 PTR names are looked at.
        for name in names.iter().take(self.limits.ptr_names) {
            let Some(host) = query_name(name) else {
                continue;
            };
            // Only a name in the target domain can match, so only those are validated: the
            // same answer as validating all of them first, with fewer lookups.
            if !is_within(&host, &target) {
                continue;
            }
            // RFC 7208 §5.5: a DNS error on an address lookup skips that name.
            if let Ok(addresses) = self.addresses(&host).await
                && addresses.contains(&self.ip)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// RFC 7208 §5.7: any A record for the target, whatever the client's address family.
    async fn exists_matches(
        &mut self,
        term: &Term,
        target: &Macro,
        domain: &str,
    ) -> Result<bool, Abort> {
        self.count_dns_term(&term.text)?;
        let Some(name) = self.target_name(target, domain, &term.text).await? else {
            return Ok(false);
        };
        let addresses = self
            .dns
            .ipv4(&name)
            .await
            .map_err(|error| Abort::dns(&term.text, &error))?;
        if addresses.is_empty() {
            self.count_void_lookup(&term.text)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// RFC 7208 §5.2: check_host() of the target; only its pass is a match.
    async fn include_matches(
        &mut self,
        term: &Term,
        target: &Macro,
        domain: &str,
        depth: usize,
    ) -> Result<bool, Abort> {
        self.count_dns_term(&term.text)?;
        let Some(name) = self.target_name(target, domain, &term.text).await? else {
            return Err(Abort::permanent(format!(
                "{}: the target is not a valid domain name",
                term.text
            )));
        };
        let included = self.check_domain(name, depth + 1, false).await;
        let reason = format!("{}: {}", term.text, included.reason);
        // RFC 7208 §5.2: pass matches; fail, softfail and neutral do not; temperror stays a
        // temperror; permerror and none become permerror.
        match included.result {
            SpfResult::Pass => Ok(true),
            SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
            SpfResult::TempError => Err(Abort {
                result: SpfResult::TempError,
                reason,
            }),
            SpfResult::PermError | SpfResult::None => Err(Abort::permanent(reason)),
        }
    }
}

/// Whether `ip` is in the network of `address` with the mask of its family. Families never
/// match across (RFC 7208 §5.6): an IPv4 client is never in an ip6 network.
fn in_network(ip: IpAddr, address: IpAddr, ip4_mask: u32, ip6_mask: u128) -> bool {
    match (ip, address) {
        (IpAddr::V4(ip), IpAddr::V4(address)) => {
            u32::from(ip) & ip4_mask == u32::from(address) & ip4_mask
        }
        (IpAddr::V6(ip), IpAddr::V6(address)) => {
            u128::from(ip) & ip6_mask == u128::from(address) & ip6_mask
        }
        _ => false,
    }
}
