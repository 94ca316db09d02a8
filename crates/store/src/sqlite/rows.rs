//! Turning rows into store types, and the small encodings used in columns.
//!
//! Everything read back is checked again (`Address::parse`, ranges of UIDs, ...): a value
//! that does not fit is reported as `Corrupt` instead of being trusted or panicking.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};
use sealpost_types::{
    AccountId, Address, AliasSource, BlobId, Domain, MailboxId, MailboxName, ModSeq, SpecialUse,
    Uid,
};

use crate::{Mailbox, MessageMeta, StoreError, StoreResult};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether `error` is a UNIQUE or PRIMARY KEY violation (a name already taken).
pub(crate) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

pub(crate) fn get<T: FromSql>(row: &Row<'_>, index: usize) -> StoreResult<T> {
    Ok(row.get(index)?)
}

/// Runs a query and converts every row with `convert`.
pub(crate) fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    convert: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(convert(row)?);
    }
    Ok(out)
}

/// Runs a query expected to give at most one row.
pub(crate) fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    convert: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => convert(row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn corrupt(what: &str, value: impl std::fmt::Debug) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?} in the database is invalid"))
}

pub(crate) fn address(text: &str) -> StoreResult<Address> {
    Address::parse(text).map_err(|_| corrupt("address", text))
}

pub(crate) fn domain(text: &str) -> StoreResult<Domain> {
    Domain::parse(text).map_err(|_| corrupt("domain", text))
}

pub(crate) fn alias_source(text: &str) -> StoreResult<AliasSource> {
    AliasSource::parse(text).map_err(|_| corrupt("alias source", text))
}

pub(crate) fn uid(value: i64) -> StoreResult<Uid> {
    match u32::try_from(value) {
        Ok(v) if v > 0 => Ok(Uid(v)),
        _ => Err(corrupt("UID", value)),
    }
}

pub(crate) fn modseq(value: i64) -> StoreResult<ModSeq> {
    match u64::try_from(value) {
        Ok(v) if v > 0 => Ok(ModSeq(v)),
        _ => Err(corrupt("MODSEQ", value)),
    }
}

/// A MODSEQ as stored: SQLite integers are signed 64-bit, and RFC 7162 §3.1.1 keeps
/// mod-sequences within 63 bits, so every valid one fits.
pub(crate) fn modseq_param(value: ModSeq) -> i64 {
    i64::try_from(value.0).unwrap_or(i64::MAX)
}

pub(crate) fn blob_id(bytes: &[u8]) -> StoreResult<BlobId> {
    <[u8; 32]>::try_from(bytes)
        .map(BlobId)
        .map_err(|_| corrupt("blob hash of length", bytes.len()))
}

/// Columns read by [`mailbox`], in order.
pub(crate) const MAILBOX_COLUMNS: &str = "id, account_id, name, special_use, uid_validity, uid_next, highest_modseq, \
     EXISTS (SELECT 1 FROM subscriptions s \
             WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name)";

pub(crate) fn mailbox(row: &Row<'_>) -> StoreResult<Mailbox> {
    let name: String = get(row, 2)?;
    let special_use: Option<String> = get(row, 3)?;
    let uid_validity: i64 = get(row, 4)?;
    let uid_next: i64 = get(row, 5)?;
    Ok(Mailbox {
        id: MailboxId(get(row, 0)?),
        account: AccountId(get(row, 1)?),
        name: MailboxName::parse(&name).map_err(|_| corrupt("mailbox name", &name))?,
        special_use: special_use
            .map(|s| {
                s.parse::<SpecialUse>()
                    .map_err(|_| corrupt("special-use", s))
            })
            .transpose()?,
        uid_validity: u32::try_from(uid_validity)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| corrupt("UIDVALIDITY", uid_validity))?,
        uid_next: uid(uid_next)?,
        highest_modseq: modseq(get(row, 6)?)?,
        subscribed: get(row, 7)?,
    })
}

/// Columns read by [`message`], in order.
pub(crate) const MESSAGE_COLUMNS: &str =
    "mailbox_id, uid, modseq, flags, internal_date, size, blob_hash";

pub(crate) fn message(row: &Row<'_>) -> StoreResult<MessageMeta> {
    let flags: String = get(row, 3)?;
    let size: i64 = get(row, 5)?;
    let hash: Vec<u8> = get(row, 6)?;
    Ok(MessageMeta {
        mailbox: MailboxId(get(row, 0)?),
        uid: uid(get(row, 1)?)?,
        modseq: modseq(get(row, 2)?)?,
        flags: decode_flags(&flags),
        internal_date: get(row, 4)?,
        size: u64::try_from(size).map_err(|_| corrupt("size", size))?,
        blob: blob_id(&hash)?,
    })
}

/// System flags in their canonical spelling (RFC 9051 §2.3.2).
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen"];

/// Sorts and deduplicates flags. Flag names are case-insensitive (RFC 9051 §9), so
/// system flags get their canonical spelling and a keyword given twice in different case
/// is kept once (first spelling wins). Refuses what the space-joined column cannot hold.
pub(crate) fn normalize_flags<'a>(
    flags: impl IntoIterator<Item = &'a str>,
) -> StoreResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for flag in flags {
        // RFC 9051 §9: flag-keyword is an atom, which has no SP and no CTL.
        if flag.is_empty() || flag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Refused(format!("{flag:?} is not a valid flag")));
        }
        let canonical = SYSTEM_FLAGS
            .iter()
            .find(|system| system.eq_ignore_ascii_case(flag))
            .map_or_else(|| flag.to_string(), |system| (*system).to_string());
        if !out.iter().any(|have| have.eq_ignore_ascii_case(&canonical)) {
            out.push(canonical);
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn encode_flags(flags: &[String]) -> String {
    flags.join(" ")
}

pub(crate) fn decode_flags(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_sorted_deduplicated_and_canonical() {
        let flags = normalize_flags(["\\seen", "$Label", "\\Seen", "$label", "\\FLAGGED"]).unwrap();
        assert_eq!(flags, ["$Label", "\\Flagged", "\\Seen"]);
        assert_eq!(decode_flags(&encode_flags(&flags)), flags);
        assert!(decode_flags("").is_empty());
        assert!(normalize_flags(["a b"]).is_err());
        assert!(normalize_flags([""]).is_err());
        assert!(normalize_flags(["a\r"]).is_err());
    }
}
