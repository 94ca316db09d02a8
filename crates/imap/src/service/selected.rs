//! The selected mailbox: the message-number ↔ UID map this session shows the client.
//!
//! RFC 9051 §7.5.1 / §7.4.1: message numbers only change when the server says so
//! (EXPUNGE, EXISTS). The map is a snapshot taken at SELECT and refreshed only at the
//! moments RFC 9051 §7 allows: after a command other than FETCH, STORE and SEARCH
//! completes its own data, and at once during IDLE. Between those moments other
//! sessions' changes wait in the store; this session keeps showing its snapshot.

use sealpost_store::{ChangeEvent, Mailbox, MailboxChanges, MessageMeta};
use sealpost_types::{MailboxId, ModSeq, Uid};
use tokio::sync::broadcast::error::TryRecvError;

use super::session::Session;
use crate::core::{FetchItem, Flag, Response, SequenceSet};

pub(super) struct Selected {
    pub(super) mailbox: Mailbox,
    pub(super) read_only: bool,
    /// Messages in message-number order (= UID order): index `n - 1` is message `n`.
    pub(super) messages: Vec<MessageMeta>,
    /// The store's changes up to this MODSEQ are merged into `messages` (and announced).
    /// Only merging advances it, never this session's own changes: another session's
    /// change with a lower MODSEQ may still wait to be announced.
    pub(super) synced: ModSeq,
}

impl Selected {
    pub(super) fn exists(&self) -> u32 {
        u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn largest_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid.0)
    }

    /// The message number of a UID in the snapshot.
    pub(super) fn seq_of(&self, uid: Uid) -> Option<u32> {
        let index = self.messages.binary_search_by_key(&uid, |m| m.uid).ok()?;
        u32::try_from(index).ok()?.checked_add(1)
    }

    pub(super) fn get(&self, seq: u32) -> Option<&MessageMeta> {
        let index = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.messages.get(index)
    }

    /// The message numbers a set names: UIDs (`uid`) or message numbers. `None` when a
    /// message number above the mailbox size is named (RFC 9051 §6.4: invalid, BAD).
    /// A UID set may name UIDs that do not exist; they are ignored (RFC 9051 §6.4.9).
    /// The message numbers a set names: UIDs (`uid`) or message numbers, plus the
    /// SEARCHRES result `$` stands for (RFC 5182 §2.1: an empty set when nothing was
    /// saved; its messages since expunged are left out). `None` when a message number
    /// above the mailbox size is named (RFC 9051 §6.4: invalid, BAD). A UID set may name
    /// UIDs that do not exist; they are ignored (RFC 9051 §6.4.9).
    pub(super) fn resolve_with(
        &self,
        set: &SequenceSet,
        uid: bool,
        saved: Option<&[Uid]>,
    ) -> Option<Vec<u32>> {
        let mut numbers = self.resolve_ranges(set, uid)?;
        if set.saved {
            numbers.extend(
                saved
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|&u| self.seq_of(u)),
            );
            numbers.sort_unstable();
            numbers.dedup();
        }
        Some(numbers)
    }

    fn resolve_ranges(&self, set: &SequenceSet, uid: bool) -> Option<Vec<u32>> {
        if set.ranges.is_empty() {
            return Some(Vec::new());
        }
        if uid {
            let largest = self.largest_uid();
            let ranges = set.normalized(largest);
            let mut out = Vec::new();
            for (index, meta) in self.messages.iter().enumerate() {
                let in_set = ranges
                    .iter()
                    .any(|&(low, high)| (low..=high).contains(&meta.uid.0));
                if in_set {
                    out.push(u32::try_from(index).ok()?.checked_add(1)?);
                }
            }
            return Some(out);
        }
        let exists = self.exists();
        if set.max_value(exists) > exists || (exists == 0 && !set.is_empty()) {
            return None;
        }
        Some(set.iter_existing(exists).collect())
    }

    /// Merges what changed in the store since [`Selected::synced`] and returns the untagged
    /// responses that tell the client: EXPUNGE for each vanished message (highest number
    /// first, so each number is valid when it is sent: RFC 9051 §7.5.1) or one VANISHED
    /// under QRESYNC (RFC 7162 §3.2.10), FETCH FLAGS for changed flags, then EXISTS when
    /// messages arrived (RFC 9051 §7.4.1). This session's own changes come back too and
    /// say nothing: the snapshot holds them already.
    pub(super) fn merge(&mut self, changes: MailboxChanges, mode: UpdateMode) -> Vec<Response> {
        let mut out = Vec::new();
        let mut vanished = Vec::new();
        let mut gone: Vec<usize> = changes
            .expunged
            .iter()
            .filter_map(|&uid| self.messages.binary_search_by_key(&uid, |m| m.uid).ok())
            .collect();
        gone.sort_unstable_by(|a, b| b.cmp(a));
        for index in gone {
            let meta = self.messages.remove(index);
            vanished.push(meta.uid.0);
            if !mode.qresync {
                let seq = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
                out.push(Response::Expunge(seq));
            }
        }
        if mode.qresync && !vanished.is_empty() {
            vanished.sort_unstable();
            out.push(Response::Vanished {
                earlier: false,
                uids: SequenceSet::from_numbers(vanished),
            });
        }
        let mut grew = false;
        for meta in changes.changed {
            match self.messages.binary_search_by_key(&meta.uid, |m| m.uid) {
                Ok(index) => {
                    let Some(slot) = self.messages.get_mut(index) else {
                        continue;
                    };
                    let flags_changed = slot.flags != meta.flags;
                    *slot = meta;
                    if flags_changed {
                        let seq = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
                        out.push(flags_update(seq, slot, mode));
                    }
                }
                // RFC 9051 §2.3.1.1: new messages have higher UIDs than any before; a
                // lower unknown UID was expunged by this session meanwhile.
                Err(index) if index == self.messages.len() => {
                    self.messages.push(meta);
                    grew = true;
                }
                Err(_) => {}
            }
        }
        if grew {
            out.push(Response::Exists(self.exists()));
        }
        self.synced = self.synced.max(changes.highest_modseq);
        self.mailbox.highest_modseq = self.mailbox.highest_modseq.max(changes.highest_modseq);
        out
    }
}

/// How updates are written for this session.
#[derive(Debug, Clone, Copy)]
pub(super) struct UpdateMode {
    pub(super) condstore: bool,
    pub(super) qresync: bool,
    pub(super) rev2: bool,
}

/// Whether a change event may change what the client of `mailbox` sees.
pub(super) fn concerns(event: &ChangeEvent, mailbox: MailboxId) -> bool {
    match event {
        ChangeEvent::MessagesAdded { mailbox: m }
        | ChangeEvent::FlagsChanged { mailbox: m }
        | ChangeEvent::MessagesExpunged { mailbox: m } => *m == mailbox,
        // Renames and deletions of other mailboxes do not touch the selected one's
        // messages; a deleted selected mailbox shows up as expunges on the next look.
        ChangeEvent::MailboxesChanged => false,
    }
}

/// The store's flag strings as IMAP flags (unparseable ones dropped).
pub(super) fn flags_of(meta: &MessageMeta) -> Vec<Flag> {
    let mut flags: Vec<Flag> = meta.flags.iter().filter_map(|f| Flag::parse(f)).collect();
    // System flags first, then keywords (the store keeps them sorted as strings).
    flags.sort();
    flags
}

/// `* n FETCH (FLAGS (...) UID u [MODSEQ (m)])`: RFC 9051 §7.5.2 unsolicited flag
/// updates carry the UID; RFC 7162 §3.2.4 wants MODSEQ once CONDSTORE is enabled.
pub(super) fn flags_update(seq: u32, meta: &MessageMeta, mode: UpdateMode) -> Response {
    let mut items = vec![FetchItem::Flags(flags_of(meta))];
    if mode.rev2 || mode.condstore {
        items.push(FetchItem::Uid(meta.uid.0));
    }
    if mode.condstore {
        items.push(FetchItem::ModSeq(meta.modseq.0));
    }
    Response::Fetch { seq, items }
}

impl Session<'_> {
    pub(super) fn update_mode(&self) -> UpdateMode {
        let enabled = self.core.session().enabled;
        UpdateMode {
            condstore: enabled.condstore,
            qresync: enabled.qresync,
            rev2: enabled.imap4rev2,
        }
    }

    /// Sends the changes other sessions made to the selected mailbox (at an allowed
    /// moment). `force`: look even when no change event concerning it arrived (NOOP
    /// polls, IDLE wake-ups).
    pub(super) async fn announce(&mut self, force: bool) {
        let Some(mailbox) = self.selected.as_ref().map(|s| s.mailbox.id) else {
            return;
        };
        let mut changed = force;
        if let Some(receiver) = self.changes.as_mut() {
            loop {
                match receiver.try_recv() {
                    Ok(event) => changed |= concerns(&event, mailbox),
                    Err(TryRecvError::Lagged(_)) => changed = true,
                    Err(_) => break,
                }
            }
        } else {
            // No broadcast (it ended): look every time.
            changed = true;
        }
        if !changed {
            return;
        }

        let Some(since) = self.selected.as_ref().map(|s| s.synced) else {
            return;
        };
        let changes = match self.service.store.changes_since(mailbox, since).await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(%error, "cannot refresh the selected mailbox");
                return;
            }
        };
        let mode = self.update_mode();
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        let responses = selected.merge(changes, mode);
        for response in &responses {
            self.core.send(response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealpost_types::{AccountId, BlobId, MailboxName, ModSeq};

    fn meta(uid: u32, modseq: u64, flags: &[&str]) -> MessageMeta {
        MessageMeta {
            mailbox: MailboxId(1),
            uid: Uid(uid),
            modseq: ModSeq(modseq),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internal_date: 0,
            size: 10,
            blob: BlobId([0; 32]),
        }
    }

    fn selected(uids: &[u32]) -> Selected {
        Selected {
            mailbox: Mailbox {
                id: MailboxId(1),
                account: AccountId(1),
                name: MailboxName::inbox(),
                special_use: None,
                uid_validity: 7,
                uid_next: Uid(100),
                highest_modseq: ModSeq(1),
                subscribed: true,
            },
            read_only: false,
            messages: uids.iter().map(|&u| meta(u, 1, &[])).collect(),
            synced: ModSeq(1),
        }
    }

    fn changes(changed: Vec<MessageMeta>, expunged: &[u32], highest: u64) -> MailboxChanges {
        MailboxChanges {
            changed,
            expunged: expunged.iter().map(|&u| Uid(u)).collect(),
            highest_modseq: ModSeq(highest),
        }
    }

    const PLAIN: UpdateMode = UpdateMode {
        condstore: false,
        qresync: false,
        rev2: false,
    };

    #[test]
    fn expunges_go_highest_first_then_flags_then_exists() {
        let mut s = selected(&[1, 2, 3, 4]);
        let delta = changes(vec![meta(4, 5, &["\\Seen"]), meta(9, 6, &[])], &[1, 3], 7);
        let out = s.merge(delta, PLAIN);
        assert_eq!(
            out,
            vec![
                // RFC 9051 §7.5.1: each number valid when sent.
                Response::Expunge(3),
                Response::Expunge(1),
                // Message 4 is now number 2.
                Response::Fetch {
                    seq: 2,
                    items: vec![FetchItem::Flags(vec![Flag::Seen])]
                },
                Response::Exists(3),
            ]
        );
        assert_eq!(s.seq_of(Uid(9)), Some(3));
        assert_eq!(s.mailbox.highest_modseq, ModSeq(7));
        assert_eq!(s.synced, ModSeq(7));
    }

    #[test]
    fn qresync_sends_one_vanished_and_condstore_modseq() {
        let mut s = selected(&[1, 2, 3]);
        let mode = UpdateMode {
            condstore: true,
            qresync: true,
            rev2: true,
        };
        let out = s.merge(changes(vec![meta(2, 4, &["\\Flagged"])], &[3, 1], 6), mode);
        assert_eq!(
            out,
            vec![
                Response::Vanished {
                    earlier: false,
                    uids: SequenceSet::from_numbers([1, 3]),
                },
                Response::Fetch {
                    seq: 1,
                    items: vec![
                        FetchItem::Flags(vec![Flag::Flagged]),
                        FetchItem::Uid(2),
                        FetchItem::ModSeq(4),
                    ]
                },
            ]
        );
    }

    #[test]
    fn nothing_changed_says_nothing() {
        let mut s = selected(&[1, 2]);
        assert!(s.merge(changes(Vec::new(), &[], 1), PLAIN).is_empty());
        // This session's own STORE and EXPUNGE come back from the store: no news.
        s.messages[0].flags = vec!["\\Seen".to_string()];
        s.messages[0].modseq = ModSeq(2);
        s.messages.remove(1);
        let own = changes(vec![meta(1, 2, &["\\Seen"])], &[2], 3);
        assert!(s.merge(own, PLAIN).is_empty());
        assert_eq!(s.synced, ModSeq(3));
    }

    #[test]
    fn resolve_sets() {
        let s = selected(&[3, 5, 8]);
        let set = |text: &str| {
            let mut ranges = Vec::new();
            for part in text.split(',') {
                let (a, b) = part.split_once(':').unwrap_or((part, part));
                let num = |t: &str| match t {
                    "*" => crate::core::SeqNum::Last,
                    n => crate::core::SeqNum::Value(n.parse().unwrap()),
                };
                ranges.push(crate::core::SeqRange {
                    start: num(a),
                    end: num(b),
                });
            }
            SequenceSet {
                ranges,
                saved: false,
            }
        };
        assert_eq!(s.resolve_with(&set("2:*"), false, None), Some(vec![2, 3]));
        // RFC 9051 §6.4: a number above the mailbox size is invalid.
        assert_eq!(s.resolve_with(&set("4"), false, None), None);
        // UIDs that do not exist are ignored; `*` is the largest UID.
        assert_eq!(s.resolve_with(&set("4:7,*"), true, None), Some(vec![2, 3]));
        let mut saved = set("1");
        saved.saved = true;
        assert_eq!(
            s.resolve_with(&saved, false, Some(&[Uid(8), Uid(42)])),
            Some(vec![1, 3])
        );
    }
}
