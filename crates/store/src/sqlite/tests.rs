//! The conformance suite against SQLite, plus what only this backend has: pragmas,
//! migrations, the writer's batching and savepoints.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use tempfile::TempDir;

use super::{SqliteStore, schema};
use crate::conformance::join_all;
use crate::{Store, StoreError};

async fn fresh() -> (TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, Arc::new(store))
}

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
