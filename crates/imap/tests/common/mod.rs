//! An IMAP service over in-memory streams (with real TLS) and a temporary SQLite store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use sealpost_imap::service::ImapService;
use sealpost_net::{CancellationToken, CertPaths, CertStore, Connection, Handler, ServiceKind};
use sealpost_sasl::FailureDelays;
use sealpost_store::authenticate::Authenticator;
use sealpost_store::sqlite::SqliteStore;
use sealpost_store::{Directory, Store};
use sealpost_types::{AccountId, Address, Domain, MailboxId, SpecialUse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const PASSWORD: &str = "correct-horse";

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub service: Arc<ImapService>,
    tls: Arc<ServerConfig>,
    tls_plain_port: Arc<ServerConfig>,
    next_peer: std::sync::atomic::AtomicU32,
    pub shutdown: CancellationToken,
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("data")).await.unwrap());
    store
        .add_domain(&Domain::parse("test.example").unwrap(), Vec::new())
        .await
        .unwrap();
    let hash = sealpost_sasl::hash_password(PASSWORD).unwrap();
    for user in ["alice@test.example", "bob@test.example"] {
        store
            .add_account(&Address::parse(user).unwrap(), &hash)
            .await
            .unwrap();
    }
    let directory: Arc<dyn Directory> = Arc::clone(&store) as Arc<dyn Directory>;
    let delays = FailureDelays::new(
        Duration::from_millis(1),
        Duration::from_millis(5),
        Duration::from_secs(60),
    );
    let authenticator = Arc::new(Authenticator::with_delays(directory, delays));
    let service = Arc::new(ImapService::new(
        "imap.test.example",
        Arc::clone(&store),
        authenticator,
    ));
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let certs = CertStore::load(CertPaths { cert, key }, Vec::new()).unwrap();
    let tls = sealpost_net::server_config(Arc::clone(&certs), ServiceKind::Imaps).unwrap();
    let tls_plain_port = sealpost_net::server_config(certs, ServiceKind::Imap).unwrap();
    Fixture {
        _dir: dir,
        store,
        service,
        tls,
        tls_plain_port,
        next_peer: std::sync::atomic::AtomicU32::new(1),
        shutdown: CancellationToken::new(),
    }
}

impl Fixture {
    fn peer(&self) -> SocketAddr {
        let n = self
            .next_peer
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SocketAddr::from(([192, 0, 2, (n % 250) as u8 + 1], 40000))
    }

    /// An imaps session (TLS from the start), greeting read.
    pub async fn imaps(&self) -> Client {
        self.imaps_with_idle(None).await
    }

    /// An imaps session whose connection read timeout (`[limits] idle_timeout_secs`)
    /// is `idle` instead of the default.
    pub async fn imaps_with_idle(&self, idle: Option<Duration>) -> Client {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let mut conn = Connection::new(server, 1, self.peer(), ServiceKind::Imaps);
        if let Some(idle) = idle {
            conn.set_idle_timeout(idle);
        }
        let service = Arc::clone(&self.service);
        let tls = Arc::clone(&self.tls);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            if conn.start_tls(tls).await.is_ok() {
                service.handle(&mut conn, shutdown).await;
                let _ = conn.shutdown().await;
            }
        });
        let mut client = Client::new(Box::new(client));
        client.upgrade().await;
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK "), "{greeting}");
        client
    }

    /// An imap session (plaintext, STARTTLS offered), greeting read.
    pub async fn imap(&self) -> Client {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let mut conn = Connection::new(server, 1, self.peer(), ServiceKind::Imap);
        conn.set_tls_config(Some(Arc::clone(&self.tls_plain_port)));
        let service = Arc::clone(&self.service);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            service.handle(&mut conn, shutdown).await;
            let _ = conn.shutdown().await;
        });
        let mut client = Client::new(Box::new(client));
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK "), "{greeting}");
        client
    }

    /// A logged-in imaps session.
    pub async fn login(&self, user: &str) -> Client {
        let mut client = self.imaps().await;
        let reply = client.run(&format!("LOGIN {user} {PASSWORD}")).await;
        assert!(reply.last().unwrap().starts_with("t OK "), "{reply:?}");
        client
    }

    pub async fn account(&self, user: &str) -> AccountId {
        self.store
            .account(&Address::parse(user).unwrap())
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn inbox(&self, user: &str) -> MailboxId {
        let account = self.account(user).await;
        self.store
            .mailbox_by_special_use(account, SpecialUse::Inbox)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn deliver(&self, user: &str, message: &[u8]) {
        let inbox = self.inbox(user).await;
        self.store
            .deliver(Arc::from(message), 1_700_000_000, &[(inbox, Vec::new())])
            .await
            .unwrap();
    }

    pub async fn inbox_messages(&self, user: &str) -> Vec<Vec<u8>> {
        let inbox = self.inbox(user).await;
        let mut out = Vec::new();
        for meta in self.store.messages(inbox).await.unwrap() {
            out.push(self.store.read_blob(&meta.blob).await.unwrap());
        }
        out
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A line client that can switch to TLS.
pub struct Client {
    stream: Option<Box<dyn Io>>,
    buffer: Vec<u8>,
}

impl Client {
    fn new(stream: Box<dyn Io>) -> Client {
        Client {
            stream: Some(stream),
            buffer: Vec::new(),
        }
    }

    /// TLS handshake as a client (any certificate accepted).
    pub async fn upgrade(&mut self) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = self.stream.take().unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, stream).await.unwrap();
        self.buffer.clear();
        self.stream = Some(Box::new(tls));
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let stream = self.stream.as_mut().unwrap();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        let stream = self.stream.as_mut().unwrap();
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk))
            .await
            .expect("the server answers within 20 s");
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// One line with its CRLF, as bytes; empty at end of stream.
    pub async fn raw_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(lf) = self.buffer.iter().position(|&b| b == b'\n') {
                return self.buffer.drain(..=lf).collect();
            }
            if !self.fill().await {
                return std::mem::take(&mut self.buffer);
            }
        }
    }

    /// One line without CRLF.
    pub async fn line(&mut self) -> String {
        let line = self.raw_line().await;
        String::from_utf8_lossy(&line)
            .trim_end_matches("\r\n")
            .to_string()
    }

    pub async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await
    }

    /// Sends `t <line>` and returns every line up to and including the tagged one.
    pub async fn run(&mut self, line: &str) -> Vec<String> {
        self.send(format!("t {line}\r\n").as_bytes()).await;
        self.until_tagged("t").await
    }

    /// Lines up to and including the one tagged `tag`.
    pub async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let prefix = format!("{tag} ");
        let mut lines = Vec::new();
        loop {
            let raw = self.raw_line().await;
            assert!(!raw.is_empty(), "connection closed after {lines:?}");
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches("\r\n")
                .to_string();
            let done = line.starts_with(&prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Whether the server closed the connection (nothing more to read).
    pub async fn closed(&mut self) -> bool {
        self.buffer.is_empty() && !self.fill().await
    }
}

#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
