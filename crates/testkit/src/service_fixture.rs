//! A protocol service wired to a temporary store and real TLS, reached over in-memory
//! streams: what the IMAP and POP3 integration tests set up before every test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustls::ServerConfig;
use sealpost_net::{CancellationToken, Connection, Handler, ServiceKind};
use sealpost_store::Store;
use sealpost_store::authenticate::Authenticator;
use sealpost_types::{AccountId, MailboxId};

use crate::line_client::LineClient;
use crate::store::{
    PASSWORD, account_id, deliver_to_inbox, fast_authenticator, fixture_store, inbox_id,
    inbox_messages,
};
use crate::tls::self_signed_cert_store;

/// Buffer size of the in-memory stream between client and server.
const DUPLEX_BUFFER: usize = 256 * 1024;

/// A service `S` over a [`fixture_store`] (accounts with [`PASSWORD`]) and a self-signed
/// certificate, with one implicit-TLS port and one plaintext port offering STARTTLS.
/// Each session runs the service on one end of a `tokio::io::duplex`, as the listener would
/// on a socket, from its own documentation address (192.0.2.0/24).
pub struct ServiceFixture<S> {
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub service: Arc<S>,
    implicit_tls: (ServiceKind, Arc<ServerConfig>),
    plaintext: (ServiceKind, Arc<ServerConfig>),
    next_peer: AtomicU32,
    /// Cancelled by a test to shut the sessions down.
    pub shutdown: CancellationToken,
}

impl<S: Handler> ServiceFixture<S> {
    /// Builds the store and certificate, then the service with `make_service`; `implicit_tls`
    /// and `plaintext` are the service kinds of the two ports (e.g. IMAPS and IMAP).
    pub async fn new(
        implicit_tls: ServiceKind,
        plaintext: ServiceKind,
        make_service: impl FnOnce(Arc<dyn Store>, Arc<Authenticator>) -> S,
    ) -> ServiceFixture<S> {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(&dir.path().join("data"), PASSWORD).await;
        let service = Arc::new(make_service(Arc::clone(&store), fast_authenticator(&store)));
        let certs = self_signed_cert_store(dir.path());
        let tls = sealpost_net::server_config(Arc::clone(&certs), implicit_tls).unwrap();
        let starttls = sealpost_net::server_config(certs, plaintext).unwrap();
        ServiceFixture {
            _dir: dir,
            store,
            service,
            implicit_tls: (implicit_tls, tls),
            plaintext: (plaintext, starttls),
            next_peer: AtomicU32::new(1),
            shutdown: CancellationToken::new(),
        }
    }

    /// A different client address for each session, so that per-address state (failure
    /// delays) does not leak between sessions.
    fn peer(&self) -> SocketAddr {
        let n = self.next_peer.fetch_add(1, Ordering::Relaxed);
        SocketAddr::from(([192, 0, 2, (n % 250) as u8 + 1], 40000))
    }

    /// A session on the implicit-TLS port, the handshake done, the greeting not yet read.
    /// `idle` replaces the connection's read timeout (`[limits] idle_timeout_secs`).
    pub async fn connect_tls(&self, idle: Option<Duration>) -> LineClient {
        let (client, server) = tokio::io::duplex(DUPLEX_BUFFER);
        let (kind, tls) = &self.implicit_tls;
        let mut conn = Connection::new(server, 1, self.peer(), *kind);
        if let Some(idle) = idle {
            conn.set_idle_timeout(idle);
        }
        let service = Arc::clone(&self.service);
        let tls = Arc::clone(tls);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            if conn.start_tls(tls).await.is_ok() {
                service.handle(&mut conn, shutdown).await;
                let _ = conn.shutdown().await;
            }
        });
        let mut client = LineClient::new(client);
        client.upgrade().await;
        client
    }

    /// A session on the plaintext port (STARTTLS offered), the greeting not yet read.
    pub fn connect_plain(&self) -> LineClient {
        let (client, server) = tokio::io::duplex(DUPLEX_BUFFER);
        let (kind, starttls) = &self.plaintext;
        let mut conn = Connection::new(server, 1, self.peer(), *kind);
        conn.set_tls_config(Some(Arc::clone(starttls)));
        let service = Arc::clone(&self.service);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            service.handle(&mut conn, shutdown).await;
            let _ = conn.shutdown().await;
        });
        LineClient::new(client)
    }

    /// See [`account_id`].
    pub async fn account(&self, user: &str) -> AccountId {
        account_id(&*self.store, user).await
    }

    /// See [`inbox_id`].
    pub async fn inbox(&self, user: &str) -> MailboxId {
        inbox_id(&*self.store, user).await
    }

    /// See [`deliver_to_inbox`].
    pub async fn deliver(&self, user: &str, message: &[u8]) {
        deliver_to_inbox(&*self.store, user, message).await;
    }

    /// See [`inbox_messages`].
    pub async fn inbox_messages(&self, user: &str) -> Vec<Vec<u8>> {
        inbox_messages(&*self.store, user).await
    }
}
