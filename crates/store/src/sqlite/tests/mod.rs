//! The conformance suite against SQLite, plus what only this backend has: pragmas,
//! migrations, the writer's batching and savepoints.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use tempfile::TempDir;

use super::{SqliteStore, schema};
use crate::conformance::join_all;
use crate::{Directory, MailStore, Store, StoreError};

async fn fresh() -> (TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, Arc::new(store))
}

mod stored_queue;

mod conformance {
    use super::fresh;

    crate::store_conformance_tests!(fresh());
}

async fn open_in(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("data")).await.unwrap()
}

#[tokio::test]
async fn connection_settings_and_private_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    let (mode, sync, fks, version) = store
        .writer
        .write(|txn| {
            let mode: String = txn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            let sync: i64 = txn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
            let fks: i64 = txn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
            let version: i64 = txn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok((mode, sync, fks, version))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(fks, 1);
    assert_eq!(version, schema::current_version());
    assert_eq!(
        store.database_path(),
        dir.path().join("data").join("sealpost.db")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open_in(&dir).await;
        crate::conformance::new_account(&store, "alice@example.org").await;
    }
    let store = open_in(&dir).await;
    let alice = crate::conformance::address("alice@example.org");
    assert!(
        crate::Directory::account(&store, &alice)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn newer_schema_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_in(&dir).await);
    let path = dir.path().join("data").join("sealpost.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::current_version() + 1)
            .unwrap();
    }
    match SqliteStore::open(&dir.path().join("data")).await {
        Err(StoreError::Open {
            path: shown,
            reason,
        }) => {
            assert_eq!(shown, path.display().to_string());
            assert!(reason.contains("newer"), "{reason}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test]
async fn open_fails_clearly_when_the_folder_cannot_be_made() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a folder").unwrap();
    let error = SqliteStore::open(&file.join("data")).await.err().unwrap();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("file"), "{error}");
}

fn counter(name: &str) -> String {
    format!("test-{name}")
}

/// Inserts a counter row: a write whose presence is easy to check afterwards.
fn insert_counter(txn: &rusqlite::Transaction, name: &str) -> crate::StoreResult<()> {
    txn.execute(
        "INSERT INTO counters (name, value) VALUES (?1, 0)",
        [counter(name)],
    )?;
    Ok(())
}

async fn has_counter(store: &SqliteStore, name: &str) -> bool {
    let name = counter(name);
    store
        .readers
        .read(move |txn| {
            Ok(txn
                .query_row("SELECT 1 FROM counters WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
        .unwrap()
}

/// Jobs queued while the writer is busy are committed together, each in its own
/// savepoint: a failing job undoes only its own changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_share_one_commit_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_in(&dir).await);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            store
                .writer
                .write(move |txn| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    insert_counter(txn, "blocker")
                })
                .await
        }
    });
    started_rx.await.unwrap();
    let before = store.write_commits();

    const JOBS: usize = 50;
    let mut futures: Vec<crate::conformance::LocalFuture<'_, crate::StoreResult<()>>> = Vec::new();
    for n in 0..JOBS {
        let store = &store;
        futures.push(Box::pin(async move {
            store
                .writer
                .write(move |txn| {
                    insert_counter(txn, &n.to_string())?;
                    if n == 7 {
                        return Err(StoreError::Refused("job 7 fails".into()));
                    }
                    Ok(())
                })
                .await
        }));
    }
    // join_all polls in order: every job above is queued before this releases the writer.
    futures.push(Box::pin(async move {
        release_tx.send(()).unwrap();
        Ok(())
    }));
    let results = join_all(futures).await;
    blocker.await.unwrap().unwrap();

    assert_eq!(
        store.write_commits() - before,
        2,
        "the blocker's batch, then one for all"
    );
    for (n, result) in results.iter().take(JOBS).enumerate() {
        if n == 7 {
            assert!(matches!(result, Err(StoreError::Refused(_))), "{result:?}");
            assert!(
                !has_counter(&store, "7").await,
                "the failed job left a trace"
            );
        } else {
            assert!(result.is_ok(), "job {n}: {result:?}");
            assert!(has_counter(&store, &n.to_string()).await, "job {n} lost");
        }
    }
}

#[tokio::test]
async fn a_panicking_job_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    let panicked = store
        .writer
        .write(|txn| -> crate::StoreResult<()> {
            insert_counter(txn, "panic")?;
            panic!("a bug in a write job");
        })
        .await;
    assert!(
        matches!(panicked, Err(StoreError::Database(_))),
        "{panicked:?}"
    );
    store
        .writer
        .write(|txn| insert_counter(txn, "after"))
        .await
        .unwrap();
    assert!(!has_counter(&store, "panic").await);
    assert!(has_counter(&store, "after").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_deliveries_take_fewer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    let alice = crate::conformance::new_account(&store, "alice@example.org").await;
    let inbox =
        crate::MailStore::mailbox_by_special_use(&store, alice, sealpost_types::SpecialUse::Inbox)
            .await
            .unwrap()
            .unwrap();
    let before = store.write_commits();
    const DELIVERIES: u64 = 200;
    let mut futures: Vec<crate::conformance::LocalFuture<'_, ()>> = Vec::new();
    for n in 0..DELIVERIES {
        let store = &store;
        futures.push(Box::pin(async move {
            let raw: Arc<[u8]> = Arc::from(format!("Subject: {n}\r\n\r\n{n}\r\n").into_bytes());
            crate::MailStore::deliver(store, raw, 0, &[(inbox.id, Vec::new())])
                .await
                .unwrap();
        }));
    }
    join_all(futures).await;
    let commits = store.write_commits() - before;
    assert!(
        commits < DELIVERIES,
        "{commits} commits for {DELIVERIES} deliveries"
    );
}

#[tokio::test]
async fn relaxed_writes_skip_the_fsync_and_durable_ones_never_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    let level = |txn: &rusqlite::Transaction| -> crate::StoreResult<i64> {
        Ok(txn.pragma_query_value(None, "synchronous", |r| r.get(0))?)
    };
    // 2 = FULL (an fsync per commit), 1 = NORMAL (none in WAL mode).
    assert_eq!(store.writer.write(level).await.unwrap(), 2);
    assert_eq!(store.writer.write_relaxed(level).await.unwrap(), 1);
    assert_eq!(store.writer.write(level).await.unwrap(), 2);
    // Whatever the batching, a durable job always runs in a FULL batch.
    let (_, durable) = tokio::join!(store.writer.write_relaxed(level), store.writer.write(level));
    assert_eq!(durable.unwrap(), 2);
}

/// The per-entry queue queries use the primary key, never the due index (which scans every
/// queued recipient: O(n²) over a queue run of n messages).
/// The rows one policy domain can add in a day stop at MAX_ROWS_PER_DOMAIN_AND_DAY (a domain
/// owner varying selectors or addresses cannot grow the table or its report without bound);
/// rows already there keep counting, other domains are not affected.
#[tokio::test]
async fn dmarc_rows_of_one_domain_and_day_are_bounded() {
    let (_dir, store) = fresh().await;
    let row = |domain: &str, ip: String| crate::DmarcReportRow {
        day: "2026-11-29".to_string(),
        policy_domain: domain.to_string(),
        policy_published: "p=none;rua=mailto:d@example.org".to_string(),
        source_ip: ip,
        header_from: domain.to_string(),
        envelope_from: domain.to_string(),
        envelope_to: "local.test".to_string(),
        disposition: "none".to_string(),
        dkim_aligned: "fail".to_string(),
        spf_aligned: "fail".to_string(),
        override_reason: String::new(),
        dkim_results: String::new(),
        spf_result: String::new(),
        count: 1,
    };
    let limit = super::dmarc::MAX_ROWS_PER_DOMAIN_AND_DAY as usize;
    let flood: Vec<_> = (0..limit + 10)
        .map(|n| {
            row(
                "example.org",
                format!("10.{}.{}.{}", n / 65536, n / 256 % 256, n % 256),
            )
        })
        .collect();
    store.record_dmarc(flood).await.unwrap();
    store
        .record_dmarc(vec![
            row("example.org", "10.0.0.0".to_string()),
            row("example.net", "10.0.0.0".to_string()),
        ])
        .await
        .unwrap();
    let rows = store.dmarc_rows("2026-11-29").await.unwrap();
    let of = |domain: &str| rows.iter().filter(|r| r.policy_domain == domain).count();
    assert_eq!(of("example.org"), limit);
    assert_eq!(of("example.net"), 1);
    let first = rows
        .iter()
        .find(|r| r.policy_domain == "example.org" && r.source_ip == "10.0.0.0")
        .unwrap();
    assert_eq!(
        first.count, 2,
        "an existing row keeps counting past the limit"
    );
}
