#![allow(clippy::unwrap_used, clippy::expect_used)]

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};

use super::*;

const HOST: &str = "mail.example.org";
// 2026-01-01 00:00:00 UTC and a day later.
const ARRIVAL: i64 = 1_767_225_600;
const NOW: i64 = ARRIVAL + 86_400;
const ORIGINAL: &[u8] = b"From: Alice <alice@example.org>\r\nTo: <bob@remote.example>\r\n\
Subject: lunch?\r\nMessage-ID: <m1@example.org>\r\n\r\nShall we meet at noon?\r\n";

fn recipient(address: &str, action: Action, status: &str) -> DsnRecipient {
    DsnRecipient {
        address: address.into(),
        orcpt: None,
        action,
        status: status.into(),
        remote_mta: None,
        diagnostic: None,
        last_attempt: None,
        will_retry_until: None,
    }
}

fn bounced() -> DsnRecipient {
    DsnRecipient {
        orcpt: Some("rfc822;Bob+2Bsales@remote.example".into()),
        remote_mta: Some("mx1.remote.example".into()),
        diagnostic: Some(Diagnostic::Smtp(
            "550 5.1.1 <bob@remote.example>: no such user".into(),
        )),
        last_attempt: Some(NOW - 60),
        ..recipient("bob@remote.example", Action::Failed, "5.1.1")
    }
}

fn request<'a>(recipients: &'a [DsnRecipient], original: &'a [u8]) -> DsnRequest<'a> {
    DsnRequest {
        reporting_mta: HOST,
        sender: "alice@example.org",
        envid: None,
        ret: None,
        arrival: ARRIVAL,
        now: NOW,
        unique: "dsn.42.1767312000",
        recipients,
        original,
    }
}

fn text(raw: &[u8]) -> &str {
    std::str::from_utf8(raw).unwrap()
}

/// The three parts of the report, after checking the top-level structure (RFC 6522 §3).
fn parts<'a>(message: &'a mail_parser::Message<'a>) -> Vec<&'a MessagePart<'a>> {
    let content_type = message.root_part().content_type().unwrap();
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("report"));
    assert_eq!(
        content_type.attribute("report-type"),
        Some("delivery-status")
    );
    let ids = message.root_part().sub_parts().expect("a multipart");
    assert_eq!(ids.len(), 3, "text, status, original");
    ids.iter()
        .map(|id| message.part(*id).expect("the part"))
        .collect()
}

fn kind(part: &MessagePart<'_>) -> String {
    let content_type = part.content_type().unwrap();
    format!(
        "{}/{}",
        content_type.ctype(),
        content_type.subtype().unwrap_or("")
    )
}

fn status_of<'a>(part: &'a MessagePart<'a>) -> &'a str {
    std::str::from_utf8(part.contents()).unwrap()
}

#[test]
fn failure_report_has_the_rfc_3464_structure() {
    let recipients = [bounced()];
    let raw = build(&DsnRequest {
        envid: Some("QQ+2B314159"),
        ..request(&recipients, ORIGINAL)
    })
    .unwrap();
    assert!(raw.is_ascii(), "7-bit throughout");
    assert!(
        raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r') && raw[0] != b'\n',
        "CRLF line ends only"
    );
    let message = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(
        message.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Mail Delivery System"));
    assert_eq!(from.address(), Some("MAILER-DAEMON@mail.example.org"));
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("alice@example.org")
    );
    assert_eq!(
        message.message_id(),
        Some("dsn.42.1767312000@mail.example.org")
    );
    assert_eq!(message.date().unwrap().to_timestamp(), NOW);
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );

    let parts = parts(&message);
    assert_eq!(kind(parts[0]), "text/plain");
    let human = parts[0].text_contents().unwrap();
    assert!(human.contains("could not be delivered"), "{human}");
    assert!(human.contains("<bob@remote.example>"), "{human}");
    assert!(
        human.contains("mx1.remote.example said: 550 5.1.1"),
        "{human}"
    );

    assert_eq!(kind(parts[1]), "message/delivery-status");
    let status = status_of(parts[1]);
    let expected = "Original-Envelope-Id: QQ+314159\r\n\
        Reporting-MTA: dns; mail.example.org\r\n\
        Arrival-Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\
        \r\n\
        Original-Recipient: rfc822; Bob+sales@remote.example\r\n\
        Final-Recipient: rfc822; bob@remote.example\r\n\
        Action: failed\r\n\
        Status: 5.1.1\r\n\
        Remote-MTA: dns; mx1.remote.example\r\n\
        Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.example>: no such user\r\n\
        Last-Attempt-Date: Thu, 01 Jan 2026 23:59:00 +0000\r\n";
    assert!(status.starts_with(expected), "{status}");
    assert!(!status.contains("Will-Retry-Until"), "only for delayed");

    // RET absent, small message, failure: the whole message comes back.
    assert_eq!(kind(parts[2]), "message/rfc822");
    let PartType::Message(inner) = &parts[2].body else {
        panic!("not a nested message: {:?}", parts[2].body);
    };
    assert_eq!(inner.subject(), Some("lunch?"));
    assert!(text(&raw).contains(text(ORIGINAL)), "byte for byte");
    assert!(text(&raw).ends_with("--\r\n"), "closing boundary last");
}

#[test]
fn ret_hdrs_returns_the_header_only() {
    let recipients = [bounced()];
    let raw = build(&DsnRequest {
        ret: Some("HDRS"),
        ..request(&recipients, ORIGINAL)
    })
    .unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let parts = parts(&message);
    assert_eq!(kind(parts[2]), "text/rfc822-headers");
    let returned = parts[2].text_contents().unwrap();
    assert!(returned.contains("Subject: lunch?"), "{returned}");
    assert!(!text(&raw).contains("Shall we meet"), "no body");
    // FULL (any case) returns it all.
    let raw = build(&DsnRequest {
        ret: Some("full"),
        ..request(&recipients, ORIGINAL)
    })
    .unwrap();
    assert!(text(&raw).contains("Shall we meet"));
}

#[test]
fn a_large_message_comes_back_as_its_header() {
    let mut original = ORIGINAL.to_vec();
    while original.len() <= FULL_MESSAGE_LIMIT {
        original.extend_from_slice(b"0123456789012345678901234567890123456789012345678\r\n");
    }
    let recipients = [bounced()];
    let raw = build(&DsnRequest {
        ret: Some("FULL"),
        ..request(&recipients, &original)
    })
    .unwrap();
    assert!(raw.len() < 10_000, "{} octets", raw.len());
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(kind(parts(&message)[2]), "text/rfc822-headers");
}

#[test]
fn delay_warning() {
    let recipients = [DsnRecipient {
        diagnostic: Some(Diagnostic::Smtp("451 4.7.1 greylisted".into())),
        remote_mta: Some("mx.remote.example".into()),
        last_attempt: Some(NOW - 300),
        will_retry_until: Some(ARRIVAL + 5 * 86_400),
        ..recipient("carol@remote.example", Action::Delayed, "4.7.1")
    }];
    let raw = build(&request(&recipients, ORIGINAL)).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        message.subject(),
        Some("Delayed Mail (still being retried)")
    );
    let parts = parts(&message);
    let human = parts[0].text_contents().unwrap();
    assert!(human.contains("keep trying"), "{human}");
    assert!(human.contains("Tue, 06 Jan 2026"), "{human}");
    let status = status_of(parts[1]);
    assert!(status.contains("Action: delayed\r\n"), "{status}");
    assert!(status.contains("Status: 4.7.1\r\n"), "{status}");
    assert!(
        status.contains("Will-Retry-Until: Tue, 06 Jan 2026 00:00:00 +0000\r\n"),
        "{status}"
    );
    assert!(!status.contains("Original-Envelope-Id"), "no ENVID given");
    assert!(!status.contains("Original-Recipient"), "no ORCPT given");
    // A delay warning never carries the message itself.
    assert_eq!(kind(parts[2]), "text/rfc822-headers");
}

#[test]
fn mixed_outcomes_are_reported_per_recipient() {
    let recipients = [
        recipient("ok@remote.example", Action::Delivered, "2.0.0"),
        DsnRecipient {
            diagnostic: Some(Diagnostic::Local(
                "removed from the queue by the administrator".into(),
            )),
            ..recipient("gone@remote.example", Action::Failed, "5.0.0")
        },
    ];
    let raw = build(&request(&recipients, ORIGINAL)).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        message.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    let parts = parts(&message);
    let status = status_of(parts[1]);
    let groups: Vec<&str> = status.split("\r\n\r\n").collect();
    assert_eq!(groups.len(), 3, "per-message + two recipients: {status}");
    assert!(groups[1].contains("Final-Recipient: rfc822; ok@remote.example"));
    assert!(groups[1].contains("Action: delivered"));
    assert!(groups[2].contains("Action: failed"));
    assert!(groups[2].contains("Status: 5.0.0"));
    assert!(
        groups[2]
            .contains("Diagnostic-Code: X-Sealpost; removed from the queue by the administrator"),
        "{status}"
    );
    assert!(!groups[2].contains("Remote-MTA"), "none answered");
    let human = parts[0].text_contents().unwrap();
    assert!(human.contains("removed from the queue by the administrator"));
}

#[test]
fn never_to_the_null_sender() {
    assert!(must_not_bounce(None));
    assert!(must_not_bounce(Some("")));
    assert!(must_not_bounce(Some("<>")));
    assert!(must_not_bounce(Some("  ")));
    assert!(!must_not_bounce(Some("alice@example.org")));
    let recipients = [bounced()];
    for sender in ["", "<>"] {
        let built = build(&DsnRequest {
            sender,
            ..request(&recipients, ORIGINAL)
        });
        assert_eq!(built, Err(DsnError::NullSender));
    }
    assert_eq!(build(&request(&[], ORIGINAL)), Err(DsnError::NoRecipient));
}

#[test]
fn notify_decides_which_reports_are_wanted() {
    // RFC 3461 §4.1.
    assert!(wants_report(None, Action::Failed));
    assert!(wants_report(None, Action::Delayed));
    assert!(!wants_report(None, Action::Delivered));
    assert!(!wants_report(Some("NEVER"), Action::Failed));
    assert!(wants_report(Some("SUCCESS,FAILURE"), Action::Delivered));
    assert!(wants_report(Some("success, failure"), Action::Failed));
    assert!(!wants_report(Some("SUCCESS,FAILURE"), Action::Delayed));
}

#[test]
fn fields_cannot_inject_headers_and_statuses_are_checked() {
    let mut evil = bounced();
    evil.address = "bob@remote.example\r\nBcc: victim@example.com".into();
    assert!(matches!(
        build(&request(&[evil], ORIGINAL)),
        Err(DsnError::BadField(_))
    ));
    let recipients = [bounced()];
    let evil_sender = DsnRequest {
        sender: "alice@example.org>\r\nBcc: <x@example.com",
        ..request(&recipients, ORIGINAL)
    };
    assert!(matches!(build(&evil_sender), Err(DsnError::BadField(_))));
    // A remote reply with line breaks stays on its line.
    let mut chatty = bounced();
    chatty.diagnostic = Some(Diagnostic::Smtp(
        "550-5.1.1 first\r\n550 5.1.1 second\r\nX-Injected: yes".into(),
    ));
    let raw = build(&request(&[chatty], ORIGINAL)).unwrap();
    assert!(!text(&raw).contains("\r\nX-Injected"), "{}", text(&raw));
    for bad in [
        "", "5", "5.1", "3.1.1", "5.1.1.1", "5.a.1", "5.1.1234", " 5.1.1",
    ] {
        let mut odd = bounced();
        odd.status = bad.into();
        assert_eq!(
            build(&request(&[odd], ORIGINAL)),
            Err(DsnError::BadStatus(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn international_addresses_stay_7bit_in_the_report() {
    let recipients = [recipient("jürgen@bücher.example", Action::Failed, "5.1.1")];
    let raw = build(&request(&recipients, ORIGINAL)).unwrap();
    assert!(raw.is_ascii(), "{}", String::from_utf8_lossy(&raw));
    let message = MessageParser::default().parse(&raw).unwrap();
    let parts = parts(&message);
    assert_eq!(
        parts[0].content_transfer_encoding(),
        Some("quoted-printable")
    );
    assert_eq!(
        parts[0].content_type().unwrap().attribute("charset"),
        Some("utf-8")
    );
    let human = parts[0].text_contents().unwrap();
    assert!(human.contains("<jürgen@bücher.example>"), "{human}");
    let status = status_of(parts[1]);
    assert!(
        status.contains("Final-Recipient: utf-8; j\\x{FC}rgen@b\\x{FC}cher.example\r\n"),
        "{status}"
    );
}

#[test]
fn an_8bit_original_is_declared_and_the_boundary_never_clashes() {
    let unique = "dsn.7";
    // The original already holds the boundary the builder would try first.
    let original = format!("Subject: caf\u{e9}\r\n\r\n--=_dsn_{unique}_0\r\nbody\r\n");
    let recipients = [bounced()];
    let raw = build(&DsnRequest {
        unique,
        ..request(&recipients, original.as_bytes())
    })
    .unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let boundary = message
        .root_part()
        .content_type()
        .unwrap()
        .attribute("boundary")
        .unwrap()
        .to_string();
    assert_ne!(boundary, format!("=_dsn_{unique}_0"));
    let parts = parts(&message);
    assert_eq!(kind(parts[2]), "message/rfc822");
    assert_eq!(parts[2].content_transfer_encoding(), Some("8bit"));
    let PartType::Message(inner) = &parts[2].body else {
        panic!("not a nested message");
    };
    assert_eq!(inner.subject(), Some("café"));
}

#[test]
fn quoted_printable_lines_are_short_and_decodable() {
    let long = format!("{} ünïcödé =end \r\nsecond", "x".repeat(100));
    let encoded = quoted_printable(&long);
    assert!(encoded.is_ascii());
    assert!(
        encoded.split("\r\n").all(|line| line.len() <= 76),
        "{encoded}"
    );
    let joined = encoded.replace("=\r\n", "");
    assert_eq!(
        joined,
        format!(
            "{} =C3=BCn=C3=AFc=C3=B6d=C3=A9 =3Dend=20\r\nsecond",
            "x".repeat(100)
        )
    );
}

#[test]
fn header_block_ends_at_the_empty_line() {
    assert_eq!(
        header_of(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
        b"A: 1\r\nB: 2\r\n\r\n"
    );
    assert_eq!(header_of(b"A: 1\nB: 2\n\nbody\n"), b"A: 1\nB: 2\n\n");
    assert_eq!(header_of(b"A: 1\r\nB: 2"), b"A: 1\r\nB: 2");
    assert_eq!(header_of(b""), b"");
}
