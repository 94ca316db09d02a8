//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8, RFC 6851), with COPYUID
//! (RFC 4315 §3).

use sealpost_types::{MailboxName, Uid};

use super::session::{Session, store_failure};
use crate::core::{Code, Completion, Response, SequenceSet, Status};

impl Session<'_> {
    pub(super) async fn copy_move(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        destination: &MailboxName,
        is_move: bool,
    ) -> Completion {
        let Some(selected) = self.selected.as_ref() else {
            return Completion::bad("No mailbox selected");
        };
        // RFC 6851 §3.3: MOVE expunges, which a read-only mailbox does not allow.
        if is_move && selected.read_only {
            return Completion::no("Mailbox is read-only").with_code(Code::ReadOnly);
        }
        let Some(numbers) = selected.resolve_with(set, uid, self.saved_search.as_deref()) else {
            return Completion::bad("Invalid message number");
        };
        let source = selected.mailbox.id;
        let uids: Vec<Uid> = numbers
            .iter()
            .filter_map(|&seq| selected.get(seq).map(|m| m.uid))
            .collect();
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        let target = match self.service.store.mailbox(account, destination).await {
            Ok(Some(target)) => target,
            // RFC 9051 §6.4.7: TRYCREATE when the destination does not exist.
            Ok(None) => return Completion::no("No such mailbox").with_code(Code::TryCreate),
            Err(error) => return store_failure(&error),
        };
        let done = if is_move {
            "MOVE completed"
        } else {
            "COPY completed"
        };
        if uids.is_empty() {
            // RFC 9051 §6.4.9: a UID set naming no message is not an error.
            return Completion::ok(done);
        }
        // RFC 9208 §4.2.1: a COPY that would exceed the quota fails (a MOVE frees what
        // it adds, so it is not refused).
        if !is_move {
            let octets = numbers
                .iter()
                .filter_map(|&seq| self.selected.as_ref()?.get(seq).map(|m| m.size))
                .sum();
            if let Some(refusal) = self.over_quota(octets).await {
                return refusal;
            }
        }
        // RFC 6851 §3.3: MOVE is atomic: one store change moves them all.
        let moved = if is_move {
            self.service
                .store
                .move_messages(source, &uids, target.id)
                .await
        } else {
            self.service
                .store
                .copy_messages(source, &uids, target.id)
                .await
        };
        let pairs = match moved {
            Ok(pairs) => pairs,
            Err(error) => return store_failure(&error),
        };
        let code = (!pairs.is_empty()).then(|| Code::CopyUid {
            uid_validity: target.uid_validity,
            source: SequenceSet::from_numbers(pairs.iter().map(|p| p.0.0)),
            destination: SequenceSet::from_numbers(pairs.iter().map(|p| p.1.0)),
        });
        if !is_move {
            let completion = Completion::ok(done);
            return match code {
                Some(code) => completion.with_code(code),
                None => completion,
            };
        }
        // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
        if let Some(code) = code {
            self.core.send(&Response::Status {
                status: Status::Ok,
                code: Some(code),
                text: "Moved".to_string(),
            });
        }
        let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
        self.remove_expunged(&moved);
        Completion::ok(done)
    }
}
