//! SPF (RFC 7208): whether the client may send mail for the MAIL FROM domain (or, for a null
//! reverse-path, for its HELO name).
//!
//! The evaluation is ours, over [`DnsLookup`]: the limits of RFC 7208 §4.6.4 (10 DNS-querying
//! terms checked before each lookup, 2 void lookups, 10 MX and 10 PTR names) and an overall
//! time budget that ends in `temperror`. Macro-strings are parsed and expanded by mail-auth
//! (`mail_auth::spf::Macro`, `Variables`); records are parsed here, because mail-auth's record
//! parser accepts invalid records (see [`record`]).
//!
//! Known limits: mail-auth splits the sender at its first "@", so for a quoted local part that
//! itself holds an "@" the l and o macros are cut there (the checked domain is not affected);
//! a domain in U-labels (SMTPUTF8) is not converted to A-labels, so it gives `none`.

mod evaluate;
mod macros;
mod record;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

use crate::lookup::DnsLookup;
use evaluate::Evaluation;

/// RFC 7208 §2.6 results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    /// The result as RFC 8601 §2.7.2 spells it in Authentication-Results.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// Which identity was checked (RFC 7208 §2.3, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfIdentity {
    MailFrom,
    Helo,
}

/// The SPF result for one identity, as the SMTP service and DMARC use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfVerdict {
    pub result: SpfResult,
    pub identity: SpfIdentity,
    /// The domain checked: the MAIL FROM domain, or the HELO name.
    pub domain: String,
    /// The full identity as RFC 8601 reports it: the MAIL FROM address ("user@domain",
    /// "postmaster@domain" when the local part is empty, RFC 7208 §4.3), or the HELO name.
    pub checked: String,
    /// Human-readable why (e.g. "matched ip4:192.0.2.0/24", "11th DNS-querying term"), for
    /// logs and the Authentication-Results comment.
    pub reason: String,
    /// The exp= explanation of a fail, if any (RFC 7208 §6.2): printable ASCII, bounded.
    pub explanation: Option<String>,
}

/// What check_host() gives (RFC 7208 §4): the result, why, and the explanation of a fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutcome {
    pub result: SpfResult,
    pub reason: String,
    pub explanation: Option<String>,
}

impl SpfOutcome {
    fn new(result: SpfResult, reason: String) -> Self {
        SpfOutcome {
            result,
            reason,
            explanation: None,
        }
    }
}

/// The limits of RFC 7208 §4.6.4 and an overall time budget.
#[derive(Debug, Clone)]
pub struct SpfLimits {
    /// Terms that query DNS (include, a, mx, ptr, exists, redirect) per evaluation.
    pub dns_terms: u32,
    /// Lookups that find nothing (NXDOMAIN or no records) per evaluation.
    pub void_lookups: u32,
    /// MX names an mx term may have; more is a permerror.
    pub mx_names: usize,
    /// PTR names a ptr term (or the p macro) looks at; the rest are ignored.
    pub ptr_names: usize,
    /// The time one evaluation may take; beyond it the result is temperror.
    pub budget: Duration,
}

impl Default for SpfLimits {
    fn default() -> Self {
        SpfLimits {
            // RFC 7208 §4.6.4: at most 10 DNS-querying terms.
            dns_terms: 10,
            // RFC 7208 §4.6.4: void lookups SHOULD be limited to two.
            void_lookups: 2,
            // RFC 7208 §4.6.4: at most 10 MX names and 10 PTR names per term.
            mx_names: 10,
            ptr_names: 10,
            // RFC 7208 §4.6.4: an overall limit that SHOULD allow at least 20 seconds.
            budget: Duration::from_secs(20),
        }
    }
}

/// check_host() of RFC 7208 §4 for one identity: may `ip` send mail for `domain`?
///
/// `sender` is the identity as an address ("local@domain", or "postmaster@helo" for the HELO
/// identity); `helo` and `receiver_host` feed the h and r macros.
pub async fn check_host(
    dns: &dyn DnsLookup,
    limits: &SpfLimits,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
    receiver_host: &str,
) -> SpfOutcome {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let sender = sender_with_local_part(sender, domain);
    // RFC 7208 §5: an IPv4-mapped IPv6 client is an IPv4 client.
    let ip = ip.to_canonical();
    let mut evaluation = Evaluation::new(dns, limits, ip, &sender, helo, receiver_host);
    let checking = evaluation.check_domain(domain.to_string(), 0, true);
    // RFC 7208 §4.6.4: an evaluation over its time limit is a temperror, never a pass.
    match tokio::time::timeout(limits.budget, checking).await {
        Ok(outcome) => outcome,
        Err(_) => SpfOutcome::new(
            SpfResult::TempError,
            format!("the evaluation took longer than {:?}", limits.budget),
        ),
    }
}

/// RFC 7208 §4.3: a sender without a local part is "postmaster" at its domain.
fn sender_with_local_part(sender: &str, domain: &str) -> String {
    match sender.rsplit_once('@') {
        Some((local, _)) if !local.is_empty() => sender.to_string(),
        Some((_, sender_domain)) => format!("postmaster@{sender_domain}"),
        None if sender.is_empty() => format!("postmaster@{domain}"),
        None => format!("postmaster@{sender}"),
    }
}

/// The identity checked (RFC 7208 §2.4), its domain, and the identity as reported.
fn identity_of(helo: &str, mail_from: Option<&str>) -> (SpfIdentity, String, String) {
    match mail_from.filter(|address| !address.is_empty()) {
        Some(address) => {
            let domain = address
                .rsplit_once('@')
                .map_or(address, |(_, domain)| domain);
            let domain = domain.strip_suffix('.').unwrap_or(domain);
            let sender = sender_with_local_part(address, domain);
            (SpfIdentity::MailFrom, domain.to_string(), sender)
        }
        // RFC 7208 §2.4: a null reverse-path is checked as postmaster@<HELO name>.
        None => (SpfIdentity::Helo, helo.to_string(), helo.to_string()),
    }
}

/// The verdict of a check that did not end in time: temperror (RFC 7208 §4.6.4: "a
/// temperror result is returned" when an evaluation runs out of time; DA-07).
pub fn timed_out(helo: &str, mail_from: Option<&str>) -> SpfVerdict {
    let (identity, domain, checked) = identity_of(helo, mail_from);
    SpfVerdict {
        result: SpfResult::TempError,
        identity,
        domain,
        checked,
        reason: "DNS too slow".to_string(),
        explanation: None,
    }
}

/// The SPF check of one SMTP transaction, called once per MAIL FROM (never per RCPT).
///
/// RFC 7208 §2.4: the MAIL FROM identity; for a null reverse-path (`mail_from` is `None`), the
/// HELO identity with "postmaster@" the HELO name as sender. The optional HELO check of
/// RFC 7208 §2.3 is not made otherwise.
pub async fn verify(
    dns: &dyn DnsLookup,
    limits: &SpfLimits,
    ip: IpAddr,
    helo: &str,
    mail_from: Option<&str>,
    receiver_host: &str,
) -> SpfVerdict {
    let (identity, domain, checked) = identity_of(helo, mail_from);
    let sender = match identity {
        SpfIdentity::MailFrom => checked.clone(),
        SpfIdentity::Helo => format!("postmaster@{helo}"),
    };
    let outcome = check_host(dns, limits, ip, &domain, &sender, helo, receiver_host).await;
    tracing::debug!(
        result = outcome.result.as_str(),
        identity = ?identity,
        checked = %checked,
        reason = %outcome.reason,
        "SPF"
    );
    SpfVerdict {
        result: outcome.result,
        identity,
        domain,
        checked,
        reason: outcome.reason,
        explanation: outcome.explanation,
    }
}
