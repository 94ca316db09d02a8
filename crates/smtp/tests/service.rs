//! The SMTP service over an in-memory stream and a temporary SQLite store.
#![allow(clippy::unwrap_used)] // test helpers: a failed set-up should panic

use std::net::SocketAddr;
use std::sync::Arc;

use sealpost_net::{CancellationToken, Connection, Handler, ServiceKind};
use sealpost_smtp::service::{SmtpLimits, SmtpService};
use sealpost_store::authenticate::Authenticator;
use sealpost_store::{Directory, Store};
use sealpost_testkit::store::{fixture_store, inbox_messages};
use sealpost_types::{Address, AliasSource};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    service: Arc<SmtpService>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture_store(dir.path(), "secret").await;
    store
        .add_alias(
            &AliasSource::parse("team@test.example").unwrap(),
            &[
                Address::parse("alice@test.example").unwrap(),
                Address::parse("bob@test.example").unwrap(),
            ],
        )
        .await
        .unwrap();
    let directory: Arc<dyn Directory> = Arc::clone(&store) as Arc<dyn Directory>;
    let authenticator = Arc::new(Authenticator::new(directory));
    let service = Arc::new(SmtpService::new(
        "mx.test.example",
        Arc::clone(&store),
        authenticator,
        SmtpLimits::default(),
    ));
    Fixture {
        _dir: dir,
        store,
        service,
    }
}

struct Client {
    reader: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    writer: tokio::io::WriteHalf<DuplexStream>,
}

impl Client {
    /// Reads one (possibly multi-line) reply and returns its lines.
    async fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.unwrap() == 0 {
                return lines;
            }
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_string());
            if done {
                return lines;
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn command(&mut self, line: &str) -> Vec<String> {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }
}

fn start(service: &Arc<SmtpService>, kind: ServiceKind) -> Client {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let mut conn = Connection::new(server, 1, peer, kind);
    let service = Arc::clone(service);
    tokio::spawn(async move {
        service.handle(&mut conn, CancellationToken::new()).await;
    });
    let (reader, writer) = tokio::io::split(client);
    Client {
        reader: BufReader::new(reader),
        writer,
    }
}

#[tokio::test]
async fn inbound_delivery_adds_trace_headers_and_shares_one_blob() {
    let fx = fixture().await;
    let mut client = start(&fx.service, ServiceKind::Smtp);
    assert!(client.reply().await[0].starts_with("220 mx.test.example"));
    let ehlo = client.command("EHLO client.example").await;
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")));
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")));
    assert!(client.command("MAIL FROM:<sender@remote.example>").await[0].starts_with("250 2.1.0"));
    assert!(client.command("RCPT TO:<team@test.example>").await[0].starts_with("250 2.1.5"));
    assert!(client.command("RCPT TO:<nobody@test.example>").await[0].starts_with("550 5.1.1"));
    assert!(
        client.command("RCPT TO:<someone@elsewhere.example>").await[0].starts_with("554 5.7.1")
    );
    assert!(client.command("DATA").await[0].starts_with("354"));
    client
        .send(b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
        .await;
    assert!(client.reply().await[0].starts_with("250 2.0.0"));
    assert!(client.command("QUIT").await[0].starts_with("221"));

    let alice = inbox_messages(&*fx.store, "alice@test.example").await;
    let bob = inbox_messages(&*fx.store, "bob@test.example").await;
    assert_eq!(alice.len(), 1);
    assert_eq!(alice, bob, "one blob for all local recipients");
    let text = String::from_utf8(alice[0].clone()).unwrap();
    assert!(text.starts_with("Return-Path: <sender@remote.example>\r\nReceived: from client.example ([192.0.2.7])\r\n\tby mx.test.example (sealpost) with ESMTP id "), "{text}");
    assert!(
        !text.contains("Delivered-To"),
        "several recipients share the blob"
    );
    assert!(
        text.ends_with("Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn single_recipient_gets_delivered_to_and_subaddress_resolves() {
    let fx = fixture().await;
    let mut client = start(&fx.service, ServiceKind::Smtp);
    client.reply().await;
    client.command("EHLO client.example").await;
    client.command("MAIL FROM:<>").await;
    assert!(client.command("RCPT TO:<Alice+News@TEST.example>").await[0].starts_with("250"));
    client.command("DATA").await;
    client.send(b"Subject: tagged\r\n\r\nx\r\n.\r\n").await;
    assert!(client.reply().await[0].starts_with("250"));
    let alice = inbox_messages(&*fx.store, "alice@test.example").await;
    let text = String::from_utf8(alice[0].clone()).unwrap();
    assert!(
        text.starts_with("Return-Path: <>\r\nDelivered-To: alice+news@test.example\r\n"),
        "{text}"
    );
    assert!(text.contains("\tfor <alice+news@test.example>;"), "{text}");
}

#[tokio::test]
async fn submission_requires_auth_and_refuses_plaintext_auth() {
    let fx = fixture().await;
    let mut client = start(&fx.service, ServiceKind::Submission);
    client.reply().await;
    let ehlo = client.command("EHLO client.example").await;
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")));
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    assert!(
        client
            .command("AUTH PLAIN AGFsaWNlQHRlc3QuZXhhbXBsZQBzZWNyZXQ=")
            .await[0]
            .starts_with("530 5.7.0")
    );
    assert!(client.command("MAIL FROM:<alice@test.example>").await[0].starts_with("530 5.7.0"));
}
