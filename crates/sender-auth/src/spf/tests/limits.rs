//! The limits of RFC 7208 §4.6.4 (DA-01 to DA-04, DA-07) and the time budget.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::lookup::{DnsLookup, TemporaryDnsError};

fn v4(text: &str) -> Ipv4Addr {
    text.parse().expect("a test IPv4 address")
}

/// `prefix1.ext.test` .. `prefixN.ext.test` as terms of `mechanism`.
fn numbered_terms(mechanism: &str, prefix: &str, count: usize) -> String {
    (1..=count)
        .map(|n| format!("{mechanism}{prefix}{n}.ext.test"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// DA-01: a zone where spf.ext.test includes i1..iN, then allows the client.
fn includes_zone(count: usize) -> MemoryZone {
    let record = format!(
        "v=spf1 {} ip4:127.0.0.3 -all",
        numbered_terms("include:", "i", count)
    );
    (1..=11).fold(MemoryZone::new().txt("spf.ext.test", &record), |zone, n| {
        zone.txt(&format!("i{n}.ext.test"), "v=spf1 -all")
    })
}

fn include_questions(count: usize) -> Vec<String> {
    std::iter::once("TXT spf.ext.test".to_string())
        .chain((1..=count).map(|n| format!("TXT i{n}.ext.test")))
        .collect()
}

#[tokio::test]
async fn ten_dns_terms_are_evaluated_and_the_eleventh_is_never_asked() {
    // DA-01, variant lim10: exactly 10 includes, then ip4 passes.
    let zone = includes_zone(10);
    let verdict = check_mail_from(&zone, CLIENT, "u@spf.ext.test").await;
    assert_eq!(verdict.result, SpfResult::Pass);
    assert_eq!(zone.asked(), include_questions(10));

    // DA-01: the 11th include is a permerror, decided before its lookup.
    let zone = includes_zone(11);
    let verdict = check_mail_from(&zone, CLIENT, "u@spf.ext.test").await;
    assert_eq!(verdict.result, SpfResult::PermError);
    assert_eq!(
        verdict.reason,
        "11th DNS-querying term (include:i11.ext.test), over the limit of 10"
    );
    assert_eq!(zone.asked(), include_questions(10));
    assert!(!zone.asked().contains(&"TXT i11.ext.test".to_string()));
}

#[tokio::test]
async fn every_dns_term_counts_across_includes_and_redirects() {
    let zone = || {
        MemoryZone::new()
            .txt("inc.ext.test", "v=spf1 a a a a a a a a")
            .a("inc.ext.test", v4("192.0.2.10"))
            .txt("r.ext.test", "v=spf1 a a a -all")
            .a("r.ext.test", v4("192.0.2.10"))
            .a("t.ext.test", v4("192.0.2.11"))
            .mx("t.ext.test", "t.ext.test")
            .ptr(ip(CLIENT), "host.example.net")
    };
    for (record, expected) in [
        // 1 + 1 + 8 terms; ip4 then matches (pyspf include-at-limit).
        (
            "v=spf1 a include:inc.ext.test ip4:127.0.0.3 mx -all",
            SpfResult::Pass,
        ),
        // 1 + 1 + 8 + 1 (pyspf include-over-limit).
        (
            "v=spf1 a include:inc.ext.test a ip4:127.0.0.3 -all",
            SpfResult::PermError,
        ),
        // a, mx and ptr, 10 in all, then ip4 (pyspf mech-at-limit); and 11 (mech-over-limit).
        (
            "v=spf1 a mx a mx a mx a mx a ptr ip4:127.0.0.3 -all",
            SpfResult::Pass,
        ),
        (
            "v=spf1 a mx a mx a mx a mx a ptr a ip4:127.0.0.3 -all",
            SpfResult::PermError,
        ),
        // 7 here, then redirect and its 3 a: 11.
        (
            "v=spf1 a a a a a a a redirect=r.ext.test",
            SpfResult::PermError,
        ),
        ("v=spf1 a a a a a a redirect=r.ext.test", SpfResult::Fail),
        // ip4, ip6 and all do not count.
        (
            "v=spf1 a a a a a a a a a a ip4:10.0.0.1 ip6:::1 ip4:10.0.0.2 ~all",
            SpfResult::SoftFail,
        ),
    ] {
        assert_eq!(result_of_record(zone(), record).await, expected, "{record}");
    }
}

#[tokio::test]
async fn include_and_redirect_loops_end_at_the_term_limit() {
    // DA-03: at most 11 questions (the first TXT lookup does not count).
    let zone = MemoryZone::new()
        .txt("loop1.ext.test", "v=spf1 include:loop2.ext.test -all")
        .txt("loop2.ext.test", "v=spf1 include:loop1.ext.test -all")
        .txt("r1.ext.test", "v=spf1 redirect=r1.ext.test");
    for domain in ["loop1.ext.test", "r1.ext.test"] {
        let before = zone.asked_count();
        let verdict = check_mail_from(&zone, CLIENT, &format!("u@{domain}")).await;
        assert_eq!(verdict.result, SpfResult::PermError, "{domain}");
        assert!(
            verdict.reason.contains("11th DNS-querying term"),
            "{}",
            verdict.reason
        );
        assert_eq!(zone.asked_count() - before, 11, "{domain}");
    }
}

/// DA-02: terms a:nx1 .. a:nxN (which have no address) before ip4 allows the client.
async fn void_result(record: &str, zone: MemoryZone) -> (SpfVerdict, Vec<String>) {
    let zone = zone
        .txt("void.ext.test", record)
        .txt("inc1.ext.test", "v=spf1 a:nx3.ext.test ?all")
        .txt("inc2.ext.test", "v=spf1 a:nx2.ext.test ?all")
        // NODATA: the name exists, with other records.
        .txt("nodata.ext.test", "not an address");
    let verdict = check_mail_from(&zone, CLIENT, "u@void.ext.test").await;
    (verdict, zone.asked())
}

#[tokio::test]
async fn the_third_void_lookup_is_a_permerror_wherever_it_is() {
    let (verdict, asked) = void_result(
        "v=spf1 a:nx1.ext.test a:nx2.ext.test a:nx3.ext.test ip4:127.0.0.3 -all",
        MemoryZone::new(),
    )
    .await;
    assert_eq!(verdict.result, SpfResult::PermError);
    assert_eq!(
        verdict.reason,
        "3rd void lookup (a:nx3.ext.test), over the limit of 2"
    );
    assert_eq!(
        asked,
        questions(&[
            "TXT void.ext.test",
            "A nx1.ext.test",
            "A nx2.ext.test",
            "A nx3.ext.test",
        ])
    );
    for record in [
        // NODATA counts like NXDOMAIN.
        "v=spf1 a:nx1.ext.test a:nodata.ext.test a:nx3.ext.test ip4:127.0.0.3 -all",
        // The 3rd void as the last term.
        "v=spf1 a:nx1.ext.test a:nx2.ext.test a:nx3.ext.test",
        // The 3rd void inside an include.
        "v=spf1 a:nx1.ext.test a:nx2.ext.test include:inc1.ext.test ip4:127.0.0.3 -all",
        "v=spf1 a:nx1.ext.test include:inc2.ext.test a:nx3.ext.test ip4:127.0.0.3 -all",
        // mx without MX records and exists without A records are void lookups too.
        "v=spf1 mx:nx1.ext.test exists:nx2.ext.test a:nx3.ext.test ip4:127.0.0.3 -all",
    ] {
        let (verdict, _) = void_result(record, MemoryZone::new()).await;
        assert_eq!(verdict.result, SpfResult::PermError, "{record}");
        assert!(
            verdict.reason.contains("3rd void lookup"),
            "{}",
            verdict.reason
        );
    }
    // Two void lookups are fine (pyspf void-at-limit).
    let (verdict, _) = void_result(
        "v=spf1 a:nx1.ext.test a:nx2.ext.test ip4:127.0.0.3 -all",
        MemoryZone::new(),
    )
    .await;
    assert_eq!(verdict.result, SpfResult::Pass);
}

#[tokio::test]
async fn more_than_ten_mx_names_is_a_permerror_before_any_address_lookup() {
    // DA-04: 11 MX records.
    let zone = (1..=11).fold(
        MemoryZone::new().txt("mx11.ext.test", "v=spf1 mx -all"),
        |zone, n| {
            zone.mx("mx11.ext.test", &format!("mx{n}.ext.test"))
                .a(&format!("mx{n}.ext.test"), v4(CLIENT))
        },
    );
    let verdict = check_mail_from(&zone, CLIENT, "u@mx11.ext.test").await;
    assert_eq!(verdict.result, SpfResult::PermError);
    assert_eq!(
        verdict.reason,
        "mx: mx11.ext.test has 11 MX names, more than 10"
    );
    assert_eq!(
        zone.asked(),
        questions(&["TXT mx11.ext.test", "MX mx11.ext.test"])
    );

    // Exactly 10 is fine; the 10th matches after 10 address lookups.
    let zone = (1..=10).fold(
        MemoryZone::new().txt("mx10.ext.test", "v=spf1 mx -all"),
        |zone, n| {
            let address = if n == 10 { CLIENT } else { "192.0.2.1" };
            zone.mx("mx10.ext.test", &format!("mx{n}.ext.test"))
                .a(&format!("mx{n}.ext.test"), v4(address))
        },
    );
    let verdict = check_mail_from(&zone, CLIENT, "u@mx10.ext.test").await;
    assert_eq!(verdict.result, SpfResult::Pass);
    assert_eq!(zone.asked_count(), 12);
}

#[tokio::test]
async fn ptr_looks_at_ten_names_only() {
    // DA-04: 20 PTR names under the domain; only the 12th validates.
    let zone = |record: &str| {
        (1..=20).fold(MemoryZone::new().txt("ptr.ext.test", record), |zone, n| {
            let address = if n == 12 { CLIENT } else { "192.0.2.1" };
            zone.ptr(ip(CLIENT), &format!("h{n}.ptr.ext.test"))
                .a(&format!("h{n}.ptr.ext.test"), v4(address))
        })
    };
    let checked = zone("v=spf1 ptr -all");
    let verdict = check_mail_from(&checked, CLIENT, "u@ptr.ext.test").await;
    // RFC 7208 §4.6.4: the names past the 10th are ignored, not an error.
    assert_eq!(verdict.result, SpfResult::Fail);
    let address_questions: Vec<String> = checked
        .asked()
        .into_iter()
        .filter(|question| question.starts_with("A "))
        .collect();
    let expected: Vec<String> = (1..=10).map(|n| format!("A h{n}.ptr.ext.test")).collect();
    assert_eq!(address_questions, expected);

    // The p macro validates at most 10 names too.
    let checked = zone("v=spf1 exists:%{p}.ok.ext.test -all");
    assert_eq!(
        check_mail_from(&checked, CLIENT, "u@ptr.ext.test")
            .await
            .result,
        SpfResult::Fail
    );
    let asked = checked.asked();
    assert_eq!(asked.iter().filter(|q| q.starts_with("A h")).count(), 10);
    assert!(asked.contains(&"A unknown.ok.ext.test".to_string()));
}

#[tokio::test]
async fn mx_amplification_stays_within_the_rfc_worst_case() {
    // DA-07: 10 mx terms each with 10 MX names at the victim: 10 MX + 100 A questions.
    let record = format!(
        "v=spf1 {} -all",
        numbered_terms("mx:a", "", 10).replace(".ext.test", ".victim.test")
    );
    let zone = (1..=10).fold(
        MemoryZone::new().txt("amp.ext.test", &record),
        |zone, term| {
            (1..=10).fold(zone, |zone, n| {
                zone.mx(
                    &format!("a{term}.victim.test"),
                    &format!("mx{n}.a{term}.victim.test"),
                )
            })
        },
    );
    let verdict = check_mail_from(&zone, CLIENT, "u@amp.ext.test").await;
    // The A lookups find nothing but are not void lookups: only each term's MX lookup is.
    assert_eq!(verdict.result, SpfResult::Fail);
    let to_victim = zone
        .asked()
        .iter()
        .filter(|question| question.ends_with(".victim.test"))
        .count();
    assert_eq!(to_victim, 110);
}

/// A zone whose answers about some names take a long time.
struct SlowZone {
    zone: MemoryZone,
    slow: HashSet<String>,
}

impl SlowZone {
    async fn wait_if_slow(&self, name: &str) {
        if self.slow.contains(name) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

#[async_trait]
impl DnsLookup for SlowZone {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError> {
        self.wait_if_slow(name).await;
        DnsLookup::txt(&self.zone, name).await
    }
    async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, TemporaryDnsError> {
        self.wait_if_slow(name).await;
        DnsLookup::ipv4(&self.zone, name).await
    }
    async fn ipv6(&self, name: &str) -> Result<Vec<Ipv6Addr>, TemporaryDnsError> {
        self.wait_if_slow(name).await;
        DnsLookup::ipv6(&self.zone, name).await
    }
    async fn mx(&self, name: &str) -> Result<Vec<String>, TemporaryDnsError> {
        self.wait_if_slow(name).await;
        DnsLookup::mx(&self.zone, name).await
    }
    async fn ptr(&self, address: IpAddr) -> Result<Vec<String>, TemporaryDnsError> {
        DnsLookup::ptr(&self.zone, address).await
    }
    async fn null_mx(&self, domain: &str) -> Result<bool, TemporaryDnsError> {
        DnsLookup::null_mx(&self.zone, domain).await
    }
}

#[tokio::test]
async fn an_evaluation_over_its_time_budget_is_temperror_not_pass() {
    // DA-07, DA-08: a slow answer ends in temperror, not in the pass that would follow.
    let dns = SlowZone {
        zone: MemoryZone::new().txt("t.ext.test", "v=spf1 a:slow.ext.test +all"),
        slow: HashSet::from(["slow.ext.test".to_string()]),
    };
    let limits = SpfLimits {
        budget: Duration::from_millis(50),
        ..SpfLimits::default()
    };
    let verdict = verify(
        &dns,
        &limits,
        ip(CLIENT),
        HELO,
        Some("u@t.ext.test"),
        RECEIVER,
    )
    .await;
    assert_eq!(verdict.result, SpfResult::TempError);
    assert_eq!(verdict.reason, "the evaluation took longer than 50ms");
}

#[test]
fn the_default_limits_are_those_of_rfc_7208() {
    let limits = SpfLimits::default();
    assert_eq!(limits.dns_terms, 10);
    assert_eq!(limits.void_lookups, 2);
    assert_eq!(limits.mx_names, 10);
    assert_eq!(limits.ptr_names, 10);
    assert_eq!(limits.budget, Duration::from_secs(20));
}

#[test]
fn limit_reasons_count_in_english() {
    let spelled: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111]
        .into_iter()
        .map(crate::spf::evaluate::ordinal)
        .collect();
    assert_eq!(
        spelled,
        [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st",
            "111th"
        ]
    );
}
