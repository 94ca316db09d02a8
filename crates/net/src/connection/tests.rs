use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::test_certs::{KeyKind, TestCa, server_name, write_pair};
use crate::tls::{CertPaths, CertStore, server_config};

struct Fixture {
    ca: TestCa,
    config: Arc<ServerConfig>,
    _dir: tempfile::TempDir,
}

fn fixture(service: ServiceKind) -> Fixture {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(
        dir.path(),
        "mail",
        &ca.issue(&["mail.example.test"], KeyKind::EcdsaP256),
    );
    let store = CertStore::load(CertPaths { cert, key }, vec![]).unwrap();
    let config = server_config(store, service).unwrap();
    Fixture {
        ca,
        config,
        _dir: dir,
    }
}

fn peer() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn pair() -> (DuplexStream, Connection) {
    let (client, server) = duplex(64 * 1024);
    (
        client,
        Connection::new(server, 7, peer(), ServiceKind::Smtp),
    )
}

async fn client_tls(
    fx: &Fixture,
    alpn: &[&[u8]],
    io: DuplexStream,
) -> std::io::Result<TlsStream<DuplexStream>> {
    TlsConnector::from(fx.ca.client(&rustls::version::TLS13, alpn))
        .connect(server_name("mail.example.test"), io)
        .await
}

async fn line(conn: &mut Connection, max: usize) -> Vec<u8> {
    conn.read_line(max).await.unwrap().unwrap()
}

/// Client side of a STARTTLS upgrade: handshake, then send NOOP.
async fn handshake_then_noop(fx: &Fixture, io: DuplexStream) -> TlsStream<DuplexStream> {
    let mut tls = client_tls(fx, &[], io).await.unwrap();
    tls.write_all(b"NOOP\r\n").await.unwrap();
    tls.flush().await.unwrap();
    tls
}

// CVE-2011-0411 / SECURITY-TESTS ST-01: "STARTTLS\r\nRSET\r\n" in one segment.
#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded() {
    let fx = fixture(ServiceKind::Smtp);
    let (mut client, mut conn) = pair();
    client.write_all(b"STARTTLS\r\nRSET\r\n").await.unwrap();
    assert_eq!(line(&mut conn, 512).await, b"STARTTLS\r\n");
    assert_eq!(conn.buffered_len(), 6);

    let server = async {
        conn.start_tls(Arc::clone(&fx.config)).await.unwrap();
        let next = conn.read_line(512).await.unwrap();
        conn.write_all(b"250 2.0.0 OK\r\n").await.unwrap();
        conn.flush().await.unwrap();
        next
    };
    let (next, mut tls) = tokio::join!(server, handshake_then_noop(&fx, client));
    assert_eq!(next.as_deref(), Some(&b"NOOP\r\n"[..]));
    let mut reply = [0u8; 14];
    tls.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"250 2.0.0 OK\r\n");

    assert!(conn.is_tls());
    let info = conn.tls_info().unwrap();
    assert_eq!(info.version, "TLSv1.3");
    assert!(info.cipher.starts_with("TLS13_"), "{}", info.cipher);
    assert_eq!(info.sni.as_deref(), Some("mail.example.test"));
    assert_eq!(info.alpn, None);
}

// The command line arrives in two pieces; the injected line is still in our buffer.
#[tokio::test]
async fn injection_split_across_writes_is_discarded() {
    let fx = fixture(ServiceKind::Smtp);
    let (mut client, mut conn) = pair();
    client.write_all(b"STAR").await.unwrap();
    let (first, ()) = tokio::join!(conn.read_line(512), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(b"TTLS\r\nRSET\r\n").await.unwrap();
    });
    assert_eq!(first.unwrap().unwrap(), b"STARTTLS\r\n");
    assert_eq!(conn.buffered_len(), 6, "RSET is waiting in the buffer");
    let server = async {
        conn.start_tls(Arc::clone(&fx.config)).await.unwrap();
        conn.read_line(512).await.unwrap()
    };
    let (next, _tls) = tokio::join!(server, handshake_then_noop(&fx, client));
    assert_eq!(next.as_deref(), Some(&b"NOOP\r\n"[..]));
}

// SECURITY-TESTS ST-09: plaintext arriving after the upgrade began is a bogus TLS record.
#[tokio::test]
async fn injection_arriving_after_the_upgrade_fails_the_handshake() {
    let fx = fixture(ServiceKind::Smtp);
    let (mut client, mut conn) = pair();
    client.write_all(b"STARTTLS\r\n").await.unwrap();
    assert_eq!(line(&mut conn, 512).await, b"STARTTLS\r\n");
    client.write_all(b"RSET\r\n").await.unwrap();
    let (server, client) = tokio::join!(
        conn.start_tls(Arc::clone(&fx.config)),
        client_tls(&fx, &[], client)
    );
    assert!(matches!(server, Err(NetError::Handshake(_))), "{server:?}");
    assert!(client.is_err());
    // RFC 3207 §4.1: no plaintext fallback on the same connection.
    assert!(matches!(conn.read_line(512).await, Err(NetError::Closed)));
    assert!(matches!(conn.write_all(b"x").await, Err(NetError::Closed)));
    assert!(!conn.is_tls());
}

#[tokio::test]
async fn alpn_is_reported_and_starttls_twice_is_refused() {
    let fx = fixture(ServiceKind::Smtp);
    let (client, mut conn) = pair();
    let (server, tls) = tokio::join!(
        conn.start_tls(Arc::clone(&fx.config)),
        client_tls(&fx, &[b"smtp"], client)
    );
    server.unwrap();
    let _tls = tls.unwrap();
    assert_eq!(conn.tls_info().unwrap().alpn.as_deref(), Some("smtp"));
    assert!(matches!(
        conn.start_tls(Arc::clone(&fx.config)).await,
        Err(NetError::AlreadyTls)
    ));
}

#[tokio::test]
async fn start_tls_default_needs_a_config() {
    let fx = fixture(ServiceKind::Imap);
    let (client, mut conn) = pair();
    assert!(matches!(
        conn.start_tls_default().await,
        Err(NetError::NoTlsConfig)
    ));
    conn.set_tls_config(Some(Arc::clone(&fx.config)));
    let (server, tls) = tokio::join!(
        conn.start_tls_default(),
        client_tls(&fx, &[b"imap"], client)
    );
    server.unwrap();
    tls.unwrap();
    assert_eq!(conn.tls_info().unwrap().alpn.as_deref(), Some("imap"));
}

#[tokio::test]
async fn silent_client_hits_the_handshake_timeout() {
    let fx = fixture(ServiceKind::Smtp);
    let (_client, mut conn) = pair();
    conn.set_handshake_timeout(Duration::from_millis(100));
    let result = conn.start_tls(Arc::clone(&fx.config)).await;
    assert!(
        matches!(result, Err(NetError::HandshakeTimeout(_))),
        "{result:?}"
    );
    assert!(matches!(conn.read_line(512).await, Err(NetError::Closed)));
}

#[tokio::test]
async fn lines_end_at_lf_and_eof_is_none() {
    let (mut client, mut conn) = pair();
    client.write_all(b"EHLO a\r\nNOOP\nQUIT\r\n").await.unwrap();
    drop(client);
    assert_eq!(line(&mut conn, 512).await, b"EHLO a\r\n");
    assert_eq!(line(&mut conn, 512).await, b"NOOP\n");
    // A line of exactly max_len bytes (terminator included) fits.
    assert_eq!(line(&mut conn, 6).await, b"QUIT\r\n");
    assert!(conn.read_line(512).await.unwrap().is_none());
    assert!(conn.read_line(512).await.unwrap().is_none());
}

#[tokio::test]
async fn eof_inside_a_line_is_an_error() {
    let (mut client, mut conn) = pair();
    client.write_all(b"NOO").await.unwrap();
    drop(client);
    assert!(matches!(
        conn.read_line(512).await,
        Err(NetError::UnexpectedEof)
    ));
}

#[tokio::test]
async fn line_too_long_is_bounded_and_the_rest_of_the_line_is_skipped() {
    let (mut client, mut conn) = pair();
    client.write_all(&[b'a'; 100]).await.unwrap();
    client.write_all(b"\r\nNOOP\r\n").await.unwrap();
    assert!(matches!(
        conn.read_line(10).await,
        Err(NetError::LineTooLong { max: 10 })
    ));
    assert_eq!(line(&mut conn, 10).await, b"NOOP\r\n");

    // A line longer than the read buffer, cut at the limit: the limit is the line length
    // plus one byte, so the CR is in but the LF is not.
    let writer = tokio::spawn(async move {
        let long = vec![b'x'; 20_000];
        client.write_all(&long).await.unwrap();
        client.write_all(b"\r\nQUIT\r\n").await.unwrap();
        client
    });
    assert!(matches!(
        conn.read_line(20_001).await,
        Err(NetError::LineTooLong { max: 20_001 })
    ));
    assert_eq!(line(&mut conn, 512).await, b"QUIT\r\n");
    drop(writer.await.unwrap());
    assert!(conn.read_line(512).await.unwrap().is_none());
}

// SECURITY-TESTS RL-02: an endless line keeps failing in bounded steps until EOF.
#[tokio::test]
async fn endless_line_fails_in_bounded_steps() {
    let (mut client, mut conn) = pair();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'A'; 64 * 1024];
        for _ in 0..40 {
            client.write_all(&chunk).await.unwrap();
        }
    });
    let mut too_long = 0;
    loop {
        match conn.read_line(512).await {
            Err(NetError::LineTooLong { .. }) => too_long += 1,
            Ok(None) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.await.unwrap();
    // 2.5 MiB: one error for the first 512 bytes, then one per skipped MiB, then EOF.
    assert_eq!(too_long, 3);
}

#[tokio::test]
async fn idle_timeout_applies_to_reads() {
    let (_client, mut conn) = pair();
    conn.set_idle_timeout(Duration::from_millis(50));
    assert_eq!(conn.idle_timeout(), Duration::from_millis(50));
    assert!(matches!(
        conn.read_line(512).await,
        Err(NetError::Timeout(_))
    ));
    let mut buf = [0u8; 4];
    assert!(matches!(
        conn.read_chunk(&mut buf).await,
        Err(NetError::Timeout(_))
    ));
}

// SECURITY-TESTS RL-08: a byte every 30 ms does not keep a line open past the timeout.
#[tokio::test]
async fn trickled_line_still_times_out() {
    let (mut client, mut conn) = pair();
    conn.set_idle_timeout(Duration::from_millis(200));
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            if client.write_all(b"E").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    assert!(matches!(
        conn.read_line(512).await,
        Err(NetError::Timeout(_))
    ));
    trickle.abort();
}

#[tokio::test]
async fn counted_reads_use_buffered_bytes_first() {
    let (mut client, mut conn) = pair();
    client
        .write_all(b"A1 APPEND INBOX {5}\r\nhello world\r\n")
        .await
        .unwrap();
    assert_eq!(line(&mut conn, 512).await, b"A1 APPEND INBOX {5}\r\n");
    let mut literal = [0u8; 5];
    conn.read_exact_into(&mut literal).await.unwrap();
    assert_eq!(&literal, b"hello");
    let mut chunk = [0u8; 3];
    assert_eq!(conn.read_chunk(&mut chunk).await.unwrap(), 3);
    assert_eq!(&chunk, b" wo");
    assert_eq!(line(&mut conn, 512).await, b"rld\r\n");

    // A literal that spans several writes.
    let writer = tokio::spawn(async move {
        client.write_all(b"abc").await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        client.write_all(b"defgh").await.unwrap();
        client
    });
    let mut big = [0u8; 8];
    conn.read_exact_into(&mut big).await.unwrap();
    assert_eq!(&big, b"abcdefgh");
    drop(writer.await.unwrap());
    let mut more = [0u8; 1];
    assert!(matches!(
        conn.read_exact_into(&mut more).await,
        Err(NetError::UnexpectedEof)
    ));
    assert_eq!(conn.read_chunk(&mut more).await.unwrap(), 0);
}

#[tokio::test]
async fn accessors() {
    let (_client, conn) = pair();
    assert_eq!(conn.id(), 7);
    assert_eq!(conn.peer(), peer());
    assert_eq!(conn.service(), ServiceKind::Smtp);
    assert!(!conn.is_tls());
    assert!(conn.tls_info().is_none());
    assert!(format!("{conn:?}").contains("192.0.2.1:40000"));
}

/// Collects the values recorded into spans (enough of a subscriber for one test).
#[derive(Default)]
struct Recorder {
    fields: Arc<Mutex<Vec<(String, String)>>>,
}

struct Visit<'a>(&'a Mutex<Vec<(String, String)>>);

impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .lock()
            .unwrap()
            .push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0
            .lock()
            .unwrap()
            .push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Visit(&self.fields));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Visit(&self.fields));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn span_carries_the_connection_and_tls_fields() {
    let recorder = Recorder::default();
    let fields = Arc::clone(&recorder.fields);
    let _guard = tracing::subscriber::set_default(recorder);
    // Another test thread may have met the span's callsite first, with no subscriber, and
    // cached "never interested": recompute now that this thread's recorder exists.
    tracing::callsite::rebuild_interest_cache();
    let fx = fixture(ServiceKind::Smtp);
    let (client, mut conn) = pair();
    let (server, tls) = tokio::join!(
        conn.start_tls(Arc::clone(&fx.config)),
        client_tls(&fx, &[], client)
    );
    server.unwrap();
    tls.unwrap();
    let fields = fields.lock().unwrap().clone();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("id").as_deref(), Some("7"));
    assert_eq!(get("peer").as_deref(), Some("192.0.2.1:40000"));
    assert_eq!(get("service").as_deref(), Some("smtp"));
    assert_eq!(get("tls_version").as_deref(), Some("TLSv1.3"));
    assert!(get("cipher").unwrap().starts_with("TLS13_"));
}
