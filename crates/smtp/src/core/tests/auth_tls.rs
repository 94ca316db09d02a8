//! STARTTLS (RFC 3207; SECURITY-TESTS ST-01, ST-02, ST-06, ST-07, ST-08) and AUTH
//! (RFC 4954; AU-06, AU-07, AU-08).

use sealpost_sasl::Mechanism;

use super::harness::{PLAIN_ALICE, Step, client, mx, service, submission, submissions, transcript};
use crate::core::{Answer, CoreConfig, Event, Reply, ServerCore};

/// ST-01: `STARTTLS\r\nRSET\r\n` in one segment: only the 220; the RSET never runs.
#[test]
fn starttls_drops_pipelined_plaintext() {
    let session = transcript(
        &mx(),
        &[
            client("EHLO t.test\r\n"),
            client("STARTTLS\r\nRSET\r\n"),
            Step::TlsStarted,
            client("NOOP\r\n"),
        ],
        &service,
    );
    assert_eq!(
        session.lines()[9..],
        ["220 2.0.0 Ready to start TLS", "250 2.0.0 OK"]
    );
    assert_eq!(session.events, [Event::StartTls]);
    assert!(session.session.tls);
}

/// The same with the core driven by hand: nothing after STARTTLS is ever output.
#[test]
fn starttls_output_is_only_the_220() {
    let mut core = ServerCore::new(mx());
    core.feed(b"EHLO t.test\r\n");
    assert_eq!(core.next_event(), None);
    core.take_output();
    core.feed(b"STARTTLS\r\nRSET\r\n");
    assert_eq!(core.next_event(), Some(Event::StartTls));
    assert_eq!(core.next_event(), None);
    assert_eq!(core.take_output(), b"220 2.0.0 Ready to start TLS\r\n");
    // Bytes that arrive before the handshake completes are dropped too.
    core.feed(b"MAIL FROM:<attacker@ext.test>\r\n");
    assert_eq!(core.next_event(), None);
    assert!(!core.answer(Answer::Accept(Reply::new(250, "2.0.0", "OK"))));
    core.tls_started();
    assert_eq!(core.next_event(), None);
    assert!(!core.has_output());
    core.feed(b"NOOP\r\n");
    assert_eq!(core.next_event(), None);
    assert_eq!(core.take_output(), b"250 2.0.0 OK\r\n");
    // tls_started outside STARTTLS is ignored.
    core.tls_started();
    assert!(!core.has_output());
}

/// ST-02: an injected MAIL does not survive the handshake.
#[test]
fn injected_transaction_state_is_gone() {
    let session = transcript(
        &submission(),
        &[
            client("EHLO t.test\r\n"),
            client("STARTTLS\r\nMAIL FROM:<attacker@ext.test>\r\n"),
            client("RCPT TO:<late@ext.test>\r\n"),
            Step::TlsStarted,
            client("EHLO t.test\r\n"),
            client("RCPT TO:<alice@local.test>\r\n"),
        ],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("503 5.5.1 MAIL first")
    );
    assert_eq!(session.events, [Event::StartTls]);
}

/// ST-07: the session is reset after TLS; the new EHLO lists AUTH and not STARTTLS.
#[test]
fn state_reset_after_tls() {
    let session = transcript(
        &submission(),
        &[
            client("EHLO t.test\r\n"),
            client("STARTTLS\r\n"),
            Step::TlsStarted,
            client("MAIL FROM:<a@ext.test>\r\nEHLO t.test\r\n"),
        ],
        &service,
    );
    let lines = session.lines();
    let before: Vec<&String> = lines.iter().take(9).collect();
    assert!(before.iter().any(|line| line.as_str() == "250 STARTTLS"));
    assert!(!before.iter().any(|line| line.contains("AUTH")));
    assert_eq!(lines[10], "503 5.5.1 EHLO/HELO first");
    let after = &lines[11..];
    assert!(!after.iter().any(|line| line.contains("STARTTLS")));
    assert_eq!(
        after.last().map(String::as_str),
        Some("250 AUTH PLAIN LOGIN")
    );
    assert_eq!(session.session.helo.as_deref(), Some("t.test"));
}

/// ST-08: STARTTLS twice, with arguments, where not offered, after AUTH.
#[test]
fn starttls_refusals() {
    let session = transcript(
        &mx(),
        &[
            client("EHLO t.test\r\nSTARTTLS now\r\nSTARTTLS\r\n"),
            Step::TlsStarted,
            client("EHLO t.test\r\nSTARTTLS\r\n"),
        ],
        &service,
    );
    let lines = session.lines();
    assert_eq!(lines[9], "501 5.5.4 Syntax error (no parameters allowed)");
    assert_eq!(lines[10], "220 2.0.0 Ready to start TLS");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("503 5.5.1 STARTTLS not available")
    );

    let session = transcript(
        &submissions(),
        &[client("EHLO t.test\r\nSTARTTLS\r\n")],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("503 5.5.1 STARTTLS not available")
    );

    let plaintext_auth = CoreConfig {
        auth_requires_tls: false,
        ..submission()
    };
    let session = transcript(
        &plaintext_auth,
        &[client(format!(
            "EHLO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\nSTARTTLS\r\n"
        ))],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("503 5.5.1 STARTTLS not allowed after authentication")
    );
}

/// ST-06: before TLS on submission: no AUTH in EHLO, AUTH and MAIL get 530, and the
/// credentials never reach the service.
#[test]
fn credentials_refused_before_tls() {
    let session = transcript(
        &submission(),
        &[client(format!(
            "EHLO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\nMAIL FROM:<alice@local.test>\r\n"
        ))],
        &service,
    );
    let lines = session.lines();
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("250-AUTH") || line.starts_with("250 AUTH"))
    );
    assert_eq!(
        lines[9..],
        [
            "530 5.7.0 Must issue a STARTTLS command first",
            "530 5.7.0 Authentication required"
        ]
    );
    assert!(session.events.is_empty());
}

#[test]
fn auth_plain_with_initial_response() {
    let session = transcript(
        &submissions(),
        &[client(format!(
            "EHLO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\nEHLO t.test\r\nMAIL FROM:<alice@local.test>\r\n"
        ))],
        &service,
    );
    let lines = session.lines();
    assert_eq!(lines[10], "235 2.7.0 Authentication successful");
    // After AUTH the EHLO reply no longer offers AUTH (RFC 4954 §4).
    assert!(!lines[11..].iter().any(|line| line.contains("AUTH")));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("250 2.1.0 Sender OK")
    );
    assert_eq!(
        session.session.authenticated.as_deref(),
        Some("alice@local.test")
    );
    assert_eq!(
        session.events[0],
        Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(PLAIN_ALICE.as_bytes().to_vec())
        }
    );
}

#[test]
fn auth_plain_with_empty_challenge_and_login_with_challenges() {
    let session = transcript(
        &submissions(),
        &[client(format!(
            "EHLO t.test\r\nAUTH PLAIN\r\n{PLAIN_ALICE}\r\n"
        ))],
        &service,
    );
    assert_eq!(
        session.lines()[10..],
        ["334 ", "235 2.7.0 Authentication successful"]
    );

    let session = transcript(
        &submissions(),
        &[client(
            "EHLO t.test\r\nauth login\r\nYWxpY2U=\r\nY29ycmVjdC1ob3JzZQ==\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines()[10..],
        [
            "334 VXNlcm5hbWU6",
            "334 UGFzc3dvcmQ6",
            "235 2.7.0 Authentication successful"
        ]
    );
    assert_eq!(
        session.events,
        [
            Event::Auth {
                mechanism: Mechanism::Login,
                initial_response: None
            },
            Event::AuthResponse {
                line: b"YWxpY2U=".to_vec()
            },
            Event::AuthResponse {
                line: b"Y29ycmVjdC1ob3JzZQ==".to_vec()
            },
        ]
    );
}

/// AU-06: cancel, wrong credentials, `=`, unknown mechanism.
#[test]
fn auth_failures() {
    let session = transcript(
        &submissions(),
        &[client(
            "EHLO t.test\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN AGFsaWNlAHdyb25n\r\nAUTH PLAIN =\r\nAUTH XYZ\r\nAUTH CRAM-MD5\r\nAUTH PLAIN ####\r\nNOOP\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines()[10..],
        [
            "334 ",
            "501 5.7.0 Authentication cancelled",
            "535 5.7.8 Authentication credentials invalid",
            "535 5.7.8 Authentication credentials invalid",
            "504 5.5.4 Unrecognized authentication mechanism",
            "504 5.5.4 Unrecognized authentication mechanism",
            // Decoding is the SASL layer's: the service saw "####" and refused it.
            "535 5.7.8 Authentication credentials invalid",
            "250 2.0.0 OK",
        ]
    );
    assert_eq!(
        session.events[3],
        Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(Vec::new())
        }
    );
    assert!(session.session.authenticated.is_none());
}

/// AU-08: AUTH where not offered, twice, during a transaction, before EHLO.
#[test]
fn auth_ordering_rules() {
    let session = transcript(
        &mx(),
        &[client(format!(
            "EHLO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\n"
        ))],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("503 5.5.1 AUTH not available")
    );

    let session = transcript(
        &submissions(),
        &[client(format!(
            "AUTH PLAIN {PLAIN_ALICE}\r\nHELO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\nEHLO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\nAUTH PLAIN {PLAIN_ALICE}\r\n"
        ))],
        &service,
    );
    let lines = session.lines();
    assert_eq!(lines[1], "503 5.5.1 Send EHLO first");
    assert_eq!(lines[3], "503 5.5.1 Send EHLO first");
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "235 2.7.0 Authentication successful",
            "503 5.5.1 Already authenticated"
        ]
    );

    let open = CoreConfig {
        require_auth_for_mail: false,
        ..submissions()
    };
    let session = transcript(
        &open,
        &[client(format!(
            "EHLO t.test\r\nMAIL FROM:<a@b.example>\r\nAUTH PLAIN {PLAIN_ALICE}\r\n"
        ))],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("503 5.5.1 AUTH not permitted during a mail transaction")
    );
}

/// AU-07: an AUTH response line over 12 288 octets ends the exchange with 500 5.5.6.
#[test]
fn oversize_auth_line() {
    let mut input = b"EHLO t.test\r\nAUTH PLAIN\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 13_000));
    input.extend_from_slice(b"\r\nNOOP\r\n");
    let session = transcript(&submissions(), &[client(input)], &service);
    assert_eq!(
        session.lines()[10..],
        [
            "334 ",
            "500 5.5.6 Authentication Exchange line is too long",
            "250 2.0.0 OK"
        ]
    );
    assert_eq!(session.events.len(), 1);

    // 12 288 octets exactly is a line.
    let mut input = b"EHLO t.test\r\nAUTH PLAIN\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 12_288));
    input.extend_from_slice(b"\r\n");
    let session = transcript(&submissions(), &[client(input)], &service);
    assert_eq!(session.codes().last(), Some(&535));
    assert_eq!(session.events.len(), 2);
}

#[test]
fn mismatched_answers_do_not_hang_the_session() {
    let confused = |event: &Event| match event {
        Event::Mail { .. } => Some(Answer::AuthSuccess {
            login: "mallory".to_string(),
        }),
        Event::Auth { .. } => Some(Answer::Accept(Reply::new(250, "2.0.0", "OK"))),
        _ => None,
    };
    let mut core = ServerCore::new(submissions());
    core.feed(
        format!("EHLO t.test\r\nAUTH PLAIN {PLAIN_ALICE}\r\nMAIL FROM:<a@b.example>\r\n")
            .as_bytes(),
    );
    let mut fitted = Vec::new();
    while let Some(event) = core.next_event() {
        if let Some(answer) = confused(&event) {
            fitted.push(core.answer(answer));
        }
    }
    assert_eq!(fitted, [false]);
    let output = String::from_utf8(core.take_output()).unwrap();
    assert!(output.ends_with(
        "454 4.7.0 Temporary authentication failure\r\n530 5.7.0 Authentication required\r\n"
    ));
    assert!(core.session().authenticated.is_none());
    assert!(!core.answer(Answer::Accept(Reply::new(250, "2.0.0", "OK"))));

    let mut core = ServerCore::new(mx());
    core.feed(b"EHLO t.test\r\nMAIL FROM:<a@b.example>\r\n");
    let event = core.next_event();
    assert!(matches!(event, Some(Event::Mail { .. })));
    assert!(!core.answer(Answer::AuthSuccess {
        login: "mallory".to_string()
    }));
    let output = String::from_utf8(core.take_output()).unwrap();
    assert!(output.ends_with("451 4.3.0 Internal server error\r\n"));
    assert!(core.session().authenticated.is_none());
}
