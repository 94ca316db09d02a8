//! Runs scripted sessions against the core the way the driver does, and replays each one
//! with the client's bytes split at every chunk size.

use sealpost_sasl::{Mechanism, SaslExchange, Step as SaslStep};

use crate::core::{
    Code, CommandBody, Completion, CoreConfig, Event, FetchItem, Flag, ImapCore, Response,
    SessionInfo, Transition,
};

/// What happens next in a scripted session.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// The client sends these bytes.
    Client(Vec<u8>),
    /// The driver finished the TLS handshake.
    TlsStarted,
    /// The service's IDLE keep-alive timer fired.
    Keepalive,
    /// The read timeout elapsed.
    Timeout,
    /// The client closes the connection.
    Eof,
    /// The service sets what the account may still store.
    Allowance(Option<u64>),
}

pub(super) fn client(bytes: impl AsRef<[u8]>) -> Step {
    Step::Client(bytes.as_ref().to_vec())
}

/// What the test service does in answer to an event.
#[derive(Debug, Clone)]
pub(super) enum Action {
    Send(Response),
    Finish(Completion),
    AuthContinue(Vec<u8>),
    IdleAccept,
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
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// The response lines without CRLF (literal data splits lines, which is fine for
    /// the checks made).
    pub(super) fn lines(&self) -> Vec<String> {
        self.text()
            .split("\r\n")
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The lines that start with `prefix`.
    pub(super) fn starting(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.starts_with(prefix))
            .collect()
    }

    pub(super) fn has_line(&self, line: &str) -> bool {
        self.lines().iter().any(|l| l == line)
    }

    /// The continuation requests sent.
    pub(super) fn continuations(&self) -> usize {
        self.lines()
            .iter()
            .filter(|line| line.starts_with("+ "))
            .count()
    }

    pub(super) fn commands(&self) -> Vec<CommandBody> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Command(command) => Some(command.body.clone()),
                _ => None,
            })
            .collect()
    }
}

/// How the test's service answers events (stateless, so replays get the same answers).
pub(super) type Responder<'a> = &'a dyn Fn(&Event, &SessionInfo) -> Vec<Action>;

pub(super) fn run(
    config: &CoreConfig,
    steps: &[Step],
    responder: Responder<'_>,
    chunk: usize,
) -> Transcript {
    let mut core = ImapCore::new(config.clone());
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
            Step::Keepalive => core.idle_keepalive(),
            Step::Timeout => core.autologout(),
            Step::Eof => core.feed_eof(),
            Step::Allowance(octets) => core.set_append_allowance(*octets),
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

fn drain(core: &mut ImapCore, responder: Responder<'_>, events: &mut Vec<Event>) {
    while let Some(event) = core.next_event() {
        let actions = responder(&event, core.session());
        events.push(event);
        for action in actions {
            let accepted = match action {
                Action::Send(response) => {
                    core.send(&response);
                    true
                }
                Action::Finish(completion) => core.finish(completion),
                Action::AuthContinue(challenge) => core.auth_continue(&challenge),
                Action::IdleAccept => core.idle_accept(),
            };
            assert!(accepted, "the core refused a service action");
        }
    }
}

/// Longest client write replayed at every chunk size; longer ones use a sample (every
/// size up to 64, powers of two and their neighbours, the whole), since replaying every
/// size costs O(len²).
const EXHAUSTIVE_LIMIT: usize = 3000;

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
    sizes.extend([4095, 4096, 4097, len - 1, len]);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// Runs the session whole, then at every chunk size, asserting identical transcripts.
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

/// Port 993: implicit TLS.
pub(super) fn imaps() -> CoreConfig {
    CoreConfig::default()
}

/// Port 143: STARTTLS offered, LOGINDISABLED before it.
pub(super) fn imap_starttls() -> CoreConfig {
    CoreConfig {
        tls_active: false,
        offer_starttls: true,
        ..CoreConfig::default()
    }
}

pub(super) const PLAIN_ALICE: &str = "AGFsaWNlAGNvcnJlY3QtaG9yc2U=";

fn check_plain(response: &[u8]) -> Completion {
    let (_, step) = SaslExchange::start(Mechanism::Plain, Some(response));
    match step {
        Ok(SaslStep::Done(credentials))
            if credentials.authcid == "alice"
                && credentials.password.expose() == "correct-horse" =>
        {
            login_ok()
        }
        Err(sealpost_sasl::SaslError::Cancelled) => Completion::bad("Authentication cancelled"),
        _ => Completion::no("Authentication failed").with_code(Code::AuthenticationFailed),
    }
}

fn login_ok() -> Completion {
    Completion::ok("Logged in")
        .with_code(Code::Capability)
        .with_transition(Transition::Authenticated {
            user: "alice".into(),
        })
}

/// A service for a mailbox of three messages that accepts alice's credentials.
pub(super) fn service(event: &Event, session: &SessionInfo) -> Vec<Action> {
    let finish = |completion: Completion| vec![Action::Finish(completion)];
    let ok = |text: &str| vec![Action::Finish(Completion::ok(text))];
    let command = match event {
        Event::Command(command) => &command.body,
        Event::AuthResponse(line) => return finish(check_plain(line.expose())),
        Event::IdleDone { done: true } => return ok("IDLE terminated"),
        Event::IdleDone { done: false } => return finish(Completion::bad("Expected DONE")),
        Event::StartTls => return Vec::new(),
    };
    match command {
        CommandBody::Login { username, password } => {
            if username == "alice" && password.expose() == "correct-horse" {
                finish(login_ok())
            } else {
                finish(Completion::no("Login failed").with_code(Code::AuthenticationFailed))
            }
        }
        CommandBody::Authenticate {
            initial_response: Some(response),
            ..
        } => finish(check_plain(response.expose())),
        CommandBody::Authenticate {
            initial_response: None,
            ..
        } => vec![Action::AuthContinue(Vec::new())],
        CommandBody::Select { read_only, .. } => vec![
            Action::Send(Response::Flags(vec![Flag::Seen, Flag::Deleted])),
            Action::Send(Response::Exists(3)),
            Action::Finish(
                Completion::ok("SELECT completed")
                    .with_code(if *read_only {
                        Code::ReadOnly
                    } else {
                        Code::ReadWrite
                    })
                    .with_transition(Transition::Selected {
                        read_only: *read_only,
                    }),
            ),
        ],
        CommandBody::Close | CommandBody::Unselect => {
            finish(Completion::ok("Closed").with_transition(Transition::Unselected))
        }
        CommandBody::Idle => vec![Action::IdleAccept],
        CommandBody::Fetch { set, .. } => {
            let mut actions: Vec<Action> = set
                .iter_existing(3)
                .map(|seq| {
                    Action::Send(Response::Fetch {
                        seq,
                        items: vec![FetchItem::Flags(vec![Flag::Seen])],
                    })
                })
                .collect();
            actions.push(Action::Finish(Completion::ok("FETCH completed")));
            actions
        }
        CommandBody::Append { messages, .. } => finish(Completion::ok(format!(
            "APPEND of {} message(s) completed",
            messages.len()
        ))),
        _ if session.user.is_none() && !matches!(command, CommandBody::Id { .. }) => {
            finish(Completion::bad("unexpected"))
        }
        _ => ok("completed"),
    }
}
