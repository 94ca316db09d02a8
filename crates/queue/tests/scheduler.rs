//! The scheduler against a scripted MX over TCP: queued messages leave signed and without
//! our Return-Path, several per connection; 5xx bounces to the sender, 4xx waits for the
//! backoff, the lifetime's end bounces, and the delay report goes out once. Recipients are
//! address literals (`x@[127.0.0.1]`, RFC 5321 §4.1.3) so that no DNS is involved; routing
//! through MX records is tested in `crates/dns` and end to end in the interop suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{KeyPair, PKCS_ED25519};
use sealpost_dns::{Resolver, ResolverOptions};
use sealpost_queue::deliver::{DeliveryOptions, opportunistic_tls_config};
use sealpost_queue::route::Router;
use sealpost_queue::scheduler::{QueueSettings, Scheduler};
use sealpost_store::sqlite::SqliteStore;
use sealpost_store::{
    DkimAlgorithm, DkimKey, OutboundEnvelope, OutboundRecipient, QueuedRecipient, Store,
};
use sealpost_testkit::store::inbox_messages;
use sealpost_types::date::unix_now;
use sealpost_types::{Address, Domain, Secret};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const SENDER: &str = "alice@example.org";

/// One transaction the fake MX accepted.
#[derive(Debug, Clone, Default)]
struct Transaction {
    connection: usize,
    recipients: Vec<String>,
    data: String,
}

/// An MX that accepts every recipient except those whose address holds `reject` (550
/// 5.1.1) or `later` (451 4.2.0); no STARTTLS. Records the transactions it completed.
struct FakeMx {
    port: u16,
    transactions: Arc<Mutex<Vec<Transaction>>>,
}

impl FakeMx {
    async fn start() -> FakeMx {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let transactions = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&transactions);
        tokio::spawn(async move {
            let mut connection = 0;
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                connection += 1;
                tokio::spawn(serve(tcp, connection, Arc::clone(&record)));
            }
        });
        FakeMx { port, transactions }
    }

    fn transactions(&self) -> Vec<Transaction> {
        self.transactions.lock().unwrap().clone()
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    connection: usize,
    record: Arc<Mutex<Vec<Transaction>>>,
) {
    let (read, mut write) = tcp.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 mx.fake ESMTP\r\n").await;
    let mut current = Transaction {
        connection,
        ..Transaction::default()
    };
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        let reply: &[u8] = if in_data {
            if line != "." {
                current.data.push_str(&line);
                current.data.push_str("\r\n");
                continue;
            }
            in_data = false;
            record.lock().unwrap().push(std::mem::replace(
                &mut current,
                Transaction {
                    connection,
                    ..Transaction::default()
                },
            ));
            b"250 2.0.0 queued\r\n"
        } else if line.starts_with("EHLO") {
            b"250-mx.fake\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
        } else if let Some(rcpt) = line.strip_prefix("RCPT TO:") {
            if rcpt.contains("reject") {
                b"550 5.1.1 no such user\r\n"
            } else if rcpt.contains("later") {
                b"451 4.2.0 try again later\r\n"
            } else {
                current.recipients.push(rcpt.to_string());
                b"250 2.1.5 ok\r\n"
            }
        } else if line == "DATA" {
            if current.recipients.is_empty() {
                b"554 5.5.1 no valid recipients\r\n"
            } else {
                in_data = true;
                b"354 go ahead\r\n"
            }
        } else if line == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else if line == "RSET" {
            current.recipients.clear();
            b"250 2.0.0 ok\r\n"
        } else {
            b"250 2.0.0 ok\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

struct Sender {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl Sender {
    /// A store with the domain example.org (an Ed25519 DKIM key) and the account alice.
    async fn new() -> Sender {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("data")).await.unwrap());
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let keys = vec![DkimKey {
            selector: "ed1".to_string(),
            algorithm: DkimAlgorithm::Ed25519,
            private_key_pem: Secret::new(key.serialize_pem()),
            public_key_base64: BASE64.encode(key.public_key_raw()),
        }];
        store
            .add_domain(&Domain::parse("example.org").unwrap(), keys)
            .await
            .unwrap();
        let hash = sealpost_sasl::hash_password("pw").unwrap();
        store
            .add_account(&Address::parse(SENDER).unwrap(), &hash)
            .await
            .unwrap();
        Sender { _dir: dir, store }
    }

    /// Queues a message from alice as the SMTP service does for a mixed delivery: with
    /// the Return-Path of the local copies first.
    async fn queue(&self, subject: &str, recipients: &[&str]) {
        let raw = format!(
            "Return-Path: <{SENDER}>\r\nReceived: from client by out.example.org\r\n\
             From: Alice <{SENDER}>\r\nTo: someone@remote.example\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@example.org>\r\n\r\nHello.\r\n"
        );
        let envelope = OutboundEnvelope {
            from: Some(SENDER.to_string()),
            recipients: recipients
                .iter()
                .map(|r| OutboundRecipient::new(*r))
                .collect(),
            ..OutboundEnvelope::default()
        };
        self.store
            .accept_message(Arc::from(raw.into_bytes()), unix_now(), &[], Some(envelope))
            .await
            .unwrap();
    }

    /// Queues `raw` with an envelope of the test's own.
    async fn queue_envelope(&self, raw: &str, envelope: OutboundEnvelope) {
        self.store
            .accept_message(Arc::from(raw.as_bytes()), unix_now(), &[], Some(envelope))
            .await
            .unwrap();
    }

    fn start(&self, mx: &FakeMx, tune: impl FnOnce(&mut QueueSettings)) -> Running {
        // Never asked: every recipient is an address literal. A closed port all the same.
        let resolver = Resolver::new(
            &["127.0.0.1:9".parse::<SocketAddr>().unwrap()],
            ResolverOptions::default(),
        )
        .unwrap();
        let mut delivery = DeliveryOptions::opportunistic().unwrap();
        delivery.connect_timeout = Duration::from_secs(5);
        delivery.max_wait = Some(Duration::from_secs(10));
        let mut settings = QueueSettings::new("out.example.org", mx.port, delivery);
        settings.poll_interval = Duration::from_millis(100);
        tune(&mut settings);
        let router = Router::new(resolver, mx.port, opportunistic_tls_config().unwrap());
        let scheduler = Scheduler::new(Arc::clone(&self.store), router, settings);
        let waker = scheduler.waker();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(scheduler.run(shutdown.clone()));
        Running {
            shutdown,
            task,
            _waker: waker,
        }
    }

    /// Waits until `done` holds for the queue, or fails after 15 s.
    async fn wait_for_queue(&self, what: &str, done: impl Fn(&[QueuedRecipient]) -> bool) {
        for _ in 0..150 {
            if done(&self.store.queued().await.unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: queue is {:?}", self.store.queued().await.unwrap());
    }

    async fn inbox(&self) -> Vec<String> {
        inbox_messages(&*self.store, SENDER)
            .await
            .into_iter()
            .map(|m| String::from_utf8(m).unwrap())
            .collect()
    }
}

struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _waker: Arc<tokio::sync::Notify>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the scheduler stops on shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_leave_signed_several_per_connection() {
    let mx = FakeMx::start().await;
    let sender = Sender::new().await;
    for n in 0..30 {
        sender
            .queue(&format!("m{n}"), &["bob@[127.0.0.1]", "carol@[127.0.0.1]"])
            .await;
    }
    let running = sender.start(&mx, |_| {});
    sender
        .wait_for_queue("all delivered", <[QueuedRecipient]>::is_empty)
        .await;
    running.stop().await;

    let transactions = mx.transactions();
    assert_eq!(transactions.len(), 30, "one transaction per message");
    for transaction in &transactions {
        assert_eq!(
            transaction.recipients,
            ["<bob@[127.0.0.1]>", "<carol@[127.0.0.1]>"],
            "both recipients of a domain in one transaction"
        );
        let data = &transaction.data;
        assert!(
            data.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"),
            "signed for the local From domain: {data}"
        );
        assert!(data.contains(" d=example.org;"), "{data}");
        assert!(
            !data.contains("Return-Path:"),
            "our Return-Path stays with the local copies: {data}"
        );
        assert!(data.contains("Received: from client by out.example.org\r\n"));
    }
    let mut connections: Vec<usize> = transactions.iter().map(|t| t.connection).collect();
    connections.sort_unstable();
    connections.dedup();
    assert!(
        connections.len() <= 3,
        "30 messages over at most 3 connections (RFC 5321 §4.5.4.1 reuse), got {}",
        connections.len()
    );
    assert!(sender.inbox().await.is_empty(), "no reports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_bounces_and_a_4xx_waits_for_the_backoff() {
    let mx = FakeMx::start().await;
    let sender = Sender::new().await;
    sender
        .queue(
            "mixed",
            &["reject@[127.0.0.1]", "later@[127.0.0.1]", "ok@[127.0.0.1]"],
        )
        .await;
    let started = unix_now();
    let running = sender.start(&mx, |_| {});
    sender
        .wait_for_queue("one attempt made", |queue| {
            queue.len() == 1 && queue[0].attempts == 1
        })
        .await;
    running.stop().await;

    let queue = sender.store.queued().await.unwrap();
    let waiting = &queue[0];
    assert_eq!(waiting.recipient, "later@[127.0.0.1]");
    let error = waiting.last_error.as_deref().unwrap();
    assert!(error.contains("451 4.2.0 try again later"), "{error}");
    // RFC 5321 §4.5.4.1: the first retry 5 minutes later.
    assert!(
        (started + 300..=unix_now() + 300).contains(&waiting.next_attempt),
        "next attempt {} vs now {started}",
        waiting.next_attempt
    );
    assert_eq!(mx.transactions().len(), 1);
    assert_eq!(mx.transactions()[0].recipients, ["<ok@[127.0.0.1]>"]);

    // The bounce of the 550 comes with the last recipient settled; not yet.
    assert!(sender.inbox().await.is_empty());
    // A flush and another 4xx: the recipient fails when its lifetime is over.
    sender.store.flush(unix_now()).await.unwrap();
    let running = sender.start(&mx, |settings| {
        settings.retry.lifetime = Duration::ZERO;
    });
    sender
        .wait_for_queue("given up", <[QueuedRecipient]>::is_empty)
        .await;
    running.stop().await;
    let inbox = sender.inbox().await;
    assert_eq!(inbox.len(), 1, "one report for the message: {inbox:?}");
    let report = &inbox[0];
    assert!(report.starts_with("Return-Path: <>\r\n"), "{report}");
    assert!(
        report.contains("Final-Recipient: rfc822; reject@[127.0.0.1]"),
        "{report}"
    );
    assert!(report.contains("Status: 5.1.1"), "{report}");
    assert!(report.contains("Remote-MTA: dns; 127.0.0.1"), "{report}");
    assert!(
        report.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"),
        "{report}"
    );
    assert!(
        report.contains("Final-Recipient: rfc822; later@[127.0.0.1]"),
        "{report}"
    );
    assert!(report.contains("Status: 5.4.7"), "{report}");
    assert!(
        !report.contains("Final-Recipient: rfc822; ok@[127.0.0.1]"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delay_report_goes_out_once() {
    let mx = FakeMx::start().await;
    let sender = Sender::new().await;
    sender.queue("slow", &["later@[127.0.0.1]"]).await;
    let running = sender.start(&mx, |settings| {
        settings.retry.delay_warning = Some(Duration::ZERO);
    });
    sender
        .wait_for_queue("first attempt", |queue| {
            queue.len() == 1 && queue[0].attempts == 1
        })
        .await;
    sender.store.flush(unix_now()).await.unwrap();
    sender
        .wait_for_queue("second attempt", |queue| {
            queue.len() == 1 && queue[0].attempts == 2
        })
        .await;
    running.stop().await;
    let inbox = sender.inbox().await;
    assert_eq!(inbox.len(), 1, "one delay report: {inbox:?}");
    assert!(inbox[0].contains("Action: delayed"), "{}", inbox[0]);
    assert!(inbox[0].contains("Will-Retry-Until: "), "{}", inbox[0]);
    assert!(inbox[0].contains("Status: 4.2.0"), "{}", inbox[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_mx_defers_and_the_null_sender_never_gets_a_bounce() {
    // A port nobody listens on: connection refused.
    let closed = {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let mx = FakeMx {
        port: closed,
        transactions: Arc::default(),
    };
    let sender = Sender::new().await;
    sender.queue("unreachable", &["bob@[127.0.0.1]"]).await;
    // A bounce of a bounce: reverse-path <>.
    let envelope = OutboundEnvelope {
        from: None,
        recipients: vec![OutboundRecipient::new("reject@[127.0.0.1]")],
        ..OutboundEnvelope::default()
    };
    sender
        .store
        .accept_message(
            Arc::from(&b"Subject: a report\r\n\r\nx\r\n"[..]),
            unix_now(),
            &[],
            Some(envelope),
        )
        .await
        .unwrap();
    let running = sender.start(&mx, |settings| {
        settings.retry.lifetime = Duration::ZERO;
    });
    sender
        .wait_for_queue("both given up", <[QueuedRecipient]>::is_empty)
        .await;
    running.stop().await;
    let inbox = sender.inbox().await;
    assert_eq!(inbox.len(), 1, "only alice's message bounces: {inbox:?}");
    assert!(inbox[0].contains("Final-Recipient: rfc822; bob@[127.0.0.1]"));
    assert!(inbox[0].contains("Status: 5.4.7"), "{}", inbox[0]);
    assert!(inbox[0].contains("connect to 127.0.0.1:"), "{}", inbox[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_success_to_a_server_without_dsn_gets_a_relayed_report() {
    let mx = FakeMx::start().await;
    let sender = Sender::new().await;
    let raw = format!(
        "From: <{SENDER}>\r\nTo: x@remote.example\r\nSubject: dsn\r\nMessage-ID: <dsn@example.org>\r\n\r\nHi.\r\n"
    );
    let envelope = OutboundEnvelope {
        from: Some(SENDER.to_string()),
        recipients: vec![
            OutboundRecipient {
                address: "wants@[127.0.0.1]".to_string(),
                notify: Some("SUCCESS,FAILURE".to_string()),
                orcpt: Some("rfc822;wants@[127.0.0.1]".to_string()),
            },
            OutboundRecipient::new("quiet@[127.0.0.1]"),
        ],
        envid: Some("ENV-1".to_string()),
        ..OutboundEnvelope::default()
    };
    sender.queue_envelope(&raw, envelope).await;
    let running = sender.start(&mx, |_| {});
    sender
        .wait_for_queue("delivered", <[QueuedRecipient]>::is_empty)
        .await;
    // The report is stored after the outcome is recorded.
    for _ in 0..50 {
        if !sender.inbox().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
    let inbox = sender.inbox().await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let report = &inbox[0];
    assert!(report.contains("Original-Envelope-Id: ENV-1"), "{report}");
    assert!(
        report.contains("Final-Recipient: rfc822; wants@[127.0.0.1]"),
        "{report}"
    );
    assert!(report.contains("Action: relayed"), "{report}");
    assert!(report.contains("Status: 2.0.0"), "{report}");
    assert!(report.contains("Remote-MTA: dns; 127.0.0.1"), "{report}");
    assert!(
        !report.contains("quiet@"),
        "no NOTIFY, no success report: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiretls_without_a_verified_route_bounces_unsent() {
    let mx = FakeMx::start().await;
    let sender = Sender::new().await;
    let raw = format!(
        "From: <{SENDER}>\r\nTo: x@remote.example\r\nSubject: secret\r\n\r\nThe body stays here.\r\n"
    );
    let envelope = OutboundEnvelope {
        from: Some(SENDER.to_string()),
        recipients: vec![OutboundRecipient::new("bob@[127.0.0.1]")],
        require_tls: true,
        ..OutboundEnvelope::default()
    };
    sender.queue_envelope(&raw, envelope).await;
    let running = sender.start(&mx, |_| {});
    sender
        .wait_for_queue("bounced", <[QueuedRecipient]>::is_empty)
        .await;
    running.stop().await;
    // RFC 8689 §4.2.1: an address literal has neither DANE nor MTA-STS: nothing is sent.
    assert!(mx.transactions().is_empty(), "{:?}", mx.transactions());
    let inbox = sender.inbox().await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let report = &inbox[0];
    assert!(report.contains("Status: 5.7.10"), "{report}");
    assert!(report.contains("REQUIRETLS"), "{report}");
    assert!(
        !report.contains("The body stays here."),
        "RFC 8689 §5: the header only: {report}"
    );
}
