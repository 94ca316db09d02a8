//! End-to-end: real sockets on 127.0.0.1, real TLS handshakes, the echo handler.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::{Issued, KeyKind, TestCa, write_pair};
use common::{Client, Server, alert_of, read_to_close, tls_connect, trusting_client};
use rustls::AlertDescription;
use rustls::version::{TLS12, TLS13};
use sealpost_net::{CertPaths, CertStore, Limits, ListenerSpec, NetError, ServiceKind, bind};
use tokio::net::{TcpSocket, TcpStream};

const MAIL: &str = "mail.example.test";
const OTHER: &str = "mail.other.test";

struct Certs {
    ca: TestCa,
    dir: tempfile::TempDir,
    default: Issued,
    other: Issued,
    store: Arc<CertStore>,
}

impl Certs {
    fn new() -> Certs {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let default = ca.issue(&[MAIL], KeyKind::EcdsaP256);
        let other = ca.issue(&[OTHER], KeyKind::Rsa);
        let store = CertStore::load(
            Self::paths(&dir, "default", &default),
            vec![Self::paths(&dir, "other", &other)],
        )
        .unwrap();
        Certs {
            ca,
            dir,
            default,
            other,
            store,
        }
    }

    fn paths(dir: &tempfile::TempDir, stem: &str, issued: &Issued) -> CertPaths {
        let (cert, key) = write_pair(dir.path(), stem, issued);
        CertPaths { cert, key }
    }
}

fn quick_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(5),
        ..Limits::default()
    }
}

#[tokio::test]
async fn tls13_and_tls12_both_negotiate_on_implicit_tls() {
    let certs = Certs::new();
    let server = Server::start(
        &[ServiceKind::Imaps],
        Arc::clone(&certs.store),
        quick_limits(),
    )
    .await;
    let addr = server.addr(ServiceKind::Imaps);

    for (version, name) in [(&TLS13, "TLSv1.3"), (&TLS12, "TLSv1.2")] {
        let tls = tls_connect(addr, certs.ca.client(version, &[]), MAIL)
            .await
            .unwrap();
        let mut client = Client::new(tls);
        let hello = client.line().await;
        assert!(hello.starts_with(&format!("HELLO {name} ")), "{hello}");
        if name == "TLSv1.2" {
            assert!(hello.contains(" TLS_ECDHE_ECDSA_WITH_"), "{hello}");
        }
        assert_eq!(client.call("a NOOP\r\n").await, "ECHO a NOOP\r\n");
        assert_eq!(client.call("QUIT\r\n").await, "BYE\r\n");
    }
    server.stop().await;
}

// SECURITY-TESTS TLS-04/05 (ALPACA), RFC 7301 §3.2.
#[tokio::test]
async fn alpn_mismatch_is_refused_with_alert_120_and_absent_alpn_is_served() {
    let certs = Certs::new();
    let server = Server::start(
        &[ServiceKind::Imaps, ServiceKind::Submissions],
        Arc::clone(&certs.store),
        quick_limits(),
    )
    .await;
    let imaps = server.addr(ServiceKind::Imaps);

    for offer in [&[b"imap".as_slice()][..], &[b"foo", b"imap"], &[]] {
        let tls = tls_connect(imaps, certs.ca.client(&TLS13, offer), MAIL)
            .await
            .unwrap();
        let mut client = Client::new(tls);
        let expected = if offer.is_empty() { "-" } else { "imap" };
        let hello = client.line().await;
        assert!(hello.trim_end().ends_with(expected), "{hello}");
    }
    for offer in [b"http/1.1".as_slice(), b"h2"] {
        let err = tls_connect(imaps, certs.ca.client(&TLS13, &[offer]), MAIL)
            .await
            .unwrap_err();
        assert_eq!(
            alert_of(&err),
            Some(AlertDescription::NoApplicationProtocol),
            "{err}"
        );
    }
    // An IMAP client must not be able to talk to the submission port (and vice versa).
    let err = tls_connect(
        server.addr(ServiceKind::Submissions),
        certs.ca.client(&TLS12, &[b"imap"]),
        MAIL,
    )
    .await
    .unwrap_err();
    assert_eq!(
        alert_of(&err),
        Some(AlertDescription::NoApplicationProtocol)
    );
    server.stop().await;
}

#[tokio::test]
async fn sni_picks_the_certificate() {
    let certs = Certs::new();
    let server = Server::start(
        &[ServiceKind::Pop3s],
        Arc::clone(&certs.store),
        quick_limits(),
    )
    .await;
    let addr = server.addr(ServiceKind::Pop3s);

    let leaf = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    // Verified against the CA, so the name matches too.
    let tls = tls_connect(addr, certs.ca.client(&TLS13, &[]), OTHER)
        .await
        .unwrap();
    assert_eq!(leaf(&tls), certs.other.leaf_der);
    let tls = tls_connect(addr, certs.ca.client(&TLS12, &[]), MAIL)
        .await
        .unwrap();
    assert_eq!(leaf(&tls), certs.default.leaf_der);
    // Unknown name and no SNI at all: the default certificate.
    let tls = tls_connect(addr, trusting_client(true), "unknown.test")
        .await
        .unwrap();
    assert_eq!(leaf(&tls), certs.default.leaf_der);
    let tls = tls_connect(addr, trusting_client(false), OTHER)
        .await
        .unwrap();
    assert_eq!(leaf(&tls), certs.default.leaf_der);
    server.stop().await;
}

#[tokio::test]
async fn reload_serves_the_new_certificate_and_keeps_open_sessions() {
    let certs = Certs::new();
    let server = Server::start(
        &[ServiceKind::Imaps],
        Arc::clone(&certs.store),
        quick_limits(),
    )
    .await;
    let addr = server.addr(ServiceKind::Imaps);
    let leaf = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };

    let open = tls_connect(addr, certs.ca.client(&TLS13, &[]), MAIL)
        .await
        .unwrap();
    assert_eq!(leaf(&open), certs.default.leaf_der);
    let mut open = Client::new(open);
    open.line().await;

    let renewed = certs.ca.issue(&[MAIL], KeyKind::Ed25519);
    write_pair(certs.dir.path(), "default", &renewed);
    certs.store.reload().unwrap();
    let fresh = tls_connect(addr, certs.ca.client(&TLS13, &[]), MAIL)
        .await
        .unwrap();
    assert_eq!(leaf(&fresh), renewed.leaf_der);
    assert_eq!(open.call("still here\r\n").await, "ECHO still here\r\n");

    // A half-written key: reload fails, naming the file; the renewed certificate stays.
    let next = certs.ca.issue(&[MAIL], KeyKind::EcdsaP256);
    let (cert, key) = write_pair(certs.dir.path(), "default", &next);
    std::fs::write(&key, &next.key_pem[..next.key_pem.len() - 40]).unwrap();
    let err = certs.store.reload().unwrap_err();
    assert!(matches!(err, NetError::InvalidKey { .. }), "{err}");
    assert!(err.to_string().contains(&*key.to_string_lossy()), "{err}");
    let _ = cert;
    let after = tls_connect(addr, certs.ca.client(&TLS12, &[]), MAIL)
        .await
        .unwrap();
    assert_eq!(leaf(&after), renewed.leaf_der);
    assert_eq!(open.call("and now\r\n").await, "ECHO and now\r\n");
    server.stop().await;
}

// CVE-2011-0411 over a real socket: the injected line never reaches the handler.
#[tokio::test]
async fn starttls_over_tcp_discards_injected_plaintext() {
    let certs = Certs::new();
    let server = Server::start(
        &[ServiceKind::Imap],
        Arc::clone(&certs.store),
        quick_limits(),
    )
    .await;
    let tcp = TcpStream::connect(server.addr(ServiceKind::Imap))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut plain = Client::new(tcp);
    assert_eq!(plain.line().await, "HELLO plain\r\n");
    assert_eq!(plain.call("STARTTLS\r\nQWERT NOOP\r\n").await, "GO\r\n");
    assert!(plain.io.buffer().is_empty());
    let tcp = plain.into_inner();
    let tls = tokio_rustls::TlsConnector::from(certs.ca.client(&TLS13, &[b"imap"]))
        .connect(common::certs::server_name(MAIL), tcp)
        .await
        .unwrap();
    let mut client = Client::new(tls);
    assert!(client.line().await.starts_with("HELLO TLSv1.3 "));
    // The next reply answers our command, not the injected QWERT.
    assert_eq!(client.call("C NOOP\r\n").await, "ECHO C NOOP\r\n");
    server.stop().await;
}

// SECURITY-TESTS TLS-09: 5 bytes of a ClientHello, then silence.
#[tokio::test]
async fn stalled_handshake_is_dropped_after_the_handshake_timeout() {
    let certs = Certs::new();
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..quick_limits()
    };
    let server = Server::start(
        &[ServiceKind::Submissions],
        Arc::clone(&certs.store),
        limits,
    )
    .await;
    let mut tcp = TcpStream::connect(server.addr(ServiceKind::Submissions))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"\x16\x03\x01\x02\x00")
        .await
        .unwrap();
    let started = Instant::now();
    let got = read_to_close(&mut tcp, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{got:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));

    // SECURITY-TESTS TLS-10: plaintext on an implicit-TLS port gets no plaintext reply.
    let mut tcp = TcpStream::connect(server.addr(ServiceKind::Submissions))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"EHLO x\r\nAUTH PLAIN AGFsaWNl\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut tcp, Duration::from_secs(5)).await;
    assert!(!got.windows(4).any(|w| w == b"ECHO"), "{got:?}");
    server.stop().await;
}

async fn connect_from(ip: &str, addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

// SECURITY-TESTS RL-06.
#[tokio::test]
async fn per_ip_limit_closes_extra_connections_at_once() {
    let certs = Certs::new();
    let limits = Limits {
        max_connections_per_ip: 2,
        ..quick_limits()
    };
    let server = Server::start(
        &[ServiceKind::Smtp, ServiceKind::Pop3],
        Arc::clone(&certs.store),
        limits,
    )
    .await;
    let smtp = server.addr(ServiceKind::Smtp);
    let pop3 = server.addr(ServiceKind::Pop3);

    let mut first = Client::new(connect_from("127.0.0.3", smtp).await);
    assert_eq!(first.line().await, "HELLO plain\r\n");
    let mut second = Client::new(connect_from("127.0.0.3", pop3).await);
    assert_eq!(second.line().await, "HELLO plain\r\n");
    // The limit counts over all listeners; the refused client is told why, then closed.
    let mut third = connect_from("127.0.0.3", smtp).await;
    assert!(
        read_to_close(&mut third, Duration::from_secs(5))
            .await
            .starts_with(b"421 4.7.0 ")
    );
    // Another address is unaffected.
    let mut elsewhere = Client::new(connect_from("127.0.0.4", smtp).await);
    assert_eq!(elsewhere.line().await, "HELLO plain\r\n");

    // Closing one frees a slot.
    assert_eq!(first.call("QUIT\r\n").await, "BYE\r\n");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect_from("127.0.0.3", smtp).await;
        let got = read_to_close_or_greeting(&mut again).await;
        if got.starts_with(b"HELLO") {
            break;
        }
        assert!(Instant::now() < deadline, "slot was not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);
    server.stop().await;
}

async fn read_to_close_or_greeting(io: &mut TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), io.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].to_vec(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn global_limit_closes_extra_connections() {
    let certs = Certs::new();
    let limits = Limits {
        max_connections: 1,
        ..quick_limits()
    };
    let server = Server::start(&[ServiceKind::Smtp], Arc::clone(&certs.store), limits).await;
    let smtp = server.addr(ServiceKind::Smtp);
    let mut first = Client::new(TcpStream::connect(smtp).await.unwrap());
    assert_eq!(first.line().await, "HELLO plain\r\n");
    let mut second = connect_from("127.0.0.5", smtp).await;
    assert!(
        read_to_close(&mut second, Duration::from_secs(5))
            .await
            .starts_with(b"421 4.7.0 ")
    );
    server.stop().await;
}

#[tokio::test]
async fn address_in_use_is_a_named_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = bind(&[ListenerSpec {
        service: ServiceKind::Smtp,
        addr,
    }])
    .unwrap_err();
    assert!(matches!(
        err,
        NetError::Bind {
            kind: std::io::ErrorKind::AddrInUse,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {addr} for smtp: address already in use")
    );

    // The same address twice in one configuration: the second one fails, by name.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let err = bind(&[
        ListenerSpec {
            service: ServiceKind::Imap,
            addr,
        },
        ListenerSpec {
            service: ServiceKind::Imaps,
            addr,
        },
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {addr} for imaps: address already in use")
    );
}

#[tokio::test]
async fn a_listener_without_handler_is_an_error() {
    let certs = Certs::new();
    let bound = bind(&[ListenerSpec {
        service: ServiceKind::Pop3,
        addr: "127.0.0.1:0".parse().unwrap(),
    }])
    .unwrap();
    let err = bound
        .serve(
            Default::default(),
            Arc::clone(&certs.store),
            Limits::default(),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no handler was registered for the pop3 listener"
    );
}

#[tokio::test]
async fn shutdown_lets_the_transaction_finish_then_serve_returns() {
    let certs = Certs::new();
    let server = Server::start(
        &[ServiceKind::Imaps, ServiceKind::Smtp],
        Arc::clone(&certs.store),
        quick_limits(),
    )
    .await;
    let imaps = server.addr(ServiceKind::Imaps);
    let smtp = server.addr(ServiceKind::Smtp);
    let tls = tls_connect(imaps, certs.ca.client(&TLS13, &[]), MAIL)
        .await
        .unwrap();
    let mut busy = Client::new(tls);
    busy.line().await;
    busy.send(b"SLOW\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    server.shutdown.cancel();
    // The transaction in progress completes, then the handler says goodbye.
    assert_eq!(busy.line().await, "DONE\r\n");
    assert_eq!(busy.line().await, "BYE\r\n");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(smtp).await.is_err());
}

#[tokio::test]
async fn shutdown_drops_connections_still_running_after_the_grace_period() {
    let certs = Certs::new();
    let limits = Limits {
        shutdown_grace: Duration::from_millis(200),
        ..quick_limits()
    };
    let server = Server::start(&[ServiceKind::Pop3], Arc::clone(&certs.store), limits).await;
    let mut stuck = Client::new(
        TcpStream::connect(server.addr(ServiceKind::Pop3))
            .await
            .unwrap(),
    );
    stuck.line().await;
    stuck.send(b"HANG\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    let mut tcp = stuck.into_inner();
    assert!(
        read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn serve_without_listeners_waits_for_shutdown() {
    let certs = Certs::new();
    let shutdown = sealpost_net::CancellationToken::new();
    let task = tokio::spawn(bind(&[]).unwrap().serve(
        Default::default(),
        Arc::clone(&certs.store),
        Limits::default(),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
