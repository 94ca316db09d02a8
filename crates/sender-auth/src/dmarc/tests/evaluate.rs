//! The evaluation (RFC 7489 §6.6) over an in-memory zone.

use super::{parse, uri};
use crate::dmarc::*;
use crate::lookup::MemoryZone;

fn strings(domains: &[&str]) -> Vec<String> {
    domains.iter().map(|domain| domain.to_string()).collect()
}

/// Evaluates with the given From domains, SPF-passed domain and DKIM-passed domains.
async fn run(
    zone: &MemoryZone,
    from: &[&str],
    spf: Option<&str>,
    dkim: &[&str],
    sample: u8,
) -> DmarcVerdict {
    let from_domains = strings(from);
    let dkim_pass_domains = strings(dkim);
    let input = DmarcInput {
        from_domains: &from_domains,
        spf_pass_domain: spf,
        dkim_pass_domains: &dkim_pass_domains,
    };
    evaluate(zone, &input, sample).await
}

fn zone_with(name: &str, record: &str) -> MemoryZone {
    MemoryZone::new().txt(name, record)
}

#[test]
fn result_names() {
    for (result, name) in [
        (DmarcResult::None, "none"),
        (DmarcResult::Pass, "pass"),
        (DmarcResult::Fail, "fail"),
        (DmarcResult::TempError, "temperror"),
        (DmarcResult::PermError, "permerror"),
    ] {
        assert_eq!(result.as_str(), name);
    }
}

#[tokio::test]
async fn dkim_aligned_passes() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["example.com"], None, &["example.com"], 0).await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert!(verdict.dkim_aligned);
    assert!(!verdict.spf_aligned);
    assert_eq!(verdict.requested, Policy::Reject);
    assert_eq!(verdict.disposition, Policy::None);
    assert_eq!(verdict.from_domain, "example.com");
    assert_eq!(verdict.record_domain, "example.com");
    assert_eq!(verdict.record, Some(parse("v=DMARC1; p=reject")));
    assert_eq!(verdict.reason, "DKIM aligned");
    assert_eq!(zone.asked(), vec!["TXT _dmarc.example.com"]);
}

#[tokio::test]
async fn spf_aligned_relaxed_passes() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["example.com"], Some("bounces.example.com"), &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert!(verdict.spf_aligned);
    assert!(!verdict.dkim_aligned);
    assert_eq!(verdict.disposition, Policy::None);
}

#[tokio::test]
async fn both_aligned_passes() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(
        &zone,
        &["example.com"],
        Some("example.com"),
        &["example.com"],
        0,
    )
    .await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert!(verdict.spf_aligned && verdict.dkim_aligned);
    assert_eq!(verdict.reason, "DKIM and SPF aligned");
}

#[tokio::test]
async fn strict_alignment_modes() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s; aspf=s");
    let verdict = run(
        &zone,
        &["example.com"],
        Some("bounces.example.com"),
        &["mail.example.com"],
        0,
    )
    .await;
    assert_eq!(verdict.result, DmarcResult::Fail);
    assert!(!verdict.spf_aligned && !verdict.dkim_aligned);
    assert_eq!(verdict.disposition, Policy::Reject);

    let verdict = run(&zone, &["example.com"], Some("example.com"), &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert!(verdict.spf_aligned);

    // adkim=s but aspf relaxed.
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s");
    let verdict = run(
        &zone,
        &["example.com"],
        Some("bounces.example.com"),
        &["mail.example.com"],
        0,
    )
    .await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert!(verdict.spf_aligned && !verdict.dkim_aligned);
}

#[tokio::test]
async fn any_aligned_dkim_signature_is_enough() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(
        &zone,
        &["example.com"],
        Some("esp.example.net"),
        &["esp.example.net", "news.example.com"],
        0,
    )
    .await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert!(verdict.dkim_aligned && !verdict.spf_aligned);
}

#[tokio::test]
async fn unaligned_passes_fail_with_each_policy() {
    for (policy, expected) in [
        ("reject", Policy::Reject),
        ("quarantine", Policy::Quarantine),
        ("none", Policy::None),
    ] {
        let zone = zone_with("_dmarc.example.com", &format!("v=DMARC1; p={policy}"));
        let verdict = run(
            &zone,
            &["example.com"],
            Some("attacker.example"),
            &["attacker.example", "com"],
            0,
        )
        .await;
        assert_eq!(verdict.result, DmarcResult::Fail, "p={policy}");
        assert_eq!(verdict.requested, expected, "p={policy}");
        assert_eq!(verdict.disposition, expected, "p={policy}");
        assert!(!verdict.spf_aligned && !verdict.dkim_aligned);
        assert_eq!(
            verdict.reason,
            "neither DKIM nor SPF aligned with example.com"
        );
    }
}

#[tokio::test]
async fn subdomain_gets_sp_of_the_organizational_record() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::Fail);
    assert_eq!(verdict.from_domain, "mail.example.com");
    assert_eq!(verdict.record_domain, "example.com");
    assert_eq!(verdict.requested, Policy::Quarantine);
    assert_eq!(verdict.disposition, Policy::Quarantine);
    assert_eq!(
        zone.asked(),
        vec!["TXT _dmarc.mail.example.com", "TXT _dmarc.example.com"]
    );

    // sp=none weakens subdomains below p=reject.
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; sp=none");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.requested, Policy::None);
    assert_eq!(verdict.disposition, Policy::None);
}

#[tokio::test]
async fn subdomain_without_sp_gets_p() {
    let zone = zone_with("_dmarc.example.co.uk", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["a.b.example.co.uk"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::Fail);
    assert_eq!(verdict.record_domain, "example.co.uk");
    assert_eq!(verdict.requested, Policy::Reject);
}

#[tokio::test]
async fn the_organizational_domain_itself_gets_p_not_sp() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; sp=none");
    let verdict = run(&zone, &["example.com"], None, &[], 0).await;
    assert_eq!(verdict.requested, Policy::Reject);
    assert_eq!(verdict.disposition, Policy::Reject);
}

#[tokio::test]
async fn a_subdomain_record_of_its_own_gets_its_p() {
    let zone = MemoryZone::new()
        .txt(
            "_dmarc.mail.example.com",
            "v=DMARC1; p=quarantine; sp=reject",
        )
        .txt("_dmarc.example.com", "v=DMARC1; p=none; sp=none");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.record_domain, "mail.example.com");
    assert_eq!(verdict.requested, Policy::Quarantine);
    assert_eq!(verdict.disposition, Policy::Quarantine);
    assert_eq!(zone.asked(), vec!["TXT _dmarc.mail.example.com"]);
}

#[tokio::test]
async fn pct_sampling() {
    // (record, sample, requested, disposition)
    for (record, sample, requested, disposition) in [
        (
            "v=DMARC1; p=reject; pct=0",
            0,
            Policy::Reject,
            Policy::Quarantine,
        ),
        (
            "v=DMARC1; p=reject; pct=0",
            99,
            Policy::Reject,
            Policy::Quarantine,
        ),
        (
            "v=DMARC1; p=quarantine; pct=0",
            0,
            Policy::Quarantine,
            Policy::None,
        ),
        ("v=DMARC1; p=none; pct=0", 0, Policy::None, Policy::None),
        (
            "v=DMARC1; p=reject; pct=100",
            0,
            Policy::Reject,
            Policy::Reject,
        ),
        (
            "v=DMARC1; p=reject; pct=100",
            99,
            Policy::Reject,
            Policy::Reject,
        ),
        ("v=DMARC1; p=reject", 99, Policy::Reject, Policy::Reject),
        // A sample outside 0..100 still sampled in at pct=100.
        (
            "v=DMARC1; p=reject; pct=100",
            255,
            Policy::Reject,
            Policy::Reject,
        ),
        (
            "v=DMARC1; p=reject; pct=50",
            49,
            Policy::Reject,
            Policy::Reject,
        ),
        (
            "v=DMARC1; p=reject; pct=50",
            50,
            Policy::Reject,
            Policy::Quarantine,
        ),
        (
            "v=DMARC1; p=quarantine; pct=50",
            49,
            Policy::Quarantine,
            Policy::Quarantine,
        ),
        (
            "v=DMARC1; p=quarantine; pct=50",
            50,
            Policy::Quarantine,
            Policy::None,
        ),
        (
            "v=DMARC1; p=reject; pct=1",
            0,
            Policy::Reject,
            Policy::Reject,
        ),
        (
            "v=DMARC1; p=reject; pct=1",
            1,
            Policy::Reject,
            Policy::Quarantine,
        ),
    ] {
        let zone = zone_with("_dmarc.example.com", record);
        let verdict = run(&zone, &["example.com"], None, &[], sample).await;
        assert_eq!(verdict.result, DmarcResult::Fail, "{record} / {sample}");
        assert_eq!(verdict.requested, requested, "{record} / {sample}");
        assert_eq!(verdict.disposition, disposition, "{record} / {sample}");
    }
    // A pass is never disposed of, sampled in or not.
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; pct=0");
    let verdict = run(&zone, &["example.com"], None, &["example.com"], 50).await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert_eq!(verdict.disposition, Policy::None);
}

#[tokio::test]
async fn sampled_out_reason_says_so() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject; pct=50");
    let verdict = run(&zone, &["example.com"], None, &[], 50).await;
    assert_eq!(
        verdict.reason,
        "neither DKIM nor SPF aligned with example.com; not sampled by pct=50: \
         reject applied as quarantine"
    );
}

#[tokio::test]
async fn no_record_anywhere_is_none() {
    let zone = MemoryZone::new().txt("_dmarc.mail.example.com", "v=spf1 -all");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::None);
    assert_eq!(verdict.record, None);
    assert_eq!(verdict.record_domain, "");
    assert_eq!(verdict.requested, Policy::None);
    assert_eq!(verdict.disposition, Policy::None);
    assert_eq!(verdict.reason, "no DMARC record for mail.example.com");
    assert_eq!(
        zone.asked(),
        vec!["TXT _dmarc.mail.example.com", "TXT _dmarc.example.com"]
    );
}

#[tokio::test]
async fn an_organizational_from_domain_is_asked_once() {
    for from in ["example.com", "co.uk", "com"] {
        let zone = MemoryZone::new();
        let verdict = run(&zone, &[from], None, &[], 0).await;
        assert_eq!(verdict.result, DmarcResult::None, "{from}");
        assert_eq!(zone.asked(), vec![format!("TXT _dmarc.{from}")]);
    }
}

#[tokio::test]
async fn non_dmarc_records_beside_one_dmarc_record_are_discarded() {
    let zone = MemoryZone::new()
        .txt("_dmarc.example.com", "v=spf1 -all")
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.example.com", "v=DMARC2; p=none")
        .txt("_dmarc.example.com", "some verification token");
    let verdict = run(&zone, &["example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::Fail);
    assert_eq!(verdict.requested, Policy::Reject);
}

#[tokio::test]
async fn several_records_at_the_from_domain_apply_no_dmarc() {
    // RFC 7489 §6.6.3 step 2: discovery terminates, no fallback to the organizational domain.
    let zone = MemoryZone::new()
        .txt("_dmarc.mail.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.mail.example.com", "v=DMARC1; p=none")
        .txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::None);
    assert_eq!(verdict.record, None);
    assert_eq!(verdict.disposition, Policy::None);
    assert!(
        verdict.reason.contains("several DMARC records"),
        "{}",
        verdict.reason
    );
    assert_eq!(zone.asked(), vec!["TXT _dmarc.mail.example.com"]);
}

#[tokio::test]
async fn several_records_at_the_organizational_domain_apply_no_dmarc() {
    let zone = MemoryZone::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject")
        .txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::None);
    assert_eq!(verdict.disposition, Policy::None);
}

#[tokio::test]
async fn temporary_failure_at_the_from_domain_is_temperror() {
    // DA-08: never a pass, even with aligned identifiers; no fallback to a (maybe weaker)
    // organizational policy.
    let zone = MemoryZone::new()
        .failing("_dmarc.mail.example.com")
        .txt("_dmarc.example.com", "v=DMARC1; p=none");
    let verdict = run(
        &zone,
        &["mail.example.com"],
        Some("mail.example.com"),
        &["mail.example.com"],
        0,
    )
    .await;
    assert_eq!(verdict.result, DmarcResult::TempError);
    assert_eq!(verdict.record, None);
    assert_eq!(verdict.disposition, Policy::None);
    assert!(
        verdict.reason.contains("_dmarc.mail.example.com"),
        "{}",
        verdict.reason
    );
    assert_eq!(zone.asked(), vec!["TXT _dmarc.mail.example.com"]);
}

#[tokio::test]
async fn temporary_failure_at_the_organizational_domain_is_temperror() {
    let zone = MemoryZone::new().failing("_dmarc.example.com");
    let verdict = run(&zone, &["mail.example.com"], None, &["example.com"], 0).await;
    assert_eq!(verdict.result, DmarcResult::TempError);
    assert_eq!(verdict.from_domain, "mail.example.com");
    assert_eq!(zone.asked().len(), 2);
}

#[tokio::test]
async fn da_14_deep_from_domain_asks_at_most_two_questions() {
    let zone = zone_with("_dmarc.ext.test", "v=DMARC1; p=reject");
    let from = "a.b.c.d.e.f.g.h.i.j.k.l.m.ext.test";
    let verdict = run(&zone, &[from], None, &[], 0).await;
    assert_eq!(
        zone.asked(),
        vec![
            format!("TXT _dmarc.{from}"),
            "TXT _dmarc.ext.test".to_string()
        ]
    );
    assert_eq!(verdict.result, DmarcResult::Fail);
    assert_eq!(verdict.record_domain, "ext.test");
    assert_eq!(verdict.requested, Policy::Reject);
    assert_eq!(verdict.disposition, Policy::Reject);

    // Without any record: still two questions.
    let zone = MemoryZone::new();
    let verdict = run(&zone, &[from], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::None);
    assert_eq!(zone.asked_count(), 2);
}

#[tokio::test]
async fn no_from_domain_is_permerror_without_dns() {
    for from in [&[][..], &[""][..], &["."][..], &["example.com", ""][..]] {
        let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
        let verdict = run(&zone, from, None, &["example.com"], 0).await;
        assert_eq!(verdict.result, DmarcResult::PermError, "{from:?}");
        assert_eq!(verdict.requested, Policy::None);
        assert_eq!(verdict.disposition, Policy::None);
        assert_eq!(verdict.from_domain, "");
        assert!(!verdict.reason.is_empty());
        assert_eq!(zone.asked_count(), 0);
    }
    let zone = MemoryZone::new();
    assert_eq!(run(&zone, &[], None, &[], 0).await.reason, "no From domain");
}

#[tokio::test]
async fn several_from_domains_are_permerror_without_dns() {
    // DA-13 (a)/(b): RFC 7489 §6.6.1.
    let zone = MemoryZone::new()
        .txt("_dmarc.x.test", "v=DMARC1; p=none")
        .txt("_dmarc.ext.test", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["x.test", "ext.test"], None, &["x.test"], 0).await;
    assert_eq!(verdict.result, DmarcResult::PermError);
    assert_eq!(verdict.requested, Policy::None);
    assert_eq!(verdict.disposition, Policy::None);
    assert_eq!(verdict.reason, "multiple From domains: x.test, ext.test");
    assert_eq!(zone.asked_count(), 0);
}

#[tokio::test]
async fn the_same_from_domain_repeated_is_one_domain() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(
        &zone,
        &["example.com", "EXAMPLE.COM.", " Example.com"],
        None,
        &["example.com"],
        0,
    )
    .await;
    assert_eq!(verdict.result, DmarcResult::Pass);
    assert_eq!(verdict.from_domain, "example.com");
}

#[tokio::test]
async fn a_from_domain_that_is_no_domain_name_is_permerror() {
    let long_label = format!("{}.com", "a".repeat(64));
    let long_name = format!("{}com", "abcdefghi.".repeat(26));
    for from in [
        "[192.0.2.1]",
        "exa mple.com",
        "a..example.com",
        ".example.com",
        long_label.as_str(),
        long_name.as_str(),
    ] {
        let zone = MemoryZone::new();
        let verdict = run(&zone, &[from], None, &[], 0).await;
        assert_eq!(verdict.result, DmarcResult::PermError, "{from:?}");
        assert_eq!(zone.asked_count(), 0, "{from:?}");
    }
}

#[tokio::test]
async fn an_unusable_record_is_permerror() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=bogus");
    let verdict = run(&zone, &["mail.example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::PermError);
    assert_eq!(verdict.record, None);
    assert_eq!(verdict.record_domain, "example.com");
    assert_eq!(verdict.disposition, Policy::None);
    assert_eq!(
        verdict.reason,
        "invalid DMARC record at _dmarc.example.com: the record has no valid p tag and no \
         valid rua URI"
    );
}

#[tokio::test]
async fn an_invalid_p_with_rua_is_evaluated_as_p_none() {
    let zone = zone_with(
        "_dmarc.example.com",
        "v=DMARC1; p=rejectt; rua=mailto:dmarc@example.com",
    );
    let verdict = run(&zone, &["example.com"], None, &[], 0).await;
    assert_eq!(verdict.result, DmarcResult::Fail);
    assert_eq!(verdict.requested, Policy::None);
    assert_eq!(verdict.disposition, Policy::None);
    let record = verdict.record.expect("record");
    assert_eq!(
        record.aggregate_uris,
        vec![uri("mailto:dmarc@example.com", None)]
    );
}

#[tokio::test]
async fn empty_identifiers_never_align() {
    let zone = zone_with("_dmarc.example.com", "v=DMARC1; p=reject");
    let verdict = run(&zone, &["example.com"], Some(""), &[""], 0).await;
    assert_eq!(verdict.result, DmarcResult::Fail);
}

#[tokio::test]
async fn a_huge_from_list_is_settled_by_the_second_domain() {
    let mut from: Vec<String> = vec!["example.com".to_string(); 100_000];
    from.push("other.example".to_string());
    from.extend(std::iter::repeat_n("third.example".to_string(), 100_000));
    let input = DmarcInput {
        from_domains: &from,
        spf_pass_domain: None,
        dkim_pass_domains: &[],
    };
    let zone = MemoryZone::new();
    let verdict = evaluate(&zone, &input, 0).await;
    assert_eq!(verdict.result, DmarcResult::PermError);
    assert_eq!(
        verdict.reason,
        "multiple From domains: example.com, other.example"
    );
    assert_eq!(zone.asked_count(), 0);
}
