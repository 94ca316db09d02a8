//! The IMAP service over in-memory streams with real TLS and a temporary SQLite store,
//! speaking real IMAP lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ImapSessions, PASSWORD, TaggedCommands, fixture};

const ONE: &[u8] = concat!(
    "From: Alice <alice@test.example>\r\n",
    "To: bob@test.example\r\n",
    "Subject: one\r\n",
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
    "Message-ID: <1@test.example>\r\n",
    "\r\n",
    "First body.\r\n"
)
.as_bytes();
const TWO: &[u8] = concat!(
    "From: carol@other.example\r\n",
    "Subject: two\r\n",
    "MIME-Version: 1.0\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n",
    "\r\n",
    "--b\r\n",
    "Content-Type: text/plain\r\n",
    "\r\n",
    "hello world\r\n",
    "--b\r\n",
    "Content-Type: application/octet-stream\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "\r\n",
    "AAEC\r\n",
    "--b--\r\n"
)
.as_bytes();

fn ok(reply: &[String]) -> bool {
    reply.last().is_some_and(|l| l.starts_with("t OK"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_select_list_fetch() {
    let f = fixture().await;
    f.deliver("alice@test.example", ONE).await;
    f.deliver("alice@test.example", TWO).await;
    let mut c = f.imaps().await;
    // RFC 5530: wrong credentials -> NO [AUTHENTICATIONFAILED].
    let reply = c.run("LOGIN alice@test.example wrong").await;
    assert!(
        reply
            .last()
            .unwrap()
            .starts_with("t NO [AUTHENTICATIONFAILED]"),
        "{reply:?}"
    );
    let reply = c.run(&format!("LOGIN alice@test.example {PASSWORD}")).await;
    assert!(
        reply.last().unwrap().starts_with("t OK [CAPABILITY "),
        "{reply:?}"
    );

    let reply = c.run("LIST \"\" \"*\"").await;
    assert!(ok(&reply), "{reply:?}");
    assert!(
        reply
            .iter()
            .any(|l| l.starts_with("* LIST (\\HasNoChildren) \"/\" INBOX")),
        "{reply:?}"
    );
    assert!(
        reply
            .iter()
            .any(|l| l.contains("\\Sent") && l.ends_with("Sent")),
        "{reply:?}"
    );
    let reply = c.run("LIST \"\" \"\"").await;
    assert_eq!(reply[0], "* LIST (\\Noselect) \"/\" \"\"");

    let reply = c.run("SELECT INBOX").await;
    assert!(reply.contains(&"* 2 EXISTS".to_string()), "{reply:?}");
    assert!(
        reply.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{reply:?}"
    );
    assert!(
        reply.iter().any(|l| l.starts_with("* OK [UIDNEXT 3]")),
        "{reply:?}"
    );
    assert!(
        reply.last().unwrap().starts_with("t OK [READ-WRITE]"),
        "{reply:?}"
    );

    let reply = c.run("FETCH 1:* (UID FLAGS RFC822.SIZE)").await;
    assert_eq!(
        reply[0],
        format!("* 1 FETCH (UID 1 FLAGS () RFC822.SIZE {})", ONE.len())
    );
    assert_eq!(
        reply[1],
        format!("* 2 FETCH (UID 2 FLAGS () RFC822.SIZE {})", TWO.len())
    );
    let reply = c.run("UID FETCH 1 (ENVELOPE)").await;
    assert!(
        reply[0].starts_with("* 1 FETCH (UID 1 ENVELOPE (\"Tue, 14 Nov 2023"),
        "{reply:?}"
    );
    assert!(reply[0].contains("\"one\""), "{reply:?}");
    let reply = c.run("FETCH 2 BODYSTRUCTURE").await;
    assert!(reply[0].contains("(\"TEXT\" \"PLAIN\""), "{reply:?}");
    assert!(reply[0].contains("\"MIXED\""), "{reply:?}");

    // BODY.PEEK does not set \Seen; BODY[] does, and reports the new FLAGS.
    let reply = c.run("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    assert_eq!(reply[0], "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}");
    assert_eq!(reply[1], "Subject: one");
    let reply = c.run("FETCH 1 FLAGS").await;
    assert_eq!(reply[0], "* 1 FETCH (FLAGS ())");
    let reply = c.run("FETCH 1 BODY[TEXT]<0.5>").await;
    assert_eq!(reply[0], "* 1 FETCH (BODY[TEXT]<0> {5}");
    assert!(reply[1].starts_with("First FLAGS (\\Seen))"), "{reply:?}");
    let reply = c.run("FETCH 2 (BINARY[2] BINARY.SIZE[2])").await;
    assert!(
        reply[0].starts_with("* 2 FETCH (BINARY[2] ~{3}"),
        "{reply:?}"
    );

    // Invalid message numbers are BAD (RFC 9051 §6.4).
    let reply = c.run("FETCH 9 FLAGS").await;
    assert!(reply.last().unwrap().starts_with("t BAD"), "{reply:?}");

    let reply = c.run("STATUS Sent (MESSAGES UIDNEXT UNSEEN)").await;
    assert_eq!(reply[0], "* STATUS Sent (MESSAGES 0 UIDNEXT 1 UNSEEN 0)");
    let reply = c.run("NAMESPACE").await;
    assert_eq!(reply[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    let reply = c.run("ID (\"name\" \"test\")").await;
    assert_eq!(reply[0], "* ID (\"name\" \"sealpost\")");
    let reply = c.run("LOGOUT").await;
    assert!(reply[0].starts_with("* BYE"), "{reply:?}");
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_plain_with_initial_response() {
    let f = fixture().await;
    let mut c = f.imaps().await;
    let token = base64_plain("alice@test.example", PASSWORD);
    let reply = c.run(&format!("AUTHENTICATE PLAIN {token}")).await;
    assert!(
        reply.last().unwrap().starts_with("t OK [CAPABILITY "),
        "{reply:?}"
    );

    // Without SASL-IR: an empty challenge, then the response.
    let mut c = f.imaps().await;
    c.send(b"t AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    let token = base64_plain("bob@test.example", "nope");
    c.send(format!("{token}\r\n").as_bytes()).await;
    let reply = c.until_tagged("t").await;
    assert!(
        reply
            .last()
            .unwrap()
            .starts_with("t NO [AUTHENTICATIONFAILED]"),
        "{reply:?}"
    );
    // `*` cancels with BAD (RFC 9051 §6.2.2).
    c.send(b"t AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(b"*\r\n").await;
    let reply = c.until_tagged("t").await;
    assert!(reply.last().unwrap().starts_with("t BAD"), "{reply:?}");
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_management() {
    let f = fixture().await;
    let mut c = f.login("alice@test.example").await;
    assert!(ok(&c.run("CREATE Projects/2026").await));
    let reply = c.run("CREATE Projects/2026").await;
    assert!(
        reply.last().unwrap().starts_with("t NO [ALREADYEXISTS]"),
        "{reply:?}"
    );
    let reply = c.run("LIST \"\" \"Projects/*\"").await;
    assert!(
        reply.iter().any(|l| l.ends_with("\"/\" Projects/2026")),
        "{reply:?}"
    );
    assert!(ok(&c.run("RENAME Projects/2026 Projects/2027").await));
    assert!(ok(&c.run("SUBSCRIBE Projects/2027").await));
    let reply = c.run("LIST (SUBSCRIBED) \"\" \"Projects/*\"").await;
    assert!(
        reply
            .iter()
            .any(|l| l.contains("\\Subscribed") && l.ends_with("Projects/2027")),
        "{reply:?}"
    );
    let reply = c.run("LSUB \"\" \"*\"").await;
    assert!(
        reply
            .iter()
            .any(|l| l.starts_with("* LSUB") && l.ends_with("Projects/2027")),
        "{reply:?}"
    );
    assert!(ok(&c.run("UNSUBSCRIBE Projects/2027").await));
    assert!(ok(&c.run("DELETE Projects/2027").await));
    let reply = c.run("DELETE INBOX").await;
    assert!(reply.last().unwrap().starts_with("t NO"), "{reply:?}");
    let reply = c.run("SELECT Nowhere").await;
    assert!(
        reply.last().unwrap().starts_with("t NO [NONEXISTENT]"),
        "{reply:?}"
    );
    // RFC 5258 §3.5: RECURSIVEMATCH reports parents of subscribed mailboxes.
    assert!(ok(&c.run("CREATE Team/Inbox").await));
    assert!(ok(&c.run("SUBSCRIBE Team/Inbox").await));
    let reply = c
        .run("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"Team\"")
        .await;
    assert_eq!(
        reply[0],
        "* LIST (\\HasChildren) \"/\" Team (\"CHILDINFO\" (\"SUBSCRIBED\"))"
    );
    // LIST-STATUS (RFC 5819).
    let reply = c
        .run("LIST \"\" \"INBOX\" RETURN (STATUS (MESSAGES))")
        .await;
    assert!(
        reply.contains(&"* STATUS INBOX (MESSAGES 0)".to_string()),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_on_143() {
    let f = fixture().await;
    let mut c = f.imap().await;
    let reply = c.run("CAPABILITY").await;
    assert!(
        reply[0].contains("LOGINDISABLED") && reply[0].contains("STARTTLS"),
        "{reply:?}"
    );
    let reply = c.run(&format!("LOGIN alice@test.example {PASSWORD}")).await;
    assert!(reply.last().unwrap().starts_with("t NO"), "{reply:?}");
    // Bytes pipelined after STARTTLS are dropped (CVE-2011-0411).
    c.send(b"t STARTTLS\r\nx LOGOUT\r\n").await;
    let reply = c.until_tagged("t").await;
    assert!(reply.last().unwrap().starts_with("t OK"), "{reply:?}");
    c.upgrade().await;
    let reply = c.run(&format!("LOGIN alice@test.example {PASSWORD}")).await;
    assert!(
        reply.last().unwrap().starts_with("t OK [CAPABILITY "),
        "{reply:?}"
    );
    let reply = c.run("SELECT inbox").await;
    assert!(
        reply.last().unwrap().starts_with("t OK [READ-WRITE]"),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap4rev2_session() {
    let f = fixture().await;
    f.deliver("alice@test.example", ONE).await;
    let mut c = f.login("alice@test.example").await;
    let reply = c.run("ENABLE IMAP4rev2").await;
    assert_eq!(reply[0], "* ENABLED IMAP4rev2");
    let reply = c.run("SELECT INBOX").await;
    // RFC 9051 §6.3.2: no RECENT and no UNSEEN code in IMAP4rev2.
    assert!(
        !reply
            .iter()
            .any(|l| l.contains("RECENT") || l.contains("[UNSEEN")),
        "{reply:?}"
    );
    // RFC 9051 §7.3.4: SEARCH answers with ESEARCH.
    let reply = c.run("UID SEARCH ALL").await;
    assert_eq!(reply[0], "* ESEARCH (TAG \"t\") UID ALL 1");
    let reply = c.run("LIST \"\" \"*\"").await;
    assert!(reply.iter().any(|l| l.contains("\\Sent")), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_bye() {
    let f = fixture().await;
    let mut c = f.login("alice@test.example").await;
    f.shutdown.cancel();
    let line = c.line().await;
    assert!(line.starts_with("* BYE [UNAVAILABLE]"), "{line}");
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_without_a_limit() {
    // RFC 9208: an account without a quota has no quota root.
    let f = fixture().await;
    let mut c = f.login("alice@test.example").await;
    let reply = c.run("GETQUOTAROOT INBOX").await;
    assert_eq!(reply, ["* QUOTAROOT INBOX", "t OK GETQUOTAROOT completed"]);
    let reply = c.run("GETQUOTA \"\"").await;
    assert!(
        reply.last().unwrap().starts_with("t NO [NONEXISTENT]"),
        "{reply:?}"
    );
    let reply = c.run("SETQUOTA \"\" (STORAGE 10)").await;
    assert!(
        reply.last().unwrap().starts_with("t NO [NOPERM]"),
        "{reply:?}"
    );
    let reply = c.run("GETQUOTAROOT Nowhere").await;
    assert!(
        reply.last().unwrap().starts_with("t NO [NONEXISTENT]"),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_logged_out() {
    // RFC 9051 §5.4: the autologout timer ends the session with BYE (here the
    // connection's short read timeout stands in for the pre-login limit).
    let f = fixture().await;
    let mut c = f
        .imaps_with_idle(Some(std::time::Duration::from_millis(200)))
        .await;
    let line = c.line().await;
    assert!(line.starts_with("* BYE Autologout"), "{line}");
    assert!(c.closed().await);
}
