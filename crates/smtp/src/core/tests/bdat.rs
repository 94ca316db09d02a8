//! BDAT / CHUNKING (RFC 3030; SECURITY-TESTS SM-15).

use super::harness::{Step, client, mx, service, transcript};
use crate::core::Event;

const TXN: &str = "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n";

fn with_txn(rest: &[u8]) -> Vec<u8> {
    let mut input = TXN.as_bytes().to_vec();
    input.extend_from_slice(rest);
    input
}

#[test]
fn chunks_accumulate_binary_exact() {
    let session = transcript(
        &mx(),
        &[client(with_txn(
            b"BDAT 5\r\nab\r\n.BDAT 0\r\nBDAT 8 LAST\r\n.\r\nxyz\r\nNOOP\r\n",
        ))],
        &service,
    );
    assert_eq!(
        session.lines()[11..],
        [
            "250 2.0.0 5 octets received",
            "250 2.0.0 0 octets received",
            "250 2.0.0 Queued",
            "250 2.0.0 OK",
        ]
    );
    // No dot-unstuffing: "..\r\n" inside chunks is content, as sent.
    assert_eq!(
        session.events.last(),
        Some(&Event::Message {
            body: b"ab\r\n..\r\nxyz\r\n".to_vec()
        })
    );
}

#[test]
fn zero_last_is_a_valid_end() {
    let session = transcript(
        &mx(),
        &[client(with_txn(b"BDAT 3\r\nabcBDAT 0 LAST\r\n"))],
        &service,
    );
    assert_eq!(session.codes()[4..], [250, 250]);
    assert_eq!(
        session.events.last(),
        Some(&Event::Message {
            body: b"abc".to_vec()
        })
    );
}

#[test]
fn empty_message_with_zero_last() {
    let session = transcript(&mx(), &[client(with_txn(b"BDAT 0 LAST\r\n"))], &service);
    assert_eq!(
        session.events.last(),
        Some(&Event::Message { body: Vec::new() })
    );
}

#[test]
fn oversize_is_refused_before_reading_and_the_chunk_is_still_consumed() {
    // Announced total 6000 + 5000 > 10000: the second chunk is dropped, 552; every later
    // chunk of the transaction too; LAST ends the transaction.
    let mut rest = b"BDAT 6000\r\n".to_vec();
    rest.extend(std::iter::repeat_n(b'a', 6000));
    rest.extend_from_slice(b"BDAT 5000\r\n");
    rest.extend(std::iter::repeat_n(b'b', 5000));
    rest.extend_from_slice(b"BDAT 1 LAST\r\ncRCPT TO:<c@d.example>\r\nNOOP\r\n");
    let session = transcript(&mx(), &[client(with_txn(&rest))], &service);
    assert_eq!(
        session.lines()[11..],
        [
            "250 2.0.0 6000 octets received",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "503 5.5.1 MAIL first",
            "250 2.0.0 OK",
        ]
    );
    assert_eq!(session.events.len(), 2);
}

#[test]
fn a_huge_announced_chunk_allocates_nothing() {
    // SM-15: BDAT 18446744073709551615 LAST: refused at once with 552 and closed, since
    // draining it could take forever; nothing after it is read.
    let mut rest = b"BDAT 18446744073709551615 LAST\r\n".to_vec();
    rest.extend(std::iter::repeat_n(b'z', 3000));
    let session = transcript(&mx(), &[client(with_txn(&rest)), Step::Eof], &service);
    assert_eq!(session.codes()[3..], [250, 552]);
    assert!(session.closed);
    assert_eq!(session.events.len(), 2);
}

#[test]
fn partial_chunk_then_eof_stores_nothing() {
    let session = transcript(
        &mx(),
        &[client(with_txn(b"BDAT 5\r\nAB")), Step::Eof],
        &service,
    );
    assert_eq!(session.events.len(), 2);
    assert!(session.closed);
}

#[test]
fn bare_line_endings_are_refused_at_last() {
    for body in [&b"a\nb"[..], b"a\rb", b"a\r", b"\n"] {
        let mut rest = format!("BDAT {} LAST\r\n", body.len()).into_bytes();
        rest.extend_from_slice(body);
        rest.extend_from_slice(b"NOOP\r\n");
        let session = transcript(&mx(), &[client(with_txn(&rest))], &service);
        assert_eq!(
            session.lines()[11..],
            ["550 5.5.2 Message contains bare CR or LF", "250 2.0.0 OK"],
            "{body:?}"
        );
        assert_eq!(session.events.len(), 2);
    }
    // A CRLF split over two chunks is not bare.
    let session = transcript(
        &mx(),
        &[client(with_txn(b"BDAT 2\r\na\rBDAT 1 LAST\r\n\n"))],
        &service,
    );
    assert_eq!(
        session.events.last(),
        Some(&Event::Message {
            body: b"a\r\n".to_vec()
        })
    );
}

#[test]
fn data_after_bdat_and_rcpt_after_bdat() {
    let session = transcript(
        &mx(),
        &[client(with_txn(
            b"BDAT 3\r\nabcDATA\r\nRCPT TO:<e@f.example>\r\nBDAT 0 LAST\r\n",
        ))],
        &service,
    );
    assert_eq!(
        session.lines()[11..],
        [
            "250 2.0.0 3 octets received",
            "503 5.5.1 DATA not allowed after BDAT",
            "503 5.5.1 RCPT not allowed after BDAT",
            "250 2.0.0 Queued",
        ]
    );
}

#[test]
fn bdat_without_a_transaction_still_reads_the_chunk() {
    let session = transcript(
        &mx(),
        &[client(
            "EHLO c.example\r\nBDAT 6\r\nNOOP\r\nBDAT 0 LAST\r\nMAIL FROM:<a@b.example>\r\nBDAT 4 LAST\r\nQUITRCPT TO:<unknown@b.example>\r\nBDAT 1\r\nxNOOP\r\n",
        )],
        &service,
    );
    assert_eq!(
        session.lines()[9..],
        [
            "503 5.5.1 MAIL first",
            "503 5.5.1 MAIL first",
            "250 2.1.0 Sender OK",
            "503 5.5.1 RCPT first",
            "550 5.1.1 No such user",
            "554 5.5.1 No valid recipients",
            "250 2.0.0 OK",
        ]
    );
    assert!(!session.closed);
}

#[test]
fn invalid_chunk_size_closes() {
    for bad in [
        "BDAT -1\r\n",
        "BDAT\r\n",
        "BDAT 12x LAST\r\n",
        "BDAT 99999999999999999999999\r\n",
    ] {
        let session = transcript(
            &mx(),
            &[client(with_txn(format!("{bad}NOOP\r\n").as_bytes()))],
            &service,
        );
        assert_eq!(
            session.lines()[11..],
            ["501 5.5.4 Syntax: BDAT chunk-size [LAST]"],
            "{bad}"
        );
        assert!(session.closed);
    }
}
