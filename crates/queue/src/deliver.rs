//! Delivering one message to one destination domain: the async driver of the sans-IO SMTP
//! client core ([`sealpost_smtp::client::ClientCore`]) over TCP and rustls.
//!
//! [`deliver`] walks the destination's [`Target`]s in order (RFC 5321 §5.1: MX hosts by
//! preference, each host's addresses in turn), one connection at a time. A target that cannot
//! be reached, refuses the session (a 4xx/5xx greeting, 421 at any point, RFC 5321 §3.1 and
//! §3.8) or loses the connection before the transaction is decided is skipped for the next
//! one; the first host that gives a final answer for a recipient (2xx, 4xx or 5xx to its
//! RCPT, DATA or the end of data) decides it. Recipients whose transaction was interrupted
//! (no verdict, `RecipientOutcome::NotAttempted`) are tried at the next target — when the data
//! had already been sent the first server may have kept it: a duplicate is the price of never
//! losing a message (RFC 1047, RFC 5321 §6.1).
//!
//! TLS: STARTTLS whenever the server offers it (RFC 3207), with the rustls configuration of
//! [`DeliveryOptions::tls`] — [`opportunistic_tls_config`] accepts any certificate (RFC 7435
//! opportunistic security: encryption against passive attackers only); MTA-STS (RFC 8461) or
//! DANE (RFC 7672) pass a verifying one. Without [`DeliveryOptions::require_tls`] a failed
//! handshake is retried at the same address in plaintext (RFC 7435 §3: opportunistic
//! security never makes things worse than cleartext), and a refused STARTTLS goes on in
//! plaintext. With it (or a REQUIRETLS message, RFC 8689 §4.2.1) nothing is sent without TLS:
//! such a target counts as a connection failure.
//!
//! When no target gives a verdict, every undecided recipient is [`DeliveryOutcome::Deferred`]
//! with the last [`Failure`]: the queue retries later.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig as TlsConfig;
use rustls::pki_types::ServerName;
use sealpost_dns::Target;
use sealpost_smtp::client::{
    COMMAND_TIMEOUT, ClientConfig, ClientCore, Envelope, Event, MessageBody, ProtocolError,
    RecipientOutcome, Reply, SendError, SessionEnd,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long a TCP connect may take before the next address is tried. RFC 5321 §4.5.3.2
/// names no value; a few tens of seconds is what MTAs use (Postfix: 30 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the TLS handshake after STARTTLS may take (RFC 5321 §4.5.3.2 has none; the
/// command timeout's order of magnitude would hold a slot too long).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Read buffer of one connection.
const READ_BUFFER: usize = 16 * 1024;

/// What [`deliver`] may and must do.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The rustls client configuration for STARTTLS: [`opportunistic_tls_config`], or a
    /// verifying one when MTA-STS (RFC 8461 §4.2) or DANE (RFC 7672 §3) apply.
    pub tls: Arc<TlsConfig>,
    /// Never send without TLS: a server without STARTTLS, a refused STARTTLS or a failed
    /// handshake is a temporary failure of that target (RFC 8461 §5 enforce, RFC 7672 §2.2).
    pub require_tls: bool,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// An upper bound on every wait the core asks for (its RFC 5321 §4.5.3.2 timeouts are
    /// minutes); `None` keeps the RFC values.
    pub max_wait: Option<Duration>,
}

impl DeliveryOptions {
    /// Opportunistic TLS with the given client configuration and the default timeouts.
    pub fn new(tls: Arc<TlsConfig>) -> Self {
        DeliveryOptions {
            tls,
            require_tls: false,
            connect_timeout: CONNECT_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_wait: None,
        }
    }

    /// [`DeliveryOptions::new`] with [`opportunistic_tls_config`].
    pub fn opportunistic() -> Result<Self, rustls::Error> {
        Ok(Self::new(opportunistic_tls_config()?))
    }

    fn wait(&self, wanted: Duration) -> Duration {
        self.max_wait.map_or(wanted, |max| wanted.min(max))
    }
}

/// A client configuration for opportunistic STARTTLS (RFC 7435 §3, RFC 3207): TLS 1.2 and
/// 1.3, any server certificate accepted (most MX certificates do not match or are
/// self-signed, RFC 7672 §1.3), the handshake signatures still checked, no client
/// certificate, no ALPN (SMTP defines none).
pub fn opportunistic_tls_config() -> Result<Arc<TlsConfig>, rustls::Error> {
    Ok(Arc::new(sealpost_net::opportunistic_client_config()?))
}

/// Why a target gave no verdict (or why a recipient cannot be sent at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("no delivery targets")]
    NoTargets,
    /// Our EHLO name is not a domain or address literal (RFC 5321 §4.1.1.1): configuration.
    #[error("invalid EHLO name {0:?}")]
    InvalidHostname(String),
    #[error("connect to {0} failed: {1}")]
    Connect(SocketAddr, String),
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// A greeting other than 220, or EHLO and HELO refused (RFC 5321 §3.1, §4.1.1.1).
    #[error("session refused: {}", show(.0))]
    Refused(Reply),
    /// 421 (RFC 5321 §3.8).
    #[error("service closing: {}", show(.0))]
    ServiceClosing(Reply),
    /// TLS was required and the server does not offer STARTTLS (RFC 3207 §4).
    #[error("TLS required, STARTTLS not offered")]
    TlsNotOffered,
    /// TLS was required and STARTTLS was refused (RFC 3207 §4: 454).
    #[error("TLS required, STARTTLS refused: {}", show(.0))]
    StartTlsRefused(Reply),
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(String),
    #[error("the server's bytes were not SMTP: {0}")]
    Protocol(ProtocolError),
    #[error("connection lost")]
    ConnectionLost,
    #[error("timed out waiting for the server")]
    TimedOut,
    #[error("I/O error: {0}")]
    Io(String),
    /// The envelope cannot be sent to this server as it is (nothing was sent).
    #[error("cannot send: {0}")]
    Send(SendError),
}

impl Failure {
    /// Whether retrying cannot help: an envelope that no server can take as it is.
    /// (SMTPUTF8 or REQUIRETLS not offered, or a size limit, is decided per server: RFC 6531
    /// §3.2, RFC 8689 §4.2.1, RFC 1870 §6 — another MX may offer them, so the last server
    /// tried decides, and the result is permanent only if that was such a refusal.)
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Failure::Send(
                SendError::InvalidSender
                    | SendError::InvalidRecipient(_)
                    | SendError::InvalidDsnParameter(_)
                    | SendError::SmtpUtf8NotOffered
                    | SendError::RequireTlsNotOffered
                    | SendError::TooBig { .. }
            )
        )
    }

    /// The envelope itself is at fault: no other server needs to be tried.
    fn is_envelope_error(&self) -> bool {
        matches!(
            self,
            Failure::Send(
                SendError::InvalidSender
                    | SendError::InvalidRecipient(_)
                    | SendError::InvalidDsnParameter(_)
                    | SendError::NoRecipients
            )
        )
    }
}

fn show(reply: &Reply) -> String {
    let mut text = reply.code.to_string();
    if !reply.enhanced.is_empty() {
        text.push(' ');
        text.push_str(&reply.enhanced);
    }
    for line in &reply.lines {
        text.push(' ');
        text.push_str(line);
    }
    text
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The verdict of the server that answered: `Accepted`, `TemporaryFailure` or
    /// `PermanentFailure` (never `NotAttempted`).
    Replied(RecipientOutcome),
    /// No server gave a verdict: try again later (the last target's failure).
    Deferred(Failure),
    /// Cannot be delivered as it is, without a server's reply ([`Failure::is_permanent`]):
    /// bounce.
    Failed(Failure),
}

impl DeliveryOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(
            self,
            DeliveryOutcome::Replied(RecipientOutcome::Accepted(_))
        )
    }

    /// A 5xx or a permanent local failure: bounce (RFC 3464).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            DeliveryOutcome::Replied(RecipientOutcome::PermanentFailure(_))
                | DeliveryOutcome::Failed(_)
        )
    }

    /// Try again later.
    pub fn is_temporary(&self) -> bool {
        !self.is_accepted() && !self.is_permanent()
    }
}

/// The negotiated TLS parameters of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSummary {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// IANA-style suite name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

/// The result of [`deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// One outcome per recipient, in the envelope's order.
    pub recipients: Vec<DeliveryOutcome>,
    /// The target host that gave the (last) transaction's replies.
    pub host: Option<String>,
    /// The address it was reached at.
    pub address: Option<SocketAddr>,
    /// TLS of that session; `None` when it was plaintext.
    pub tls: Option<TlsSummary>,
    /// Every target address that gave no verdict, with why, in the order tried (logs,
    /// TLS-RPT, RFC 8460 §4.3).
    pub failures: Vec<(String, SocketAddr, Failure)>,
}

/// Delivers `body` to the recipients of `envelope` (all of one destination domain) through
/// `targets` on `port`, saying `hostname` in EHLO. See the module documentation.
pub async fn deliver(
    targets: &[Target],
    port: u16,
    hostname: &str,
    envelope: &Envelope,
    body: MessageBody,
    options: &DeliveryOptions,
) -> DeliveryReport {
    let count = envelope.recipients.len();
    let mut report = DeliveryReport {
        recipients: vec![DeliveryOutcome::Deferred(Failure::NoTargets); count],
        host: None,
        address: None,
        tls: None,
        failures: Vec::new(),
    };
    let config = ClientConfig {
        hostname: hostname.to_string(),
        tls_active: false,
    };
    if ClientCore::new(config.clone()).is_err() {
        let failure = Failure::InvalidHostname(hostname.to_string());
        report.recipients = vec![DeliveryOutcome::Deferred(failure); count];
        return report;
    }
    // RFC 8689 §4.2.1: a REQUIRETLS message never travels in plaintext.
    let require_tls = options.require_tls || envelope.require_tls;
    let mut pending: Vec<usize> = (0..count).collect();
    let mut last_failure = Failure::NoTargets;
    'targets: for target in targets {
        // RFC 5321 §5.1: each address of the host in turn.
        for ip in &target.addresses {
            if pending.is_empty() {
                break 'targets;
            }
            let addr = SocketAddr::new(*ip, port);
            let mut starttls = true;
            let attempt = loop {
                let session = Session {
                    host: &target.host,
                    addr,
                    config: config.clone(),
                    envelope,
                    pending: &pending,
                    body: body.clone(),
                    options,
                    require_tls,
                    starttls,
                };
                let attempt = session.run().await;
                // RFC 7435 §3: a failed opportunistic handshake falls back to cleartext.
                if starttls
                    && !require_tls
                    && attempt.decided.is_empty()
                    && matches!(attempt.failure, Some(Failure::TlsHandshake(_)))
                {
                    if let Some(failure) = attempt.failure {
                        report.failures.push((target.host.clone(), addr, failure));
                    }
                    starttls = false;
                    continue;
                }
                break attempt;
            };
            if attempt.answered {
                report.host = Some(target.host.clone());
                report.address = Some(addr);
                report.tls = attempt.tls;
            }
            for (index, outcome) in attempt.decided {
                if let Some(slot) = report.recipients.get_mut(index) {
                    *slot = outcome;
                }
                pending.retain(|&p| p != index);
            }
            if let Some(failure) = attempt.failure {
                report
                    .failures
                    .push((target.host.clone(), addr, failure.clone()));
                let stop = failure.is_envelope_error();
                last_failure = failure;
                if stop {
                    break 'targets;
                }
            }
        }
    }
    for index in pending {
        if let Some(slot) = report.recipients.get_mut(index) {
            *slot = if last_failure.is_permanent() {
                DeliveryOutcome::Failed(last_failure.clone())
            } else {
                DeliveryOutcome::Deferred(last_failure.clone())
            };
        }
    }
    report
}

/// What one connection decided.
struct Attempt {
    /// Recipients (envelope indexes) with a final verdict from this server or a local one.
    decided: Vec<(usize, DeliveryOutcome)>,
    /// Why the others got none; `None` when all pending ones were decided.
    failure: Option<Failure>,
    /// A transaction got replies here.
    answered: bool,
    tls: Option<TlsSummary>,
}

/// One connection to one address.
struct Session<'a> {
    host: &'a str,
    addr: SocketAddr,
    config: ClientConfig,
    envelope: &'a Envelope,
    /// The envelope indexes still to deliver.
    pending: &'a [usize],
    body: MessageBody,
    options: &'a DeliveryOptions,
    require_tls: bool,
    /// Use STARTTLS when offered (off for the cleartext retry after a failed handshake).
    starttls: bool,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// After a failed handshake.
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf).await,
            Stream::Tls(tls) => tls.read(buf).await,
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.write_all(bytes).await,
            Stream::Tls(tls) => {
                tls.write_all(bytes).await?;
                tls.flush().await
            }
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Stream::Plain(tcp) => tcp.shutdown().await,
            Stream::Tls(tls) => tls.shutdown().await,
            Stream::Gone => Ok(()),
        };
    }
}

impl Session<'_> {
    async fn run(self) -> Attempt {
        let mut attempt = Attempt {
            decided: Vec::new(),
            failure: None,
            answered: false,
            tls: None,
        };
        let connect =
            tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(self.addr)).await;
        let tcp = match connect {
            Err(_) => {
                attempt.failure = Some(Failure::ConnectTimeout(self.addr));
                return attempt;
            }
            Ok(Err(error)) => {
                attempt.failure = Some(Failure::Connect(self.addr, error.to_string()));
                return attempt;
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        let mut core = match ClientCore::new(self.config.clone()) {
            Ok(core) => core,
            Err(_) => {
                attempt.failure = Some(Failure::InvalidHostname(self.config.hostname.clone()));
                return attempt;
            }
        };
        let mut stream = Stream::Plain(tcp);
        // The envelope indexes of the transaction's recipients, in its order.
        let mut sent: Vec<usize> = Vec::new();
        let mut transaction_done = false;
        let mut io_failure: Option<Failure> = None;
        let mut end: Option<SessionEnd> = None;
        let mut buf = vec![0u8; READ_BUFFER];
        'session: loop {
            if let Err(failure) = self.flush(&mut core, &mut stream).await {
                io_failure = Some(failure);
                break;
            }
            if core.should_close() {
                break;
            }
            // None: nothing awaited, which the loop below never leaves the core in.
            let Some(wait) = core.timeout() else {
                break;
            };
            match tokio::time::timeout(self.options.wait(wait), stream.read(&mut buf)).await {
                Err(_) => core.timed_out(),
                Ok(Ok(0)) => core.feed_eof(),
                Ok(Ok(n)) => core.feed(buf.get(..n).unwrap_or_default()),
                Ok(Err(error)) => {
                    io_failure = Some(Failure::Io(error.to_string()));
                    core.feed_eof();
                }
            }
            while let Some(event) = core.next_event() {
                match event {
                    Event::Ready {
                        extensions,
                        tls_active,
                    } => {
                        if !tls_active && self.starttls && extensions.starttls {
                            // RFC 3207 §4; idle after Ready, so this cannot fail.
                            let _ = core.start_tls();
                        } else if !tls_active && self.require_tls {
                            attempt.failure = Some(Failure::TlsNotOffered);
                            let _ = core.quit();
                        } else {
                            self.send(&mut core, &mut sent, &mut attempt);
                        }
                    }
                    Event::UpgradeTls => {
                        // Write what is left (nothing after STARTTLS), then the handshake.
                        if let Err(failure) = self.flush(&mut core, &mut stream).await {
                            io_failure = Some(failure);
                            break 'session;
                        }
                        match self.handshake(stream).await {
                            Ok((tls, summary)) => {
                                stream = Stream::Tls(tls);
                                attempt.tls = Some(summary);
                                core.tls_started();
                            }
                            Err(failure) => {
                                stream = Stream::Gone;
                                io_failure = Some(failure);
                                break 'session;
                            }
                        }
                    }
                    Event::StartTlsRefused(reply) => {
                        if self.require_tls {
                            attempt.failure = Some(Failure::StartTlsRefused(reply));
                            let _ = core.quit();
                        } else {
                            self.send(&mut core, &mut sent, &mut attempt);
                        }
                    }
                    Event::Transaction(result) => {
                        transaction_done = true;
                        let outcomes = result.outcomes();
                        for (&index, outcome) in sent.iter().zip(outcomes) {
                            if outcome != RecipientOutcome::NotAttempted {
                                attempt.answered = true;
                                attempt
                                    .decided
                                    .push((index, DeliveryOutcome::Replied(outcome)));
                            }
                        }
                        if core.is_idle() {
                            let _ = core.quit();
                        }
                    }
                    Event::Closed(session_end) => end = Some(session_end),
                }
            }
        }
        stream.shutdown().await;

        let undecided = self
            .pending
            .iter()
            .any(|index| !attempt.decided.iter().any(|(i, _)| i == index));
        if undecided && attempt.failure.is_none() {
            attempt.failure = Some(
                io_failure
                    .or_else(|| end.and_then(session_failure))
                    .unwrap_or(if transaction_done {
                        Failure::ConnectionLost
                    } else {
                        Failure::Io("session ended without a transaction".to_string())
                    }),
            );
        }
        if !undecided {
            attempt.failure = None;
        }
        attempt
    }

    /// Starts the transaction for the pending recipients. A recipient address that cannot
    /// be written is decided here (permanent, RFC 5321 §4.1.2); any other refusal of the
    /// envelope ends the session.
    fn send(&self, core: &mut ClientCore, sent: &mut Vec<usize>, attempt: &mut Attempt) {
        let mut indexes: Vec<usize> = self
            .pending
            .iter()
            .copied()
            .filter(|index| !attempt.decided.iter().any(|(i, _)| i == index))
            .collect();
        loop {
            if indexes.is_empty() {
                let _ = core.quit();
                return;
            }
            let mut envelope = self.envelope.clone();
            envelope.recipients = indexes
                .iter()
                .filter_map(|&index| self.envelope.recipients.get(index).cloned())
                .collect();
            match core.send(&envelope, self.body.clone()) {
                Ok(()) => {
                    *sent = indexes;
                    return;
                }
                Err(SendError::InvalidRecipient(position)) if position < indexes.len() => {
                    let index = indexes.remove(position);
                    let failure = Failure::Send(SendError::InvalidRecipient(index));
                    attempt
                        .decided
                        .push((index, DeliveryOutcome::Failed(failure)));
                }
                Err(error) => {
                    attempt.failure = Some(Failure::Send(error));
                    let _ = core.quit();
                    return;
                }
            }
        }
    }

    /// Writes everything the core has to send, each write within its timeout.
    async fn flush(&self, core: &mut ClientCore, stream: &mut Stream) -> Result<(), Failure> {
        loop {
            let wait = self.options.wait(core.timeout().unwrap_or(COMMAND_TIMEOUT));
            let out = core.take_output();
            if out.is_empty() {
                return Ok(());
            }
            match tokio::time::timeout(wait, stream.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    core.timed_out();
                    return Err(Failure::Io(error.to_string()));
                }
                Err(_) => {
                    core.timed_out();
                    return Err(Failure::TimedOut);
                }
            }
        }
    }

    /// The STARTTLS handshake (RFC 3207 §4), SNI set to the MX host name (RFC 6066 §3,
    /// RFC 7672 §8.1).
    async fn handshake(
        &self,
        stream: Stream,
    ) -> Result<(Box<TlsStream<TcpStream>>, TlsSummary), Failure> {
        let Stream::Plain(tcp) = stream else {
            return Err(Failure::TlsHandshake("not a plaintext stream".to_string()));
        };
        let name = ServerName::try_from(self.host.to_string())
            .unwrap_or_else(|_| ServerName::IpAddress(self.addr.ip().into()));
        let connector = TlsConnector::from(Arc::clone(&self.options.tls));
        let tls =
            tokio::time::timeout(self.options.handshake_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| Failure::TlsHandshake("timed out".to_string()))?
                .map_err(|error| Failure::TlsHandshake(error.to_string()))?;
        let (_, connection) = tls.get_ref();
        // The names the server side logs (sealpost_net::TlsInfo).
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher = connection
            .negotiated_cipher_suite()
            .map(|suite| {
                let suite = suite.suite();
                suite
                    .as_str()
                    .map_or_else(|| format!("{suite:?}"), str::to_string)
            })
            .unwrap_or_else(|| "unknown".to_string());
        let summary = TlsSummary { version, cipher };
        Ok((Box::new(tls), summary))
    }
}

/// The failure a session end stands for; `None` after our QUIT.
fn session_failure(end: SessionEnd) -> Option<Failure> {
    match end {
        SessionEnd::Quit(_) => None,
        SessionEnd::Refused(reply) => Some(Failure::Refused(reply)),
        SessionEnd::ServiceClosing(reply) => Some(Failure::ServiceClosing(reply)),
        SessionEnd::Protocol(error) => Some(Failure::Protocol(error)),
        SessionEnd::ConnectionLost => Some(Failure::ConnectionLost),
        SessionEnd::TimedOut => Some(Failure::TimedOut),
    }
}
