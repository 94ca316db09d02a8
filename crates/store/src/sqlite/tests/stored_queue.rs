//! The outbound queue as stored: envelope columns, blob references, the query plans of the
//! per-entry queries, and the migration from version one.

use sealpost_types::SpecialUse;

use super::*;
use crate::sqlite::queue;
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
    let path = dir.path().join("data").join(crate::sqlite::DATABASE_FILE);
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
