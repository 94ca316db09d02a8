//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 9051 §6.4.9, RFC 4315 §2.1).

use sealpost_types::Uid;

use super::session::{Session, store_failure};
use crate::core::{Code, Completion, Response, SequenceSet};

impl Session<'_> {
    pub(super) async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Completion {
        let Some(selected) = self.selected.as_ref() else {
            return Completion::bad("No mailbox selected");
        };
        // RFC 9051 §6.3.3: EXAMINE'd mailboxes are read-only.
        if selected.read_only {
            return Completion::no("Mailbox is read-only").with_code(Code::ReadOnly);
        }
        let largest = selected.largest_uid();
        let targets: Vec<Uid> = selected
            .messages
            .iter()
            .filter(|m| m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")))
            // RFC 4315 §2.1: UID EXPUNGE removes only the \Deleted messages of its set.
            .filter(|m| uids.is_none_or(|set| set.contains(m.uid.0, largest)))
            .map(|m| m.uid)
            .collect();
        let mailbox = selected.mailbox.id;
        if !targets.is_empty() {
            match self.service.store.expunge(mailbox, &targets).await {
                Ok(removed) => self.remove_expunged(&removed),
                Err(error) => return store_failure(&error),
            }
        }
        Completion::ok("EXPUNGE completed")
    }

    /// Removes our own expunged messages from the snapshot and tells the client:
    /// EXPUNGE per message, highest number first (RFC 9051 §7.5.1), or one VANISHED
    /// once QRESYNC is enabled (RFC 7162 §3.2.10).
    pub(super) fn remove_expunged(&mut self, removed: &[Uid]) {
        let qresync = self.core.session().enabled.qresync;
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        let mut numbers: Vec<u32> = removed.iter().filter_map(|&u| selected.seq_of(u)).collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        numbers.dedup();
        let mut responses = Vec::with_capacity(numbers.len());
        for seq in numbers {
            let Some(index) = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1)) else {
                continue;
            };
            if index < selected.messages.len() {
                selected.messages.remove(index);
                if !qresync {
                    responses.push(Response::Expunge(seq));
                }
            }
        }
        if qresync && !removed.is_empty() {
            responses.push(Response::Vanished {
                earlier: false,
                uids: SequenceSet::from_numbers(removed.iter().map(|u| u.0)),
            });
        }
        for response in &responses {
            self.core.send(response);
        }
    }
}
