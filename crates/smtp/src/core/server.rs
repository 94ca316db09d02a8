//! The server state machine. Types here are the contract between the core and the service.

use std::fmt;
use std::time::Duration;

use sealpost_sasl::Mechanism;

use super::data::{BareScanner, DataDecoder, Outcome};
use super::reply::{Reply, canned};

/// What the service tells the core about the port and its limits.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Our name in the greeting and EHLO reply.
    pub hostname: String,
    /// SIZE (RFC 1870): largest message accepted, in octets (after dot-unstuffing).
    pub max_message_size: u64,
    /// Most RCPT accepted per transaction; more get 452 4.5.3 (RFC 5321 §4.5.3.1.8).
    pub max_recipients: usize,
    /// Error replies (4xx/5xx caused by the client) before 421 4.7.0 and close.
    pub max_errors: usize,
    /// The port offers STARTTLS (25, 587) and TLS is not active yet.
    pub offer_starttls: bool,
    /// TLS is already active (465 after the implicit handshake).
    pub tls_active: bool,
    /// Mechanisms offered once AUTH is allowed; empty: no AUTH on this port (25).
    pub auth_mechanisms: Vec<Mechanism>,
    /// AUTH is refused and not advertised before TLS (RFC 8314 §3.3, RFC 4954 §4).
    pub auth_requires_tls: bool,
    /// MAIL needs a successful AUTH first (submission, RFC 6409 §4.3): 530 5.7.0.
    pub require_auth_for_mail: bool,
    /// Offer DSN (RFC 3461) and accept its parameters: only where the service can honour
    /// every NOTIFY value (submission with a report sender); refused as unknown otherwise.
    pub offer_dsn: bool,
}

/// Read-only view of the session for the service (Received header, policy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// The EHLO/HELO argument, once given.
    pub helo: Option<String>,
    /// EHLO (true) or HELO (false) was used.
    pub esmtp: bool,
    pub tls: bool,
    /// The authenticated login, once AUTH succeeded.
    pub authenticated: Option<String>,
}

/// BODY= of MAIL (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    SevenBit,
    EightBitMime,
}

/// RET= of MAIL (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnRet {
    Full,
    Headers,
}

/// NOTIFY= of RCPT (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DsnNotify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// AUTH= of MAIL (RFC 4954 §5): the original submitter, `<>` when unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    pub mailbox: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<BodyType>,
    /// SMTPUTF8 (RFC 6531 §3.4).
    pub smtputf8: bool,
    pub ret: Option<DsnRet>,
    /// ENVID= decoded from xtext (RFC 3461 §4.4).
    pub envid: Option<String>,
    pub auth: Option<AuthParams>,
    /// REQUIRETLS (RFC 8689 §4.1): every hop over verified TLS, or a bounce.
    pub require_tls: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<DsnNotify>,
    /// ORCPT= as (address type, address decoded from xtext) (RFC 3461 §4.2).
    pub orcpt: Option<(String, String)>,
}

/// Something the service must decide. Each event except `StartTls` waits for one
/// [`ServerCore::answer`] before the core produces the next event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// MAIL FROM, syntax already checked. `from` is `None` for the null reverse-path `<>`,
    /// otherwise `local@domain` (source route removed, quotes kept as sent, UTF-8 only when
    /// SMTPUTF8 was given).
    Mail {
        from: Option<String>,
        params: MailParams,
    },
    /// RCPT TO, syntax and recipient limit already checked. `to` as for `Mail`;
    /// `<Postmaster>` (RFC 5321 §4.5.1) arrives as `"postmaster"` without a domain.
    Rcpt { to: String, params: RcptParams },
    /// A complete message (DATA ended by `<CRLF>.<CRLF>`, or the last BDAT chunk), dot-
    /// unstuffed, CRLF line endings, within the size limit, with at least one accepted
    /// recipient. Answer `Accept` (250) only once it is durably stored.
    Message { body: Vec<u8> },
    /// STARTTLS accepted: the core has queued `220 2.0.0` and dropped every byte buffered
    /// after the command. The driver writes the output, upgrades the stream (which drops its
    /// own buffer too), then calls [`ServerCore::tls_started`]. No answer.
    StartTls,
    /// AUTH with a mechanism the core offered. Answer `AuthChallenge`, `AuthSuccess` or
    /// `AuthFailure`. `initial_response` is the base64 text as sent (RFC 4954 §4), ready for
    /// `sealpost_sasl::SaslExchange::start`; the empty response `=` arrives as an empty vec.
    /// A new `Auth` always starts a new exchange (an exchange the core ended, e.g. on an
    /// over-long line, gets no event).
    Auth {
        mechanism: Mechanism,
        initial_response: Option<Vec<u8>>,
    },
    /// A client line during an AUTH exchange (after a 334 challenge), without CRLF, as sent
    /// (base64, or `*` to cancel: answer `AuthFailure` with 501 5.7.0, RFC 4954 §4).
    AuthResponse { line: Vec<u8> },
}

/// The service's answer to the pending event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// MAIL/RCPT/Message accepted with this (2xx) reply.
    Accept(Reply),
    /// MAIL/RCPT/Message refused with this (4xx/5xx) reply; a refused RCPT adds no recipient,
    /// a refused MAIL starts no transaction, a refused message ends the transaction.
    Reject(Reply),
    /// Send `334 <base64 of these bytes>` and wait for the next client line.
    AuthChallenge(Vec<u8>),
    /// AUTH succeeded for this login: `235 2.7.0`.
    AuthSuccess { login: String },
    /// AUTH failed or was cancelled, with this reply (535 5.7.8, 501 5.5.2, 454 4.7.0, ...).
    AuthFailure(Reply),
    /// Send this reply (421) and close the session.
    Close(Reply),
}

/// RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Inside DATA/BDAT content. RFC 5321 §4.5.3.2.5 gives the *client* 3 minutes per data
/// block; the server keeps its own 5-minute timeout (§4.5.3.2.7).
pub const DATA_BLOCK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// While the final reply to a message is pending (storing it): RFC 5321 §4.5.3.2.6 has the
/// client wait 10 minutes for it.
pub const DATA_TERMINATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest command line, CRLF included. RFC 5321 §4.5.3.1.4 requires 512; 1000 is
/// accepted for robustness. Longer: 500 5.5.2, and the line is discarded up to its LF.
pub const MAX_COMMAND_LINE: usize = 1000;
/// Longest line of an AUTH exchange without CRLF (RFC 4954 §4); longer: 500 5.5.6.
pub const MAX_AUTH_LINE: usize = 12_288;
/// Unprocessed input the core holds at most: feeding more while this much is still waiting
/// (the driver fed again without draining [`ServerCore::next_event`]) gives 421 and close.
pub const MAX_BUFFERED_INPUT: usize = 1 << 20;
/// NOOP, RSET, VRFY, EXPN and HELP a session may send before each further one counts as an
/// error (Postfix smtpd_junk_command_limit; SECURITY-TESTS RL-12). Reset when a message is
/// accepted.
pub const JUNK_COMMAND_LIMIT: usize = 100;
/// An over-long line is discarded up to its LF; after this many octets without one the
/// session ends with 421 (SECURITY-TESTS RL-02).
pub const MAX_DISCARDED_LINE: usize = 1 << 20;

/// Where the session is.
pub(super) enum Phase {
    /// Reading command lines.
    Command,
    /// After a 334 challenge: the next line is an AUTH response.
    AuthLine,
    /// Reading DATA content.
    Data(DataDecoder),
    /// Reading the octets of a BDAT chunk.
    Bdat(Chunk),
    /// An event was returned; waiting for [`ServerCore::answer`].
    Pending(Pending),
    /// STARTTLS was accepted; input is dropped until [`ServerCore::tls_started`].
    AwaitingTls,
}

/// The event waiting for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Mail { smtputf8: bool },
    Rcpt,
    Message,
    Auth,
}

/// A BDAT chunk being read (RFC 3030 §2).
pub(super) struct Chunk {
    pub(super) size: u64,
    pub(super) remaining: u64,
    pub(super) last: bool,
    pub(super) fate: ChunkFate,
}

/// What happens to a chunk's octets.
pub(super) enum ChunkFate {
    /// Appended to the message.
    Store,
    /// Read and dropped, then this reply (RFC 3030 §3.1: the octets are always read);
    /// `end_transaction` when the refusal ends the transaction.
    Refuse { reply: Reply, end_transaction: bool },
}

/// The mail transaction (RFC 5321 §3.3).
#[derive(Default)]
pub(super) struct Transaction {
    /// MAIL was accepted.
    pub(super) mail: bool,
    /// MAIL carried SMTPUTF8 (RFC 6531 §3.4): UTF-8 recipients are legal.
    pub(super) smtputf8: bool,
    pub(super) accepted: usize,
    pub(super) refused: usize,
    /// Set by the first BDAT (RFC 3030): DATA and RCPT are then out of sequence.
    pub(super) bdat: Option<BdatBody>,
}

/// A message arriving in BDAT chunks.
#[derive(Default)]
pub(super) struct BdatBody {
    pub(super) body: Vec<u8>,
    /// Sum of the announced chunk sizes.
    pub(super) announced: u64,
    pub(super) scanner: BareScanner,
    /// The announced sizes passed the limit: chunks are dropped until LAST.
    pub(super) too_big: bool,
}

/// What one processing step produced.
pub(super) enum Flow {
    Event(Event),
    Continue,
    NeedInput,
}

/// The SMTP server state machine of one session.
pub struct ServerCore {
    pub(super) config: CoreConfig,
    pub(super) session: SessionInfo,
    input: Vec<u8>,
    /// Start of the unprocessed input.
    pos: usize,
    output: Vec<u8>,
    pub(super) phase: Phase,
    pub(super) txn: Transaction,
    errors: usize,
    junk_commands: usize,
    closing: bool,
    /// Discarding an over-long line up to its LF: octets discarded so far.
    discarding: Option<usize>,
}

impl fmt::Debug for ServerCore {
    // No buffers: they may hold credentials (AUTH lines) and message content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.phase {
            Phase::Command => "command",
            Phase::AuthLine => "auth-line",
            Phase::Data(_) => "data",
            Phase::Bdat(_) => "bdat",
            Phase::Pending(_) => "pending",
            Phase::AwaitingTls => "awaiting-tls",
        };
        f.debug_struct("ServerCore")
            .field("session", &self.session)
            .field("phase", &phase)
            .field("errors", &self.errors)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl ServerCore {
    /// A new session; the 220 greeting is queued as output.
    pub fn new(config: CoreConfig) -> Self {
        let session = SessionInfo {
            tls: config.tls_active,
            ..SessionInfo::default()
        };
        let mut core = ServerCore {
            config,
            session,
            input: Vec::new(),
            pos: 0,
            output: Vec::new(),
            phase: Phase::Command,
            txn: Transaction::default(),
            errors: 0,
            junk_commands: 0,
            closing: false,
            discarding: None,
        };
        // RFC 5321 §4.2 / §3.1: the greeting; no enhanced code (RFC 2034 §3).
        canned::greeting(&core.config.hostname).write_to(&mut core.output);
        core
    }

    /// Bytes read from the client. Dropped while STARTTLS waits for the handshake (RFC 3207
    /// §4.2, CVE-2011-0411) and once the session is closing.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closing || matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        if self.input.len() > MAX_BUFFERED_INPUT {
            self.close_with(canned::too_much_input());
            return;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The client closed its side: the session ends without a reply; a message in progress
    /// is dropped.
    pub fn feed_eof(&mut self) {
        self.close();
    }

    /// Processes buffered input: queues the replies the core gives alone and returns the
    /// next event for the service. `None`: more input is needed, an event waits for its
    /// answer, STARTTLS waits for the handshake, or the session is closing.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.closing {
                return None;
            }
            let flow = match self.phase {
                Phase::Pending(_) | Phase::AwaitingTls => return None,
                Phase::Command => self.step_line(false),
                Phase::AuthLine => self.step_line(true),
                Phase::Data(_) => self.step_data(),
                Phase::Bdat(_) => self.step_bdat(),
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
    /// settled with a 451/454 reply so the session cannot hang).
    pub fn answer(&mut self, answer: Answer) -> bool {
        let Phase::Pending(pending) = self.phase else {
            return false;
        };
        self.phase = Phase::Command;
        self.settle(pending, answer)
    }

    /// The driver finished the TLS handshake after [`Event::StartTls`]. RFC 3207 §4.2: the
    /// server discards all knowledge obtained from the client before TLS (EHLO/HELO, the
    /// transaction, authentication) and every byte received before the handshake; STARTTLS
    /// is no longer offered. Ignored unless STARTTLS is in progress.
    pub fn tls_started(&mut self) {
        if !matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        self.session = SessionInfo {
            tls: true,
            ..SessionInfo::default()
        };
        self.txn = Transaction::default();
        self.drop_input();
        self.phase = Phase::Command;
    }

    /// The bytes to write to the client (taken: the buffer is emptied).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// After QUIT's 221, a 421, a 221 for an HTTP line, an unrecoverable framing error or
    /// EOF: write the remaining output, then close.
    pub fn should_close(&self) -> bool {
        self.closing
    }

    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// How long the driver waits for the client's next bytes in the current state.
    pub fn read_timeout(&self) -> Duration {
        match self.phase {
            Phase::Data(_) | Phase::Bdat(_) => DATA_BLOCK_TIMEOUT,
            Phase::Pending(Pending::Message) => DATA_TERMINATION_TIMEOUT,
            _ => COMMAND_TIMEOUT,
        }
    }

    /// Whether STARTTLS is offered now (RFC 3207 §4.2: not once TLS is active).
    pub(super) fn starttls_available(&self) -> bool {
        self.config.offer_starttls && !self.session.tls
    }

    /// Whether AUTH is offered now: mechanisms configured, not yet authenticated, and TLS
    /// active where the port requires it (RFC 4954 §4, RFC 8314 §3.3).
    pub(super) fn auth_available(&self) -> bool {
        !self.config.auth_mechanisms.is_empty()
            && self.session.authenticated.is_none()
            && (self.session.tls || !self.config.auth_requires_tls)
    }

    /// Queues a reply. Every 4xx/5xx counts as a client error; at `max_errors` the session
    /// ends with 421 4.7.0 (SECURITY-TESTS RL-11).
    pub(super) fn send(&mut self, reply: &Reply) {
        if self.closing {
            return;
        }
        reply.write_to(&mut self.output);
        if reply.is_error() {
            self.count_error();
        }
    }

    fn count_error(&mut self) {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.config.max_errors.max(1) {
            self.close_with(canned::too_many_errors());
        }
    }

    /// Queues the reply to a junk command (NOOP, RSET, VRFY, EXPN, HELP): past
    /// [`JUNK_COMMAND_LIMIT`] each one also counts as an error (Postfix
    /// smtpd_junk_command_limit; SECURITY-TESTS RL-12).
    pub(super) fn send_junk(&mut self, reply: &Reply) {
        self.junk_commands = self.junk_commands.saturating_add(1);
        let over = self.junk_commands > JUNK_COMMAND_LIMIT;
        self.send(reply);
        if over && !reply.is_error() && !self.closing {
            self.count_error();
        }
    }

    /// A message was accepted: the client is doing real work, so the error and junk counts
    /// start again (Postfix counts errors "without delivering mail").
    pub(super) fn forgive(&mut self) {
        self.errors = 0;
        self.junk_commands = 0;
    }

    /// Queues a final reply (not counted) and closes.
    pub(super) fn close_with(&mut self, reply: Reply) {
        if !self.closing {
            reply.write_to(&mut self.output);
        }
        self.close();
    }

    pub(super) fn close(&mut self) {
        self.closing = true;
        self.drop_input();
    }

    /// Forgets every buffered input byte (STARTTLS, close).
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
        // Postfix smtpd_forbidden_commands ("CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}"):
        // HTTP requests, TLS records and other binary sent to the SMTP port get 221 and a
        // hang-up, without waiting for a line end (ALPACA; SECURITY-TESTS TLS-07, TLS-10).
        if !auth
            && ((!first.is_ascii_alphabetic() && first != b'\r' && first != b'\n')
                || super::command::starts_with_forbidden_verb(available))
        {
            self.close_with(canned::forbidden_command());
            return Flow::Continue;
        }
        // RFC 5321 §4.5.3.1.4 (commands) / RFC 4954 §4 (AUTH lines), CRLF included.
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
                // RFC 4954 §4: the exchange ends.
                self.phase = Phase::Command;
                self.send(&canned::auth_line_too_long());
            } else {
                self.send(&canned::line_too_long());
            }
            return Flow::Continue;
        };
        let line = window.get(..lf).unwrap_or_default().to_vec();
        self.pos += lf + 1;
        let Some(content) = line.strip_suffix(b"\r") else {
            // RFC 5321 §2.3.8: lines end with CRLF. After a bare LF the client's idea of
            // where the next command starts is unknowable, so the session ends (Postfix
            // smtpd_forbid_bare_newline; SECURITY-TESTS SM-11).
            self.send(&canned::bare_newline());
            self.close();
            return Flow::Continue;
        };
        if auth {
            self.phase = Phase::Pending(Pending::Auth);
            return Flow::Event(Event::AuthResponse {
                line: content.to_vec(),
            });
        }
        self.command_line(content)
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
            self.close_with(canned::line_never_ends());
        } else {
            self.discarding = Some(discarded);
        }
        Flow::NeedInput
    }

    fn step_data(&mut self) -> Flow {
        let Phase::Data(decoder) = &mut self.phase else {
            return Flow::Continue;
        };
        let available = self.input.get(self.pos..).unwrap_or_default();
        if available.is_empty() {
            return Flow::NeedInput;
        }
        let (used, done) = decoder.decode(available);
        self.pos += used;
        if !done {
            return Flow::NeedInput;
        }
        let Phase::Data(decoder) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return Flow::Continue;
        };
        match decoder.finish() {
            Outcome::Message(body) => {
                self.phase = Phase::Pending(Pending::Message);
                Flow::Event(Event::Message { body })
            }
            Outcome::BareLineEnding => {
                self.txn = Transaction::default();
                // Postfix smtpd_forbid_bare_newline=reject; SECURITY-TESTS SM-01..SM-09.
                self.send(&canned::bare_cr_lf_in_message());
                Flow::Continue
            }
            Outcome::TooBig => {
                self.txn = Transaction::default();
                // RFC 1870 §6.3 / RFC 5321 §4.5.3.1.10: 552 after the end of data.
                self.send(&canned::message_too_big());
                Flow::Continue
            }
        }
    }

    fn step_bdat(&mut self) -> Flow {
        let Phase::Bdat(chunk) = &mut self.phase else {
            return Flow::Continue;
        };
        if chunk.remaining > 0 {
            let available = self.input.get(self.pos..).unwrap_or_default();
            if available.is_empty() {
                return Flow::NeedInput;
            }
            let take = usize::try_from(chunk.remaining)
                .unwrap_or(usize::MAX)
                .min(available.len());
            let bytes = available.get(..take).unwrap_or_default();
            // RFC 3030 §2: the octets are taken exactly, no dot-unstuffing.
            if matches!(chunk.fate, ChunkFate::Store)
                && let Some(bdat) = &mut self.txn.bdat
            {
                bdat.body.extend_from_slice(bytes);
                bdat.scanner.scan(bytes);
            }
            chunk.remaining -= take as u64;
            self.pos += take;
            if chunk.remaining > 0 {
                return Flow::NeedInput;
            }
        }
        let Phase::Bdat(chunk) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return Flow::Continue;
        };
        self.finish_chunk(chunk)
    }
}
