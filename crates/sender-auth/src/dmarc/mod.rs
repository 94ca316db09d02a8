//! DMARC evaluation per RFC 7489 (not DMARCbis): policy discovery at the RFC5322.From domain
//! or its organizational domain from the public suffix list (at most two TXT queries),
//! identifier alignment of the SPF and DKIM results, and the disposition after `pct`
//! sampling.
//!
//! The caller extracts the From domains (RFC 7489 §6.6.1), runs SPF and DKIM, draws the
//! sampling number and acts on [`DmarcVerdict::disposition`].

mod organizational;
mod record;
#[cfg(test)]
mod tests;

pub use organizational::{aligned, organizational_domain};
pub(crate) use record::parse_size;
pub use record::{Alignment, DmarcRecord, Policy, RecordError, ReportUri, is_dmarc_record};

use crate::lookup::DnsLookup;
use organizational::normalize;

/// RFC 7489 §11.2 / RFC 8601 §2.7.x: the `dmarc` method results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcResult {
    /// No DMARC policy applies (no record, several records, or DMARC not applied).
    None,
    Pass,
    Fail,
    /// A DNS failure during policy discovery: retry later, never treat as pass.
    TempError,
    /// A permanent error: no or several From domains, an unusable record.
    PermError,
}

impl DmarcResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcResult::None => "none",
            DmarcResult::Pass => "pass",
            DmarcResult::Fail => "fail",
            DmarcResult::TempError => "temperror",
            DmarcResult::PermError => "permerror",
        }
    }
}

/// The authenticated identifiers DMARC looks at.
#[derive(Debug, Clone, Copy)]
pub struct DmarcInput<'a> {
    /// The RFC5322.From domain(s) as found in the message: the domains of every address of
    /// every From header field (already extracted by the caller; may be empty or several).
    pub from_domains: &'a [String],
    /// The domain SPF checked and passed: the MAIL FROM domain, or for a null reverse-path
    /// the HELO domain (RFC 7489 §4.1). None when SPF did not pass.
    pub spf_pass_domain: Option<&'a str>,
    /// d= of every DKIM signature that verified (result pass, and acceptable to our policy).
    pub dkim_pass_domains: &'a [String],
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcVerdict {
    pub result: DmarcResult,
    /// The RFC5322.From domain evaluated, lower case without the final dot (empty when there
    /// is none, or several).
    pub from_domain: String,
    /// The record that applied (None when no usable record was found).
    pub record: Option<DmarcRecord>,
    /// Where the record was found: the From domain or its organizational domain (empty when
    /// no record was found).
    pub record_domain: String,
    /// The policy the domain owner asks for this message: p, or sp for a subdomain whose
    /// policy came from the organizational domain's record (RFC 7489 §6.6.3).
    pub requested: Policy,
    /// What to do after pct sampling (RFC 7489 §6.6.4): on fail, `requested` if sampled in,
    /// else the next lower policy; Policy::None on pass, none and errors.
    pub disposition: Policy,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
    /// Why, for logs and the Authentication-Results comment.
    pub reason: String,
}

impl DmarcVerdict {
    /// A verdict without an applicable policy (none, temperror, permerror).
    fn without_policy(result: DmarcResult, from_domain: &str, reason: String) -> DmarcVerdict {
        DmarcVerdict {
            result,
            from_domain: from_domain.to_string(),
            record: None,
            record_domain: String::new(),
            requested: Policy::None,
            disposition: Policy::None,
            spf_aligned: false,
            dkim_aligned: false,
            reason,
        }
    }
}

/// RFC 1035 §2.3.4: names of at most 253 characters, labels of 1 to 63 octets. Letters,
/// digits, hyphens and underscores; non-ASCII characters are let through (an RFC 6532
/// U-label From domain simply has no `_dmarc` record in the DNS).
fn is_domain_name(domain: &str) -> bool {
    domain.len() <= 253
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// RFC 7489 §6.6.1: the single RFC5322.From domain, or why there is none.
fn single_from_domain(from_domains: &[String]) -> Result<String, String> {
    let mut domains: Vec<String> = Vec::new();
    for domain in from_domains {
        let domain = normalize(domain);
        if domain.is_empty() {
            return Err("From address without a domain".to_string());
        }
        // RFC 7489 §6.6.1: the same domain repeated is one domain (case and final dot ignored).
        if !domains.contains(&domain) {
            domains.push(domain);
        }
        // Two different domains settle it: a From with thousands of addresses costs no more.
        if domains.len() > 1 {
            break;
        }
    }
    match domains.as_slice() {
        // RFC 7489 §6.6.1: a message without an RFC5322.From domain is not valid.
        [] => Err("no From domain".to_string()),
        [domain] if is_domain_name(domain) => Ok(domain.clone()),
        [domain] => Err(format!("From domain {domain:?} is not a valid domain name")),
        // RFC 7489 §6.6.1: several different From domains; such messages are typically
        // rejected (by the caller), DMARC does not pick one.
        several => Err(format!("multiple From domains: {}", several.join(", "))),
    }
}

/// What the DMARC records at one `_dmarc` name say.
enum Found {
    /// No TXT record starting with `v=DMARC1`.
    Nothing,
    /// Exactly one: where it was found and its text.
    One { domain: String, text: String },
    /// More than one.
    Several,
}

/// RFC 7489 §6.6.3 steps 1-2: the TXT records at `_dmarc.<domain>`, keeping only those that
/// start with `v=DMARC1`.
async fn discover_at(dns: &dyn DnsLookup, domain: &str) -> Result<Found, String> {
    let name = format!("_dmarc.{domain}");
    let records = dns
        .txt(&name)
        .await
        .map_err(|error| format!("DNS failure looking up {name}: {}", error.reason))?;
    // RFC 7489 §6.6.3 step 2: records that do not start with "v=DMARC1" are discarded.
    let mut dmarc = records.into_iter().filter(|text| is_dmarc_record(text));
    Ok(match (dmarc.next(), dmarc.next()) {
        (None, _) => Found::Nothing,
        (Some(text), None) => Found::One {
            domain: domain.to_string(),
            text,
        },
        (Some(_), Some(_)) => Found::Several,
    })
}

/// RFC 7489 §6.6.3 steps 1-4: the DMARC record of `from`, in at most two TXT queries (DA-14).
/// A DNS failure at the From domain ends discovery: falling back to the organizational
/// domain, whose policy may be weaker, would let a failing name downgrade the policy.
async fn discover(dns: &dyn DnsLookup, from: &str) -> Result<Found, String> {
    // RFC 7489 §6.6.3 step 1: query _dmarc.<RFC5322.From domain>.
    let found = discover_at(dns, from).await?;
    if !matches!(found, Found::Nothing) {
        return Ok(found);
    }
    // RFC 7489 §6.6.3 step 3: no record at the From domain: query the organizational domain
    // (if different), the second and last query.
    let organizational = organizational_domain(from);
    if organizational == from {
        return Ok(Found::Nothing);
    }
    discover_at(dns, &organizational).await
}

/// The whole evaluation (RFC 7489 §6.6). `sample` is a number in 0..100 drawn by the caller:
/// the message is "sampled in" when `sample < pct` (always when pct is 100).
pub async fn evaluate(dns: &dyn DnsLookup, input: &DmarcInput<'_>, sample: u8) -> DmarcVerdict {
    let verdict = evaluate_inner(dns, input, sample).await;
    tracing::debug!(
        result = verdict.result.as_str(),
        from = %verdict.from_domain,
        record_domain = %verdict.record_domain,
        requested = verdict.requested.as_str(),
        disposition = verdict.disposition.as_str(),
        reason = %verdict.reason,
        "DMARC evaluated"
    );
    verdict
}

/// The policy that applies to a message's From domain, found before its signatures are
/// checked (the lookups run side by side): either the record, or the verdict already.
#[derive(Debug, Clone)]
pub struct Discovery(Result<Discovered, Box<DmarcVerdict>>);

#[derive(Debug, Clone)]
struct Discovered {
    from: String,
    record_domain: String,
    record: DmarcRecord,
}

impl Discovery {
    /// A message without a From field: no author domain could be extracted, so DMARC does
    /// not apply (RFC 7489 §11.2 "none").
    pub fn without_from() -> Discovery {
        Discovery(Err(Box::new(DmarcVerdict::without_policy(
            DmarcResult::None,
            "",
            "no From header field".to_string(),
        ))))
    }

    /// What a discovery that ran out of time gives: temperror, never a pass (DA-08).
    pub fn timed_out(from_domains: &[String]) -> Discovery {
        let from = single_from_domain(from_domains).unwrap_or_default();
        Discovery(Err(Box::new(DmarcVerdict::without_policy(
            DmarcResult::TempError,
            &from,
            "DNS too slow looking up the DMARC record".to_string(),
        ))))
    }
}

/// RFC 7489 §6.6.1-§6.6.3: the single From domain and its DMARC record.
pub async fn discover_policy(dns: &dyn DnsLookup, from_domains: &[String]) -> Discovery {
    let from = match single_from_domain(from_domains) {
        Ok(from) => from,
        // RFC 7489 §6.6.1: no or several From domains: permerror; the caller's local policy
        // (RS-10/DA-13) rejects the message, so no DMARC disposition is given here.
        Err(reason) => {
            let verdict = DmarcVerdict::without_policy(DmarcResult::PermError, "", reason);
            return Discovery(Err(Box::new(verdict)));
        }
    };
    let verdict = |result, reason| {
        Discovery(Err(Box::new(DmarcVerdict::without_policy(
            result, &from, reason,
        ))))
    };

    let found = match discover(dns, &from).await {
        Ok(found) => found,
        // RFC 7489 §6.6.3: a temporary DNS failure gives temperror, never a pass (DA-08).
        Err(reason) => return verdict(DmarcResult::TempError, reason),
    };
    let (record_domain, text) = match found {
        // RFC 7489 §6.6.3 step 4: no record at either name: DMARC does not apply.
        Found::Nothing => {
            return verdict(DmarcResult::None, format!("no DMARC record for {from}"));
        }
        // RFC 7489 §6.6.3 step 2: "If the remaining set contains multiple records or no
        // records, policy discovery terminates and DMARC processing is not applied".
        Found::Several => {
            let reason = format!("several DMARC records for {from}: none applied");
            return verdict(DmarcResult::None, reason);
        }
        Found::One { domain, text } => (domain, text),
    };

    match DmarcRecord::parse(&text) {
        Ok(record) => Discovery(Ok(Discovered {
            from,
            record_domain,
            record,
        })),
        // RFC 7489 §6.6.3 step 6 / §11.2: an unusable record: permerror, no DMARC processing.
        Err(error) => {
            let reason = format!("invalid DMARC record at _dmarc.{record_domain}: {error}");
            let mut failed = DmarcVerdict::without_policy(DmarcResult::PermError, &from, reason);
            failed.record_domain = record_domain;
            Discovery(Err(Box::new(failed)))
        }
    }
}

async fn evaluate_inner(dns: &dyn DnsLookup, input: &DmarcInput<'_>, sample: u8) -> DmarcVerdict {
    judge(
        discover_policy(dns, input.from_domains).await,
        input,
        sample,
    )
}

/// RFC 7489 §6.6.2-§6.6.4: the verdict for a discovered policy and the identifiers that
/// passed. `sample` is a number in 0..100: the message is "sampled in" when `sample < pct`.
pub fn judge(discovery: Discovery, input: &DmarcInput<'_>, sample: u8) -> DmarcVerdict {
    let Discovered {
        from,
        record_domain,
        record,
    } = match discovery.0 {
        Ok(discovered) => discovered,
        Err(verdict) => return *verdict,
    };

    // RFC 7489 §3.1.2: SPF is aligned when the domain it passed aligns per aspf.
    let spf_aligned = input
        .spf_pass_domain
        .is_some_and(|domain| aligned(domain, &from, record.spf_alignment));
    // RFC 7489 §3.1.1: DKIM is aligned when any passing signature's d= aligns per adkim.
    let dkim_aligned = input
        .dkim_pass_domains
        .iter()
        .any(|domain| aligned(domain, &from, record.dkim_alignment));

    // RFC 7489 §6.6.3: the record of the From domain itself gives p; a record found at the
    // organizational domain for a subdomain gives sp, or p when sp is absent (§6.3 sp).
    let requested = if record_domain == from {
        record.policy
    } else {
        record.subdomain_policy.unwrap_or(record.policy)
    };

    let (result, disposition, reason) = if spf_aligned || dkim_aligned {
        // RFC 7489 §4.2: a pass of an aligned identifier is a DMARC pass.
        let how = match (dkim_aligned, spf_aligned) {
            (true, true) => "DKIM and SPF aligned",
            (true, false) => "DKIM aligned",
            _ => "SPF aligned",
        };
        (DmarcResult::Pass, Policy::None, how.to_string())
    } else {
        // RFC 7489 §6.6.4: apply the policy to pct % of failing messages (all of them at
        // pct=100); the others get the next less strict policy.
        let sampled_in = record.percent >= 100 || sample < record.percent;
        let disposition = if sampled_in {
            requested
        } else {
            requested.weaker()
        };
        let mut reason = format!("neither DKIM nor SPF aligned with {from}");
        if !sampled_in {
            reason.push_str(&format!(
                "; not sampled by pct={}: {} applied as {}",
                record.percent,
                requested.as_str(),
                disposition.as_str()
            ));
        }
        (DmarcResult::Fail, disposition, reason)
    };

    DmarcVerdict {
        result,
        from_domain: from,
        record: Some(record),
        record_domain,
        requested,
        disposition,
        spf_aligned,
        dkim_aligned,
        reason,
    }
}
