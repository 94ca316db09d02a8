//! APPEND to Sent of a message the SMTP service already filed there at submission: the
//! existing copy is reported (APPENDUID) and given the APPEND's flags, not stored twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Client, Fixture, ImapSessions, TaggedCommands};
use sealpost_imap::service::ImapService;
use sealpost_net::ServiceKind;
use sealpost_store::{FlagOp, Mailbox, MessageMeta, RecentSubmissions, SentCopy};
use sealpost_testkit::ServiceFixture;
use sealpost_types::SpecialUse;

/// What the SMTP service stores: its trace headers, then the message as submitted.
const FILED: &str = "Received: from client (x) by mx.test.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
    From: alice@test.example\r\nMessage-ID: <sent-1@test.example>\r\nSubject: hi\r\n\r\nhello\r\n";
/// What the client APPENDs: the same message without the server's trace headers.
const CLIENT_COPY: &str =
    "From: alice@test.example\r\nMessage-ID: <sent-1@test.example>\r\nSubject: hi\r\n\r\nhello\r\n";

async fn fixture(record: &Arc<RecentSubmissions>) -> Fixture {
    let record = Arc::clone(record);
    ServiceFixture::new(
        ServiceKind::Imaps,
        ServiceKind::Imap,
        move |store, authenticator| {
            ImapService::new("imap.test.example", store, authenticator)
                .with_recent_submissions(record)
        },
    )
    .await
}

async fn mailbox(f: &Fixture, user: &str, use_: SpecialUse) -> Mailbox {
    let account = f.account(user).await;
    f.store
        .mailbox_by_special_use(account, use_)
        .await
        .unwrap()
        .unwrap()
}

async fn messages(f: &Fixture, user: &str, use_: SpecialUse) -> Vec<MessageMeta> {
    let mailbox = mailbox(f, user, use_).await;
    f.store.messages(mailbox.id).await.unwrap()
}

/// Files FILED in `user`'s Sent as the SMTP service does, and notes it in `record`.
async fn submit(f: &Fixture, record: &RecentSubmissions, user: &str) -> SentCopy {
    let sent = mailbox(f, user, SpecialUse::Sent).await;
    let stored = f
        .store
        .accept_message(
            Arc::from(FILED.as_bytes()),
            1_700_000_000,
            &[(sent.id, vec!["\\Seen".to_string()])],
            None,
        )
        .await
        .unwrap();
    let (_, uid, modseq) = stored.delivered[0];
    let copy = SentCopy {
        mailbox: sent.id,
        uid_validity: sent.uid_validity,
        uid,
        modseq,
    };
    record.record(f.account(user).await, "<sent-1@test.example>", copy);
    copy
}

async fn append(c: &mut Client, mailbox: &str, flags: &str, message: &str) -> String {
    let reply = c
        .run(&format!(
            "APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}",
            message.len()
        ))
        .await;
    reply.last().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_copy_of_a_submission_is_not_stored_twice() {
    let record = Arc::new(RecentSubmissions::default());
    let f = fixture(&record).await;
    let copy = submit(&f, &record, "alice@test.example").await;
    let mut c = f.login("alice@test.example").await;

    let answer = append(&mut c, "Sent", "\\Seen \\Flagged", CLIENT_COPY).await;
    assert_eq!(
        answer,
        format!(
            "t OK [APPENDUID {} {}] APPEND completed (already filed when sent)",
            copy.uid_validity, copy.uid.0
        )
    );
    let sent = messages(&f, "alice@test.example", SpecialUse::Sent).await;
    assert_eq!(sent.len(), 1, "still one copy");
    assert_eq!(sent[0].uid, copy.uid);
    assert_eq!(sent[0].flags, vec!["\\Flagged", "\\Seen"]);
    let raw = f.store.read_blob(&sent[0].blob).await.unwrap();
    assert_eq!(raw, FILED.as_bytes(), "the server's copy stays");

    // The client appends again (a retry): the same answer.
    let again = append(&mut c, "Sent", "\\Seen", CLIENT_COPY).await;
    assert!(
        again.starts_with(&format!(
            "t OK [APPENDUID {} {}]",
            copy.uid_validity, copy.uid.0
        )),
        "{again}"
    );
    assert_eq!(
        messages(&f, "alice@test.example", SpecialUse::Sent)
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_mailboxes_messages_and_accounts_are_stored_normally() {
    let record = Arc::new(RecentSubmissions::default());
    let f = fixture(&record).await;
    submit(&f, &record, "alice@test.example").await;
    let mut alice = f.login("alice@test.example").await;

    // Another mailbox of the same account.
    let answer = append(&mut alice, "Drafts", "\\Draft", CLIENT_COPY).await;
    assert!(answer.starts_with("t OK [APPENDUID "), "{answer}");
    assert_eq!(
        messages(&f, "alice@test.example", SpecialUse::Drafts)
            .await
            .len(),
        1
    );
    // Another message (Message-ID) to Sent, and one without a Message-ID.
    let other = CLIENT_COPY.replace("sent-1@", "other@");
    assert!(
        append(&mut alice, "Sent", "\\Seen", &other)
            .await
            .starts_with("t OK ")
    );
    let no_id = "From: alice@test.example\r\nSubject: hi\r\n\r\nhello\r\n";
    assert!(
        append(&mut alice, "Sent", "\\Seen", no_id)
            .await
            .starts_with("t OK ")
    );
    assert_eq!(
        messages(&f, "alice@test.example", SpecialUse::Sent)
            .await
            .len(),
        3
    );
    // MULTIAPPEND is stored as it comes (RFC 3502): its APPENDUID could not tell old from new.
    let reply = alice
        .run(&format!(
            "APPEND Sent {{{n}+}}\r\n{CLIENT_COPY} {{{n}+}}\r\n{CLIENT_COPY}",
            n = CLIENT_COPY.len()
        ))
        .await;
    assert!(reply.last().unwrap().starts_with("t OK "), "{reply:?}");
    assert_eq!(
        messages(&f, "alice@test.example", SpecialUse::Sent)
            .await
            .len(),
        5
    );

    // Another account with the same Message-ID in its own Sent.
    let mut bob = f.login("bob@test.example").await;
    assert!(
        append(&mut bob, "Sent", "\\Seen", CLIENT_COPY)
            .await
            .starts_with("t OK ")
    );
    assert_eq!(
        messages(&f, "bob@test.example", SpecialUse::Sent)
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_is_gone_is_not_reported() {
    let record = Arc::new(RecentSubmissions::default());
    let f = fixture(&record).await;
    let copy = submit(&f, &record, "alice@test.example").await;
    // Its flags changed meanwhile (a higher MODSEQ): still found.
    f.store
        .store_flags(
            copy.mailbox,
            &[copy.uid],
            FlagOp::Add,
            &["$Label".to_string()],
            None,
        )
        .await
        .unwrap();
    let mut c = f.login("alice@test.example").await;
    let answer = append(&mut c, "Sent", "", CLIENT_COPY).await;
    assert!(answer.contains(&format!(" {}]", copy.uid.0)), "{answer}");
    // Expunged: the client's copy is stored.
    f.store.expunge(copy.mailbox, &[copy.uid]).await.unwrap();
    let answer = append(&mut c, "Sent", "\\Seen", CLIENT_COPY).await;
    assert!(answer.starts_with("t OK [APPENDUID "), "{answer}");
    assert!(!answer.contains(&format!(" {}]", copy.uid.0)), "{answer}");
    let sent = messages(&f, "alice@test.example", SpecialUse::Sent).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        f.store.read_blob(&sent[0].blob).await.unwrap(),
        CLIENT_COPY.as_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_record_every_append_is_stored() {
    let record = Arc::new(RecentSubmissions::default());
    let f = common::fixture().await;
    submit(&f, &record, "alice@test.example").await;
    let mut c = f.login("alice@test.example").await;
    assert!(
        append(&mut c, "Sent", "\\Seen", CLIENT_COPY)
            .await
            .starts_with("t OK ")
    );
    assert_eq!(
        messages(&f, "alice@test.example", SpecialUse::Sent)
            .await
            .len(),
        2
    );
}
