//! Property tests: arbitrary input never panics, output stays bounded, and chunking never
//! changes the session.

use proptest::prelude::*;

use super::harness::{Step, imap_starttls, imaps, run, service};
use crate::core::{CoreConfig, Event, ImapCore, Limits};

/// Pieces that steer the input into interesting states.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a LOGIN alice correct-horse\r\n".to_vec()),
        Just(b"a AUTHENTICATE PLAIN\r\n".to_vec()),
        Just(b"AGFsaWNlAGNvcnJlY3QtaG9yc2U=\r\n".to_vec()),
        Just(b"b SELECT INBOX\r\n".to_vec()),
        Just(b"c FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]<0.10>)\r\n".to_vec()),
        Just(b"d SEARCH RETURN (MIN) OR (NOT SEEN) UID 1:*\r\n".to_vec()),
        Just(b"e STORE 1 +FLAGS (\\Seen)\r\n".to_vec()),
        Just(b"f APPEND INBOX {3}\r\n".to_vec()),
        Just(b"f APPEND INBOX {3+}\r\n".to_vec()),
        Just(b"g LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (STATUS (MESSAGES))\r\n".to_vec()),
        Just(b"h IDLE\r\n".to_vec()),
        Just(b"DONE\r\n".to_vec()),
        Just(b"i STARTTLS\r\n".to_vec()),
        Just(b"j ENABLE IMAP4rev2 QRESYNC\r\n".to_vec()),
        Just(b"k LOGOUT\r\n".to_vec()),
        Just(b"{5}\r\n".to_vec()),
        Just(b"{5000+}\r\n".to_vec()),
        Just(b"~{2}\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"*\r\n".to_vec()),
        Just(b"(((((".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[a-zA-Z0-9 ()\\[\\]<>{}\"*%:,.+~$\\\\-]{0,30}\r\n".prop_map(String::into_bytes),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(token(), 0..40).prop_map(|tokens| tokens.concat())
}

fn config() -> impl Strategy<Value = CoreConfig> {
    prop_oneof![Just(imaps()), Just(imap_starttls())].prop_map(|config| CoreConfig {
        limits: Limits {
            max_line: 256,
            max_literal: 64,
            max_command: 1024,
            max_append: 128,
            ..Limits::default()
        },
        ..config
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes in arbitrary chunks: no panic, the core always makes progress, and
    /// each round's output stays proportional to its input.
    #[test]
    fn never_panics_and_output_is_bounded(
        config in config(),
        bytes in input(),
        chunk in 1usize..64,
        raw in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        for data in [&bytes, &raw] {
            let mut core = ImapCore::new(config.clone());
            prop_assert!(!core.take_output().is_empty());
            for piece in data.chunks(chunk) {
                core.feed(piece);
                let mut events = 0;
                while let Some(event) = core.next_event() {
                    events += 1;
                    prop_assert!(events <= piece.len() + 1, "more events than input octets");
                    if event == Event::StartTls {
                        core.tls_started();
                    } else {
                        for action in service(&event, core.session()) {
                            match action {
                                super::harness::Action::Send(response) => core.send(&response),
                                super::harness::Action::Finish(completion) => { core.finish(completion); }
                                super::harness::Action::AuthContinue(challenge) => { core.auth_continue(&challenge); }
                                super::harness::Action::IdleAccept => { core.idle_accept(); }
                            }
                        }
                    }
                }
                let output = core.take_output();
                // The longest answer (a login OK with capabilities, or three FETCH lines)
                // follows a short command; the BAD limit bounds the rest.
                prop_assert!(output.len() <= 64 * piece.len() + 1024, "{} for {}", output.len(), piece.len());
                if core.should_close() {
                    prop_assert!(!core.wants_input());
                    break;
                }
            }
        }
    }

    /// The same input in any chunks gives the same session.
    #[test]
    fn chunking_never_matters(config in config(), bytes in input(), chunk in 1usize..17) {
        let steps = [Step::Client(bytes)];
        let whole = run(&config, &steps, &service, usize::MAX);
        let split = run(&config, &steps, &service, chunk);
        prop_assert_eq!(split, whole);
    }
}
