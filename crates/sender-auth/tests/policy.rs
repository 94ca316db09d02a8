//! The receiving domain's policy over hand-built assessments: every branch of
//! [`policy::decide`] and [`policy::override_reason`] (RFC 7489 §6.6.4 and Appendix C,
//! RFC 8617 §7.2, SECURITY-TESTS DA-08 and DA-13), and [`SenderAuthConfig::rules_for`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};

use sealpost_sender_auth::dmarc::{DmarcRecord, Policy};
use sealpost_sender_auth::policy::{self, Disposition};
use sealpost_sender_auth::spf::SpfIdentity;
use sealpost_sender_auth::{
    ArcResult, ArcVerdict, Assessment, DkimResult, DkimVerdict, DmarcResult, DmarcVerdict,
    FromFields, IprevResult, IprevVerdict, SpfResult, SpfVerdict,
};
use sealpost_sender_auth::{AuthRules, FailureChoice, SenderAuthConfig};

const FROM: &str = "sender.test";

/// A message from sender.test that passed DMARC with p=reject: one From field, SPF and DKIM
/// pass for sender.test, no ARC.
fn passing() -> Assessment {
    Assessment {
        iprev: IprevVerdict {
            result: IprevResult::Pass,
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            name: Some("mail.sender.test".to_string()),
        },
        spf: SpfVerdict {
            result: SpfResult::Pass,
            identity: SpfIdentity::MailFrom,
            domain: FROM.to_string(),
            checked: format!("bounce@{FROM}"),
            reason: String::new(),
            explanation: None,
        },
        dkim: vec![dkim(DkimResult::Pass, FROM)],
        arc: ArcVerdict::none(),
        dmarc: DmarcVerdict {
            result: DmarcResult::Pass,
            from_domain: FROM.to_string(),
            record: Some(DmarcRecord::parse("v=DMARC1; p=reject").unwrap()),
            record_domain: FROM.to_string(),
            requested: Policy::Reject,
            disposition: Policy::None,
            spf_aligned: true,
            dkim_aligned: true,
            reason: "DKIM and SPF aligned".to_string(),
        },
        from: FromFields {
            fields: 1,
            domains: vec![FROM.to_string()],
            malformed_header: false,
        },
    }
}

fn dkim(result: DkimResult, domain: &str) -> DkimVerdict {
    DkimVerdict {
        result,
        domain: domain.to_string(),
        selector: "sel".to_string(),
        algorithm: "ed25519-sha256",
        signature_prefix: "AAAAAAAAAAAA".to_string(),
        reason: String::new(),
    }
}

/// The same message failing DMARC under `record` (neither SPF nor DKIM passed): the
/// requested policy is p=, applied as `disposition` (pct sampling).
fn failing(record: &str, disposition: Policy) -> Assessment {
    let mut assessment = passing();
    let record = DmarcRecord::parse(record).unwrap();
    assessment.spf.result = SpfResult::Fail;
    assessment.dkim = vec![dkim(DkimResult::Fail, FROM)];
    assessment.dmarc = DmarcVerdict {
        result: DmarcResult::Fail,
        requested: record.policy,
        record: Some(record),
        disposition,
        spf_aligned: false,
        dkim_aligned: false,
        reason: format!("neither DKIM nor SPF aligned with {FROM}"),
        ..assessment.dmarc
    };
    assessment
}

fn rejecting() -> Assessment {
    failing("v=DMARC1; p=reject", Policy::Reject)
}

fn sealed(mut assessment: Assessment, result: ArcResult, sealers: &[&str]) -> Assessment {
    assessment.arc = ArcVerdict {
        result,
        instances: sealers.len() as u32,
        sealers: sealers.iter().map(|sealer| sealer.to_string()).collect(),
        reason: String::new(),
    };
    assessment
}

fn with_from(mut assessment: Assessment, fields: usize, domains: &[&str]) -> Assessment {
    assessment.from = FromFields {
        fields,
        domains: domains.iter().map(|domain| domain.to_string()).collect(),
        malformed_header: false,
    };
    assessment
}

fn with_spf_temperror(mut assessment: Assessment, domain: &str) -> Assessment {
    assessment.spf.result = SpfResult::TempError;
    assessment.spf.domain = domain.to_string();
    assessment
}

fn with_dkim_temperror(mut assessment: Assessment, domain: &str) -> Assessment {
    assessment.dkim = vec![dkim(DkimResult::TempError, domain)];
    assessment
}

fn with_dmarc_result(mut assessment: Assessment, result: DmarcResult) -> Assessment {
    assessment.dmarc.result = result;
    assessment
}

fn trusting(sealers: &[&str]) -> AuthRules {
    AuthRules {
        trusted_arc_sealers: sealers.iter().map(|sealer| sealer.to_string()).collect(),
        ..AuthRules::default()
    }
}

fn deliver() -> Disposition {
    Disposition::Deliver
}
fn junk(reason: &str) -> Disposition {
    Disposition::Junk {
        reason: reason.to_string(),
    }
}
fn reject(reason: &str) -> Disposition {
    Disposition::Reject {
        reason: reason.to_string(),
    }
}
fn defer(reason: &str) -> Disposition {
    Disposition::Defer {
        reason: reason.to_string(),
    }
}

const BY_P_REJECT: &str = "Rejected by the DMARC policy of sender.test (p=reject)";
const BY_P_QUARANTINE: &str = "Rejected by the DMARC policy of sender.test (p=quarantine)";
const SEVERAL_FIELDS: &str = "the message has more than one From header field (RFC 5322 §3.6)";
const SEVERAL_DOMAINS: &str = "the From header field names several domains (RFC 7489 §6.6.1)";
const NO_DOMAIN: &str = "the From header field has no address with a domain";
const TEMPERROR: &str = "DNS failure while authenticating mail from sender.test";

#[test]
fn the_defaults_are_safe() {
    let policy = AuthRules::default();
    assert_eq!(policy.dmarc_reject, FailureChoice::Reject);
    assert_eq!(policy.dmarc_quarantine, FailureChoice::Junk);
    assert!(policy.defer_on_temperror);
    assert!(policy.reject_ambiguous_from);
    assert!(policy.trusted_arc_sealers.is_empty());
}

/// RFC 5322 §3.6 / RFC 7489 §6.6.1 (DA-13): the From checks come before DMARC.
#[test]
fn ambiguous_from_fields() {
    let no_check = AuthRules {
        reject_ambiguous_from: false,
        ..AuthRules::default()
    };
    let cases: Vec<(&str, AuthRules, Assessment, Disposition)> = vec![
        (
            "two From fields",
            AuthRules::default(),
            with_from(passing(), 2, &[FROM, FROM]),
            reject(SEVERAL_FIELDS),
        ),
        (
            "two From fields, even with a trusted ARC seal",
            trusting(&["forwarder.example"]),
            sealed(
                with_from(rejecting(), 2, &[FROM, "ext.test"]),
                ArcResult::Pass,
                &["forwarder.example"],
            ),
            reject(SEVERAL_FIELDS),
        ),
        (
            "two domains in one field",
            AuthRules::default(),
            with_from(passing(), 1, &[FROM, "ext.test"]),
            reject(SEVERAL_DOMAINS),
        ),
        (
            "one field without a domain",
            AuthRules::default(),
            with_from(passing(), 1, &[]),
            reject(NO_DOMAIN),
        ),
        (
            "two addresses of one domain",
            AuthRules::default(),
            with_from(passing(), 1, &[FROM, FROM]),
            deliver(),
        ),
        (
            "no From field at all",
            AuthRules::default(),
            with_from(with_dmarc_result(passing(), DmarcResult::PermError), 0, &[]),
            deliver(),
        ),
        (
            "two From fields, check off, DMARC pass",
            no_check.clone(),
            with_from(passing(), 2, &[FROM, "ext.test"]),
            deliver(),
        ),
        (
            "two From fields, check off, DMARC fail: DMARC decides",
            no_check,
            with_from(rejecting(), 2, &[FROM, FROM]),
            reject(BY_P_REJECT),
        ),
    ];
    for (name, policy, assessment, expected) in cases {
        assert_eq!(policy::decide(&policy, &assessment), expected, "{name}");
    }
}

/// Every DMARC result other than fail, under the default policy and without deferral.
#[test]
fn dmarc_results_other_than_fail() {
    let no_defer = AuthRules {
        defer_on_temperror: false,
        ..AuthRules::default()
    };
    let cases = [
        (DmarcResult::Pass, AuthRules::default(), deliver()),
        (DmarcResult::None, AuthRules::default(), deliver()),
        (DmarcResult::PermError, AuthRules::default(), deliver()),
        (
            DmarcResult::TempError,
            AuthRules::default(),
            defer("DNS failure looking up the DMARC policy of sender.test"),
        ),
        (DmarcResult::TempError, no_defer, deliver()),
    ];
    for (result, policy, expected) in cases {
        let assessment = with_dmarc_result(passing(), result);
        assert_eq!(policy::decide(&policy, &assessment), expected, "{result:?}");
    }
}

/// DMARC fail: what the domain owner asks (after pct), mapped through the local actions.
#[test]
fn dmarc_fail_by_policy_and_local_action() {
    let actions = |on_reject, on_quarantine| AuthRules {
        dmarc_reject: on_reject,
        dmarc_quarantine: on_quarantine,
        ..AuthRules::default()
    };
    use FailureChoice::{Deliver, Junk, Reject};
    let quarantining = || failing("v=DMARC1; p=quarantine", Policy::Quarantine);
    let cases: Vec<(&str, AuthRules, Assessment, Disposition)> = vec![
        (
            "p=none",
            AuthRules::default(),
            failing("v=DMARC1; p=none", Policy::None),
            deliver(),
        ),
        (
            "p=reject",
            AuthRules::default(),
            rejecting(),
            reject(BY_P_REJECT),
        ),
        (
            "p=quarantine",
            AuthRules::default(),
            quarantining(),
            junk(BY_P_QUARANTINE),
        ),
        (
            "p=reject, local junk",
            actions(Junk, Junk),
            rejecting(),
            junk(BY_P_REJECT),
        ),
        (
            "p=reject, local deliver",
            actions(Deliver, Junk),
            rejecting(),
            deliver(),
        ),
        (
            "p=quarantine, local reject",
            actions(Reject, Reject),
            quarantining(),
            reject(BY_P_QUARANTINE),
        ),
        (
            "p=quarantine, local deliver",
            actions(Reject, Deliver),
            quarantining(),
            deliver(),
        ),
        (
            "p=reject sampled out by pct: quarantine applies, p=reject is named",
            AuthRules::default(),
            failing("v=DMARC1; p=reject; pct=50", Policy::Quarantine),
            junk(BY_P_REJECT),
        ),
        (
            "p=quarantine sampled out by pct: none applies",
            AuthRules::default(),
            failing("v=DMARC1; p=quarantine; pct=50", Policy::None),
            deliver(),
        ),
    ];
    for (name, policy, assessment, expected) in cases {
        assert_eq!(policy::decide(&policy, &assessment), expected, "{name}");
    }
}

/// The reason names the domain whose record applied, and the policy it asked for: a
/// subdomain under its organizational domain's sp=.
#[test]
fn the_reason_names_the_record_that_applied() {
    let mut assessment = failing("v=DMARC1; p=none; sp=reject", Policy::Reject);
    assessment.dmarc.from_domain = "mail.sender.test".to_string();
    assessment.dmarc.requested = Policy::Reject;
    assessment.from.domains = vec!["mail.sender.test".to_string()];
    assert_eq!(
        policy::decide(&AuthRules::default(), &assessment),
        reject(BY_P_REJECT)
    );
}

/// RFC 8617 §7.2: only a passing chain whose newest seal is by a trusted forwarder counts.
#[test]
fn trusted_arc_sealers() {
    let cases: Vec<(&str, AuthRules, Assessment, Disposition)> = vec![
        (
            "newest sealer trusted",
            trusting(&["forwarder.example"]),
            sealed(rejecting(), ArcResult::Pass, &["forwarder.example"]),
            deliver(),
        ),
        (
            "trusted name in another case, with a final dot",
            trusting(&["Forwarder.EXAMPLE."]),
            sealed(rejecting(), ArcResult::Pass, &["forwarder.example"]),
            deliver(),
        ),
        (
            "quarantine overridden too",
            trusting(&["forwarder.example"]),
            sealed(
                failing("v=DMARC1; p=quarantine", Policy::Quarantine),
                ArcResult::Pass,
                &["forwarder.example"],
            ),
            deliver(),
        ),
        (
            "trusted forwarder sealed first, an unknown one last",
            trusting(&["forwarder.example"]),
            sealed(
                rejecting(),
                ArcResult::Pass,
                &["forwarder.example", "unknown.example"],
            ),
            reject(BY_P_REJECT),
        ),
        (
            "chain of a trusted forwarder that failed",
            trusting(&["forwarder.example"]),
            sealed(rejecting(), ArcResult::Fail, &["forwarder.example"]),
            reject(BY_P_REJECT),
        ),
        (
            "valid chain of an untrusted forwarder",
            trusting(&["forwarder.example"]),
            sealed(rejecting(), ArcResult::Pass, &["other.example"]),
            reject(BY_P_REJECT),
        ),
        (
            "a parent domain of the sealer is not trusted for it",
            trusting(&["example"]),
            sealed(rejecting(), ArcResult::Pass, &["forwarder.example"]),
            reject(BY_P_REJECT),
        ),
        (
            "trusted seal beats a pending DNS failure",
            trusting(&["forwarder.example"]),
            sealed(
                with_spf_temperror(rejecting(), FROM),
                ArcResult::Pass,
                &["forwarder.example"],
            ),
            deliver(),
        ),
    ];
    for (name, policy, assessment, expected) in cases {
        assert_eq!(policy::decide(&policy, &assessment), expected, "{name}");
    }
}

/// SECURITY-TESTS DA-08 / RFC 7489 §6.6.2: an aligned identifier that could not be checked
/// might have passed: defer rather than punish. Alignment follows aspf/adkim.
#[test]
fn aligned_checks_left_open_by_dns_failures() {
    let no_defer = AuthRules {
        defer_on_temperror: false,
        ..AuthRules::default()
    };
    let local_junk = AuthRules {
        dmarc_reject: FailureChoice::Junk,
        ..AuthRules::default()
    };
    let strict = |assessment: Assessment| {
        let mut assessment = assessment;
        let record = DmarcRecord::parse("v=DMARC1; p=reject; aspf=s; adkim=s").unwrap();
        assessment.dmarc.record = Some(record);
        assessment
    };
    let without_record = |assessment: Assessment| {
        let mut assessment = assessment;
        assessment.dmarc.record = None;
        assessment
    };
    let cases: Vec<(&str, AuthRules, Assessment, Disposition)> = vec![
        (
            "SPF temperror for the From domain",
            AuthRules::default(),
            with_spf_temperror(rejecting(), FROM),
            defer(TEMPERROR),
        ),
        (
            "SPF temperror for a subdomain, relaxed",
            AuthRules::default(),
            with_spf_temperror(rejecting(), "bounces.sender.test"),
            defer(TEMPERROR),
        ),
        (
            "SPF temperror for a subdomain, aspf=s",
            AuthRules::default(),
            strict(with_spf_temperror(rejecting(), "bounces.sender.test")),
            reject(BY_P_REJECT),
        ),
        (
            "SPF temperror for another domain",
            AuthRules::default(),
            with_spf_temperror(rejecting(), "other.test"),
            reject(BY_P_REJECT),
        ),
        (
            "DKIM temperror for the From domain",
            AuthRules::default(),
            with_dkim_temperror(rejecting(), FROM),
            defer(TEMPERROR),
        ),
        (
            "DKIM temperror for a subdomain, adkim=s",
            AuthRules::default(),
            strict(with_dkim_temperror(rejecting(), "mail.sender.test")),
            reject(BY_P_REJECT),
        ),
        (
            "DKIM temperror for another domain",
            AuthRules::default(),
            with_dkim_temperror(rejecting(), "other.test"),
            reject(BY_P_REJECT),
        ),
        (
            "aligned temperror, deferral off",
            no_defer,
            with_spf_temperror(rejecting(), FROM),
            reject(BY_P_REJECT),
        ),
        (
            "aligned temperror, local junk: still deferred",
            local_junk,
            with_dkim_temperror(rejecting(), FROM),
            defer(TEMPERROR),
        ),
        (
            "no record to align with",
            AuthRules::default(),
            without_record(with_spf_temperror(rejecting(), FROM)),
            reject(BY_P_REJECT),
        ),
        (
            "p=none is delivered before any deferral",
            AuthRules::default(),
            with_spf_temperror(failing("v=DMARC1; p=none", Policy::None), FROM),
            deliver(),
        ),
    ];
    for (name, policy, assessment, expected) in cases {
        assert_eq!(policy::decide(&policy, &assessment), expected, "{name}");
    }
}

/// RFC 7489 Appendix C `PolicyOverrideType`, for the aggregate report.
#[test]
fn override_reasons() {
    let junk_locally = AuthRules {
        dmarc_reject: FailureChoice::Junk,
        ..AuthRules::default()
    };
    let cases: Vec<(&str, AuthRules, Assessment, Disposition, Option<&str>)> = vec![
        (
            "DMARC pass",
            AuthRules::default(),
            passing(),
            deliver(),
            None,
        ),
        (
            "DMARC temperror, delivered",
            AuthRules::default(),
            with_dmarc_result(passing(), DmarcResult::TempError),
            deliver(),
            None,
        ),
        (
            "fail under p=none",
            AuthRules::default(),
            failing("v=DMARC1; p=none", Policy::None),
            deliver(),
            None,
        ),
        (
            "p=reject enforced",
            AuthRules::default(),
            rejecting(),
            reject(BY_P_REJECT),
            None,
        ),
        (
            "p=quarantine enforced",
            AuthRules::default(),
            failing("v=DMARC1; p=quarantine", Policy::Quarantine),
            junk(BY_P_QUARANTINE),
            None,
        ),
        (
            "p=quarantine, rejected: stricter is no override",
            AuthRules::default(),
            failing("v=DMARC1; p=quarantine", Policy::Quarantine),
            reject(BY_P_QUARANTINE),
            None,
        ),
        (
            "p=reject sampled out to quarantine",
            AuthRules::default(),
            failing("v=DMARC1; p=reject; pct=10", Policy::Quarantine),
            junk(BY_P_REJECT),
            Some("sampled_out"),
        ),
        (
            "p=quarantine sampled out to none",
            AuthRules::default(),
            failing("v=DMARC1; p=quarantine; pct=10", Policy::None),
            deliver(),
            Some("sampled_out"),
        ),
        (
            "p=reject, junk by local policy",
            junk_locally.clone(),
            rejecting(),
            junk(BY_P_REJECT),
            Some("local_policy"),
        ),
        (
            "p=reject, delivered by local policy",
            junk_locally,
            rejecting(),
            deliver(),
            Some("local_policy"),
        ),
        (
            "p=reject, delivered for a trusted forwarder",
            trusting(&["Forwarder.Example."]),
            sealed(rejecting(), ArcResult::Pass, &["forwarder.example"]),
            deliver(),
            Some("trusted_forwarder"),
        ),
        (
            "trusted forwarder not the newest sealer",
            trusting(&["forwarder.example"]),
            sealed(
                rejecting(),
                ArcResult::Pass,
                &["forwarder.example", "other.example"],
            ),
            deliver(),
            Some("local_policy"),
        ),
        (
            "trusted forwarder's chain failed",
            trusting(&["forwarder.example"]),
            sealed(rejecting(), ArcResult::Fail, &["forwarder.example"]),
            deliver(),
            Some("local_policy"),
        ),
    ];
    for (name, policy, assessment, applied, expected) in cases {
        assert_eq!(
            policy::override_reason(&policy, &assessment, &applied),
            expected,
            "{name}"
        );
    }
}

/// decide and override_reason agree: what decide gives is explained by override_reason.
#[test]
fn decisions_and_their_override_reasons() {
    let cases: Vec<(AuthRules, Assessment, Option<&str>)> = vec![
        (AuthRules::default(), rejecting(), None),
        (
            AuthRules::default(),
            failing("v=DMARC1; p=reject; pct=0", Policy::Quarantine),
            Some("sampled_out"),
        ),
        (
            AuthRules {
                dmarc_reject: FailureChoice::Deliver,
                ..AuthRules::default()
            },
            rejecting(),
            Some("local_policy"),
        ),
        (
            trusting(&["forwarder.example"]),
            sealed(rejecting(), ArcResult::Pass, &["forwarder.example"]),
            Some("trusted_forwarder"),
        ),
    ];
    for (policy, assessment, expected) in cases {
        let applied = policy::decide(&policy, &assessment);
        assert_eq!(
            policy::override_reason(&policy, &assessment, &applied),
            expected,
            "{applied:?}"
        );
    }
}

/// When recipients of several domains disagree, the strictest disposition wins.
#[test]
fn severity_orders_dispositions() {
    let ordered = [deliver(), junk("j"), defer("d"), reject("r")];
    for pair in ordered.windows(2) {
        assert!(pair[0].severity() < pair[1].severity(), "{pair:?}");
    }
    let strictest = [junk("j"), reject("r"), deliver(), defer("d")]
        .into_iter()
        .max_by_key(Disposition::severity)
        .unwrap();
    assert_eq!(strictest, reject("r"));
}

#[test]
fn policies_by_receiving_domain() {
    let lenient = AuthRules {
        dmarc_reject: FailureChoice::Junk,
        ..AuthRules::default()
    };
    let trusting_list = trusting(&["lists.example"]);
    let policies = SenderAuthConfig {
        enabled: true,
        rules: AuthRules::default(),
        domains: vec![
            ("example.org".to_string(), lenient.clone()),
            ("mail.example.net".to_string(), trusting_list.clone()),
        ],
    };
    let cases = [
        ("example.org", &lenient),
        ("EXAMPLE.ORG", &lenient),
        ("Example.Org.", &lenient),
        ("example.org.", &lenient),
        ("mail.example.net", &trusting_list),
        ("MAIL.example.NET.", &trusting_list),
        // Neither a subdomain nor a parent inherits a domain's rules.
        ("sub.example.org", &policies.rules),
        ("example.net", &policies.rules),
        ("org", &policies.rules),
        ("example.org.evil", &policies.rules),
        ("", &policies.rules),
    ];
    for (domain, expected) in cases {
        assert_eq!(policies.rules_for(domain), expected, "{domain:?}");
    }
    // The first rules given for a domain apply.
    let doubled = SenderAuthConfig {
        enabled: true,
        rules: AuthRules::default(),
        domains: vec![
            ("example.org".to_string(), lenient.clone()),
            ("example.org".to_string(), trusting_list),
        ],
    };
    assert_eq!(doubled.rules_for("example.org"), &lenient);
}
