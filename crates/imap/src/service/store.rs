//! STORE and UID STORE (RFC 9051 §6.4.6, §6.4.9) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

use std::collections::HashSet;

use sealpost_store::FlagOp;
use sealpost_types::{ModSeq, Uid};

use super::selected::flags_of;
use super::session::{Session, store_failure};
use crate::core::{Code, Completion, FetchItem, Flag, Response, SequenceSet, StoreMode};

pub(super) struct StoreRequest {
    pub(super) uid: bool,
    pub(super) set: SequenceSet,
    pub(super) unchanged_since: Option<u64>,
    pub(super) mode: StoreMode,
    pub(super) silent: bool,
    pub(super) flags: Vec<Flag>,
}

impl Session<'_> {
    pub(super) async fn store_flags(&mut self, request: StoreRequest) -> Completion {
        let Some(selected) = self.selected.as_ref() else {
            return Completion::bad("No mailbox selected");
        };
        // RFC 9051 §6.3.3: nothing changes in a mailbox selected with EXAMINE.
        if selected.read_only {
            return Completion::no("Mailbox is read-only").with_code(Code::ReadOnly);
        }
        let Some(numbers) =
            selected.resolve_with(&request.set, request.uid, self.saved_search.as_deref())
        else {
            return Completion::bad("Invalid message number");
        };
        let mailbox = selected.mailbox.id;
        let targets: Vec<(u32, Uid, ModSeq)> = numbers
            .iter()
            .filter_map(|&seq| selected.get(seq).map(|m| (seq, m.uid, m.modseq)))
            .collect();
        let uids: Vec<Uid> = targets.iter().map(|t| t.1).collect();
        // RFC 3501 §2.3.2: \Recent cannot be set or cleared by a client.
        let flags: Vec<String> = request
            .flags
            .iter()
            .filter(|f| **f != Flag::Recent)
            .map(|f| f.as_str().to_string())
            .collect();
        let op = match request.mode {
            StoreMode::Replace => FlagOp::Replace,
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
        };
        // SECURITY-TESTS IM-18: keywords per mailbox are bounded (counted only when the
        // command sets one: system flags never need the scan of the mailbox).
        if op != FlagOp::Remove
            && flags.iter().any(|f| super::limits::is_keyword(f))
            && let Some(refusal) = super::limits::keyword_refusal(
                &super::limits::keywords_in(&selected.messages),
                &flags,
            )
        {
            return refusal;
        }
        let unchanged_since = request.unchanged_since.map(ModSeq);
        let changed = match self
            .service
            .store
            .store_flags(mailbox, &uids, op, &flags, unchanged_since)
            .await
        {
            Ok(changed) => changed,
            Err(error) => return store_failure(&error),
        };
        let changed_uids: HashSet<Uid> = changed.iter().map(|m| m.uid).collect();
        for meta in &changed {
            self.update_snapshot(meta);
        }
        // RFC 7162 §3.1.3: messages whose MODSEQ is above UNCHANGEDSINCE fail the test
        // and are named in [MODIFIED ...].
        let failed: Vec<(u32, Uid)> = match unchanged_since {
            Some(since) => targets
                .iter()
                .filter(|(_, uid, modseq)| !changed_uids.contains(uid) && *modseq > since)
                .map(|(seq, uid, _)| (*seq, *uid))
                .collect(),
            None => Vec::new(),
        };
        let condstore = self.core.session().enabled.condstore;
        for (seq, uid, _) in &targets {
            if failed.iter().any(|(_, f)| f == uid) {
                continue;
            }
            let Some(meta) = self.selected.as_ref().and_then(|s| s.get(*seq)).cloned() else {
                continue;
            };
            let mut items = Vec::new();
            if !request.silent {
                // RFC 9051 §6.4.6: the new flags of each message.
                items.push(FetchItem::Flags(flags_of(&meta)));
            } else if !(condstore && changed_uids.contains(uid)) {
                continue;
            }
            if request.uid {
                items.push(FetchItem::Uid(meta.uid.0));
            }
            // RFC 7162 §3.1.3: MODSEQ in every FETCH once CONDSTORE is on, and even with
            // .SILENT for the messages that changed.
            if condstore {
                items.push(FetchItem::ModSeq(meta.modseq.0));
            }
            self.core.send(&Response::Fetch { seq: *seq, items });
        }
        if !failed.is_empty() {
            let numbers = failed
                .iter()
                .map(|(seq, uid)| if request.uid { uid.0 } else { *seq });
            return Completion::ok("Conditional STORE failed for some messages")
                .with_code(Code::Modified(SequenceSet::from_numbers(numbers)));
        }
        Completion::ok("STORE completed")
    }
}
