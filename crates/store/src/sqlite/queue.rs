//! The outbound queue: messages accepted for remote recipients, waiting for delivery.
//!
//! A queue entry refers to the message's blob like a mailbox copy does; the blob goes only
//! when neither refers to it any more (triggers `messages_release_blob` and
//! `queue_messages_release_blob`).

use rusqlite::{Connection, params};
use sealpost_types::BlobId;

use super::rows;
use crate::{OutboundEnvelope, QueueId, QueuedRecipient, StoreError, StoreResult};

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
        "INSERT INTO queue_messages (blob_hash, sender, ret, envid, submitted_by, created, size) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &blob.0[..],
        envelope.from,
        envelope.ret,
        envelope.envid,
        envelope.submitted_by.map(|account| account.0),
        now,
        i64::try_from(size).unwrap_or(i64::MAX),
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
