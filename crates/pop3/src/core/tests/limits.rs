//! Line limits, error limits, and input that is not POP3 at all.

use super::harness::{LOGIN, Step, client, pop3, pop3s, run, service, transcript};
use crate::core::{MAX_COMMAND_LINE, MAX_DISCARDED_LINE};

#[test]
fn lines_up_to_the_limit_are_read_longer_ones_refused_and_skipped() {
    // RFC 2449 §4 (255 octets) with slack up to MAX_COMMAND_LINE; SECURITY-TESTS PO-03.
    let fits = format!("USER {}\r\n", "a".repeat(MAX_COMMAND_LINE - 7));
    let long = format!("USER {}\r\n", "a".repeat(100_000));
    let t = transcript(
        &pop3s(),
        &[client(format!("{fits}{long}CAPA\r\n"))],
        &service,
    );
    assert_eq!(
        t.statuses(),
        [
            "+OK pop.example POP3 server ready",
            "+OK Send PASS",
            "-ERR Line too long",
            "+OK Capability list follows"
        ]
    );
}

#[test]
fn trailing_spaces_are_a_syntax_error() {
    let t = transcript(
        &pop3s(),
        &[client(format!("NOOP{}\r\n", " ".repeat(300)))],
        &service,
    );
    assert_eq!(t.statuses()[1], "-ERR Invalid arguments");
}

#[test]
fn a_line_that_never_ends_closes_the_session() {
    // SECURITY-TESTS PO-03 / RL-02: bounded buffering, then close.
    let endless = vec![b'A'; MAX_DISCARDED_LINE + 2 * MAX_COMMAND_LINE];
    let mut chunks = Vec::new();
    for size in [1000usize, 4096, 65_536] {
        let t = run(&pop3s(), &[client(&endless)], &service, size);
        assert_eq!(
            t.statuses()[1..],
            ["-ERR Line too long", "-ERR Line never ends, closing"]
        );
        assert!(t.closed);
        chunks.push(t);
    }
    assert!(chunks.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn three_bad_commands_before_login_close_the_session() {
    // SECURITY-TESTS TLS-07 (the header lines after an HTTP request line) and TLS-08.
    let t = transcript(
        &pop3s(),
        &[client("Host: mail.local.test\r\nCookie: x\r\n\r\nCAPA\r\n")],
        &service,
    );
    assert_eq!(
        t.statuses()[1..],
        [
            "-ERR Unknown command",
            "-ERR Unknown command",
            "-ERR Unknown command"
        ]
    );
    assert!(t.closed);
}

#[test]
fn after_login_twenty_bad_commands_close_the_session() {
    let t = transcript(
        &pop3s(),
        &[client(format!("{LOGIN}{}NOOP\r\n", "XYZ\r\n".repeat(20)))],
        &service,
    );
    assert_eq!(
        t.statuses()
            .iter()
            .filter(|s| *s == "-ERR Unknown command")
            .count(),
        20
    );
    assert!(t.closed);
    assert!(!t.statuses().contains(&"+OK".to_string()));
}

#[test]
fn http_requests_and_binary_end_the_session_at_once() {
    // SECURITY-TESTS TLS-07 and TLS-10 (a TLS ClientHello on the plaintext port).
    for input in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nHELLO",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b" NOOP\r\n",
    ] {
        let t = transcript(&pop3(), &[client(input)], &service);
        assert_eq!(
            t.statuses()[1..],
            ["-ERR Not a POP3 command, closing"],
            "{input:?}"
        );
        assert!(t.closed);
    }
}

#[test]
fn attacker_bytes_are_never_reflected() {
    // SECURITY-TESTS TLS-08 (ALPACA reflection).
    for input in [
        "<script>alert(1)</script>\r\n",
        "USER <script>alert(1)</script>\r\n",
        "NOOP <script>\r\n",
        "RETR <script>\r\n",
    ] {
        let t = transcript(&pop3s(), &[client(input)], &service);
        assert!(!t.text().contains("<script"), "{input:?} -> {}", t.text());
        let t = transcript(&pop3s(), &[client(format!("{LOGIN}{input}"))], &service);
        assert!(!t.text().contains("<script"), "{input:?} -> {}", t.text());
    }
}

#[test]
fn bare_lf_lines_and_empty_lines() {
    let t = transcript(&pop3s(), &[client("CAPA\nUSER alice\n\r\n")], &service);
    assert_eq!(
        t.statuses()[1..],
        [
            "+OK Capability list follows",
            "+OK Send PASS",
            "-ERR Unknown command"
        ]
    );
}

#[test]
fn nothing_after_close_and_no_input_kept_while_awaiting_tls() {
    let t = transcript(
        &pop3(),
        &[
            client("STLS\r\n"),
            client("X".repeat(5000)),
            Step::TlsStarted,
            client("CAPA\r\n"),
        ],
        &service,
    );
    assert!(t.text().ends_with("IMPLEMENTATION sealpost\r\n.\r\n"));
    let t = transcript(
        &pop3s(),
        &[client("QUIT\r\n"), client("CAPA\r\n")],
        &service,
    );
    assert_eq!(t.statuses().len(), 2);
}
