//! Connection settings and versioned schema migrations.
//!
//! The schema version lives in `PRAGMA user_version` (in the database header, so it changes
//! in the same transaction as the migration that bumps it). `MIGRATIONS[i]` takes a database
//! from version `i` to `i + 1`; scripts are only ever appended, never edited once released.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::StoreError;

/// How long a connection waits for a lock held by another connection or process (the CLI
/// runs as a separate process against the same database while the server runs).
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Version 1: the whole store model of DESIGN §4.
const V1: &str = r#"
CREATE TABLE domains (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE dkim_keys (
    id                INTEGER PRIMARY KEY,
    domain_id         INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector          TEXT NOT NULL,
    algorithm         TEXT NOT NULL,
    private_key_pem   TEXT NOT NULL,
    public_key_base64 TEXT NOT NULL,
    UNIQUE (domain_id, selector)
);

-- AUTOINCREMENT on accounts and mailboxes: an id is never handed out twice, so a session
-- still holding the id of a deleted account or mailbox can never reach a newer one.
-- No ON DELETE action on domain_id: a domain cannot go while accounts or aliases use it.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address       TEXT NOT NULL UNIQUE,
    domain_id     INTEGER NOT NULL REFERENCES domains(id),
    password_hash TEXT NOT NULL,
    quota_bytes   INTEGER
);
CREATE INDEX accounts_domain ON accounts(domain_id);

-- source is an address, or "@domain" for a catch-all.
CREATE TABLE aliases (
    id        INTEGER PRIMARY KEY,
    source    TEXT NOT NULL UNIQUE,
    domain_id INTEGER NOT NULL REFERENCES domains(id)
);
CREATE INDEX aliases_domain ON aliases(domain_id);

-- Targets are addresses, local or not, so they do not reference accounts.
CREATE TABLE alias_targets (
    alias_id INTEGER NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    target   TEXT NOT NULL,
    PRIMARY KEY (alias_id, position)
);

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    special_use    TEXT,
    uid_validity   INTEGER NOT NULL,
    uid_next       INTEGER NOT NULL,
    highest_modseq INTEGER NOT NULL,
    subscribed     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);

-- Content-addressed message bytes: hash is the SHA-256 of data.
CREATE TABLE blobs (
    hash BLOB NOT NULL PRIMARY KEY,
    data BLOB NOT NULL
);

-- flags: sorted, deduplicated, joined by single spaces (IMAP flags are atoms, which
-- never contain a space).
CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    modseq        INTEGER NOT NULL,
    flags         TEXT NOT NULL,
    internal_date INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    blob_hash     BLOB NOT NULL REFERENCES blobs(hash),
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_blob ON messages(blob_hash);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);

-- RFC 7162 §3.2: the expunged UIDs with the MODSEQ of their expunge, for VANISHED (EARLIER).
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- Store-wide counters (the UIDVALIDITY source).
CREATE TABLE counters (
    name  TEXT NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);

-- A blob goes with the last message that refers to it. Also fires for the messages removed
-- by the ON DELETE CASCADE of a mailbox or an account.
CREATE TRIGGER messages_release_blob AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE blob_hash = OLD.blob_hash)
BEGIN
    DELETE FROM blobs WHERE hash = OLD.blob_hash;
END;
"#;

/// Version 2: the outbound queue. A queued message refers to its blob like a mailbox copy
/// does, so the blob is kept while either refers to it.
const V2: &str = r#"
-- One row per accepted message with remote recipients. sender is the reverse-path (NULL for
-- <>); ret and envid are the RFC 3461 parameters of MAIL FROM; created is in Unix seconds.
-- An account that goes away leaves its queued mail to be delivered, without a submitter.
CREATE TABLE queue_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    blob_hash    BLOB NOT NULL REFERENCES blobs(hash),
    sender       TEXT,
    ret          TEXT,
    envid        TEXT,
    submitted_by INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
    created      INTEGER NOT NULL,
    size         INTEGER NOT NULL
);
CREATE INDEX queue_messages_blob ON queue_messages(blob_hash);
CREATE INDEX queue_messages_submitted_by ON queue_messages(submitted_by);

-- One row per remote recipient of a queued message, in the order given (rowid). notify and
-- orcpt are the RFC 3461 parameters of RCPT TO as received.
CREATE TABLE queue_recipients (
    queue_id     INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    notify       TEXT,
    orcpt        TEXT,
    status       TEXT NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    PRIMARY KEY (queue_id, address)
);
-- What the scheduler asks: which recipients still waiting ('queued') are due.
CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);

-- A blob goes with the last message or queue entry that refers to it.
DROP TRIGGER messages_release_blob;
CREATE TRIGGER messages_release_blob AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE blob_hash = OLD.blob_hash)
 AND NOT EXISTS (SELECT 1 FROM queue_messages WHERE blob_hash = OLD.blob_hash)
BEGIN
    DELETE FROM blobs WHERE hash = OLD.blob_hash;
END;
CREATE TRIGGER queue_messages_release_blob AFTER DELETE ON queue_messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE blob_hash = OLD.blob_hash)
 AND NOT EXISTS (SELECT 1 FROM queue_messages WHERE blob_hash = OLD.blob_hash)
BEGIN
    DELETE FROM blobs WHERE hash = OLD.blob_hash;
END;
"#;

/// Version 3: what IMAP needs to answer without re-reading every message: the storage in
/// use per account (RFC 9208 STORAGE and MESSAGE), kept by triggers, and a cache of each
/// blob's parsed structure (ENVELOPE, BODYSTRUCTURE, section offsets). Subscriptions
/// become names of their own, kept when the mailbox goes (RFC 3501 §6.3.9, RFC 5258 §3.1).
const V3: &str = r#"
-- A subscription names a mailbox that may not (or no longer) exist.
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
INSERT INTO subscriptions (account_id, name)
    SELECT account_id, name FROM mailboxes WHERE subscribed = 1;
ALTER TABLE mailboxes DROP COLUMN subscribed;

ALTER TABLE accounts ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN used_messages INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET
    used_bytes = (SELECT COALESCE(SUM(m.size), 0) FROM messages m
                  JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = accounts.id),
    used_messages = (SELECT COUNT(*) FROM messages m
                     JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = accounts.id);

CREATE TRIGGER messages_usage_insert AFTER INSERT ON messages
BEGIN
    UPDATE accounts SET used_bytes = used_bytes + NEW.size, used_messages = used_messages + 1
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
-- A message removed by the cascade of its mailbox finds no mailbox here (the mailbox row
-- is gone first); mailboxes_usage_delete has already counted it.
CREATE TRIGGER messages_usage_delete AFTER DELETE ON messages
BEGIN
    UPDATE accounts SET used_bytes = used_bytes - OLD.size, used_messages = used_messages - 1
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
-- A message moved between two mailboxes of one account keeps its account: no change;
-- between accounts it moves its usage.
CREATE TRIGGER messages_usage_move AFTER UPDATE OF mailbox_id ON messages
WHEN (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id)
  IS NOT (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id)
BEGIN
    UPDATE accounts SET used_bytes = used_bytes - OLD.size, used_messages = used_messages - 1
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
    UPDATE accounts SET used_bytes = used_bytes + NEW.size, used_messages = used_messages + 1
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
CREATE TRIGGER mailboxes_usage_delete BEFORE DELETE ON mailboxes
BEGIN
    UPDATE accounts SET
        used_bytes = used_bytes
            - (SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = OLD.id),
        used_messages = used_messages
            - (SELECT COUNT(*) FROM messages WHERE mailbox_id = OLD.id)
    WHERE id = OLD.account_id;
END;

-- Derived data, recomputable from the blob at any time: kept only while the blob is.
CREATE TABLE blob_structures (
    hash BLOB NOT NULL PRIMARY KEY REFERENCES blobs(hash) ON DELETE CASCADE,
    data BLOB NOT NULL
) WITHOUT ROWID;
"#;

/// Version 4: whether the sender of a queued message was told it is delayed (RFC 3464
/// `Action: delayed`), so that the warning goes out once; and the order the scheduler reads
/// due entries in.
const V4: &str = r#"
ALTER TABLE queue_messages ADD COLUMN delay_reported INTEGER NOT NULL DEFAULT 0;
-- The scheduler reads due entries in this order, from where it left off.
CREATE INDEX queue_messages_created ON queue_messages(created, id);
"#;

/// Version 5: TLS-RPT data (RFC 8460 §4.4), counted per day, policy, MX host and outcome;
/// and the REQUIRETLS flag of queued messages (RFC 8689).
const V5: &str = r#"
ALTER TABLE queue_messages ADD COLUMN require_tls INTEGER NOT NULL DEFAULT 0;
CREATE TABLE tls_sessions (
    day           TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    policy_type   TEXT NOT NULL,
    mx_host       TEXT NOT NULL,
    result        TEXT NOT NULL,
    receiving_ip  TEXT NOT NULL,
    policy_string TEXT NOT NULL,
    reason        TEXT NOT NULL,
    count         INTEGER NOT NULL,
    PRIMARY KEY (day, policy_domain, policy_type, mx_host, result, receiving_ip)
) WITHOUT ROWID;
"#;

/// Version 6: DMARC aggregate report data (RFC 7489 §7.2), counted per day, policy domain,
/// source and outcome.
const V6: &str = r#"
CREATE TABLE dmarc_rows (
    day              TEXT NOT NULL,
    policy_domain    TEXT NOT NULL,
    source_ip        TEXT NOT NULL,
    header_from      TEXT NOT NULL,
    envelope_from    TEXT NOT NULL,
    envelope_to      TEXT NOT NULL,
    disposition      TEXT NOT NULL,
    dkim_aligned     TEXT NOT NULL,
    spf_aligned      TEXT NOT NULL,
    override_reason  TEXT NOT NULL,
    dkim_results     TEXT NOT NULL,
    spf_result       TEXT NOT NULL,
    policy_published TEXT NOT NULL,
    count            INTEGER NOT NULL,
    PRIMARY KEY (day, policy_domain, source_ip, header_from, envelope_from, envelope_to,
                 disposition, dkim_aligned, spf_aligned, override_reason, dkim_results,
                 spf_result)
) WITHOUT ROWID;
"#;

/// Every migration in order; the schema version of a database is the number applied.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this binary writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

fn open_error(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Opens the one read-write connection, switches it to WAL and applies pending migrations.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    configure(&conn).map_err(|e| open_error(path, e))?;
    // WAL: readers never block the writer nor the writer the readers.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_error(
            path,
            format!("cannot switch to WAL mode (got {mode})"),
        ));
    }
    migrate(&mut conn, current_version()).map_err(|reason| open_error(path, reason))?;
    Ok(conn)
}

/// Opens a read-only connection for the reader pool.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    configure(&conn).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Settings that SQLite keeps per connection, so every connection sets them.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: the WAL is fsync'd at every commit, so a commit that returned is durable (a 250
    // after DATA promises exactly that; NORMAL could lose the last commits on power loss).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Applies the migrations this database lacks up to version `target` (the current one,
/// except in tests that build an old database), each in its own transaction. Refuses a
/// database written by a newer binary rather than guessing at its schema.
pub(crate) fn migrate(conn: &mut Connection, target: i64) -> Result<(), String> {
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes
        // opening a fresh database at once do not both apply the same migration.
        let txn = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let version: i64 = txn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| e.to_string())?;
        if version > current_version() {
            return Err(format!(
                "the database has schema version {version}, newer than the {} this sealpost \
                 knows; use a newer sealpost (or restore a backup)",
                current_version()
            ));
        }
        let Some(script) = usize::try_from(version)
            .ok()
            .filter(|_| version < target)
            .and_then(|index| MIGRATIONS.get(index))
        else {
            return Ok(());
        };
        txn.execute_batch(script)
            .map_err(|e| format!("migration to schema version {}: {e}", version + 1))?;
        if version == 0 {
            seed_counters(&txn).map_err(|e| e.to_string())?;
        }
        txn.pragma_update(None, "user_version", version + 1)
            .map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
    }
}

/// Seeds the UIDVALIDITY counter from the clock, so that a database created again from
/// scratch does not hand out the values of its predecessor to the same mailbox names
/// (RFC 9051 §2.3.1.1: UIDVALIDITY must not repeat for a name).
fn seed_counters(txn: &rusqlite::Transaction) -> rusqlite::Result<()> {
    txn.execute(
        "INSERT INTO counters (name, value) VALUES ('uid_validity', ?1)",
        [super::rows::unix_now()],
    )?;
    Ok(())
}
