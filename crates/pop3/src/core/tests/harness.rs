//! Runs scripted sessions against the core, the way the driver does, and replays each one
//! with the client's input split at every chunk size.

use sealpost_sasl::Mechanism;

use crate::core::{Answer, AuthAbort, CoreConfig, Event, Maildrop, MaildropEntry, ServerCore};

/// What happens next in a scripted session.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// The client sends these bytes.
    Client(Vec<u8>),
    /// The driver finished the TLS handshake.
    TlsStarted,
    /// The client closes the connection.
    Eof,
}

/// `Step::Client` from anything byte-like.
pub(super) fn client(bytes: impl AsRef<[u8]>) -> Step {
    Step::Client(bytes.as_ref().to_vec())
}

/// How the test's service answers an event.
#[derive(Debug, Clone)]
pub(super) enum Response {
    /// Answer with this (nothing for `StartTls`).
    Answer(Option<Answer>),
    /// `MessageFollows`, then these bytes fed in pieces of 7, then the end.
    Message(Vec<u8>),
    /// `MessageFollows`, these bytes, then the message cannot be read further.
    Broken(Vec<u8>),
}

/// Everything observable about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transcript {
    pub(super) output: Vec<u8>,
    pub(super) events: Vec<Event>,
    pub(super) closed: bool,
    pub(super) logged_in: bool,
}

impl Transcript {
    /// The output as text (lossy).
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// The output lines, without CRLF.
    pub(super) fn lines(&self) -> Vec<String> {
        self.text()
            .split("\r\n")
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The status lines (`+OK ...`, `-ERR ...`), in order.
    pub(super) fn statuses(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.starts_with("+OK") || line.starts_with("-ERR"))
            .collect()
    }
}

pub(super) type Responder<'a> = &'a dyn Fn(&Event) -> Response;

/// Runs `steps` with client bytes fed `chunk` bytes at a time.
pub(super) fn run(
    config: &CoreConfig,
    steps: &[Step],
    responder: Responder<'_>,
    chunk: usize,
) -> Transcript {
    let mut core = ServerCore::new(config.clone());
    let mut output = core.take_output();
    let mut events = Vec::new();
    for step in steps {
        match step {
            Step::Client(bytes) => {
                for piece in bytes.chunks(chunk.max(1)) {
                    core.feed(piece);
                    drain(&mut core, responder, &mut events, &mut output);
                }
            }
            Step::TlsStarted => {
                core.tls_started();
                drain(&mut core, responder, &mut events, &mut output);
            }
            Step::Eof => core.feed_eof(),
        }
        output.extend(core.take_output());
    }
    Transcript {
        output,
        events,
        closed: core.should_close(),
        logged_in: core.is_logged_in(),
    }
}

fn drain(
    core: &mut ServerCore,
    responder: Responder<'_>,
    events: &mut Vec<Event>,
    output: &mut Vec<u8>,
) {
    while let Some(event) = core.next_event() {
        let response = responder(&event);
        events.push(event);
        match response {
            Response::Answer(None) => {}
            Response::Answer(Some(answer)) => {
                assert!(core.answer(answer), "the answer fits the pending event");
            }
            Response::Message(bytes) | Response::Broken(bytes)
                if !core.answer(Answer::MessageFollows) =>
            {
                panic!("MessageFollows does not fit ({} bytes)", bytes.len());
            }
            Response::Message(bytes) => {
                for piece in bytes.chunks(7) {
                    output.extend(core.take_output());
                    if !core.message_data(piece) {
                        break;
                    }
                }
                core.message_end();
            }
            Response::Broken(bytes) => {
                core.message_data(&bytes);
                core.message_abort();
            }
        }
        output.extend(core.take_output());
    }
    output.extend(core.take_output());
}

/// Runs the session whole, then at every chunk size from 1 to the longest client write,
/// asserting identical transcripts.
pub(super) fn transcript(
    config: &CoreConfig,
    steps: &[Step],
    responder: Responder<'_>,
) -> Transcript {
    let whole = run(config, steps, responder, usize::MAX);
    let longest = steps
        .iter()
        .map(|step| match step {
            Step::Client(bytes) => bytes.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    for chunk in 1..=longest.max(1) {
        let split = run(config, steps, responder, chunk);
        assert_eq!(
            split,
            whole,
            "chunk size {chunk} changed the session:\nsplit: {}\nwhole: {}",
            split.text(),
            whole.text()
        );
    }
    whole
}

/// Port 995: TLS from the start.
pub(super) fn pop3s() -> CoreConfig {
    CoreConfig::new("pop.example", false, true)
}

/// Port 110: STLS offered.
pub(super) fn pop3() -> CoreConfig {
    CoreConfig::new("pop.example", true, false)
}

/// `\0alice\0correct-horse` (SECURITY-TESTS §0).
pub(super) const PLAIN_ALICE: &str = "AGFsaWNlAGNvcnJlY3QtaG9yc2U=";

/// The three messages of the test maildrop.
pub(super) fn messages() -> Vec<Vec<u8>> {
    vec![
        b"Subject: one\r\n\r\nFirst.\r\n".to_vec(),
        b"Subject: two\r\nX: y\r\n\r\n.\r\n..x\r\nline 3\r\nline 4\r\n".to_vec(),
        b"Subject: three\nbare LF\n".to_vec(),
    ]
}

pub(super) fn maildrop() -> Maildrop {
    Maildrop::new(
        messages()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                MaildropEntry::new(crate::core::wire_size(m), format!("9.{}", i + 1))
            })
            .collect(),
    )
}

/// A service with alice's credentials (USER/PASS `alice`/`correct-horse`, or AUTH PLAIN),
/// `busy` locked, the three messages, and every update succeeding.
pub(super) fn service(event: &Event) -> Response {
    let answer = match event {
        Event::StartTls => None,
        Event::Login { user, password } => {
            Some(match (user.as_str(), password.expose().as_str()) {
                ("alice", "correct-horse") => Answer::LoggedIn(maildrop()),
                ("busy", "correct-horse") => Answer::InUse,
                ("flaky", _) => Answer::TempFailure,
                _ => Answer::AuthFailed,
            })
        }
        Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(response),
        } => Some(plain(response)),
        Event::Auth { .. } => Some(Answer::AuthChallenge(Vec::new())),
        Event::AuthResponse { line } => Some(match line.as_slice() {
            b"*" => Answer::AuthAborted(AuthAbort::Cancelled),
            b"####" => Answer::AuthAborted(AuthAbort::Malformed),
            other => plain(other),
        }),
        Event::Retrieve { index, .. } => {
            return match messages().get(*index) {
                Some(message) => Response::Message(message.clone()),
                None => Response::Answer(Some(Answer::MessageGone)),
            };
        }
        Event::Update { .. } => Some(Answer::Updated),
    };
    Response::Answer(answer)
}

fn plain(response: &[u8]) -> Answer {
    if response == PLAIN_ALICE.as_bytes() {
        Answer::LoggedIn(maildrop())
    } else {
        Answer::AuthFailed
    }
}

/// `USER alice` + `PASS correct-horse`.
pub(super) const LOGIN: &str = "USER alice\r\nPASS correct-horse\r\n";
