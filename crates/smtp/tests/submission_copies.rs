//! Submission extras over real TLS: the Sent copy of each submitted message (noted for the
//! IMAP service) and the DSN extension with reports for local recipients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use sealpost_net::ServiceKind;
use sealpost_smtp::service::{
    DeliveryReports, LocalDeliveries, LocalOutcome, SmtpLimits, SmtpService,
};
use sealpost_store::submissions::message_id;
use sealpost_store::{MessageMeta, RecentSubmissions, Store};
use sealpost_testkit::store::account_id;
use sealpost_testkit::{LineClient, PASSWORD, ServiceFixture};
use sealpost_types::SpecialUse;

/// Remembers what the service asked to report.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<LocalDeliveries>>,
}

#[async_trait]
impl DeliveryReports for Recorder {
    async fn local_deliveries(&self, deliveries: LocalDeliveries) {
        self.calls.lock().unwrap().push(deliveries);
    }
}

struct Setup {
    fx: ServiceFixture<SmtpService>,
    record: Arc<RecentSubmissions>,
    reports: Arc<Recorder>,
}

/// Submissions (465, implicit TLS) and port 25 (plaintext) of one service; `save_sent` and
/// `reports` as the binary would configure them.
async fn setup(save_sent: bool, reports: bool) -> Setup {
    let record = Arc::new(RecentSubmissions::default());
    let recorder = Arc::new(Recorder::default());
    let (for_service, for_reports) = (Arc::clone(&record), Arc::clone(&recorder));
    let fx = ServiceFixture::new(
        ServiceKind::Submissions,
        ServiceKind::Smtp,
        move |store, authenticator| {
            let service = SmtpService::new(
                "mx.test.example",
                store,
                authenticator,
                SmtpLimits::default(),
            )
            .with_sent_copies(save_sent.then_some(for_service));
            if reports {
                service.with_delivery_reports(for_reports)
            } else {
                service
            }
        },
    )
    .await;
    Setup {
        fx,
        record,
        reports: recorder,
    }
}

/// All lines of one reply.
async fn reply(client: &mut LineClient) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client.line().await;
        let done = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if done {
            return lines;
        }
    }
}

async fn ehlo(client: &mut LineClient) -> Vec<String> {
    client.send(b"EHLO client.example\r\n").await;
    reply(client).await
}

/// A session on 465 logged in as `user`.
async fn login(fx: &ServiceFixture<SmtpService>, user: &str) -> LineClient {
    let mut client = fx.connect_tls(None).await;
    assert!(client.line().await.starts_with("220 "));
    ehlo(&mut client).await;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{PASSWORD}"));
    let answer = client.command(&format!("AUTH PLAIN {token}")).await;
    assert!(answer.starts_with("235 "), "{answer}");
    client
}

/// MAIL, RCPT each, DATA with `message`; returns the final reply.
async fn send(client: &mut LineClient, mail: &str, rcpts: &[&str], message: &str) -> String {
    let answer = client.command(&format!("MAIL FROM:{mail}")).await;
    assert!(answer.starts_with("250 "), "{answer}");
    for rcpt in rcpts {
        let answer = client.command(&format!("RCPT TO:{rcpt}")).await;
        assert!(answer.starts_with("250 "), "{rcpt}: {answer}");
    }
    assert!(client.command("DATA").await.starts_with("354"));
    client.send(message.as_bytes()).await;
    client.send(b".\r\n").await;
    client.line().await
}

async fn mailbox_messages(
    store: &dyn Store,
    user: &str,
    use_: SpecialUse,
) -> Vec<(MessageMeta, Vec<u8>)> {
    let account = account_id(store, user).await;
    let mailbox = store
        .mailbox_by_special_use(account, use_)
        .await
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    for meta in store.messages(mailbox.id).await.unwrap() {
        let raw = store.read_blob(&meta.blob).await.unwrap();
        out.push((meta, raw));
    }
    out
}

const MESSAGE: &str = "From: alice@test.example\r\nTo: bob@test.example\r\n\
    Message-ID: <m1@test.example>\r\nSubject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn a_submission_is_filed_in_sent_once_seen_and_noted() {
    let s = setup(true, false).await;
    let mut client = login(&s.fx, "alice@test.example").await;
    let answer = send(
        &mut client,
        "<alice@test.example>",
        &["<bob@test.example>", "<carol@remote.example>"],
        MESSAGE,
    )
    .await;
    assert!(answer.starts_with("250 2.0.0"), "{answer}");

    let store = &*s.fx.store;
    let sent = mailbox_messages(store, "alice@test.example", SpecialUse::Sent).await;
    assert_eq!(sent.len(), 1);
    let (meta, raw) = &sent[0];
    assert_eq!(meta.flags, vec!["\\Seen".to_string()]);
    let inbox = mailbox_messages(store, "bob@test.example", SpecialUse::Inbox).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].0.blob, meta.blob,
        "one blob for the delivery and the copy"
    );
    assert!(
        inbox[0].0.flags.is_empty(),
        "the recipient's copy is unread"
    );
    assert!(raw.ends_with(MESSAGE.as_bytes()));
    // The remote recipient is queued in the same commit.
    assert_eq!(store.queued().await.unwrap().len(), 1);
    // Nothing in the sender's INBOX: the copy is not a delivery.
    assert!(
        mailbox_messages(store, "alice@test.example", SpecialUse::Inbox)
            .await
            .is_empty()
    );

    let alice = account_id(store, "alice@test.example").await;
    let copy = s
        .record
        .lookup(alice, meta.mailbox, "<m1@test.example>")
        .expect("the copy is noted for IMAP");
    assert_eq!((copy.uid, copy.modseq), (meta.uid, meta.modseq));
}

#[tokio::test]
async fn the_message_id_added_at_submission_is_the_one_noted() {
    let s = setup(true, false).await;
    let mut client = login(&s.fx, "alice@test.example").await;
    let answer = send(
        &mut client,
        "<alice@test.example>",
        &["<carol@remote.example>"],
        "From: alice@test.example\r\nSubject: no id\r\n\r\nx\r\n",
    )
    .await;
    assert!(answer.starts_with("250 "), "{answer}");
    let store = &*s.fx.store;
    let sent = mailbox_messages(store, "alice@test.example", SpecialUse::Sent).await;
    assert_eq!(sent.len(), 1);
    let id = message_id(&sent[0].1).expect("RFC 6409 §8.3: a Message-ID was added");
    assert!(id.ends_with("@mx.test.example>"), "{id}");
    let alice = account_id(store, "alice@test.example").await;
    assert!(s.record.lookup(alice, sent[0].0.mailbox, &id).is_some());
}

#[tokio::test]
async fn save_sent_off_files_nothing() {
    let s = setup(false, false).await;
    let mut client = login(&s.fx, "alice@test.example").await;
    let answer = send(
        &mut client,
        "<alice@test.example>",
        &["<bob@test.example>"],
        MESSAGE,
    )
    .await;
    assert!(answer.starts_with("250 "), "{answer}");
    let store = &*s.fx.store;
    assert!(
        mailbox_messages(store, "alice@test.example", SpecialUse::Sent)
            .await
            .is_empty()
    );
    assert_eq!(
        mailbox_messages(store, "bob@test.example", SpecialUse::Inbox)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn port_25_files_no_copy_and_offers_no_dsn() {
    let s = setup(true, true).await;
    let mut client = s.fx.connect_plain();
    assert!(client.line().await.starts_with("220 "));
    let lines = ehlo(&mut client).await;
    assert!(!lines.iter().any(|l| l.ends_with("DSN")), "{lines:?}");
    let answer = send(
        &mut client,
        "<alice@test.example>",
        &["<bob@test.example>"],
        MESSAGE,
    )
    .await;
    assert!(answer.starts_with("250 "), "{answer}");
    // RFC 3461 §4.1: NOTIFY is refused where DSN is not offered.
    client.command("MAIL FROM:<x@remote.example>").await;
    let refused = client
        .command("RCPT TO:<bob@test.example> NOTIFY=SUCCESS")
        .await;
    assert!(refused.starts_with("555 "), "{refused}");
    let store = &*s.fx.store;
    assert!(
        mailbox_messages(store, "alice@test.example", SpecialUse::Sent)
            .await
            .is_empty()
    );
    assert!(s.reports.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn dsn_is_offered_on_submission_only_with_a_report_sender() {
    let with = setup(true, true).await;
    let mut client = with.fx.connect_tls(None).await;
    client.line().await;
    let lines = ehlo(&mut client).await;
    assert!(
        lines.iter().any(|l| l == "250-DSN" || l == "250 DSN"),
        "{lines:?}"
    );

    let without = setup(true, false).await;
    let mut client = without.fx.connect_tls(None).await;
    client.line().await;
    let lines = ehlo(&mut client).await;
    assert!(!lines.iter().any(|l| l.ends_with("DSN")), "{lines:?}");
}

#[tokio::test]
async fn notify_success_for_a_local_recipient_is_reported() {
    let s = setup(true, true).await;
    let mut client = login(&s.fx, "alice@test.example").await;
    let answer = send(
        &mut client,
        "<alice@test.example> RET=HDRS ENVID=env1",
        &[
            "<bob@test.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@test.example",
            "<carol@remote.example> NOTIFY=SUCCESS",
        ],
        MESSAGE,
    )
    .await;
    assert!(answer.starts_with("250 "), "{answer}");
    {
        let calls = s.reports.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(call.sender, "alice@test.example");
        assert_eq!(call.envid.as_deref(), Some("env1"));
        assert_eq!(call.ret.as_deref(), Some("HDRS"));
        // Only the local recipient: the queue reports on the remote one.
        assert_eq!(call.recipients.len(), 1);
        let bob = &call.recipients[0];
        assert_eq!(bob.address, "bob@test.example");
        assert_eq!(bob.notify.as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!(bob.orcpt.as_deref(), Some("rfc822;bob@test.example"));
        assert_eq!(bob.outcome, LocalOutcome::Delivered);
        assert!(call.message.ends_with(MESSAGE.as_bytes()));
    }
    // No NOTIFY, or one without SUCCESS: a delivery calls for no report.
    for rcpt in ["<bob@test.example>", "<bob@test.example> NOTIFY=FAILURE"] {
        let answer = send(&mut client, "<alice@test.example>", &[rcpt], MESSAGE).await;
        assert!(answer.starts_with("250 "), "{answer}");
    }
    assert_eq!(s.reports.calls.lock().unwrap().len(), 1);
}
