//! Inbound sender authentication for mail arriving on port 25: SPF (RFC 7208), DKIM
//! (RFC 6376, RFC 8463), DMARC (RFC 7489), ARC (RFC 8617) and iprev (RFC 8601 §3), reported
//! in an Authentication-Results header field (RFC 8601), and the receiving domain's policy
//! that turns the verdicts into a disposition ([`policy::decide`]).
//!
//! The SMTP service starts [`SenderAuth::spf`] when MAIL FROM arrives (once per transaction,
//! never per recipient, SECURITY-TESTS DA-07) and calls [`SenderAuth::assess`] with the
//! message at the end of DATA. DNS goes through one [`DnsLookup`] (the shared resolver, with
//! its timeouts and TTL cache); DKIM and ARC keys through mail-auth with a [`KeyCache`].
#![forbid(unsafe_code)]

pub mod arc;
mod cache;
pub mod dkim;
pub mod dmarc;
pub mod fields;
pub mod iprev;
pub mod lookup;
pub mod policy;
pub mod report;
pub mod results;
pub mod spf;

use std::net::IpAddr;
use std::sync::Arc;

use mail_auth::{AuthenticatedMessage, MessageAuthenticator};
use rand::Rng;

pub use arc::{ArcResult, ArcVerdict};
pub use cache::KeyCache;
pub use dkim::{DkimResult, DkimVerdict};
pub use dmarc::{DmarcResult, DmarcVerdict};
pub use iprev::{IprevResult, IprevVerdict};
pub use lookup::{DnsLookup, MemoryZone, TemporaryDnsError};
pub use policy::Disposition;
pub use sealpost_config::{AuthRules, FailureChoice, SenderAuthConfig};
pub use spf::{SpfLimits, SpfResult, SpfVerdict};

/// How long one check (SPF; DKIM; ARC; iprev; the DMARC record) may take in all, whatever
/// the DNS does: past it, the check gives temperror. Checks run side by side, so this is
/// also about the longest the end of DATA waits for them.
pub const CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// At most this many passes over the body (distinct body canonicalization, hash and `l=`
/// among the signatures); a message asking for more has its ARC chain left unchecked (failed).
/// DKIM alone, at most [`dkim::MAX_SIGNATURES`] signatures, never asks for more.
pub const MAX_BODY_HASHES: usize = 8;

/// From this size on, parsing (hashing) leaves the async worker thread to other sessions.
const LARGE_MESSAGE: usize = 256 * 1024;

/// RFC 8617 §4.2.1 allows 50 ARC sets; past this many, the chain is not checked (each set's
/// l= could cost one more pass over the body) and counts as failed.
pub const MAX_ARC_SETS: usize = 10;

/// What the SMTP session knows about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The EHLO/HELO argument.
    pub helo: String,
    /// The reverse-path, `None` for the null path `<>`.
    pub mail_from: Option<String>,
}

/// The From header fields as DMARC sees them (RFC 7489 §6.6.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FromFields {
    /// How many From fields the header has.
    pub fields: usize,
    /// The domain of every address in them, lower case.
    pub domains: Vec<String>,
    /// A line of the header section is neither a field nor a continuation: readers disagree
    /// on which fields there are ([`fields::is_well_formed`]).
    pub malformed_header: bool,
}

/// Every verdict about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub iprev: IprevVerdict,
    pub spf: SpfVerdict,
    pub dkim: Vec<DkimVerdict>,
    pub arc: ArcVerdict,
    pub dmarc: DmarcVerdict,
    pub from: FromFields,
}

/// The checker, shared by every SMTP session.
pub struct SenderAuth {
    dns: Arc<dyn DnsLookup>,
    keys: KeyCache,
    authenticator: MessageAuthenticator,
    spf_limits: SpfLimits,
}

impl std::fmt::Debug for SenderAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderAuth")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl SenderAuth {
    /// Over the process's resolver: SPF, DMARC and iprev through its lookups, DKIM and ARC
    /// keys through its hickory resolver (same servers, timeouts and cache).
    pub fn new(resolver: &sealpost_dns::Resolver) -> Self {
        Self::with_lookup(
            Arc::new(resolver.clone()),
            MessageAuthenticator(resolver.hickory().clone()),
        )
    }

    /// With any [`DnsLookup`] (tests: a [`MemoryZone`]) and mail-auth authenticator.
    pub fn with_lookup(dns: Arc<dyn DnsLookup>, authenticator: MessageAuthenticator) -> Self {
        Self {
            dns,
            keys: KeyCache::new(),
            authenticator,
            spf_limits: SpfLimits::default(),
        }
    }

    /// The DKIM/ARC key cache: tests publish keys in it.
    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// SPF for the transaction (RFC 7208 §2.4: MAIL FROM, or HELO for a null reverse-path).
    /// Bounded by [`CHECK_BUDGET`]: past it the result is temperror (RFC 7208 §4.6.4).
    pub async fn spf(&self, client: &Client, receiver: &str) -> SpfVerdict {
        let check = spf::verify(
            self.dns.as_ref(),
            &self.spf_limits,
            client.ip,
            &client.helo,
            client.mail_from.as_deref(),
            receiver,
        );
        match tokio::time::timeout(CHECK_BUDGET, check).await {
            Ok(verdict) => verdict,
            Err(_) => spf::timed_out(&client.helo, client.mail_from.as_deref()),
        }
    }

    /// RFC 7505 §4.2: whether the reverse-path's domain publishes a null MX, so that mail
    /// from it "SHOULD" be refused with 550 5.7.27 (SECURITY-TESTS DA-15). A DNS failure or
    /// a slow answer is not a reason to refuse: false.
    pub async fn sender_has_null_mx(&self, mail_from: &str) -> bool {
        let Some((_, domain)) = mail_from.rsplit_once('@') else {
            return false;
        };
        let lookup = self.dns.null_mx(domain);
        matches!(
            tokio::time::timeout(CHECK_BUDGET, lookup).await,
            Ok(Ok(true))
        )
    }

    /// DKIM, ARC, iprev and DMARC for `message`, given the transaction's SPF verdict. The
    /// checks run side by side, each bounded by [`CHECK_BUDGET`], so that a dead name server
    /// costs the client one budget, not one per lookup.
    pub async fn assess(&self, client: &Client, spf: SpfVerdict, message: &[u8]) -> Assessment {
        self.assess_with(client, std::future::ready(spf), message)
            .await
    }

    /// As [`SenderAuth::assess`], with the SPF check still running (started at MAIL FROM):
    /// it is awaited beside the other checks, since only DMARC needs its verdict.
    pub async fn assess_with(
        &self,
        client: &Client,
        spf: impl Future<Output = SpfVerdict>,
        message: &[u8],
    ) -> Assessment {
        let bounded = bound(message);
        let verified = bounded.message.as_deref().unwrap_or(message);
        let parsed = parse(verified);
        let from = from_fields(verified, parsed.as_ref());

        let dkim = async {
            match &parsed {
                Some(parsed) => {
                    dkim::verify(&self.authenticator, &self.keys, parsed, CHECK_BUDGET).await
                }
                None => Vec::new(),
            }
        };
        let arc = async {
            if let Some(refused) = &bounded.arc_refused {
                return refused.clone();
            }
            let Some(parsed) = &parsed else {
                return ArcVerdict::none();
            };
            let check = arc::verify(&self.authenticator, &self.keys, parsed);
            tokio::time::timeout(CHECK_BUDGET, check)
                .await
                .unwrap_or_else(|_| ArcVerdict::timed_out())
        };
        let iprev = async {
            let check = iprev::verify(self.dns.as_ref(), client.ip);
            tokio::time::timeout(CHECK_BUDGET, check)
                .await
                .unwrap_or_else(|_| IprevVerdict::timed_out(client.ip))
        };
        // RFC 7489 §6.6.3: the policy lookup needs only the From domain: it runs beside the
        // signature checks.
        let discovery = async {
            if from.fields == 0 {
                return dmarc::Discovery::without_from();
            }
            let check = dmarc::discover_policy(self.dns.as_ref(), &from.domains);
            tokio::time::timeout(CHECK_BUDGET, check)
                .await
                .unwrap_or_else(|_| dmarc::Discovery::timed_out(&from.domains))
        };
        let (spf, mut dkim, arc, iprev, discovery) = tokio::join!(spf, dkim, arc, iprev, discovery);
        dkim.extend(bounded.skipped_signatures);

        let dkim_pass_domains: Vec<String> = dkim
            .iter()
            .filter(|verdict| verdict.result == DkimResult::Pass)
            .map(|verdict| verdict.domain.clone())
            .collect();
        // RFC 7489 §4.1: SPF counts with the domain it authenticated (MAIL FROM or HELO).
        let spf_pass_domain = (spf.result == SpfResult::Pass).then_some(spf.domain.as_str());
        let sample = rand::rng().random_range(0..100u8);
        let dmarc = dmarc::judge(
            discovery,
            &dmarc::DmarcInput {
                from_domains: &from.domains,
                spf_pass_domain,
                dkim_pass_domains: &dkim_pass_domains,
            },
            sample,
        );
        Assessment {
            iprev,
            spf,
            dkim,
            arc,
            dmarc,
            from,
        }
    }
}

/// The message with the work an attacker can ask for bounded.
struct Bounded {
    /// A copy without the fields that are not checked, when there are any.
    message: Option<Vec<u8>>,
    skipped_signatures: Vec<DkimVerdict>,
    /// Set when the ARC chain is too long to be checked.
    arc_refused: Option<ArcVerdict>,
}

fn bound(message: &[u8]) -> Bounded {
    let (copy, skipped_signatures) = dkim::limit_signatures(message);
    let current = copy.as_deref().unwrap_or(message);
    let fields = fields::header_fields(current);
    let arc_fields: Vec<_> = fields
        .iter()
        .filter(|field| {
            field.is("ARC-Seal")
                || field.is("ARC-Message-Signature")
                || field.is("ARC-Authentication-Results")
        })
        .collect();
    let seals = arc_fields
        .iter()
        .filter(|field| field.is("ARC-Seal"))
        .count();
    let signatures = arc_fields.len() - seals;
    let refusal = if seals > MAX_ARC_SETS || signatures > 2 * MAX_ARC_SETS {
        format!("not checked: more than {MAX_ARC_SETS} ARC sets")
    } else if body_hashes(&fields) > MAX_BODY_HASHES {
        format!("not checked: more than {MAX_BODY_HASHES} body hashes asked for")
    } else {
        return Bounded {
            message: copy,
            skipped_signatures,
            arc_refused: None,
        };
    };
    let dropped: Vec<_> = arc_fields.iter().map(|field| field.range.clone()).collect();
    let without_arc = fields::without(current, &dropped);
    Bounded {
        message: Some(without_arc),
        skipped_signatures,
        arc_refused: Some(ArcVerdict {
            result: ArcResult::Fail,
            instances: seals as u32,
            sealers: Vec::new(),
            reason: refusal,
        }),
    }
}

/// How many passes over the body parsing takes: one per distinct (body canonicalization,
/// hash, `l=`) among the DKIM and ARC message signatures (mail-auth hashes each once).
fn body_hashes(fields: &[fields::Field<'_>]) -> usize {
    // Neither mail-auth type is Hash; a few dozen entries at most.
    let mut distinct = Vec::new();
    for field in fields {
        let key = if field.is("DKIM-Signature") {
            mail_auth::dkim::Signature::parse(field.value)
                .ok()
                .map(|signature| (signature.cb, signature.a, signature.l))
        } else if field.is("ARC-Message-Signature") {
            mail_auth::arc::Signature::parse(field.value)
                .ok()
                .map(|signature| (signature.cb, signature.a, signature.l))
        } else {
            None
        };
        if let Some(key) = key
            && !distinct.contains(&key)
        {
            distinct.push(key);
        }
    }
    distinct.len()
}

/// Parses the message (hashing its body once per distinct signature kind). A large message
/// is parsed with `block_in_place`, so that the other sessions on this worker thread move
/// on meanwhile (multi-threaded runtime only: the server's).
fn parse(message: &[u8]) -> Option<AuthenticatedMessage<'_>> {
    let parse = || AuthenticatedMessage::parse_with_opts(message, None, false);
    let multi_threaded = tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
        runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    });
    if message.len() >= LARGE_MESSAGE && multi_threaded {
        tokio::task::block_in_place(parse)
    } else {
        parse()
    }
}

/// The From fields: how many, and the domains of their addresses (RFC 5322 parsing by
/// mail-parser: comments and display names never supply the domain, SECURITY-TESTS DA-13).
fn from_fields(message: &[u8], parsed: Option<&AuthenticatedMessage<'_>>) -> FromFields {
    let fields = fields::header_fields(message)
        .iter()
        .filter(|field| field.is("From"))
        .count();
    let domains = parsed
        .map(|parsed| {
            parsed
                .from
                .iter()
                .filter_map(|address| address.rsplit_once('@'))
                .map(|(_, domain)| domain.trim_end_matches('.').to_ascii_lowercase())
                .filter(|domain| !domain.is_empty())
                .collect()
        })
        .unwrap_or_default();
    FromFields {
        fields,
        domains,
        malformed_header: !fields::is_well_formed(message),
    }
}
