//! Outbound delivery end to end: `deliver` hands a message to the project's own SMTP service
//! listening on 127.0.0.1 (STARTTLS offered, a self-signed certificate), and to scripted
//! servers for the failure paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sealpost_dns::Target;
use sealpost_dns::{Resolver, ResolverOptions};
use sealpost_net::{CancellationToken, CertPaths, CertStore, Connection, Handler, ServiceKind};
use sealpost_queue::deliver::{
    CertificateProblem, DeliveryOptions, DeliveryOutcome, DeliveryReport, Failure, deliver,
    opportunistic_tls_config,
};
use sealpost_queue::route::{HostPolicy, Router};
use sealpost_smtp::client::{Envelope, MessageBody, RecipientOutcome};
use sealpost_smtp::service::{SmtpLimits, SmtpService};
use sealpost_store::Store;
use sealpost_store::authenticate::Authenticator;
use sealpost_testkit::self_signed_cert_store;
use sealpost_testkit::store::{fixture_store, inbox_messages};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The receiving MX: the SMTP service (port-25 kind, STARTTLS offered) on a real socket.
struct Receiver {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    port: u16,
    shutdown: CancellationToken,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::with_certs(self_signed_cert_store).await
    }

    /// A receiver serving the certificate store that `certs` makes in its folder.
    async fn with_certs(certs: impl FnOnce(&std::path::Path) -> Arc<CertStore>) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let store = fixture_store(&dir.path().join("data"), "secret").await;
        let authenticator = Arc::new(Authenticator::new(
            Arc::clone(&store) as Arc<dyn sealpost_store::Directory>
        ));
        let service = Arc::new(SmtpService::new(
            "mx.test.example",
            Arc::clone(&store),
            authenticator,
            SmtpLimits::default(),
        ));
        let tls = sealpost_net::server_config(certs(dir.path()), ServiceKind::Smtp).unwrap();
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let mut id = 0;
            loop {
                let (tcp, peer) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    () = token.cancelled() => return,
                };
                id += 1;
                let mut conn = Connection::new(tcp, id, peer, ServiceKind::Smtp);
                conn.set_tls_config(Some(Arc::clone(&tls)));
                let service = Arc::clone(&service);
                let token = token.clone();
                tokio::spawn(async move {
                    service.handle(&mut conn, token).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Receiver {
            _dir: dir,
            store,
            port,
            shutdown,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn target(host: &str, ip: IpAddr) -> Target {
    Target {
        host: host.to_string(),
        preference: 10,
        addresses: vec![ip],
        implicit: false,
    }
}

/// `MESSAGE` from `out.remote.example` to one target host on 127.0.0.1.
async fn deliver_to_one(
    host: &str,
    port: u16,
    envelope: &Envelope,
    options: &DeliveryOptions,
) -> DeliveryReport {
    deliver(
        &[target(host, LOCALHOST)],
        port,
        "out.remote.example",
        envelope,
        MessageBody::from(MESSAGE),
        options,
    )
    .await
}

fn options() -> DeliveryOptions {
    let mut options = DeliveryOptions::opportunistic().unwrap();
    options.connect_timeout = Duration::from_secs(5);
    options.handshake_timeout = Duration::from_secs(5);
    options.max_wait = Some(Duration::from_secs(10));
    options
}

const MESSAGE: &str = "From: sender@remote.example\r\nTo: alice@test.example\r\n\
Subject: outbound\r\n\r\n.a line starting with a dot\r\n..two dots\r\nlast line\r\n";

#[tokio::test]
async fn delivers_over_starttls_byte_exact() {
    let receiver = Receiver::start().await;
    let envelope = Envelope::new(Some("sender@remote.example"), ["alice@test.example"]);
    let report = deliver_to_one("mx.test.example", receiver.port, &envelope, &options()).await;
    assert!(
        matches!(
            &report.recipients[..],
            [DeliveryOutcome::Replied(RecipientOutcome::Accepted(reply))] if reply.code == 250
        ),
        "{report:?}"
    );
    assert_eq!(report.host.as_deref(), Some("mx.test.example"));
    assert_eq!(
        report.address,
        Some(SocketAddr::new(LOCALHOST, receiver.port))
    );
    let tls = report.tls.as_ref().expect("TLS was used");
    assert!(
        tls.version == "TLSv1.3" || tls.version == "TLSv1.2",
        "{tls:?}"
    );
    assert!(!tls.cipher.is_empty(), "{tls:?}");
    assert!(report.failures.is_empty(), "{report:?}");

    let inbox = inbox_messages(&*receiver.store, "alice@test.example").await;
    assert_eq!(inbox.len(), 1);
    let text = String::from_utf8(inbox[0].clone()).unwrap();
    assert!(
        text.starts_with("Return-Path: <sender@remote.example>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\tby mx.test.example (sealpost) with ESMTPS"),
        "{text}"
    );
    // The trace headers are prepended; the message itself arrives unchanged.
    let header_end = text.find("From: sender@remote.example").unwrap();
    assert_eq!(&text[header_end..], MESSAGE);
}

#[tokio::test]
async fn unknown_recipient_is_permanent_the_other_accepted() {
    let receiver = Receiver::start().await;
    let envelope = Envelope::new(
        Some("sender@remote.example"),
        ["nobody@test.example", "bob@test.example"],
    );
    let report = deliver_to_one("mx.test.example", receiver.port, &envelope, &options()).await;
    match &report.recipients[..] {
        [
            DeliveryOutcome::Replied(RecipientOutcome::PermanentFailure(refused)),
            DeliveryOutcome::Replied(RecipientOutcome::Accepted(_)),
        ] => assert_eq!(refused.code, 550),
        other => panic!("{other:?}"),
    }
    assert!(report.recipients[0].is_permanent());
    assert!(report.recipients[1].is_accepted());
    assert_eq!(
        inbox_messages(&*receiver.store, "bob@test.example")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn refused_connection_falls_through_to_the_next_target() {
    let receiver = Receiver::start().await;
    let envelope = Envelope::new(Some("sender@remote.example"), ["alice@test.example"]);
    // Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1): refused.
    let dead = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let report = deliver(
        &[
            target("mx1.test.example", dead),
            target("mx2.test.example", LOCALHOST),
        ],
        receiver.port,
        "out.remote.example",
        &envelope,
        MessageBody::from(MESSAGE),
        &options(),
    )
    .await;
    assert!(report.recipients[0].is_accepted(), "{report:?}");
    assert_eq!(report.host.as_deref(), Some("mx2.test.example"));
    assert!(
        matches!(
            &report.failures[..],
            [(host, _, Failure::Connect(..))] if host == "mx1.test.example"
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn every_target_unreachable_defers_every_recipient() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let envelope = Envelope::new(
        Some("sender@remote.example"),
        ["a@test.example", "b@test.example"],
    );
    let report = deliver_to_one("mx.test.example", port, &envelope, &options()).await;
    assert_eq!(report.host, None);
    for outcome in &report.recipients {
        assert!(
            matches!(outcome, DeliveryOutcome::Deferred(Failure::Connect(..))),
            "{outcome:?}"
        );
        assert!(outcome.is_temporary());
    }
}

/// A scripted SMTP server for `connections` connections in a row: greets as `name`,
/// answers EHLO with `ehlo` (a whole multi-line reply), answers STARTTLS with 220 and then
/// bytes that are not TLS (so the client's handshake fails), and accepts everything else.
/// Returns the lines of every connection.
async fn scripted_server(
    name: &'static str,
    ehlo: &'static [u8],
    connections: usize,
) -> (u16, tokio::task::JoinHandle<Vec<Vec<String>>>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut all = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().await.unwrap();
            let (read, mut write) = tcp.into_split();
            let mut lines = BufReader::new(read).lines();
            write
                .write_all(format!("220 {name} ESMTP\r\n").as_bytes())
                .await
                .unwrap();
            let mut seen = Vec::new();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                seen.push(line.clone());
                let reply: &[u8] = if in_data {
                    if line != "." {
                        continue;
                    }
                    in_data = false;
                    b"250 2.0.0 queued\r\n"
                } else if line.starts_with("EHLO") {
                    ehlo
                } else if line == "STARTTLS" {
                    write.write_all(b"220 2.0.0 go ahead\r\n").await.unwrap();
                    // Not a TLS ServerHello: the client's handshake fails.
                    b"this is not TLS\r\n"
                } else if line == "DATA" {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if line == "QUIT" {
                    b"221 2.0.0 bye\r\n"
                } else {
                    b"250 2.0.0 ok\r\n"
                };
                if write.write_all(reply).await.is_err() || line == "QUIT" {
                    break;
                }
            }
            all.push(seen);
        }
        all
    });
    (port, task)
}

/// A server without STARTTLS, for one connection; returns the lines it got.
async fn plaintext_only_server() -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let (port, task) = scripted_server(
        "plain.example",
        b"250-plain.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
        1,
    )
    .await;
    let first = tokio::spawn(async move { task.await.unwrap().swap_remove(0) });
    (port, first)
}

#[tokio::test]
async fn require_tls_without_starttls_sends_nothing() {
    let (port, server) = plaintext_only_server().await;
    let envelope = Envelope::new(Some("sender@remote.example"), ["alice@plain.example"]);
    let mut options = options();
    options.require_tls = true;
    let report = deliver_to_one("plain.example", port, &envelope, &options).await;
    assert!(
        matches!(
            &report.recipients[..],
            [DeliveryOutcome::Deferred(Failure::TlsNotOffered)]
        ),
        "{report:?}"
    );
    assert!(report.recipients[0].is_temporary());
    assert_eq!(report.tls, None);
    let seen = server.await.unwrap();
    assert_eq!(seen, ["EHLO out.remote.example", "QUIT"]);
}

#[tokio::test]
async fn without_require_tls_plaintext_is_used() {
    let (port, server) = plaintext_only_server().await;
    let envelope = Envelope::new(Some("sender@remote.example"), ["alice@plain.example"]);
    let report = deliver_to_one("plain.example", port, &envelope, &options()).await;
    assert!(report.recipients[0].is_accepted(), "{report:?}");
    assert_eq!(report.tls, None);
    let seen = server.await.unwrap();
    assert!(
        seen.contains(&"MAIL FROM:<sender@remote.example>".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"..a line starting with a dot".to_string()),
        "{seen:?}"
    );
}

/// A server whose STARTTLS "succeeds" (220) and then sends bytes that are not TLS.
async fn broken_tls_server(connections: usize) -> (u16, tokio::task::JoinHandle<Vec<Vec<String>>>) {
    scripted_server(
        "broken.example",
        b"250-broken.example\r\n250 STARTTLS\r\n",
        connections,
    )
    .await
}

#[tokio::test]
async fn failed_handshake_falls_back_to_plaintext_unless_tls_is_required() {
    let envelope = Envelope::new(Some("sender@remote.example"), ["alice@broken.example"]);

    let (port, server) = broken_tls_server(2).await;
    let report = deliver_to_one("broken.example", port, &envelope, &options()).await;
    assert!(report.recipients[0].is_accepted(), "{report:?}");
    assert_eq!(report.tls, None);
    assert!(
        matches!(&report.failures[..], [(_, _, Failure::TlsHandshake(_))]),
        "{report:?}"
    );
    let seen = server.await.unwrap();
    assert_eq!(seen[0].last().map(String::as_str), Some("STARTTLS"));
    assert!(!seen[1].contains(&"STARTTLS".to_string()), "{seen:?}");
    assert!(seen[1].contains(&"MAIL FROM:<sender@remote.example>".to_string()));

    let (port, server) = broken_tls_server(1).await;
    let mut options = options();
    options.require_tls = true;
    let report = deliver_to_one("broken.example", port, &envelope, &options).await;
    assert!(
        matches!(
            &report.recipients[..],
            [DeliveryOutcome::Deferred(Failure::TlsHandshake(_))]
        ),
        "{report:?}"
    );
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(
        !seen[0].iter().any(|line| line.starts_with("MAIL")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn greeting_421_moves_on_to_the_next_target() {
    let receiver = Receiver::start().await;
    let busy = TcpListener::bind((Ipv4Addr::new(127, 0, 0, 3), receiver.port))
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = busy.accept().await.unwrap();
        tcp.write_all(b"421 4.3.2 busy, try later\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut rest).await;
        rest
    });
    let envelope = Envelope::new(Some("sender@remote.example"), ["alice@test.example"]);
    let report = deliver(
        &[
            target("busy.test.example", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))),
            target("mx.test.example", LOCALHOST),
        ],
        receiver.port,
        "out.remote.example",
        &envelope,
        MessageBody::from(MESSAGE),
        &options(),
    )
    .await;
    assert!(report.recipients[0].is_accepted(), "{report:?}");
    assert_eq!(report.host.as_deref(), Some("mx.test.example"));
    assert!(
        matches!(
            &report.failures[..],
            [(host, _, Failure::ServiceClosing(reply))]
                if host == "busy.test.example" && reply.code == 421
        ),
        "{report:?}"
    );
    // RFC 5321 §3.8: after 421 the client just closes; nothing was sent.
    assert_eq!(server.await.unwrap(), b"");
}

// --- DANE (RFC 7672) through the router, against a DNSSEC-signed test zone -----------------

/// A CA and a certificate it issued for the test MX names, served with the CA in the chain
/// (RFC 7672 §3.1.2: a DANE-TA server sends its trust anchor).
struct DanePki {
    root: Vec<u8>,
    leaf: Vec<u8>,
}

fn dane_certs(dir: &std::path::Path) -> (Arc<CertStore>, DanePki) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "DANE test root");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let names = [
        "mx-ee.dane.test",
        "mx-ta.dane.test",
        "mx-bad.dane.test",
        "mx-unusable.dane.test",
    ];
    let leaf = CertificateParams::new(names.map(str::to_string).to_vec())
        .unwrap()
        .signed_by(&leaf_key, &root)
        .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, format!("{}{}", leaf.pem(), root.pem())).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let store = CertStore::load(CertPaths { cert, key }, Vec::new()).unwrap();
    let pki = DanePki {
        root: root.der().to_vec(),
        leaf: leaf.der().to_vec(),
    };
    (store, pki)
}

#[tokio::test]
async fn dane_decides_which_certificates_are_accepted() {
    use sealpost_testkit::dns::{TestDns, a, mx, signed_zone, tlsa, zone};
    use sha2::{Digest, Sha256};

    let pki = std::sync::Mutex::new(None);
    let receiver = Receiver::with_certs(|dir| {
        let (store, made) = dane_certs(dir);
        *pki.lock().unwrap() = Some(made);
        store
    })
    .await;
    let pki = pki.into_inner().unwrap().unwrap();
    let port = receiver.port;
    let local = std::net::Ipv4Addr::LOCALHOST;
    let sha256 = |der: &[u8]| Sha256::digest(der).to_vec();
    let mut records = Vec::new();
    for (domain, host, tlsa_records) in [
        // RFC 7672 §3.1.1: DANE-EE(3) full certificate, SHA-256.
        ("ee", "mx-ee", vec![(3, 0, 1, sha256(&pki.leaf))]),
        // RFC 7672 §3.1.2: DANE-TA(2): the root, chain and name checked.
        ("ta", "mx-ta", vec![(2, 0, 1, sha256(&pki.root))]),
        // The anchor matches but the certificate does not name this host.
        ("taname", "mx-other", vec![(2, 0, 1, sha256(&pki.root))]),
        // Nothing matches: no delivery, not even in plaintext.
        ("bad", "mx-bad", vec![(3, 0, 1, vec![0xab; 32])]),
        // Only PKIX-TA(0) records, unusable for SMTP: TLS required, unauthenticated.
        (
            "unusable",
            "mx-unusable",
            vec![(0, 0, 1, sha256(&pki.root))],
        ),
        // Secure MX without TLSA: opportunistic.
        ("none", "mx-none", vec![]),
    ] {
        let domain = format!("{domain}.dane.test.");
        let host = format!("{host}.dane.test.");
        records.push(mx(&domain, 10, &host));
        records.push(a(&host, local));
        for (usage, selector, matching, data) in tlsa_records {
            records.push(tlsa(
                &format!("_{port}._tcp.{host}"),
                usage,
                selector,
                matching,
                data,
            ));
        }
    }
    let (signed, anchors) = signed_zone("dane.test.", records);
    // The same names unsigned: DANE does not apply.
    let unsigned = zone(
        "plain.test.",
        vec![
            mx("plain.test.", 10, "mx.plain.test."),
            a("mx.plain.test.", local),
            tlsa(
                &format!("_{port}._tcp.mx.plain.test."),
                3,
                0,
                1,
                vec![0xab; 32],
            ),
        ],
        None,
    );
    let dns = TestDns::start(vec![("dane.test.", signed), ("plain.test.", unsigned)]).await;
    let resolver = Resolver::new(
        &[dns.address],
        ResolverOptions {
            timeout: Duration::from_secs(2),
            attempts: 2,
            trust_anchors: Some(Arc::new(anchors)),
        },
    )
    .unwrap();
    let router = Router::new(resolver, port, opportunistic_tls_config().unwrap()).with_dane();

    let expectations = [
        ("ee.dane.test", HostPolicy::Dane, true),
        ("ta.dane.test", HostPolicy::Dane, true),
        ("taname.dane.test", HostPolicy::Dane, false),
        ("bad.dane.test", HostPolicy::Dane, false),
        ("unusable.dane.test", HostPolicy::DaneUnusable, true),
        ("none.dane.test", HostPolicy::Opportunistic, true),
        ("plain.test", HostPolicy::Opportunistic, true),
    ];
    for (domain, policy, passes) in expectations {
        let route = router.route(domain).await.unwrap();
        let host = route.targets[0].host.clone();
        assert_eq!(route.policies[&host], policy, "{domain}");
        let mut options = options();
        options.hosts = route.hosts;
        let envelope = Envelope::new(Some("sender@remote.example"), [format!("alice@{domain}")]);
        let report = deliver(
            &route.targets,
            port,
            "out.remote.example",
            &envelope,
            MessageBody::from(MESSAGE),
            &options,
        )
        .await;
        if passes {
            // The receiver refuses to relay for these domains (550): what matters is that
            // the session got that far, over TLS.
            assert!(
                matches!(&report.recipients[0], DeliveryOutcome::Replied(_)),
                "{domain}: {report:?}"
            );
            assert!(report.tls.is_some(), "{domain}: over TLS");
        } else {
            // TLS-RPT tells a name mismatch from a record that matches nothing.
            let expected = if domain.starts_with("taname") {
                CertificateProblem::HostMismatch
            } else {
                CertificateProblem::Invalid
            };
            assert!(
                matches!(
                    &report.recipients[0],
                    DeliveryOutcome::Deferred(Failure::Certificate { problem, .. })
                        if *problem == expected
                ),
                "{domain}: {report:?}"
            );
            // RFC 7672 §2.2: no fallback to plaintext after a failed DANE handshake.
            assert!(
                report
                    .failures
                    .iter()
                    .all(|(_, _, f)| matches!(f, Failure::Certificate { .. })),
                "{domain}: {report:?}"
            );
        }
    }
}
