//! The SMTP service: drives a [`ServerCore`](crate::core::ServerCore) over a connection and
//! answers its events from the directory and the store.
//!
//! One [`SmtpService`] serves the three SMTP ports; the port decides the role:
//! - `smtp` (25): inbound MTA. STARTTLS offered, no AUTH, recipients only in local domains.
//! - `submission` (587) and `submissions` (465): authenticated users only (RFC 6409); the
//!   sender must be one of the user's addresses; remote recipients go to the outbound queue.

mod authentication;
mod headers;
mod message;
mod recipients;
mod reports;
mod sent;
mod session;

use std::sync::Arc;

use async_trait::async_trait;
use sealpost_net::{CancellationToken, Connection, Handler, ServiceKind};
use sealpost_sasl::Mechanism;
use sealpost_store::authenticate::Authenticator;
use sealpost_store::{RecentSubmissions, Store};

use crate::core::CoreConfig;

pub use authentication::InboundAuth;
pub use reports::{DeliveryReports, LocalDeliveries, LocalDelivery, LocalOutcome};

/// Limits of the SMTP service (`[smtp]` in the configuration).
#[derive(Debug, Clone)]
pub struct SmtpLimits {
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_errors: usize,
    /// Failed AUTH attempts in one session before 421 and close.
    pub max_auth_failures: usize,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        Self {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            max_auth_failures: 3,
        }
    }
}

/// What a port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRole {
    /// Port 25: mail for local recipients from anywhere.
    Inbound,
    /// Ports 587/465: mail from authenticated users to anywhere.
    Submission,
}

pub struct SmtpService {
    hostname: String,
    store: Arc<dyn Store>,
    authenticator: Arc<Authenticator>,
    limits: SmtpLimits,
    /// Poked after a message is queued for remote recipients, so that the outbound
    /// scheduler sends it at once.
    queue_waker: Option<Arc<tokio::sync::Notify>>,
    /// Set when submissions get a copy in the submitter's Sent mailbox (`[smtp] save_sent`),
    /// noted here for the IMAP service.
    sent_copies: Option<Arc<RecentSubmissions>>,
    /// Sends the delivery reports local recipients ask for; DSN is offered only with it.
    reports: Option<Arc<dyn DeliveryReports>>,
    /// Sender authentication of mail arriving on port 25; `None`: no checks.
    inbound_auth: Option<InboundAuth>,
}

impl SmtpService {
    pub fn new(
        hostname: &str,
        store: Arc<dyn Store>,
        authenticator: Arc<Authenticator>,
        limits: SmtpLimits,
    ) -> Self {
        Self {
            hostname: hostname.to_string(),
            store,
            authenticator,
            limits,
            queue_waker: None,
            sent_copies: None,
            reports: None,
            inbound_auth: None,
        }
    }

    /// Checks mail arriving on port 25 with `auth` (SPF, DKIM, DMARC, ARC, iprev), adds
    /// the Authentication-Results field, and applies the receiving domains' policies.
    pub fn with_inbound_auth(mut self, auth: InboundAuth) -> Self {
        self.inbound_auth = Some(auth);
        self
    }

    /// With `Some(record)`, each message an authenticated user submits (587/465) is also
    /// filed in that user's Sent mailbox, marked \Seen, in the same commit as its delivery,
    /// and noted in `record` — the one the IMAP service is given, so that the copy the
    /// client APPENDs to Sent right after is not stored twice. `None` (the default, and
    /// `[smtp] save_sent = false`): no copy.
    pub fn with_sent_copies(mut self, record: Option<Arc<RecentSubmissions>>) -> Self {
        self.sent_copies = record;
        self
    }

    /// Sends delivery reports for local recipients through `reports`, and offers the DSN
    /// extension on the submission ports (RFC 3461): every NOTIFY value is then honoured, for
    /// local recipients here and for remote ones by the queue.
    pub fn with_delivery_reports(mut self, reports: Arc<dyn DeliveryReports>) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Wakes `waker` (the outbound scheduler's) whenever a message is queued.
    pub fn with_queue_waker(mut self, waker: Arc<tokio::sync::Notify>) -> Self {
        self.queue_waker = Some(waker);
        self
    }

    /// Tells the scheduler that the queue has new mail.
    pub(crate) fn queued(&self) {
        if let Some(waker) = &self.queue_waker {
            waker.notify_one();
        }
    }

    fn role(service: ServiceKind) -> PortRole {
        match service {
            ServiceKind::Submission | ServiceKind::Submissions => PortRole::Submission,
            _ => PortRole::Inbound,
        }
    }

    fn core_config(&self, service: ServiceKind, tls_active: bool) -> CoreConfig {
        let role = Self::role(service);
        CoreConfig {
            hostname: self.hostname.clone(),
            max_message_size: self.limits.max_message_size,
            max_recipients: self.limits.max_recipients,
            max_errors: self.limits.max_errors,
            // RFC 3207 §4: STARTTLS on the ports that start in plaintext.
            offer_starttls: !tls_active,
            tls_active,
            // RFC 6409 §4.3 / RFC 4954: AUTH only on submission; never on the MTA port.
            auth_mechanisms: match role {
                PortRole::Submission => Mechanism::ALL.to_vec(),
                PortRole::Inbound => Vec::new(),
            },
            // RFC 8314 §3.3: no password over an unencrypted connection.
            auth_requires_tls: true,
            require_auth_for_mail: role == PortRole::Submission,
            // RFC 3461 §4: DSN only where every NOTIFY value can be honoured: on submission,
            // with a report sender for local recipients. Not on port 25: there a success
            // report would be mail to whatever address a stranger puts in MAIL FROM.
            offer_dsn: role == PortRole::Submission && self.reports.is_some(),
        }
    }
}

#[async_trait]
impl Handler for SmtpService {
    async fn handle(&self, conn: &mut Connection, shutdown: CancellationToken) {
        let config = self.core_config(conn.service(), conn.is_tls());
        let role = Self::role(conn.service());
        session::Session::new(self, conn, config, role)
            .run(shutdown)
            .await;
    }
}
