//! Transactions, simple commands, sequencing, parameters and paths.

use super::harness::{Step, client, mx, service, submission, submissions, transcript};
use crate::core::{
    Answer, AuthParams, BodyType, CoreConfig, DsnNotify, DsnRet, Event, MailParams, RcptParams,
    Reply,
};

fn mail(from: Option<&str>) -> Event {
    Event::Mail {
        from: from.map(str::to_string),
        params: MailParams::default(),
    }
}

fn rcpt(to: &str) -> Event {
    Event::Rcpt {
        to: to.to_string(),
        params: RcptParams::default(),
    }
}

/// RFC 5321 Appendix D.1, with sealpost's replies.
#[test]
fn appendix_d1_transaction() {
    let session = transcript(
        &mx(),
        &[
            client("EHLO bar.com\r\n"),
            client("MAIL FROM:<Smith@bar.com>\r\n"),
            client("RCPT TO:<Jones@foo.com>\r\n"),
            client("RCPT TO:<unknown@foo.com>\r\n"),
            client("RCPT TO:<Brown@foo.com>\r\n"),
            client("DATA\r\n"),
            client("Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n"),
            client("QUIT\r\n"),
        ],
        &service,
    );
    assert_eq!(
        session.text(),
        "220 mx.example ESMTP sealpost\r\n\
         250-mx.example\r\n\
         250-PIPELINING\r\n\
         250-SIZE 10000\r\n\
         250-8BITMIME\r\n\
         250-SMTPUTF8\r\n\
         250-ENHANCEDSTATUSCODES\r\n\
         250-CHUNKING\r\n\
         250 STARTTLS\r\n\
         250 2.1.0 Sender OK\r\n\
         250 2.1.5 Recipient OK\r\n\
         550 5.1.1 No such user\r\n\
         250 2.1.5 Recipient OK\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n\
         250 2.0.0 Queued\r\n\
         221 2.0.0 Bye\r\n"
    );
    assert_eq!(
        session.events,
        [
            mail(Some("Smith@bar.com")),
            rcpt("Jones@foo.com"),
            rcpt("unknown@foo.com"),
            rcpt("Brown@foo.com"),
            Event::Message {
                body: b"Blah blah blah...\r\n..etc. etc. etc.\r\n".to_vec()
            },
        ]
    );
    assert!(session.closed);
    assert_eq!(session.session.helo.as_deref(), Some("bar.com"));
    assert!(session.session.esmtp);
}

#[test]
fn the_same_transaction_pipelined_in_one_write() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO bar.com\r\nMAIL FROM:<a@bar.com>\r\nRCPT TO:<b@foo.com>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
        )],
        &service,
    );
    assert_eq!(session.codes(), [220, 250, 250, 250, 354, 250, 221]);
    assert_eq!(session.events.len(), 3);
}

#[test]
fn simple_commands() {
    let session = transcript(
        &mx(),
        &[client(
            "NOOP\r\nnoop whatever\r\nRSET\r\nVRFY alice\r\nVRFY nosuchuser\r\nEXPN staff\r\nHELP\r\nHELP MAIL\r\nXYZZY\r\nHELO client.example\r\nQUIT\r\nNOOP\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines(),
        [
            "220 mx.example ESMTP sealpost",
            "250 2.0.0 OK",
            "250 2.0.0 OK",
            "250 2.0.0 Reset state",
            "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
            "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
            "502 5.5.1 Command not implemented",
            "214 2.0.0 See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)",
            "214 2.0.0 See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)",
            "500 5.5.1 Command unrecognized",
            "250 mx.example",
            "221 2.0.0 Bye",
        ]
    );
    assert!(session.closed);
    assert!(!session.session.esmtp);
}

#[test]
fn ehlo_and_helo_arguments() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO\r\nEHLO a b\r\nEHLO -bad-\r\nHELO [192.0.2.1]\r\nEHLO [IPv6:2001:db8::1]\r\nEHLO my_pc\r\n",
        )],
        &service,
    );
    assert_eq!(session.codes(), [220, 501, 501, 501, 250, 250, 250]);
    assert_eq!(session.session.helo.as_deref(), Some("my_pc"));
}

#[test]
fn ehlo_capabilities_follow_the_config() {
    let dsn = CoreConfig {
        offer_dsn: true,
        auth_requires_tls: false,
        ..submission()
    };
    let session = transcript(&dsn, &[client("EHLO c.example\r\n")], &service);
    let lines = session.lines();
    assert!(lines.contains(&"250-STARTTLS".to_string()));
    assert!(lines.contains(&"250-AUTH PLAIN LOGIN".to_string()));
    assert_eq!(lines.last().map(String::as_str), Some("250 DSN"));
    // RFC 8689 §4: no REQUIRETLS without TLS.
    assert!(!lines.iter().any(|line| line.contains("REQUIRETLS")));

    let session = transcript(&submissions(), &[client("EHLO c.example\r\n")], &service);
    let lines = session.lines();
    assert!(
        !lines
            .iter()
            .any(|line| line.contains("STARTTLS") || line.contains("DSN"))
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("250 AUTH PLAIN LOGIN")
    );
    assert!(lines.contains(&"250-REQUIRETLS".to_string()), "{lines:?}");
    assert!(session.session.tls);
}

#[test]
fn sequencing_errors() {
    let session = transcript(
        &mx(),
        &[client(
            "MAIL FROM:<a@b.example>\r\nRCPT TO:<a@b.example>\r\nDATA\r\nEHLO c.example\r\nRCPT TO:<a@b.example>\r\nDATA\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nMAIL FROM:<x@b.example>\r\nRCPT TO:<unknown@b.example>\r\nDATA\r\nRCPT TO:<c@b.example>\r\nDATA\r\n.\r\nRCPT TO:<c@b.example>\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines()[..5],
        [
            "220 mx.example ESMTP sealpost",
            "503 5.5.1 EHLO/HELO first",
            "503 5.5.1 EHLO/HELO first",
            "503 5.5.1 EHLO/HELO first",
            "250-mx.example",
        ]
    );
    let tail: Vec<String> = session.lines().split_off(12);
    assert_eq!(
        tail,
        [
            "503 5.5.1 MAIL first",
            "503 5.5.1 MAIL first",
            "250 2.1.0 Sender OK",
            "503 5.5.1 RCPT first",
            "503 5.5.1 Nested MAIL command",
            "550 5.1.1 No such user",
            "554 5.5.1 No valid recipients",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 2.0.0 Queued",
            "503 5.5.1 MAIL first",
        ]
    );
    assert_eq!(session.events.len(), 4);
}

#[test]
fn ehlo_and_rset_reset_the_transaction() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nEHLO c.example\r\nRCPT TO:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\nRSET\r\nRCPT TO:<a@b.example>\r\n",
        )],
        &service,
    );
    let codes = session.codes();
    assert_eq!(codes[codes.len() - 5..], [250, 503, 250, 250, 503]);
}

#[test]
fn a_refused_mail_starts_no_transaction() {
    let refuse = |event: &Event| match event {
        Event::Mail { .. } => Some(Answer::Reject(Reply::new(550, "5.7.1", "Go away"))),
        other => service(other),
    };
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<a@b.example>\r\n",
        )],
        &refuse,
    );
    assert_eq!(session.codes()[2..], [550, 503]);
}

#[test]
fn submission_needs_auth_before_mail() {
    let session = transcript(
        &submissions(),
        &[client("EHLO c.example\r\nMAIL FROM:<alice@local.test>\r\n")],
        &service,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("530 5.7.0 Authentication required")
    );
    assert!(session.events.is_empty());
}

#[test]
fn size_parameter() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example> SIZE=10001\r\nMAIL FROM:<a@b.example> SIZE=18446744073709551616\r\nMAIL FROM:<a@b.example> SIZE=-1\r\nMAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\nMAIL FROM:<a@b.example> SIZE=10000 BODY=8BITMIME\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines()[9..],
        [
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "501 5.5.4 Invalid parameter value",
            "555 5.5.4 Unsupported or duplicate parameter",
            "250 2.1.0 Sender OK",
        ]
    );
    assert_eq!(
        session.events,
        [Event::Mail {
            from: Some("a@b.example".to_string()),
            params: MailParams {
                size: Some(10_000),
                body: Some(BodyType::EightBitMime),
                ..MailParams::default()
            }
        }]
    );
}

#[test]
fn unknown_parameters_and_helo_sessions() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example> FOO=1\r\nMAIL FROM:<a@b.example> RET=FULL\r\nMAIL FROM:<a@b.example> AUTH=<>\r\nMAIL FROM:<a@b.example>x\r\nHELO c.example\r\nMAIL FROM:<a@b.example> BODY=7BIT\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example> NOTIFY=NEVER\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.codes()[2..],
        [555, 555, 555, 501, 250, 555, 250, 555]
    );
}

#[test]
fn dsn_and_auth_parameters_when_offered() {
    let config = CoreConfig {
        offer_dsn: true,
        ..submissions()
    };
    let accept_all = |event: &Event| match event {
        Event::Mail { .. } | Event::Rcpt { .. } => {
            Some(Answer::Accept(Reply::new(250, "2.0.0", "OK")))
        }
        other => service(other),
    };
    let session = transcript(
        &config,
        &[client(format!(
            "EHLO c.example\r\nAUTH PLAIN {}\r\nMAIL FROM:<a@b.example> RET=HDRS ENVID=QQ314159 AUTH=alice+2Bx@local.test\r\nRCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2Bd@d.example\r\n",
            super::harness::PLAIN_ALICE
        ))],
        &accept_all,
    );
    assert_eq!(session.codes()[2..], [235, 250, 250]);
    assert_eq!(
        session.events[1..],
        [
            Event::Mail {
                from: Some("a@b.example".to_string()),
                params: MailParams {
                    ret: Some(DsnRet::Headers),
                    envid: Some("QQ314159".to_string()),
                    auth: Some(AuthParams {
                        mailbox: Some("alice+x@local.test".to_string())
                    }),
                    ..MailParams::default()
                }
            },
            Event::Rcpt {
                to: "c@d.example".to_string(),
                params: RcptParams {
                    notify: Some(DsnNotify {
                        success: true,
                        failure: true,
                        ..DsnNotify::default()
                    }),
                    orcpt: Some(("rfc822".to_string(), "c+d@d.example".to_string())),
                }
            },
        ]
    );
}

#[test]
fn utf8_addresses_only_with_smtputf8() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<jöran@bücher.example>\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<δοκιμή@παράδειγμα.example>\r\nRSET\r\nMAIL FROM:<jöran@bücher.example> SMTPUTF8\r\nRCPT TO:<δοκιμή@παράδειγμα.example>\r\n",
        )],
        &service,
    );
    assert_eq!(session.codes()[2..], [553, 250, 553, 250, 250, 250]);
    assert!(
        session
            .text()
            .contains("553 5.6.7 Non-ASCII address requires SMTPUTF8")
    );
    assert_eq!(
        session.events[1..],
        [
            Event::Mail {
                from: Some("jöran@bücher.example".to_string()),
                params: MailParams {
                    smtputf8: true,
                    ..MailParams::default()
                }
            },
            rcpt("δοκιμή@παράδειγμα.example"),
        ]
    );
}

#[test]
fn path_syntax() {
    let local65 = "l".repeat(65);
    let long_path = format!("<{}@{1}.{1}.{1}.example>", "l".repeat(64), "d".repeat(63));
    let input = format!(
        "EHLO c.example\r\n\
         MAIL FROM:<>\r\nRCPT TO:<\"john doe\"@x.example>\r\nRCPT TO:<u@[192.0.2.1]>\r\n\
         RCPT TO:<@a.example,@b.example:u@d.example>\r\nRCPT TO:<Postmaster>\r\nRSET\r\n\
         MAIL FROM: <a@b.example>\r\nRCPT TO:<>\r\nRCPT TO:c@d.example\r\nRCPT TO:<a..b@c>\r\n\
         RCPT TO:<{local65}@x.example>\r\nRCPT TO:{long_path}\r\nRSET\r\n\
         MAIL FROM:<a@b>c>\r\nMAIL FROM:a@b.example\r\nMAIL FROM:<a b@c.example>\r\n"
    );
    let session = transcript(&mx(), &[client(input)], &service);
    assert_eq!(
        session.lines()[9..],
        [
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
            "452 4.5.3 Too many recipients",
            "250 2.0.0 Reset state",
            "250 2.1.0 Sender OK",
            "501 5.1.3 Bad recipient address syntax",
            "501 5.5.4 Syntax: RCPT TO:<address>",
            "501 5.1.3 Bad recipient address syntax",
            "501 5.1.3 Path too long",
            "501 5.1.3 Path too long",
            "250 2.0.0 Reset state",
            "501 5.5.4 Syntax error after the address",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
            "501 5.1.7 Bad sender address syntax",
        ]
    );
    assert_eq!(
        session.events,
        [
            mail(None),
            rcpt("\"john doe\"@x.example"),
            rcpt("u@[192.0.2.1]"),
            rcpt("u@d.example"),
            mail(Some("a@b.example")),
        ]
    );
}

#[test]
fn postmaster_without_domain() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<postMaster>\r\n",
        )],
        &service,
    );
    assert_eq!(session.events[1], rcpt("postmaster"));
}

#[test]
fn recipient_limit_gives_452_without_an_event() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<unknown1@b.example>\r\nRCPT TO:<r1@b.example>\r\nRCPT TO:<r2@b.example>\r\nRCPT TO:<r3@b.example>\r\nRCPT TO:<r4@b.example>\r\nDATA\r\n.\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.codes()[2..],
        [250, 550, 250, 250, 250, 452, 354, 250]
    );
    // MAIL, 4 RCPT events (one refused, three accepted), the message.
    assert_eq!(session.events.len(), 6);
}

#[test]
fn the_answer_to_a_message_ends_the_transaction() {
    let refuse = |event: &Event| match event {
        Event::Message { .. } => Some(Answer::Reject(Reply::new(451, "4.3.0", "Disk full"))),
        other => service(other),
    };
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\nRCPT TO:<c@d.example>\r\n",
        )],
        &refuse,
    );
    assert_eq!(session.codes()[2..], [250, 250, 354, 451, 503]);
}

#[test]
fn the_service_can_close() {
    let close = |event: &Event| match event {
        Event::Mail { .. } => Some(Answer::Close(Reply::new(421, "4.3.2", "Shutting down"))),
        other => service(other),
    };
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nNOOP\r\n",
        )],
        &close,
    );
    assert_eq!(
        session.lines().last().map(String::as_str),
        Some("421 4.3.2 Shutting down")
    );
    assert!(session.closed);
}

#[test]
fn eof_in_the_middle_of_data_gives_nothing() {
    let session = transcript(
        &mx(),
        &[
            client(format!("{}partial message\r\n", super::harness::PREFIX)),
            Step::Eof,
        ],
        &service,
    );
    assert_eq!(session.codes(), [220, 250, 250, 250, 354]);
    assert_eq!(session.events.len(), 2);
    assert!(session.closed);
}
