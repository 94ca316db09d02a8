//! Greeting, EHLO/HELO, STARTTLS, QUIT, EOF and timeouts.

use super::harness::{
    FULL, GREETING, Step, config, ehlo, last_event, ready, send, server, transcript,
    transcript_with,
};
use crate::client::{
    COMMAND_TIMEOUT, ClientConfig, ClientCore, ConfigError, Envelope, Event, Extensions,
    GREETING_TIMEOUT, ProtocolError, Reply, SessionEnd, UsageError,
};

fn ready_event(extensions: Extensions, tls_active: bool) -> Event {
    Event::Ready {
        extensions,
        tls_active,
    }
}

#[test]
fn greeting_then_ehlo_then_quit() {
    let mut steps = ready(&["PIPELINING", "SIZE 5000"]);
    steps.extend([Step::Quit, server("221 2.0.0 Bye\r\n"), Step::Eof]);
    let session = transcript(&steps);
    assert_eq!(session.text(), "EHLO client.example\r\nQUIT\r\n");
    assert_eq!(
        session.events,
        [
            ready_event(
                Extensions {
                    esmtp: true,
                    pipelining: true,
                    size: Some(5000),
                    ..Extensions::default()
                },
                false
            ),
            Event::Closed(SessionEnd::Quit(Some(Reply::new(221, "2.0.0", "Bye")))),
        ]
    );
    assert_eq!(session.calls, [Ok(())]);
    assert!(session.closed);
    // RFC 5321 §4.5.3.2: the greeting, then EHLO; idle waits for nobody.
    assert_eq!(
        session.timeouts,
        [
            Some(COMMAND_TIMEOUT),
            None,
            Some(COMMAND_TIMEOUT),
            None,
            None
        ]
    );
}

/// The driver runs the core in a tokio task.
#[test]
fn the_core_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<ClientCore>();
    send_and_sync::<crate::client::MessageBody>();
}

#[test]
fn the_greeting_has_its_own_timeout() {
    let core = ClientCore::new(config()).unwrap();
    assert_eq!(core.timeout(), Some(GREETING_TIMEOUT));
    assert!(!core.is_idle());
    assert!(!core.has_output());
}

#[test]
fn invalid_hostname_is_refused() {
    for bad in ["", "bad name", "x\r\nRSET", "a..b"] {
        let config = ClientConfig {
            hostname: bad.to_string(),
            tls_active: false,
        };
        assert_eq!(
            ClientCore::new(config).err(),
            Some(ConfigError::InvalidHostname),
            "{bad:?}"
        );
    }
}

#[test]
fn multi_line_greeting_is_accepted() {
    let session = transcript(&[server("220-mx.example ESMTP\r\n220-more\r\n220 ready\r\n")]);
    assert_eq!(session.text(), "EHLO client.example\r\n");
    assert!(session.events.is_empty());
}

/// RFC 5321 §3.1: 554 instead of 220: no service; QUIT and close.
#[test]
fn greeting_554_fails_the_session() {
    let session = transcript(&[server("554 5.7.1 No SMTP service here\r\n")]);
    assert_eq!(session.text(), "QUIT\r\n");
    assert_eq!(
        session.events,
        [Event::Closed(SessionEnd::Refused(Reply::new(
            554,
            "5.7.1",
            "No SMTP service here"
        )))]
    );
    assert!(session.closed);
    assert_eq!(session.timeouts, [None]);
}

#[test]
fn greeting_421_ends_without_quit() {
    let session = transcript(&[server("421-busy\r\n421 come back later\r\n")]);
    assert_eq!(session.text(), "");
    assert_eq!(
        session.events,
        [Event::Closed(SessionEnd::ServiceClosing(Reply::multiline(
            421,
            "",
            ["busy", "come back later"]
        )))]
    );
    assert!(session.closed);
}

#[test]
fn other_greetings_fail_too() {
    for greeting in ["250 hello\r\n", "450 4.3.2 later\r\n", "354 what\r\n"] {
        let session = transcript(&[server(greeting)]);
        assert!(
            matches!(
                last_event(&session),
                Some(Event::Closed(SessionEnd::Refused(_)))
            ),
            "{greeting}"
        );
        assert_eq!(session.text(), "QUIT\r\n");
    }
}

#[test]
fn connection_lost_before_the_greeting() {
    let session = transcript(&[server("220 mx"), Step::Eof]);
    assert_eq!(session.events, [Event::Closed(SessionEnd::ConnectionLost)]);
    assert!(session.closed);
}

/// RFC 5321 §4.1.4 / §3.2: EHLO refused with 5yz: HELO, and no extensions.
#[test]
fn ehlo_refused_falls_back_to_helo() {
    let session = transcript(&[
        server(GREETING),
        server("502 5.5.1 Command not implemented\r\n"),
        server("250 mx.example\r\n"),
    ]);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\nHELO client.example\r\n"
    );
    assert_eq!(session.events, [ready_event(Extensions::default(), false)]);
    // After HELO nothing may be used: STARTTLS is not offered.
    let mut steps = vec![
        server(GREETING),
        server("500 what\r\n"),
        server("250 mx.example\r\n"),
        Step::StartTls,
    ];
    let session = transcript(&steps);
    assert_eq!(session.calls, [Err(UsageError::StartTlsNotOffered)]);
    // And a transaction goes without any parameter, one command at a time.
    steps.pop();
    let envelope = Envelope::new(Some("a@b.example"), ["c@d.example"]);
    steps.extend([send(&envelope, "8-bit: \u{e9}\r\n"), server("250 ok\r\n")]);
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\nHELO client.example\r\nMAIL FROM:<a@b.example>\r\n\
         RCPT TO:<c@d.example>\r\n"
    );
}

#[test]
fn helo_refused_too_fails_the_session() {
    let session = transcript(&[
        server(GREETING),
        server("550 no\r\n"),
        server("550 5.7.1 still no\r\n"),
    ]);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\nHELO client.example\r\nQUIT\r\n"
    );
    assert_eq!(
        session.events,
        [Event::Closed(SessionEnd::Refused(Reply::new(
            550, "5.7.1", "still no"
        )))]
    );
}

/// A 4yz to EHLO is not "EHLO unknown": no HELO, the session fails.
#[test]
fn ehlo_temporary_failure_is_not_a_fallback() {
    let session = transcript(&[server(GREETING), server("451 4.3.0 try later\r\n")]);
    assert_eq!(session.text(), "EHLO client.example\r\nQUIT\r\n");
    assert!(matches!(
        last_event(&session),
        Some(Event::Closed(SessionEnd::Refused(reply))) if reply.code == 451
    ));
}

#[test]
fn multi_line_ehlo_is_parsed() {
    let session = transcript(&[
        server(GREETING),
        server(
            "250-mx.example Hello [192.0.2.1]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n\
             250-AUTH LOGIN PLAIN XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n\
             250-CHUNKING\r\n250-SMTPUTF8\r\n250-DSN\r\n250-REQUIRETLS\r\n250 STARTTLS\r\n",
        ),
    ]);
    assert_eq!(
        session.events,
        [ready_event(
            Extensions {
                esmtp: true,
                size: Some(35_882_577),
                pipelining: true,
                starttls: true,
                eight_bit_mime: true,
                smtputf8: true,
                chunking: true,
                dsn: true,
                require_tls: true,
                enhanced_status_codes: true,
                auth: vec!["LOGIN".into(), "PLAIN".into(), "XOAUTH2".into()],
            },
            false
        )]
    );
}

/// RFC 3207 §4.2: bytes after the 220 (a "response injection", CVE-2021-38371) and bytes
/// fed before the handshake completes are discarded; EHLO is sent again over TLS and the
/// new extensions replace the old ones.
#[test]
fn starttls_discards_plaintext_and_says_ehlo_again() {
    let mut steps = ready(FULL);
    steps.extend([
        Step::StartTls,
        server(
            "220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 PIPELINING\r\n\
             250 2.1.0 fake MAIL reply\r\n",
        ),
        server("250 more plaintext before the handshake\r\n"),
        Step::TlsStarted,
        server(ehlo(&["SIZE 1000", "REQUIRETLS"])),
        Step::StartTls,
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\n"
    );
    let Some(Event::Ready { .. }) = session.events.first() else {
        panic!("{:?}", session.events);
    };
    assert_eq!(session.events.get(1), Some(&Event::UpgradeTls));
    assert_eq!(
        session.events.get(2),
        Some(&ready_event(
            Extensions {
                esmtp: true,
                size: Some(1000),
                require_tls: true,
                ..Extensions::default()
            },
            true
        ))
    );
    assert_eq!(session.events.len(), 3);
    assert_eq!(session.calls, [Ok(()), Err(UsageError::TlsActive)]);
    // Waiting for the handshake is the driver's business.
    assert_eq!(session.timeouts.get(3), Some(&None));
}

/// A partial line before the 220's end must not survive the handshake either.
#[test]
fn starttls_discards_a_partial_reply() {
    let mut steps = ready(FULL);
    steps.extend([
        Step::StartTls,
        server("220 go ahead\r\n250-half of a"),
        Step::TlsStarted,
        server(ehlo(&["PIPELINING"])),
    ]);
    let session = transcript(&steps);
    assert!(matches!(
        session.events.last(),
        Some(Event::Ready { tls_active: true, extensions }) if extensions.pipelining
    ));
}

#[test]
fn starttls_refused_leaves_the_session_in_plaintext() {
    let mut steps = ready(FULL);
    steps.extend([
        Step::StartTls,
        server("454 4.7.0 TLS not available\r\n"),
        Step::Quit,
        server("221 bye\r\n"),
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.events.get(1),
        Some(&Event::StartTlsRefused(Reply::new(
            454,
            "4.7.0",
            "TLS not available"
        )))
    );
    assert_eq!(
        session.text(),
        "EHLO client.example\r\nSTARTTLS\r\nQUIT\r\n"
    );
    assert_eq!(session.calls, [Ok(()), Ok(())]);
}

#[test]
fn implicit_tls_does_not_offer_starttls_again() {
    let config = ClientConfig {
        tls_active: true,
        ..config()
    };
    let mut steps = ready(FULL);
    steps.push(Step::StartTls);
    let session = transcript_with(&config, &steps);
    assert!(matches!(
        session.events.first(),
        Some(Event::Ready {
            tls_active: true,
            ..
        })
    ));
    assert_eq!(session.calls, [Err(UsageError::TlsActive)]);
}

#[test]
fn calls_out_of_state_send_nothing() {
    let envelope = Envelope::new(None, ["c@d.example"]);
    let session = transcript(&[
        Step::Quit,
        Step::StartTls,
        send(&envelope, "x"),
        server(GREETING),
        Step::Quit,
    ]);
    assert_eq!(session.text(), "EHLO client.example\r\n");
    assert_eq!(
        session.calls,
        [
            Err(UsageError::NotReady),
            Err(UsageError::NotReady),
            Err(UsageError::NotReady)
        ]
    );
    assert_eq!(session.sends, [Err(crate::client::SendError::NotReady)]);
}

#[test]
fn quit_without_reply_ends_at_eof() {
    let mut steps = ready(FULL);
    steps.extend([Step::Quit, Step::Eof]);
    let session = transcript(&steps);
    assert_eq!(
        last_event(&session),
        Some(&Event::Closed(SessionEnd::Quit(None)))
    );
    assert!(session.closed);
}

/// RFC 5321 §3.8: a 421 while idle (the server's own timeout) ends the session.
#[test]
fn service_closing_while_idle() {
    let mut steps = ready(FULL);
    steps.push(server("421 4.4.2 Timeout\r\n"));
    let session = transcript(&steps);
    assert_eq!(
        last_event(&session),
        Some(&Event::Closed(SessionEnd::ServiceClosing(Reply::new(
            421, "4.4.2", "Timeout"
        ))))
    );
    assert!(session.closed);
}

#[test]
fn an_unsolicited_reply_is_a_protocol_error() {
    let mut steps = ready(FULL);
    steps.push(server("250 2.0.0 surprise\r\n"));
    let session = transcript(&steps);
    assert_eq!(
        last_event(&session),
        Some(&Event::Closed(SessionEnd::Protocol(
            ProtocolError::UnexpectedReply
        )))
    );
}

#[test]
fn timeout_ends_the_session() {
    let session = transcript(&[server(GREETING), Step::TimedOut, server(ehlo(&[]))]);
    assert_eq!(session.events, [Event::Closed(SessionEnd::TimedOut)]);
    assert!(session.closed);
    assert_eq!(session.timeouts, [Some(COMMAND_TIMEOUT), None, None]);
}

#[test]
fn eof_reads_complete_replies_first() {
    // The 221 and the EOF arrive together: the reply still counts.
    let mut core = ClientCore::new(config()).unwrap();
    core.feed(GREETING.as_bytes());
    core.feed(ehlo(&[]).as_bytes());
    assert!(matches!(core.next_event(), Some(Event::Ready { .. })));
    core.quit().unwrap();
    core.feed(b"221 bye\r\n");
    core.feed_eof();
    assert_eq!(
        core.next_event(),
        Some(Event::Closed(SessionEnd::Quit(Some(Reply::new(
            221, "", "bye"
        )))))
    );
    assert_eq!(core.next_event(), None);
    assert!(core.should_close());
}
