//! Runs scripted sessions against the core, the way the driver does, and replays each one
//! with the input split at every chunk size.

use sealpost_sasl::Mechanism;

use crate::core::{Answer, CoreConfig, Event, Reply, ServerCore, SessionInfo};

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

/// Everything observable about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transcript {
    pub(super) output: Vec<u8>,
    pub(super) events: Vec<Event>,
    pub(super) closed: bool,
    pub(super) session: SessionInfo,
}

impl Transcript {
    /// The output as text (lossy), for `contains` checks and messages.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// The reply lines, without CRLF.
    pub(super) fn lines(&self) -> Vec<String> {
        self.text()
            .split("\r\n")
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The code of each reply (the last line of multi-line replies).
    pub(super) fn codes(&self) -> Vec<u16> {
        self.lines()
            .iter()
            .filter(|line| line.as_bytes().get(3) != Some(&b'-'))
            .filter_map(|line| line.get(..3)?.parse().ok())
            .collect()
    }
}

/// How the test's service answers events (stateless, so that replays get the same answers).
pub(super) type Responder<'a> = &'a dyn Fn(&Event) -> Option<Answer>;

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
                    drain(&mut core, responder, &mut events);
                    output.extend(core.take_output());
                }
            }
            Step::TlsStarted => {
                core.tls_started();
                drain(&mut core, responder, &mut events);
            }
            Step::Eof => core.feed_eof(),
        }
        output.extend(core.take_output());
    }
    Transcript {
        output,
        events,
        closed: core.should_close(),
        session: core.session().clone(),
    }
}

fn drain(core: &mut ServerCore, responder: Responder<'_>, events: &mut Vec<Event>) {
    while let Some(event) = core.next_event() {
        let answer = responder(&event);
        events.push(event);
        if let Some(answer) = answer {
            assert!(core.answer(answer), "the answer fits the pending event");
        }
    }
}

/// Longest input replayed at every chunk size (every transcript in this suite is shorter);
/// a longer one would use a sample of sizes (every size up to 64, powers of two and their
/// neighbours, the whole input), since replaying every size costs O(len²).
const EXHAUSTIVE_LIMIT: usize = 80_000;

fn chunk_sizes(len: usize) -> Vec<usize> {
    if len <= EXHAUSTIVE_LIMIT {
        return (1..=len.max(1)).collect();
    }
    let mut sizes: Vec<usize> = (1..=64).collect();
    let mut power = 128;
    while power < len {
        sizes.extend([power - 1, power, power + 1]);
        power *= 2;
    }
    sizes.extend([997, 1000, 1001, len - 1, len]);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// Runs the session whole, then at every chunk size from 1 to the longest client write,
/// asserting identical transcripts (output, events, closed, session).
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
    for chunk in chunk_sizes(longest) {
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

/// The port-25 MTA: STARTTLS offered, no AUTH.
pub(super) fn mx() -> CoreConfig {
    CoreConfig {
        hostname: "mx.example".to_string(),
        max_message_size: 10_000,
        max_recipients: 3,
        max_errors: 20,
        offer_starttls: true,
        tls_active: false,
        auth_mechanisms: Vec::new(),
        auth_requires_tls: true,
        require_auth_for_mail: false,
        offer_dsn: false,
    }
}

/// Submission on 587: STARTTLS, then AUTH, then MAIL.
pub(super) fn submission() -> CoreConfig {
    CoreConfig {
        auth_mechanisms: vec![Mechanism::Plain, Mechanism::Login],
        require_auth_for_mail: true,
        ..mx()
    }
}

/// Submission with implicit TLS on 465.
pub(super) fn submissions() -> CoreConfig {
    CoreConfig {
        offer_starttls: false,
        tls_active: true,
        ..submission()
    }
}

pub(super) const PLAIN_ALICE: &str = "AGFsaWNlAGNvcnJlY3QtaG9yc2U=";

/// A service that accepts senders, recipients except `unknown...`, every message, and
/// alice's PLAIN/LOGIN credentials.
pub(super) fn service(event: &Event) -> Option<Answer> {
    Some(match event {
        Event::Mail { .. } => Answer::Accept(Reply::new(250, "2.1.0", "Sender OK")),
        Event::Rcpt { to, .. } if to.starts_with("unknown") => {
            Answer::Reject(Reply::new(550, "5.1.1", "No such user"))
        }
        Event::Rcpt { .. } => Answer::Accept(Reply::new(250, "2.1.5", "Recipient OK")),
        Event::Message { .. } => Answer::Accept(Reply::new(250, "2.0.0", "Queued")),
        Event::StartTls => return None,
        Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(response),
        } => auth_plain(response),
        Event::Auth {
            mechanism: Mechanism::Plain,
            initial_response: None,
        } => Answer::AuthChallenge(Vec::new()),
        Event::Auth {
            mechanism: Mechanism::Login,
            ..
        } => Answer::AuthChallenge(b"Username:".to_vec()),
        Event::AuthResponse { line } => match line.as_slice() {
            b"*" => Answer::AuthFailure(Reply::new(501, "5.7.0", "Authentication cancelled")),
            b"YWxpY2U=" => Answer::AuthChallenge(b"Password:".to_vec()),
            b"Y29ycmVjdC1ob3JzZQ==" => Answer::AuthSuccess {
                login: "alice@local.test".to_string(),
            },
            other => auth_plain(other),
        },
    })
}

fn auth_plain(response: &[u8]) -> Answer {
    if response == PLAIN_ALICE.as_bytes() {
        Answer::AuthSuccess {
            login: "alice@local.test".to_string(),
        }
    } else {
        Answer::AuthFailure(Reply::new(
            535,
            "5.7.8",
            "Authentication credentials invalid",
        ))
    }
}

/// `EHLO` + one transaction up to the 354, as the SM-* tests start.
pub(super) const PREFIX: &str =
    "EHLO t.test\r\nMAIL FROM:<s@ext.test>\r\nRCPT TO:<alice@local.test>\r\nDATA\r\n";
