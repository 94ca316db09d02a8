//! The POP3 service: drives a [`ServerCore`](crate::core::ServerCore) over a connection and
//! answers its events from the authenticator and the store.
//!
//! One [`Pop3Service`] serves both ports: `pop3` (110, STLS required before any login,
//! RFC 2595 §4) and `pop3s` (995, implicit TLS, RFC 8314 §3.2).
//!
//! The maildrop is the account's INBOX as IMAP sees it (see [`maildrop`]). Concurrent POP3
//! sessions of one account are refused with `-ERR [IN-USE]` (RFC 1939 §8, RFC 2449 §8.1.1):
//! a per-account lock held from login to the end of the session, inside this process. IMAP
//! sessions are not locked out; a message they expunge meanwhile keeps its number in the
//! POP3 session, and retrieving it gives `-ERR` (its bytes can never be wrong: a blob is
//! named by its hash).

mod maildrop;
mod session;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sealpost_net::{CancellationToken, Connection, Handler, ServiceKind};
use sealpost_store::Store;
use sealpost_store::authenticate::Authenticator;

use crate::core::CoreConfig;
use maildrop::{Locks, SizeCache};

pub use maildrop::unique_id;

/// RFC 1939 §3: an inactivity autologout timer of at least 10 minutes once logged in.
pub const LOGGED_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Before login a client must send each command within this long (or the configured idle
/// timeout if shorter): Dovecot allows 3 minutes, SECURITY-TESTS PO-08 asks 30 s to 3 min.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Pop3Service {
    hostname: String,
    store: Arc<dyn Store>,
    authenticator: Arc<Authenticator>,
    locks: Arc<Locks>,
    sizes: SizeCache,
}

impl Pop3Service {
    pub fn new(hostname: &str, store: Arc<dyn Store>, authenticator: Arc<Authenticator>) -> Self {
        Self {
            hostname: hostname.to_string(),
            store,
            authenticator,
            locks: Arc::new(Locks::default()),
            sizes: SizeCache::default(),
        }
    }
}

#[async_trait]
impl Handler for Pop3Service {
    async fn handle(&self, conn: &mut Connection, shutdown: CancellationToken) {
        let tls = conn.is_tls();
        // RFC 2595 §4: STLS on the port that starts in plaintext (110).
        let offer_stls = conn.service() == ServiceKind::Pop3 && !tls;
        let config = CoreConfig::new(&self.hostname, offer_stls, tls);
        session::Session::new(self, conn, config)
            .run(shutdown)
            .await;
    }
}
