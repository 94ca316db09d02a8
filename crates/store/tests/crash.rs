//! Crash safety of the SQLite store, with a real process killed mid-flight.
//!
//! Each test re-runs this test binary as a child that executes one `child_*` test (those
//! do nothing unless [`CHILD_ENV`] is set), which works on a store in a given folder and
//! then calls `std::process::abort()`: no destructors, no flush, no clean close, as with
//! `kill -9`. The parent then opens the store and checks what survived.
// A test file: the helpers outside `#[test]` functions fail the test by panicking too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sealpost_store::sqlite::SqliteStore;
use sealpost_store::{
    Directory, MailStore, OutboundEnvelope, OutboundRecipient, QueueId, StoreError,
};
use sealpost_types::{Address, Domain, MailboxName};

/// Which child to be (`commit`, `accept` or `uncommitted`); absent in the parent.
const CHILD_ENV: &str = "SEALPOST_CRASH_CHILD";
/// The data folder the child works in.
const DIR_ENV: &str = "SEALPOST_CRASH_DIR";

const RAW: &[u8] = b"From: a@example.net\r\nTo: alice@example.org\r\nSubject: kept\r\n\r\nHi\r\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

/// The child's data folder, if this process is the child `mode`.
fn child_dir(mode: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_ENV).ok()? != mode {
        return None;
    }
    std::env::var_os(DIR_ENV).map(PathBuf::from)
}

/// Runs the test `name` of this binary in a child process and returns its stdout.
fn run_child(name: &str, mode: &str, dir: &Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env(DIR_ENV, dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        !output.status.success(),
        "the child should have aborted; stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(output.status.signal(), Some(6), "killed by SIGABRT");
    }
    stdout
}

fn abort_after(marker: &str) -> ! {
    println!("{marker}");
    let _ = std::io::stdout().flush();
    std::process::abort();
}

fn integrity_check(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(dir.join(sealpost_store::sqlite::DATABASE_FILE)).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn child_commit_then_abort() {
    let Some(dir) = child_dir("commit") else {
        return;
    };
    runtime().block_on(async {
        let store = SqliteStore::open(&dir).await.unwrap();
        store
            .add_domain(&Domain::parse("example.org").unwrap(), Vec::new())
            .await
            .unwrap();
        let alice = store
            .add_account(&address("alice@example.org"), "hash")
            .await
            .unwrap();
        let inbox = store
            .mailbox(alice, &MailboxName::inbox())
            .await
            .unwrap()
            .unwrap();
        let targets = [(inbox.id, vec!["\\Seen".to_string()])];
        store
            .deliver(Arc::from(RAW), 1_700_000_000, &targets)
            .await
            .unwrap();
        store
            .add_account(&address("bob@example.org"), "hash")
            .await
            .unwrap();
        // Every call above returned: each is committed. Die before anything else runs.
        abort_after("committed");
    });
}

#[test]
fn committed_writes_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stdout = run_child("child_commit_then_abort", "commit", &data);
    assert!(stdout.contains("committed"), "child output: {stdout}");

    runtime().block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        let alice = store
            .account(&address("alice@example.org"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .account(&address("bob@example.org"))
                .await
                .unwrap()
                .is_some()
        );
        let inbox = store
            .mailbox(alice.id, &MailboxName::inbox())
            .await
            .unwrap()
            .unwrap();
        let messages = store.messages(inbox.id).await.unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].flags, ["\\Seen"]);
        assert_eq!(store.read_blob(&messages[0].blob).await.unwrap(), RAW);
    });
    assert_eq!(integrity_check(&data), "ok");
}

#[test]
fn child_accept_message_then_abort() {
    let Some(dir) = child_dir("accept") else {
        return;
    };
    runtime().block_on(async {
        let store = SqliteStore::open(&dir).await.unwrap();
        store
            .add_domain(&Domain::parse("example.org").unwrap(), Vec::new())
            .await
            .unwrap();
        let alice = store
            .add_account(&address("alice@example.org"), "hash")
            .await
            .unwrap();
        let sent = store
            .mailbox(alice, &MailboxName::parse("Sent").unwrap())
            .await
            .unwrap()
            .unwrap();
        let outbound = OutboundEnvelope {
            from: Some("alice@example.org".into()),
            recipients: vec![OutboundRecipient::new("bob@remote.example")],
            submitted_by: Some(alice),
            ..OutboundEnvelope::default()
        };
        let accepted = store
            .accept_message(
                Arc::from(RAW),
                1_700_000_000,
                &[(sent.id, vec!["\\Seen".to_string()])],
                Some(outbound),
            )
            .await
            .unwrap();
        // accept_message returned: this is where the 250 goes out. Die right after it.
        abort_after(&format!("accepted queue={}", accepted.queued.unwrap()));
    });
}

#[test]
fn accepted_message_and_queue_entry_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stdout = run_child("child_accept_message_then_abort", "accept", &data);
    let queue_id = stdout
        .split_once("accepted queue=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|id| id.parse::<i64>().ok())
        .map(QueueId)
        .unwrap_or_else(|| panic!("child output: {stdout}"));

    runtime().block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        let alice = store
            .account(&address("alice@example.org"))
            .await
            .unwrap()
            .unwrap();
        let sent = store
            .mailbox(alice.id, &MailboxName::parse("Sent").unwrap())
            .await
            .unwrap()
            .unwrap();
        let messages = store.messages(sent.id).await.unwrap();
        assert_eq!(messages.len(), 1, "the mailbox copy survived");
        assert_eq!(messages[0].flags, ["\\Seen"]);
        let queue = store.queued().await.unwrap();
        assert_eq!(queue.len(), 1, "the queue row survived: {queue:?}");
        assert_eq!(queue[0].queue_id, queue_id);
        assert_eq!(queue[0].recipient, "bob@remote.example");
        assert_eq!(queue[0].from.as_deref(), Some("alice@example.org"));
        assert_eq!(queue[0].size, RAW.len() as u64);
        assert_eq!(store.read_blob(&messages[0].blob).await.unwrap(), RAW);
    });
    assert_eq!(integrity_check(&data), "ok");
}

/// Writes an account and a large blob in a raw transaction and dies before COMMIT. The
/// tiny page cache makes SQLite spill the uncommitted pages into the WAL file first, so
/// the parent faces uncommitted data on disk, not merely in memory.
#[test]
fn child_write_without_commit_then_abort() {
    let Some(dir) = child_dir("uncommitted") else {
        return;
    };
    let conn = rusqlite::Connection::open(dir.join(sealpost_store::sqlite::DATABASE_FILE)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.pragma_update(None, "cache_size", 2).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute(
        "INSERT INTO accounts (address, domain_id, password_hash) VALUES \
         ('ghost@example.org', (SELECT id FROM domains WHERE name = 'example.org'), 'x')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO blobs (hash, data) VALUES (?1, ?2)",
        rusqlite::params![&[7u8; 32][..], vec![b'x'; 4 << 20]],
    )
    .unwrap();
    abort_after("uncommitted");
}

#[test]
fn uncommitted_writes_leave_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        store
            .add_domain(&Domain::parse("example.org").unwrap(), Vec::new())
            .await
            .unwrap();
        store
            .add_account(&address("alice@example.org"), "hash")
            .await
            .unwrap();
    });
    let stdout = run_child(
        "child_write_without_commit_then_abort",
        "uncommitted",
        &data,
    );
    assert!(stdout.contains("uncommitted"), "child output: {stdout}");
    let wal = std::fs::metadata(data.join("sealpost.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal > 1 << 20,
        "the uncommitted pages reached the WAL ({wal} bytes)"
    );

    runtime().block_on(async {
        let store = SqliteStore::open(&data).await.unwrap();
        assert!(
            store
                .account(&address("ghost@example.org"))
                .await
                .unwrap()
                .is_none()
        );
        let accounts = store.list_accounts(None).await.unwrap();
        assert_eq!(accounts.len(), 1, "only alice: {accounts:?}");
        let blob = sealpost_types::BlobId([7u8; 32]);
        assert!(matches!(
            store.read_blob(&blob).await,
            Err(StoreError::NotFound(_))
        ));
        // And the store is writable as usual afterwards.
        store
            .add_account(&address("ghost@example.org"), "hash")
            .await
            .unwrap();
    });
    assert_eq!(integrity_check(&data), "ok");
}
