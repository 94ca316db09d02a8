//! Command framing and limits: line length, bad bytes, HTTP on the SMTP port, reflection,
//! error limit, timeouts (SECURITY-TESTS SM-11, SM-12, TLS-07, TLS-08, TLS-10, RL-01,
//! RL-02, RL-11).

use super::harness::{PREFIX, Step, client, mx, service, transcript};
use crate::core::{
    COMMAND_TIMEOUT, CoreConfig, DATA_BLOCK_TIMEOUT, DATA_TERMINATION_TIMEOUT, Event,
    JUNK_COMMAND_LIMIT, MAX_BUFFERED_INPUT, MAX_COMMAND_LINE, ServerCore,
};

#[test]
fn command_line_limit() {
    // 998 octets + CRLF = 1000: accepted (and refused for its content only).
    let ok = format!("NOOP {}\r\n", "x".repeat(MAX_COMMAND_LINE - 7));
    assert_eq!(ok.len(), MAX_COMMAND_LINE);
    let long = format!("NOOP {}\r\n", "x".repeat(MAX_COMMAND_LINE - 6));
    let session = transcript(&mx(), &[client(format!("{ok}{long}NOOP\r\n"))], &service);
    assert_eq!(
        session.lines(),
        [
            "220 mx.example ESMTP sealpost",
            "250 2.0.0 OK",
            "500 5.5.2 Line too long",
            "250 2.0.0 OK",
        ]
    );
}

/// RL-01: a 1 MiB EHLO line is refused once, without being buffered; the session goes on.
#[test]
fn megabyte_line_is_discarded() {
    let mut input = b"EHLO ".to_vec();
    input.extend(std::iter::repeat_n(b'a', 1 << 20));
    input.extend_from_slice(b"\r\nNOOP\r\n");
    let mut core = ServerCore::new(mx());
    for piece in input.chunks(4096) {
        core.feed(piece);
        assert_eq!(core.next_event(), None);
    }
    let output = String::from_utf8(core.take_output()).unwrap();
    assert_eq!(
        output,
        "220 mx.example ESMTP sealpost\r\n500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n"
    );
}

/// RL-02: a line that never ends closes the session after MAX_DISCARDED_LINE octets.
#[test]
fn endless_line_closes() {
    let mut core = ServerCore::new(mx());
    let piece = vec![b'A'; 64 * 1024];
    let mut fed = 0;
    while !core.should_close() && fed < 4 << 20 {
        core.feed(&piece);
        assert_eq!(core.next_event(), None);
        fed += piece.len();
    }
    assert!(core.should_close());
    let output = String::from_utf8(core.take_output()).unwrap();
    assert!(output.ends_with("500 5.5.2 Line too long\r\n421 4.7.0 Line too long, closing\r\n"));
}

/// SM-11: a bare LF ends the session; what follows it is never executed.
#[test]
fn bare_lf_in_a_command_closes() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO t.test\r\nMAIL FROM:<a@ext.test>\nRCPT TO:<alice@local.test>\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("500 5.5.2 Syntax error: bare <LF> received")
    );
    assert!(session.closed);
    assert!(session.events.is_empty());
}

/// SM-11 / SM-12: bare CR, NUL, other controls, invalid UTF-8, 8-bit outside addresses.
#[test]
fn bad_bytes_in_commands() {
    let mut input = b"EHLO t.test\rX-Injected: 1\r\n".to_vec();
    input.extend_from_slice(b"MAIL FROM:<a\x00b@ext.test>\r\n");
    input.extend_from_slice(b"EHLO t.test\r\nMAIL FROM:<a@ext.test>\r\n");
    input.extend_from_slice(b"RCPT TO:<al\xffice@local.test>\r\n");
    input.extend_from_slice(b"EHLO \xc3\x28\r\n");
    input.extend_from_slice(b"EHLO b\xc3\xbccher.example\r\n");
    input.extend_from_slice(b"NOOP\tx\r\n");
    input.extend_from_slice(b"NOOP \x7f\r\n");
    input.extend_from_slice(b"\r\n");
    let session = transcript(&mx(), &[client(input)], &service);
    let bad = "500 5.5.2 Syntax error: invalid characters in command";
    assert_eq!(session.lines()[1..3], [bad, bad]);
    assert_eq!(
        session.lines()[12..],
        [
            bad,
            bad,
            bad,
            bad,
            bad,
            "500 5.5.2 Syntax error: empty command"
        ]
    );
    assert!(!session.closed);
    assert_eq!(session.session.helo.as_deref(), Some("t.test"));
}

/// TLS-07: HTTP request lines get 221 and a hang-up, before any header line is read.
#[test]
fn http_on_the_smtp_port() {
    for request in [
        "GET / HTTP/1.1\r\nHost: mail.local.test\r\nCookie: x\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nHELLO",
        "CONNECT mx.example:25 HTTP/1.1\r\n\r\n",
        "get / HTTP/1.0\r\n\r\n",
        "GET\r\n",
        "USER alice\r\nPASS secret\r\n",
    ] {
        let session = transcript(
            &mx(),
            &[client(format!("EHLO t.test\r\n{request}"))],
            &service,
        );
        assert_eq!(
            session.lines().last().map(String::as_str),
            Some("221 2.7.0 This is an SMTP server, closing"),
            "{request}"
        );
        assert_eq!(session.codes().len(), 3, "{request}");
        assert!(session.closed);
    }
}

/// TLS-10: a TLS ClientHello (or other binary) on the plaintext port: 221 at once.
#[test]
fn binary_on_the_smtp_port() {
    for input in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"\x80\x2e\x01",
        b"<script>",
        b" NOOP\r\n",
    ] {
        let session = transcript(&mx(), &[client(input)], &service);
        assert_eq!(session.codes(), [220, 221], "{input:?}");
        assert!(session.closed);
    }
}

/// TLS-08: attacker bytes are never reflected.
#[test]
fn no_reflection() {
    let probes = [
        "<script>alert(1)</script>\r\n",
        "X<script>alert(1)</script>\r\n",
        "NOOP <script>alert(1)</script>\r\n",
        "EHLO <script>alert(1)</script>\r\n",
        "MAIL FROM:<script>alert(1)</script>\r\n",
        "HELP <script>alert(1)</script>\r\n",
        "VRFY <script>alert(1)</script>\r\n",
        "AUTH <script>alert(1)</script>\r\n",
        "BDAT <script>alert(1)</script>\r\n",
    ];
    for probe in probes {
        let session = transcript(
            &mx(),
            &[client(format!(
                "EHLO t.test\r\n{probe}MAIL FROM:<a@b.example>\r\nRCPT TO:<script@x.example> SIZE=<script>\r\n"
            ))],
            &service,
        );
        assert!(
            !session.text().contains("<script"),
            "{probe}: {}",
            session.text()
        );
        assert!(!session.text().contains("alert"), "{probe}");
    }
}

/// RL-11: at max_errors the session ends with 421.
#[test]
fn error_limit() {
    let config = CoreConfig {
        max_errors: 3,
        ..mx()
    };
    let session = transcript(
        &config,
        &[client("FOO\r\nBAR\r\nNOOP\r\nBAZ\r\nQUX\r\nNOOP\r\n")],
        &service,
    );
    assert_eq!(
        session.lines(),
        [
            "220 mx.example ESMTP sealpost",
            "500 5.5.1 Command unrecognized",
            "500 5.5.1 Command unrecognized",
            "250 2.0.0 OK",
            "500 5.5.1 Command unrecognized",
            "421 4.7.0 Too many errors",
        ]
    );
    assert!(session.closed);
}

/// Refusals by the service count too (RS-19: unknown recipients feed the error limit).
#[test]
fn refused_recipients_count_as_errors() {
    let config = CoreConfig {
        max_errors: 2,
        ..mx()
    };
    let session = transcript(
        &config,
        &[client(
            "EHLO t.test\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<unknown1@b.example>\r\nRCPT TO:<unknown2@b.example>\r\nRCPT TO:<c@b.example>\r\n",
        )],
        &service,
    );
    assert_eq!(session.codes()[2..], [250, 550, 550, 421]);
    assert_eq!(session.events.len(), 3);
}

/// RL-12: junk commands cannot hold a session forever: past the limit each one is an error.
#[test]
fn junk_command_limit() {
    let config = CoreConfig {
        max_errors: 10,
        ..mx()
    };
    let input = "NOOP\r\nRSET\r\nVRFY alice\r\n".repeat(60);
    let session = transcript(&config, &[client(input)], &service);
    let codes = session.codes();
    // The greeting, 100 free junk commands, 10 counted ones, then 421.
    assert_eq!(codes.len(), 1 + JUNK_COMMAND_LIMIT + 10 + 1);
    assert_eq!(codes.last(), Some(&421));
    assert!(!codes[..codes.len() - 1].contains(&421));
    assert!(session.closed);
}

/// An accepted message starts the error and junk counts again.
#[test]
fn an_accepted_message_forgives_earlier_errors() {
    let config = CoreConfig {
        max_errors: 3,
        ..mx()
    };
    let message = "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nx\r\n.\r\n";
    let input = format!(
        "EHLO t.test\r\nFOO\r\nFOO\r\n{message}FOO\r\nFOO\r\n{message}FOO\r\nFOO\r\nFOO\r\n"
    );
    let session = transcript(&config, &[client(input)], &service);
    assert_eq!(
        session.codes().iter().filter(|&&code| code == 500).count(),
        7
    );
    assert_eq!(session.codes().last(), Some(&421));
}

#[test]
fn quit_closes_and_later_input_is_ignored() {
    let session = transcript(
        &mx(),
        &[client("QUIT\r\nNOOP\r\n"), client("NOOP\r\n")],
        &service,
    );
    assert_eq!(session.codes(), [220, 221]);
    assert!(session.closed);
}

#[test]
fn eof_closes_without_a_reply() {
    let session = transcript(&mx(), &[client("NOOP\r\nNOO"), Step::Eof], &service);
    assert_eq!(session.codes(), [220, 250]);
    assert!(session.closed);
}

#[test]
fn timeouts_follow_the_state() {
    let mut core = ServerCore::new(mx());
    assert_eq!(core.read_timeout(), COMMAND_TIMEOUT);
    assert_eq!(COMMAND_TIMEOUT.as_secs(), 300);
    core.feed(PREFIX.as_bytes());
    while let Some(event) = core.next_event() {
        if let Some(answer) = service(&event) {
            core.answer(answer);
        }
    }
    assert_eq!(core.read_timeout(), DATA_BLOCK_TIMEOUT);
    core.feed(b"x\r\n.\r\n");
    assert!(matches!(core.next_event(), Some(Event::Message { .. })));
    assert_eq!(core.read_timeout(), DATA_TERMINATION_TIMEOUT);
    assert_eq!(DATA_TERMINATION_TIMEOUT.as_secs(), 600);
}

/// A driver that feeds without draining events gets 421 instead of unbounded buffering.
#[test]
fn buffered_input_is_bounded() {
    let mut core = ServerCore::new(mx());
    core.feed(b"EHLO t.test\r\nMAIL FROM:<a@b.example>\r\n");
    assert!(matches!(core.next_event(), Some(Event::Mail { .. })));
    let piece = vec![b'x'; 256 * 1024];
    for _ in 0..=MAX_BUFFERED_INPUT / piece.len() + 1 {
        core.feed(&piece);
    }
    assert!(core.should_close());
    let output = String::from_utf8(core.take_output()).unwrap();
    assert!(output.ends_with("421 4.7.0 Too much pipelined input\r\n"));
}
