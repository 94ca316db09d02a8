//! LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and
//! SPECIAL-USE (RFC 6154), and LSUB (RFC 3501 §6.3.9, IMAP4rev1 only).

use sealpost_store::Mailbox;

use super::session::{Session, store_failure};
use crate::core::{Completion, ListCommand, ListItem, ListPattern, Response};

/// Whether `child` lies below `parent` in the `/` hierarchy.
fn is_below(child: &str, parent: &str) -> bool {
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn has_children(mailboxes: &[Mailbox], name: &str) -> bool {
    mailboxes.iter().any(|m| is_below(m.name.as_str(), name))
}

/// The attributes LIST reports for an existing mailbox (without `\Subscribed`): the child
/// attribute (RFC 5258 §4, RFC 9051 §7.3.1) and the special-use one (RFC 6154 §2).
pub(super) fn mailbox_attributes(mailboxes: &[Mailbox], mailbox: &Mailbox) -> Vec<String> {
    let mut attributes = vec![if has_children(mailboxes, mailbox.name.as_str()) {
        "\\HasChildren".to_string()
    } else {
        "\\HasNoChildren".to_string()
    }];
    if let Some(attribute) = mailbox.special_use.and_then(|u| u.attribute()) {
        attributes.push(attribute.to_string());
    }
    attributes
}

/// The ancestors of a hierarchical name, nearest last (`a/b/c` -> `a`, `a/b`).
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').filter_map(|(at, _)| name.get(..at))
}

impl Session<'_> {
    pub(super) async fn list(&mut self, list: &ListCommand) -> Completion {
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        let patterns: Vec<ListPattern> = list
            .patterns
            .iter()
            .map(|p| ListPattern::new(&list.reference, p))
            .collect();
        // RFC 9051 §6.3.9: `LIST "" ""` asks for the delimiter and the root.
        if !list.extended && patterns.iter().all(ListPattern::is_empty) {
            self.core.send(&Response::List(ListItem {
                attributes: vec!["\\Noselect".to_string()],
                name: String::new(),
                child_info_subscribed: false,
            }));
            return Completion::ok("LIST completed");
        }
        let mailboxes = match self.service.store.mailboxes(account).await {
            Ok(mailboxes) => mailboxes,
            Err(error) => return store_failure(&error),
        };
        let subscriptions = if list.selection.subscribed || list.returns.subscribed {
            match self.service.store.subscriptions(account).await {
                Ok(names) => names,
                Err(error) => return store_failure(&error),
            }
        } else {
            Vec::new()
        };
        let selection = &list.selection;
        let returns = &list.returns;
        for mailbox in &mailboxes {
            let name = mailbox.name.as_str();
            if !patterns.iter().any(|p| p.matches(name)) {
                continue;
            }
            // RFC 5258 §3.5: with RECURSIVEMATCH, a mailbox with a subscribed
            // descendant is reported with CHILDINFO ("SUBSCRIBED").
            let child_info = selection.subscribed
                && selection.recursive_match
                && subscriptions.iter().any(|s| is_below(s.as_str(), name));
            // RFC 5258 §3.1: SUBSCRIBED selects subscribed mailboxes only.
            if selection.subscribed && !mailbox.subscribed && !child_info {
                continue;
            }
            // RFC 6154 §5.1: the SPECIAL-USE selection option (INBOX has no special-use
            // attribute, RFC 6154 §2).
            if selection.special_use && mailbox.special_use.and_then(|u| u.attribute()).is_none() {
                continue;
            }
            // RFC 6154 §2: special-use attributes are returned by every LIST in
            // IMAP4rev2 (RFC 9051 §7.3.1) and with RETURN (SPECIAL-USE).
            let mut attributes = mailbox_attributes(&mailboxes, mailbox);
            if mailbox.subscribed && (selection.subscribed || returns.subscribed) {
                attributes.push("\\Subscribed".to_string());
            }
            self.core.send(&Response::List(ListItem {
                attributes,
                name: name.to_string(),
                child_info_subscribed: child_info,
            }));
            // RFC 5819 §1: STATUS right after the LIST of each selectable mailbox.
            if let Some(items) = &returns.status {
                match self.status_values(mailbox, items).await {
                    Ok(values) => self.core.send(&Response::MailboxStatus {
                        name: name.to_string(),
                        items: values,
                    }),
                    Err(error) => return store_failure(&error),
                }
            }
        }
        if selection.subscribed && !selection.special_use {
            // RFC 5258 §3.1: a subscribed name whose mailbox does not exist is listed
            // `\NonExistent \Subscribed`.
            for name in &subscriptions {
                let exists = mailboxes.iter().any(|m| m.name == *name);
                if !exists && patterns.iter().any(|p| p.matches(name.as_str())) {
                    self.core.send(&Response::List(ListItem {
                        attributes: vec!["\\NonExistent".to_string(), "\\Subscribed".to_string()],
                        name: name.to_string(),
                        child_info_subscribed: false,
                    }));
                }
            }
        }
        if !selection.subscribed && !selection.special_use {
            self.list_missing_parents(&mailboxes, &patterns);
        }
        Completion::ok("LIST completed")
    }

    /// RFC 9051 §6.3.9: levels of hierarchy that are not mailboxes themselves but have
    /// matching children are listed too, as `\NonExistent` (IMAP4rev2, which implies
    /// `\Noselect`) or `\Noselect` (IMAP4rev1, RFC 3501 §6.3.8).
    fn list_missing_parents(&mut self, mailboxes: &[Mailbox], patterns: &[ListPattern]) {
        let mut missing: Vec<&str> = Vec::new();
        for mailbox in mailboxes {
            let name = mailbox.name.as_str();
            for (index, _) in name.match_indices('/') {
                let parent = name.get(..index).unwrap_or_default();
                let exists = mailboxes.iter().any(|m| m.name.as_str() == parent);
                if !exists && !missing.contains(&parent) {
                    missing.push(parent);
                }
            }
        }
        let attribute = if self.core.session().enabled.imap4rev2 {
            "\\NonExistent"
        } else {
            "\\Noselect"
        };
        for parent in missing {
            if patterns.iter().any(|p| p.matches(parent)) {
                self.core.send(&Response::List(ListItem {
                    attributes: vec![attribute.to_string(), "\\HasChildren".to_string()],
                    name: parent.to_string(),
                    child_info_subscribed: false,
                }));
            }
        }
    }

    /// RFC 3501 §6.3.9: LSUB lists subscribed names, existing or not (a gone mailbox's
    /// name is `\Noselect`). A name below a level `%` stops at is answered by that level,
    /// flagged `\Noselect` when it is not subscribed itself ("foo" for a subscribed
    /// "foo/bar" and the pattern "%").
    pub(super) async fn lsub(&mut self, reference: &str, pattern: &str) -> Completion {
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        let pattern = ListPattern::new(reference, pattern);
        let (mailboxes, subscriptions) = match (
            self.service.store.mailboxes(account).await,
            self.service.store.subscriptions(account).await,
        ) {
            (Ok(mailboxes), Ok(subscriptions)) => (mailboxes, subscriptions),
            (Err(error), _) | (_, Err(error)) => return store_failure(&error),
        };
        let mut answers: Vec<(String, bool)> = Vec::new();
        for name in &subscriptions {
            let name = name.as_str();
            if pattern.matches(name) {
                let exists = mailboxes.iter().any(|m| m.name.as_str() == name);
                answers.push((name.to_string(), !exists));
                continue;
            }
            for parent in ancestors(name) {
                let subscribed = subscriptions.iter().any(|s| s.as_str() == parent);
                if !subscribed && pattern.matches(parent) {
                    answers.push((parent.to_string(), true));
                }
            }
        }
        answers.sort();
        answers.dedup();
        for (name, noselect) in answers {
            self.core.send(&Response::Lsub(ListItem {
                attributes: if noselect {
                    vec!["\\Noselect".to_string()]
                } else {
                    Vec::new()
                },
                name,
                child_info_subscribed: false,
            }));
        }
        Completion::ok("LSUB completed")
    }
}
