//! The seven results, the identities (RFC 7208 §2.3, §2.4), checkable domains (§4.3) and the
//! choice of the record among TXT records (§4.4, §4.5).

use super::*;
use crate::spf::{SpfIdentity, check_host};

#[tokio::test]
async fn each_qualifier_gives_its_result_and_no_match_is_neutral() {
    for (record, expected) in [
        ("v=spf1 +all", SpfResult::Pass),
        ("v=spf1 all", SpfResult::Pass),
        ("v=spf1 -all", SpfResult::Fail),
        ("v=spf1 ~all", SpfResult::SoftFail),
        ("v=spf1 ?all", SpfResult::Neutral),
        // RFC 7208 §4.7: nothing matched and no redirect.
        ("v=spf1 ip4:192.0.2.1", SpfResult::Neutral),
        ("v=spf1", SpfResult::Neutral),
    ] {
        assert_eq!(
            result_of_record(MemoryZone::new(), record).await,
            expected,
            "{record}"
        );
    }
}

#[tokio::test]
async fn the_other_results_none_temperror_permerror() {
    let zone = MemoryZone::new()
        .txt("two.ext.test", "v=spf1 -all")
        .txt("two.ext.test", "v=spf1 +all")
        .failing("servfail.ext.test");
    let none = check_mail_from(&zone, CLIENT, "u@nothing.ext.test").await;
    assert_eq!(none.result, SpfResult::None);
    assert_eq!(none.reason, "no SPF record at nothing.ext.test");
    let temporary = check_mail_from(&zone, CLIENT, "u@servfail.ext.test").await;
    assert_eq!(temporary.result, SpfResult::TempError);
    // DA-05: RFC 7208 §4.5, two v=spf1 records.
    let two = check_mail_from(&zone, CLIENT, "u@two.ext.test").await;
    assert_eq!(two.result, SpfResult::PermError);
    assert_eq!(two.reason, "2 SPF records at two.ext.test");
}

#[test]
fn results_are_spelled_as_in_rfc_8601() {
    let spelled: Vec<&str> = [
        SpfResult::None,
        SpfResult::Neutral,
        SpfResult::Pass,
        SpfResult::Fail,
        SpfResult::SoftFail,
        SpfResult::TempError,
        SpfResult::PermError,
    ]
    .into_iter()
    .map(SpfResult::as_str)
    .collect();
    assert_eq!(
        spelled,
        [
            "none",
            "neutral",
            "pass",
            "fail",
            "softfail",
            "temperror",
            "permerror"
        ]
    );
}

#[tokio::test]
async fn the_verdict_names_the_mail_from_identity_and_why() {
    let zone = MemoryZone::new().txt("ext.test", "v=spf1 ip4:127.0.0.0/24 -all");
    let verdict = check_mail_from(&zone, CLIENT, "user@ext.test").await;
    assert_eq!(
        verdict,
        SpfVerdict {
            result: SpfResult::Pass,
            identity: SpfIdentity::MailFrom,
            domain: "ext.test".to_string(),
            checked: "user@ext.test".to_string(),
            reason: "matched ip4:127.0.0.0/24".to_string(),
            explanation: None,
        }
    );
    // RFC 7208 §2.3: the HELO identity is not checked first.
    assert_eq!(zone.asked(), questions(&["TXT ext.test"]));
}

#[tokio::test]
async fn a_null_reverse_path_checks_the_helo_name_as_postmaster() {
    let zone = MemoryZone::new()
        .txt(HELO, "v=spf1 exists:%{l}.%{o}.%{s}.chk.ext.test -all")
        .a(
            "postmaster.client.ext.test.postmaster@client.ext.test.chk.ext.test",
            "127.0.0.2".parse().expect("address"),
        );
    for mail_from in [None, Some("")] {
        let verdict = verify(
            &zone,
            &SpfLimits::default(),
            ip(CLIENT),
            HELO,
            mail_from,
            RECEIVER,
        )
        .await;
        assert_eq!(verdict.result, SpfResult::Pass, "{mail_from:?}");
        assert_eq!(verdict.identity, SpfIdentity::Helo);
        assert_eq!(verdict.domain, HELO);
        assert_eq!(verdict.checked, HELO);
    }
}

#[tokio::test]
async fn a_sender_without_local_part_is_postmaster() {
    // RFC 7208 §4.3: the l macro is "postmaster" when the sender has no local part.
    let zone = MemoryZone::new()
        .txt("ext.test", "v=spf1 exists:%{l}.chk.ext.test -all")
        .a(
            "postmaster.chk.ext.test",
            "127.0.0.2".parse().expect("address"),
        );
    let verdict = check_mail_from(&zone, CLIENT, "@ext.test").await;
    assert_eq!(verdict.result, SpfResult::Pass);
    assert_eq!(verdict.checked, "postmaster@ext.test");
    let verdict = check_host(
        &zone,
        &SpfLimits::default(),
        ip(CLIENT),
        "ext.test",
        "",
        HELO,
        RECEIVER,
    )
    .await;
    assert_eq!(verdict.result, SpfResult::Pass);
}

#[tokio::test]
async fn a_domain_that_cannot_be_checked_is_none_without_a_query() {
    let long_label = format!("lyme@{}.example.com", "a".repeat(64));
    let long_name = format!("u@{}com", "abcdefghi.".repeat(26));
    // RFC 7208 §4.3: malformed, single-label, address literal, empty.
    for address in [
        long_label.as_str(),
        long_name.as_str(),
        "u@a...example.com",
        "u@.example.com",
        "u@localhost",
        "u@[192.0.2.1]",
        "u@192.0.2.1",
        "u@",
        "u@exa mple.com",
    ] {
        let zone = MemoryZone::new();
        let verdict = check_mail_from(&zone, CLIENT, address).await;
        assert_eq!(verdict.result, SpfResult::None, "{address}");
        assert_eq!(zone.asked_count(), 0, "{address}");
    }
    // A 63-character label is fine, and so is a final dot.
    let zone = MemoryZone::new()
        .txt(&format!("{}.example.com", "a".repeat(63)), "v=spf1 -all")
        .txt("example.org", "v=spf1 -all");
    let address = format!("u@{}.example.com", "a".repeat(63));
    assert_eq!(
        check_mail_from(&zone, CLIENT, &address).await.result,
        SpfResult::Fail
    );
    let verdict = check_mail_from(&zone, CLIENT, "u@example.org.").await;
    assert_eq!(verdict.result, SpfResult::Fail);
    assert_eq!(verdict.domain, "example.org");
}

#[tokio::test]
async fn helo_names_that_are_not_domains_are_none() {
    for helo in ["A2345678", "[192.0.2.1]", ""] {
        let zone = MemoryZone::new();
        let verdict = verify(
            &zone,
            &SpfLimits::default(),
            ip(CLIENT),
            helo,
            None,
            RECEIVER,
        )
        .await;
        assert_eq!(verdict.result, SpfResult::None, "{helo}");
        assert_eq!(verdict.identity, SpfIdentity::Helo);
        assert_eq!(zone.asked_count(), 0);
    }
}

#[tokio::test]
async fn only_records_starting_with_v_spf1_and_a_space_count() {
    for (records, expected) in [
        // RFC 7208 §4.5: other TXT records are ignored, whatever they hold.
        (
            &[
                "google-site-verification=x",
                "v=spf1 ip4:127.0.0.3 -all",
                "\u{96}",
            ][..],
            SpfResult::Pass,
        ),
        (&["v=spf10", "v=spf1 ip4:127.0.0.3"][..], SpfResult::Pass),
        (&["v=spf1mx"][..], SpfResult::None),
        (&["v=spf1\t-all"][..], SpfResult::None),
        (&["spf1 -all", "v=spf2 -all"][..], SpfResult::None),
        (&["V=SpF1 ~all"][..], SpfResult::SoftFail),
        (&["v=spf1 -all", "V=sPf1 +all"][..], SpfResult::PermError),
        (&["v=spf1 -all", "v=spf1 -all"][..], SpfResult::PermError),
    ] {
        let zone = records.iter().fold(MemoryZone::new(), |zone, record| {
            zone.txt("t.ext.test", record)
        });
        let result = check_mail_from(&zone, CLIENT, "u@t.ext.test").await.result;
        assert_eq!(result, expected, "{records:?}");
    }
}

#[tokio::test]
async fn multi_string_records_are_read_joined_without_spaces() {
    // DA-05 "split": TXT "v=spf1 ip4:127.0.0.3" " -all" arrives joined (RFC 7208 §3.3).
    let joined = ["v=spf1 ip4:127.0.0.3", " -all"].concat();
    assert_eq!(
        result_of_record(MemoryZone::new(), &joined).await,
        SpfResult::Pass
    );
    assert_eq!(
        check_mail_from(
            &MemoryZone::new().txt("t.ext.test", &joined),
            "127.0.0.4",
            "u@t.ext.test"
        )
        .await
        .result,
        SpfResult::Fail
    );
    // "v=spf1" "mx" joins into "v=spf1mx", which is not an SPF record.
    let joined = ["v=spf1", "mx"].concat();
    assert_eq!(
        result_of_record(MemoryZone::new(), &joined).await,
        SpfResult::None
    );
}

#[tokio::test]
async fn a_large_record_is_evaluated() {
    // DA-05 "big": a 4000-byte record (the resolver does the TCP fallback).
    let mut record = "v=spf1".to_string();
    let mut third = 0;
    while record.len() < 4000 {
        record.push_str(&format!(" ip4:10.{}.{}.0/24", third / 256, third % 256));
        third += 1;
    }
    record.push_str(" ip4:127.0.0.3 -all");
    assert!(record.len() > 4000);
    assert_eq!(
        result_of_record(MemoryZone::new(), &record).await,
        SpfResult::Pass
    );
}
