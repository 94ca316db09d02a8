//! Sessions see each other (RFC 9051 §7, RFC 2177 IDLE): updates appear only at the
//! moments the RFC allows, and at once during IDLE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ImapSessions, TaggedCommands, fixture};

const MSG: &[u8] = b"Subject: x\r\n\r\nbody\r\n";
const MSG2: &[u8] = b"Subject: y\r\n\r\nother body\r\n";

fn last(reply: &[String]) -> &str {
    reply.last().map_or("", String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_wait_for_allowed_moments() {
    let f = fixture().await;
    f.deliver("alice@test.example", MSG).await;
    f.deliver("alice@test.example", MSG2).await;
    let mut a = f.login("alice@test.example").await;
    let mut b = f.login("alice@test.example").await;
    assert!(
        a.run("SELECT INBOX")
            .await
            .contains(&"* 2 EXISTS".to_string())
    );
    assert!(last(&b.run("SELECT INBOX").await).starts_with("t OK"));

    // B flags and expunges message 1; a delivery adds message 3.
    b.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let reply = b.run("EXPUNGE").await;
    assert_eq!(reply[0], "* 1 EXPUNGE");
    f.deliver("alice@test.example", MSG).await;

    // RFC 9051 §7.5.1: no EXPUNGE (and no renumbering) while answering FETCH.
    let reply = a.run("FETCH 1:2 (UID)").await;
    assert_eq!(
        reply,
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 2)",
            "t OK FETCH completed"
        ]
    );
    let reply = a.run("SEARCH ALL").await;
    assert_eq!(reply[0], "* SEARCH 1 2");
    // NOOP is an allowed moment: EXPUNGE, then EXISTS with the new size.
    let reply = a.run("NOOP").await;
    assert_eq!(reply, ["* 1 EXPUNGE", "* 2 EXISTS", "t OK NOOP completed"]);
    let reply = a.run("FETCH 1:* (UID)").await;
    assert_eq!(reply[..2], ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]);

    // B's flag change reaches A at the next allowed moment.
    b.run("NOOP").await;
    b.run("STORE 1 +FLAGS (\\Seen)").await;
    let reply = a.run("NOOP").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS (\\Seen))");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_announces_at_once() {
    let f = fixture().await;
    let mut a = f.login("alice@test.example").await;
    assert!(
        a.run("SELECT INBOX")
            .await
            .contains(&"* 0 EXISTS".to_string())
    );
    a.send(b"i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling");
    f.deliver("alice@test.example", MSG).await;
    // Announced without any command from the client (RFC 2177 §3).
    let line = tokio::time::timeout(Duration::from_secs(10), a.line())
        .await
        .unwrap();
    assert_eq!(line, "* 1 EXISTS");
    a.send(b"DONE\r\n").await;
    let reply = a.until_tagged("i").await;
    assert_eq!(reply, ["i OK IDLE terminated"]);
    // IDLE in the authenticated state is allowed too, and DONE ends it.
    assert!(last(&a.run("UNSELECT").await).starts_with("t OK"));
    a.send(b"i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling");
    a.send(b"DONE\r\n").await;
    assert_eq!(a.until_tagged("i").await, ["i OK IDLE terminated"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qresync_vanished_and_condstore_modseq() {
    let f = fixture().await;
    f.deliver("alice@test.example", MSG).await;
    f.deliver("alice@test.example", MSG2).await;
    let mut a = f.login("alice@test.example").await;
    let reply = a.run("ENABLE QRESYNC").await;
    assert!(reply[0].starts_with("* ENABLED"), "{reply:?}");
    let reply = a.run("SELECT INBOX").await;
    let highest = reply
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|rest| rest.split(']').next())
        .map(|n| n.parse::<u64>().unwrap())
        .expect("HIGHESTMODSEQ");
    let validity = reply
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY "))
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .to_string();
    a.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let reply = a.run("EXPUNGE").await;
    // RFC 7162 §3.2.10: VANISHED instead of EXPUNGE once QRESYNC is enabled.
    assert_eq!(reply[0], "* VANISHED 1");
    a.run("UNSELECT").await;
    let reply = a
        .run(&format!("SELECT INBOX (QRESYNC ({validity} {highest}))"))
        .await;
    assert!(
        reply.contains(&"* VANISHED (EARLIER) 1".to_string()),
        "{reply:?}"
    );
    let reply = a.run("FETCH 1 (FLAGS) (CHANGEDSINCE 1)").await;
    assert!(
        reply[0].starts_with("* 1 FETCH (FLAGS () MODSEQ ("),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condstore_store_and_uid_fetch_vanished() {
    let f = fixture().await;
    for message in [MSG, MSG2, MSG] {
        f.deliver("alice@test.example", message).await;
    }
    let mut a = f.login("alice@test.example").await;
    a.run("ENABLE QRESYNC").await;
    a.run("SELECT INBOX").await;
    // RFC 7162 §3.1.3: a STORE that passes UNCHANGEDSINCE reports MODSEQ.
    let reply = a
        .run("UID STORE 2 (UNCHANGEDSINCE 1000) +FLAGS (\\Answered)")
        .await;
    assert!(
        reply[0].starts_with("* 2 FETCH (FLAGS (\\Answered) UID 2 MODSEQ ("),
        "{reply:?}"
    );
    assert_eq!(last(&reply), "t OK STORE completed");
    let modseq: u64 = reply[0]
        .rsplit("MODSEQ (")
        .next()
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .parse()
        .unwrap();
    a.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    a.run("EXPUNGE").await;
    // RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED).
    let reply = a
        .run(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {} VANISHED)",
            modseq - 1
        ))
        .await;
    assert_eq!(reply[0], "* VANISHED (EARLIER) 1");
    assert!(
        reply[1].starts_with("* 1 FETCH (UID 2 FLAGS (\\Answered) MODSEQ ("),
        "{reply:?}"
    );
    assert_eq!(last(&reply), "t OK FETCH completed");
}
