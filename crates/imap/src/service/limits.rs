//! Per-account bounds that keep one account from growing without end (SECURITY-TESTS
//! IM-11, IM-18, RL-15): sessions per account and address, mailboxes, hierarchy depth,
//! keywords per mailbox.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use sealpost_store::MessageMeta;
use sealpost_types::{AccountId, MailboxName};

use super::session::Session;
use crate::core::{Code, Completion};

/// Concurrent IMAP sessions of one account from one address: Dovecot's default
/// `mail_max_userip_connections` (a desktop client opens up to 5, a phone 1–3).
pub const DEFAULT_MAX_SESSIONS_PER_USER_IP: usize = 10;
/// Mailboxes of one account (mox and the catalogue's figure).
pub(super) const MAX_MAILBOXES: usize = 1000;
/// Levels of one mailbox name (`a/b/c` has 3).
pub(super) const MAX_DEPTH: usize = 20;
/// Distinct keywords in one mailbox; beyond it PERMANENTFLAGS loses `\*` (RFC 9051 §7.1).
pub(super) const MAX_KEYWORDS: usize = 100;

/// Sessions per (account, address), shared by every session of the service.
#[derive(Debug, Default)]
pub(super) struct UserSessions {
    counts: Mutex<HashMap<(AccountId, IpAddr), usize>>,
}

/// One counted session; leaving it frees the place.
#[derive(Debug)]
pub(super) struct SessionSlot {
    sessions: Arc<UserSessions>,
    key: (AccountId, IpAddr),
}

impl UserSessions {
    /// A place for one more session, unless `limit` are open already.
    pub(super) fn acquire(
        self: &Arc<Self>,
        account: AccountId,
        ip: IpAddr,
        limit: usize,
    ) -> Option<SessionSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry((account, ip)).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(SessionSlot {
            sessions: Arc::clone(self),
            key: (account, ip),
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .sessions
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// System flags start with `\`; everything else is a keyword.
pub(super) fn is_keyword(flag: &str) -> bool {
    !flag.starts_with('\\')
}

/// The distinct keywords of a mailbox's messages, case-folded (RFC 9051 §2.3.2: flag
/// names are case-insensitive).
pub(super) fn keywords_in(messages: &[MessageMeta]) -> HashSet<String> {
    messages
        .iter()
        .flat_map(|m| m.flags.iter())
        .filter(|f| is_keyword(f))
        .map(|f| f.to_ascii_lowercase())
        .collect()
}

/// `NO [LIMIT]` when adding `flags` would take the mailbox past [`MAX_KEYWORDS`].
pub(super) fn keyword_refusal(existing: &HashSet<String>, flags: &[String]) -> Option<Completion> {
    let new: HashSet<String> = flags
        .iter()
        .filter(|f| is_keyword(f))
        .map(|f| f.to_ascii_lowercase())
        .filter(|f| !existing.contains(f))
        .collect();
    // RFC 5530 §3: LIMIT.
    (!new.is_empty() && existing.len() + new.len() > MAX_KEYWORDS)
        .then(|| Completion::no("Too many keywords in this mailbox").with_code(Code::Limit))
}

/// `NO [LIMIT]` for a name deeper than [`MAX_DEPTH`].
pub(super) fn depth_refusal(name: &MailboxName) -> Option<Completion> {
    let depth = name.as_str().split(MailboxName::SEPARATOR).count();
    (depth > MAX_DEPTH).then(|| Completion::no("Mailbox hierarchy too deep").with_code(Code::Limit))
}

impl Session<'_> {
    /// `NO [LIMIT]` when the account already has `MAX_MAILBOXES - adding + 1` or more.
    pub(super) async fn mailbox_count_refusal(&mut self, adding: usize) -> Option<Completion> {
        let account = self.account.as_ref()?.id;
        match self.service.store.mailboxes(account).await {
            Ok(all) if all.len().saturating_add(adding) > MAX_MAILBOXES => {
                Some(Completion::no("Too many mailboxes").with_code(Code::Limit))
            }
            Ok(_) => None,
            Err(error) => Some(super::session::store_failure(&error)),
        }
    }

    /// Keywords of a mailbox: from the snapshot when it is the selected one.
    pub(super) async fn keywords_of(
        &mut self,
        mailbox: sealpost_types::MailboxId,
    ) -> Result<HashSet<String>, sealpost_store::StoreError> {
        if let Some(selected) = self.selected.as_ref().filter(|s| s.mailbox.id == mailbox) {
            return Ok(keywords_in(&selected.messages));
        }
        Ok(keywords_in(&self.service.store.messages(mailbox).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_per_account_and_address() {
        let sessions = Arc::new(UserSessions::default());
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let first = sessions.acquire(AccountId(1), ip, 2);
        let second = sessions.acquire(AccountId(1), ip, 2);
        assert!(first.is_some() && second.is_some());
        assert!(sessions.acquire(AccountId(1), ip, 2).is_none());
        assert!(sessions.acquire(AccountId(1), other, 2).is_some());
        assert!(sessions.acquire(AccountId(2), ip, 2).is_some());
        drop(first);
        assert!(sessions.acquire(AccountId(1), ip, 2).is_some());
    }

    #[test]
    fn keyword_limit_counts_new_keywords_only() {
        let existing: HashSet<String> = (0..MAX_KEYWORDS).map(|i| format!("k{i}")).collect();
        let again = vec!["K1".to_string(), "\\Seen".to_string()];
        assert!(keyword_refusal(&existing, &again).is_none());
        let one_more = vec!["fresh".to_string()];
        assert!(keyword_refusal(&existing, &one_more).is_some());
        assert!(keyword_refusal(&HashSet::new(), &one_more).is_none());
    }

    #[test]
    fn depth_limit() {
        let deep = vec!["a"; MAX_DEPTH].join("/");
        assert!(depth_refusal(&MailboxName::parse(&deep).unwrap()).is_none());
        let deeper = format!("{deep}/a");
        assert!(depth_refusal(&MailboxName::parse(&deeper).unwrap()).is_some());
    }
}
