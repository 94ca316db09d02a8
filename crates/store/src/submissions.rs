//! Recent submissions: where the SMTP submission service filed the Sent copy of each message
//! an account submitted in the last minutes, so that the IMAP service can recognise the copy
//! most clients (Thunderbird, Apple Mail, mutt) APPEND to Sent right after sending, and not
//! store the message twice.
//!
//! In memory and per process, shared by the two services (both are built in one place, see
//! `serve`). Bounded: entries older than the window are dropped, and each account keeps at
//! most a fixed number (the oldest go first). Losing the record (a restart) only means that a
//! client's copy is stored beside the server's, as before this existed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sealpost_types::{AccountId, MailboxId, ModSeq, Uid};

/// How long after the submission a client's APPEND of the same message is recognised.
/// Clients append their copy right after the 250 (seconds); ten minutes also covers a slow
/// upload of a large message over a poor link.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Submissions remembered per account within the window; more push out the oldest.
pub const DEFAULT_PER_ACCOUNT: usize = 100;

/// The longest Message-ID kept (RFC 5322 §2.1.1: a line is at most 998 characters).
const MAX_MESSAGE_ID: usize = 998;

/// Where the Sent copy of one submission was filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentCopy {
    pub mailbox: MailboxId,
    /// The mailbox's UIDVALIDITY when the copy was filed: a mailbox deleted and created
    /// again under the same id has another one (RFC 9051 §2.3.1.1), and the UID means
    /// nothing there.
    pub uid_validity: u32,
    pub uid: Uid,
    /// The MODSEQ the copy was given: it still exists if a message with its UID has a MODSEQ
    /// at least this high (RFC 7162 §3.1.1: every change raises it, nothing lowers it).
    pub modseq: ModSeq,
}

#[derive(Debug)]
struct Entry {
    message_id: String,
    copy: SentCopy,
    filed: Instant,
}

#[derive(Debug)]
struct Inner {
    accounts: HashMap<AccountId, VecDeque<Entry>>,
    last_sweep: Instant,
}

/// The record shared by the SMTP and IMAP services (behind an `Arc`).
#[derive(Debug)]
pub struct RecentSubmissions {
    window: Duration,
    per_account: usize,
    inner: Mutex<Inner>,
}

impl Default for RecentSubmissions {
    fn default() -> Self {
        RecentSubmissions::new(DEFAULT_WINDOW, DEFAULT_PER_ACCOUNT)
    }
}

impl RecentSubmissions {
    /// A record that keeps submissions for `window`, at most `per_account` (at least 1) per
    /// account.
    pub fn new(window: Duration, per_account: usize) -> RecentSubmissions {
        RecentSubmissions {
            window,
            per_account: per_account.max(1),
            inner: Mutex::new(Inner {
                accounts: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Notes that `account` submitted the message `message_id` (as [`message_id`] gives it)
    /// and that its Sent copy is `copy`.
    pub fn record(&self, account: AccountId, message_id: &str, copy: SentCopy) {
        self.record_at(account, message_id, copy, Instant::now());
    }

    /// The Sent copy of a message `account` submitted within the window, if it was filed in
    /// `mailbox` under `message_id` (the latest such submission).
    pub fn lookup(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        message_id: &str,
    ) -> Option<SentCopy> {
        self.lookup_at(account, mailbox, message_id, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves entries that are still valid.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.filed) > self.window
    }

    fn record_at(&self, account: AccountId, message_id: &str, copy: SentCopy, now: Instant) {
        if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID {
            return;
        }
        let mut inner = self.lock();
        // Accounts that stopped submitting would keep their expired entries for ever: drop
        // them all once per window, so memory follows what was submitted within it.
        if now.saturating_duration_since(inner.last_sweep) > self.window {
            inner.accounts.retain(|_, entries| {
                entries.retain(|entry| !self.expired(entry, now));
                !entries.is_empty()
            });
            inner.last_sweep = now;
        }
        let entries = inner.accounts.entry(account).or_default();
        entries.retain(|entry| !self.expired(entry, now));
        while entries.len() >= self.per_account {
            entries.pop_front();
        }
        entries.push_back(Entry {
            message_id: message_id.to_string(),
            copy,
            filed: now,
        });
    }

    fn lookup_at(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        message_id: &str,
        now: Instant,
    ) -> Option<SentCopy> {
        let inner = self.lock();
        inner
            .accounts
            .get(&account)?
            .iter()
            .rev()
            .filter(|entry| !self.expired(entry, now))
            .find(|entry| entry.copy.mailbox == mailbox && entry.message_id == message_id)
            .map(|entry| entry.copy)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().accounts.values().map(VecDeque::len).sum()
    }
}

/// The Message-ID of a message, as both services compare it: the `<id-left@id-right>` of the
/// first Message-ID field of the header (RFC 5322 §3.6.4), unfolded; the trimmed field value
/// when it has no angle brackets. `None` without the field, or when it is empty or too long.
///
/// ```text
/// msg-id = [CFWS] "<" id-left "@" id-right ">" [CFWS]   ; RFC 5322 §3.6.4
/// ```
pub fn message_id(raw: &[u8]) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // RFC 5322 §2.1: the empty line ends the header.
        }
        if let Some(folded) = value.as_mut() {
            // RFC 5322 §2.2.3: a line starting with white space continues the field.
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                folded.extend_from_slice(line);
                if folded.len() > MAX_MESSAGE_ID * 2 {
                    return None;
                }
                continue;
            }
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line
                .get(..colon)
                .is_some_and(|name| name.trim_ascii().eq_ignore_ascii_case(b"message-id"))
        {
            value = Some(line.get(colon + 1..).unwrap_or_default().to_vec());
        }
    }
    let value = String::from_utf8(value?).ok()?;
    let id = match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => value.get(start..=end)?,
        _ => value.trim(),
    };
    (!id.is_empty() && id.len() <= MAX_MESSAGE_ID).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(mailbox: i64, uid: u32) -> SentCopy {
        SentCopy {
            mailbox: MailboxId(mailbox),
            uid_validity: 7,
            uid: Uid(uid),
            modseq: ModSeq(3),
        }
    }

    #[test]
    fn finds_a_recent_submission_by_account_mailbox_and_id() {
        let record = RecentSubmissions::default();
        record.record(AccountId(1), "<a@x>", copy(10, 4));
        assert_eq!(
            record.lookup(AccountId(1), MailboxId(10), "<a@x>"),
            Some(copy(10, 4))
        );
        assert_eq!(record.lookup(AccountId(2), MailboxId(10), "<a@x>"), None);
        assert_eq!(record.lookup(AccountId(1), MailboxId(11), "<a@x>"), None);
        assert_eq!(record.lookup(AccountId(1), MailboxId(10), "<b@x>"), None);
        // The same message submitted again: the latest copy counts.
        record.record(AccountId(1), "<a@x>", copy(10, 9));
        assert_eq!(
            record.lookup(AccountId(1), MailboxId(10), "<a@x>"),
            Some(copy(10, 9))
        );
    }

    #[test]
    fn entries_expire_after_the_window() {
        let record = RecentSubmissions::new(Duration::from_secs(60), 10);
        let start = Instant::now();
        record.record_at(AccountId(1), "<a@x>", copy(10, 1), start);
        let later = start + Duration::from_secs(61);
        assert_eq!(
            record.lookup_at(AccountId(1), MailboxId(10), "<a@x>", later),
            None
        );
        // A record made after a whole window sweeps every account's expired entries.
        record.record_at(AccountId(2), "<b@x>", copy(20, 1), later);
        assert_eq!(record.len(), 1);
    }

    #[test]
    fn each_account_keeps_a_bounded_number() {
        let record = RecentSubmissions::new(Duration::from_secs(60), 3);
        for n in 0..10u32 {
            record.record(AccountId(1), &format!("<{n}@x>"), copy(10, n + 1));
        }
        record.record(AccountId(2), "<other@x>", copy(20, 1));
        assert_eq!(record.len(), 4);
        assert_eq!(record.lookup(AccountId(1), MailboxId(10), "<6@x>"), None);
        assert!(
            record
                .lookup(AccountId(1), MailboxId(10), "<9@x>")
                .is_some()
        );
    }

    #[test]
    fn empty_and_oversized_ids_are_not_kept() {
        let record = RecentSubmissions::default();
        record.record(AccountId(1), "", copy(10, 1));
        record.record(AccountId(1), &"x".repeat(MAX_MESSAGE_ID + 1), copy(10, 2));
        assert_eq!(record.len(), 0);
    }

    #[test]
    fn message_id_is_read_from_the_header_only() {
        assert_eq!(
            message_id(b"From: a@x\r\nMessage-ID: <1@x.example>\r\n\r\nbody").as_deref(),
            Some("<1@x.example>")
        );
        // Case-insensitive name, folded value, comments around the id, bare LF.
        assert_eq!(
            message_id(b"message-id:\n (comment) <2@x>\n\t(more)\n\nbody").as_deref(),
            Some("<2@x>")
        );
        assert_eq!(message_id(b"Subject: x\r\n\r\nMessage-ID: <3@x>\r\n"), None);
        assert_eq!(message_id(b"Message-ID:   \r\n\r\n"), None);
        assert_eq!(
            message_id(b"Message-ID: no-brackets@x \r\n\r\n").as_deref(),
            Some("no-brackets@x")
        );
        // The first field counts.
        assert_eq!(
            message_id(b"Message-Id: <4@x>\r\nMessage-Id: <5@x>\r\n\r\n").as_deref(),
            Some("<4@x>")
        );
        assert_eq!(message_id(b""), None);
    }
}
