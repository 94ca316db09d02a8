//! STORE, SEARCH, COPY, MOVE, EXPUNGE, APPEND over the IMAP service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ImapSessions, TaggedCommands, fixture};

const MSG: &[u8] = concat!(
    "From: Alice <alice@test.example>\r\n",
    "Subject: hello there\r\n",
    "\r\n",
    "A body with a needle in it.\r\n"
)
.as_bytes();
const OTHER: &[u8] = b"From: bob@test.example\r\nSubject: other\r\n\r\nNothing to see.\r\n";

fn last(reply: &[String]) -> &str {
    reply.last().map_or("", String::as_str)
}

async fn selected(f: &common::Fixture) -> common::Client {
    for message in [MSG, OTHER, MSG] {
        f.deliver("alice@test.example", message).await;
    }
    let mut c = f.login("alice@test.example").await;
    let reply = c.run("SELECT INBOX").await;
    assert!(last(&reply).starts_with("t OK [READ-WRITE]"), "{reply:?}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_search() {
    let f = fixture().await;
    let mut c = selected(&f).await;
    let reply = c.run("STORE 1:2 +FLAGS (\\Flagged $Work)").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS (\\Flagged $Work))");
    assert_eq!(reply[1], "* 2 FETCH (FLAGS (\\Flagged $Work))");
    let reply = c.run("UID STORE 2 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    let reply = c.run("SEARCH FLAGGED").await;
    assert_eq!(reply[0], "* SEARCH 1");
    let reply = c.run("SEARCH KEYWORD $Work NOT FLAGGED").await;
    assert_eq!(reply[0], "* SEARCH 2");
    let reply = c.run("UID SEARCH BODY needle").await;
    assert_eq!(reply[0], "* SEARCH 1 3");
    let reply = c.run("SEARCH OR SUBJECT other FROM alice").await;
    assert_eq!(reply[0], "* SEARCH 1 2 3");
    let reply = c.run("SEARCH RETURN (MIN MAX COUNT) TEXT needle").await;
    assert_eq!(reply[0], "* ESEARCH (TAG \"t\") MIN 1 MAX 3 COUNT 2");
    let reply = c.run("SEARCH LARGER 1000").await;
    assert_eq!(reply[0], "* SEARCH");
    // RFC 7162: STORE UNCHANGEDSINCE 0 fails for every message (MODIFIED).
    let reply = c.run("STORE 3 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)").await;
    assert!(last(&reply).starts_with("t OK [MODIFIED 3]"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunge_copy_move() {
    let f = fixture().await;
    let mut c = selected(&f).await;
    let reply = c.run("COPY 1:2 Archive").await;
    assert!(last(&reply).starts_with("t OK [COPYUID "), "{reply:?}");
    let reply = c.run("COPY 1 Nowhere").await;
    assert!(last(&reply).starts_with("t NO [TRYCREATE]"), "{reply:?}");
    let reply = c.run("MOVE 2 Trash").await;
    assert!(reply[0].starts_with("* OK [COPYUID "), "{reply:?}");
    assert_eq!(reply[1], "* 2 EXPUNGE");
    assert!(last(&reply).starts_with("t OK"), "{reply:?}");
    // Now: 1 (uid 1), 2 (uid 3).
    c.run("STORE 1:2 +FLAGS.SILENT (\\Deleted)").await;
    // UID EXPUNGE removes only the named \Deleted messages (RFC 4315 §2.1).
    let reply = c.run("UID EXPUNGE 3").await;
    assert_eq!(reply[0], "* 2 EXPUNGE");
    let reply = c.run("EXPUNGE").await;
    assert_eq!(reply[0], "* 1 EXPUNGE");
    assert!(last(&reply).starts_with("t OK"), "{reply:?}");
    let reply = c.run("STATUS Archive (MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS Archive (MESSAGES 2)");
    let reply = c.run("EXAMINE Trash").await;
    assert!(reply.contains(&"* 1 EXISTS".to_string()), "{reply:?}");
    assert!(last(&reply).starts_with("t OK [READ-ONLY]"), "{reply:?}");
    let reply = c.run("STORE 1 +FLAGS (\\Seen)").await;
    assert!(last(&reply).starts_with("t NO"), "{reply:?}");
    assert!(c.run("CLOSE").await[0].starts_with("t OK"));
    let reply = c.run("FETCH 1 FLAGS").await;
    assert!(last(&reply).starts_with("t BAD"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_with_literal() {
    let f = fixture().await;
    let mut c = f.login("alice@test.example").await;
    c.send(format!("t APPEND Drafts (\\Draft) {{{}}}\r\n", MSG.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(MSG).await;
    c.send(b"\r\n").await;
    let reply = c.until_tagged("t").await;
    assert!(last(&reply).starts_with("t OK [APPENDUID "), "{reply:?}");
    assert!(last(&reply).contains(" 1]"), "{reply:?}");
    // LITERAL+ and an internal date.
    c.send(
        format!(
            "t APPEND Drafts \"14-Nov-2023 22:13:20 +0000\" {{{}+}}\r\n",
            OTHER.len()
        )
        .as_bytes(),
    )
    .await;
    c.send(OTHER).await;
    c.send(b"\r\n").await;
    let reply = c.until_tagged("t").await;
    assert!(last(&reply).starts_with("t OK [APPENDUID "), "{reply:?}");
    let reply = c.run("APPEND Nowhere {3+}\r\nabc").await;
    assert!(last(&reply).starts_with("t NO [TRYCREATE]"), "{reply:?}");
    let reply = c.run("EXAMINE Drafts").await;
    assert!(reply.contains(&"* 2 EXISTS".to_string()), "{reply:?}");
    let reply = c.run("FETCH 1:2 (FLAGS INTERNALDATE)").await;
    assert!(
        reply[0].starts_with("* 1 FETCH (FLAGS (\\Draft) INTERNALDATE "),
        "{reply:?}"
    );
    assert_eq!(
        reply[1],
        "* 2 FETCH (FLAGS () INTERNALDATE \"14-Nov-2023 22:13:20 +0000\")"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searchres_and_list_hierarchy() {
    let f = fixture().await;
    let mut c = selected(&f).await;
    // RFC 5182: SAVE alone answers nothing but OK; `$` then names the result.
    let reply = c.run("SEARCH RETURN (SAVE) SUBJECT hello").await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    let reply = c.run("FETCH $ (UID)").await;
    assert_eq!(reply[..2], ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)"]);
    let reply = c.run("UID SEARCH UID $ NOT UID 1").await;
    assert_eq!(reply[0], "* SEARCH 3");
    // RFC 9051 §6.3.4: CREATE makes the superior names it needs.
    assert!(last(&c.run("CREATE Work/Plans").await).starts_with("t OK"));
    let reply = c.run("LIST \"\" \"%\"").await;
    assert!(
        reply.contains(&"* LIST (\\HasChildren) \"/\" Work".to_string()),
        "{reply:?}"
    );
    assert!(
        !reply.iter().any(|l| l.ends_with("Work/Plans")),
        "{reply:?}"
    );
    let reply = c.run("LIST \"\" \"Work/%\"").await;
    assert!(
        reply.iter().any(|l| l.ends_with("\"/\" Work/Plans")),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_normalises_bare_lf() {
    // SECURITY-TESTS IM-18.
    let f = fixture().await;
    let mut c = f.login("alice@test.example").await;
    let reply = c.run("APPEND INBOX (\\Seen) {10+}\r\nFrom: x\nhi").await;
    assert!(last(&reply).starts_with("t OK [APPENDUID "), "{reply:?}");
    assert_eq!(
        f.inbox_messages("alice@test.example").await,
        [b"From: x\r\nhi".to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examine_never_sets_seen_and_users_are_isolated() {
    let f = fixture().await;
    f.deliver("alice@test.example", MSG).await;
    let mut c = f.login("alice@test.example").await;
    c.run("EXAMINE INBOX").await;
    let reply = c.run("FETCH 1 BODY[]").await;
    assert!(!reply.iter().any(|l| l.contains("\\Seen")), "{reply:?}");
    let reply = c.run("FETCH 1 FLAGS").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS ())");
    // SECURITY-TESTS IM-16: bob sees none of alice's mail.
    let mut b = f.login("bob@test.example").await;
    let reply = b.run("SELECT INBOX").await;
    assert!(reply.contains(&"* 0 EXISTS".to_string()), "{reply:?}");
    let reply = b.run("SELECT \"Other Users/alice/INBOX\"").await;
    assert!(last(&reply).starts_with("t NO [NONEXISTENT]"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiappend_is_atomic_and_counts_against_the_quota() {
    let f = fixture().await;
    let mut c = f.login("alice@test.example").await;
    let caps = c.run("CAPABILITY").await;
    assert!(caps[0].contains(" MULTIAPPEND"), "{caps:?}");
    // RFC 9208 §3.1: only STORAGE can be limited.
    assert!(caps[0].contains(" QUOTA=RES-STORAGE"), "{caps:?}");
    assert!(!caps[0].contains("RES-MESSAGE"), "{caps:?}");
    // RFC 3502 §6.3.11: two messages, one command, consecutive UIDs.
    let reply = c
        .run(&format!(
            "APPEND Drafts (\\Seen) {{{}+}}\r\n{} {{{}+}}\r\n{}",
            MSG.len(),
            String::from_utf8_lossy(MSG),
            OTHER.len(),
            String::from_utf8_lossy(OTHER)
        ))
        .await;
    assert!(last(&reply).starts_with("t OK [APPENDUID "), "{reply:?}");
    assert!(last(&reply).contains(" 1:2]"), "{reply:?}");
    let reply = c.run("STATUS Drafts (MESSAGES UNSEEN)").await;
    assert_eq!(reply[0], "* STATUS Drafts (MESSAGES 2 UNSEEN 1)");

    // With a quota: usage is reported, and a MULTIAPPEND that would exceed it stores
    // none of its messages (RFC 9208 §4.2.1, RFC 3502 §6.3.11).
    let used = (MSG.len() + OTHER.len()) as u64;
    f.store
        .set_quota(
            &sealpost_types::Address::parse("alice@test.example").unwrap(),
            Some(4096),
        )
        .await
        .unwrap();
    let reply = c.run("GETQUOTAROOT INBOX").await;
    assert_eq!(
        reply,
        [
            "* QUOTAROOT INBOX \"\"".to_string(),
            format!("* QUOTA \"\" (STORAGE {} 4)", used.div_ceil(1024)),
            "t OK GETQUOTAROOT completed".to_string(),
        ]
    );
    let big = "x".repeat(3000);
    let reply = c
        .run(&format!(
            "APPEND Drafts {{{}+}}\r\n{big} {{{}+}}\r\n{big}",
            big.len(),
            big.len()
        ))
        .await;
    assert!(last(&reply).starts_with("t NO [OVERQUOTA]"), "{reply:?}");
    let reply = c.run("STATUS Drafts (MESSAGES)").await;
    assert_eq!(reply[0], "* STATUS Drafts (MESSAGES 2)");
    // COPY over the quota is refused too; MOVE frees what it adds.
    c.run("SELECT Drafts").await;
    f.store
        .set_quota(
            &sealpost_types::Address::parse("alice@test.example").unwrap(),
            Some(used + 10),
        )
        .await
        .unwrap();
    let reply = c.run("COPY 1:2 INBOX").await;
    assert!(last(&reply).starts_with("t NO [OVERQUOTA]"), "{reply:?}");
    let reply = c.run("MOVE 1:2 INBOX").await;
    assert!(last(&reply).starts_with("t OK"), "{reply:?}");
    assert!(reply.contains(&"* 2 EXPUNGE".to_string()), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_structure_is_kept_beside_the_blob() {
    // Issue 4: the parsed structure is cached by the store, so ENVELOPE and BODYSTRUCTURE
    // of a large mailbox do not parse (or even read) every message again.
    let f = fixture().await;
    f.deliver("alice@test.example", MSG).await;
    let inbox = f.inbox("alice@test.example").await;
    let blob = f.store.messages(inbox).await.unwrap()[0].blob;
    assert_eq!(f.store.blob_summary(&blob).await.unwrap(), None);
    let mut c = f.login("alice@test.example").await;
    c.run("SELECT INBOX").await;
    let first = c.run("FETCH 1 (ENVELOPE BODYSTRUCTURE)").await;
    let mut kept = None;
    for _ in 0..100 {
        kept = f.store.blob_summary(&blob).await.unwrap();
        if kept.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kept = kept.expect("the structure is saved");
    let structure = sealpost_imap::mime::MessageStructure::from_bytes(&kept).unwrap();
    assert_eq!(structure, sealpost_imap::mime::MessageStructure::parse(MSG));
    // A new session answers from the kept structure, identically.
    let mut other = f.login("alice@test.example").await;
    other.run("SELECT INBOX").await;
    assert_eq!(other.run("FETCH 1 (ENVELOPE BODYSTRUCTURE)").await, first);
}
