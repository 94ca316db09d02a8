//! The client state machine: greeting, EHLO/HELO, STARTTLS, QUIT, and how replies, EOF and
//! timeouts end a session. Transactions are in `transaction.rs`.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::body::BodyEncoder;
use super::extensions::Extensions;
use super::reply::{Parsed, ProtocolError, ReplyParser};
use super::transaction::{Transaction, TransactionResult};
use crate::core::Reply;
use crate::core::path::is_helo_name;

/// RFC 5321 §4.5.3.2.1: waiting for the 220 greeting, 5 minutes.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// RFC 5321 §4.5.3.2.2: the reply to MAIL, 5 minutes.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// RFC 5321 §4.5.3.2.3: the reply to each RCPT, 5 minutes.
pub const RCPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// RFC 5321 §4.5.3.2.4: the 354 to DATA, 2 minutes.
pub const DATA_INITIATION_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// RFC 5321 §4.5.3.2.5: each write of the message content, 3 minutes.
pub const DATA_BLOCK_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// RFC 5321 §4.5.3.2.6: the reply after the end of data, 10 minutes.
pub const DATA_TERMINATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// EHLO, HELO, STARTTLS, RSET and QUIT: RFC 5321 §4.5.3.2 names no value; the MAIL one.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Most message octets one [`ClientCore::take_output`] produces (plus at most 5).
pub const BODY_CHUNK: usize = 64 * 1024;
/// Unprocessed server input the core holds at most: feeding more while this much waits
/// (the driver fed again without draining [`ClientCore::next_event`]) ends the session.
pub const MAX_BUFFERED_INPUT: usize = 1 << 20;

/// What the caller tells the core about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Our name for EHLO/HELO (RFC 5321 §4.1.1.1): a domain or an address literal.
    pub hostname: String,
    /// TLS is already active (implicit TLS, e.g. a smarthost on 465, RFC 8314 §3.3).
    pub tls_active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a domain or address literal (RFC 5321 §4.1.1.1); it would go into EHLO as is.
    #[error("invalid EHLO name")]
    InvalidHostname,
}

/// A call made in a state that does not allow it: nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// Not idle (see [`ClientCore::is_idle`]).
    #[error("the session is not idle")]
    NotReady,
    /// STARTTLS was not in the EHLO reply (RFC 3207 §4).
    #[error("the server does not offer STARTTLS")]
    StartTlsNotOffered,
    /// TLS is already active (RFC 3207 §4.2: no second STARTTLS).
    #[error("TLS is already active")]
    TlsActive,
}

/// What the caller learns; no event waits for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// EHLO (or the HELO fallback) was accepted and the core is idle: call
    /// [`ClientCore::start_tls`], [`ClientCore::send`] or [`ClientCore::quit`]. Comes again
    /// after STARTTLS with the extensions announced over TLS.
    Ready {
        extensions: Extensions,
        tls_active: bool,
    },
    /// STARTTLS got 220: write the remaining output, do the TLS handshake (dropping any
    /// bytes read but not fed), then call [`ClientCore::tls_started`].
    UpgradeTls,
    /// STARTTLS was refused with this reply; the core is idle again, still in plaintext
    /// (policy: deliver without TLS, or quit).
    StartTlsRefused(Reply),
    /// A transaction ended: every reply it got. Unless `Closed` follows, the core is idle.
    Transaction(TransactionResult),
    /// The session is over; after the remaining output is written, close.
    Closed(SessionEnd),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// After our QUIT (RFC 5321 §4.1.1.10): its reply, `None` when the server closed first.
    Quit(Option<Reply>),
    /// The server refused the session: a greeting other than 220 (RFC 5321 §3.1, e.g. 554)
    /// or EHLO and HELO refused. QUIT was queued.
    Refused(Reply),
    /// 421 (RFC 5321 §3.8): the server is closing the channel.
    ServiceClosing(Reply),
    /// The server's bytes were not SMTP, or a limit was passed.
    Protocol(ProtocolError),
    /// The server closed the connection while a reply was awaited.
    ConnectionLost,
    /// The driver reported that [`ClientCore::timeout`] passed.
    TimedOut,
}

/// Where the session is.
pub(super) enum State {
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO (`ehlo`) or HELO was sent.
    Hello {
        ehlo: bool,
    },
    /// Waiting for the caller.
    Idle,
    /// STARTTLS was sent.
    StartTls,
    /// STARTTLS got 220: input is dropped until [`ClientCore::tls_started`].
    AwaitingTls,
    Transaction(Box<Transaction>),
    /// QUIT was sent.
    Quit,
    Closed,
}

/// The SMTP client state machine of one connection.
pub struct ClientCore {
    config: ClientConfig,
    pub(super) state: State,
    input: Vec<u8>,
    /// Start of the unprocessed input.
    pos: usize,
    parser: ReplyParser,
    pub(super) output: Vec<u8>,
    /// The message being written after 354.
    pub(super) body: Option<BodyEncoder>,
    events: VecDeque<Event>,
    pub(super) extensions: Extensions,
    pub(super) tls_active: bool,
    /// A transaction was left open on the server (MAIL accepted, no end of data): the next
    /// one starts with RSET (RFC 5321 §4.1.1.5).
    pub(super) needs_rset: bool,
    /// The server closed its side; handled once the buffered replies are read.
    eof: bool,
}

impl fmt::Debug for ClientCore {
    // No buffers: the output holds message content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Greeting => "greeting",
            State::Hello { ehlo: true } => "ehlo",
            State::Hello { ehlo: false } => "helo",
            State::Idle => "idle",
            State::StartTls => "starttls",
            State::AwaitingTls => "awaiting-tls",
            State::Transaction(_) => "transaction",
            State::Quit => "quit",
            State::Closed => "closed",
        };
        f.debug_struct("ClientCore")
            .field("state", &state)
            .field("tls_active", &self.tls_active)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

impl ClientCore {
    /// A new session, waiting for the server's greeting.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        // RFC 5321 §4.1.1.1: EHLO SP ( Domain / address-literal ).
        if !is_helo_name(&config.hostname) {
            return Err(ConfigError::InvalidHostname);
        }
        Ok(ClientCore {
            tls_active: config.tls_active,
            config,
            state: State::Greeting,
            input: Vec::new(),
            pos: 0,
            parser: ReplyParser::default(),
            output: Vec::new(),
            body: None,
            events: VecDeque::new(),
            extensions: Extensions::default(),
            needs_rset: false,
            eof: false,
        })
    }

    /// Bytes read from the server. Dropped while STARTTLS waits for the handshake (RFC 3207
    /// §4.2: nothing received before TLS is trusted after it) and once the session is over.
    pub fn feed(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::AwaitingTls | State::Closed) || self.eof {
            return;
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        if self.input.len() > MAX_BUFFERED_INPUT {
            self.end_session(SessionEnd::Protocol(ProtocolError::TooMuchInput));
            return;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The server closed the connection. Complete replies already fed are still read; then
    /// the session ends (`Quit` after our QUIT, `ConnectionLost` otherwise).
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// The driver's wait passed [`ClientCore::timeout`]: the session ends (`TimedOut`), with
    /// the transaction in progress reported as interrupted.
    pub fn timed_out(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.end_session(SessionEnd::TimedOut);
        }
    }

    /// Reads the buffered replies and returns the next event; `None` when more input is
    /// needed, the core waits for the caller or the handshake, or the session is over.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            match self.state {
                State::Closed => return None,
                State::AwaitingTls if self.eof => {
                    self.on_eof();
                    continue;
                }
                State::AwaitingTls => return None,
                _ => {}
            }
            // A reply that comes while the message is still being written answers what was
            // sent before it or the end of the data: read it once the data is out, so that
            // when the bytes arrive (in one piece or many) never changes the session.
            if self.body.is_some() {
                return None;
            }
            let unread = self.input.get(self.pos..).unwrap_or_default();
            let (used, parsed) = self.parser.parse(unread);
            self.pos += used;
            match parsed {
                Parsed::Reply(reply) => self.on_reply(reply),
                Parsed::Error(error) => self.end_session(SessionEnd::Protocol(error)),
                Parsed::NeedInput if self.eof => self.on_eof(),
                Parsed::NeedInput => return None,
            }
        }
    }

    /// The bytes to write to the server (taken). While a message is being sent, each call
    /// adds at most [`BODY_CHUNK`] (+5) octets of it: call until it returns nothing.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.output);
        if let Some(encoder) = &mut self.body
            && out.len() < BODY_CHUNK
            && encoder.encode(&mut out, BODY_CHUNK)
        {
            self.body = None;
        }
        out
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty() || self.body.is_some()
    }

    /// After `Closed`: write the remaining output (QUIT after a refusal), then close.
    pub fn should_close(&self) -> bool {
        matches!(self.state, State::Closed) && self.events.is_empty()
    }

    /// Whether `send`, `start_tls` and `quit` are allowed now.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// What the last accepted EHLO announced (all off before it and after HELO).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// How long the driver waits for the current step (the core has no clock): for each
    /// write while message content is pending, else for the reply awaited next (RFC 5321
    /// §4.5.3.2). `None` when no reply is awaited (idle, TLS handshake, closed).
    pub fn timeout(&self) -> Option<Duration> {
        if self.body.is_some() {
            return Some(DATA_BLOCK_TIMEOUT);
        }
        match &self.state {
            State::Greeting => Some(GREETING_TIMEOUT),
            State::Hello { .. } | State::StartTls | State::Quit => Some(COMMAND_TIMEOUT),
            State::Transaction(txn) => txn.timeout(),
            State::Idle | State::AwaitingTls | State::Closed => None,
        }
    }

    /// Sends STARTTLS (RFC 3207 §4). On 220 comes [`Event::UpgradeTls`], otherwise
    /// [`Event::StartTlsRefused`].
    pub fn start_tls(&mut self) -> Result<(), UsageError> {
        if !self.is_idle() {
            return Err(UsageError::NotReady);
        }
        if self.tls_active {
            return Err(UsageError::TlsActive);
        }
        if !self.extensions.starttls {
            return Err(UsageError::StartTlsNotOffered);
        }
        self.output.extend_from_slice(b"STARTTLS\r\n");
        self.state = State::StartTls;
        Ok(())
    }

    /// The TLS handshake after [`Event::UpgradeTls`] succeeded. RFC 3207 §4.2: the client
    /// discards what it knew from the server (extensions, any bytes received before the
    /// handshake — CVE-2021-38371 was a client acting on such bytes) and sends EHLO again.
    /// Ignored unless STARTTLS is in progress.
    pub fn tls_started(&mut self) {
        if !matches!(self.state, State::AwaitingTls) {
            return;
        }
        self.drop_input();
        self.tls_active = true;
        self.extensions = Extensions::default();
        // RFC 3207 §4.2: the server forgot any open transaction too.
        self.needs_rset = false;
        self.hello(true);
    }

    /// Sends QUIT (RFC 5321 §4.1.1.10); `Closed(Quit)` follows its reply.
    pub fn quit(&mut self) -> Result<(), UsageError> {
        if !self.is_idle() {
            return Err(UsageError::NotReady);
        }
        self.output.extend_from_slice(b"QUIT\r\n");
        self.state = State::Quit;
        Ok(())
    }

    /// Queues an event.
    pub(super) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Sends EHLO or HELO (RFC 5321 §4.1.1.1).
    fn hello(&mut self, ehlo: bool) {
        let verb = if ehlo { "EHLO" } else { "HELO" };
        let line = format!("{verb} {}\r\n", self.config.hostname);
        self.output.extend_from_slice(line.as_bytes());
        self.state = State::Hello { ehlo };
    }

    fn on_reply(&mut self, reply: Reply) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Transaction(txn) => self.transaction_reply(txn, reply),
            // RFC 5321 §3.8: 421 may come at any point; the server is closing the channel.
            State::Quit => self.emit(Event::Closed(SessionEnd::Quit(Some(reply)))),
            _ if reply.code == 421 => self.close(None, SessionEnd::ServiceClosing(reply)),
            State::Greeting if reply.code == 220 => self.hello(true),
            // RFC 5321 §3.1: a greeting other than 220 (554: no SMTP service here) ends
            // the session; the server waits for QUIT.
            State::Greeting => self.quit_and_close(SessionEnd::Refused(reply)),
            State::Hello { ehlo } if reply.is_positive() => {
                self.extensions = if ehlo {
                    Extensions::from_ehlo(&reply)
                } else {
                    Extensions::default()
                };
                self.state = State::Idle;
                self.emit(Event::Ready {
                    extensions: self.extensions.clone(),
                    tls_active: self.tls_active,
                });
            }
            // RFC 5321 §4.1.4 / §3.2: a server without extensions refuses EHLO with
            // 500/502/550 (5yz); the client falls back to HELO.
            State::Hello { ehlo: true } if reply.code / 100 == 5 => self.hello(false),
            State::Hello { .. } => self.quit_and_close(SessionEnd::Refused(reply)),
            State::StartTls if reply.code == 220 => {
                // RFC 3207 §4.2: nothing after the 220 is read before the handshake.
                self.drop_input();
                self.state = State::AwaitingTls;
                self.emit(Event::UpgradeTls);
            }
            // RFC 3207 §4: 454 (TLS not available) or 501: the session goes on in plaintext.
            State::StartTls => {
                self.state = State::Idle;
                self.emit(Event::StartTlsRefused(reply));
            }
            State::Idle => self.close(None, SessionEnd::Protocol(ProtocolError::UnexpectedReply)),
            // Input is dropped in these states, so no reply reaches here.
            State::AwaitingTls | State::Closed => {}
        }
    }

    fn on_eof(&mut self) {
        self.eof = false;
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Quit => self.emit(Event::Closed(SessionEnd::Quit(None))),
            State::Transaction(txn) => self.close(Some(txn), SessionEnd::ConnectionLost),
            _ => self.close(None, SessionEnd::ConnectionLost),
        }
    }

    /// Sends QUIT (RFC 5321 §4.1.1.10: the client closes with QUIT), then ends the session.
    fn quit_and_close(&mut self, end: SessionEnd) {
        self.output.extend_from_slice(b"QUIT\r\n");
        self.close(None, end);
    }

    /// Ends the session from whatever state it is in.
    pub(super) fn end_session(&mut self, end: SessionEnd) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Transaction(txn) => self.close(Some(txn), end),
            State::Closed => {}
            _ => self.close(None, end),
        }
    }

    /// Ends the session: the transaction in progress (if any) is reported as interrupted,
    /// then `Closed`. Output already queued stays (QUIT); message content does not.
    pub(super) fn close(&mut self, txn: Option<Box<Transaction>>, end: SessionEnd) {
        if let Some(txn) = txn {
            let mut result: TransactionResult = txn.result;
            result.interrupted = true;
            self.emit(Event::Transaction(result));
        }
        self.emit(Event::Closed(end));
        self.state = State::Closed;
        self.body = None;
        self.drop_input();
    }

    /// Forgets every buffered input byte and any unfinished reply.
    fn drop_input(&mut self) {
        self.input = Vec::new();
        self.pos = 0;
        self.parser.reset();
    }
}
