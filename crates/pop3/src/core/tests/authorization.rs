//! The AUTHORIZATION state: greeting, CAPA, STLS, USER/PASS, AUTH PLAIN, failures.

use sealpost_sasl::Mechanism;

use super::harness::{LOGIN, PLAIN_ALICE, Step, client, pop3, pop3s, service, transcript};
use crate::core::Event;

#[test]
fn greeting_names_the_host_and_offers_no_apop_timestamp() {
    let t = transcript(&pop3s(), &[], &service);
    assert_eq!(t.text(), "+OK pop.example POP3 server ready\r\n");
    assert!(!t.text().contains('<'), "no APOP timestamp");
}

#[test]
fn capa_before_and_after_stls() {
    // SECURITY-TESTS PO-02: STLS offered, USER and SASL not, before TLS.
    let t = transcript(
        &pop3(),
        &[
            client("CAPA\r\nSTLS\r\n"),
            Step::TlsStarted,
            client("CAPA\r\n"),
        ],
        &service,
    );
    let text = t.text();
    let (before, after) = text.split_once("+OK Begin TLS negotiation\r\n").unwrap();
    assert_eq!(
        before,
        "+OK pop.example POP3 server ready\r\n+OK Capability list follows\r\nTOP\r\nUIDL\r\n\
         RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION sealpost\r\n.\r\n"
    );
    assert_eq!(
        after,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nUSER\r\nSASL PLAIN\r\nIMPLEMENTATION sealpost\r\n.\r\n"
    );
    assert_eq!(t.events, [Event::StartTls]);
}

#[test]
fn no_credentials_before_tls() {
    // SECURITY-TESTS ST-06 / PO-02: every form of login refused, nothing reaches the
    // service; the third refusal ends the session (pre-login error limit).
    let t = transcript(
        &pop3(),
        &[client(format!(
            "USER alice\r\nPASS correct-horse\r\nAUTH PLAIN {PLAIN_ALICE}\r\nCAPA\r\n"
        ))],
        &service,
    );
    assert!(t.events.is_empty(), "{:?}", t.events);
    assert_eq!(
        t.statuses(),
        ["+OK pop.example POP3 server ready"]
            .into_iter()
            .chain(["-ERR Authentication requires TLS, use STLS first"; 3])
            .collect::<Vec<_>>()
    );
    assert!(t.closed);
}

#[test]
fn stls_drops_pipelined_commands() {
    // SECURITY-TESTS PO-01 / ST-05: the CAPA sent with STLS is never answered.
    let t = transcript(
        &pop3(),
        &[
            client("STLS\r\nCAPA\r\n"),
            client("USER x\r\n"),
            Step::TlsStarted,
            client("NOOP\r\nUSER alice\r\n"),
        ],
        &service,
    );
    assert_eq!(
        t.statuses(),
        [
            "+OK pop.example POP3 server ready",
            "+OK Begin TLS negotiation",
            "+OK",
            "+OK Send PASS"
        ]
    );
    assert!(!t.text().contains("TOP"));
}

#[test]
fn stls_refused_when_tls_is_active_or_twice() {
    let t = transcript(&pop3s(), &[client("STLS\r\n")], &service);
    assert_eq!(t.statuses()[1], "-ERR STLS is not available");
    let t = transcript(
        &pop3(),
        &[client("STLS\r\n"), Step::TlsStarted, client("STLS\r\n")],
        &service,
    );
    assert_eq!(t.statuses()[2], "-ERR STLS is not available");
    assert_eq!(t.events, [Event::StartTls]);
}

#[test]
fn user_pass_login() {
    let t = transcript(&pop3s(), &[client(LOGIN)], &service);
    assert_eq!(
        t.statuses(),
        [
            "+OK pop.example POP3 server ready",
            "+OK Send PASS",
            "+OK Logged in, maildrop has 3 messages (97 octets)"
        ]
    );
    assert!(t.logged_in);
    assert!(matches!(&t.events[..], [Event::Login { user, .. }] if user == "alice"));
}

#[test]
fn wrong_passwords_and_unknown_users_look_alike_and_end_the_session() {
    // SECURITY-TESTS AU-09: USER always +OK; one failure text; closed after 3.
    let t = transcript(
        &pop3s(),
        &[client(
            "USER nosuchuser\r\nPASS x\r\nUSER alice\r\nPASS wrong\r\nUSER alice\r\nPASS a b\r\n\
             USER alice\r\nPASS correct-horse\r\n",
        )],
        &service,
    );
    let statuses = t.statuses();
    assert_eq!(statuses.iter().filter(|s| *s == "+OK Send PASS").count(), 3);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| *s == "-ERR [AUTH] Authentication failed")
            .count(),
        3
    );
    assert!(t.closed && !t.logged_in);
    assert_eq!(t.events.len(), 3);
}

#[test]
fn pass_needs_user_and_user_is_forgotten_after_pass() {
    let t = transcript(
        &pop3s(),
        &[client(
            "PASS x\r\nUSER alice\r\nPASS wrong\r\nPASS correct-horse\r\n",
        )],
        &service,
    );
    assert_eq!(
        &t.statuses()[1..],
        [
            "-ERR USER first",
            "+OK Send PASS",
            "-ERR [AUTH] Authentication failed",
            "-ERR USER first"
        ]
    );
}

#[test]
fn in_use_and_temporary_failures_keep_the_session() {
    let t = transcript(
        &pop3s(),
        &[client(
            "USER busy\r\nPASS correct-horse\r\nUSER flaky\r\nPASS x\r\nUSER busy\r\n\
             PASS correct-horse\r\nUSER busy\r\nPASS correct-horse\r\n",
        )],
        &service,
    );
    let statuses = t.statuses();
    assert_eq!(
        statuses[2],
        "-ERR [IN-USE] Maildrop is in use by another session"
    );
    assert_eq!(
        statuses[4],
        "-ERR [SYS/TEMP] Temporary authentication failure"
    );
    assert!(!t.closed, "IN-USE is not an authentication failure");
}

#[test]
fn auth_plain_with_and_without_initial_response() {
    let t = transcript(
        &pop3s(),
        &[client(format!("AUTH PLAIN {PLAIN_ALICE}\r\n"))],
        &service,
    );
    assert!(t.logged_in);
    assert_eq!(
        t.events,
        [Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(PLAIN_ALICE.as_bytes().to_vec())
        }]
    );
    let t = transcript(
        &pop3s(),
        &[client(format!("auth plain\r\n{PLAIN_ALICE}\r\nSTAT\r\n"))],
        &service,
    );
    assert_eq!(
        t.lines()[1..],
        [
            "+ ",
            "+OK Logged in, maildrop has 3 messages (97 octets)",
            "+OK 3 97"
        ]
    );
    let t = transcript(&pop3s(), &[client("AUTH PLAIN =\r\n")], &service);
    assert_eq!(
        t.events,
        [Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(Vec::new())
        }]
    );
}

#[test]
fn auth_list_cancel_malformed_and_unknown_mechanisms() {
    // SECURITY-TESTS AU-06: each failure counts; the third ends the session.
    let t = transcript(
        &pop3s(),
        &[client(
            "AUTH\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n####\r\nAUTH XYZ\r\nNOOP\r\n",
        )],
        &service,
    );
    assert_eq!(
        t.lines()[1..],
        [
            "+OK Mechanisms follow",
            "PLAIN",
            ".",
            "+ ",
            "-ERR Authentication cancelled",
            "+ ",
            "-ERR Malformed authentication response",
            "-ERR Unsupported authentication mechanism",
        ]
    );
    assert!(t.closed);
}

#[test]
fn auth_initial_response_over_255_octets_is_refused() {
    // RFC 5034 §4, SECURITY-TESTS AU-09.
    let long = format!("AUTH PLAIN {}\r\n", "A".repeat(250));
    let t = transcript(&pop3s(), &[client(&long)], &service);
    assert_eq!(
        t.statuses()[1],
        "-ERR Line too long for an initial response"
    );
    assert!(t.events.is_empty());
    // A long response after an empty challenge is fine.
    let t = transcript(
        &pop3s(),
        &[client(format!("AUTH PLAIN\r\n{}\r\n", "A".repeat(4000)))],
        &service,
    );
    assert_eq!(t.statuses()[1], "-ERR [AUTH] Authentication failed");
}

#[test]
fn auth_response_line_limit() {
    let t = transcript(
        &pop3s(),
        &[client(format!(
            "AUTH PLAIN\r\n{}\r\nCAPA\r\n",
            "A".repeat(13_000)
        ))],
        &service,
    );
    assert_eq!(t.statuses()[1], "-ERR Authentication line too long");
    assert!(t.text().contains("IMPLEMENTATION sealpost"));
    assert_eq!(t.events.len(), 1, "the over-long line reaches no one");
}

#[test]
fn apop_is_not_offered() {
    let t = transcript(
        &pop3s(),
        &[client("APOP alice 0123456789abcdef0123456789abcdef\r\n")],
        &service,
    );
    assert_eq!(t.statuses()[1], "-ERR APOP is not supported");
    assert!(t.events.is_empty());
}

#[test]
fn quit_before_login_and_eof() {
    let t = transcript(&pop3s(), &[client("QUIT\r\nNOOP\r\n")], &service);
    assert_eq!(t.statuses()[1], "+OK pop.example POP3 server signing off");
    assert_eq!(t.statuses().len(), 2);
    assert!(t.closed);
    let t = transcript(&pop3s(), &[client("USER al"), Step::Eof], &service);
    assert!(t.closed && t.events.is_empty());
}

#[test]
fn noop_before_login_is_answered_a_few_times() {
    let t = transcript(&pop3s(), &[client("NOOP\r\n".repeat(14))], &service);
    assert_eq!(t.statuses().iter().filter(|s| *s == "+OK").count(), 10);
    assert_eq!(
        t.statuses()
            .iter()
            .filter(|s| *s == "-ERR Not logged in")
            .count(),
        3
    );
    assert!(t.closed);
}
