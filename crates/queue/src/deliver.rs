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

use std::collections::HashMap;
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
use tokio::sync::mpsc::UnboundedSender;
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
    /// What policy demands of particular MX hosts (by [`Target::host`]): DANE (RFC 7672) or
    /// MTA-STS (RFC 8461); the others get [`DeliveryOptions::tls`] and `require_tls`.
    pub hosts: HashMap<String, HostTls>,
}

/// The TLS one MX host must offer.
#[derive(Debug, Clone)]
pub struct HostTls {
    /// A verifying client configuration (DANE or PKIX).
    pub tls: Arc<TlsConfig>,
    /// Nothing is sent without TLS (and without the verification passing).
    pub require_tls: bool,
}

impl DeliveryOptions {
    /// Opportunistic TLS with the given client configuration and the default timeouts.
    pub fn new(tls: Arc<TlsConfig>) -> Self {
        DeliveryOptions {
            tls,
            require_tls: false,
            hosts: HashMap::new(),
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

    /// The client configuration and whether TLS is required, for one MX host.
    fn tls_for(&self, host: &str) -> (&Arc<TlsConfig>, bool) {
        match self.hosts.get(host) {
            Some(policy) => (&policy.tls, policy.require_tls || self.require_tls),
            None => (&self.tls, self.require_tls),
        }
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
    /// The handshake failed because the certificate did not verify (DANE or MTA-STS).
    #[error("TLS certificate rejected: {detail}")]
    Certificate {
        problem: CertificateProblem,
        detail: String,
    },
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

    /// The RFC 3463 status code that describes this failure in a report and in the queue.
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            // X.4.4 "Unable to route" (no host to try).
            Failure::NoTargets => "4.4.4",
            // X.3.5 "System incorrectly configured" (our own name).
            Failure::InvalidHostname(_) => "4.3.5",
            // X.4.1 "No answer from host".
            Failure::Connect(..) | Failure::ConnectTimeout(_) => "4.4.1",
            // X.4.2 "Bad connection".
            Failure::Refused(_)
            | Failure::ServiceClosing(_)
            | Failure::Protocol(_)
            | Failure::ConnectionLost
            | Failure::TimedOut
            | Failure::Io(_) => "4.4.2",
            // RFC 8689 §5 / RFC 3463 X.7.10 "Encryption needed".
            Failure::TlsNotOffered
            | Failure::StartTlsRefused(_)
            | Failure::TlsHandshake(_)
            | Failure::Certificate { .. } => "4.7.10",
            Failure::Send(error) => match error {
                // X.1.7 "Bad sender's mailbox address syntax".
                SendError::InvalidSender => "5.1.7",
                // X.1.3 "Bad destination mailbox address syntax".
                SendError::InvalidRecipient(_) => "5.1.3",
                // X.5.4 "Invalid command arguments".
                SendError::InvalidDsnParameter(_) => "5.5.4",
                // RFC 6531 §3.7.5 / RFC 6533 X.6.7: non-ASCII addresses not permitted.
                SendError::SmtpUtf8NotOffered => "5.6.7",
                // RFC 8689 §5: REQUIRETLS support required.
                SendError::RequireTlsNotOffered => "5.7.30",
                // X.3.4 "Message too big for system".
                SendError::TooBig { .. } => "5.3.4",
                _ => "4.3.0",
            },
        }
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

/// A reply on one line: `CODE ENHANCED TEXT...`.
pub(crate) fn show(reply: &Reply) -> String {
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
    /// That server offered DSN (RFC 3461): it took the NOTIFY parameters on, and reports
    /// from there on are its job.
    pub dsn: bool,
    /// Every target address that gave no verdict, with why, in the order tried (logs,
    /// TLS-RPT, RFC 8460 §4.3).
    pub failures: Vec<(String, SocketAddr, Failure)>,
}

/// One message of a batch for [`deliver_batch`]: the envelope (recipients of one destination
/// domain) and the bytes, as they leave.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub envelope: Envelope,
    pub body: MessageBody,
}

/// Verdicts of one finished transaction, sent while the batch goes on so that the caller can
/// record them at once (the window in which a crash would send a message twice, RFC 5321
/// §6.1, is then one store commit, not a whole batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The index of the message in the batch.
    pub message: usize,
    /// The target host that answered.
    pub host: String,
    /// The recipients decided (envelope indexes) with their outcomes; these are final: the
    /// batch's [`DeliveryReport`] says the same of them.
    pub outcomes: Vec<(usize, DeliveryOutcome)>,
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
    let batch = [Outgoing {
        envelope: envelope.clone(),
        body,
    }];
    deliver_batch(targets, port, hostname, &batch, options, None)
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| DeliveryReport::undecided(0, Failure::NoTargets))
}

/// Delivers several messages to one destination domain, one transaction after the other
/// on the same connection (RFC 5321 §4.5.4.1: a session may carry any number of
/// transactions; connection reuse spares a TCP and TLS handshake per message). A target
/// that fails moves every message still undecided on to the next target. Returns one report
/// per message, in order; each finished transaction is also sent on `progress` as it
/// completes.
pub async fn deliver_batch(
    targets: &[Target],
    port: u16,
    hostname: &str,
    messages: &[Outgoing],
    options: &DeliveryOptions,
    progress: Option<&UnboundedSender<Progress>>,
) -> Vec<DeliveryReport> {
    let mut reports: Vec<DeliveryReport> = messages
        .iter()
        .map(|m| DeliveryReport::undecided(m.envelope.recipients.len(), Failure::NoTargets))
        .collect();
    let config = ClientConfig {
        hostname: hostname.to_string(),
        tls_active: false,
    };
    if ClientCore::new(config.clone()).is_err() {
        let failure = Failure::InvalidHostname(hostname.to_string());
        return messages
            .iter()
            .map(|m| DeliveryReport::undecided(m.envelope.recipients.len(), failure.clone()))
            .collect();
    }
    // Per message: the envelope indexes still without a verdict.
    let mut pending: Vec<Vec<usize>> = messages
        .iter()
        .map(|m| (0..m.envelope.recipients.len()).collect())
        .collect();
    let mut last_failure: Vec<Failure> = vec![Failure::NoTargets; messages.len()];
    'targets: for target in targets {
        // RFC 5321 §5.1: each address of the host in turn.
        for ip in &target.addresses {
            if pending.iter().all(Vec::is_empty) {
                break 'targets;
            }
            let addr = SocketAddr::new(*ip, port);
            let mut starttls = true;
            let attempt = loop {
                let session = Session {
                    host: &target.host,
                    addr,
                    config: config.clone(),
                    messages,
                    pending: &pending,
                    options,
                    starttls,
                    progress,
                };
                let attempt = session.run().await;
                // RFC 7435 §3: a failed opportunistic handshake falls back to cleartext.
                if starttls
                    && !options.tls_for(&target.host).1
                    && attempt.decided.iter().all(Vec::is_empty)
                    && let Some(failure @ Failure::TlsHandshake(_)) = &attempt.session_failure
                {
                    for (report, waiting) in reports.iter_mut().zip(&pending) {
                        if !waiting.is_empty() {
                            report
                                .failures
                                .push((target.host.clone(), addr, failure.clone()));
                        }
                    }
                    starttls = false;
                    continue;
                }
                break attempt;
            };
            for (index, report) in reports.iter_mut().enumerate() {
                let (Some(waiting), Some(last)) =
                    (pending.get_mut(index), last_failure.get_mut(index))
                else {
                    continue;
                };
                if attempt.answered.get(index) == Some(&true) {
                    report.host = Some(target.host.clone());
                    report.address = Some(addr);
                    report.tls.clone_from(&attempt.tls);
                    report.dsn = attempt.dsn;
                }
                for (recipient, outcome) in attempt.decided.get(index).into_iter().flatten() {
                    if let Some(slot) = report.recipients.get_mut(*recipient) {
                        *slot = outcome.clone();
                    }
                    waiting.retain(|p| p != recipient);
                }
                if let Some(Some(failure)) = attempt.failures.get(index) {
                    report
                        .failures
                        .push((target.host.clone(), addr, failure.clone()));
                    *last = failure.clone();
                    // The envelope itself is at fault: no other server can take it.
                    if failure.is_envelope_error() {
                        for recipient in waiting.drain(..) {
                            if let Some(slot) = report.recipients.get_mut(recipient) {
                                *slot = DeliveryOutcome::Failed(failure.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    for ((report, waiting), last) in reports.iter_mut().zip(&pending).zip(&last_failure) {
        for &index in waiting {
            if let Some(slot) = report.recipients.get_mut(index) {
                *slot = if last.is_permanent() {
                    DeliveryOutcome::Failed(last.clone())
                } else {
                    DeliveryOutcome::Deferred(last.clone())
                };
            }
        }
    }
    reports
}

impl DeliveryReport {
    /// No verdict yet: every recipient deferred with `failure`.
    fn undecided(recipients: usize, failure: Failure) -> Self {
        DeliveryReport {
            recipients: vec![DeliveryOutcome::Deferred(failure); recipients],
            host: None,
            address: None,
            tls: None,
            dsn: false,
            failures: Vec::new(),
        }
    }
}

/// What one connection decided, per message of the batch.
struct Attempt {
    /// Recipients (envelope indexes) with a final verdict from this server or a local one.
    decided: Vec<Vec<(usize, DeliveryOutcome)>>,
    /// Why a message's other recipients got none; `None` when all were decided.
    failures: Vec<Option<Failure>>,
    /// Why the session as a whole ended early (connect, TLS, a lost connection).
    session_failure: Option<Failure>,
    /// A transaction of the message got replies here.
    answered: Vec<bool>,
    tls: Option<TlsSummary>,
    /// The server offered DSN.
    dsn: bool,
}

impl Attempt {
    fn is_decided(&self, message: usize, recipient: usize) -> bool {
        self.decided
            .get(message)
            .is_some_and(|decided| decided.iter().any(|(i, _)| *i == recipient))
    }

    fn decide(&mut self, message: usize, recipient: usize, outcome: DeliveryOutcome) {
        if let Some(decided) = self.decided.get_mut(message) {
            decided.push((recipient, outcome));
        }
    }

    fn fail(&mut self, message: usize, failure: Failure) {
        if let Some(slot) = self.failures.get_mut(message) {
            *slot = Some(failure);
        }
    }
}

/// One connection to one address.
struct Session<'a> {
    host: &'a str,
    addr: SocketAddr,
    config: ClientConfig,
    messages: &'a [Outgoing],
    /// Per message, the envelope indexes still to deliver.
    pending: &'a [Vec<usize>],
    options: &'a DeliveryOptions,
    /// Use STARTTLS when offered (off for the cleartext retry after a failed handshake).
    starttls: bool,
    progress: Option<&'a UnboundedSender<Progress>>,
}

/// The transaction in flight: which message, and the envelope indexes of its recipients in
/// the transaction's order.
struct InFlight {
    message: usize,
    sent: Vec<usize>,
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
        let count = self.messages.len();
        let mut attempt = Attempt {
            decided: vec![Vec::new(); count],
            failures: vec![None; count],
            session_failure: None,
            answered: vec![false; count],
            tls: None,
            dsn: false,
        };
        let connect =
            tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(self.addr)).await;
        let tcp = match connect {
            Err(_) => {
                return self.finish(attempt, Some(Failure::ConnectTimeout(self.addr)), &[]);
            }
            Ok(Err(error)) => {
                let failure = Failure::Connect(self.addr, error.to_string());
                return self.finish(attempt, Some(failure), &[]);
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        let mut core = match ClientCore::new(self.config.clone()) {
            Ok(core) => core,
            Err(_) => {
                let failure = Failure::InvalidHostname(self.config.hostname.clone());
                return self.finish(attempt, Some(failure), &[]);
            }
        };
        let mut stream = Stream::Plain(tcp);
        let mut next_message = 0usize;
        let mut in_flight: Option<InFlight> = None;
        let mut transacted = vec![false; count];
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
                        attempt.dsn = extensions.dsn;
                        if !tls_active && self.starttls && extensions.starttls {
                            // RFC 3207 §4; idle after Ready, so this cannot fail.
                            let _ = core.start_tls();
                        } else if !tls_active && self.require_tls() {
                            attempt.session_failure = Some(Failure::TlsNotOffered);
                            let _ = core.quit();
                        } else {
                            in_flight = self.send_next(&mut core, &mut next_message, &mut attempt);
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
                        if self.require_tls() {
                            attempt.session_failure = Some(Failure::StartTlsRefused(reply));
                            let _ = core.quit();
                        } else {
                            in_flight = self.send_next(&mut core, &mut next_message, &mut attempt);
                        }
                    }
                    Event::Transaction(result) => {
                        if let Some(InFlight { message, sent }) = in_flight.take() {
                            if let Some(done) = transacted.get_mut(message) {
                                *done = true;
                            }
                            let mut verdicts = Vec::new();
                            for (&index, outcome) in sent.iter().zip(result.outcomes()) {
                                if outcome != RecipientOutcome::NotAttempted {
                                    verdicts.push((index, DeliveryOutcome::Replied(outcome)));
                                }
                            }
                            if !verdicts.is_empty() {
                                if let Some(answered) = attempt.answered.get_mut(message) {
                                    *answered = true;
                                }
                                for (index, outcome) in &verdicts {
                                    attempt.decide(message, *index, outcome.clone());
                                }
                                if let Some(progress) = self.progress {
                                    // A closed receiver only means nobody records early.
                                    let _ = progress.send(Progress {
                                        message,
                                        host: self.host.to_string(),
                                        outcomes: verdicts,
                                    });
                                }
                            }
                        }
                        if core.is_idle() {
                            in_flight = self.send_next(&mut core, &mut next_message, &mut attempt);
                        }
                    }
                    Event::Closed(session_end) => end = Some(session_end),
                }
            }
        }
        stream.shutdown().await;
        let session_failure = attempt
            .session_failure
            .take()
            .or(io_failure)
            .or_else(|| end.and_then(session_failure));
        self.finish(attempt, session_failure, &transacted)
    }

    /// Gives every message left undecided by the session a reason: its own, or the
    /// session's.
    fn finish(
        &self,
        mut attempt: Attempt,
        session_failure: Option<Failure>,
        transacted: &[bool],
    ) -> Attempt {
        for (message, waiting) in self.pending.iter().enumerate() {
            let undecided = waiting.iter().any(|&r| !attempt.is_decided(message, r));
            let Some(slot) = attempt.failures.get_mut(message) else {
                continue;
            };
            if !undecided {
                *slot = None;
            } else if slot.is_none() {
                *slot = Some(session_failure.clone().unwrap_or(
                    if transacted.get(message) == Some(&true) {
                        Failure::ConnectionLost
                    } else {
                        Failure::Io("session ended without a transaction".to_string())
                    },
                ));
            }
        }
        attempt.session_failure = session_failure;
        attempt
    }

    /// Starts the transaction of the next message with recipients to deliver; QUIT when
    /// there is none. A recipient address that cannot be written is decided here
    /// (permanent, RFC 5321 §4.1.2); a message the server cannot take as it is (SMTPUTF8,
    /// REQUIRETLS or SIZE, RFC 6531 §3.2, RFC 8689 §4.2.1, RFC 1870 §6) is skipped with its
    /// reason and the next one goes on in the same session.
    fn send_next(
        &self,
        core: &mut ClientCore,
        next_message: &mut usize,
        attempt: &mut Attempt,
    ) -> Option<InFlight> {
        while let Some(outgoing) = self.messages.get(*next_message) {
            let message = *next_message;
            *next_message += 1;
            let mut indexes: Vec<usize> = self
                .pending
                .get(message)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&index| !attempt.is_decided(message, index))
                .collect();
            if indexes.is_empty() {
                continue;
            }
            // RFC 8689 §4.2.1: a REQUIRETLS message never travels in plaintext.
            if outgoing.envelope.require_tls && !core.tls_active() {
                attempt.fail(message, Failure::TlsNotOffered);
                continue;
            }
            loop {
                let mut envelope = outgoing.envelope.clone();
                envelope.recipients = indexes
                    .iter()
                    .filter_map(|&index| outgoing.envelope.recipients.get(index).cloned())
                    .collect();
                match core.send(&envelope, outgoing.body.clone()) {
                    Ok(()) => {
                        return Some(InFlight {
                            message,
                            sent: indexes,
                        });
                    }
                    Err(SendError::InvalidRecipient(position)) if position < indexes.len() => {
                        let index = indexes.remove(position);
                        let failure = Failure::Send(SendError::InvalidRecipient(index));
                        attempt.decide(message, index, DeliveryOutcome::Failed(failure));
                        if indexes.is_empty() {
                            break;
                        }
                    }
                    Err(error) => {
                        attempt.fail(message, Failure::Send(error));
                        break;
                    }
                }
            }
        }
        let _ = core.quit();
        None
    }

    fn require_tls(&self) -> bool {
        self.options.tls_for(self.host).1
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
        let connector = TlsConnector::from(Arc::clone(self.options.tls_for(self.host).0));
        let tls =
            tokio::time::timeout(self.options.handshake_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| Failure::TlsHandshake("timed out".to_string()))?
                .map_err(handshake_failure)?;
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

/// Why a certificate was refused, as TLS-RPT reports it (RFC 8460 §4.3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProblem {
    /// `certificate-host-mismatch`: not valid for the MX host name.
    HostMismatch,
    /// `certificate-expired`.
    Expired,
    /// `certificate-not-trusted`: no chain to a trusted CA (or the DANE-TA anchor).
    NotTrusted,
    /// `validation-failure`: anything else, e.g. no TLSA record matches.
    Invalid,
}

impl CertificateProblem {
    /// The RFC 8460 §4.3 result type.
    pub fn result_type(self) -> &'static str {
        match self {
            CertificateProblem::HostMismatch => "certificate-host-mismatch",
            CertificateProblem::Expired => "certificate-expired",
            CertificateProblem::NotTrusted => "certificate-not-trusted",
            CertificateProblem::Invalid => "validation-failure",
        }
    }
}

/// A failed handshake: a refused certificate by kind, anything else as it was said.
fn handshake_failure(error: io::Error) -> Failure {
    use rustls::CertificateError as E;
    let detail = error.to_string();
    let problem = match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(certificate)) => match certificate {
            E::NotValidForName | E::NotValidForNameContext { .. } => {
                CertificateProblem::HostMismatch
            }
            E::Expired | E::ExpiredContext { .. } => CertificateProblem::Expired,
            E::UnknownIssuer | E::BadSignature => CertificateProblem::NotTrusted,
            _ => CertificateProblem::Invalid,
        },
        _ => return Failure::TlsHandshake(detail),
    };
    Failure::Certificate { problem, detail }
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
