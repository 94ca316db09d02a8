//! The IMAP server state machine: the contract between the core and the service.

use std::fmt;
use std::time::Duration;

use sealpost_types::Secret;

use super::capability::capabilities;
use super::command::{Command, CommandName, HeadError, Tag};
use super::config::{AUTOLOGOUT_TIMEOUT, CoreConfig, IDLE_TIMEOUT, PREAUTH_TIMEOUT};
use super::parser::Part;
use super::response::data::Response;
use super::response::encode::Encoding;
use super::response::{Code, Completion, Status, write_status_line};
use super::state::{SessionInfo, SessionState, Transition};

/// Something the service must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command for the service. Answer with untagged responses through
    /// [`ImapCore::send`] and exactly one [`ImapCore::finish`]; AUTHENTICATE may first
    /// go through [`ImapCore::auth_continue`], IDLE through [`ImapCore::idle_accept`].
    Command(Command),
    /// The client's line after an AUTHENTICATE challenge, as sent (base64, or `*` to
    /// cancel: RFC 9051 §6.2.2 wants a tagged BAD then). Answer with another
    /// [`ImapCore::auth_continue`] or with [`ImapCore::finish`].
    AuthResponse(Secret<Vec<u8>>),
    /// IDLE ended: `done` when the client sent DONE (RFC 2177 §3), false when it sent
    /// another line (answer BAD). Answer with [`ImapCore::finish`].
    IdleDone { done: bool },
    /// STARTTLS accepted: the core has queued the tagged OK and dropped every byte
    /// buffered after the command (RFC 9051 §6.2.1, CVE-2011-0411; SECURITY-TESTS
    /// ST-03/ST-04). Write the output, run the handshake (dropping the transport's own
    /// buffer too), then call [`ImapCore::tls_started`]. No answer.
    StartTls,
}

/// The command being read.
#[derive(Debug, Default)]
pub(super) struct Frame {
    pub(super) parts: Vec<Part>,
    /// Octets of the command so far, lines and literals.
    pub(super) size: u64,
    pub(super) literals: usize,
    /// Tag and command name, known once the first line is complete.
    pub(super) head: Option<Result<(Tag, CommandName), HeadError>>,
}

/// What the event that was returned waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiting {
    Command,
    Authenticate,
    Idle,
}

/// Where the session is.
#[derive(Debug)]
pub(super) enum Phase {
    /// Reading command lines.
    Command,
    /// Reading the octets of an accepted literal.
    Literal {
        remaining: u64,
        data: Vec<u8>,
        binary: bool,
    },
    /// An event was returned; waiting for the service.
    Pending { tag: Tag, waiting: Waiting },
    /// After `+ challenge`: the next line is the client's response.
    AuthLine { tag: Tag },
    /// After `+ idling`: waiting for DONE.
    Idle { tag: Tag },
    /// STARTTLS accepted; input is dropped until [`ImapCore::tls_started`].
    AwaitingTls,
}

/// What one processing step produced.
pub(super) enum Flow {
    Event(Event),
    Continue,
    NeedInput,
}

/// The sans-IO IMAP server of one connection.
pub struct ImapCore {
    pub(super) config: CoreConfig,
    pub(super) session: SessionInfo,
    pub(super) input: Vec<u8>,
    /// Start of the unprocessed input.
    pub(super) pos: usize,
    /// Octets at the start of the unprocessed input known to hold no LF.
    pub(super) scanned: usize,
    output: Vec<u8>,
    pub(super) phase: Phase,
    pub(super) frame: Frame,
    /// Consecutive BAD responses (reset by any OK).
    bad_count: usize,
    /// Failed LOGIN/AUTHENTICATE attempts on this connection (never reset).
    auth_failures: usize,
    /// Octets the account may still store (its quota less its usage), set by the service;
    /// `None`: no quota.
    pub(super) append_allowance: Option<u64>,
    closing: bool,
}

impl fmt::Debug for ImapCore {
    // No buffers: they may hold credentials and message content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.phase {
            Phase::Command => "command",
            Phase::Literal { .. } => "literal",
            Phase::Pending { .. } => "pending",
            Phase::AuthLine { .. } => "auth-line",
            Phase::Idle { .. } => "idle",
            Phase::AwaitingTls => "awaiting-tls",
        };
        f.debug_struct("ImapCore")
            .field("session", &self.session)
            .field("phase", &phase)
            .field("bad_count", &self.bad_count)
            .field("auth_failures", &self.auth_failures)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl ImapCore {
    /// A new session; the greeting `* OK [CAPABILITY ...] text` is queued as output
    /// (RFC 9051 §7.1.1).
    pub fn new(config: CoreConfig) -> Self {
        let session = SessionInfo {
            tls: config.tls_active,
            ..SessionInfo::default()
        };
        let mut core = ImapCore {
            config,
            session,
            input: Vec::new(),
            pos: 0,
            scanned: 0,
            output: Vec::new(),
            phase: Phase::Command,
            frame: Frame::default(),
            bad_count: 0,
            auth_failures: 0,
            append_allowance: None,
            closing: false,
        };
        let greeting = core.config.greeting.clone();
        core.status(None, Status::Ok, Some(&Code::Capability), &greeting);
        core
    }

    /// Bytes read from the client. Dropped while STARTTLS waits for its handshake and once
    /// the session is closing. A driver that keeps feeding while [`ImapCore::wants_input`]
    /// is false ends the session.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closing || matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        if self.input.len() > self.max_buffered() {
            self.bye(None, "Too much unread input");
            return;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The client closed its side: the session ends without a reply.
    pub fn feed_eof(&mut self) {
        self.close();
    }

    /// Whether the driver should read more: false while enough unprocessed input waits
    /// (a command is being handled and the client pipelines), during STARTTLS, or once
    /// closing. Reading only then keeps the buffer near one line.
    pub fn wants_input(&self) -> bool {
        !self.closing
            && !matches!(self.phase, Phase::AwaitingTls)
            && self.unread().len() < self.config.limits.max_line
    }

    /// Processes buffered input, queues the responses the core gives alone (greeting,
    /// CAPABILITY, LOGOUT, ENABLE, STARTTLS, errors, continuations) and returns the next
    /// event. `None`: more input is needed, an event waits for the service, STARTTLS
    /// waits for the handshake, or the session is closing.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.closing {
                return None;
            }
            let flow = match self.phase {
                Phase::Pending { .. } | Phase::AwaitingTls => return None,
                Phase::Command => self.step_line(),
                Phase::Literal { .. } => self.step_literal(),
                Phase::AuthLine { .. } => self.step_auth_line(),
                Phase::Idle { .. } => self.step_idle_line(),
            };
            match flow {
                Flow::Event(event) => return Some(event),
                Flow::Continue => {}
                Flow::NeedInput => return None,
            }
        }
    }

    /// Completes the pending command (or the IDLE, or the AUTHENTICATE exchange) with a
    /// tagged response, applying its state transition first. Returns false when nothing
    /// was pending (the completion is ignored).
    pub fn finish(&mut self, completion: Completion) -> bool {
        let Phase::Pending { tag, .. } = &self.phase else {
            return false;
        };
        let tag = tag.clone();
        self.phase = Phase::Command;
        if let Some(transition) = &completion.transition {
            self.apply(transition);
        }
        if completion.status == Status::Bye {
            self.bye(None, &completion.text);
            return true;
        }
        self.status(
            Some(&tag),
            completion.status,
            completion.code.as_ref(),
            &completion.text,
        );
        match completion.status {
            Status::Bad => self.count_bad(),
            _ => self.bad_count = 0,
        }
        if completion.transition == Some(Transition::Logout) {
            self.close();
        }
        // RFC 9051 §7.1: AUTHENTICATIONFAILED/AUTHORIZATIONFAILED mark a failed LOGIN or
        // AUTHENTICATE; SECURITY-TESTS AU-02 ends the session after the third.
        if matches!(
            completion.code,
            Some(Code::AuthenticationFailed | Code::AuthorizationFailed)
        ) {
            self.count_auth_failure();
        }
        true
    }

    /// RFC 9051 §6.2.3 leaves retries to the server; after the limit the session ends, so
    /// one connection cannot go on guessing (SECURITY-TESTS AU-02: the 4th LOGIN is never
    /// reached).
    fn count_auth_failure(&mut self) {
        self.auth_failures = self.auth_failures.saturating_add(1);
        if self.auth_failures >= self.config.limits.max_auth_failures.max(1) {
            self.bye(None, "Too many authentication failures");
        }
    }

    /// Queues an untagged response (data for the pending command, or unsolicited updates
    /// such as EXISTS/EXPUNGE during IDLE).
    pub fn send(&mut self, response: &Response) {
        if self.closing {
            return;
        }
        let capabilities = self.capabilities();
        let encoding = self.encoding();
        response.write(&mut self.output, encoding, &capabilities);
    }

    /// Sends an AUTHENTICATE challenge (`+ base64`, RFC 9051 §6.2.2) and waits for the
    /// client's line ([`Event::AuthResponse`]). False unless an AUTHENTICATE is pending.
    pub fn auth_continue(&mut self, challenge: &[u8]) -> bool {
        let Phase::Pending {
            tag,
            waiting: Waiting::Authenticate,
        } = &self.phase
        else {
            return false;
        };
        let tag = tag.clone();
        let encoded = sealpost_sasl::Step::challenge_base64(challenge);
        self.output
            .extend_from_slice(format!("+ {encoded}\r\n").as_bytes());
        self.phase = Phase::AuthLine { tag };
        true
    }

    /// Starts IDLE: `+ idling` (RFC 2177 §3); the core then waits for DONE
    /// ([`Event::IdleDone`]) while the service sends updates with [`ImapCore::send`].
    /// False unless an IDLE command is pending.
    pub fn idle_accept(&mut self) -> bool {
        let Phase::Pending {
            tag,
            waiting: Waiting::Idle,
        } = &self.phase
        else {
            return false;
        };
        let tag = tag.clone();
        self.output.extend_from_slice(b"+ idling\r\n");
        self.phase = Phase::Idle { tag };
        true
    }

    /// During IDLE: `* OK Still here`, every [`super::IDLE_KEEPALIVE_INTERVAL`].
    pub fn idle_keepalive(&mut self) {
        if matches!(self.phase, Phase::Idle { .. }) {
            self.status(None, Status::Ok, None, "Still here");
        }
    }

    /// [`ImapCore::read_timeout`] elapsed without input: `* BYE` and close (RFC 9051
    /// §5.4).
    pub fn autologout(&mut self) {
        self.bye(None, "Autologout; idle for too long");
    }

    /// The server is shutting down: `* BYE` and close (RFC 9051 §7.1.5).
    pub fn shutdown(&mut self, text: &str) {
        self.bye(Some(&Code::Unavailable), text);
    }

    /// The TLS handshake after [`Event::StartTls`] completed. Every byte received before it
    /// was dropped; the session stays not authenticated and now counts as TLS
    /// (capabilities change: no STARTTLS, no LOGINDISABLED). Ignored unless STARTTLS is in
    /// progress.
    pub fn tls_started(&mut self) {
        if !matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        self.session.tls = true;
        self.drop_input();
        self.phase = Phase::Command;
        self.bad_count = 0;
    }

    /// The bytes to write to the client (taken: the buffer is emptied). Writing them
    /// between FETCH responses keeps memory bounded on big mailboxes.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// After LOGOUT, a BYE, EOF or an unrecoverable framing error: write the remaining
    /// output, then close.
    pub fn should_close(&self) -> bool {
        self.closing
    }

    /// What the account may still store (quota less usage; `None`: no quota). An APPEND
    /// whose messages announce more gets `NO [OVERQUOTA]` instead of the `+` (RFC 9208
    /// §4.3, RFC 9051 §2.2.1), before any octet is sent. The service keeps it current; the
    /// store's check after the upload stays, as other sessions may fill the quota meanwhile.
    pub fn set_append_allowance(&mut self, octets: Option<u64>) {
        self.append_allowance = octets;
    }

    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// How strings and mailbox names are written to this client now.
    pub fn encoding(&self) -> Encoding {
        Encoding {
            utf8: self.session.utf8_names(),
        }
    }

    /// The CAPABILITY list for the current state.
    pub fn capabilities(&self) -> String {
        capabilities(&self.config, &self.session)
    }

    /// How long the driver waits for client bytes now; `None` while the service is
    /// handling a command or STARTTLS is in progress (no client timeout then).
    pub fn read_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Pending { .. } | Phase::AwaitingTls => None,
            Phase::Idle { .. } => Some(IDLE_TIMEOUT),
            _ if !self.session.is_authenticated() => Some(PREAUTH_TIMEOUT),
            _ => Some(AUTOLOGOUT_TIMEOUT),
        }
    }

    fn apply(&mut self, transition: &Transition) {
        let session = &mut self.session;
        match transition {
            Transition::Authenticated { user }
                if session.state == SessionState::NotAuthenticated =>
            {
                session.state = SessionState::Authenticated;
                session.user = Some(user.clone());
            }
            Transition::Selected { read_only } if session.is_authenticated() => {
                session.state = SessionState::Selected {
                    read_only: *read_only,
                };
            }
            Transition::Unselected if session.is_selected() => {
                session.state = SessionState::Authenticated;
            }
            Transition::Logout => session.state = SessionState::Logout,
            _ => {}
        }
    }

    /// Unprocessed input the core accepts at most: a line and its literal beyond what
    /// [`ImapCore::wants_input`] lets the driver read.
    fn max_buffered(&self) -> usize {
        self.config.limits.max_line.saturating_mul(2).max(1 << 20)
    }

    pub(super) fn unread(&self) -> &[u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    /// Queues a status line with the session's encoding and capabilities.
    pub(super) fn status(
        &mut self,
        tag: Option<&Tag>,
        status: Status,
        code: Option<&Code>,
        text: &str,
    ) {
        if self.closing {
            return;
        }
        let capabilities = self.capabilities();
        let encoding = self.encoding();
        write_status_line(
            &mut self.output,
            tag,
            status,
            code,
            text,
            encoding,
            &capabilities,
        );
    }

    /// Queues a BAD (tagged, or `* BAD` without a tag) and counts it; at the limit for the
    /// state the session ends (SECURITY-TESTS IM-15).
    pub(super) fn reply_bad(&mut self, tag: Option<&Tag>, code: Option<&Code>, text: &str) {
        self.status(tag, Status::Bad, code, text);
        self.count_bad();
    }

    pub(super) fn reply_ok(&mut self, tag: &Tag, text: &str) {
        self.status(Some(tag), Status::Ok, None, text);
        self.bad_count = 0;
    }

    fn count_bad(&mut self) {
        self.bad_count = self.bad_count.saturating_add(1);
        let limit = if self.session.is_authenticated() {
            self.config.limits.max_bad
        } else {
            self.config.limits.max_bad_preauth
        };
        if self.bad_count >= limit.max(1) {
            self.bye(None, "Too many invalid commands");
        }
    }

    /// `* BYE` and close.
    pub(super) fn bye(&mut self, code: Option<&Code>, text: &str) {
        self.status(None, Status::Bye, code, text);
        self.close();
    }

    pub(super) fn close(&mut self) {
        self.closing = true;
        self.session.state = SessionState::Logout;
        self.drop_input();
    }

    pub(super) fn push_output(&mut self, bytes: &[u8]) {
        if !self.closing {
            self.output.extend_from_slice(bytes);
        }
    }

    /// Forgets every buffered input byte and the command being read (STARTTLS, close).
    pub(super) fn drop_input(&mut self) {
        self.input = Vec::new();
        self.pos = 0;
        self.scanned = 0;
        self.frame = Frame::default();
    }
}
