//! Property tests: the body survives dot-stuffing and the server core's un-stuffing; any
//! server input is survived without a panic, in bounded pieces, whatever the chunking.

use proptest::prelude::*;

use super::end_to_end::{deliver, mx};
use super::harness::config;
use crate::client::{BODY_CHUNK, ClientCore, Envelope, Event, MessageBody};

/// What the receiver stores for `body`: every CR, LF and CRLF as CRLF, and a final CRLF
/// when the body has content but does not end with a line ending (RFC 5321 §2.3.8).
fn normalise(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut index = 0;
    while let Some(&byte) = body.get(index) {
        match byte {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if body.get(index + 1) == Some(&b'\n') {
                    index += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
        index += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Pieces that make bodies interesting for the DATA encoding.
fn body_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b"\n.\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\r\n".to_vec()),
        Just("é".as_bytes().to_vec()),
        "[a-z .]{0,20}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..30),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(body_token(), 0..40).prop_map(|tokens| tokens.concat())
}

/// Bodies already in wire form: CRLF lines, no bare CR or LF.
fn crlf_body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec("[.]{0,3}[^\r\n]{0,20}", 0..30).prop_map(|lines| {
        lines
            .iter()
            .flat_map(|line| [line.as_bytes(), b"\r\n"].concat())
            .collect()
    })
}

/// Server input that steers the client through its states.
fn server_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"220 mx.example ESMTP\r\n".to_vec()),
        Just(b"220 2.0.0 Ready to start TLS\r\n".to_vec()),
        Just(b"250-mx.example\r\n".to_vec()),
        Just(b"250-PIPELINING\r\n".to_vec()),
        Just(b"250-STARTTLS\r\n".to_vec()),
        Just(b"250-SIZE 100\r\n".to_vec()),
        Just(b"250 8BITMIME\r\n".to_vec()),
        Just(b"250 2.1.0 OK\r\n".to_vec()),
        Just(b"354 go\r\n".to_vec()),
        Just(b"450 4.2.1 busy\r\n".to_vec()),
        Just(b"502 5.5.1 no EHLO\r\n".to_vec()),
        Just(b"550 5.1.1 no\r\n".to_vec()),
        Just(b"554 5.5.1 no recipients\r\n".to_vec()),
        Just(b"421 4.3.2 bye\r\n".to_vec()),
        Just(b"221 bye\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[0-9]{3}[ -][ -~]{0,20}\r\n".prop_map(String::into_bytes),
    ]
}

fn server_input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(server_token(), 0..40).prop_map(|tokens| tokens.concat())
}

/// Drives a client through `input` fed `chunk` octets at a time, with a caller that tries
/// STARTTLS when offered, sends two messages, then quits. `handshake`: complete STARTTLS
/// (the bytes after it then depend on where the chunks fall, as they do on a real wire).
fn drive(input: &[u8], chunk: usize, handshake: bool) -> (Vec<u8>, Vec<Event>) {
    let envelope = Envelope::new(Some("s@o.example"), ["a@d.example", "b@d.example"]);
    let body = MessageBody::from(b".x\r\nbody\n".to_vec());
    let mut core = ClientCore::new(config()).unwrap();
    let mut sent = 0;
    let mut output = Vec::new();
    let mut events = Vec::new();
    let mut pieces = input.chunks(chunk.max(1)).map(Some).collect::<Vec<_>>();
    pieces.push(None);
    for piece in pieces {
        match piece {
            Some(piece) => core.feed(piece),
            None => core.feed_eof(),
        }
        while let Some(event) = core.next_event() {
            match &event {
                Event::UpgradeTls if handshake => core.tls_started(),
                Event::Ready {
                    extensions,
                    tls_active: false,
                } if extensions.starttls => core.start_tls().unwrap(),
                Event::Ready { .. } | Event::StartTlsRefused(_) | Event::Transaction(_)
                    if core.is_idle() =>
                {
                    if sent < 2 {
                        sent += 1;
                        // Refusals (e.g. SIZE) are fine: nothing is sent then.
                        if core.send(&envelope, body.clone()).is_err() {
                            core.quit().unwrap();
                        }
                    } else {
                        core.quit().unwrap();
                    }
                }
                _ => {}
            }
            events.push(event);
        }
        loop {
            let out = core.take_output();
            if out.is_empty() {
                break;
            }
            assert!(out.len() <= BODY_CHUNK + 1024);
            output.extend(out);
        }
    }
    assert!(core.should_close(), "{core:?}");
    assert_eq!(core.next_event(), None);
    (output, events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Dot-stuffing by the client and un-stuffing by the server core give back any body,
    /// with its line endings normalised to CRLF.
    #[test]
    fn stuffing_round_trips_through_the_server_core(body in body()) {
        let envelope = Envelope::new(Some("s@origin.example"), ["alice@mx.example"]);
        let delivery = deliver(mx(), &[(envelope, MessageBody::from(body.clone()))], false);
        prop_assert_eq!(delivery.bodies(), vec![normalise(&body)]);
    }

    /// A body already in CRLF form arrives byte for byte.
    #[test]
    fn crlf_bodies_arrive_unchanged(body in crlf_body()) {
        let envelope = Envelope::new(Some("s@origin.example"), ["alice@mx.example"]);
        let delivery = deliver(mx(), &[(envelope, MessageBody::from(body.clone()))], false);
        prop_assert_eq!(delivery.bodies(), vec![body]);
    }

    /// Any server input, any chunking: no panic, bounded writes, the session always ends.
    #[test]
    fn any_server_input_is_survived(
        input in server_input(),
        raw in proptest::collection::vec(any::<u8>(), 0..512),
        chunk in 1usize..64,
    ) {
        drive(&input, chunk, true);
        drive(&raw, chunk, true);
    }

    /// Chunking never changes the session (the handshake is never completed here, so
    /// everything after a 220 to STARTTLS is dropped whatever the chunking).
    #[test]
    fn chunking_never_changes_the_session(input in server_input(), chunk in 1usize..32) {
        let whole = drive(&input, usize::MAX, false);
        let split = drive(&input, chunk, false);
        prop_assert_eq!(split, whole);
    }
}
