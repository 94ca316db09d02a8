//! Property tests: arbitrary input never panics, chunking never changes the session, and the
//! message encoder's output always reads back as the message.

use proptest::prelude::*;

use super::harness::{Step, pop3, pop3s, run, service};
use crate::core::MessageEncoder;

/// Pieces that steer the input into interesting states.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"USER alice\r\n".to_vec()),
        Just(b"PASS correct-horse\r\n".to_vec()),
        Just(b"PASS wrong\r\n".to_vec()),
        Just(b"AUTH PLAIN\r\n".to_vec()),
        Just(b"AUTH PLAIN AGFsaWNlAGNvcnJlY3QtaG9yc2U=\r\n".to_vec()),
        Just(b"STLS\r\n".to_vec()),
        Just(b"CAPA\r\n".to_vec()),
        Just(b"STAT\r\n".to_vec()),
        Just(b"LIST\r\n".to_vec()),
        Just(b"LIST 2\r\n".to_vec()),
        Just(b"UIDL\r\n".to_vec()),
        Just(b"RETR 1\r\n".to_vec()),
        Just(b"RETR 2\r\n".to_vec()),
        Just(b"TOP 2 1\r\n".to_vec()),
        Just(b"DELE 1\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"QUIT\r\n".to_vec()),
        Just(b"*\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[A-Za-z0-9 +=-]{0,30}\r\n".prop_map(String::into_bytes),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(token(), 0..40).prop_map(|tokens| tokens.concat())
}

/// Reads a multi-line body back: lines split at CRLF, one leading "." removed from lines
/// that start with one.
fn unstuff(out: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    for line in out.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        text.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        text.extend_from_slice(b"\r\n");
    }
    text.truncate(text.len().saturating_sub(4)); // the split after the last CRLF
    text
}

/// The message with every line end (CRLF, bare CR, bare LF) made CRLF.
fn normalized(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = message.get(i) {
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_input_never_panics_and_chunking_never_matters(
        bytes in input(),
        chunk in 1usize..64,
        tls in any::<bool>(),
    ) {
        let config = if tls { pop3s() } else { pop3() };
        let steps = [Step::Client(bytes), Step::TlsStarted, Step::Eof];
        let whole = run(&config, &steps, &service, usize::MAX);
        let split = run(&config, &steps, &service, chunk);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn encoded_messages_read_back_and_never_end_early(
        message in proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')], 0..200),
        piece in 1usize..16,
    ) {
        let mut encoder = MessageEncoder::new(None);
        let mut out = Vec::new();
        for chunk in message.chunks(piece) {
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        prop_assert!(out.is_empty() || out.ends_with(b"\r\n"));
        let mut framed = b"\r\n".to_vec();
        framed.extend_from_slice(&out);
        prop_assert!(!framed.windows(5).any(|w| w == b"\r\n.\r\n"));
        // Every line end is CRLF.
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                prop_assert_eq!(i.checked_sub(1).and_then(|j| out.get(j)), Some(&b'\r'));
            }
            if b == b'\r' {
                prop_assert_eq!(out.get(i + 1), Some(&b'\n'));
            }
        }
        let mut expected = normalized(&message);
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        if out.is_empty() {
            prop_assert!(expected.is_empty());
        } else {
            let mut back = unstuff(&out);
            back.extend_from_slice(b"\r\n");
            prop_assert_eq!(back, expected);
        }
    }
}
