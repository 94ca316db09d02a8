//! Transactions: pipelined and not, recipient outcomes, the body on the wire, parameters,
//! refusals before sending, connection reuse and the end of a session mid-transaction.

use super::harness::{
    FULL, NO_PIPELINING, Step, last_event, ready, results, send, server, transcript,
    transcript_with,
};
use crate::client::{
    ClientConfig, DATA_BLOCK_TIMEOUT, DATA_INITIATION_TIMEOUT, DATA_TERMINATION_TIMEOUT, DsnNotify,
    DsnRet, Envelope, Event, MAIL_TIMEOUT, ProtocolError, RCPT_TIMEOUT, RecipientOutcome, Reply,
    SendError, SessionEnd, TransactionResult,
};

fn envelope() -> Envelope {
    Envelope::new(
        Some("sender@origin.example"),
        [
            "ok@dest.example",
            "later@dest.example",
            "never@dest.example",
        ],
    )
}

const BODY: &str = "Subject: hi\r\n\r\nHello.\r\n";

fn r(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply::new(code, enhanced, text)
}

/// Mixed recipient results, pipelined: one write of MAIL + RCPTs + DATA, replies matched in
/// order (RFC 2920 §3.1).
#[test]
fn pipelined_transaction_with_mixed_recipients() {
    let mut steps = ready(FULL);
    steps.extend([
        send(&envelope(), BODY),
        server(
            "250 2.1.0 Sender OK\r\n250 2.1.5 OK\r\n450 4.2.1 Mailbox busy\r\n\
             550 5.1.1 No such user\r\n354 Go ahead\r\n",
        ),
        server("250 2.0.0 Queued as 1234\r\n"),
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\n\
         MAIL FROM:<sender@origin.example> SIZE=23\r\n\
         RCPT TO:<ok@dest.example>\r\n\
         RCPT TO:<later@dest.example>\r\n\
         RCPT TO:<never@dest.example>\r\n\
         DATA\r\n\
         Subject: hi\r\n\r\nHello.\r\n.\r\n"
    );
    let result = TransactionResult {
        mail: Some(r(250, "2.1.0", "Sender OK")),
        rcpt: vec![
            Some(r(250, "2.1.5", "OK")),
            Some(r(450, "4.2.1", "Mailbox busy")),
            Some(r(550, "5.1.1", "No such user")),
        ],
        data: Some(r(354, "", "Go ahead")),
        end_of_data: Some(r(250, "2.0.0", "Queued as 1234")),
        interrupted: false,
    };
    assert_eq!(results(&session), std::slice::from_ref(&result));
    assert_eq!(
        result.outcomes(),
        [
            RecipientOutcome::Accepted(r(250, "2.0.0", "Queued as 1234")),
            RecipientOutcome::TemporaryFailure(r(450, "4.2.1", "Mailbox busy")),
            RecipientOutcome::PermanentFailure(r(550, "5.1.1", "No such user")),
        ]
    );
    assert_eq!(result.outcome(3), RecipientOutcome::NotAttempted);
    assert_eq!(session.sends, [Ok(())]);
    // Idle again: the connection can be reused.
    assert_eq!(session.timeouts.last(), Some(&None));
    assert!(!session.closed);
}

/// The same without PIPELINING: one command, one reply.
#[test]
fn one_command_at_a_time_without_pipelining() {
    let mut steps = ready(NO_PIPELINING);
    steps.extend([
        send(&envelope(), BODY),
        server("250 2.1.0 Sender OK\r\n"),
        server("250 2.1.5 OK\r\n"),
        server("450 4.2.1 Mailbox busy\r\n"),
        server("550 5.1.1 No such user\r\n"),
        server("354 Go ahead\r\n"),
        server("250 2.0.0 Queued\r\n"),
    ]);
    let session = transcript(&steps);
    let text = session.text();
    let commands: Vec<&str> = text.split_inclusive("\r\n").collect();
    assert_eq!(
        commands.get(..6).unwrap(),
        [
            "EHLO client.example\r\n",
            "MAIL FROM:<sender@origin.example> SIZE=23\r\n",
            "RCPT TO:<ok@dest.example>\r\n",
            "RCPT TO:<later@dest.example>\r\n",
            "RCPT TO:<never@dest.example>\r\n",
            "DATA\r\n",
        ]
    );
    // RFC 5321 §4.5.3.2: each wait has its own timeout.
    assert_eq!(
        session.timeouts.get(2..).unwrap(),
        [
            Some(MAIL_TIMEOUT),
            Some(RCPT_TIMEOUT),
            Some(RCPT_TIMEOUT),
            Some(RCPT_TIMEOUT),
            Some(DATA_INITIATION_TIMEOUT),
            Some(DATA_TERMINATION_TIMEOUT),
            None,
        ]
    );
    let [result] = results(&session).try_into().unwrap();
    assert!(matches!(
        result.outcomes().as_slice(),
        [
            RecipientOutcome::Accepted(_),
            RecipientOutcome::TemporaryFailure(_),
            RecipientOutcome::PermanentFailure(_)
        ]
    ));
}

/// Without PIPELINING a refused MAIL stops the transaction: no RCPT, no RSET later.
#[test]
fn refused_mail_without_pipelining() {
    let mut steps = ready(NO_PIPELINING);
    steps.extend([
        send(&envelope(), BODY),
        server("451 4.3.0 Try later\r\n"),
        send(&envelope(), BODY),
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\n\
         MAIL FROM:<sender@origin.example> SIZE=23\r\n\
         MAIL FROM:<sender@origin.example> SIZE=23\r\n"
    );
    let [result] = results(&session).try_into().unwrap();
    assert_eq!(result.rcpt, [None, None, None]);
    assert_eq!(
        result.outcomes(),
        vec![RecipientOutcome::TemporaryFailure(r(451, "4.3.0", "Try later")); 3]
    );
}

/// Pipelined, MAIL refused: the RCPTs and DATA get 503; every recipient takes MAIL's reply.
#[test]
fn refused_mail_with_pipelining() {
    let mut steps = ready(FULL);
    steps.extend([
        send(&envelope(), BODY),
        server(
            "550 5.7.1 Sender refused\r\n503 5.5.1 MAIL first\r\n503 5.5.1 MAIL first\r\n\
             503 5.5.1 MAIL first\r\n503 5.5.1 MAIL first\r\n",
        ),
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    assert_eq!(result.data, Some(r(503, "5.5.1", "MAIL first")));
    assert_eq!(
        result.outcomes(),
        vec![RecipientOutcome::PermanentFailure(r(550, "5.7.1", "Sender refused")); 3]
    );
    assert!(!session.text().contains("\r\n.\r\n"));
}

/// RFC 2920 §3.1: no recipient accepted and DATA pipelined: its 554 is read, nothing more is
/// sent, and the next transaction starts with RSET (RFC 5321 §4.1.1.5).
#[test]
fn no_accepted_recipient_pipelined() {
    let mut steps = ready(FULL);
    steps.extend([
        send(&envelope(), BODY),
        server(
            "250 2.1.0 OK\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n450 4.2.2 full\r\n\
             554 5.5.1 No valid recipients\r\n",
        ),
    ]);
    let session = transcript(&steps);
    assert!(session.text().ends_with("DATA\r\n"));
    let [result] = results(&session).try_into().unwrap();
    assert!(!result.any_recipient_accepted());
    assert_eq!(result.data, Some(r(554, "5.5.1", "No valid recipients")));
    assert_eq!(result.end_of_data, None);
    assert!(matches!(
        result.outcomes().as_slice(),
        [
            RecipientOutcome::PermanentFailure(_),
            RecipientOutcome::PermanentFailure(_),
            RecipientOutcome::TemporaryFailure(_)
        ]
    ));
    // The next transaction resets the one MAIL left open, in the same group.
    let single = Envelope::new(Some("sender@origin.example"), ["ok@dest.example"]);
    steps.extend([
        send(&single, BODY),
        server("250 2.0.0 Reset\r\n250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 go\r\n"),
        server("250 2.0.0 Queued\r\n"),
    ]);
    let session = transcript(&steps);
    assert!(session.text().ends_with(
        "DATA\r\nRSET\r\nMAIL FROM:<sender@origin.example> SIZE=23\r\n\
         RCPT TO:<ok@dest.example>\r\nDATA\r\nSubject: hi\r\n\r\nHello.\r\n.\r\n"
    ));
    let results = results(&session);
    assert_eq!(
        results.get(1).map(TransactionResult::outcomes),
        Some(vec![RecipientOutcome::Accepted(r(250, "2.0.0", "Queued"))])
    );
}

/// RFC 2920 §3.1: "if the DATA command was accepted the client SMTP should send a single
/// dot" — and never the message, since nobody accepted it.
#[test]
fn no_accepted_recipient_but_354() {
    let single = Envelope::new(Some("sender@origin.example"), ["never@dest.example"]);
    let mut steps = ready(FULL);
    steps.extend([
        send(&single, BODY),
        server("250 2.1.0 OK\r\n550 5.1.1 no\r\n354 go ahead anyway\r\n"),
        server("554 5.5.1 No valid recipients\r\n"),
    ]);
    let session = transcript(&steps);
    assert!(session.text().ends_with("DATA\r\n.\r\n"));
    assert!(!session.text().contains("Hello"));
    let [result] = results(&session).try_into().unwrap();
    assert_eq!(
        result.outcomes(),
        [RecipientOutcome::PermanentFailure(r(550, "5.1.1", "no"))]
    );
}

/// Without PIPELINING and no recipient accepted: no DATA; RSET before the next MAIL.
#[test]
fn no_accepted_recipient_without_pipelining() {
    let single = Envelope::new(Some("sender@origin.example"), ["never@dest.example"]);
    let mut steps = ready(NO_PIPELINING);
    steps.extend([
        send(&single, BODY),
        server("250 2.1.0 OK\r\n"),
        server("550 5.1.1 no\r\n"),
        send(&single, BODY),
        server("250 2.0.0 Reset\r\n"),
        server("250 2.1.0 OK\r\n"),
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\n\
         MAIL FROM:<sender@origin.example> SIZE=23\r\n\
         RCPT TO:<never@dest.example>\r\n\
         RSET\r\n\
         MAIL FROM:<sender@origin.example> SIZE=23\r\n\
         RCPT TO:<never@dest.example>\r\n"
    );
    assert_eq!(results(&session).len(), 1);
}

/// DATA refused after an accepted MAIL: the open transaction is reset next time.
#[test]
fn data_refused() {
    let single = Envelope::new(Some("sender@origin.example"), ["ok@dest.example"]);
    let mut steps = ready(FULL);
    steps.extend([
        send(&single, BODY),
        server("250 OK\r\n250 OK\r\n451 4.3.0 no DATA now\r\n"),
        send(&single, BODY),
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    assert_eq!(
        result.outcomes(),
        [RecipientOutcome::TemporaryFailure(r(
            451,
            "4.3.0",
            "no DATA now"
        ))]
    );
    assert!(session.text().ends_with("DATA\r\nRSET\r\nMAIL FROM:<sender@origin.example> SIZE=23\r\nRCPT TO:<ok@dest.example>\r\nDATA\r\n"));
}

/// RFC 5321 §4.5.2 and §2.3.8: dot-stuffing; bare LF and bare CR become CRLF; a CRLF is
/// added before the terminator when the body lacks one.
#[test]
fn body_is_dot_stuffed_and_normalised() {
    let single = Envelope::new(Some("s@o.example"), ["ok@dest.example"]);
    let body = "Subject: dots\n\n.leading\r\n..two\r\n.\r\nbare\rcr\nmid.dot\r\n.";
    let mut steps = ready(FULL);
    steps.extend([
        send(&single, body),
        server("250 OK\r\n250 OK\r\n354 go\r\n"),
        server("250 2.0.0 Queued\r\n"),
    ]);
    let session = transcript(&steps);
    let text = session.text();
    let wire = text.split_once("DATA\r\n").unwrap().1;
    assert_eq!(
        wire,
        "Subject: dots\r\n\r\n..leading\r\n...two\r\n..\r\nbare\r\ncr\r\nmid.dot\r\n..\r\n.\r\n"
    );
    // RFC 1870 §5: SIZE counts CRLF pairs, not stuffing dots or the terminator.
    let size = wire.len() - ".\r\n".len() - 4;
    assert!(text.contains(&format!("SIZE={size}\r\n")), "{text}");
}

#[test]
fn empty_body_is_the_terminator_alone() {
    let single = Envelope::new(Some("s@o.example"), ["ok@dest.example"]);
    let mut steps = ready(FULL);
    steps.extend([send(&single, ""), server("250 OK\r\n250 OK\r\n354 go\r\n")]);
    let session = transcript(&steps);
    assert!(
        session
            .text()
            .ends_with("SIZE=0\r\nRCPT TO:<ok@dest.example>\r\nDATA\r\n.\r\n")
    );
}

/// A large body goes out in bounded pieces, and each write has the data-block timeout.
#[test]
fn large_body_in_bounded_pieces() {
    let single = Envelope::new(Some("s@o.example"), ["ok@dest.example"]);
    let line = format!("{}\r\n", "x".repeat(998));
    let body = line.repeat(300); // 300 KB
    let mut core = crate::client::ClientCore::new(super::harness::config()).unwrap();
    core.feed(super::harness::GREETING.as_bytes());
    core.feed(super::harness::ehlo(&["PIPELINING", "SIZE"]).as_bytes());
    assert!(matches!(core.next_event(), Some(Event::Ready { .. })));
    core.take_output();
    core.send(&single, body.clone().into_bytes()).unwrap();
    core.take_output();
    core.feed(b"250 OK\r\n250 OK\r\n354 go\r\n");
    assert_eq!(core.next_event(), None);
    let mut wire = Vec::new();
    let mut writes = 0;
    while core.has_output() {
        assert_eq!(core.timeout(), Some(DATA_BLOCK_TIMEOUT));
        let piece = core.take_output();
        assert!(piece.len() <= crate::client::BODY_CHUNK + 5);
        wire.extend(piece);
        writes += 1;
    }
    assert_eq!(writes, body.len().div_ceil(crate::client::BODY_CHUNK));
    assert_eq!(wire, format!("{body}.\r\n").into_bytes());
    assert_eq!(core.timeout(), Some(DATA_TERMINATION_TIMEOUT));
}

/// RFC 5321 §4.5.4 (connection reuse): two transactions on one connection, then QUIT.
#[test]
fn two_transactions_on_one_connection() {
    let first = Envelope::new(Some("a@o.example"), ["x@dest.example"]);
    let second = Envelope::new(None, ["y@dest.example"]);
    let mut steps = ready(FULL);
    steps.extend([
        send(&first, "first\r\n"),
        server("250 OK\r\n250 OK\r\n354 go\r\n"),
        server("250 2.0.0 one\r\n"),
        send(&second, "second\r\n"),
        server("250 OK\r\n250 OK\r\n354 go\r\n"),
        server("250 2.0.0 two\r\n"),
        Step::Quit,
        server("221 2.0.0 Bye\r\n"),
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\n\
         MAIL FROM:<a@o.example> SIZE=7\r\nRCPT TO:<x@dest.example>\r\nDATA\r\nfirst\r\n.\r\n\
         MAIL FROM:<> SIZE=8\r\nRCPT TO:<y@dest.example>\r\nDATA\r\nsecond\r\n.\r\n\
         QUIT\r\n"
    );
    let results = results(&session);
    assert_eq!(results.len(), 2);
    assert_eq!(
        results
            .iter()
            .map(|result| result.outcome(0))
            .collect::<Vec<_>>(),
        [
            RecipientOutcome::Accepted(r(250, "2.0.0", "one")),
            RecipientOutcome::Accepted(r(250, "2.0.0", "two")),
        ]
    );
    assert_eq!(
        last_event(&session),
        Some(&Event::Closed(SessionEnd::Quit(Some(r(
            221, "2.0.0", "Bye"
        )))))
    );
    assert_eq!(session.sends, [Ok(()), Ok(())]);
}

/// RFC 5321 §3.8: 421 mid-transaction: the reply is recorded where it came, the rest is
/// `NotAttempted`, and the session is over.
#[test]
fn service_closing_mid_transaction() {
    let mut steps = ready(FULL);
    steps.extend([
        send(&envelope(), BODY),
        server("250 2.1.0 OK\r\n250 2.1.5 OK\r\n421 4.3.2 Shutting down\r\n"),
        send(&envelope(), BODY),
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    assert!(result.interrupted);
    assert_eq!(
        result.outcomes(),
        [
            RecipientOutcome::NotAttempted,
            RecipientOutcome::TemporaryFailure(r(421, "4.3.2", "Shutting down")),
            RecipientOutcome::NotAttempted,
        ]
    );
    assert_eq!(
        last_event(&session),
        Some(&Event::Closed(SessionEnd::ServiceClosing(r(
            421,
            "4.3.2",
            "Shutting down"
        ))))
    );
    assert_eq!(session.sends, [Ok(()), Err(SendError::NotReady)]);
    assert!(session.closed);
}

#[test]
fn service_closing_after_the_data() {
    let single = Envelope::new(Some("s@o.example"), ["ok@dest.example"]);
    let mut steps = ready(NO_PIPELINING);
    steps.extend([
        send(&single, BODY),
        server("250 OK\r\n"),
        server("250 OK\r\n"),
        server("354 go\r\n"),
        server("421 4.4.2 Timeout\r\n"),
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    assert_eq!(
        result.outcomes(),
        [RecipientOutcome::TemporaryFailure(r(
            421, "4.4.2", "Timeout"
        ))]
    );
}

/// The connection drops after the data: no verdict (the queue retries; RFC 1047).
#[test]
fn connection_lost_awaiting_the_verdict() {
    let single = Envelope::new(Some("s@o.example"), ["ok@dest.example"]);
    let mut steps = ready(FULL);
    steps.extend([
        send(&single, BODY),
        server("250 OK\r\n250 OK\r\n354 go\r\n"),
        Step::Eof,
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    assert!(result.interrupted);
    assert_eq!(result.outcomes(), [RecipientOutcome::NotAttempted]);
    assert_eq!(
        last_event(&session),
        Some(&Event::Closed(SessionEnd::ConnectionLost))
    );
}

/// Replies of a class the command cannot have are not SMTP (RFC 5321 §4.3.2).
#[test]
fn unexpected_reply_classes() {
    let single = Envelope::new(Some("s@o.example"), ["ok@dest.example"]);
    for replies in [
        "354 what\r\n",
        "250 OK\r\n354 what\r\n",
        "250 OK\r\n250 OK\r\n250 not 354\r\n",
    ] {
        let mut steps = ready(FULL);
        steps.extend([send(&single, BODY), server(replies)]);
        let session = transcript(&steps);
        let [result] = results(&session).try_into().unwrap();
        assert!(result.interrupted, "{replies}");
        assert_eq!(result.outcomes(), [RecipientOutcome::NotAttempted]);
        assert_eq!(
            last_event(&session),
            Some(&Event::Closed(SessionEnd::Protocol(
                ProtocolError::UnexpectedReply
            ))),
            "{replies}"
        );
    }
}

/// RFC 6531 §3.4: a UTF-8 address needs SMTPUTF8; without it nothing is sent.
#[test]
fn smtputf8_needed_and_not_offered() {
    let utf8 = Envelope::new(Some("s@o.example"), ["jürgen@dest.example"]);
    let mut steps = ready(&["PIPELINING", "8BITMIME"]);
    steps.push(send(&utf8, BODY));
    let session = transcript(&steps);
    assert_eq!(session.sends, [Err(SendError::SmtpUtf8NotOffered)]);
    assert_eq!(session.text(), "EHLO client.example\r\n");
    assert!(results(&session).is_empty());
    // UTF-8 headers of a message received with SMTPUTF8 need it too.
    let mut flagged = Envelope::new(Some("s@o.example"), ["x@dest.example"]);
    flagged.smtputf8 = true;
    let mut steps = ready(&["PIPELINING", "8BITMIME"]);
    steps.extend([
        send(&flagged, "Subject: Grüße\r\n\r\nx\r\n"),
        // An ASCII-only message asked for SMTPUTF8 but does not need it.
        send(&flagged, "Subject: hello\r\n\r\nGrüße\r\n"),
    ]);
    let session = transcript(&steps);
    assert_eq!(session.sends, [Err(SendError::SmtpUtf8NotOffered), Ok(())]);
    assert!(session.text().ends_with(
        "MAIL FROM:<s@o.example> BODY=8BITMIME\r\nRCPT TO:<x@dest.example>\r\nDATA\r\n"
    ));
}

#[test]
fn smtputf8_and_8bitmime_when_offered() {
    let utf8 = Envelope::new(Some("s@o.example"), ["jürgen@dest.example"]);
    let mut steps = ready(FULL);
    steps.push(send(&utf8, "Subject: café\r\n\r\nx\r\n"));
    let session = transcript(&steps);
    assert!(session.text().contains(
        "MAIL FROM:<s@o.example> SIZE=21 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<jürgen@dest.example>\r\n"
    ), "{}", session.text());
}

/// RFC 8689 §4.2.1: REQUIRETLS only over TLS, and only to a server that offers it.
#[test]
fn requiretls_refusals() {
    let mut strict = Envelope::new(Some("s@o.example"), ["x@dest.example"]);
    strict.require_tls = true;
    let mut steps = ready(&["PIPELINING", "REQUIRETLS", "STARTTLS"]);
    steps.push(send(&strict, BODY));
    let session = transcript(&steps);
    assert_eq!(session.sends, [Err(SendError::RequireTlsWithoutTls)]);
    assert_eq!(session.text(), "EHLO client.example\r\n");

    let tls = ClientConfig {
        tls_active: true,
        ..super::harness::config()
    };
    let mut steps = ready(&["PIPELINING"]);
    steps.push(send(&strict, BODY));
    let session = transcript_with(&tls, &steps);
    assert_eq!(session.sends, [Err(SendError::RequireTlsNotOffered)]);

    let mut steps = ready(&["PIPELINING", "REQUIRETLS"]);
    steps.push(send(&strict, BODY));
    let session = transcript_with(&tls, &steps);
    assert_eq!(session.sends, [Ok(())]);
    assert!(
        session
            .text()
            .contains("MAIL FROM:<s@o.example> REQUIRETLS\r\n")
    );
}

/// RFC 1870 §4: a message above the declared limit is not sent.
#[test]
fn too_big_for_the_declared_size() {
    let single = Envelope::new(Some("s@o.example"), ["x@dest.example"]);
    let mut steps = ready(&["PIPELINING", "SIZE 10"]);
    steps.extend([send(&single, "0123456789"), send(&single, "01234567")]);
    let session = transcript(&steps);
    assert_eq!(
        session.sends,
        [
            Err(SendError::TooBig {
                size: 12,
                limit: 10
            }),
            Ok(())
        ]
    );
    assert!(session.text().contains("SIZE=10\r\n"));
}

/// RFC 3461: RET, ENVID, NOTIFY and ORCPT only to a server that offers DSN.
#[test]
fn dsn_parameters_only_when_offered() {
    let mut dsn = Envelope::new(Some("s@o.example"), ["x@dest.example", "y@dest.example"]);
    dsn.ret = Some(DsnRet::Headers);
    dsn.envid = Some("QQ314159 +=".to_string());
    dsn.recipients[0].notify = Some(DsnNotify {
        success: true,
        failure: true,
        ..DsnNotify::default()
    });
    dsn.recipients[0].orcpt = Some(("rfc822".to_string(), "x+tag@dest.example".to_string()));
    dsn.recipients[1].notify = Some(DsnNotify {
        never: true,
        ..DsnNotify::default()
    });
    let mut steps = ready(&["PIPELINING", "DSN"]);
    steps.push(send(&dsn, BODY));
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\n\
         MAIL FROM:<s@o.example> RET=HDRS ENVID=QQ314159+20+2B+3D\r\n\
         RCPT TO:<x@dest.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2Btag@dest.example\r\n\
         RCPT TO:<y@dest.example> NOTIFY=NEVER\r\n\
         DATA\r\n"
    );
    let mut steps = ready(&["PIPELINING"]);
    steps.push(send(&dsn, BODY));
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\n\
         MAIL FROM:<s@o.example>\r\n\
         RCPT TO:<x@dest.example>\r\n\
         RCPT TO:<y@dest.example>\r\n\
         DATA\r\n"
    );
}

#[test]
fn envelope_errors_send_nothing() {
    let mut steps = ready(FULL);
    steps.extend([
        send(
            &Envelope::new(Some("s@o.example"), Vec::<String>::new()),
            BODY,
        ),
        send(
            &Envelope::new(Some("s@o.example>\r\nDATA"), ["x@d.example"]),
            BODY,
        ),
        send(
            &Envelope::new(Some("s@o.example"), ["x@d.example", "y"]),
            BODY,
        ),
    ]);
    let session = transcript(&steps);
    assert_eq!(
        session.sends,
        [
            Err(SendError::NoRecipients),
            Err(SendError::InvalidSender),
            Err(SendError::InvalidRecipient(1))
        ]
    );
    assert_eq!(session.text(), "EHLO client.example\r\n");
}

#[test]
fn postmaster_and_null_sender() {
    let bounce = Envelope::new(None, ["postmaster", "Postmaster@dest.example"]);
    let mut steps = ready(&["PIPELINING"]);
    steps.push(send(&bounce, BODY));
    let session = transcript(&steps);
    assert_eq!(
        session.text(),
        "EHLO client.example\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\n\
         RCPT TO:<Postmaster@dest.example>\r\nDATA\r\n"
    );
}
