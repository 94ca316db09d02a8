//! The conformance suite against SQLite, plus what only this backend has: pragmas,
//! migrations, the writer's batching and savepoints.

use std::sync::Arc;

use rusqlite::OptionalExtension;
use sealpost_types::SpecialUse;
use tempfile::TempDir;

use super::{SqliteStore, queue, schema};
use crate::conformance::join_all;
use crate::{Directory, MailStore, Store, StoreError};

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

// ---------------------------------------------------------------------------------------
// The outbound queue as stored, its blob references, and the migration that added it.

fn outbound(from: Option<&str>, recipients: &[&str]) -> crate::OutboundEnvelope {
    crate::OutboundEnvelope {
        from: from.map(str::to_string),
        recipients: recipients
            .iter()
            .map(|r| crate::OutboundRecipient::new(*r))
            .collect(),
        ..crate::OutboundEnvelope::default()
    }
}

fn raw(text: &str) -> Arc<[u8]> {
    Arc::from(format!("Subject: {text}\r\n\r\n{text}\r\n").into_bytes())
}

fn blob_of(raw: &[u8]) -> sealpost_types::BlobId {
    use sha2::Digest;
    sealpost_types::BlobId(sha2::Sha256::digest(raw).into())
}

/// Removes a queue entry as the delivery engine will once it is done with it.
async fn remove_queue_entry(store: &SqliteStore, id: crate::QueueId) {
    let removed = store
        .writer
        .write(move |txn| Ok(txn.execute("DELETE FROM queue_messages WHERE id = ?1", [id.0])?))
        .await
        .unwrap();
    assert_eq!(removed, 1);
}

async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
    store
        .readers
        .read(move |txn| Ok(txn.query_row(sql, [], |row| row.get(0))?))
        .await
        .unwrap()
}

async fn inbox_of(
    store: &SqliteStore,
    address: &str,
) -> (sealpost_types::AccountId, crate::Mailbox) {
    let account = crate::conformance::new_account(store, address).await;
    let inbox = crate::MailStore::mailbox_by_special_use(store, account, SpecialUse::Inbox)
        .await
        .unwrap()
        .unwrap();
    (account, inbox)
}

#[tokio::test]
async fn queue_rows_keep_every_envelope_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    let (alice, _) = inbox_of(&store, "alice@example.org").await;
    let envelope = crate::OutboundEnvelope {
        from: Some("alice@example.org".into()),
        recipients: vec![
            crate::OutboundRecipient {
                address: "x@remote.example".into(),
                notify: Some("SUCCESS,FAILURE".into()),
                orcpt: Some("rfc822;x@remote.example".into()),
            },
            crate::OutboundRecipient {
                address: "y@remote.example".into(),
                notify: Some("NEVER".into()),
                orcpt: None,
            },
        ],
        ret: Some("FULL".into()),
        envid: Some("QQ314159".into()),
        submitted_by: Some(alice),
        require_tls: false,
    };
    let message = raw("parameters");
    let accepted = store
        .accept_message(message.clone(), 1, &[], Some(envelope))
        .await
        .unwrap();
    let id = accepted.queued.unwrap();
    type Row = (
        Vec<u8>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        i64,
        i64,
    );
    let stored: Row = store
        .readers
        .read(move |txn| {
            Ok(txn.query_row(
                "SELECT blob_hash, sender, ret, envid, submitted_by, created, size \
                 FROM queue_messages WHERE id = ?1",
                [id.0],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )?)
        })
        .await
        .unwrap();
    assert_eq!(stored.0, blob_of(&message).0);
    assert_eq!(stored.1.as_deref(), Some("alice@example.org"));
    assert_eq!(stored.2.as_deref(), Some("FULL"));
    assert_eq!(stored.3.as_deref(), Some("QQ314159"));
    assert_eq!(stored.4, Some(alice.0));
    assert_eq!(stored.6, message.len() as i64);
    type Rcpt = (
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        i64,
        Option<String>,
    );
    let recipients: Vec<Rcpt> = store
        .readers
        .read(move |txn| {
            let mut stmt = txn.prepare(
                "SELECT address, notify, orcpt, status, attempts, next_attempt, last_error \
                 FROM queue_recipients WHERE queue_id = ?1 ORDER BY rowid",
            )?;
            let rows = stmt
                .query_map([id.0], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    let created = stored.5;
    assert_eq!(
        recipients,
        [
            (
                "x@remote.example".to_string(),
                Some("SUCCESS,FAILURE".to_string()),
                Some("rfc822;x@remote.example".to_string()),
                "queued".to_string(),
                0,
                created,
                None
            ),
            (
                "y@remote.example".to_string(),
                Some("NEVER".to_string()),
                None,
                "queued".to_string(),
                0,
                created,
                None
            ),
        ]
    );

    // Recipients delivered or failed for good are no longer listed as queued.
    store
        .writer
        .write(move |txn| {
            txn.execute(
                "UPDATE queue_recipients SET status = 'delivered' WHERE address = 'x@remote.example'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let queue = store.queued().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].recipient, "y@remote.example");
    // The status column takes only the three states.
    let invalid = store
        .writer
        .write(|txn| Ok(txn.execute("UPDATE queue_recipients SET status = 'sent'", [])?))
        .await;
    assert!(
        matches!(invalid, Err(StoreError::Database(_))),
        "{invalid:?}"
    );

    // The submitter going away leaves the message queued, without a submitter.
    store
        .delete_account(&crate::conformance::address("alice@example.org"))
        .await
        .unwrap();
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM queue_messages WHERE submitted_by IS NULL"
        )
        .await,
        1
    );
    assert_eq!(store.queued().await.unwrap().len(), 1);
}

/// A blob referred to by queue entries only lives as long as they do; referred to by both
/// queue entries and messages, it goes with the last of them, whichever that is.
#[tokio::test]
async fn blobs_are_collected_after_the_last_message_and_queue_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    let (_, inbox) = inbox_of(&store, "alice@example.org").await;
    let remote = || Some(outbound(None, &["x@remote.example"]));

    // Queue only: two entries on the same blob; it goes with the second.
    let only_queued = raw("queued only");
    let first = store
        .accept_message(only_queued.clone(), 1, &[], remote())
        .await
        .unwrap()
        .queued
        .unwrap();
    let second = store
        .accept_message(only_queued.clone(), 1, &[], remote())
        .await
        .unwrap()
        .queued
        .unwrap();
    remove_queue_entry(&store, first).await;
    assert!(store.read_blob(&blob_of(&only_queued)).await.is_ok());
    remove_queue_entry(&store, second).await;
    assert!(matches!(
        store.read_blob(&blob_of(&only_queued)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        count(&store, "SELECT count(*) FROM queue_recipients").await,
        0,
        "recipients go with their message"
    );

    // Copy expunged first, then the queue entry.
    let mixed = raw("mixed");
    let accepted = store
        .accept_message(mixed.clone(), 1, &[(inbox.id, Vec::new())], remote())
        .await
        .unwrap();
    let uid = accepted.delivered[0].1;
    store.expunge(inbox.id, &[uid]).await.unwrap();
    assert!(
        store.read_blob(&blob_of(&mixed)).await.is_ok(),
        "still queued"
    );
    remove_queue_entry(&store, accepted.queued.unwrap()).await;
    assert!(store.read_blob(&blob_of(&mixed)).await.is_err());

    // Queue entry removed first, then the copy.
    let mixed = raw("mixed again");
    let accepted = store
        .accept_message(mixed.clone(), 1, &[(inbox.id, Vec::new())], remote())
        .await
        .unwrap();
    remove_queue_entry(&store, accepted.queued.unwrap()).await;
    assert!(
        store.read_blob(&blob_of(&mixed)).await.is_ok(),
        "still in INBOX"
    );
    store
        .expunge(inbox.id, &[accepted.delivered[0].1])
        .await
        .unwrap();
    assert!(store.read_blob(&blob_of(&mixed)).await.is_err());

    // Deleting a whole account (mailbox cascade) spares a blob that is still queued.
    let (_, bob_inbox) = inbox_of(&store, "bob@example.org").await;
    let kept = raw("kept for the queue");
    let accepted = store
        .accept_message(kept.clone(), 1, &[(bob_inbox.id, Vec::new())], remote())
        .await
        .unwrap();
    store
        .delete_account(&crate::conformance::address("bob@example.org"))
        .await
        .unwrap();
    assert!(store.read_blob(&blob_of(&kept)).await.is_ok());
    remove_queue_entry(&store, accepted.queued.unwrap()).await;
    assert!(store.read_blob(&blob_of(&kept)).await.is_err());
    assert_eq!(
        count(&store, "SELECT count(*) FROM blobs").await,
        0,
        "nothing leaked"
    );
    assert_eq!(store.messages(inbox.id).await.unwrap().len(), 0);
}

/// Builds a database at schema version 1 with one account and one delivered message, as a
/// release with only V1 left it.
fn version_one_database(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    schema::migrate(&mut conn, 1).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
    conn.execute_batch(
        "INSERT INTO domains (id, name) VALUES (1, 'example.org');
         INSERT INTO accounts (id, address, domain_id, password_hash)
             VALUES (1, 'alice@example.org', 1, 'hash');
         INSERT INTO mailboxes (id, account_id, name, special_use, uid_validity, uid_next,
             highest_modseq, subscribed) VALUES (1, 1, 'INBOX', 'inbox', 7, 2, 2, 1);",
    )
    .unwrap();
    let old = raw("from version one");
    conn.execute(
        "INSERT INTO blobs (hash, data) VALUES (?1, ?2)",
        rusqlite::params![&blob_of(&old).0[..], &old[..]],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size, blob_hash) \
         VALUES (1, 1, 2, '\\Seen', 1600000000, ?1, ?2)",
        rusqlite::params![old.len() as i64, &blob_of(&old).0[..]],
    )
    .unwrap();
}

#[tokio::test]
async fn version_one_database_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join(super::DATABASE_FILE);
    version_one_database(&path);

    let store = open_in(&dir).await;
    let (version, tables, indexes, trigger): (i64, i64, i64, String) = store
        .readers
        .read(|txn| {
            let version = txn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let tables = txn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('queue_messages', 'queue_recipients')",
                [],
                |r| r.get(0),
            )?;
            let indexes = txn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
                 AND name IN ('queue_recipients_due', 'queue_messages_blob')",
                [],
                |r| r.get(0),
            )?;
            let trigger = txn.query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' \
                 AND name = 'messages_release_blob'",
                [],
                |r| r.get(0),
            )?;
            Ok((version, tables, indexes, trigger))
        })
        .await
        .unwrap();
    assert_eq!(version, schema::current_version());
    assert_eq!(version, 6);
    assert_eq!(tables, 2);
    assert_eq!(indexes, 2);
    assert!(trigger.contains("queue_messages"), "{trigger}");

    // The old data is intact and usable.
    let alice = store
        .account(&crate::conformance::address("alice@example.org"))
        .await
        .unwrap()
        .unwrap();
    let inbox = store
        .mailbox_by_special_use(alice.id, SpecialUse::Inbox)
        .await
        .unwrap()
        .unwrap();
    // Version 3 keeps subscriptions as names of their own.
    assert!(inbox.subscribed);
    assert_eq!(
        store.subscriptions(alice.id).await.unwrap(),
        [sealpost_types::MailboxName::inbox()]
    );
    let old = store.messages(inbox.id).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].flags, ["\\Seen"]);
    assert_eq!(
        &store.read_blob(&old[0].blob).await.unwrap()[..],
        &raw("from version one")[..]
    );
    // Version 3 counts what was there before it.
    assert_eq!(
        store.usage(alice.id).await.unwrap(),
        crate::Usage {
            bytes: old[0].size,
            messages: 1
        }
    );

    // The same bytes queued after the migration keep the old blob past its last message.
    let accepted = store
        .accept_message(
            raw("from version one"),
            1,
            &[],
            Some(outbound(None, &["x@remote.example"])),
        )
        .await
        .unwrap();
    store.expunge(inbox.id, &[old[0].uid]).await.unwrap();
    assert_eq!(
        store.usage(alice.id).await.unwrap(),
        crate::Usage::default()
    );
    assert!(store.read_blob(&old[0].blob).await.is_ok());
    remove_queue_entry(&store, accepted.queued.unwrap()).await;
    assert!(store.read_blob(&old[0].blob).await.is_err());

    // Opening again applies nothing more.
    drop(store);
    let store = open_in(&dir).await;
    assert_eq!(
        count(&store, "SELECT count(*) FROM queue_messages").await,
        0
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
#[tokio::test]
async fn per_entry_queue_queries_use_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir).await;
    for n in 0..50 {
        let envelope = crate::OutboundEnvelope {
            from: Some("alice@example.org".into()),
            recipients: vec![crate::OutboundRecipient::new(format!(
                "r{n}@remote.example"
            ))],
            ..crate::OutboundEnvelope::default()
        };
        store
            .accept_message(
                Arc::from(format!("Subject: {n}\r\n\r\nx\r\n").into_bytes()),
                1,
                &[],
                Some(envelope),
            )
            .await
            .unwrap();
    }
    let plans = store
        .writer
        .write(|txn| {
            let mut plans = Vec::new();
            for (tail, params) in [
                (queue::DUE_RECIPIENTS, &[1_i64, 1][..]),
                (queue::QUEUED_OF_ENTRY, &[1_i64][..]),
            ] {
                let sql = format!("EXPLAIN QUERY PLAN SELECT address {tail}");
                let mut statement = txn.prepare(&sql)?;
                let rows: Vec<String> = statement
                    .query_map(rusqlite::params_from_iter(params), |row| {
                        row.get::<_, String>(3)
                    })?
                    .collect::<Result<_, _>>()?;
                plans.push(rows.join("; "));
            }
            Ok(plans)
        })
        .await
        .unwrap();
    for plan in plans {
        assert!(!plan.contains("queue_recipients_due"), "{plan}");
        assert!(
            plan.contains("sqlite_autoindex_queue_recipients_1"),
            "{plan}"
        );
    }
}

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
