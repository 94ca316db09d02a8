//! Record parsing (RFC 7489 §6.3, §6.4), with the Appendix B.2 examples.

use super::{parse, uri};
use crate::dmarc::*;

#[test]
fn minimal_record_has_the_defaults() {
    assert_eq!(
        parse("v=DMARC1; p=reject"),
        DmarcRecord {
            policy: Policy::Reject,
            subdomain_policy: None,
            percent: 100,
            dkim_alignment: Alignment::Relaxed,
            spf_alignment: Alignment::Relaxed,
            aggregate_uris: Vec::new(),
            failure_uris: Vec::new(),
            failure_options: "0".to_string(),
            report_interval: 86_400,
        }
    );
}

#[test]
fn every_tag() {
    let record = parse(
        "v=DMARC1; p=quarantine; sp=reject; pct=30; adkim=s; aspf=s; \
         rua=mailto:agg@example.com!10m,mailto:agg@example.net; \
         ruf=mailto:fail@example.com!500k; fo=1:d; rf=afrf; ri=3600",
    );
    assert_eq!(
        record,
        DmarcRecord {
            policy: Policy::Quarantine,
            subdomain_policy: Some(Policy::Reject),
            percent: 30,
            dkim_alignment: Alignment::Strict,
            spf_alignment: Alignment::Strict,
            aggregate_uris: vec![
                uri("mailto:agg@example.com", Some(10 << 20)),
                uri("mailto:agg@example.net", None),
            ],
            failure_uris: vec![uri("mailto:fail@example.com", Some(500 << 10))],
            failure_options: "1:d".to_string(),
            report_interval: 3600,
        }
    );
}

#[test]
fn each_policy_value() {
    for (text, policy) in [
        ("none", Policy::None),
        ("quarantine", Policy::Quarantine),
        ("reject", Policy::Reject),
    ] {
        assert_eq!(parse(&format!("v=DMARC1; p={text}")).policy, policy);
        assert_eq!(
            parse(&format!("v=DMARC1; p=none; sp={text}")).subdomain_policy,
            Some(policy)
        );
        assert_eq!(policy.as_str(), text);
    }
}

#[test]
fn whitespace_case_and_unknown_tags_are_tolerated() {
    let record = parse(
        "V = DMARC1 ; P = Reject ;\tSP=none; unknown \t=\t future-value \t ; ADKIM=S; \
         aspf = s ; rua=mailto:a@example.com  ,\t\tmailto:b@example.com ;;  ; fo = 1 : D : s;",
    );
    assert_eq!(record.policy, Policy::Reject);
    assert_eq!(record.subdomain_policy, Some(Policy::None));
    assert_eq!(record.dkim_alignment, Alignment::Strict);
    assert_eq!(record.spf_alignment, Alignment::Strict);
    assert_eq!(
        record.aggregate_uris,
        vec![
            uri("mailto:a@example.com", None),
            uri("mailto:b@example.com", None)
        ]
    );
    assert_eq!(record.failure_options, "1:d:s");
}

#[test]
fn parts_without_equals_are_ignored() {
    let record = parse("v=DMARC1; garbage; p=reject; pct");
    assert_eq!(record.policy, Policy::Reject);
    assert_eq!(record.percent, 100);
}

#[test]
fn version_must_be_first_and_exactly_dmarc1() {
    for text in [
        "",
        ";",
        "p=reject; v=DMARC1",
        "v=DMARC2; p=reject",
        "v=DMARC10; p=reject",
        "v=dmarc1; p=reject",
        "v=DMARC1 p=reject",
        "v=spf1 -all",
        "v DMARC1; p=reject",
        "x=DMARC1; p=reject",
        "v=; p=reject",
    ] {
        assert_eq!(
            DmarcRecord::parse(text),
            Err(RecordError::NotDmarc),
            "{text:?}"
        );
        assert!(!is_dmarc_record(text), "{text:?}");
    }
    for text in [
        "v=DMARC1",
        "v=DMARC1;",
        " v = DMARC1 ;p=none",
        "V=DMARC1; p=none",
    ] {
        assert!(is_dmarc_record(text), "{text:?}");
    }
}

#[test]
fn missing_or_invalid_p_without_rua_is_not_usable() {
    // RFC 7489 §6.6.3 step 6.
    for text in [
        "v=DMARC1",
        "v=DMARC1;",
        "v=DMARC1; sp=reject",
        "v=DMARC1; p=bogus",
        "v=DMARC1; p=",
        "v=DMARC1; p=reject; p=none",
        "v=DMARC1; p=bogus; rua=not-a-uri",
        "v=DMARC1; rua=mailto:",
        "v=DMARC1; ruf=mailto:failures@example.com",
    ] {
        assert_eq!(
            DmarcRecord::parse(text),
            Err(RecordError::NoPolicy),
            "{text:?}"
        );
    }
    assert_eq!(
        DmarcRecord::parse("v=DMARC1; p=reject; sp=bogus"),
        Err(RecordError::InvalidSubdomainPolicy)
    );
    assert_eq!(
        DmarcRecord::parse("v=DMARC1; p=reject; sp=none; sp=reject"),
        Err(RecordError::InvalidSubdomainPolicy)
    );
}

#[test]
fn missing_or_invalid_p_with_a_valid_rua_acts_as_p_none() {
    // RFC 7489 §6.6.3 step 6: act as if "v=DMARC1; p=none" was retrieved.
    for text in [
        "v=DMARC1; rua=mailto:agg@example.com",
        "v=DMARC1; p=bogus; rua=mailto:agg@example.com",
        "v=DMARC1; p=reject; sp=bogus; rua=mailto:agg@example.com",
        "v=DMARC1; p=reject; p=quarantine; rua=not-a-uri,mailto:agg@example.com",
    ] {
        let record = parse(text);
        assert_eq!(record.policy, Policy::None, "{text:?}");
        assert_eq!(record.subdomain_policy, None, "{text:?}");
        assert_eq!(
            record.aggregate_uris,
            vec![uri("mailto:agg@example.com", None)]
        );
    }
}

#[test]
fn pct_values() {
    for (value, percent) in [
        ("0", 0),
        ("1", 1),
        ("50", 50),
        ("050", 50),
        ("100", 100),
        ("101", 100),
        ("255", 100),
        ("256", 100),
        ("1000", 100),
        ("0050", 100),
        ("-1", 100),
        ("+5", 100),
        ("abc", 100),
        ("5.5", 100),
        ("", 100),
    ] {
        let record = parse(&format!("v=DMARC1; p=reject; pct={value}"));
        assert_eq!(record.percent, percent, "pct={value}");
    }
    // The first occurrence wins.
    assert_eq!(parse("v=DMARC1; p=reject; pct=10; pct=90").percent, 10);
}

#[test]
fn alignment_values() {
    for (value, mode) in [
        ("r", Alignment::Relaxed),
        ("s", Alignment::Strict),
        ("S", Alignment::Strict),
        ("x", Alignment::Relaxed),
        ("strict", Alignment::Relaxed),
        ("", Alignment::Relaxed),
    ] {
        let record = parse(&format!("v=DMARC1; p=reject; adkim={value}; aspf={value}"));
        assert_eq!(record.dkim_alignment, mode, "{value:?}");
        assert_eq!(record.spf_alignment, mode, "{value:?}");
    }
    assert_eq!(Alignment::Relaxed.as_str(), "r");
    assert_eq!(Alignment::Strict.as_str(), "s");
}

#[test]
fn failure_options_and_interval() {
    for (value, expected) in [
        ("0", "0"),
        ("1", "1"),
        ("d", "d"),
        ("s", "s"),
        ("1:d:s", "1:d:s"),
        ("0 : S", "0:s"),
        ("2", "0"),
        ("1:", "0"),
        ("1;d", "1"),
        ("", "0"),
    ] {
        let record = parse(&format!("v=DMARC1; p=none; fo={value}"));
        assert_eq!(record.failure_options, expected, "fo={value}");
    }
    for (value, expected) in [
        ("0", 0),
        ("3600", 3600),
        ("99999999999", u32::MAX),
        ("-1", 86_400),
        ("1h", 86_400),
        ("", 86_400),
    ] {
        let record = parse(&format!("v=DMARC1; p=none; ri={value}"));
        assert_eq!(record.report_interval, expected, "ri={value}");
    }
}

#[test]
fn report_uris_and_sizes() {
    let record = parse(
        "v=DMARC1; p=none; rua=mailto:a@example.com!10,mailto:b@example.com!10k,\
         mailto:c@example.com!10m,mailto:d@example.com!1g,mailto:e@example.com!1t,\
         mailto:f@example.com!10M,https://reports.example.com/dmarc,\
         mailto:g@example.com!99999999999999999999t",
    );
    assert_eq!(
        record.aggregate_uris,
        vec![
            uri("mailto:a@example.com", Some(10)),
            uri("mailto:b@example.com", Some(10 * 1024)),
            uri("mailto:c@example.com", Some(10 * 1024 * 1024)),
            uri("mailto:d@example.com", Some(1 << 30)),
            uri("mailto:e@example.com", Some(1 << 40)),
            uri("mailto:f@example.com", Some(10 * 1024 * 1024)),
            uri("https://reports.example.com/dmarc", None),
            uri("mailto:g@example.com", Some(u64::MAX)),
        ]
    );
    // Invalid URIs are dropped, the valid ones kept.
    let record = parse(
        "v=DMARC1; p=none; rua=dmarc@example.com,mailto:,mailto:a@example.com!x,\
         mailto:b@example.com!10q,mailto:c@example.com!,mailto:d @example.com,\
         1mailto:e@example.com,:f@example.com,,mailto:ok@example.com!m,mailto:ok@example.com",
    );
    assert_eq!(
        record.aggregate_uris,
        vec![uri("mailto:ok@example.com", None)]
    );
    // An empty rua leaves no URI.
    assert!(parse("v=DMARC1; p=none; rua=").aggregate_uris.is_empty());
}

// RFC 7489 Appendix B.2 example records.

#[test]
fn appendix_b_2_1_monitoring_only() {
    let record = parse("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com");
    assert_eq!(record.policy, Policy::None);
    assert_eq!(
        record.aggregate_uris,
        vec![uri("mailto:dmarc-feedback@example.com", None)]
    );
    assert!(record.failure_uris.is_empty());
}

#[test]
fn appendix_b_2_2_and_b_2_3_failure_reports() {
    let record = parse(
        "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; \
         ruf=mailto:auth-reports@thirdparty.example.net",
    );
    assert_eq!(record.policy, Policy::None);
    assert_eq!(
        record.aggregate_uris,
        vec![uri("mailto:dmarc-feedback@example.com", None)]
    );
    assert_eq!(
        record.failure_uris,
        vec![uri("mailto:auth-reports@thirdparty.example.net", None)]
    );
    // B.2.3: the third party's authorization record is a DMARC record, but no policy.
    assert!(is_dmarc_record("v=DMARC1"));
    assert_eq!(DmarcRecord::parse("v=DMARC1"), Err(RecordError::NoPolicy));
}

#[test]
fn appendix_b_2_4_subdomain_sampling_two_aggregate_uris() {
    // The TXT strings of the zone file, joined without separator (RFC 7489 §6.6.3).
    let joined = [
        "v=DMARC1; p=quarantine; ",
        "rua=mailto:dmarc-feedback@example.com,",
        "mailto:tld-test@thirdparty.example.net!10m; ",
        "pct=25",
    ]
    .concat();
    let record = parse(&joined);
    assert_eq!(record.policy, Policy::Quarantine);
    assert_eq!(record.percent, 25);
    assert_eq!(
        record.aggregate_uris,
        vec![
            uri("mailto:dmarc-feedback@example.com", None),
            uri(
                "mailto:tld-test@thirdparty.example.net",
                Some(10 * 1024 * 1024)
            ),
        ]
    );
    // The same record pasted over several lines.
    let lines = "v=DMARC1; p=quarantine;\n    rua=mailto:dmarc-feedback@example.com,\n    \
                 mailto:tld-test@thirdparty.example.net!10m;\n    pct=25";
    assert_eq!(parse(lines), record);
}

#[test]
fn hostile_records_do_not_panic() {
    for text in [
        "v=DMARC1;=;==;;=p;p==reject",
        "v=DMARC1; p=reject; rua=!!!,!,,!10m",
        "v=DMARC1; p=réject; rua=mailto:é@example.com!10é",
        "v=DMARC1\u{0}; p=reject",
        "v=DMARC1; p=reject; pct=\u{663}",
    ] {
        let _ = DmarcRecord::parse(text);
    }
    let long = format!(
        "v=DMARC1; p=reject; rua={}",
        "mailto:a@example.com,".repeat(5000)
    );
    assert_eq!(parse(&long).aggregate_uris.len(), 5000);
}
