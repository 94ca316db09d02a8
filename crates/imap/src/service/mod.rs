//! The IMAP service: drives an [`ImapCore`](crate::core::ImapCore) over a connection and
//! answers its events from the authenticator and the store (DESIGN §1–2).
//!
//! One [`ImapService`] serves both ports: `imap` (143, STARTTLS required before any login,
//! RFC 8314 §3, RFC 9051 §6.2.3) and `imaps` (993, implicit TLS).
//!
//! One file per command family; [`session`] holds the driver loop and the dispatch,
//! [`selected`] the message-number ↔ UID map of the selected mailbox, which changes only at
//! the moments RFC 9051 §7 allows.

mod append;
mod auth;
mod copy_move;
mod expunge;
mod fetch;
mod id;
mod idle;
mod limits;
mod list;
mod mailbox;
mod quota;
mod search;
mod select;
mod selected;
mod session;
mod store;

use std::sync::Arc;

use async_trait::async_trait;
use sealpost_net::{CancellationToken, Connection, Handler, ServiceKind};
use sealpost_store::authenticate::Authenticator;
use sealpost_store::{RecentSubmissions, Store};

use crate::core::{CoreConfig, Extensions};

pub use limits::DEFAULT_MAX_SESSIONS_PER_USER_IP;

pub struct ImapService {
    hostname: String,
    store: Arc<dyn Store>,
    authenticator: Arc<Authenticator>,
    user_sessions: Arc<limits::UserSessions>,
    max_sessions_per_user_ip: usize,
    /// Where the SMTP service notes the Sent copies it filed, so that APPEND does not store
    /// the client's copy of the same message again.
    recent_submissions: Option<Arc<RecentSubmissions>>,
}

impl ImapService {
    pub fn new(hostname: &str, store: Arc<dyn Store>, authenticator: Arc<Authenticator>) -> Self {
        Self {
            hostname: hostname.to_string(),
            store,
            authenticator,
            user_sessions: Arc::default(),
            max_sessions_per_user_ip: DEFAULT_MAX_SESSIONS_PER_USER_IP,
            recent_submissions: None,
        }
    }

    /// Reads `record`, the one the SMTP service notes its Sent copies in: an APPEND to Sent
    /// of a message just submitted (same Message-ID) reports the copy already there instead
    /// of storing a second one.
    pub fn with_recent_submissions(mut self, record: Arc<RecentSubmissions>) -> Self {
        self.recent_submissions = Some(record);
        self
    }

    /// How many sessions one account may have open from one address at a time (at
    /// least 1); the next login gets `NO [LIMIT]`.
    pub fn with_max_sessions_per_user_ip(mut self, limit: usize) -> Self {
        self.max_sessions_per_user_ip = limit.max(1);
        self
    }

    fn core_config(&self, conn: &Connection) -> CoreConfig {
        let tls = conn.is_tls();
        CoreConfig {
            greeting: format!("{} IMAP ready", self.hostname),
            tls_active: tls,
            // RFC 9051 §6.2.1: STARTTLS on the port that starts in plaintext (143).
            offer_starttls: conn.service() == ServiceKind::Imap && !tls,
            // RFC 8314 §3 / RFC 9051 §6.2.3: no cleartext passwords (LOGINDISABLED).
            login_requires_tls: true,
            extensions: Extensions::default(),
            ..CoreConfig::default()
        }
    }
}

#[async_trait]
impl Handler for ImapService {
    async fn handle(&self, conn: &mut Connection, shutdown: CancellationToken) {
        let config = self.core_config(conn);
        session::Session::new(self, conn, config)
            .run(shutdown)
            .await;
    }
}
