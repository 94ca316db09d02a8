//! The server state machine: input framing, limits, and the types that are the contract
//! between the core and the service. Command handling is in [`super::session`].

use std::fmt;

use sealpost_sasl::Mechanism;
use sealpost_types::Secret;

use super::command;
use super::encoder::MessageEncoder;
use super::maildrop::Maildrop;
use super::response::{self, RespCode};

/// What the service tells the core about the port and its limits.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Our name in the greeting and the QUIT response.
    pub hostname: String,
    /// The port offers STLS (110) until TLS is active (RFC 2595 §4).
    pub offer_stls: bool,
    /// TLS is already active (995 after the implicit handshake).
    pub tls_active: bool,
    /// SASL mechanisms offered once TLS is active (RFC 5034).
    pub mechanisms: Vec<Mechanism>,
    /// Bad commands before login; the one that reaches it is answered, then the session
    /// closes (SECURITY-TESTS TLS-07/TLS-08: at most 3 before authentication).
    pub max_errors_before_login: usize,
    /// Bad commands after login before the session closes (Dovecot: 20).
    pub max_errors: usize,
    /// Failed logins (USER/PASS or AUTH) before the session closes (SECURITY-TESTS AU-09).
    pub max_auth_failures: usize,
}

impl CoreConfig {
    /// The limits sealpost uses, for a port with or without TLS already active.
    pub fn new(hostname: &str, offer_stls: bool, tls_active: bool) -> CoreConfig {
        CoreConfig {
            hostname: hostname.to_string(),
            offer_stls,
            tls_active,
            mechanisms: vec![Mechanism::Plain],
            max_errors_before_login: 3,
            max_errors: 20,
            max_auth_failures: 3,
        }
    }
}

/// Something the service must do or decide. Every event but `StartTls` waits for one
/// [`ServerCore::answer`] before the core goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// STLS accepted: the core has queued `+OK` and dropped every byte buffered after the
    /// command. The driver writes the output, upgrades the stream (which drops its own
    /// buffer too), then calls [`ServerCore::tls_started`]. No answer.
    StartTls,
    /// USER then PASS (RFC 1939 §7). Answer `LoggedIn`, `AuthFailed`, `InUse` or
    /// `TempFailure`.
    Login {
        user: String,
        password: Secret<String>,
    },
    /// AUTH with an offered mechanism (RFC 5034 §4); `initial_response` is the base64 text
    /// as sent (`=` arrives empty), ready for `sealpost_sasl::SaslExchange::start`. Answer as
    /// for `Login`, or `AuthChallenge` / `AuthAborted`.
    Auth {
        mechanism: Mechanism,
        initial_response: Option<Vec<u8>>,
    },
    /// A client line after a `+ ` challenge, line end removed (`*` cancels, RFC 5034 §4).
    AuthResponse { line: Vec<u8> },
    /// RETR (`top_lines` None) or TOP of the message at 0-based `index` of the maildrop.
    /// Answer `MessageFollows`, then give the message's bytes to
    /// [`ServerCore::message_data`] and end with [`ServerCore::message_end`]; or answer
    /// `MessageGone` / `TempFailure`.
    Retrieve {
        index: usize,
        top_lines: Option<u64>,
    },
    /// QUIT in the TRANSACTION state: the UPDATE state (RFC 1939 §6). Remove the messages
    /// at these 0-based indexes durably, then answer `Updated` (or `TempFailure`).
    Update { deleted: Vec<usize> },
}

/// Why an AUTH exchange ended without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAbort {
    /// The client sent `*` (RFC 5034 §4).
    Cancelled,
    /// Not base64, or not what the mechanism expects.
    Malformed,
}

/// The service's answer to the pending event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The login succeeded and the maildrop is locked: the TRANSACTION state.
    LoggedIn(Maildrop),
    /// Wrong user or password (one answer for both, RFC 3206 `[AUTH]`).
    AuthFailed,
    /// The credentials are right but another session holds the maildrop (RFC 2449 §8.1.1).
    InUse,
    /// Send `+ <base64 of these bytes>` and wait for the client's next line (RFC 5034 §4).
    AuthChallenge(Vec<u8>),
    AuthAborted(AuthAbort),
    /// A temporary failure (RFC 3206 `[SYS/TEMP]`).
    TempFailure,
    /// The message can be read: the core sends `+OK` and waits for its bytes.
    MessageFollows,
    /// The message was removed since login (by an IMAP session).
    MessageGone,
    /// The deleted messages are removed durably: `+OK` and close.
    Updated,
}

/// RFC 2449 §4: a command line is at most 255 octets; sealpost accepts up to this many
/// (CRLF included) for robustness. Longer: `-ERR`, and the line is discarded up to its LF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5034 §4: an AUTH command with its initial response fits in 255 octets (CRLF
/// included); a longer one is refused (SECURITY-TESTS AU-09).
pub const MAX_AUTH_COMMAND_LINE: usize = 255;
/// Longest client line of an AUTH exchange, line end excluded (the SMTP limit of RFC 4954
/// §4; far above any PLAIN response).
pub const MAX_AUTH_LINE: usize = 12_288;
/// An over-long line is discarded up to its LF; after this many octets without one the
/// session ends (SECURITY-TESTS PO-03, RL-02).
pub const MAX_DISCARDED_LINE: usize = 1 << 20;
/// NOOPs answered `+OK` before login (where RFC 1939 does not define NOOP but clients and
/// probes send it, SECURITY-TESTS PO-01); further ones are bad commands, so that a client
/// cannot hold an unauthenticated session open with them.
pub const MAX_NOOPS_BEFORE_LOGIN: usize = 10;
/// Unprocessed input the core holds at most (the driver reads only when the core needs
/// input, so this is never reached by a well-behaved driver).
pub const MAX_BUFFERED_INPUT: usize = 1 << 20;

/// Where the session is in the protocol (RFC 1939 §3).
pub(super) enum State {
    /// Before login; the name of a USER command waiting for its PASS.
    Authorization {
        user: Option<String>,
    },
    Transaction(Maildrop),
}

/// Where the input is.
pub(super) enum Phase {
    Command,
    /// After a `+ ` challenge: the next line is an AUTH response.
    AuthLine,
    Pending(Pending),
    /// STLS was accepted; input is dropped until [`ServerCore::tls_started`].
    AwaitingTls,
    /// A RETR/TOP response is being sent; the service feeds the message bytes.
    Streaming(MessageEncoder),
}

/// The event waiting for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Login,
    Auth,
    Retrieve {
        index: usize,
        top_lines: Option<u64>,
    },
    Update,
}

/// What one processing step produced.
pub(super) enum Flow {
    Event(Event),
    Continue,
    NeedInput,
}

/// The POP3 server state machine of one session.
pub struct ServerCore {
    pub(super) config: CoreConfig,
    pub(super) state: State,
    pub(super) phase: Phase,
    pub(super) tls: bool,
    input: Vec<u8>,
    pos: usize,
    pub(super) output: Vec<u8>,
    errors: usize,
    pub(super) auth_failures: usize,
    pub(super) noops_before_login: usize,
    closing: bool,
    /// Discarding an over-long line up to its LF: octets discarded so far.
    discarding: Option<usize>,
}

impl fmt::Debug for ServerCore {
    // No buffers: they may hold credentials and message content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCore")
            .field("logged_in", &self.is_logged_in())
            .field("tls", &self.tls)
            .field("errors", &self.errors)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl ServerCore {
    /// A new session; the greeting is queued as output.
    pub fn new(config: CoreConfig) -> Self {
        let mut core = ServerCore {
            tls: config.tls_active,
            config,
            state: State::Authorization { user: None },
            phase: Phase::Command,
            input: Vec::new(),
            pos: 0,
            output: Vec::new(),
            errors: 0,
            auth_failures: 0,
            noops_before_login: 0,
            closing: false,
            discarding: None,
        };
        // RFC 1939 §4: the greeting is a positive response; no APOP timestamp (APOP is not
        // offered: its MD5 challenge needs the password stored in the clear).
        let greeting = format!("{} POP3 server ready", core.config.hostname);
        response::ok(&mut core.output, &greeting);
        core
    }

    /// Bytes read from the client. Dropped while STLS waits for the handshake (RFC 2595 §4,
    /// CVE-2011-0411) and once the session is closing.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closing || matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        if self.input.len() > MAX_BUFFERED_INPUT {
            response::err(&mut self.output, None, "Too much unprocessed input");
            self.close();
            return;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The client closed its side. RFC 1939 §6: without QUIT the session never reaches the
    /// UPDATE state, so nothing marked deleted is removed.
    pub fn feed_eof(&mut self) {
        self.close();
    }

    /// Processes buffered input: queues the responses the core gives alone and returns the
    /// next event. `None`: more input is needed, an event waits for its answer, a message
    /// is being sent, STLS waits for the handshake, or the session is closing.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.closing {
                return None;
            }
            let flow = match self.phase {
                Phase::Pending(_) | Phase::AwaitingTls | Phase::Streaming(_) => return None,
                Phase::Command => self.step_line(false),
                Phase::AuthLine => self.step_line(true),
            };
            match flow {
                Flow::Event(event) => return Some(event),
                Flow::Continue => {}
                Flow::NeedInput => return None,
            }
        }
    }

    /// The service's answer to the pending event. Returns `false` when nothing was pending
    /// (the answer is ignored) or when the answer does not fit the event (the event is then
    /// settled with a `[SYS/TEMP]` error so the session cannot hang).
    pub fn answer(&mut self, answer: Answer) -> bool {
        let Phase::Pending(pending) = self.phase else {
            return false;
        };
        self.phase = Phase::Command;
        self.settle(pending, answer)
    }

    /// The driver finished the TLS handshake after [`Event::StartTls`]. RFC 2595 §4: the
    /// client's earlier state is forgotten (a USER name), every byte received before the
    /// handshake is dropped, and STLS is no longer offered.
    pub fn tls_started(&mut self) {
        if !matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        self.tls = true;
        self.state = State::Authorization { user: None };
        self.drop_input();
        self.phase = Phase::Command;
    }

    /// After [`Answer::MessageFollows`]: the next bytes of the message, in order. Returns
    /// whether more are wanted (false once TOP has its lines, or when no message is being
    /// sent).
    pub fn message_data(&mut self, bytes: &[u8]) -> bool {
        match &mut self.phase {
            Phase::Streaming(encoder) => {
                encoder.encode(bytes, &mut self.output);
                encoder.wants_more()
            }
            _ => false,
        }
    }

    /// Every byte of the message was given: ends the multi-line response (RFC 1939 §3).
    pub fn message_end(&mut self) {
        if let Phase::Streaming(encoder) = &mut self.phase {
            encoder.finish(&mut self.output);
            response::end(&mut self.output);
            self.phase = Phase::Command;
        }
    }

    /// The message could not be read to its end after `+OK` went out. The response cannot
    /// be completed honestly, and a terminating line would present a truncated message as
    /// whole: the session closes without one.
    pub fn message_abort(&mut self) {
        if matches!(self.phase, Phase::Streaming(_)) {
            self.phase = Phase::Command;
            self.close();
        }
    }

    /// The bytes to write to the client (taken: the buffer is emptied).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Octets of output waiting (the driver writes while streaming once this is large).
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// After QUIT, too many errors or failures, an unrecoverable framing error or EOF:
    /// write the remaining output, then close.
    pub fn should_close(&self) -> bool {
        self.closing
    }

    /// Whether the session is in the TRANSACTION state.
    pub fn is_logged_in(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    /// Whether part of a command line has arrived (the driver's per-command deadline runs
    /// from its first byte, so trickling bytes cannot hold a session, SECURITY-TESTS PO-08).
    pub fn has_partial_input(&self) -> bool {
        self.discarding.is_some() || self.pos < self.input.len()
    }

    /// The maildrop, in the TRANSACTION state.
    pub fn maildrop(&self) -> Option<&Maildrop> {
        match &self.state {
            State::Transaction(maildrop) => Some(maildrop),
            State::Authorization { .. } => None,
        }
    }

    /// Whether credentials are accepted now: only over TLS (RFC 2595 §4, RFC 8314 §3;
    /// SECURITY-TESTS ST-06, PO-02).
    pub(super) fn auth_offered(&self) -> bool {
        self.tls
    }

    /// Whether STLS is offered now (RFC 2595 §4: not once TLS is active).
    pub(super) fn stls_offered(&self) -> bool {
        self.config.offer_stls && !self.tls && !self.is_logged_in()
    }

    /// Answers a bad command (unknown, syntax, wrong state) with `-ERR text` and counts it;
    /// the one that reaches the limit closes the session (SECURITY-TESTS TLS-07, TLS-08).
    pub(super) fn bad(&mut self, text: &str) {
        response::err(&mut self.output, None, text);
        self.errors = self.errors.saturating_add(1);
        let limit = if self.is_logged_in() {
            self.config.max_errors
        } else {
            self.config.max_errors_before_login
        };
        if self.errors >= limit.max(1) {
            self.close();
        }
    }

    /// Forgets earlier bad commands (a successful login starts a new count).
    pub(super) fn forgive(&mut self) {
        self.errors = 0;
    }

    pub(super) fn close(&mut self) {
        self.closing = true;
        self.drop_input();
    }

    /// Forgets every buffered input byte (STLS, close).
    pub(super) fn drop_input(&mut self) {
        self.input = Vec::new();
        self.pos = 0;
        self.discarding = None;
    }

    fn unread(&self) -> &[u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    /// One command line or AUTH response line.
    fn step_line(&mut self, auth: bool) -> Flow {
        if let Some(discarded) = self.discarding {
            return self.discard_line(discarded);
        }
        let available = self.unread();
        let Some(&first) = available.first() else {
            return Flow::NeedInput;
        };
        // A command starts with a letter: TLS records, binary and other protocols sent to
        // the port end the session at once (ALPACA; SECURITY-TESTS TLS-07, TLS-10).
        if !auth && !first.is_ascii_alphabetic() && first != b'\r' && first != b'\n' {
            response::err(&mut self.output, None, "Not a POP3 command, closing");
            self.close();
            return Flow::Continue;
        }
        let limit = if auth {
            MAX_AUTH_LINE + 2
        } else {
            MAX_COMMAND_LINE
        };
        let window = available.get(..limit).unwrap_or(available);
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if available.len() < limit {
                return Flow::NeedInput;
            }
            // Too long: refuse now and drop the rest of the line without buffering it.
            match available.iter().position(|&b| b == b'\n') {
                Some(lf) => self.pos += lf + 1,
                None => {
                    self.discarding = Some(available.len());
                    self.pos = self.input.len();
                }
            }
            if auth {
                self.phase = Phase::Command;
                self.auth_failed_with(None, "Authentication line too long");
            } else {
                // RFC 2449 §4: commands are at most 255 octets.
                self.bad("Line too long");
            }
            return Flow::Continue;
        };
        let raw = window.get(..lf).unwrap_or_default();
        // RFC 1939 §3: lines end with CRLF; a bare LF is accepted as well.
        let line = raw.strip_suffix(b"\r").unwrap_or(raw).to_vec();
        self.pos += lf + 1;
        if auth {
            self.phase = Phase::Pending(Pending::Auth);
            return Flow::Event(Event::AuthResponse { line });
        }
        if command::is_forbidden(&line) {
            response::err(&mut self.output, None, "Not a POP3 command, closing");
            self.close();
            return Flow::Continue;
        }
        self.command_line(&line, lf + 1)
    }

    fn discard_line(&mut self, discarded: usize) -> Flow {
        let available = self.unread();
        if let Some(lf) = available.iter().position(|&b| b == b'\n') {
            self.pos += lf + 1;
            self.discarding = None;
            return Flow::Continue;
        }
        let discarded = discarded.saturating_add(available.len());
        self.pos = self.input.len();
        if discarded > MAX_DISCARDED_LINE {
            response::err(&mut self.output, None, "Line never ends, closing");
            self.close();
        } else {
            self.discarding = Some(discarded);
        }
        Flow::NeedInput
    }

    /// Counts a failed login and answers it; at the limit the session closes
    /// (SECURITY-TESTS AU-09). The delay that grows with failures is the authenticator's.
    pub(super) fn auth_failed_with(&mut self, code: Option<RespCode>, text: &str) {
        response::err(&mut self.output, code, text);
        self.auth_failures = self.auth_failures.saturating_add(1);
        if self.auth_failures >= self.config.max_auth_failures.max(1) {
            self.close();
        }
    }
}
