//! Messages: delivery, flags, expunge, copy, and the counters (UIDNEXT, HIGHESTMODSEQ)
//! every one of them advances.

use rusqlite::{Connection, params};
use sealpost_types::{AccountId, BlobId, MailboxId, ModSeq, Uid};

use super::{mailboxes, queue, rows};
use crate::{
    AcceptedMessage, FlagOp, Mailbox, MailboxChanges, MessageMeta, OutboundEnvelope, StoreError,
    StoreResult, Usage,
};

/// A mailbox's UIDNEXT and HIGHESTMODSEQ, advanced in memory and written back once.
struct Counters {
    mailbox: MailboxId,
    account: AccountId,
    uid_next: i64,
    highest_modseq: i64,
}

impl Counters {
    fn load(conn: &Connection, mailbox: MailboxId) -> StoreResult<Counters> {
        let found = rows::first(
            conn,
            "SELECT account_id, uid_next, highest_modseq FROM mailboxes WHERE id = ?1",
            [mailbox.0],
            |row| Ok((rows::get(row, 0)?, rows::get(row, 1)?, rows::get(row, 2)?)),
        )?;
        let (account, uid_next, highest_modseq) = found
            .ok_or_else(|| StoreError::NotFound(format!("the mailbox with id {}", mailbox.0)))?;
        Ok(Counters {
            mailbox,
            account: AccountId(account),
            uid_next,
            highest_modseq,
        })
    }

    /// RFC 9051 §2.3.1.1: UIDs strictly ascend and are never reused, so UIDNEXT only grows
    /// (an expunge does not lower it).
    fn next_uid(&mut self) -> StoreResult<Uid> {
        let uid = rows::uid(self.uid_next)?;
        if uid.0 == u32::MAX {
            // The last UID would leave no valid UIDNEXT; a client must move the messages
            // to a new mailbox (new UIDVALIDITY) instead.
            return Err(StoreError::Refused(format!(
                "the mailbox with id {} has used up its UIDs",
                self.mailbox.0
            )));
        }
        self.uid_next += 1;
        Ok(uid)
    }

    /// RFC 7162 §3.1.1: every change gets a MODSEQ higher than any before it in this
    /// mailbox. Each touched message gets its own, so no two changes ever share one.
    fn next_modseq(&mut self) -> ModSeq {
        self.highest_modseq += 1;
        ModSeq(u64::try_from(self.highest_modseq).unwrap_or(1))
    }

    fn save(&self, conn: &Connection) -> StoreResult<()> {
        conn.prepare_cached(
            "UPDATE mailboxes SET uid_next = ?1, highest_modseq = ?2 WHERE id = ?3",
        )?
        .execute(params![self.uid_next, self.highest_modseq, self.mailbox.0])?;
        Ok(())
    }
}

fn insert_message(conn: &Connection, meta: &MessageMeta) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size, blob_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        meta.mailbox.0,
        meta.uid.0,
        rows::modseq_param(meta.modseq),
        rows::encode_flags(&meta.flags),
        meta.internal_date,
        i64::try_from(meta.size).unwrap_or(i64::MAX),
        &meta.blob.0[..],
    ])?;
    Ok(())
}

fn message(conn: &Connection, mailbox: MailboxId, uid: Uid) -> StoreResult<Option<MessageMeta>> {
    rows::first(
        conn,
        &format!(
            "SELECT {} FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
            rows::MESSAGE_COLUMNS
        ),
        params![mailbox.0, uid.0],
        rows::message,
    )
}

/// Sorted, without duplicates: the order in which UIDs are worked on and reported.
fn sorted(uids: &[Uid]) -> Vec<Uid> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// The (account, mailbox) pairs whose sessions hear of a change.
pub(crate) type Touched = Vec<(AccountId, MailboxId)>;

/// One accepted message: the blob once, then one message per target, then the queue entry
/// of its remote recipients, if any. Returns each target's UID and MODSEQ in the order of
/// `targets`, the queue entry, and the accounts to notify. The caller runs it as one write
/// job, so an error anywhere leaves nothing behind.
pub(crate) fn accept(
    conn: &Connection,
    blob: &BlobId,
    raw: &[u8],
    internal_date: i64,
    targets: &[(MailboxId, Vec<String>)],
    outbound: Option<&OutboundEnvelope>,
) -> StoreResult<(AcceptedMessage, Touched)> {
    if targets.is_empty() && outbound.is_none() {
        return Err(StoreError::Refused(
            "a message needs a local mailbox or a remote recipient".into(),
        ));
    }
    // Content-addressed: a message sent to many recipients is stored once.
    conn.prepare_cached("INSERT OR IGNORE INTO blobs (hash, data) VALUES (?1, ?2)")?
        .execute(params![&blob.0[..], raw])?;
    let size = raw.len() as u64;
    let mut delivered = Vec::with_capacity(targets.len());
    let mut touched = Vec::with_capacity(targets.len());
    for (mailbox, flags) in targets {
        // Loaded per target: the same mailbox may be named twice.
        let mut counters = Counters::load(conn, *mailbox)?;
        let meta = MessageMeta {
            mailbox: *mailbox,
            uid: counters.next_uid()?,
            modseq: counters.next_modseq(),
            flags: rows::normalize_flags(flags.iter().map(String::as_str))?,
            internal_date,
            size,
            blob: *blob,
        };
        insert_message(conn, &meta)?;
        counters.save(conn)?;
        delivered.push((meta.mailbox, meta.uid, meta.modseq));
        touched.push((counters.account, meta.mailbox));
    }
    let queued = match outbound {
        Some(envelope) => Some(queue::insert(conn, blob, size, envelope, rows::unix_now())?),
        None => None,
    };
    Ok((AcceptedMessage { delivered, queued }, touched))
}

/// Appends messages (each with its blob id) to one mailbox; the caller runs it as one
/// write job, so they commit together or not at all (RFC 3502 §6.3.11).
pub(crate) fn append(
    conn: &Connection,
    mailbox: MailboxId,
    messages: &[(BlobId, crate::NewMessage)],
) -> StoreResult<(Vec<(Uid, ModSeq)>, AccountId)> {
    if messages.is_empty() {
        return Err(StoreError::Refused("nothing to append".into()));
    }
    let mut counters = Counters::load(conn, mailbox)?;
    let mut added = Vec::with_capacity(messages.len());
    for (blob, message) in messages {
        conn.prepare_cached("INSERT OR IGNORE INTO blobs (hash, data) VALUES (?1, ?2)")?
            .execute(params![&blob.0[..], &message.raw[..]])?;
        let meta = MessageMeta {
            mailbox,
            uid: counters.next_uid()?,
            modseq: counters.next_modseq(),
            flags: rows::normalize_flags(message.flags.iter().map(String::as_str))?,
            internal_date: message.internal_date,
            size: message.raw.len() as u64,
            blob: *blob,
        };
        insert_message(conn, &meta)?;
        added.push((meta.uid, meta.modseq));
    }
    counters.save(conn)?;
    Ok((added, counters.account))
}

/// The counters kept by the `*_usage_*` triggers (schema version 3).
pub(crate) fn usage(conn: &Connection, account: AccountId) -> StoreResult<Usage> {
    let found = rows::first(
        conn,
        "SELECT used_bytes, used_messages FROM accounts WHERE id = ?1",
        [account.0],
        |row| Ok((rows::get::<i64>(row, 0)?, rows::get::<i64>(row, 1)?)),
    )?;
    let (bytes, messages) =
        found.ok_or_else(|| StoreError::NotFound(format!("the account with id {}", account.0)))?;
    Ok(Usage {
        bytes: u64::try_from(bytes).map_err(|_| rows::corrupt("used_bytes", bytes))?,
        messages: u64::try_from(messages).map_err(|_| rows::corrupt("used_messages", messages))?,
    })
}

/// Messages with a MODSEQ above `since` and the UIDs expunged above it; both come from an
/// index on (mailbox, modseq), so a session catching up reads only what changed.
pub(crate) fn changes_since(
    conn: &Connection,
    mailbox: MailboxId,
    since: ModSeq,
) -> StoreResult<MailboxChanges> {
    let highest_modseq = mailboxes::existing(conn, mailbox)?.highest_modseq;
    let mut changed = rows::collect(
        conn,
        &format!(
            "SELECT {} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2",
            rows::MESSAGE_COLUMNS
        ),
        params![mailbox.0, rows::modseq_param(since)],
        rows::message,
    )?;
    changed.sort_unstable_by_key(|m| m.uid);
    let expunged = expunged_since(conn, mailbox, since)?;
    Ok(MailboxChanges {
        changed,
        expunged,
        highest_modseq,
    })
}

pub(crate) fn blob_summary(conn: &Connection, blob: &BlobId) -> StoreResult<Option<Vec<u8>>> {
    rows::first(
        conn,
        "SELECT data FROM blob_structures WHERE hash = ?1",
        [&blob.0[..]],
        |row| rows::get(row, 0),
    )
}

pub(crate) fn save_blob_summary(
    conn: &Connection,
    blob: &BlobId,
    summary: &[u8],
) -> StoreResult<()> {
    // Only for a blob that still exists: the summary goes with it (ON DELETE CASCADE).
    conn.prepare_cached(
        "INSERT OR REPLACE INTO blob_structures (hash, data) \
         SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)",
    )?
    .execute(params![&blob.0[..], summary])?;
    Ok(())
}

pub(crate) fn list(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>> {
    mailboxes::existing(conn, mailbox)?;
    rows::collect(
        conn,
        &format!(
            "SELECT {} FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
            rows::MESSAGE_COLUMNS
        ),
        [mailbox.0],
        rows::message,
    )
}

pub(crate) fn read_blob(conn: &Connection, blob: &BlobId) -> StoreResult<Vec<u8>> {
    rows::first(
        conn,
        "SELECT data FROM blobs WHERE hash = ?1",
        [&blob.0[..]],
        |row| rows::get(row, 0),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("the message blob {blob}")))
}

/// Reads a piece of a blob with SQLite's incremental blob I/O: only the pages holding the
/// piece are read, never the whole value.
pub(crate) fn read_blob_range(
    conn: &Connection,
    blob: &BlobId,
    offset: u64,
    len: usize,
) -> StoreResult<Vec<u8>> {
    let rowid: i64 = rows::first(
        conn,
        "SELECT rowid FROM blobs WHERE hash = ?1",
        [&blob.0[..]],
        |row| rows::get(row, 0),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("the message blob {blob}")))?;
    let handle = conn.blob_open(rusqlite::MAIN_DB, c"blobs", c"data", rowid, true)?;
    let total = u64::try_from(handle.size()).unwrap_or(0);
    let start = offset.min(total);
    let take = usize::try_from(total - start)
        .unwrap_or(usize::MAX)
        .min(len);
    let mut piece = vec![0u8; take];
    // `start` <= `total`, which came from an i32: it fits a usize.
    let at = usize::try_from(start).unwrap_or(usize::MAX);
    handle.read_at_exact(&mut piece, at)?;
    Ok(piece)
}

fn apply(op: FlagOp, current: &[String], given: &[String]) -> StoreResult<Vec<String>> {
    match op {
        FlagOp::Add => rows::normalize_flags(current.iter().chain(given).map(String::as_str)),
        FlagOp::Remove => Ok(current
            .iter()
            .filter(|have| !given.iter().any(|g| g.eq_ignore_ascii_case(have)))
            .cloned()
            .collect()),
        FlagOp::Replace => Ok(given.to_vec()),
    }
}

pub(crate) fn store_flags(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<ModSeq>,
) -> StoreResult<(Vec<MessageMeta>, AccountId)> {
    let given = rows::normalize_flags(flags.iter().map(String::as_str))?;
    let mut counters = Counters::load(conn, mailbox)?;
    let mut changed = Vec::new();
    for uid in sorted(uids) {
        let Some(mut meta) = message(conn, mailbox, uid)? else {
            continue; // missing UIDs are ignored
        };
        // RFC 7162 §3.1.3: UNCHANGEDSINCE leaves alone every message whose MODSEQ is
        // higher than the given value (the caller reports those as MODIFIED).
        if unchanged_since.is_some_and(|since| meta.modseq > since) {
            continue;
        }
        let new_flags = apply(op, &meta.flags, &given)?;
        if new_flags == meta.flags {
            // No change, no new MODSEQ: nothing for other sessions to resynchronise.
            continue;
        }
        // RFC 7162 §3.1.1: a metadata change gives the message a new, higher MODSEQ.
        meta.modseq = counters.next_modseq();
        meta.flags = new_flags;
        conn.prepare_cached(
            "UPDATE messages SET flags = ?1, modseq = ?2 WHERE mailbox_id = ?3 AND uid = ?4",
        )?
        .execute(params![
            rows::encode_flags(&meta.flags),
            rows::modseq_param(meta.modseq),
            mailbox.0,
            uid.0
        ])?;
        changed.push(meta);
    }
    counters.save(conn)?;
    Ok((changed, counters.account))
}

/// Removes one message and records its removal in the expunge log with a new MODSEQ.
fn expunge_one(conn: &Connection, counters: &mut Counters, uid: Uid) -> StoreResult<bool> {
    let removed = conn
        .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?
        .execute(params![counters.mailbox.0, uid.0])?;
    if removed == 0 {
        return Ok(false);
    }
    log_expunge(conn, counters, uid)?;
    Ok(true)
}

pub(crate) fn expunge(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> StoreResult<(Vec<Uid>, AccountId)> {
    let mut counters = Counters::load(conn, mailbox)?;
    let mut removed = Vec::new();
    for uid in sorted(uids) {
        if expunge_one(conn, &mut counters, uid)? {
            removed.push(uid);
        }
    }
    counters.save(conn)?;
    Ok((removed, counters.account))
}

pub(crate) fn expunged_since(
    conn: &Connection,
    mailbox: MailboxId,
    since: ModSeq,
) -> StoreResult<Vec<Uid>> {
    mailboxes::existing(conn, mailbox)?;
    rows::collect(
        conn,
        "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        params![mailbox.0, rows::modseq_param(since)],
        |row| rows::uid(rows::get(row, 0)?),
    )
}

/// Copies messages (same blob, flags and internal date, RFC 9051 §6.4.7) with new UIDs in
/// the target, in ascending source-UID order. Returns the pairs and the target's account.
pub(crate) fn copy(
    conn: &Connection,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> StoreResult<(Vec<(Uid, Uid)>, AccountId)> {
    mailboxes::existing(conn, from)?;
    let mut counters = Counters::load(conn, to)?;
    // Read every source first: copying a mailbox into itself must not see its own copies.
    let mut sources = Vec::new();
    for uid in sorted(uids) {
        if let Some(meta) = message(conn, from, uid)? {
            sources.push(meta);
        }
    }
    let mut pairs = Vec::with_capacity(sources.len());
    for source in sources {
        let copy = MessageMeta {
            mailbox: to,
            uid: counters.next_uid()?,
            modseq: counters.next_modseq(),
            ..source.clone()
        };
        insert_message(conn, &copy)?;
        pairs.push((source.uid, copy.uid));
    }
    counters.save(conn)?;
    Ok((pairs, counters.account))
}

/// Moves messages into `to` (new UIDs and MODSEQs there) and logs each as expunged from
/// `from` (RFC 6851 §3.3, RFC 7162 §3.2), in ascending source-UID order. An UPDATE, not a
/// copy and a delete: the blob keeps its reference throughout. Returns the pairs and the
/// account of `to` (both mailboxes belong to one account in practice).
pub(crate) fn move_some(
    conn: &Connection,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> StoreResult<(Vec<(Uid, Uid)>, AccountId)> {
    let mut source = Counters::load(conn, from)?;
    // RFC 6851 §3.3 does not forbid a move into the same mailbox: each message gets a new
    // UID at the end and the old one is expunged; one set of counters serves both roles.
    let mut target = if from == to {
        None
    } else {
        Some(Counters::load(conn, to)?)
    };
    let mut pairs = Vec::new();
    for uid in sorted(uids) {
        if message(conn, from, uid)?.is_none() {
            continue;
        }
        let counters = match target.as_mut() {
            Some(target) => target,
            None => &mut source,
        };
        let new_uid = counters.next_uid()?;
        let new_modseq = counters.next_modseq();
        move_row(conn, from, uid, to, new_uid, new_modseq)?;
        log_expunge(conn, &mut source, uid)?;
        pairs.push((uid, new_uid));
    }
    source.save(conn)?;
    if let Some(target) = &target {
        target.save(conn)?;
    }
    let account = target.map_or(source.account, |t| t.account);
    Ok((pairs, account))
}

fn move_row(
    conn: &Connection,
    from: MailboxId,
    uid: Uid,
    to: MailboxId,
    new_uid: Uid,
    new_modseq: ModSeq,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE messages SET mailbox_id = ?1, uid = ?2, modseq = ?3 \
         WHERE mailbox_id = ?4 AND uid = ?5",
    )?
    .execute(params![
        to.0,
        new_uid.0,
        rows::modseq_param(new_modseq),
        from.0,
        uid.0
    ])?;
    Ok(())
}

/// RFC 7162 §3.2: an expunge gets a new MODSEQ of its mailbox, kept with the UID to answer
/// VANISHED (EARLIER).
fn log_expunge(conn: &Connection, counters: &mut Counters, uid: Uid) -> StoreResult<()> {
    let modseq = counters.next_modseq();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        counters.mailbox.0,
        uid.0,
        rows::modseq_param(modseq)
    ])?;
    Ok(())
}

/// Moves every message of `from` into `to` with new UIDs there; for `from` each move is an
/// expunge (logged with a MODSEQ). Used by the rename of INBOX.
pub(crate) fn move_all(conn: &Connection, from: &Mailbox, to: &Mailbox) -> StoreResult<()> {
    let uids = rows::collect(
        conn,
        "SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
        [from.id.0],
        |row| rows::uid(rows::get(row, 0)?),
    )?;
    move_some(conn, from.id, &uids, to.id)?;
    Ok(())
}
