//! DATA framing: SECURITY-TESTS SM-01..SM-13 and SM-16, dot-unstuffing, size limit.

use super::harness::{PREFIX, client, mx, service, transcript};
use crate::core::Event;

const OUTER: &str = "From: s@ext.test\r\nTo: alice@local.test\r\nSubject: outer\r\n\r\nbody\r\n";
const SMUGGLED: &str = "MAIL FROM:<ceo@local.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\nFrom: ceo@local.test\r\nSubject: SMUGGLED\r\n\r\nx\r\n.\r\n";

/// The SM-* segment: outer message, end-of-data variant, smuggled transaction; then NOOP.
fn smuggle(variant: &[u8]) -> Vec<u8> {
    let mut input = PREFIX.as_bytes().to_vec();
    input.extend_from_slice(OUTER.as_bytes());
    input.extend_from_slice(variant);
    input.extend_from_slice(SMUGGLED.as_bytes());
    input.extend_from_slice(b"NOOP\r\n");
    input
}

/// SM-01..SM-06 and SM-09: every bare CR / bare LF end-of-data variant is content, the data
/// runs to the real `<CRLF>.<CRLF>`, and the message is refused with 550 5.5.2.
#[test]
fn bare_line_ending_variants_are_refused_at_the_real_end() {
    for variant in [
        &b"\n.\n"[..],    // SM-01
        b"\n.\r\n",       // SM-02
        b"\r.\r\n",       // SM-03
        b"\r\n.\n",       // SM-04
        b"\r\n.\r",       // SM-05 (the next byte is the M of MAIL)
        b"\r.\r",         // SM-06
        b"\n.\r",         // SM-06
        b"\r.\n",         // SM-06
        b"\r\n.\r\r\n",   // SM-09
        b"\r\r\n.\r\r\n", // SM-09
        b"\n",
        b"\r",
    ] {
        let session = transcript(&mx(), &[client(smuggle(variant))], &service);
        assert_eq!(
            session.lines()[9..],
            [
                "250 2.1.0 Sender OK",
                "250 2.1.5 Recipient OK",
                "354 End data with <CR><LF>.<CR><LF>",
                "550 5.5.2 Message contains bare CR or LF",
                "250 2.0.0 OK",
            ],
            "{variant:?}"
        );
        // No Message event; only the outer MAIL and RCPT reached the service.
        assert_eq!(session.events.len(), 2, "{variant:?}");
        assert!(!session.closed);
    }
}

/// After the refusal the transaction is gone: nothing smuggled inherits it.
#[test]
fn the_refused_message_ends_the_transaction() {
    let mut input = PREFIX.as_bytes().to_vec();
    input.extend_from_slice(b"x\n.\nx\r\n.\r\nRCPT TO:<b@local.test>\r\nDATA\r\n");
    let session = transcript(&mx(), &[client(input)], &service);
    assert_eq!(session.codes()[5..], [550, 503, 503]);
}

/// SM-07 / SM-08: NUL next to the dot does not end the data; one message holds it all.
#[test]
fn nul_next_to_the_dot_is_one_message() {
    for variant in [&b"\r\n\x00.\r\n"[..], b"\r\n.\x00\r\n"] {
        let session = transcript(&mx(), &[client(smuggle(variant))], &service);
        assert_eq!(session.codes()[5..], [250, 250], "{variant:?}");
        let Some(Event::Message { body }) = session.events.last() else {
            panic!("one message expected: {:?}", session.events);
        };
        let body = String::from_utf8_lossy(body);
        assert!(body.starts_with(OUTER));
        assert!(body.contains("\r\nMAIL FROM:<ceo@local.test>\r\n"));
        assert!(body.ends_with("Subject: SMUGGLED\r\n\r\nx\r\n"));
        assert_eq!(session.events.len(), 3);
    }
}

/// SM-10: commands pipelined after the end of data are processed after its reply, with no
/// inherited state, and each message gets its own reply.
#[test]
fn pipelining_across_the_end_of_data() {
    let mut input = PREFIX.as_bytes().to_vec();
    input.extend_from_slice(
        b"body\r\n.\r\nMAIL FROM:<ceo@local.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\nSubject: 2\r\n\r\nx\r\n.\r\n",
    );
    let session = transcript(&mx(), &[client(input)], &service);
    assert_eq!(
        session.codes()[2..],
        [250, 250, 354, 250, 250, 250, 354, 250]
    );
    let bodies: Vec<&Vec<u8>> = session
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Message { body } => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(
        bodies,
        [&b"body\r\n".to_vec(), &b"Subject: 2\r\n\r\nx\r\n".to_vec()]
    );
}

/// SM-13: dot-stuffing round trip.
#[test]
fn dot_unstuffing() {
    let mut input = PREFIX.as_bytes().to_vec();
    input.extend_from_slice(b"..leading-dot\r\n. \r\n..\r\n...\r\nend\r\n.\r\n");
    let session = transcript(&mx(), &[client(input)], &service);
    assert_eq!(
        session.events.last(),
        Some(&Event::Message {
            body: b".leading-dot\r\n \r\n.\r\n..\r\nend\r\n".to_vec()
        })
    );
}

/// RFC 5321 §4.1.1.4: the first line counts as preceded by CRLF.
#[test]
fn a_message_starting_with_the_end_is_empty() {
    let mut input = PREFIX.as_bytes().to_vec();
    input.extend_from_slice(b".\r\nNOOP\r\n");
    let session = transcript(&mx(), &[client(input)], &service);
    assert_eq!(
        session.events.last(),
        Some(&Event::Message { body: Vec::new() })
    );
    assert_eq!(session.codes()[5..], [250, 250]);
}

/// SM-16: long lines never desynchronise the decoder.
#[test]
fn long_lines_inside_data() {
    let config = crate::core::CoreConfig {
        max_message_size: 1 << 20,
        ..mx()
    };
    for n in [
        998, 999, 1000, 1001, 1022, 1024, 2046, 2048, 4094, 4096, 8190, 8192, 16384, 65534, 65536,
    ] {
        let mut input = PREFIX.as_bytes().to_vec();
        input.extend_from_slice(b"Subject: t\r\n\r\n");
        input.extend(std::iter::repeat_n(b'A', n));
        input.extend_from_slice(b".\r\n");
        input.extend_from_slice(SMUGGLED.as_bytes());
        let session = transcript(&config, &[client(input)], &service);
        assert_eq!(session.codes()[5..], [250], "n = {n}");
        let Some(Event::Message { body }) = session.events.last() else {
            panic!("n = {n}: one message expected");
        };
        let body = String::from_utf8_lossy(body);
        assert!(
            body.contains("A.\r\nMAIL FROM:<ceo@local.test>\r\n"),
            "n = {n}"
        );
        assert_eq!(session.events.len(), 3, "n = {n}");
    }
}

/// RFC 1870 §6.3: too big is refused after the end of data; the session goes on.
#[test]
fn message_over_the_size_limit() {
    let mut input = PREFIX.as_bytes().to_vec();
    for _ in 0..20 {
        input.extend(std::iter::repeat_n(b'x', 998));
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b".\r\nRCPT TO:<a@b.example>\r\nNOOP\r\n");
    let session = transcript(&mx(), &[client(input)], &service);
    assert_eq!(
        session.lines()[12..],
        [
            "552 5.3.4 Message too big",
            "503 5.5.1 MAIL first",
            "250 2.0.0 OK"
        ]
    );
    assert_eq!(session.events.len(), 2);
}

/// A message exactly at the limit is accepted.
#[test]
fn message_at_the_size_limit() {
    let mut input = PREFIX.as_bytes().to_vec();
    input.extend(std::iter::repeat_n(b'x', 9998));
    input.extend_from_slice(b"\r\n.\r\n");
    let session = transcript(&mx(), &[client(input)], &service);
    let Some(Event::Message { body }) = session.events.last() else {
        panic!("a message expected");
    };
    assert_eq!(body.len(), 10_000);
}
