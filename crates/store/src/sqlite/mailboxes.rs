//! Mailboxes: creation with a fresh UIDVALIDITY, rename (with children, and the INBOX
//! rule), delete, subscription.

use rusqlite::{Connection, params};
use sealpost_types::{AccountId, MailboxId, MailboxName, SpecialUse};

use super::{messages, rows};
use crate::{Mailbox, StoreError, StoreResult};

/// The next UIDVALIDITY, from one counter for the whole store.
///
/// RFC 9051 §2.3.1.1: the pair (mailbox name, UIDVALIDITY) must never refer to two
/// different sets of UIDs over time. A store-wide, strictly increasing counter makes every
/// mailbox ever created get a value no earlier mailbox had, whatever its name. It is kept
/// at least at the current time so that a database recreated from scratch (seeded from the
/// clock, see `schema`) does not repeat the values of its predecessor.
fn next_uid_validity(conn: &Connection) -> StoreResult<u32> {
    let last: i64 = conn.query_row(
        "SELECT value FROM counters WHERE name = 'uid_validity'",
        [],
        |row| row.get(0),
    )?;
    let mut next = last.saturating_add(1).max(rows::unix_now());
    // UIDVALIDITY is a non-zero 32-bit number: start over at 1 past the end (in 2106 at
    // one mailbox per second; values that old are long gone from clients' caches).
    if next > i64::from(u32::MAX) {
        next = 1;
    }
    conn.execute(
        "UPDATE counters SET value = ?1 WHERE name = 'uid_validity'",
        [next],
    )?;
    u32::try_from(next).map_err(|_| StoreError::Corrupt(format!("UIDVALIDITY {next}")))
}

pub(crate) fn by_id(conn: &Connection, id: MailboxId) -> StoreResult<Option<Mailbox>> {
    rows::first(
        conn,
        &format!(
            "SELECT {} FROM mailboxes WHERE id = ?1",
            rows::MAILBOX_COLUMNS
        ),
        [id.0],
        rows::mailbox,
    )
}

pub(crate) fn existing(conn: &Connection, id: MailboxId) -> StoreResult<Mailbox> {
    by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("the mailbox with id {}", id.0)))
}

pub(crate) fn by_name(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
) -> StoreResult<Option<Mailbox>> {
    rows::first(
        conn,
        &format!(
            "SELECT {} FROM mailboxes WHERE account_id = ?1 AND name = ?2",
            rows::MAILBOX_COLUMNS
        ),
        params![account.0, name.as_str()],
        rows::mailbox,
    )
}

fn existing_by_name(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
) -> StoreResult<Mailbox> {
    by_name(conn, account, name)?.ok_or_else(|| StoreError::NotFound(format!("the mailbox {name}")))
}

pub(crate) fn by_special_use(
    conn: &Connection,
    account: AccountId,
    special_use: SpecialUse,
) -> StoreResult<Option<Mailbox>> {
    // Several mailboxes may carry the same attribute (RFC 6154 §2 allows it); the first
    // by name is the one the server uses.
    rows::first(
        conn,
        &format!(
            "SELECT {} FROM mailboxes WHERE account_id = ?1 AND special_use = ?2 \
             ORDER BY name LIMIT 1",
            rows::MAILBOX_COLUMNS
        ),
        params![account.0, special_use.as_str()],
        rows::mailbox,
    )
}

pub(crate) fn list(conn: &Connection, account: AccountId) -> StoreResult<Vec<Mailbox>> {
    let mut mailboxes = rows::collect(
        conn,
        &format!(
            "SELECT {} FROM mailboxes WHERE account_id = ?1",
            rows::MAILBOX_COLUMNS
        ),
        [account.0],
        rows::mailbox,
    )?;
    mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(mailboxes)
}

fn insert(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
    special_use: Option<SpecialUse>,
    subscribed: bool,
) -> StoreResult<Mailbox> {
    let uid_validity = next_uid_validity(conn)?;
    // UIDs start at 1 (RFC 9051 §2.3.1.1: non-zero); HIGHESTMODSEQ is a positive number
    // even for an empty mailbox (RFC 7162 §3.1.1: mod-sequence-value is positive).
    let inserted = conn.execute(
        "INSERT INTO mailboxes (account_id, name, special_use, uid_validity, uid_next, \
         highest_modseq) VALUES (?1, ?2, ?3, ?4, 1, 1)",
        params![
            account.0,
            name.as_str(),
            special_use.map(SpecialUse::as_str),
            uid_validity,
        ],
    );
    match inserted {
        Err(e) if rows::is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists(format!("the mailbox {name}")));
        }
        other => other?,
    };
    let id = MailboxId(conn.last_insert_rowid());
    if subscribed {
        subscribe(conn, account, name)?;
    }
    existing(conn, id)
}

fn require_account(conn: &Connection, account: AccountId) -> StoreResult<()> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")?
        .exists([account.0])?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!(
            "the account with id {}",
            account.0
        )))
    }
}

/// The mailboxes every account starts with, subscribed so that clients show them at once.
pub(crate) fn create_defaults(conn: &Connection, account: AccountId) -> StoreResult<()> {
    for (special_use, name) in SpecialUse::DEFAULT_SET {
        let name = MailboxName::parse(name)
            .map_err(|e| StoreError::Corrupt(format!("default mailbox {name:?}: {e}")))?;
        insert(conn, account, &name, Some(special_use), true)?;
    }
    Ok(())
}

pub(crate) fn create(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
    special_use: Option<SpecialUse>,
) -> StoreResult<Mailbox> {
    require_account(conn, account)?;
    // Not subscribed: clients that want it say SUBSCRIBE (RFC 9051 §6.3.7) themselves.
    insert(conn, account, name, special_use, false)
}

/// What a rename did, for the change events.
pub(crate) enum Renamed {
    /// The mailbox and its children changed names.
    Names,
    /// INBOX was emptied into a new mailbox.
    InboxMoved { inbox: MailboxId },
}

pub(crate) fn rename(
    conn: &Connection,
    account: AccountId,
    from: &MailboxName,
    to: &MailboxName,
) -> StoreResult<Renamed> {
    // RFC 9051 §6.3.6: it is an error to rename from a name that does not exist or to a
    // name that exists.
    let source = existing_by_name(conn, account, from)?;
    if by_name(conn, account, to)?.is_some() {
        return Err(StoreError::AlreadyExists(format!("the mailbox {to}")));
    }
    if from.is_inbox() {
        // RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox with the
        // new name and leaves INBOX in place, empty; INBOX's children are unaffected.
        let target = insert(conn, account, to, None, false)?;
        messages::move_all(conn, &source, &target)?;
        return Ok(Renamed::InboxMoved { inbox: source.id });
    }
    // RFC 9051 §6.3.6: inferior hierarchical names are renamed too ("foo/bar" -> "zap/bar").
    let mut moving: Vec<(MailboxId, String)> = Vec::new();
    let mut subscribed: Vec<String> = Vec::new();
    for mailbox in list(conn, account)? {
        let Some(rest) = mailbox.name.as_str().strip_prefix(from.as_str()) else {
            continue;
        };
        if rest.is_empty() || rest.starts_with(MailboxName::SEPARATOR) {
            let new_name = format!("{to}{rest}");
            MailboxName::parse(&new_name).map_err(|e| {
                StoreError::Refused(format!("{} cannot become {new_name:?}: {e}", mailbox.name))
            })?;
            if mailbox.subscribed {
                unsubscribe(conn, account, mailbox.name.as_str())?;
                subscribed.push(new_name.clone());
            }
            moving.push((mailbox.id, new_name));
        }
    }
    // Two steps, so that names swapping within the renamed set never collide half-way:
    // first a placeholder no real name can have (it holds a control character), then the
    // final names, where a UNIQUE violation means a name outside the set is taken.
    // The UIDVALIDITY stays: it is unique store-wide, so the pair (new name, UIDVALIDITY)
    // has never meant anything else (RFC 9051 §2.3.1.1).
    for (id, _) in &moving {
        conn.execute(
            "UPDATE mailboxes SET name = char(1) || id WHERE id = ?1",
            [id.0],
        )?;
    }
    for (id, new_name) in &moving {
        match conn.execute(
            "UPDATE mailboxes SET name = ?1 WHERE id = ?2",
            params![new_name, id.0],
        ) {
            Err(e) if rows::is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("the mailbox {new_name}")));
            }
            other => other?,
        };
    }
    // Subscriptions follow the mailboxes they named (as in Dovecot and Cyrus).
    for name in &subscribed {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
        )?
        .execute(params![account.0, name])?;
    }
    Ok(Renamed::Names)
}

/// Deletes one mailbox with its messages and expunge log; its subscription stays
/// (RFC 3501 §6.3.9: the server MUST NOT remove a name from the subscriptions on its own). Its children stay and simply
/// lose their parent (LIST then shows the parent as \NonExistent, RFC 5258). RFC 9051
/// §6.3.5 permits deleting a name that has inferiors; keeping no \Noselect placeholder is
/// the simplest correct choice and removes nothing the user did not ask to delete.
pub(crate) fn delete(conn: &Connection, account: AccountId, name: &MailboxName) -> StoreResult<()> {
    if name.is_inbox() {
        // RFC 9051 §6.3.5: it is an error to attempt to delete INBOX.
        return Err(StoreError::Refused("INBOX cannot be deleted".into()));
    }
    let mailbox = existing_by_name(conn, account, name)?;
    conn.execute("DELETE FROM mailboxes WHERE id = ?1", [mailbox.id.0])?;
    Ok(())
}

fn subscribe(conn: &Connection, account: AccountId, name: &MailboxName) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)")?
        .execute(params![account.0, name.as_str()])?;
    Ok(())
}

fn unsubscribe(conn: &Connection, account: AccountId, name: &str) -> StoreResult<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2")?
        .execute(params![account.0, name])?)
}

/// Subscribing needs the mailbox (RFC 3501 §6.3.6 lets the server check); unsubscribing
/// works for any subscribed name, also one whose mailbox is gone.
pub(crate) fn set_subscribed(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
    subscribed: bool,
) -> StoreResult<()> {
    if subscribed {
        existing_by_name(conn, account, name)?;
        return subscribe(conn, account, name);
    }
    if unsubscribe(conn, account, name.as_str())? == 0 && by_name(conn, account, name)?.is_none() {
        return Err(StoreError::NotFound(format!("the mailbox {name}")));
    }
    Ok(())
}

pub(crate) fn subscriptions(
    conn: &Connection,
    account: AccountId,
) -> StoreResult<Vec<MailboxName>> {
    let mut names = rows::collect(
        conn,
        "SELECT name FROM subscriptions WHERE account_id = ?1",
        [account.0],
        |row| {
            let name: String = rows::get(row, 0)?;
            MailboxName::parse(&name).map_err(|_| rows::corrupt("subscribed name", &name))
        },
    )?;
    names.sort();
    Ok(names)
}
