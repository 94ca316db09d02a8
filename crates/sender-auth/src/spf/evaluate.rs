//! The evaluation of check_host() (RFC 7208 §4 to §6): fetching records, matching
//! mechanisms, following include and redirect, counting the lookups of RFC 7208 §4.6.4.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::{Macro, Qualifier, Variables};

use super::macros::{
    MacroContext, base_variables, bounded_explanation, check_macro_string, expand,
    is_checkable_domain, query_name,
};
use super::record::{DomainSpec, RecordChoice, SpfRecord, choose_record, parse_record};
use super::{SpfLimits, SpfOutcome, SpfResult};
use crate::lookup::{DnsLookup, TemporaryDnsError};

/// How deep include and redirect may nest, whatever the term limit is configured to: the
/// evaluation recurses once per level.
const MAX_NESTING: usize = 32;

/// The evaluation stopped before a mechanism could match: `temperror` or `permerror`.
#[derive(Debug)]
struct Abort {
    result: SpfResult,
    reason: String,
}

impl Abort {
    fn permanent(reason: String) -> Self {
        Abort {
            result: SpfResult::PermError,
            reason,
        }
    }

    /// RFC 7208 §5: a DNS error other than NXDOMAIN (or a timeout) while evaluating a
    /// mechanism stops the evaluation with temperror.
    fn dns(term: &str, error: &TemporaryDnsError) -> Self {
        Abort {
            result: SpfResult::TempError,
            reason: format!("{term}: DNS failure for {}: {}", error.name, error.reason),
        }
    }
}

impl From<Abort> for SpfOutcome {
    fn from(abort: Abort) -> Self {
        SpfOutcome::new(abort.result, abort.reason)
    }
}

mod mechanisms;

type BoxedOutcome<'s> = Pin<Box<dyn Future<Output = SpfOutcome> + Send + 's>>;

/// The state of one check_host() call, shared by the records it visits through include and
/// redirect, so that the limits hold for the whole evaluation.
pub(super) struct Evaluation<'a> {
    dns: &'a dyn DnsLookup,
    limits: &'a SpfLimits,
    /// The client address; an IPv4-mapped IPv6 address is already IPv4 (RFC 7208 §5).
    ip: IpAddr,
    variables: Variables<'static>,
    dns_terms: u32,
    void_lookups: u32,
    /// The names the client address's PTR records give and confirm (the p macro), once
    /// looked up.
    validated_names: Option<Vec<String>>,
}

impl<'a> Evaluation<'a> {
    pub(super) fn new(
        dns: &'a dyn DnsLookup,
        limits: &'a SpfLimits,
        ip: IpAddr,
        sender: &str,
        helo: &str,
        receiver_host: &str,
    ) -> Self {
        Evaluation {
            dns,
            limits,
            ip,
            variables: base_variables(ip, sender, helo, receiver_host),
            dns_terms: 0,
            void_lookups: 0,
            validated_names: None,
        }
    }

    /// check_host() for `domain`: the first call, and the recursive ones of include and
    /// redirect (boxed, as async recursion must be). `explain` is false inside an include,
    /// whose explanation would never be used (RFC 7208 §6.2).
    pub(super) fn check_domain(
        &mut self,
        domain: String,
        depth: usize,
        explain: bool,
    ) -> BoxedOutcome<'_> {
        Box::pin(async move {
            if depth > MAX_NESTING {
                return SpfOutcome::new(
                    SpfResult::PermError,
                    format!("include/redirect nested deeper than {MAX_NESTING}"),
                );
            }
            // RFC 7208 §4.3: a malformed or single-label domain gives "none".
            if !is_checkable_domain(&domain) {
                return SpfOutcome::new(
                    SpfResult::None,
                    format!("'{domain}' is not a domain name that can be checked"),
                );
            }
            match self.fetch_record(&domain).await {
                Ok(record) => self.evaluate_record(&record, &domain, depth, explain).await,
                Err(outcome) => outcome,
            }
        })
    }

    /// RFC 7208 §4.4, §4.5, §4.6: the one SPF record of `domain`, parsed.
    async fn fetch_record(&self, domain: &str) -> Result<SpfRecord, SpfOutcome> {
        // RFC 7208 §4.4: a DNS failure while looking up the record is a temperror.
        let records = self.dns.txt(domain).await.map_err(|error| {
            SpfOutcome::new(
                SpfResult::TempError,
                format!(
                    "DNS failure for the TXT records of {domain}: {}",
                    error.reason
                ),
            )
        })?;
        match choose_record(&records) {
            // RFC 7208 §4.5: no SPF record (or NXDOMAIN) gives "none".
            RecordChoice::NoRecord => Err(SpfOutcome::new(
                SpfResult::None,
                format!("no SPF record at {domain}"),
            )),
            // RFC 7208 §4.5: more than one SPF record is a permerror.
            RecordChoice::Several(count) => Err(SpfOutcome::new(
                SpfResult::PermError,
                format!("{count} SPF records at {domain}"),
            )),
            // RFC 7208 §4.6: a syntax error anywhere in the record is a permerror.
            RecordChoice::One(text) => parse_record(text).map_err(|error| {
                SpfOutcome::new(
                    SpfResult::PermError,
                    format!("invalid SPF record at {domain}: {error}"),
                )
            }),
        }
    }

    /// RFC 7208 §4.6.2, §4.7: the first matching directive decides; then redirect; else
    /// neutral.
    async fn evaluate_record(
        &mut self,
        record: &SpfRecord,
        domain: &str,
        depth: usize,
        explain: bool,
    ) -> SpfOutcome {
        for term in &record.terms {
            match self.term_matches(term, domain, depth).await {
                Ok(false) => {}
                Ok(true) => {
                    let result = qualifier_result(&term.qualifier);
                    let mut outcome = SpfOutcome::new(result, format!("matched {}", term.text));
                    // RFC 7208 §6.2: the explanation is only for fail, and only from the
                    // record whose directive decided.
                    if result == SpfResult::Fail && explain {
                        outcome.explanation = self.explain(record, domain).await;
                    }
                    return outcome;
                }
                Err(abort) => return abort.into(),
            }
        }
        match &record.redirect {
            // RFC 7208 §6.1: redirect is used only when no mechanism matched.
            Some(target) => self.follow_redirect(target, domain, depth, explain).await,
            // RFC 7208 §4.7: no match and no redirect is neutral, as with a final "?all".
            None => SpfOutcome::new(SpfResult::Neutral, "no term matched".to_string()),
        }
    }

    /// RFC 7208 §6.1: check_host() of the redirect target replaces this record's result.
    async fn follow_redirect(
        &mut self,
        target: &DomainSpec,
        domain: &str,
        depth: usize,
        explain: bool,
    ) -> SpfOutcome {
        let term = format!("redirect={}", target.text);
        if let Err(abort) = self.count_dns_term(&term) {
            return abort.into();
        }
        let name = match self.target_name(&target.macro_string, domain, &term).await {
            Ok(Some(name)) => name,
            // RFC 7208 §6.1: a malformed target is a permerror.
            Ok(None) => {
                return SpfOutcome::new(
                    SpfResult::PermError,
                    format!("{term}: the target is not a valid domain name"),
                );
            }
            Err(abort) => return abort.into(),
        };
        let mut outcome = self.check_domain(name, depth + 1, explain).await;
        // RFC 7208 §6.1: a redirect target without an SPF record is a permerror.
        if outcome.result == SpfResult::None {
            outcome.result = SpfResult::PermError;
        }
        // The explanation, if any, is the target's own (RFC 7208 §6.2).
        outcome.reason = format!("{term}: {}", outcome.reason);
        outcome
    }

    /// RFC 7208 §6.2: the explanation of a fail. Any problem (DNS, several or no records, bad
    /// syntax) means no explanation; it never changes the result.
    async fn explain(&mut self, record: &SpfRecord, domain: &str) -> Option<String> {
        let spec = record.explanation.as_ref()?;
        let name = self
            .target_name(&spec.macro_string, domain, "exp=")
            .await
            .ok()??;
        // RFC 7208 §4.6.4: the exp= lookup is not a DNS-querying term, and a void answer is
        // not counted either.
        let records = self.dns.txt(&name).await.ok()?;
        let [text] = records.as_slice() else {
            return None;
        };
        check_macro_string(text, MacroContext::Explanation).ok()?;
        let macro_string = Macro::parse(text.as_bytes()).ok()?;
        let validated_name = if macro_string.needs_ptr() {
            Some(self.validated_name(domain, "exp").await.ok()?)
        } else {
            None
        };
        let expanded = expand(
            &macro_string,
            &self.variables,
            domain,
            validated_name.as_deref(),
        );
        Some(bounded_explanation(&expanded))
    }

    /// Expands a target domain-spec into the name to query; `None` when no query can be made
    /// for it (RFC 7208 §7.3).
    async fn target_name(
        &mut self,
        target: &Macro,
        domain: &str,
        term: &str,
    ) -> Result<Option<String>, Abort> {
        let validated_name = if target.needs_ptr() {
            Some(self.validated_name(domain, term).await?)
        } else {
            None
        };
        let expanded = expand(target, &self.variables, domain, validated_name.as_deref());
        Ok(query_name(&expanded))
    }

    /// RFC 7208 §7.3: the p macro, the validated PTR name of the client: preferably `domain`,
    /// else a name below it, else any; "unknown" when there is none or DNS fails.
    async fn validated_name(&mut self, domain: &str, term: &str) -> Result<String, Abort> {
        let names = match &self.validated_names {
            Some(names) => names.clone(),
            None => {
                let names = self.validate_ptr_names(term).await?;
                self.validated_names = Some(names.clone());
                names
            }
        };
        let preferred = names
            .iter()
            .find(|name| name.eq_ignore_ascii_case(domain))
            .or_else(|| names.iter().find(|name| is_within(name, domain)))
            .or_else(|| names.first());
        Ok(preferred.map_or_else(|| "unknown".to_string(), Clone::clone))
    }

    /// The PTR names of the client (at most 10) whose address records include the client.
    /// These lookups count as one DNS-querying term (RFC 7208 §4.6.4 bounds them like ptr).
    async fn validate_ptr_names(&mut self, term: &str) -> Result<Vec<String>, Abort> {
        self.count_dns_term(&format!("%{{p}} in {term}"))?;
        let Ok(names) = self.dns.ptr(self.ip).await else {
            return Ok(Vec::new());
        };
        let mut validated = Vec::new();
        for name in names.iter().take(self.limits.ptr_names) {
            let Some(host) = query_name(name) else {
                continue;
            };
            if let Ok(addresses) = self.addresses(&host).await
                && addresses.contains(&self.ip)
            {
                validated.push(host);
            }
        }
        Ok(validated)
    }

    /// The address records of `name` in the client's family (RFC 7208 §5.3, §5.4).
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, TemporaryDnsError> {
        Ok(match self.ip {
            IpAddr::V4(_) => self
                .dns
                .ipv4(name)
                .await?
                .into_iter()
                .map(IpAddr::V4)
                .collect(),
            IpAddr::V6(_) => self
                .dns
                .ipv6(name)
                .await?
                .into_iter()
                .map(IpAddr::V6)
                .collect(),
        })
    }

    /// RFC 7208 §4.6.4: counts a term that queries DNS, checking the limit before the query
    /// is made, so the 11th such term is a permerror and never asked.
    fn count_dns_term(&mut self, term: &str) -> Result<(), Abort> {
        if self.dns_terms >= self.limits.dns_terms {
            return Err(Abort::permanent(format!(
                "{} DNS-querying term ({term}), over the limit of {}",
                ordinal(self.dns_terms.saturating_add(1)),
                self.limits.dns_terms
            )));
        }
        self.dns_terms += 1;
        Ok(())
    }

    /// RFC 7208 §4.6.4: counts a lookup that found nothing (NXDOMAIN or no records); more
    /// than the limit (2) is a permerror, wherever the lookup is.
    fn count_void_lookup(&mut self, term: &str) -> Result<(), Abort> {
        self.void_lookups = self.void_lookups.saturating_add(1);
        if self.void_lookups > self.limits.void_lookups {
            return Err(Abort::permanent(format!(
                "{} void lookup ({term}), over the limit of {}",
                ordinal(self.void_lookups),
                self.limits.void_lookups
            )));
        }
        Ok(())
    }
}

fn qualifier_result(qualifier: &Qualifier) -> SpfResult {
    match qualifier {
        Qualifier::Pass => SpfResult::Pass,
        Qualifier::Fail => SpfResult::Fail,
        Qualifier::SoftFail => SpfResult::SoftFail,
        Qualifier::Neutral => SpfResult::Neutral,
    }
}

/// Whether `name` is `domain` or a name below it, ignoring case.
fn is_within(name: &str, domain: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    name == domain
        || name
            .strip_suffix(&domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// "1st", "2nd", "3rd", "11th", ...: for the reasons of limit errors.
pub(super) fn ordinal(number: u32) -> String {
    let suffix = match (number % 10, number % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{number}{suffix}")
}
