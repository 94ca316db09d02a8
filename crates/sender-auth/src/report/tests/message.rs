//! RFC 7489 §7.2.1.1: gzip and the message that carries a report.

use std::io::Read;

use base64::Engine;
use flate2::read::GzDecoder;

use super::*;

#[test]
fn gzip_round_trip() {
    let xml = report(&[row(), second_row()]).unwrap();
    let compressed = gzip(&xml).unwrap();
    assert_eq!(
        &compressed[..2],
        &[0x1f, 0x8b],
        "gzip magic (RFC 1952 §2.3.1)"
    );
    let mut decompressed = String::new();
    GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut decompressed)
        .unwrap();
    assert_eq!(decompressed, xml);
}

const REPORT_ID: &str = "20240301.example.com.1";
const DATE: &str = "Sat, 02 Mar 2024 00:10:00 +0000";

fn recipients() -> Vec<String> {
    vec![
        "dmarc@example.com".to_string(),
        "reports@example.net".to_string(),
    ]
}

fn message(policy_domain: &str, to: &[String], gz: &[u8]) -> Result<Vec<u8>, ReportError> {
    report_message(
        &reporter(),
        policy_domain,
        "2024-03-01",
        REPORT_ID,
        DATE,
        to,
        gz,
    )
}

/// The header fields of `text`, unfolded, and the body.
fn split_message(text: &str) -> (Vec<String>, &str) {
    let (header, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line ends the header");
    let fields = header
        .replace("\r\n ", " ")
        .split("\r\n")
        .map(str::to_string)
        .collect();
    (fields, body)
}

#[test]
fn the_message_carries_the_report() {
    let gz = gzip(&report(&[row(), second_row()]).unwrap()).unwrap();
    let bytes = message("example.com", &recipients(), &gz).unwrap();
    let text = String::from_utf8(bytes).unwrap();

    // RFC 5322 §2.1: CRLF only, and lines within 78 characters.
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "bare CR or LF"
    );
    assert!(text.ends_with("\r\n"));
    for line in text.split("\r\n") {
        assert!(line.len() <= 78, "long line {line:?}");
    }

    let (fields, body) = split_message(&text);
    assert!(
        !body.starts_with("\r\n"),
        "exactly one blank line after the header"
    );
    for expected in [
        "From: dmarc-reports@mail.example.org",
        "To: dmarc@example.com, reports@example.net",
        "Date: Sat, 02 Mar 2024 00:10:00 +0000",
        "Subject: Report Domain: example.com Submitter: mail.example.org \
         Report-ID: <20240301.example.com.1>",
        "Message-ID: <20240301.example.com.1@mail.example.org>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"=_sealpost_dmarc_aggregate_report\"",
        "Auto-Submitted: auto-generated",
    ] {
        assert!(
            fields.iter().any(|field| field == expected),
            "{expected:?} in {fields:#?}"
        );
    }
    assert_eq!(fields.len(), 8, "{fields:#?}");

    let parts: Vec<&str> = body.split("--=_sealpost_dmarc_aggregate_report").collect();
    assert_eq!(parts.len(), 4, "preamble, two parts, epilogue: {body}");
    assert_eq!(parts[3], "--\r\n", "closing delimiter last");

    let (text_fields, text_body) = split_message(parts[1].trim_start_matches("\r\n"));
    assert!(text_fields.contains(&"Content-Type: text/plain; charset=us-ascii".to_string()));
    assert!(
        text_body.contains("aggregate report from mail.example.org"),
        "{text_body}"
    );

    let (attachment_fields, encoded) = split_message(parts[2].trim_start_matches("\r\n"));
    assert_eq!(
        attachment_fields,
        vec![
            "Content-Type: application/gzip".to_string(),
            "Content-Transfer-Encoding: base64".to_string(),
            format!(
                "Content-Disposition: attachment; \
                 filename=\"mail.example.org!example.com!{MARCH_1_BEGIN}!{MARCH_1_END}.xml.gz\""
            ),
        ]
    );
    let lines: Vec<&str> = encoded
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .collect();
    assert!(lines.iter().all(|line| line.len() <= 76));
    assert!(lines[..lines.len() - 1].iter().all(|line| line.len() == 76));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(lines.concat())
        .unwrap();
    assert_eq!(decoded, gz);
}

#[test]
fn long_subjects_are_folded_at_spaces() {
    let long_domain = format!("{}.{}.example.com", "a".repeat(60), "b".repeat(60));
    let bytes = message(&long_domain, &recipients(), b"gz").unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (fields, _) = split_message(&text);
    let subject = format!(
        "Subject: Report Domain: {long_domain} Submitter: mail.example.org \
         Report-ID: <{REPORT_ID}>"
    );
    assert!(fields.contains(&subject), "{fields:#?}");
    let header = text.split("\r\n\r\n").next().unwrap();
    for line in header.split("\r\n") {
        assert!(
            line.len() <= 78 || !line.trim().contains(' '),
            "only a single word may pass 78 characters: {line:?}"
        );
    }
}

#[test]
fn header_injection_is_refused() {
    let gz = b"gz".as_slice();
    for domain in [
        "example.com\r\nBcc: victim@example.net",
        "example.com\nBcc: victim@example.net",
        "example .com",
        "example.com ",
        "exa\"mple.com",
        "example.com>",
        "",
    ] {
        assert!(
            matches!(
                message(domain, &recipients(), gz),
                Err(ReportError::InvalidDomain {
                    field: "policy domain",
                    ..
                })
            ),
            "{domain:?}"
        );
    }
    for recipient in [
        "a@example.com\r\nBcc: victim@example.net",
        "a@example.com, victim@example.net",
        "\"a b\"@example.com",
        "<a@example.com>",
        "a@example.com (comment)",
        "no-at-sign",
        "a@",
        "@example.com",
        "a..b@example.com",
    ] {
        assert!(
            matches!(
                message("example.com", &[recipient.to_string()], gz),
                Err(ReportError::InvalidAddress {
                    field: "recipient",
                    ..
                })
            ),
            "{recipient:?}"
        );
    }
    assert!(matches!(
        message("example.com", &[], gz),
        Err(ReportError::NoRecipients)
    ));

    let with = |reporter: Reporter, report_id: &str, date: &str| {
        report_message(
            &reporter,
            "example.com",
            "2024-03-01",
            report_id,
            date,
            &recipients(),
            gz,
        )
    };
    assert!(matches!(
        with(reporter(), "id\r\nBcc: x@y.example", DATE),
        Err(ReportError::InvalidReportId(_))
    ));
    assert!(matches!(
        with(reporter(), "a b", DATE),
        Err(ReportError::InvalidReportId(_))
    ));
    assert!(matches!(
        with(reporter(), "", DATE),
        Err(ReportError::InvalidReportId(_))
    ));
    assert!(matches!(
        with(
            reporter(),
            REPORT_ID,
            "Sat, 02 Mar 2024\r\nBcc: x@y.example"
        ),
        Err(ReportError::InvalidDate(_))
    ));
    let named = |org_name: &str| Reporter {
        org_name: org_name.to_string(),
        ..reporter()
    };
    assert!(matches!(
        with(named("Example Org"), REPORT_ID, DATE),
        Err(ReportError::InvalidDomain {
            field: "org_name",
            ..
        })
    ));
    let from = Reporter {
        email: "reports@mail.example.org\r\nBcc: x@y.example".to_string(),
        ..reporter()
    };
    assert!(matches!(
        with(from, REPORT_ID, DATE),
        Err(ReportError::InvalidAddress {
            field: "reporter email",
            ..
        })
    ));
}
