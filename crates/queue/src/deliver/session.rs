//! One connection to one MX address: the async driver of the sans-IO client core over TCP
//! and rustls, carrying a batch's transactions one after the other.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use sealpost_smtp::client::{
    COMMAND_TIMEOUT, ClientConfig, ClientCore, Event, RecipientOutcome, SendError, SessionEnd,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::failure::{handshake_failure, session_failure};
use super::{
    DeliveryOptions, DeliveryOutcome, Failure, Outgoing, Progress, READ_BUFFER, TlsSummary,
};

/// What one connection decided, per message of the batch.
pub(super) struct Attempt {
    /// Recipients (envelope indexes) with a final verdict from this server or a local one.
    pub(super) decided: Vec<Vec<(usize, DeliveryOutcome)>>,
    /// Why a message's other recipients got none; `None` when all were decided.
    pub(super) failures: Vec<Option<Failure>>,
    /// Why the session as a whole ended early (connect, TLS, a lost connection).
    pub(super) session_failure: Option<Failure>,
    /// A transaction of the message got replies here.
    pub(super) answered: Vec<bool>,
    pub(super) tls: Option<TlsSummary>,
    /// The server offered DSN.
    pub(super) dsn: bool,
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
pub(super) struct Session<'a> {
    pub(super) host: &'a str,
    pub(super) addr: SocketAddr,
    pub(super) config: ClientConfig,
    pub(super) messages: &'a [Outgoing],
    /// Per message, the envelope indexes still to deliver.
    pub(super) pending: &'a [Vec<usize>],
    pub(super) options: &'a DeliveryOptions,
    /// Use STARTTLS when offered (off for the cleartext retry after a failed handshake).
    pub(super) starttls: bool,
    pub(super) progress: Option<&'a UnboundedSender<Progress>>,
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
    pub(super) async fn run(self) -> Attempt {
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
