//! The outbound queue: messages accepted for remote recipients, waiting for delivery.
//!
//! A queue entry refers to the message's blob like a mailbox copy does; the blob goes only
//! when neither refers to it any more (triggers `messages_release_blob` and
//! `queue_messages_release_blob`).
//!
//! Life of a recipient: `queued` (due at `next_attempt`) until an attempt settles it as
//! `delivered` or `failed`. Settled rows stay while other recipients of the same message are
//! still queued; when the last one settles, the message and all its rows are deleted in the
//! same write job and handed back to the caller (with the bytes if a bounce may be due), so
//! nothing is kept around only for a DSN.

//! Queries that pick one entry's recipients write `+status` and `+next_attempt`: the unary
//! plus keeps SQLite from choosing the `queue_recipients_due (status, next_attempt)` index
//! for them, which with a large queue scans every queued row per call (O(n²) over a queue
//! run, measured by `bench/outbound.sh`), instead of the primary key `(queue_id, address)`.

use rusqlite::{Connection, Row, params};
use sealpost_types::{AccountId, BlobId};

use super::{messages, rows};
use crate::{
    AttemptOutcome, DroppedMessage, DueMessage, EntryRecipient, FinishedMessage, OutboundEnvelope,
    QueueEntry, QueueId, QueuedRecipient, RecipientResult, RecipientStatus, StoreError,
    StoreResult, TlsSessions,
};

/// Columns of `queue_messages` read by [`entry`].
const ENTRY_COLUMNS: &str =
    "id, blob_hash, sender, ret, envid, submitted_by, created, size, delay_reported, require_tls";
/// Columns of `queue_recipients` read by [`recipient`].
const RECIPIENT_COLUMNS: &str =
    "address, notify, orcpt, status, attempts, next_attempt, last_error";

/// The due recipients of entry ?1 at time ?2 (after the column list).
pub(crate) const DUE_RECIPIENTS: &str = "FROM queue_recipients WHERE queue_id = ?1 \
     AND +status = 'queued' AND +next_attempt <= ?2 ORDER BY rowid";
/// The recipients of entry ?1 still queued (after the column list).
pub(crate) const QUEUED_OF_ENTRY: &str =
    "FROM queue_recipients WHERE queue_id = ?1 AND +status = 'queued'";

/// Queues `envelope` for the stored blob `blob` of `size` octets, due at once (`now`).
/// The blob must already be stored (same transaction). The same recipient address given
/// twice is queued once, with the parameters of its first occurrence.
pub(crate) fn insert(
    conn: &Connection,
    blob: &BlobId,
    size: u64,
    envelope: &OutboundEnvelope,
    now: i64,
) -> StoreResult<QueueId> {
    if envelope.recipients.is_empty() {
        return Err(StoreError::Refused(
            "an outbound message needs a recipient".into(),
        ));
    }
    if let Some(empty) = envelope.recipients.iter().find(|r| r.address.is_empty()) {
        return Err(StoreError::Refused(format!(
            "an outbound recipient needs an address (got {:?})",
            empty.address
        )));
    }
    conn.prepare_cached(
        "INSERT INTO queue_messages (blob_hash, sender, ret, envid, submitted_by, created, size, \
         require_tls) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        &blob.0[..],
        envelope.from,
        envelope.ret,
        envelope.envid,
        envelope.submitted_by.map(|account| account.0),
        now,
        i64::try_from(size).unwrap_or(i64::MAX),
        envelope.require_tls,
    ])?;
    let id = QueueId(conn.last_insert_rowid());
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO queue_recipients (queue_id, address, notify, orcpt, status, \
         attempts, next_attempt) VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5)",
    )?;
    for recipient in &envelope.recipients {
        // OR IGNORE: a duplicate keeps the first row (primary key queue_id, address).
        insert.execute(params![
            id.0,
            recipient.address,
            recipient.notify,
            recipient.orcpt,
            now
        ])?;
    }
    Ok(id)
}

/// The recipients still waiting, oldest message first, then in the order given.
pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<QueuedRecipient>> {
    rows::collect(
        conn,
        "SELECT r.queue_id, r.address, m.sender, r.attempts, r.next_attempt, r.last_error, \
         m.created, m.size FROM queue_recipients r JOIN queue_messages m ON m.id = r.queue_id \
         WHERE r.status = 'queued' ORDER BY m.created, m.id, r.rowid",
        [],
        |row| {
            let attempts: i64 = rows::get(row, 3)?;
            let size: i64 = rows::get(row, 7)?;
            Ok(QueuedRecipient {
                queue_id: QueueId(rows::get(row, 0)?),
                recipient: rows::get(row, 1)?,
                from: rows::get(row, 2)?,
                attempts: u32::try_from(attempts)
                    .map_err(|_| rows::corrupt("attempt count", attempts))?,
                next_attempt: rows::get(row, 4)?,
                last_error: rows::get(row, 5)?,
                created: rows::get(row, 6)?,
                size: u64::try_from(size).map_err(|_| rows::corrupt("size", size))?,
            })
        },
    )
}

fn entry(row: &Row<'_>) -> StoreResult<QueueEntry> {
    let hash: Vec<u8> = rows::get(row, 1)?;
    let blob = <[u8; 32]>::try_from(hash.as_slice())
        .map(BlobId)
        .map_err(|_| rows::corrupt("blob hash", &hash))?;
    let size: i64 = rows::get(row, 7)?;
    Ok(QueueEntry {
        queue_id: QueueId(rows::get(row, 0)?),
        blob,
        from: rows::get(row, 2)?,
        ret: rows::get(row, 3)?,
        envid: rows::get(row, 4)?,
        submitted_by: rows::get::<Option<i64>>(row, 5)?.map(AccountId),
        created: rows::get(row, 6)?,
        size: u64::try_from(size).map_err(|_| rows::corrupt("size", size))?,
        delay_reported: rows::get::<i64>(row, 8)? != 0,
        require_tls: rows::get::<i64>(row, 9)? != 0,
    })
}

/// Marks that the delay report of entry `id` went out; true when it had not before.
pub(crate) fn claim_delay_report(conn: &Connection, id: QueueId) -> StoreResult<bool> {
    let changed = conn.execute(
        "UPDATE queue_messages SET delay_reported = 1 WHERE id = ?1 AND delay_reported = 0",
        [id.0],
    )?;
    Ok(changed == 1)
}

fn recipient(row: &Row<'_>) -> StoreResult<EntryRecipient> {
    let status: String = rows::get(row, 3)?;
    let status = match status.as_str() {
        "queued" => RecipientStatus::Queued,
        "delivered" => RecipientStatus::Delivered,
        "failed" => RecipientStatus::Failed,
        _ => return Err(rows::corrupt("recipient status", status)),
    };
    let attempts: i64 = rows::get(row, 4)?;
    Ok(EntryRecipient {
        address: rows::get(row, 0)?,
        notify: rows::get(row, 1)?,
        orcpt: rows::get(row, 2)?,
        status,
        attempts: u32::try_from(attempts).map_err(|_| rows::corrupt("attempt count", attempts))?,
        next_attempt: rows::get(row, 5)?,
        last_error: rows::get(row, 6)?,
    })
}

fn entry_by_id(conn: &Connection, id: QueueId) -> StoreResult<Option<QueueEntry>> {
    rows::first(
        conn,
        &format!("SELECT {ENTRY_COLUMNS} FROM queue_messages WHERE id = ?1"),
        [id.0],
        entry,
    )
}

/// The recipients of one entry in the order given; only `queued` ones when asked.
fn recipients_of(
    conn: &Connection,
    id: QueueId,
    only_queued: bool,
) -> StoreResult<Vec<EntryRecipient>> {
    let filter = if only_queued {
        " AND +status = 'queued'"
    } else {
        ""
    };
    rows::collect(
        conn,
        &format!(
            "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients WHERE queue_id = ?1{filter} \
             ORDER BY rowid"
        ),
        [id.0],
        recipient,
    )
}

/// At most `limit` entries with a queued recipient due at `now`, oldest first, after
/// `after` (time of queueing, id) when given, each with its due recipients. The inner query
/// walks the `queue_recipients_due` index, so entries waiting for later cost nothing.
pub(crate) fn due(
    conn: &Connection,
    now: i64,
    after: Option<(i64, QueueId)>,
    limit: usize,
) -> StoreResult<Vec<DueMessage>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (after_created, after_id) = after.map_or((i64::MIN, i64::MIN), |(c, id)| (c, id.0));
    let entries = rows::collect(
        conn,
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM queue_messages WHERE id IN \
             (SELECT queue_id FROM queue_recipients WHERE status = 'queued' \
             AND next_attempt <= ?1) AND (created, id) > (?3, ?4) ORDER BY created, id LIMIT ?2"
        ),
        params![now, limit, after_created, after_id],
        entry,
    )?;
    let mut due = Vec::with_capacity(entries.len());
    for entry in entries {
        let recipients = rows::collect(
            conn,
            &format!("SELECT {RECIPIENT_COLUMNS} {DUE_RECIPIENTS}"),
            params![entry.queue_id.0, now],
            recipient,
        )?;
        due.push(DueMessage { entry, recipients });
    }
    Ok(due)
}

/// Deletes an entry; its recipients go by ON DELETE CASCADE, its blob by the
/// `queue_messages_release_blob` trigger unless a mailbox copy or another entry keeps it.
fn delete(conn: &Connection, id: QueueId) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")?
        .execute([id.0])?;
    Ok(())
}

/// One attempt's outcome for the recipients of one entry; see
/// [`crate::MailStore::record_attempt`].
pub(crate) fn record_attempt(
    conn: &Connection,
    id: QueueId,
    results: &[(String, RecipientResult)],
) -> StoreResult<AttemptOutcome> {
    let entry = entry_by_id(conn, id)?
        .ok_or_else(|| StoreError::NotFound(format!("the queue entry {id}")))?;
    let mut update = conn.prepare_cached(
        "UPDATE queue_recipients SET status = ?3, attempts = attempts + 1, \
         next_attempt = COALESCE(?4, next_attempt), last_error = COALESCE(?5, last_error) \
         WHERE queue_id = ?1 AND address = ?2 AND +status = 'queued'",
    )?;
    for (address, result) in results {
        let (status, next_attempt, error) = match result {
            RecipientResult::Delivered => (RecipientStatus::Delivered, None, None),
            RecipientResult::Deferred {
                next_attempt,
                error,
            } => (RecipientStatus::Queued, Some(*next_attempt), Some(error)),
            RecipientResult::Failed { error } => (RecipientStatus::Failed, None, Some(error)),
        };
        update.execute(params![id.0, address, status.as_str(), next_attempt, error])?;
    }
    let still_queued: i64 = rows::first(
        conn,
        &format!("SELECT count(*) {QUEUED_OF_ENTRY}"),
        [id.0],
        |row| rows::get(row, 0),
    )?
    .unwrap_or(0);
    if still_queued > 0 {
        return Ok(AttemptOutcome {
            still_queued: usize::try_from(still_queued).unwrap_or(usize::MAX),
            finished: None,
        });
    }
    let recipients = recipients_of(conn, id, false)?;
    let raw = if recipients.iter().any(report_may_be_due) {
        Some(messages::read_blob(conn, &entry.blob)?)
    } else {
        None
    };
    delete(conn, id)?;
    Ok(AttemptOutcome {
        still_queued: 0,
        finished: Some(FinishedMessage {
            entry,
            recipients,
            raw,
        }),
    })
}

/// Whether the sender may be owed a report about this settled recipient: it failed, or it
/// was delivered and asked for success reports (RFC 3461 §4.1 NOTIFY=SUCCESS). The caller
/// decides; the store only keeps the bytes such a report may quote.
fn report_may_be_due(recipient: &EntryRecipient) -> bool {
    match recipient.status {
        RecipientStatus::Failed => true,
        RecipientStatus::Delivered => recipient.notify.as_deref().is_some_and(|notify| {
            notify
                .split(',')
                .any(|keyword| keyword.trim().eq_ignore_ascii_case("SUCCESS"))
        }),
        RecipientStatus::Queued => false,
    }
}

/// Every queued recipient due at `now`; returns how many are queued.
pub(crate) fn flush(conn: &Connection, now: i64) -> StoreResult<usize> {
    conn.prepare_cached(
        "UPDATE queue_recipients SET next_attempt = ?1 \
         WHERE status = 'queued' AND next_attempt > ?1",
    )?
    .execute([now])?;
    let queued: i64 = rows::first(
        conn,
        "SELECT count(*) FROM queue_recipients WHERE status = 'queued'",
        [],
        |row| rows::get(row, 0),
    )?
    .unwrap_or(0);
    Ok(usize::try_from(queued).unwrap_or(usize::MAX))
}

/// Removes an entry, returning what a bounce needs; `None` if there is no such entry.
pub(crate) fn drop_entry(conn: &Connection, id: QueueId) -> StoreResult<Option<DroppedMessage>> {
    let Some(entry) = entry_by_id(conn, id)? else {
        return Ok(None);
    };
    let recipients = recipients_of(conn, id, true)?;
    // Read before the delete: the trigger may take the blob with the entry.
    let raw = messages::read_blob(conn, &entry.blob)?;
    delete(conn, id)?;
    Ok(Some(DroppedMessage {
        entry,
        recipients,
        raw,
    }))
}

/// Adds to the TLS-RPT counts; the policy text and reason are the latest seen.
pub(crate) fn record_tls_sessions(conn: &Connection, sessions: &[TlsSessions]) -> StoreResult<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO tls_sessions (day, policy_domain, policy_type, mx_host, result, \
         receiving_ip, policy_string, reason, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (day, policy_domain, policy_type, mx_host, result, receiving_ip) DO UPDATE \
         SET count = count + excluded.count, policy_string = excluded.policy_string, \
         reason = excluded.reason",
    )?;
    for session in sessions {
        let count = i64::try_from(session.count).unwrap_or(i64::MAX);
        upsert.execute(params![
            session.day,
            session.policy_domain,
            session.policy_type,
            session.mx_host,
            session.result,
            session.receiving_ip,
            session.policy_string.join("\n"),
            session.reason,
            count,
        ])?;
    }
    Ok(())
}

/// The TLS-RPT counts of one day.
pub(crate) fn tls_sessions(conn: &Connection, day: &str) -> StoreResult<Vec<TlsSessions>> {
    rows::collect(
        conn,
        "SELECT day, policy_domain, policy_type, mx_host, result, receiving_ip, policy_string, \
         reason, count FROM tls_sessions WHERE day = ?1 \
         ORDER BY policy_domain, policy_type, mx_host, result, receiving_ip",
        [day],
        |row| {
            let policy: String = rows::get(row, 6)?;
            let count: i64 = rows::get(row, 8)?;
            Ok(TlsSessions {
                day: rows::get(row, 0)?,
                policy_domain: rows::get(row, 1)?,
                policy_type: rows::get(row, 2)?,
                mx_host: rows::get(row, 3)?,
                result: rows::get(row, 4)?,
                receiving_ip: rows::get(row, 5)?,
                policy_string: if policy.is_empty() {
                    Vec::new()
                } else {
                    policy.split('\n').map(str::to_string).collect()
                },
                reason: rows::get(row, 7)?,
                count: u64::try_from(count).map_err(|_| rows::corrupt("count", count))?,
            })
        },
    )
}
