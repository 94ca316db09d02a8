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
                && mailboxes
                    .iter()
                    .any(|m| m.subscribed && is_below(m.name.as_str(), name));
            // RFC 5258 §3.1: SUBSCRIBED selects subscribed mailboxes only.
            if selection.subscribed && !mailbox.subscribed && !child_info {
                continue;
            }
            // RFC 6154 §5.1: the SPECIAL-USE selection option.
            if selection.special_use && mailbox.special_use.is_none() {
                continue;
            }
            let mut attributes = Vec::new();
            // RFC 5258 §4 / RFC 9051 §7.3.1: \HasChildren or \HasNoChildren.
            attributes.push(if has_children(&mailboxes, name) {
                "\\HasChildren".to_string()
            } else {
                "\\HasNoChildren".to_string()
            });
            if mailbox.subscribed && (selection.subscribed || returns.subscribed) {
                attributes.push("\\Subscribed".to_string());
            }
            // RFC 6154 §2: special-use attributes are returned by every LIST in
            // IMAP4rev2 (RFC 9051 §7.3.1) and with RETURN (SPECIAL-USE).
            if let Some(attribute) = mailbox.special_use.and_then(|u| u.attribute()) {
                attributes.push(attribute.to_string());
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

    /// RFC 3501 §6.3.9: LSUB lists subscribed names.
    pub(super) async fn lsub(&mut self, reference: &str, pattern: &str) -> Completion {
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        let pattern = ListPattern::new(reference, pattern);
        let mailboxes = match self.service.store.mailboxes(account).await {
            Ok(mailboxes) => mailboxes,
            Err(error) => return store_failure(&error),
        };
        for mailbox in mailboxes.iter().filter(|m| m.subscribed) {
            let name = mailbox.name.as_str();
            if pattern.matches(name) {
                self.core.send(&Response::Lsub(ListItem {
                    attributes: Vec::new(),
                    name: name.to_string(),
                    child_info_subscribed: false,
                }));
            }
        }
        Completion::ok("LSUB completed")
    }
}
