//! RFC 7489 Appendix C: the XML of a report.

use super::super::xml::escape;
use super::*;

#[test]
fn two_rows_give_every_element_in_schema_order() {
    let xml = report(&[row(), second_row()]).unwrap();
    assert!(xml.starts_with(DECLARATION), "{xml}");
    assert!(xml.contains("\n<feedback>\n"), "{xml}");
    let begin = MARCH_1_BEGIN.to_string();
    let end = MARCH_1_END.to_string();
    assert_eq!(
        leaves(&xml),
        pairs(&[
            ("feedback/version", "1.0"),
            ("feedback/report_metadata/org_name", "mail.example.org"),
            (
                "feedback/report_metadata/email",
                "dmarc-reports@mail.example.org"
            ),
            ("feedback/report_metadata/report_id", "20240301.1"),
            ("feedback/report_metadata/date_range/begin", &begin),
            ("feedback/report_metadata/date_range/end", &end),
            ("feedback/policy_published/domain", "example.com"),
            ("feedback/policy_published/adkim", "s"),
            ("feedback/policy_published/aspf", "r"),
            ("feedback/policy_published/p", "reject"),
            ("feedback/policy_published/sp", "quarantine"),
            ("feedback/policy_published/pct", "50"),
            // The first record: two DKIM signatures, SPF on MAIL FROM, no override.
            ("feedback/record/row/source_ip", "192.0.2.1"),
            ("feedback/record/row/count", "3"),
            ("feedback/record/row/policy_evaluated/disposition", "reject"),
            ("feedback/record/row/policy_evaluated/dkim", "fail"),
            ("feedback/record/row/policy_evaluated/spf", "fail"),
            ("feedback/record/identifiers/envelope_to", "example.org"),
            (
                "feedback/record/identifiers/envelope_from",
                "bounces.example.com"
            ),
            ("feedback/record/identifiers/header_from", "example.com"),
            ("feedback/record/auth_results/dkim/domain", "example.com"),
            ("feedback/record/auth_results/dkim/selector", "sel1"),
            ("feedback/record/auth_results/dkim/result", "fail"),
            ("feedback/record/auth_results/dkim/domain", "other.example"),
            ("feedback/record/auth_results/dkim/selector", "s2"),
            ("feedback/record/auth_results/dkim/result", "pass"),
            (
                "feedback/record/auth_results/spf/domain",
                "bounces.example.com"
            ),
            ("feedback/record/auth_results/spf/scope", "mfrom"),
            ("feedback/record/auth_results/spf/result", "fail"),
            // The second: IPv6, an override reason, null reverse-path, no DKIM, SPF on HELO.
            ("feedback/record/row/source_ip", "2001:db8::1"),
            ("feedback/record/row/count", "1"),
            ("feedback/record/row/policy_evaluated/disposition", "none"),
            ("feedback/record/row/policy_evaluated/dkim", "pass"),
            ("feedback/record/row/policy_evaluated/spf", "fail"),
            (
                "feedback/record/row/policy_evaluated/reason/type",
                "mailing_list"
            ),
            ("feedback/record/identifiers/envelope_from", ""),
            (
                "feedback/record/identifiers/header_from",
                "news.example.com"
            ),
            ("feedback/record/auth_results/spf/domain", "mx.example.net"),
            ("feedback/record/auth_results/spf/scope", "helo"),
            ("feedback/record/auth_results/spf/result", "pass"),
        ])
    );
    assert_eq!(xml.matches("<record>").count(), 2);
    assert_eq!(
        xml.matches("<dkim>\n").count(),
        2,
        "one per signature in auth_results"
    );
}

#[test]
fn hostile_identifiers_are_escaped() {
    let hostile = "a<b>&\"c\"'d'</header_from><injected/>";
    let xml = report(&[DmarcReportRow {
        header_from: hostile.to_string(),
        envelope_from: "x&y".to_string(),
        ..row()
    }])
    .unwrap();
    assert!(
        xml.contains(
            "<header_from>a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&lt;/header_from&gt;\
             &lt;injected/&gt;</header_from>"
        ),
        "{xml}"
    );
    assert!(!xml.contains("<injected/>"));
    assert_eq!(
        leaf(&xml, "feedback/record/identifiers/header_from"),
        hostile
    );
    assert_eq!(
        leaf(&xml, "feedback/record/identifiers/envelope_from"),
        "x&y"
    );
}

#[test]
fn reporter_values_are_escaped_too() {
    let reporter = Reporter {
        org_name: "Example & <Co>".to_string(),
        ..reporter()
    };
    let xml = aggregate_xml(&reporter, "example.com", "2024-03-01", "1", &[row()]).unwrap();
    assert!(
        xml.contains("<org_name>Example &amp; &lt;Co&gt;</org_name>"),
        "{xml}"
    );
}

#[test]
fn characters_xml_cannot_carry_are_replaced() {
    assert_eq!(
        escape("a\u{0}b\u{1b}c\u{FFFF}"),
        "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
    );
    assert_eq!(escape("tab\tline\ncr\r"), "tab\tline\ncr&#xD;");
    assert_eq!(escape("münchen.example"), "münchen.example");
}

#[test]
fn policy_published_defaults_follow_rfc_7489() {
    let xml = report(&[DmarcReportRow {
        policy_published: "p=quarantine".to_string(),
        ..row()
    }])
    .unwrap();
    assert_eq!(leaf(&xml, "feedback/policy_published/adkim"), "r");
    assert_eq!(leaf(&xml, "feedback/policy_published/aspf"), "r");
    assert_eq!(leaf(&xml, "feedback/policy_published/p"), "quarantine");
    assert_eq!(leaf(&xml, "feedback/policy_published/sp"), "quarantine");
    assert_eq!(leaf(&xml, "feedback/policy_published/pct"), "100");
}

#[test]
fn published_policy_parsing() {
    assert_eq!(
        PublishedPolicy::parse(
            "adkim=s;aspf=s;p=reject;sp=none;pct=100;rua=mailto:a@x.org,mailto:b@y.org!10m"
        ),
        PublishedPolicy {
            adkim: "s".to_string(),
            aspf: "s".to_string(),
            p: "reject".to_string(),
            sp: "none".to_string(),
            pct: 100,
            rua: vec![
                "mailto:a@x.org".to_string(),
                "mailto:b@y.org!10m".to_string()
            ],
        }
    );
    assert_eq!(
        PublishedPolicy::parse(""),
        PublishedPolicy {
            adkim: "r".to_string(),
            aspf: "r".to_string(),
            p: "none".to_string(),
            sp: "none".to_string(),
            pct: 100,
            rua: Vec::new(),
        }
    );
    // Unknown values fall back to the defaults; unknown tags are ignored; the first wins.
    let odd = PublishedPolicy::parse(
        " v=DMARC1 ; ADKIM = S ; aspf=x; p=Reject; p=none; pct=101; fo=1; rua= mailto:a@x.org , ",
    );
    assert_eq!(odd.adkim, "s");
    assert_eq!(odd.aspf, "r");
    assert_eq!((odd.p.as_str(), odd.sp.as_str()), ("reject", "reject"));
    assert_eq!(odd.pct, 100);
    assert_eq!(odd.rua, vec!["mailto:a@x.org".to_string()]);
    assert_eq!(PublishedPolicy::parse("pct=0").pct, 0);
    assert_eq!(PublishedPolicy::parse("pct=-1").pct, 100);
}

#[test]
fn date_range_is_the_utc_day() {
    assert_eq!(
        date_range("1970-01-01").unwrap(),
        DateRange {
            begin: 0,
            end: 86_399
        }
    );
    assert_eq!(
        date_range("2024-03-01").unwrap(),
        DateRange {
            begin: MARCH_1_BEGIN,
            end: MARCH_1_END
        }
    );
    // 2000 is a leap year (divisible by 400): 2000-03-01 is day 11017.
    assert_eq!(date_range("2000-03-01").unwrap().begin, 11_017 * 86_400);
    assert!(date_range("2000-02-29").is_ok());
    for invalid in [
        "2023-02-29",
        "2100-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "1969-12-31",
        "24-03-01",
        "2024-3-1",
        "2024/03/01",
        "2024-03-01T00:00",
        "",
        "２024-03-01",
    ] {
        assert!(
            matches!(date_range(invalid), Err(ReportError::InvalidDay(_))),
            "{invalid}"
        );
    }
}

#[test]
fn rows_the_schema_cannot_express_are_refused() {
    let cases: Vec<(DmarcReportRow, &str)> = vec![
        (
            DmarcReportRow {
                disposition: "drop".into(),
                ..row()
            },
            "disposition",
        ),
        (
            DmarcReportRow {
                dkim_aligned: "maybe".into(),
                ..row()
            },
            "dkim_aligned",
        ),
        (
            DmarcReportRow {
                spf_aligned: "".into(),
                ..row()
            },
            "spf_aligned",
        ),
        (
            DmarcReportRow {
                override_reason: "whim".into(),
                ..row()
            },
            "override_reason",
        ),
        (
            DmarcReportRow {
                source_ip: "192.0.2.300".into(),
                ..row()
            },
            "source_ip",
        ),
        (
            DmarcReportRow {
                dkim_results: "example.com".into(),
                ..row()
            },
            "dkim_results",
        ),
        (
            DmarcReportRow {
                dkim_results: "a.example s great".into(),
                ..row()
            },
            "dkim_results",
        ),
        (
            DmarcReportRow {
                spf_result: "a.example ehlo pass".into(),
                ..row()
            },
            "spf_result",
        ),
        (
            DmarcReportRow {
                spf_result: "a.example pass".into(),
                ..row()
            },
            "spf_result",
        ),
        (
            DmarcReportRow {
                day: "2024-03-02".into(),
                ..row()
            },
            "day",
        ),
        (
            DmarcReportRow {
                policy_domain: "example.net".into(),
                ..row()
            },
            "policy_domain",
        ),
    ];
    for (bad, field) in cases {
        match report(&[row(), bad]) {
            Err(ReportError::InvalidRow {
                index: 1,
                field: found,
                ..
            }) => assert_eq!(found, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn lenient_where_the_values_are_unambiguous() {
    let xml = report(&[DmarcReportRow {
        policy_domain: "Example.COM".to_string(),
        disposition: "Quarantine".to_string(),
        dkim_results: "example.com pass".to_string(),
        spf_result: String::new(),
        ..row()
    }])
    .unwrap();
    assert_eq!(
        leaf(&xml, "feedback/record/row/policy_evaluated/disposition"),
        "quarantine"
    );
    // A signature without a recorded selector: the optional selector element is left out.
    assert!(!xml.contains("<selector>"), "{xml}");
    assert_eq!(
        leaf(&xml, "feedback/record/auth_results/dkim/result"),
        "pass"
    );
    // SPF never evaluated: the required spf element says none for MAIL FROM.
    assert_eq!(
        leaf(&xml, "feedback/record/auth_results/spf/domain"),
        "bounces.example.com"
    );
    assert_eq!(
        leaf(&xml, "feedback/record/auth_results/spf/scope"),
        "mfrom"
    );
    assert_eq!(
        leaf(&xml, "feedback/record/auth_results/spf/result"),
        "none"
    );
}

#[test]
fn a_report_needs_records_a_valid_domain_and_day() {
    assert!(matches!(report(&[]), Err(ReportError::NoRecords)));
    for domain in [
        "exa mple.com",
        "example.com\r\nX: y",
        "",
        "-example.com",
        "a..b",
    ] {
        assert!(
            matches!(
                aggregate_xml(&reporter(), domain, "2024-03-01", "1", &[row()]),
                Err(ReportError::InvalidDomain { .. })
            ),
            "{domain:?}"
        );
    }
    assert!(matches!(
        aggregate_xml(&reporter(), "example.com", "2024-02-30", "1", &[row()]),
        Err(ReportError::InvalidDay(_))
    ));
}
