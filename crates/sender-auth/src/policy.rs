//! What happens to a message once it is judged: delivered, filed as junk, refused at the end
//! of DATA, or deferred. The rules are the receiving domain's (`[sender_auth]` and its
//! per-domain tables, [`sealpost_config::SenderAuthConfig::rules_for`]), with safe defaults.

use sealpost_config::{AuthRules, FailureChoice};

use crate::Assessment;
use crate::arc::ArcResult;
use crate::dkim::DkimResult;
use crate::dmarc::{self, DmarcResult, Policy};
use crate::spf::SpfResult;

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

pub fn decide(policy: &AuthRules, assessment: &Assessment) -> Disposition {
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
    if from.malformed_header {
        // RFC 5322 §2.2: a header line that is no field lets a From hide from one parser and
        // show in another.
        return Some(
            "the header section has a line that is not a header field (RFC 5322 §2.2)".to_string(),
        );
    }
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

fn failed(policy: &AuthRules, assessment: &Assessment) -> Disposition {
    let verdict = &assessment.dmarc;
    let action = match verdict.disposition {
        Policy::None => return Disposition::Deliver,
        Policy::Reject => policy.dmarc_reject,
        Policy::Quarantine => policy.dmarc_quarantine,
    };
    if action == FailureChoice::Deliver {
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
        FailureChoice::Reject => Disposition::Reject { reason },
        FailureChoice::Junk => Disposition::Junk { reason },
        FailureChoice::Deliver => Disposition::Deliver,
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
    policy: &AuthRules,
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
