//! The POP3 service over in-memory streams with real TLS and a temporary SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MultiLine, PASSWORD, Pop3Sessions, fixture, unstuff};
use sealpost_store::FlagOp;
use sealpost_types::Uid;

const ONE: &[u8] = b"Subject: one\r\n\r\nFirst body.\r\n";
const TWO: &[u8] = b"Subject: two\r\n\r\n.\r\n..x\r\n.hidden\r\nend\r\n";
const THREE: &[u8] = b"Subject: three\r\n\r\nThird.\r\n";

async fn three_messages(f: &common::Fixture) {
    for message in [ONE, TWO, THREE] {
        f.deliver("alice@test.example", message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_over_pop3s() {
    let f = fixture().await;
    three_messages(&f).await;
    let mut c = f.login("alice@test.example").await;
    let total = ONE.len() + TWO.len() + 3 + THREE.len(); // TWO gains three stuffing dots
    assert_eq!(c.command("STAT").await, format!("+OK 3 {total}"));
    assert_eq!(
        c.command("LIST").await,
        format!("+OK 3 messages ({total} octets)")
    );
    assert_eq!(
        c.multiline_raw().await,
        format!(
            "1 {}\r\n2 {}\r\n3 {}\r\n",
            ONE.len(),
            TWO.len() + 3,
            THREE.len()
        )
        .into_bytes()
    );
    let validity = {
        let account = f.account("alice@test.example").await;
        f.store
            .mailbox_by_special_use(account, sealpost_types::SpecialUse::Inbox)
            .await
            .unwrap()
            .unwrap()
            .uid_validity
    };
    assert_eq!(c.command("UIDL").await, "+OK");
    assert_eq!(
        c.multiline_raw().await,
        format!("1 {validity}.1\r\n2 {validity}.2\r\n3 {validity}.3\r\n").into_bytes()
    );
    assert_eq!(c.command("UIDL 2").await, format!("+OK 2 {validity}.2"));
    // RETR: the size announced is the size sent; content unstuffs to the stored bytes.
    assert_eq!(
        c.command("RETR 2").await,
        format!("+OK {} octets", TWO.len() + 3)
    );
    let body = c.multiline_raw().await;
    assert_eq!(body.len(), TWO.len() + 3);
    assert_eq!(unstuff(&body), TWO);
    assert_eq!(c.command("TOP 1 0").await, "+OK Top of message follows");
    assert_eq!(c.multiline_raw().await, b"Subject: one\r\n\r\n");
    assert_eq!(c.command("NOOP").await, "+OK");
    assert_eq!(c.command("DELE 1").await, "+OK Message deleted");
    assert_eq!(
        c.command("RSET").await,
        format!("+OK Maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(c.command("DELE 3").await, "+OK Message deleted");
    assert_eq!(
        c.command("QUIT").await,
        "+OK pop.test.example POP3 server signing off"
    );
    assert!(c.closed().await);
    // The update is durable before +OK: the store already lacks message 3.
    assert_eq!(f.inbox_messages("alice@test.example").await, [ONE, TWO]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_update_without_quit() {
    // SECURITY-TESTS PO-05.
    let f = fixture().await;
    three_messages(&f).await;
    let mut c = f.login("alice@test.example").await;
    assert_eq!(c.command("DELE 1").await, "+OK Message deleted");
    assert_eq!(c.command("DELE 2").await, "+OK Message deleted");
    drop(c);
    // The lock is released when the session ends; a new session sees all three.
    let mut c = loop {
        let mut c = f.pop3s().await;
        c.command("USER alice@test.example").await;
        let reply = c.command(&format!("PASS {PASSWORD}")).await;
        if reply.starts_with("+OK") {
            break c;
        }
        assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(c.command("STAT").await.starts_with("+OK 3 "));
    assert_eq!(f.inbox_messages("alice@test.example").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_session_gets_in_use_until_the_first_ends() {
    // SECURITY-TESTS PO-06, RFC 3206 [IN-USE].
    let f = fixture().await;
    three_messages(&f).await;
    let mut first = f.login("alice@test.example").await;
    let mut second = f.pop3s().await;
    second.command("USER alice@test.example").await;
    assert_eq!(
        second.command(&format!("PASS {PASSWORD}")).await,
        "-ERR [IN-USE] Maildrop is in use by another session"
    );
    // Another account is not affected.
    let mut bob = f.login("bob@test.example").await;
    assert_eq!(bob.command("STAT").await, "+OK 0 0");
    assert_eq!(first.command("DELE 1").await, "+OK Message deleted");
    assert!(first.command("QUIT").await.starts_with("+OK"));
    assert!(first.closed().await);
    // The same connection may try again (RFC 1939 §7).
    second.command("USER alice@test.example").await;
    assert!(
        second
            .command(&format!("PASS {PASSWORD}"))
            .await
            .starts_with("+OK Logged in, maildrop has 2 messages")
    );
    assert_eq!(
        second.command("RETR 1").await,
        format!("+OK {} octets", TWO.len() + 3)
    );
    assert_eq!(unstuff(&second.multiline_raw().await), TWO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_ids_survive_flags_and_are_never_reused() {
    // SECURITY-TESTS PO-09.
    let f = fixture().await;
    three_messages(&f).await;
    let uidl = |mut c: common::Client| async move {
        assert_eq!(c.command("UIDL").await, "+OK");
        let list = c.multiline_raw().await;
        c.command("QUIT").await;
        String::from_utf8(list).unwrap()
    };
    let first = uidl(f.login("alice@test.example").await).await;
    let inbox = f.inbox("alice@test.example").await;
    f.store
        .store_flags(inbox, &[Uid(1)], FlagOp::Add, &["\\Seen".to_string()], None)
        .await
        .unwrap();
    let second = uidl(f.login("alice@test.example").await).await;
    assert_eq!(first, second);
    // IMAP expunges message 1; a new delivery never takes its unique-id.
    f.store.expunge(inbox, &[Uid(1)]).await.unwrap();
    f.deliver("alice@test.example", ONE).await;
    let third = uidl(f.login("alice@test.example").await).await;
    let ids = |list: &str| -> Vec<String> {
        list.lines()
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    };
    let (before, after) = (ids(&first), ids(&third));
    assert_eq!(after.len(), 3);
    assert_eq!(after[..2], before[1..]);
    assert!(!before.contains(&after[2]), "{before:?} {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_expunge_during_a_session_never_gives_wrong_bytes() {
    // SECURITY-TESTS PO-06: numbers do not shift; a removed message is an error.
    let f = fixture().await;
    three_messages(&f).await;
    let mut c = f.login("alice@test.example").await;
    let inbox = f.inbox("alice@test.example").await;
    f.store.expunge(inbox, &[Uid(1), Uid(2)]).await.unwrap();
    assert_eq!(
        c.command("RETR 1").await,
        "-ERR Message was removed by another session"
    );
    assert_eq!(
        c.command("RETR 3").await,
        format!("+OK {} octets", THREE.len())
    );
    assert_eq!(c.multiline_raw().await, THREE);
    assert_eq!(c.command("DELE 2").await, "+OK Message deleted");
    assert_eq!(c.command("DELE 3").await, "+OK Message deleted");
    assert!(c.command("QUIT").await.starts_with("+OK"));
    assert!(f.inbox_messages("alice@test.example").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_message_streams_intact() {
    let f = fixture().await;
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    let mut n = 0u64;
    while message.len() < 10 * 1024 * 1024 {
        // Lines of varied length, some starting with a dot.
        let line = if n.is_multiple_of(7) {
            format!(".{n} dotted\r\n")
        } else {
            format!("{n} {}\r\n", "x".repeat((n % 90) as usize))
        };
        message.extend_from_slice(line.as_bytes());
        n += 1;
    }
    f.deliver("alice@test.example", &message).await;
    let dots = message.windows(2).filter(|w| *w == b"\n.").count();
    let mut c = f.login("alice@test.example").await;
    let expected = message.len() + dots;
    assert_eq!(c.command("LIST 1").await, format!("+OK 1 {expected}"));
    assert_eq!(c.command("RETR 1").await, format!("+OK {expected} octets"));
    let body = c.multiline_raw().await;
    assert_eq!(body.len(), expected);
    assert!(
        unstuff(&body) == message,
        "the message reads back unchanged"
    );
    assert_eq!(c.command("TOP 1 2").await, "+OK Top of message follows");
    assert_eq!(
        c.multiline_raw().await,
        b"Subject: big\r\n\r\n..0 dotted\r\n1 x\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_port_requires_stls_and_drops_pipelined_commands() {
    // SECURITY-TESTS ST-05, ST-06, PO-01, PO-02.
    let f = fixture().await;
    three_messages(&f).await;
    let mut c = f.pop3().await;
    assert_eq!(
        c.command("USER alice@test.example").await,
        "-ERR Authentication requires TLS, use STLS first"
    );
    c.send(b"STLS\r\nCAPA\r\n").await;
    assert_eq!(c.line().await, "+OK Begin TLS negotiation");
    c.upgrade().await;
    assert_eq!(c.command("USER alice@test.example").await, "+OK Send PASS");
    assert!(
        c.command(&format!("PASS {PASSWORD}"))
            .await
            .starts_with("+OK Logged in, maildrop has 3 messages")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_plain_and_failures() {
    // SECURITY-TESTS AU-09: one answer for unknown user and wrong password; closed after 3.
    let f = fixture().await;
    let mut c = f.pop3s().await;
    for user in [
        "nosuchuser@test.example",
        "alice@test.example",
        "ALICE@test.example",
    ] {
        assert_eq!(c.command(&format!("USER {user}")).await, "+OK Send PASS");
        assert_eq!(
            c.command("PASS wrong").await,
            "-ERR [AUTH] Authentication failed"
        );
    }
    assert!(c.closed().await);
    // AUTH PLAIN with the initial response (authzid empty, then the login and password).
    let mut c = f.pop3s().await;
    let plain = plain_base64("alice@test.example", PASSWORD);
    let reply = c.command(&format!("AUTH PLAIN {plain}")).await;
    assert!(reply.starts_with("+OK Logged in"), "{reply}");
    // Another authzid is refused (SECURITY-TESTS AU-05).
    let mut c = f.pop3s().await;
    let other =
        base64_encode(format!("bob@test.example\0alice@test.example\0{PASSWORD}").as_bytes());
    assert_eq!(
        c.command(&format!("AUTH PLAIN {other}")).await,
        "-ERR [AUTH] Authentication failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_goodbye_and_keeps_the_marks() {
    let f = fixture().await;
    three_messages(&f).await;
    let mut c = f.login("alice@test.example").await;
    assert_eq!(c.command("DELE 1").await, "+OK Message deleted");
    f.shutdown.cancel();
    assert_eq!(c.line().await, "-ERR [SYS/TEMP] Server shutting down");
    assert!(c.closed().await);
    assert_eq!(f.inbox_messages("alice@test.example").await.len(), 3);
}

fn plain_base64(user: &str, password: &str) -> String {
    base64_encode(format!("\0{user}\0{password}").as_bytes())
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
