//! The TRANSACTION and UPDATE states: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT.

use super::harness::{LOGIN, Response, Step, client, messages, pop3s, service, transcript};
use crate::core::{Answer, Event, wire_size};

fn session(commands: &str) -> super::harness::Transcript {
    transcript(&pop3s(), &[client(format!("{LOGIN}{commands}"))], &service)
}

/// The output after the greeting and the login's two responses.
fn after_login(commands: &str) -> String {
    let text = session(commands).text();
    let marker = "octets)\r\n";
    let at = text.find(marker).map_or(0, |i| i + marker.len());
    text[at..].to_string()
}

#[test]
fn stat_list_and_uidl() {
    let sizes: Vec<u64> = messages().iter().map(|m| wire_size(m)).collect();
    let total: u64 = sizes.iter().sum();
    assert_eq!(
        after_login("STAT\r\nLIST\r\nLIST 2\r\nUIDL\r\nUIDL 3\r\n"),
        format!(
            "+OK 3 {total}\r\n+OK 3 messages ({total} octets)\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n\
             +OK 2 {}\r\n+OK\r\n1 9.1\r\n2 9.2\r\n3 9.3\r\n.\r\n+OK 3 9.3\r\n",
            sizes[0], sizes[1], sizes[2], sizes[1]
        )
    );
}

#[test]
fn retr_sends_crlf_dot_stuffed_content_of_the_announced_size() {
    // SECURITY-TESTS PO-07.
    let out = after_login("RETR 2\r\nRETR 3\r\nNOOP\r\n");
    assert_eq!(
        out,
        "+OK 48 octets\r\nSubject: two\r\nX: y\r\n\r\n..\r\n...x\r\nline 3\r\nline 4\r\n.\r\n\
         +OK 25 octets\r\nSubject: three\r\nbare LF\r\n.\r\n+OK\r\n"
    );
    assert_eq!(wire_size(&messages()[1]), 48);
}

#[test]
fn top_sends_header_and_n_lines() {
    let out = after_login("TOP 2 0\r\nTOP 2 1\r\nTOP 1 99999999999999999999\r\n");
    assert_eq!(
        out,
        "+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\n.\r\n\
         +OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\n..\r\n.\r\n\
         +OK Top of message follows\r\nSubject: one\r\n\r\nFirst.\r\n.\r\n"
    );
}

#[test]
fn numeric_arguments_never_name_a_wrong_message() {
    // SECURITY-TESTS PO-04.
    let out = after_login(
        "RETR 0\r\nRETR 4\r\nRETR 4294967297\r\nRETR -1\r\nRETR 1x\r\n\
         LIST 18446744073709551616\r\nTOP 1 -5\r\nDELE 1 2\r\nUIDL 00000000000000000001\r\n\
         STAT\r\n",
    );
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(
        lines[..10],
        [
            "-ERR Invalid arguments",
            "-ERR No such message",
            "-ERR No such message",
            "-ERR Invalid arguments",
            "-ERR Invalid arguments",
            "-ERR No such message",
            "-ERR Invalid arguments",
            "-ERR Invalid arguments",
            "-ERR Invalid arguments",
            "+OK 3 97",
        ]
    );
}

#[test]
fn dele_marks_rset_unmarks_and_deleted_messages_are_hidden() {
    let out = after_login(
        "DELE 2\r\nDELE 2\r\nRETR 2\r\nLIST 2\r\nUIDL 2\r\nTOP 2 1\r\nSTAT\r\nLIST\r\nRSET\r\nSTAT\r\n",
    );
    assert_eq!(
        out,
        "+OK Message deleted\r\n-ERR Message already deleted\r\n-ERR Message already deleted\r\n\
         -ERR Message already deleted\r\n-ERR Message already deleted\r\n\
         -ERR Message already deleted\r\n+OK 2 49\r\n+OK 2 messages (49 octets)\r\n1 24\r\n\
         3 25\r\n.\r\n+OK Maildrop has 3 messages (97 octets)\r\n+OK 3 97\r\n"
    );
}

#[test]
fn quit_enters_update_with_the_marked_messages() {
    let t = session("DELE 1\r\nDELE 3\r\nQUIT\r\nNOOP\r\n");
    assert_eq!(
        t.events.last(),
        Some(&Event::Update {
            deleted: vec![0, 2]
        })
    );
    assert_eq!(
        t.statuses().last().map(String::as_str),
        Some("+OK pop.example POP3 server signing off")
    );
    assert!(t.closed);
    // Nothing marked: no update to make.
    let t = session("DELE 1\r\nRSET\r\nQUIT\r\n");
    assert!(!t.events.iter().any(|e| matches!(e, Event::Update { .. })));
    assert!(t.closed);
}

#[test]
fn failed_update_is_reported() {
    let responder = |event: &Event| match event {
        Event::Update { .. } => Response::Answer(Some(Answer::TempFailure)),
        other => service(other),
    };
    let t = transcript(
        &pop3s(),
        &[client(format!("{LOGIN}DELE 1\r\nQUIT\r\n"))],
        &responder,
    );
    assert_eq!(
        t.statuses().last().map(String::as_str),
        Some("-ERR [SYS/TEMP] Deleted messages could not all be removed")
    );
    assert!(t.closed);
}

#[test]
fn eof_without_quit_deletes_nothing() {
    // SECURITY-TESTS PO-05, RFC 1939 §6.
    let t = transcript(
        &pop3s(),
        &[client(format!("{LOGIN}DELE 1\r\nDELE 2\r\n")), Step::Eof],
        &service,
    );
    assert!(!t.events.iter().any(|e| matches!(e, Event::Update { .. })));
    assert!(t.closed);
}

#[test]
fn message_gone_broken_and_temporary() {
    let responder = |event: &Event| match event {
        Event::Retrieve { index: 0, .. } => Response::Answer(Some(Answer::MessageGone)),
        Event::Retrieve { index: 1, .. } => Response::Answer(Some(Answer::TempFailure)),
        Event::Retrieve { .. } => Response::Broken(b"Subject: x\r\n".to_vec()),
        other => service(other),
    };
    let t = transcript(
        &pop3s(),
        &[client(format!(
            "{LOGIN}RETR 1\r\nRETR 2\r\nRETR 3\r\nNOOP\r\n"
        ))],
        &responder,
    );
    let text = t.text();
    assert!(text.ends_with(
        "-ERR Message was removed by another session\r\n\
         -ERR [SYS/TEMP] Message cannot be read now\r\n+OK 25 octets\r\nSubject: x\r\n"
    ));
    // The broken message never gets a terminating line, and the session ends.
    assert!(t.closed);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    // RFC 2449 §6.6 PIPELINING.
    let out = after_login("NOOP\r\nRETR 1\r\nSTAT\r\nUIDL 1\r\n");
    assert_eq!(
        out,
        "+OK\r\n+OK 24 octets\r\nSubject: one\r\n\r\nFirst.\r\n.\r\n+OK 3 97\r\n+OK 1 9.1\r\n"
    );
}

#[test]
fn authorization_commands_after_login() {
    let out = after_login("USER bob\r\nPASS x\r\nSTLS\r\nAUTH PLAIN\r\nCAPA\r\n");
    assert!(out.starts_with(
        "-ERR Already logged in\r\n-ERR Already logged in\r\n-ERR Already logged in\r\n\
         -ERR Already logged in\r\n+OK Capability list follows\r\n"
    ));
    assert!(out.contains("USER\r\nSASL PLAIN\r\n"), "{out}");
}
