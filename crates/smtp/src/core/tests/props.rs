//! Property tests: arbitrary input never panics, output stays bounded, and chunking never
//! changes the session.

use proptest::prelude::*;

use super::harness::{Step, mx, run, service, submissions};
use crate::core::{CoreConfig, Event, ServerCore};

/// Pieces that steer the input into interesting states.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO t.test\r\n".to_vec()),
        Just(b"HELO t.test\r\n".to_vec()),
        Just(b"MAIL FROM:<a@b.example>\r\n".to_vec()),
        Just(b"MAIL FROM:<a@b.example> SIZE=100 SMTPUTF8\r\n".to_vec()),
        Just(b"RCPT TO:<c@d.example>\r\n".to_vec()),
        Just(b"RCPT TO:<unknown@d.example>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"BDAT 3\r\n".to_vec()),
        Just(b"BDAT 2 LAST\r\n".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"AUTH PLAIN\r\n".to_vec()),
        Just(b"AUTH LOGIN\r\n".to_vec()),
        Just(b"AUTH PLAIN AGFsaWNlAGNvcnJlY3QtaG9yc2U=\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"QUIT\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b".".to_vec()),
        Just(b"*\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[a-zA-Z0-9 .:<>@=]{0,30}\r\n".prop_map(String::into_bytes),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(token(), 0..40).prop_map(|tokens| tokens.concat())
}

fn config() -> impl Strategy<Value = CoreConfig> {
    prop_oneof![Just(mx()), Just(submissions())].prop_map(|config| CoreConfig {
        max_message_size: 64,
        max_recipients: 2,
        ..config
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes in arbitrary chunks: no panic, and the output of each round stays
    /// proportional to the input of that round.
    #[test]
    fn never_panics_and_output_is_bounded(
        config in config(),
        bytes in input(),
        chunk in 1usize..64,
        raw in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        for data in [&bytes, &raw] {
            let mut core = ServerCore::new(config.clone());
            let greeting = core.take_output();
            prop_assert!(!greeting.is_empty());
            for piece in data.chunks(chunk) {
                core.feed(piece);
                while let Some(event) = core.next_event() {
                    if event == Event::StartTls {
                        core.tls_started();
                    } else if let Some(answer) = service(&event) {
                        core.answer(answer);
                    }
                }
                let output = core.take_output();
                // The longest reply (EHLO, ~200 octets) answers a 7-octet command; the
                // error limit bounds the rest.
                prop_assert!(output.len() <= 64 * piece.len() + 256, "{} for {}", output.len(), piece.len());
                if core.should_close() {
                    break;
                }
            }
            core.feed_eof();
            prop_assert!(core.should_close());
            prop_assert_eq!(core.next_event(), None);
        }
    }

    /// Any input split at any chunk size gives the same session. (The handshake is never
    /// completed here, so everything after STARTTLS is dropped whatever the chunking.)
    #[test]
    fn chunking_never_changes_the_session(
        config in config(),
        bytes in input(),
        chunk in 1usize..32,
    ) {
        let steps = [Step::Client(bytes)];
        let whole = run(&config, &steps, &service, usize::MAX);
        let split = run(&config, &steps, &service, chunk);
        prop_assert_eq!(split, whole);
    }
}
