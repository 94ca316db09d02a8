//! Runs scripted server transcripts against the client core, the way the driver does, and
//! replays each one with the server's bytes split at every chunk size.

use std::time::Duration;

use crate::client::{
    BODY_CHUNK, ClientConfig, ClientCore, Envelope, Event, MessageBody, SendError, UsageError,
};

/// What happens next in a scripted session.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// The server sends these bytes.
    Server(Vec<u8>),
    /// The caller starts a transaction.
    Send(Envelope, MessageBody),
    /// The caller asks for STARTTLS.
    StartTls,
    /// The driver finished the TLS handshake.
    TlsStarted,
    /// The caller ends the session.
    Quit,
    /// The server closes the connection.
    Eof,
    /// The driver's wait passed the core's timeout.
    TimedOut,
}

/// `Step::Server` from anything byte-like.
pub(super) fn server(bytes: impl AsRef<[u8]>) -> Step {
    Step::Server(bytes.as_ref().to_vec())
}

/// `Step::Send` with a body from anything byte-like.
pub(super) fn send(envelope: &Envelope, body: impl AsRef<[u8]>) -> Step {
    Step::Send(envelope.clone(), MessageBody::from(body.as_ref().to_vec()))
}

/// Everything observable about a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Transcript {
    /// Every byte the client wrote.
    pub(super) output: Vec<u8>,
    pub(super) events: Vec<Event>,
    /// What each `send` returned, in order.
    pub(super) sends: Vec<Result<(), SendError>>,
    /// What each `start_tls` and `quit` returned, in order.
    pub(super) calls: Vec<Result<(), UsageError>>,
    /// `timeout()` after each step.
    pub(super) timeouts: Vec<Option<Duration>>,
    pub(super) closed: bool,
    /// The largest single `take_output`.
    pub(super) largest_write: usize,
}

impl Transcript {
    /// The output as text (lossy).
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

pub(super) fn config() -> ClientConfig {
    ClientConfig {
        hostname: "client.example".to_string(),
        tls_active: false,
    }
}

pub(super) const GREETING: &str = "220 mx.example ESMTP ready\r\n";

/// A 250 EHLO reply announcing `keywords`.
pub(super) fn ehlo(keywords: &[&str]) -> String {
    let mut lines = vec!["mx.example greets client.example"];
    lines.extend_from_slice(keywords);
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let separator = if index == last { ' ' } else { '-' };
            format!("250{separator}{line}\r\n")
        })
        .collect()
}

/// A server with most extensions, PIPELINING included.
pub(super) const FULL: &[&str] = &[
    "PIPELINING",
    "SIZE 100000",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "CHUNKING",
    "STARTTLS",
];

/// The same without PIPELINING.
pub(super) const NO_PIPELINING: &[&str] = &[
    "SIZE 100000",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
];

/// The steps up to `Ready` with these extensions.
pub(super) fn ready(keywords: &[&str]) -> Vec<Step> {
    vec![server(GREETING), server(ehlo(keywords))]
}

/// Runs `steps` with server bytes fed `chunk` bytes at a time.
pub(super) fn run(config: &ClientConfig, steps: &[Step], chunk: usize) -> Transcript {
    let mut core = ClientCore::new(config.clone()).expect("valid config");
    let mut transcript = Transcript::default();
    for step in steps {
        match step {
            Step::Server(bytes) => {
                for piece in bytes.chunks(chunk.max(1)) {
                    core.feed(piece);
                    drain(&mut core, &mut transcript);
                    flush(&mut core, &mut transcript);
                }
            }
            Step::Send(envelope, body) => transcript.sends.push(core.send(envelope, body.clone())),
            Step::StartTls => transcript.calls.push(core.start_tls()),
            Step::TlsStarted => core.tls_started(),
            Step::Quit => transcript.calls.push(core.quit()),
            Step::Eof => core.feed_eof(),
            Step::TimedOut => core.timed_out(),
        }
        drain(&mut core, &mut transcript);
        flush(&mut core, &mut transcript);
        transcript.timeouts.push(core.timeout());
    }
    transcript.closed = core.should_close();
    transcript
}

fn drain(core: &mut ClientCore, transcript: &mut Transcript) {
    while let Some(event) = core.next_event() {
        transcript.events.push(event);
    }
}

/// Writes everything, as the driver does before it reads again.
fn flush(core: &mut ClientCore, transcript: &mut Transcript) {
    loop {
        let out = core.take_output();
        if out.is_empty() {
            assert!(!core.has_output());
            return;
        }
        assert!(out.len() <= BODY_CHUNK + 1024, "one write of {}", out.len());
        transcript.largest_write = transcript.largest_write.max(out.len());
        transcript.output.extend(out);
    }
}

/// Runs the session whole, then at every chunk size from 1 to the longest server write,
/// asserting identical transcripts.
pub(super) fn transcript(steps: &[Step]) -> Transcript {
    transcript_with(&config(), steps)
}

pub(super) fn transcript_with(config: &ClientConfig, steps: &[Step]) -> Transcript {
    let whole = run(config, steps, usize::MAX);
    let longest = steps
        .iter()
        .map(|step| match step {
            Step::Server(bytes) => bytes.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    for chunk in 1..=longest {
        let split = run(config, steps, chunk);
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

/// The `Transaction` events of a transcript.
pub(super) fn results(transcript: &Transcript) -> Vec<crate::client::TransactionResult> {
    transcript
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Transaction(result) => Some(result.clone()),
            _ => None,
        })
        .collect()
}

/// The last event, which ends most transcripts.
pub(super) fn last_event(transcript: &Transcript) -> Option<&Event> {
    transcript.events.last()
}
