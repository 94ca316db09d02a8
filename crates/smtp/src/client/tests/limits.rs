//! Malformed and oversized replies: the session ends with a protocol error, memory stays
//! bounded, nothing panics.

use super::harness::{
    FULL, GREETING, config, ehlo, last_event, ready, results, send, server, transcript,
};
use crate::client::{
    ClientCore, Envelope, Event, MAX_BUFFERED_INPUT, MAX_REPLY_LINE, MAX_REPLY_LINES,
    ProtocolError, RecipientOutcome, SessionEnd,
};

fn protocol_error(error: ProtocolError) -> Option<Event> {
    Some(Event::Closed(SessionEnd::Protocol(error)))
}

#[test]
fn malformed_greetings() {
    for (greeting, error) in [
        ("hello there\r\n", ProtocolError::Malformed),
        ("22 short\r\n", ProtocolError::Malformed),
        ("220x mx\r\n", ProtocolError::Malformed),
        ("\r\n", ProtocolError::Malformed),
        ("120 wait\r\n", ProtocolError::Malformed),
        ("220-mx\r\n250 mixed\r\n", ProtocolError::CodeMismatch),
    ] {
        let session = transcript(&[server(greeting)]);
        assert_eq!(
            last_event(&session).cloned(),
            protocol_error(error),
            "{greeting:?}"
        );
        assert_eq!(session.text(), "", "{greeting:?}");
        assert!(session.closed);
    }
}

#[test]
fn a_long_line_is_accepted_up_to_the_limit() {
    let mut greeting = "220 ".to_string();
    greeting.push_str(&"x".repeat(MAX_REPLY_LINE - 6));
    greeting.push_str("\r\n");
    assert_eq!(greeting.len(), MAX_REPLY_LINE);
    let session = super::harness::run(&config(), &[server(&greeting)], usize::MAX);
    assert_eq!(session.text(), "EHLO client.example\r\n");
    let mut too_long = greeting.clone();
    too_long.insert(5, 'x');
    let session = super::harness::run(&config(), &[server(&too_long)], 7);
    assert_eq!(
        last_event(&session).cloned(),
        protocol_error(ProtocolError::LineTooLong)
    );
}

/// A server that sends bytes without ever ending the line: refused at the line limit,
/// whatever arrives later is dropped, the buffer never grows past one read.
#[test]
fn endless_line_ends_the_session_with_bounded_memory() {
    let mut core = ClientCore::new(config()).unwrap();
    let chunk = vec![b'2'; 1000];
    let mut fed = 0;
    for _ in 0..10_000 {
        core.feed(&chunk);
        fed += chunk.len();
        if let Some(event) = core.next_event() {
            assert_eq!(Some(event), protocol_error(ProtocolError::LineTooLong));
            break;
        }
    }
    assert!(fed <= MAX_REPLY_LINE + chunk.len());
    assert!(core.should_close());
    core.feed(&chunk);
    assert_eq!(core.next_event(), None);
    assert!(core.take_output().is_empty());
}

/// A reply that never ends (endless continuation lines) is cut at the line limit.
#[test]
fn endless_reply_ends_the_session() {
    let mut steps = ready(FULL);
    let envelope = Envelope::new(Some("s@o.example"), ["x@d.example"]);
    steps.extend([
        send(&envelope, "x\r\n"),
        server("250-x\r\n".repeat(MAX_REPLY_LINES + 5)),
    ]);
    let session = super::harness::run(&config(), &steps, 64);
    let [result] = results(&session).try_into().unwrap();
    assert!(result.interrupted);
    assert_eq!(result.outcomes(), [RecipientOutcome::NotAttempted]);
    assert_eq!(
        last_event(&session).cloned(),
        protocol_error(ProtocolError::TooManyLines)
    );
}

#[test]
fn too_many_lines_in_ehlo() {
    let mut lines = vec!["X-FILLER"; MAX_REPLY_LINES];
    lines.push("PIPELINING");
    let steps = [server(GREETING), server(ehlo(&lines))];
    let session = super::harness::run(&config(), &steps, 100);
    assert_eq!(
        last_event(&session).cloned(),
        protocol_error(ProtocolError::TooManyLines)
    );
    // One line fewer is fine.
    let lines = vec!["X-FILLER"; MAX_REPLY_LINES - 1];
    let session = super::harness::run(&config(), &[server(GREETING), server(ehlo(&lines))], 100);
    assert!(matches!(last_event(&session), Some(Event::Ready { .. })));
}

/// A malformed reply in the middle of a pipelined transaction: the result so far, marked
/// interrupted, then the protocol error.
#[test]
fn malformed_reply_mid_transaction() {
    let envelope = Envelope::new(Some("s@o.example"), ["x@d.example", "y@d.example"]);
    let mut steps = ready(FULL);
    steps.extend([
        send(&envelope, "x\r\n"),
        server("250 OK\r\n250 OK\r\n25O bogus\r\n250 ignored\r\n"),
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    assert!(result.interrupted);
    assert!(result.rcpt.first().is_some_and(Option::is_some));
    assert_eq!(result.rcpt.get(1), Some(&None));
    assert_eq!(
        last_event(&session).cloned(),
        protocol_error(ProtocolError::Malformed)
    );
}

/// The driver feeds without ever draining events: the input is capped.
#[test]
fn undrained_input_is_capped() {
    let mut core = ClientCore::new(config()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut fed = 0;
    while !core.should_close() && fed <= 4 * MAX_BUFFERED_INPUT {
        core.feed(&chunk);
        fed += chunk.len();
        if fed > 2 * MAX_BUFFERED_INPUT {
            break;
        }
    }
    assert_eq!(
        core.next_event(),
        protocol_error(ProtocolError::TooMuchInput)
    );
    assert!(core.should_close());
}

#[test]
fn enhanced_code_of_another_class_is_text() {
    let envelope = Envelope::new(Some("s@o.example"), ["x@d.example"]);
    let mut steps = ready(FULL);
    steps.extend([
        send(&envelope, "x\r\n"),
        server("250 OK\r\n550 2.1.5 odd\r\n554 no\r\n"),
    ]);
    let session = transcript(&steps);
    let [result] = results(&session).try_into().unwrap();
    let rcpt = result.rcpt.first().cloned().flatten().unwrap();
    assert_eq!((rcpt.code, rcpt.enhanced.as_str()), (550, ""));
    assert_eq!(rcpt.lines, ["2.1.5 odd"]);
}
