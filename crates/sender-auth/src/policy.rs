//! What happens to a message once it is judged: delivered, filed as junk, refused at the end
//! of DATA, or deferred. The rules are the receiving domain's, with safe defaults.

use crate::Assessment;
use crate::arc::ArcResult;
use crate::dkim::DkimResult;
use crate::dmarc::{self, DmarcResult, Policy};
use crate::spf::SpfResult;

/// What to do with a message whose DMARC check failed under a given policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// 550 5.7.1 at the end of DATA: nothing is stored.
    Reject,
    /// Delivered to the recipient's Junk mailbox.
    Junk,
    /// Delivered as usual (the Authentication-Results field still says fail).
    Deliver,
}

/// The rules of one receiving domain (`[sender_auth]`, `[sender_auth.domains."…"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPolicy {
    /// DMARC fail where the sender's domain asks for p=reject (RFC 7489 §6.3).
    pub on_dmarc_reject: FailureAction,
    /// DMARC fail where the sender's domain asks for p=quarantine.
    pub on_dmarc_quarantine: FailureAction,
    /// Answer 451 when a DNS failure leaves open whether the sender's DMARC policy rejects
    /// or quarantines this message; `false` delivers it (to the inbox) instead.
    pub defer_on_temperror: bool,
    /// RFC 5322 §3.6 / RFC 7489 §6.6.1: refuse messages with several From fields, or a From
    /// naming several domains or none (the DMARC identity must be unambiguous).
    pub reject_ambiguous_from: bool,
    /// Forwarders (ARC sealer domains, RFC 8617 §7.2) whose valid seal stands in for a
    /// DMARC failure caused by forwarding: such mail is delivered as usual.
    pub trusted_arc_sealers: Vec<String>,
}

impl Default for DomainPolicy {
    fn default() -> Self {
        Self {
            on_dmarc_reject: FailureAction::Reject,
            on_dmarc_quarantine: FailureAction::Junk,
            defer_on_temperror: true,
            reject_ambiguous_from: true,
            trusted_arc_sealers: Vec::new(),
        }
    }
}

/// The rules of every receiving domain: one default, and those of domains with their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    pub default: DomainPolicy,
    /// (domain in lower case, its rules).
    pub domains: Vec<(String, DomainPolicy)>,
}

impl Policies {
    /// The rules for mail to `domain`.
    pub fn for_domain(&self, domain: &str) -> &DomainPolicy {
        let domain = domain.trim_end_matches('.');
        self.domains
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(domain))
            .map_or(&self.default, |(_, policy)| policy)
    }
}

/// The decision for one message and one receiving domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Deliver,
    Junk {
        reason: String,
    },
    /// RFC 7489 §10.3 / RFC 3463: refused with 550 5.7.1 and this text.
    Reject {
        reason: String,
    },
    /// Refused with 451 4.7.x: the sender tries again later.
    Defer {
        reason: String,
    },
}

impl Disposition {
    /// How strict: when recipients of several domains disagree, the strictest wins for the
    /// whole message (a message is accepted or refused as one at the end of DATA).
    pub fn severity(&self) -> u8 {
        match self {
            Disposition::Deliver => 0,
            Disposition::Junk { .. } => 1,
            Disposition::Defer { .. } => 2,
            Disposition::Reject { .. } => 3,
        }
    }
}

pub fn decide(policy: &DomainPolicy, assessment: &Assessment) -> Disposition {
    if policy.reject_ambiguous_from
        && let Some(problem) = from_problem(assessment)
    {
        return Disposition::Reject { reason: problem };
    }
    let verdict = &assessment.dmarc;
    match verdict.result {
        DmarcResult::Pass | DmarcResult::None | DmarcResult::PermError => Disposition::Deliver,
        DmarcResult::TempError => {
            // The policy record itself could not be read: it may say reject.
            if policy.defer_on_temperror {
                Disposition::Defer {
                    reason: format!(
                        "DNS failure looking up the DMARC policy of {}",
                        verdict.from_domain
                    ),
                }
            } else {
                Disposition::Deliver
            }
        }
        DmarcResult::Fail => failed(policy, assessment),
    }
}

/// RFC 7489 §6.6.1: exactly one author domain, or the message is refused.
fn from_problem(assessment: &Assessment) -> Option<String> {
    let from = &assessment.from;
    // No From at all shows no author to be fooled by: DMARC does not apply (result none) and
    // the message is delivered, as mail from scripts often lacks one.
    if from.fields == 0 {
        return None;
    }
    if from.fields > 1 {
        return Some("the message has more than one From header field (RFC 5322 §3.6)".to_string());
    }
    let mut domains = from.domains.clone();
    domains.sort();
    domains.dedup();
    match domains.len() {
        0 => Some("the From header field has no address with a domain".to_string()),
        1 => None,
        _ => Some("the From header field names several domains (RFC 7489 §6.6.1)".to_string()),
    }
}

fn failed(policy: &DomainPolicy, assessment: &Assessment) -> Disposition {
    let verdict = &assessment.dmarc;
    let action = match verdict.disposition {
        Policy::None => return Disposition::Deliver,
        Policy::Reject => policy.on_dmarc_reject,
        Policy::Quarantine => policy.on_dmarc_quarantine,
    };
    if action == FailureAction::Deliver {
        return Disposition::Deliver;
    }
    // RFC 8617 §7.2: a forwarder we trust vouches, with a valid chain, for what it saw.
    if assessment.arc.result == ArcResult::Pass
        && let Some(sealer) = assessment.arc.newest_sealer()
        && policy
            .trusted_arc_sealers
            .iter()
            .any(|trusted| trusted.trim_end_matches('.').eq_ignore_ascii_case(sealer))
    {
        return Disposition::Deliver;
    }
    // RFC 7489 §6.6.2 / SECURITY-TESTS DA-08: an aligned identifier that could not be checked
    // for a DNS failure might have passed: defer rather than punish.
    if policy.defer_on_temperror && aligned_check_incomplete(assessment) {
        return Disposition::Defer {
            reason: format!(
                "DNS failure while authenticating mail from {}",
                verdict.from_domain
            ),
        };
    }
    let reason = format!(
        "Rejected by the DMARC policy of {} (p={})",
        verdict.record_domain,
        verdict.requested.as_str()
    );
    match action {
        FailureAction::Reject => Disposition::Reject { reason },
        FailureAction::Junk => Disposition::Junk { reason },
        FailureAction::Deliver => Disposition::Deliver,
    }
}

/// Whether an SPF or DKIM check whose domain aligns with the From domain ended in temperror.
fn aligned_check_incomplete(assessment: &Assessment) -> bool {
    let verdict = &assessment.dmarc;
    let Some(record) = &verdict.record else {
        return false;
    };
    let from = verdict.from_domain.as_str();
    let spf = &assessment.spf;
    let spf_open = spf.result == SpfResult::TempError
        && dmarc::aligned(&spf.domain, from, record.spf_alignment);
    let dkim_open = assessment.dkim.iter().any(|dkim| {
        dkim.result == DkimResult::TempError
            && dmarc::aligned(&dkim.domain, from, record.dkim_alignment)
    });
    spf_open || dkim_open
}

/// RFC 7489 Appendix C `PolicyOverrideType`: why a failing message was treated more mildly
/// than its domain asked, for the aggregate report; `None` when it was not.
pub fn override_reason(
    policy: &DomainPolicy,
    assessment: &Assessment,
    applied: &Disposition,
) -> Option<&'static str> {
    let verdict = &assessment.dmarc;
    if verdict.result != DmarcResult::Fail {
        return None;
    }
    let asked = match verdict.requested {
        Policy::None => return None,
        Policy::Quarantine => 1,
        Policy::Reject => 2,
    };
    let done = match applied {
        Disposition::Deliver | Disposition::Defer { .. } => 0,
        Disposition::Junk { .. } => 1,
        Disposition::Reject { .. } => 2,
    };
    if done >= asked {
        return None;
    }
    if verdict.disposition != verdict.requested {
        // RFC 7489 §6.6.4: pct left this message out.
        return Some("sampled_out");
    }
    let trusted_forwarder = assessment.arc.result == ArcResult::Pass
        && assessment.arc.newest_sealer().is_some_and(|sealer| {
            policy
                .trusted_arc_sealers
                .iter()
                .any(|trusted| trusted.trim_end_matches('.').eq_ignore_ascii_case(sealer))
        });
    Some(if trusted_forwarder {
        "trusted_forwarder"
    } else {
        "local_policy"
    })
}
