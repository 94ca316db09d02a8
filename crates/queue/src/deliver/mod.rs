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
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig as TlsConfig;
use sealpost_dns::Target;
use sealpost_smtp::client::{ClientConfig, ClientCore, Envelope, MessageBody, RecipientOutcome};
use tokio::sync::mpsc::UnboundedSender;

/// How long a TCP connect may take before the next address is tried. RFC 5321 §4.5.3.2
/// names no value; a few tens of seconds is what MTAs use (Postfix: 30 s).
mod failure;
mod session;

pub(crate) use failure::show;
pub use failure::{CertificateProblem, Failure};
use session::Session;

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
