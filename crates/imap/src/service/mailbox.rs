//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3.4–§6.3.8), STATUS
//! (§6.3.11, with SIZE RFC 8438, HIGHESTMODSEQ RFC 7162, APPENDLIMIT RFC 7889,
//! DELETED-STORAGE RFC 9208) and NAMESPACE (§6.3.10).

use sealpost_store::{Mailbox, StoreError, StoreResult};
use sealpost_types::MailboxName;

use super::session::{Session, store_failure};
use crate::core::{Code, Completion, Response, StatusItem};

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

impl Session<'_> {
    fn account_id(&self) -> Option<sealpost_types::AccountId> {
        self.account.as_ref().map(|a| a.id)
    }

    pub(super) async fn create(&mut self, name: &MailboxName) -> Completion {
        let Some(account) = self.account_id() else {
            return Completion::bad("Not logged in");
        };
        // RFC 9051 §6.3.4: creating INBOX is an error.
        if name.is_inbox() {
            return Completion::no("INBOX always exists").with_code(Code::AlreadyExists);
        }
        if let Some(refusal) = super::limits::depth_refusal(name) {
            return refusal;
        }
        // RFC 9051 §6.3.4: superior names needed are created too (an existing one is
        // fine), so no level of the hierarchy is left without a mailbox.
        let mut ancestors = Vec::new();
        let mut current = name.parent();
        while let Some(parent) = current {
            current = parent.parent();
            ancestors.push(parent);
        }
        if let Some(refusal) = self.mailbox_count_refusal(ancestors.len() + 1).await {
            return refusal;
        }
        let store = &self.service.store;
        for parent in ancestors.iter().rev() {
            match store.create_mailbox(account, parent, None).await {
                Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                Err(error) => return store_failure(&error),
            }
        }
        match store.create_mailbox(account, name, None).await {
            Ok(_) => Completion::ok("CREATE completed"),
            Err(error) => store_failure(&error),
        }
    }

    pub(super) async fn delete(&mut self, name: &MailboxName) -> Completion {
        let Some(account) = self.account_id() else {
            return Completion::bad("Not logged in");
        };
        // RFC 9051 §6.3.5: deleting INBOX is an error.
        if name.is_inbox() {
            return Completion::no("INBOX cannot be deleted").with_code(Code::Cannot);
        }
        let selected_here = self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.name == *name);
        if selected_here {
            return Completion::no("Mailbox is selected").with_code(Code::InUse);
        }
        // RFC 9051 §6.3.5: a mailbox with inferiors keeps them; we refuse instead of
        // leaving a \Noselect parent (the store has no such state).
        match self.service.store.mailboxes(account).await {
            Ok(all) => {
                let prefix = format!("{}/", name.as_str());
                if all.iter().any(|m| m.name.as_str().starts_with(&prefix)) {
                    return Completion::no("Mailbox has children").with_code(Code::HasChildren);
                }
            }
            Err(error) => return store_failure(&error),
        }
        match self.service.store.delete_mailbox(account, name).await {
            Ok(()) => Completion::ok("DELETE completed"),
            Err(error) => store_failure(&error),
        }
    }

    pub(super) async fn rename(&mut self, from: &MailboxName, to: &MailboxName) -> Completion {
        let Some(account) = self.account_id() else {
            return Completion::bad("Not logged in");
        };
        // RFC 9051 §6.3.6: renaming to INBOX is an error (INBOX always exists).
        if to.is_inbox() {
            return Completion::no("INBOX always exists").with_code(Code::AlreadyExists);
        }
        if let Some(refusal) = self.rename_refusal(account, from, to).await {
            return refusal;
        }
        // RFC 9051 §6.3.6: renaming INBOX moves its messages (the store does that).
        match self.service.store.rename_mailbox(account, from, to).await {
            Ok(()) => Completion::ok("RENAME completed"),
            Err(error) => store_failure(&error),
        }
    }

    /// The limits a rename could break: renaming INBOX adds a mailbox; renaming a
    /// hierarchy makes its deepest member `to`'s depth deeper than `from`'s.
    async fn rename_refusal(
        &mut self,
        account: sealpost_types::AccountId,
        from: &MailboxName,
        to: &MailboxName,
    ) -> Option<Completion> {
        if from.is_inbox() {
            if let Some(refusal) = super::limits::depth_refusal(to) {
                return Some(refusal);
            }
            return self.mailbox_count_refusal(1).await;
        }
        let depth = |name: &str| name.split(MailboxName::SEPARATOR).count();
        let mailboxes = match self.service.store.mailboxes(account).await {
            Ok(mailboxes) => mailboxes,
            Err(error) => return Some(store_failure(&error)),
        };
        let deepest_below = mailboxes
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| {
                *n == from.as_str()
                    || n.strip_prefix(from.as_str())
                        .is_some_and(|rest| rest.starts_with(MailboxName::SEPARATOR))
            })
            .map(depth)
            .max()
            .unwrap_or_else(|| depth(from.as_str()));
        let new_depth = deepest_below - depth(from.as_str()) + depth(to.as_str());
        (new_depth > super::limits::MAX_DEPTH)
            .then(|| Completion::no("Mailbox hierarchy too deep").with_code(Code::Limit))
    }

    pub(super) async fn subscribe(&mut self, name: &MailboxName, on: bool) -> Completion {
        let Some(account) = self.account_id() else {
            return Completion::bad("Not logged in");
        };
        match self.service.store.set_subscribed(account, name, on).await {
            Ok(()) if on => Completion::ok("SUBSCRIBE completed"),
            Ok(()) => Completion::ok("UNSUBSCRIBE completed"),
            Err(error) => store_failure(&error),
        }
    }

    pub(super) async fn status(&mut self, name: &MailboxName, items: &[StatusItem]) -> Completion {
        let Some(account) = self.account_id() else {
            return Completion::bad("Not logged in");
        };
        let mailbox = match self.service.store.mailbox(account, name).await {
            Ok(Some(mailbox)) => mailbox,
            Ok(None) => return Completion::no("No such mailbox").with_code(Code::NonExistent),
            Err(error) => return store_failure(&error),
        };
        match self.status_values(&mailbox, items).await {
            Ok(values) => {
                self.core.send(&Response::MailboxStatus {
                    name: mailbox.name.as_str().to_string(),
                    items: values,
                });
                Completion::ok("STATUS completed")
            }
            Err(error) => store_failure(&error),
        }
    }

    /// The values of STATUS items for one mailbox (also for LIST-STATUS).
    pub(super) async fn status_values(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> StoreResult<Vec<(StatusItem, u64)>> {
        let needs_messages = items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Messages
                    | StatusItem::Unseen
                    | StatusItem::Deleted
                    | StatusItem::Size
                    | StatusItem::DeletedStorage
                    | StatusItem::HighestModSeq
            )
        });
        let messages = if needs_messages {
            self.service.store.messages(mailbox.id).await?
        } else {
            Vec::new()
        };
        let deleted = || messages.iter().filter(|m| has_flag(&m.flags, "\\Deleted"));
        let append_limit = self.core.config().limits.max_append;
        let mut values = Vec::with_capacity(items.len());
        for &item in items {
            let value = match item {
                StatusItem::Messages => messages.len() as u64,
                // RFC 3501 §6.3.10: no session here ever sees \Recent.
                StatusItem::Recent => 0,
                StatusItem::UidNext => u64::from(mailbox.uid_next.0),
                StatusItem::UidValidity => u64::from(mailbox.uid_validity),
                StatusItem::Unseen => messages
                    .iter()
                    .filter(|m| !has_flag(&m.flags, "\\Seen"))
                    .count() as u64,
                StatusItem::Deleted => deleted().count() as u64,
                StatusItem::Size => messages.iter().map(|m| m.size).sum(),
                StatusItem::HighestModSeq => messages
                    .iter()
                    .map(|m| m.modseq.0)
                    .max()
                    .unwrap_or(0)
                    .max(mailbox.highest_modseq.0),
                StatusItem::AppendLimit => append_limit,
                StatusItem::DeletedStorage => deleted().map(|m| m.size).sum(),
            };
            values.push((item, value));
        }
        Ok(values)
    }

    /// RFC 9051 §6.3.10: one personal namespace, no prefix, `/` as the delimiter.
    pub(super) fn namespace(&mut self) -> Completion {
        self.core.send(&Response::Namespace {
            personal: vec![(String::new(), '/')],
            other: Vec::new(),
            shared: Vec::new(),
        });
        Completion::ok("NAMESPACE completed")
    }
}
