//! The maildrop of a session: the account's INBOX at login, the per-account lock, and the
//! sizes RETR will send.
//!
//! - Unique-ids are `<UIDVALIDITY>.<UID>` (RFC 1939 §7): UIDs are never reused within one
//!   UIDVALIDITY (RFC 9051 §2.3.1.1), so an id names one message forever, survives flag
//!   changes, and a message moved away and back is a new message with a new id
//!   (SECURITY-TESTS PO-09).
//! - Sizes are exact (RFC 1939 §5): the octets RETR sends, counted by running the message
//!   through the same encoder once. Blobs are named by their hash, so a size computed once is
//!   kept in memory for every later session of every account.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sealpost_store::{MessageMeta, Store, StoreError, StoreResult};
use sealpost_types::{AccountId, BlobId, MailboxId, SpecialUse, Uid};

use crate::core::{Counter, Maildrop, MaildropEntry, MessageEncoder};

/// Bytes read from the store at a time, to count a size or send a message.
pub(super) const PIECE: usize = 128 * 1024;
/// Sizes remembered; past this the cache starts again (each entry is about 50 bytes).
const SIZE_CACHE_ENTRIES: usize = 200_000;

/// RFC 1939 §7: the unique-id of a message, 1 to 70 characters in 0x21..=0x7E.
pub fn unique_id(uid_validity: u32, uid: Uid) -> String {
    format!("{uid_validity}.{}", uid.0)
}

/// The accounts with a POP3 session in the TRANSACTION state (RFC 1939 §8: the maildrop is
/// locked from login until the session ends).
#[derive(Debug, Default)]
pub(super) struct Locks {
    held: Mutex<HashSet<AccountId>>,
}

impl Locks {
    /// The lock of `account`, or `None` while another session holds it.
    pub(super) fn try_lock(self: &Arc<Self>, account: AccountId) -> Option<LockGuard> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(account).then(|| LockGuard {
            locks: Arc::clone(self),
            account,
        })
    }
}

/// Releases the account's lock when dropped (at the end of the session, however it ends).
#[derive(Debug)]
pub(super) struct LockGuard {
    locks: Arc<Locks>,
    account: AccountId,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.account);
    }
}

/// Wire sizes of blobs already counted.
#[derive(Debug, Default)]
pub(super) struct SizeCache {
    sizes: Mutex<HashMap<BlobId, u64>>,
}

impl SizeCache {
    fn get(&self, blob: &BlobId) -> Option<u64> {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        sizes.get(blob).copied()
    }

    fn insert(&self, blob: BlobId, size: u64) {
        let mut sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        if sizes.len() >= SIZE_CACHE_ENTRIES {
            sizes.clear();
        }
        sizes.insert(blob, size);
    }

    /// The octets RETR sends for `blob`: from the cache, or counted by reading it once.
    async fn wire_size(&self, store: &dyn Store, blob: &BlobId) -> StoreResult<u64> {
        if let Some(size) = self.get(blob) {
            return Ok(size);
        }
        let mut encoder = MessageEncoder::new(None);
        let mut counter = Counter::default();
        let mut offset = 0u64;
        loop {
            let piece = store.read_blob_range(blob, offset, PIECE).await?;
            encoder.encode(&piece, &mut counter);
            if piece.len() < PIECE {
                break;
            }
            offset = offset.saturating_add(piece.len() as u64);
        }
        encoder.finish(&mut counter);
        self.insert(*blob, counter.0);
        Ok(counter.0)
    }
}

/// One message of the session's maildrop, as the store knows it.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) uid: Uid,
    pub(super) blob: BlobId,
}

/// The store's side of the maildrop: which mailbox, and each message number's UID and blob.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) mailbox: MailboxId,
    pub(super) messages: Vec<Message>,
}

impl Snapshot {
    /// The UIDs of the messages at these 0-based indexes.
    pub(super) fn uids(&self, indexes: &[usize]) -> Vec<Uid> {
        indexes
            .iter()
            .filter_map(|&i| self.messages.get(i))
            .map(|m| m.uid)
            .collect()
    }
}

/// Reads the account's INBOX: the session's snapshot and the core's maildrop.
pub(super) async fn open(
    store: &dyn Store,
    sizes: &SizeCache,
    account: AccountId,
) -> StoreResult<(Snapshot, Maildrop)> {
    let inbox = store
        .mailbox_by_special_use(account, SpecialUse::Inbox)
        .await?
        .ok_or_else(|| StoreError::NotFound("the account's INBOX".to_string()))?;
    let metas = store.messages(inbox.id).await?;
    let mut messages = Vec::with_capacity(metas.len());
    let mut entries = Vec::with_capacity(metas.len());
    for meta in metas {
        let MessageMeta { uid, blob, .. } = meta;
        let size = match sizes.wire_size(store, &blob).await {
            Ok(size) => size,
            // Expunged (by IMAP) since the listing: not part of this maildrop.
            Err(StoreError::NotFound(_)) => continue,
            Err(other) => return Err(other),
        };
        let id = unique_id(inbox.uid_validity, uid);
        let entry = MaildropEntry::new(size, id)
            .ok_or_else(|| StoreError::Database(format!("unusable unique-id for UID {}", uid.0)))?;
        entries.push(entry);
        messages.push(Message { uid, blob });
    }
    let snapshot = Snapshot {
        mailbox: inbox.id,
        messages,
    };
    Ok((snapshot, Maildrop::new(entries)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_valid_and_distinct() {
        let a = unique_id(u32::MAX, Uid(u32::MAX));
        assert_eq!(a, "4294967295.4294967295");
        assert!(MaildropEntry::new(0, a).is_some());
        assert_ne!(unique_id(1, Uid(23)), unique_id(12, Uid(3)));
    }

    #[test]
    fn one_lock_per_account() {
        let locks = Arc::new(Locks::default());
        let first = locks.try_lock(AccountId(1));
        assert!(first.is_some());
        assert!(locks.try_lock(AccountId(1)).is_none());
        assert!(locks.try_lock(AccountId(2)).is_some());
        drop(first);
        assert!(locks.try_lock(AccountId(1)).is_some());
    }
}
