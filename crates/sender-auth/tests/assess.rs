//! Whole assessments: SPF, DKIM, ARC, iprev and DMARC together over a [`MemoryZone`] and the
//! key cache, the Authentication-Results field made from them (RFC 8601), and the disposition
//! the default policy gives (RFC 7489 §6.6, RFC 8617 §7.2, SECURITY-TESTS DA-08, DA-13, DA-16).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;

use sealpost_sender_auth::dmarc::Policy;
use sealpost_sender_auth::policy::{self, Disposition};
use sealpost_sender_auth::{
    ArcResult, Assessment, DkimResult, DmarcResult, IprevResult, MAX_ARC_SETS, MemoryZone,
    SpfResult, results,
};
use sealpost_sender_auth::{AuthRules, FailureChoice};
use support::{AUTHSERV_ID, CLIENT_IP, Vector, assert_golden, checker, client, result_lines};

fn reason(disposition: &Disposition) -> &str {
    match disposition {
        Disposition::Deliver => "",
        Disposition::Junk { reason }
        | Disposition::Reject { reason }
        | Disposition::Defer { reason } => reason,
    }
}

fn is_reject(disposition: &Disposition) -> bool {
    matches!(disposition, Disposition::Reject { .. })
}

// ----- Everything passes: RFC 8463 Appendix A from an authorised client --------------------

/// The zone of football.example.com: the client 192.0.2.1 is named client1.football.example.com
/// both ways, SPF authorises 192.0.2.0/24, DMARC asks for p=reject.
fn football_zone() -> MemoryZone {
    MemoryZone::new()
        .ptr(CLIENT_IP, "client1.football.example.com")
        .a("client1.football.example.com", Ipv4Addr::new(192, 0, 2, 1))
        .txt("football.example.com", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt("_dmarc.football.example.com", "v=DMARC1; p=reject")
}

#[tokio::test]
async fn spf_and_aligned_dkim_pass_dmarc_and_the_message_is_delivered() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let (checker, zone) = checker(football_zone());
    vector.publish(&checker);
    let client = client(
        CLIENT_IP,
        "client1.football.example.com",
        Some("joe@football.example.com"),
    );
    let assessment = support::assess(&checker, &client, &vector.message).await;

    assert_eq!(assessment.iprev.result, IprevResult::Pass);
    assert_eq!(assessment.spf.result, SpfResult::Pass);
    assert_eq!(
        assessment
            .dkim
            .iter()
            .map(|verdict| verdict.result)
            .collect::<Vec<_>>(),
        [DkimResult::Pass, DkimResult::Pass]
    );
    assert_eq!(assessment.arc.result, ArcResult::None);
    assert_eq!(assessment.dmarc.result, DmarcResult::Pass);
    assert!(assessment.dmarc.spf_aligned && assessment.dmarc.dkim_aligned);
    assert_eq!(assessment.from.domains, ["football.example.com"]);
    assert_eq!(
        policy::decide(&AuthRules::default(), &assessment),
        Disposition::Deliver
    );
    assert_eq!(
        policy::override_reason(&AuthRules::default(), &assessment, &Disposition::Deliver),
        None
    );
    // One DMARC query: the record is at the From domain itself.
    let dmarc_queries: Vec<_> = zone
        .asked()
        .into_iter()
        .filter(|question| question.contains("_dmarc"))
        .collect();
    assert_eq!(dmarc_queries, ["TXT _dmarc.football.example.com"]);

    // RFC 8601 §2.2: the authserv-id first, then one result per method: iprev, spf, dkim
    // (one per signature), dmarc, arc; CRLF line ends, folded with a tab.
    let field = results::header_field(AUTHSERV_ID, &assessment);
    assert!(field.starts_with("Authentication-Results: mx.receiver.example;\r\n\t"));
    assert!(field.ends_with("\r\n"));
    assert_eq!(field.matches('\n').count(), field.matches("\r\n").count());
    let methods: Vec<String> = result_lines(&field)
        .iter()
        .map(|line| line.split('=').next().unwrap().to_string())
        .collect();
    assert_eq!(methods, ["iprev", "spf", "dkim", "dkim", "dmarc", "arc"]);
    assert_golden(
        "dkim/rfc8463-a.authentication-results.expected",
        &field.replace("\r\n", "\n"),
    );
}

/// RFC 8601 §2.2: `pvalue = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]`,
/// where `value` is the MIME token or quoted-string (RFC 2045 §5.1), and a token holds no
/// tspecials. The RFC 8463 Ed25519 signature begins with "/": its header.b must be quoted.
#[tokio::test]
async fn header_b_values_are_rfc8601_pvalues() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let (checker, _zone) = checker(MemoryZone::new());
    vector.publish(&checker);
    let client = client(CLIENT_IP, "client.example", None);
    let assessment = support::assess(&checker, &client, &vector.message).await;
    let field = results::header_field(AUTHSERV_ID, &assessment);
    const TSPECIALS: &str = "()<>@,;:\\\"/[]?=";
    for line in result_lines(&field) {
        for property in line.split(' ').filter(|part| part.starts_with("header.b=")) {
            let value = &property["header.b=".len()..];
            let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
            assert!(
                quoted || !value.chars().any(|c| TSPECIALS.contains(c)),
                "{property} in {field}"
            );
        }
    }
}

// ----- DMARC failures and the local policy -------------------------------------------------

/// An unsigned message from sender.test, sent from a client that sender.test's SPF record
/// does not authorise: DMARC fails whatever `_dmarc.sender.test` says.
const UNSIGNED: &[u8] = b"From: Boss <boss@sender.test>\r\n\
To: someone@receiver.example\r\n\
Subject: urgent payment\r\n\
Date: Thu, 14 May 2026 10:00:00 +0000\r\n\
\r\n\
Please pay.\r\n";

async fn assess_unsigned(dmarc_record: &str) -> Assessment {
    let zone = MemoryZone::new()
        .txt("sender.test", "v=spf1 ip4:198.51.100.0/24 -all")
        .txt("_dmarc.sender.test", dmarc_record);
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("boss@sender.test"));
    let assessment = support::assess(&checker, &client, UNSIGNED).await;
    assert_eq!(assessment.spf.result, SpfResult::Fail);
    assert_eq!(assessment.dkim, []);
    assessment
}

#[tokio::test]
async fn dmarc_fail_under_p_reject_is_rejected() {
    let assessment = assess_unsigned("v=DMARC1; p=reject").await;
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
    let policy = AuthRules::default();
    let disposition = policy::decide(&policy, &assessment);
    assert_eq!(
        disposition,
        Disposition::Reject {
            reason: "Rejected by the DMARC policy of sender.test (p=reject)".to_string()
        }
    );
    assert_eq!(
        policy::override_reason(&policy, &assessment, &disposition),
        None
    );
    let field = results::header_field(AUTHSERV_ID, &assessment);
    assert!(
        field.contains(
            "dmarc=fail (p=reject dis=reject neither DKIM nor SPF aligned with sender.test) \
             header.from=sender.test"
        ),
        "{field}"
    );
    assert!(field.contains("\r\n\tdkim=none;\r\n"), "{field}");
}

#[tokio::test]
async fn dmarc_fail_under_p_quarantine_is_junk() {
    let assessment = assess_unsigned("v=DMARC1; p=quarantine").await;
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert!(
        matches!(disposition, Disposition::Junk { .. }),
        "{disposition:?}"
    );
    assert_eq!(
        policy::override_reason(&AuthRules::default(), &assessment, &disposition),
        None
    );
}

#[tokio::test]
async fn dmarc_fail_under_p_none_is_delivered() {
    let assessment = assess_unsigned("v=DMARC1; p=none").await;
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert_eq!(disposition, Disposition::Deliver);
    assert_eq!(
        policy::override_reason(&AuthRules::default(), &assessment, &disposition),
        None
    );
}

/// RFC 7489 §6.6.4: pct=0 leaves every failing message out of p=reject: the next policy down,
/// quarantine, applies, and the aggregate report says why ("sampled_out").
#[tokio::test]
async fn pct_zero_turns_reject_into_junk_sampled_out() {
    let assessment = assess_unsigned("v=DMARC1; p=reject; pct=0").await;
    assert_eq!(assessment.dmarc.requested, Policy::Reject);
    assert_eq!(assessment.dmarc.disposition, Policy::Quarantine);
    let policy = AuthRules::default();
    let disposition = policy::decide(&policy, &assessment);
    assert!(
        matches!(disposition, Disposition::Junk { .. }),
        "{disposition:?}"
    );
    assert_eq!(
        policy::override_reason(&policy, &assessment, &disposition),
        Some("sampled_out")
    );
}

/// The receiving domain files what the sender's domain would reject as junk instead.
#[tokio::test]
async fn a_local_policy_of_junk_for_p_reject_is_a_local_policy_override() {
    let assessment = assess_unsigned("v=DMARC1; p=reject").await;
    let policy = AuthRules {
        dmarc_reject: FailureChoice::Junk,
        ..AuthRules::default()
    };
    let disposition = policy::decide(&policy, &assessment);
    assert_eq!(
        disposition,
        Disposition::Junk {
            reason: "Rejected by the DMARC policy of sender.test (p=reject)".to_string()
        }
    );
    assert_eq!(
        policy::override_reason(&policy, &assessment, &disposition),
        Some("local_policy")
    );
}

// ----- ARC: a mailing list that broke the author's signature ---------------------------------

/// mail-auth's vector: mail from mauro@stalw.art through the jmap@ietf.org list, which
/// changed the body (stalw.art's signature fails) and re-signed as ietf.org, then received
/// by Google, which sealed it (ARC i=1, d=google.com). stalw.art asks for p=reject here.
async fn assess_forwarded() -> Assessment {
    let vector = Vector::read("arc/google-ietf-list.txt");
    let zone = MemoryZone::new().txt("_dmarc.stalw.art", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    vector.publish(&checker);
    let client = client(
        CLIENT_IP,
        "mail-forwarder.example",
        Some("jmap-bounces@ietf.org"),
    );
    let assessment = support::assess(&checker, &client, &vector.message).await;
    assert_eq!(
        assessment.arc.result,
        ArcResult::Pass,
        "{:?}",
        assessment.arc
    );
    assert_eq!(assessment.arc.instances, 1);
    assert_eq!(assessment.arc.newest_sealer(), Some("google.com"));
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
    assert_eq!(assessment.dmarc.from_domain, "stalw.art");
    let stalwart = assessment
        .dkim
        .iter()
        .find(|verdict| verdict.domain == "stalw.art")
        .unwrap();
    assert_eq!(stalwart.result, DkimResult::Fail);
    assert!(
        assessment
            .dkim
            .iter()
            .any(|verdict| verdict.domain == "ietf.org" && verdict.result == DkimResult::Pass)
    );
    assessment
}

/// RFC 8617 §7.2: a valid chain sealed last by a forwarder the domain trusts stands in for
/// the DMARC failure caused by forwarding ("trusted_forwarder" in the aggregate report).
#[tokio::test]
async fn a_trusted_arc_sealer_turns_a_dmarc_reject_into_delivery() {
    let assessment = assess_forwarded().await;
    let policy = AuthRules {
        // Case and a final dot do not matter.
        trusted_arc_sealers: vec!["Google.COM.".to_string()],
        ..AuthRules::default()
    };
    let disposition = policy::decide(&policy, &assessment);
    assert_eq!(disposition, Disposition::Deliver);
    assert_eq!(
        policy::override_reason(&policy, &assessment, &disposition),
        Some("trusted_forwarder")
    );
    let field = results::header_field(AUTHSERV_ID, &assessment);
    assert!(
        field.contains("\r\n\tarc=pass (i=1 d=google.com) smtp.remote-ip=192.0.2.1\r\n"),
        "{field}"
    );
}

#[tokio::test]
async fn an_untrusted_arc_sealer_changes_nothing() {
    let assessment = assess_forwarded().await;
    for trusted in [vec![], vec!["forwarder.example".to_string()]] {
        let policy = AuthRules {
            trusted_arc_sealers: trusted,
            ..AuthRules::default()
        };
        let disposition = policy::decide(&policy, &assessment);
        assert!(is_reject(&disposition), "{disposition:?}");
        assert_eq!(
            policy::override_reason(&policy, &assessment, &disposition),
            None
        );
    }
}

/// mail-auth's second ARC vector: two sets (scamorza.org, then manchego.org) with Ed25519
/// and RSA seals: the chain validates and its newest sealer is manchego.org.
#[tokio::test]
async fn a_chain_of_two_arc_sets_passes() {
    let vector = Vector::read("arc/manchego-scamorza.txt");
    let (checker, _zone) = checker(MemoryZone::new());
    vector.publish(&checker);
    let client = client(CLIENT_IP, "client.example", None);
    let assessment = support::assess(&checker, &client, &vector.message).await;
    assert_eq!(
        assessment.arc.result,
        ArcResult::Pass,
        "{:?}",
        assessment.arc
    );
    assert_eq!(assessment.arc.sealers, ["scamorza.org", "manchego.org"]);
    assert_eq!(assessment.arc.instances, 2);
}

/// A seal whose key is not published (no name server either) does not validate.
#[tokio::test]
async fn an_arc_chain_without_its_keys_fails() {
    let vector = Vector::read("arc/manchego-scamorza.txt");
    let (checker, _zone) = checker(MemoryZone::new());
    let client = client(CLIENT_IP, "client.example", None);
    let assessment = support::assess(&checker, &client, &vector.message).await;
    assert_eq!(
        assessment.arc.result,
        ArcResult::Fail,
        "{:?}",
        assessment.arc
    );
}

/// More than [`MAX_ARC_SETS`] ARC sets: the chain fails without being checked; the other
/// checks go on (the RFC 8463 signatures still pass: ARC fields are not in their h=).
#[tokio::test]
async fn more_than_ten_arc_sets_fail_without_being_checked() {
    let vector = Vector::read("dkim/rfc8463-a.txt");
    let arc_sets = |count: usize| {
        let mut message = Vec::new();
        for i in (1..=count).rev() {
            message.extend_from_slice(
                format!(
                    "ARC-Seal: i={i}; a=rsa-sha256; d=fwd{i}.example; s=arc; cv=pass; b=AAAA\r\n\
                     ARC-Message-Signature: i={i}; a=rsa-sha256; d=fwd{i}.example; s=arc; \
                     c=relaxed/relaxed; h=from; bh=AAAA; b=AAAA\r\n\
                     ARC-Authentication-Results: i={i}; fwd{i}.example; spf=pass\r\n"
                )
                .as_bytes(),
            );
        }
        message.extend_from_slice(&vector.message);
        message
    };
    let (checker, _zone) = checker(MemoryZone::new());
    vector.publish(&checker);
    let client = client(CLIENT_IP, "client.example", None);

    let assessment = support::assess(&checker, &client, &arc_sets(MAX_ARC_SETS + 1)).await;
    assert_eq!(assessment.arc.result, ArcResult::Fail);
    assert_eq!(assessment.arc.instances, 11);
    assert_eq!(assessment.arc.reason, "not checked: more than 10 ARC sets");
    assert!(
        assessment
            .dkim
            .iter()
            .all(|verdict| verdict.result == DkimResult::Pass)
    );
    let field = results::header_field(AUTHSERV_ID, &assessment);
    assert!(
        field.contains(
            "\r\n\tarc=fail (i=11 not checked: more than 10 ARC sets) smtp.remote-ip=192.0.2.1\r\n"
        ),
        "{field}"
    );

    // Ten sets are checked (and these fail, for their own reasons).
    let assessment = support::assess(&checker, &client, &arc_sets(MAX_ARC_SETS)).await;
    assert_eq!(assessment.arc.result, ArcResult::Fail);
    assert!(
        !assessment.arc.reason.contains("not checked"),
        "{:?}",
        assessment.arc
    );
}

// ----- DNS failures (SECURITY-TESTS DA-08) ---------------------------------------------------

/// The `_dmarc` record of the From domain cannot be read: temperror, and the organizational
/// domain's record (a weaker p=none) is not consulted instead.
async fn assess_with_failing_dmarc() -> Assessment {
    let zone = MemoryZone::new()
        .failing("_dmarc.mail.sender.test")
        .txt("_dmarc.sender.test", "v=DMARC1; p=none");
    let (checker, zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("boss@sender.test"));
    let message = String::from_utf8(UNSIGNED.to_vec())
        .unwrap()
        .replace("boss@sender.test", "boss@mail.sender.test");
    let assessment = support::assess(&checker, &client, message.as_bytes()).await;
    let asked = zone.asked();
    assert!(asked.contains(&"TXT _dmarc.mail.sender.test".to_string()));
    assert!(
        !asked.contains(&"TXT _dmarc.sender.test".to_string()),
        "{asked:?}"
    );
    assert_eq!(assessment.dmarc.result, DmarcResult::TempError);
    assert_eq!(assessment.dmarc.from_domain, "mail.sender.test");
    assessment
}

#[tokio::test]
async fn a_dmarc_lookup_failure_defers_by_default() {
    let assessment = assess_with_failing_dmarc().await;
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert_eq!(
        disposition,
        Disposition::Defer {
            reason: "DNS failure looking up the DMARC policy of mail.sender.test".to_string()
        }
    );
    let field = results::header_field(AUTHSERV_ID, &assessment);
    assert!(field.contains("\r\n\tdmarc=temperror ("), "{field}");
}

#[tokio::test]
async fn a_dmarc_lookup_failure_is_delivered_when_the_domain_does_not_defer() {
    let assessment = assess_with_failing_dmarc().await;
    let policy = AuthRules {
        defer_on_temperror: false,
        ..AuthRules::default()
    };
    assert_eq!(policy::decide(&policy, &assessment), Disposition::Deliver);
}

/// SPF could not be evaluated (DNS failure) for the MAIL FROM domain, which is the From
/// domain; there is no DKIM signature; p=reject. SPF might have passed: defer, not reject.
#[tokio::test]
async fn an_spf_temperror_on_the_aligned_domain_defers_a_dmarc_reject() {
    let zone = MemoryZone::new()
        .failing("sender.test")
        .txt("_dmarc.sender.test", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("boss@sender.test"));
    let assessment = support::assess(&checker, &client, UNSIGNED).await;
    assert_eq!(assessment.spf.result, SpfResult::TempError);
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert_eq!(
        disposition,
        Disposition::Defer {
            reason: "DNS failure while authenticating mail from sender.test".to_string()
        }
    );
    // Without deferral, the policy applies.
    let policy = AuthRules {
        defer_on_temperror: false,
        ..AuthRules::default()
    };
    assert!(is_reject(&policy::decide(&policy, &assessment)));
}

/// The same failure on a domain that does not align with From changes nothing.
#[tokio::test]
async fn an_spf_temperror_on_another_domain_does_not_defer() {
    let zone = MemoryZone::new()
        .failing("bounces.example")
        .txt("_dmarc.sender.test", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("list@bounces.example"));
    let assessment = support::assess(&checker, &client, UNSIGNED).await;
    assert_eq!(assessment.spf.result, SpfResult::TempError);
    assert!(is_reject(&policy::decide(
        &AuthRules::default(),
        &assessment
    )));
}

// ----- The From field (SECURITY-TESTS DA-13) ---------------------------------------------

/// `header` (the From fields) on top of a short body; the zone gives every From domain
/// p=reject, so that the domain DMARC picks is visible.
async fn assess_from(from_fields: &str) -> Assessment {
    let zone = MemoryZone::new()
        .txt("_dmarc.local.test", "v=DMARC1; p=reject")
        .txt("_dmarc.ext.test", "v=DMARC1; p=reject")
        .txt("_dmarc.x.test", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("bounce@bulk.example"));
    let message =
        format!("{from_fields}To: someone@receiver.example\r\nSubject: hi\r\n\r\nHello.\r\n");
    support::assess(&checker, &client, message.as_bytes()).await
}

#[tokio::test]
async fn two_from_fields_are_rejected() {
    let assessment = assess_from("From: a@x.test\r\nFrom: b@ext.test\r\n").await;
    assert_eq!(assessment.from.fields, 2);
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert_eq!(
        disposition,
        Disposition::Reject {
            reason: "the message has more than one From header field (RFC 5322 §3.6)".to_string()
        }
    );
}

#[tokio::test]
async fn a_from_field_with_two_domains_is_rejected() {
    let assessment = assess_from("From: a@x.test, b@ext.test\r\n").await;
    assert_eq!(assessment.from.fields, 1);
    assert_eq!(assessment.from.domains, ["x.test", "ext.test"]);
    assert_eq!(assessment.dmarc.result, DmarcResult::PermError);
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert_eq!(
        reason(&disposition),
        "the From header field names several domains (RFC 7489 §6.6.1)"
    );
    assert!(is_reject(&disposition));
}

/// Two addresses of one domain are one author domain.
#[tokio::test]
async fn a_from_field_with_two_addresses_of_one_domain_is_not_ambiguous() {
    let assessment = assess_from("From: a@ext.test, b@EXT.test\r\n").await;
    assert_eq!(assessment.from.domains, ["ext.test", "ext.test"]);
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
    assert_eq!(assessment.dmarc.from_domain, "ext.test");
}

/// DA-13 (d): a From with a display name that looks like an address and no address at all.
#[tokio::test]
async fn a_from_field_without_an_address_is_rejected() {
    let assessment = assess_from("From: \"ceo@local.test\" <>\r\n").await;
    assert_eq!(assessment.from.fields, 1);
    assert!(assessment.from.domains.is_empty(), "{:?}", assessment.from);
    let disposition = policy::decide(&AuthRules::default(), &assessment);
    assert_eq!(
        reason(&disposition),
        "the From header field has no address with a domain"
    );
}

/// No From at all: no author to be fooled; delivered.
#[tokio::test]
async fn a_message_without_from_is_delivered() {
    let assessment = assess_from("").await;
    assert_eq!(assessment.from.fields, 0);
    assert!(assessment.from.domains.is_empty());
    assert_eq!(
        policy::decide(&AuthRules::default(), &assessment),
        Disposition::Deliver
    );
}

/// RFC 7489 §11.2: "none: ... no aligned identifier could be extracted" — and the comment of
/// `policy::from_problem` says the same ("DMARC does not apply (result none)").
#[tokio::test]
async fn a_message_without_from_has_dmarc_none() {
    let assessment = assess_from("").await;
    assert_eq!(
        assessment.dmarc.result,
        DmarcResult::None,
        "{:?}",
        assessment.dmarc
    );
}

/// The display name is not the address: the domain is that of the angle-addr.
#[tokio::test]
async fn a_display_name_never_supplies_the_from_domain() {
    let assessment = assess_from("From: \"ceo@local.test\" <x@ext.test>\r\n").await;
    assert_eq!(assessment.from.domains, ["ext.test"]);
    assert_eq!(assessment.dmarc.from_domain, "ext.test");

    let assessment = assess_from("From: =?utf-8?Q?ceo=40local.test?= <x@ext.test>\r\n").await;
    assert_eq!(assessment.from.domains, ["ext.test"]);
    assert_eq!(assessment.dmarc.from_domain, "ext.test");
}

/// A comment is not an address either: the domain is that of the addr-spec before it.
#[tokio::test]
async fn a_comment_never_supplies_the_from_domain() {
    let assessment = assess_from("From: ceo@local.test (comment <x@ext.test>)\r\n").await;
    assert_eq!(assessment.from.domains, ["local.test"]);
    assert_eq!(assessment.dmarc.from_domain, "local.test");
    assert_eq!(assessment.dmarc.record_domain, "local.test");
}

// ----- Forged Authentication-Results (SECURITY-TESTS DA-16) --------------------------------

/// RFC 8601 §5: fields claiming our authserv-id are removed before ours is added; those of
/// other authserv-ids stay.
#[tokio::test]
async fn forged_authentication_results_naming_us_are_removed() {
    let message =
        b"Authentication-Results: mx.receiver.example; dkim=pass header.d=local.test;\r\n \
spf=pass smtp.mailfrom=local.test; dmarc=pass\r\n\
Received-SPF: pass\r\n\
Authentication-Results: MX.Receiver.Example.; spf=pass\r\n\
Authentication-Results: other.example; spf=fail smtp.mailfrom=ext.test\r\n\
From: ceo@local.test\r\n\
Subject: trust me\r\n\
\r\n\
Authentication-Results: mx.receiver.example; dkim=pass (in the body: kept)\r\n";
    let cleaned = results::without_forged(message, AUTHSERV_ID).unwrap();
    assert_eq!(
        String::from_utf8(cleaned.clone()).unwrap(),
        "Received-SPF: pass\r\n\
Authentication-Results: other.example; spf=fail smtp.mailfrom=ext.test\r\n\
From: ceo@local.test\r\n\
Subject: trust me\r\n\
\r\n\
Authentication-Results: mx.receiver.example; dkim=pass (in the body: kept)\r\n"
    );
    // Nothing to remove: nothing copied.
    assert_eq!(results::without_forged(&cleaned, AUTHSERV_ID), None);

    // The forged results counted for nothing: no signature, no SPF record.
    let zone = MemoryZone::new().txt("_dmarc.local.test", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("ceo@local.test"));
    let assessment = support::assess(&checker, &client, message).await;
    assert_eq!(assessment.dkim, []);
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
    assert!(is_reject(&policy::decide(
        &AuthRules::default(),
        &assessment
    )));
}

/// RFC 7505 §4.2 / SECURITY-TESTS DA-15: a sender domain with a null MX is recognised (the
/// SMTP service then refuses MAIL FROM with 550 5.7.27); an ordinary MX, none at all, or a
/// DNS failure is not a reason to refuse.
#[tokio::test]
async fn a_null_mx_sender_domain_is_recognised() {
    let zone = MemoryZone::new()
        .mx("nullmx.ext.test", ".")
        .mx("mail.ext.test", "mx.ext.test")
        .failing("broken.ext.test");
    let (checker, _zone) = checker(zone);
    assert!(checker.sender_has_null_mx("ceo@nullmx.ext.test").await);
    assert!(!checker.sender_has_null_mx("ceo@mail.ext.test").await);
    assert!(!checker.sender_has_null_mx("ceo@nomx.ext.test").await);
    assert!(!checker.sender_has_null_mx("ceo@broken.ext.test").await);
    assert!(!checker.sender_has_null_mx("no-domain").await);
}

/// A stray line in the header section (no colon, or an empty name) must not hide the From
/// after it from DMARC while mail clients still show it: such a message is refused.
#[tokio::test]
async fn a_stray_header_line_cannot_hide_the_from() {
    let zone = MemoryZone::new().txt("_dmarc.paypal.example", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("x@attacker.example"));
    for message in [
        &b"X\r\nFrom: ceo@paypal.example\r\nSubject: hi\r\n\r\nbody\r\n"[..],
        b":\r\nFrom: ceo@paypal.example\r\nSubject: hi\r\n\r\nbody\r\n",
    ] {
        let assessment = support::assess(&checker, &client, message).await;
        assert!(assessment.from.malformed_header);
        assert_eq!(
            assessment.from.fields, 1,
            "the From after the stray line is seen"
        );
        assert!(matches!(
            policy::decide(&AuthRules::default(), &assessment),
            Disposition::Reject { .. }
        ));
    }
}

/// Parsing hashes the body once per distinct (canonicalization, algorithm, l=) among the
/// signatures: ARC message signatures asking for more than MAX_BODY_HASHES passes leave the
/// chain unchecked (failed), while DKIM still runs.
#[tokio::test]
async fn too_many_body_hashes_leave_arc_unchecked() {
    let (checker, _zone) = checker(MemoryZone::new());
    let client = client(CLIENT_IP, "client.example", Some("a@sender.example"));
    let mut message = String::new();
    for i in 1..=10 {
        message.push_str(&format!(
            "ARC-Seal: i={i}; a=rsa-sha256; cv={}; d=fwd.example; s=s; t=1; b=AAAA\r\n",
            if i == 1 { "none" } else { "pass" }
        ));
        message.push_str(&format!(
            "ARC-Message-Signature: i={i}; a=rsa-sha256; c=relaxed/relaxed; d=fwd.example; \
             s=s; t=1; l={i}; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
        ));
        message.push_str(&format!(
            "ARC-Authentication-Results: i={i}; fwd.example; spf=pass\r\n"
        ));
    }
    message.push_str("From: a@sender.example\r\nSubject: x\r\n\r\nbody\r\n");
    let assessment = support::assess(&checker, &client, message.as_bytes()).await;
    assert_eq!(assessment.arc.result, ArcResult::Fail);
    assert!(
        assessment.arc.reason.contains("body hashes"),
        "{:?}",
        assessment.arc
    );
}

/// A large message is parsed off the async worker (block_in_place on the server's
/// multi-threaded runtime) with the same verdicts as a small one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_is_judged_on_the_multi_threaded_runtime() {
    let zone = MemoryZone::new().txt("_dmarc.sender.example", "v=DMARC1; p=reject");
    let (checker, _zone) = checker(zone);
    let client = client(CLIENT_IP, "client.example", Some("a@sender.example"));
    let mut message = String::from("From: a@sender.example\r\nSubject: big\r\n\r\n");
    while message.len() < 400 * 1024 {
        message.push_str("a line of a large message body, repeated many times over\r\n");
    }
    let assessment = support::assess(&checker, &client, message.as_bytes()).await;
    assert_eq!(assessment.from.fields, 1);
    assert_eq!(assessment.dmarc.result, DmarcResult::Fail);
}
