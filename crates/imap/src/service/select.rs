//! SELECT / EXAMINE (RFC 9051 §6.3.2–§6.3.3, RFC 7162 CONDSTORE/QRESYNC), CLOSE
//! (§6.4.1) and UNSELECT (§6.3.4 in RFC 9051, RFC 3691).

use sealpost_types::{MailboxName, ModSeq};
use tokio::sync::broadcast::error::TryRecvError;

use super::selected::{Selected, flags_update};
use super::session::{Session, store_failure};
use crate::core::{Code, Completion, Flag, QResync, Response, SequenceSet, Status, Transition};

/// The flags every mailbox shows (RFC 9051 §7.3.5 FLAGS).
fn system_flags() -> Vec<Flag> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

impl Session<'_> {
    pub(super) async fn select(
        &mut self,
        name: &MailboxName,
        read_only: bool,
        condstore: bool,
        qresync: Option<QResync>,
    ) -> Completion {
        // RFC 9051 §6.3.2: selecting closes the mailbox selected before, even when the
        // new SELECT fails; RFC 7162 §3.2.11 announces that with OK [CLOSED].
        let was_selected = self.selected.take().is_some();
        // RFC 5182 §2.1: the saved search result does not survive a SELECT.
        self.saved_search = None;
        if was_selected {
            self.core.send(&Response::Status {
                status: Status::Ok,
                code: Some(Code::Closed),
                text: "Previous mailbox closed".to_string(),
            });
        }
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        // Drop change events from before the snapshot (read below): it holds their effect.
        if let Some(receiver) = self.changes.as_mut() {
            while !matches!(
                receiver.try_recv(),
                Err(TryRecvError::Empty | TryRecvError::Closed)
            ) {}
        }
        let store = &self.service.store;
        let mailbox = match store.mailbox(account, name).await {
            Ok(Some(mailbox)) => mailbox,
            Ok(None) => {
                return Completion::no("No such mailbox")
                    .with_code(Code::NonExistent)
                    .with_transition(Transition::Unselected);
            }
            Err(error) => return store_failure(&error).with_transition(Transition::Unselected),
        };
        let messages = match store.messages(mailbox.id).await {
            Ok(messages) => messages,
            Err(error) => return store_failure(&error).with_transition(Transition::Unselected),
        };
        // Read before the messages: a change landing between the two reads is merged
        // again later, which is harmless; the other order could miss it.
        let synced = mailbox.highest_modseq;
        let mut selected = Selected {
            mailbox,
            read_only,
            messages,
            synced,
        };
        if let Some(highest) = selected.messages.iter().map(|m| m.modseq).max() {
            selected.mailbox.highest_modseq = selected.mailbox.highest_modseq.max(highest);
        }
        self.send_select_data(&selected, condstore);
        // RFC 9051 §6.3.2: IMAP4rev2 requires a LIST response with the mailbox's name
        // and accurate attributes.
        if self.core.session().enabled.imap4rev2 {
            let attributes = match store.mailboxes(account).await {
                Ok(all) => super::list::mailbox_attributes(&all, &selected.mailbox),
                Err(error) => {
                    return store_failure(&error).with_transition(Transition::Unselected);
                }
            };
            self.core.send(&Response::List(crate::core::ListItem {
                attributes,
                name: selected.mailbox.name.to_string(),
                child_info_subscribed: false,
            }));
        }
        if let Some(qresync) = qresync {
            self.qresync(&selected, &qresync).await;
        }
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        self.selected = Some(selected);
        Completion::ok(if read_only {
            "EXAMINE completed"
        } else {
            "SELECT completed"
        })
        .with_code(code)
        .with_transition(Transition::Selected { read_only })
    }

    /// RFC 9051 §6.3.2: FLAGS, EXISTS, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT (and for
    /// IMAP4rev1 RECENT and UNSEEN, RFC 3501 §6.3.1; HIGHESTMODSEQ per RFC 7162 §3.1.2.1).
    fn send_select_data(&mut self, selected: &Selected, condstore: bool) {
        let session = self.core.session().clone();
        let rev2 = session.enabled.imap4rev2;
        let ok = |code: Code, text: &str| Response::Status {
            status: Status::Ok,
            code: Some(code),
            text: text.to_string(),
        };
        self.core.send(&Response::Flags(system_flags()));
        self.core.send(&Response::Exists(selected.exists()));
        if !rev2 {
            // RFC 3501 §7.3.2: no session here ever gets \Recent.
            self.core.send(&Response::Recent(0));
            let first_unseen = selected
                .messages
                .iter()
                .position(|m| !m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")));
            if let Some(index) = first_unseen {
                let seq = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
                self.core.send(&ok(Code::Unseen(seq), "First unseen"));
            }
        }
        let permanent = if selected.read_only {
            Vec::new()
        } else {
            system_flags()
        };
        // RFC 9051 §7.1: `\*` only while new keywords can still be created.
        let room =
            super::limits::keywords_in(&selected.messages).len() < super::limits::MAX_KEYWORDS;
        self.core.send(&ok(
            Code::PermanentFlags {
                flags: permanent,
                new_keywords: !selected.read_only && room,
            },
            "Flags permitted",
        ));
        self.core.send(&ok(
            Code::UidValidity(selected.mailbox.uid_validity),
            "UIDs valid",
        ));
        self.core.send(&ok(
            Code::UidNext(selected.mailbox.uid_next.0),
            "Predicted next UID",
        ));
        if condstore || session.enabled.condstore {
            // RFC 7162 §3.1.2.1.
            self.core.send(&ok(
                Code::HighestModSeq(selected.mailbox.highest_modseq.0),
                "Highest",
            ));
        }
    }

    /// RFC 7162 §3.2.5.2: with a matching UIDVALIDITY, VANISHED (EARLIER) for UIDs
    /// expunged since the client's MODSEQ, then FETCH for messages changed since.
    async fn qresync(&mut self, selected: &Selected, qresync: &QResync) {
        if qresync.uid_validity.get() != selected.mailbox.uid_validity {
            return;
        }
        let since = ModSeq(qresync.modseq);
        let largest = selected.largest_uid();
        let known = |uid: u32| {
            qresync
                .known_uids
                .as_ref()
                .is_none_or(|set| set.contains(uid, largest))
        };
        match self
            .service
            .store
            .expunged_since(selected.mailbox.id, since)
            .await
        {
            Ok(uids) => {
                let uids: Vec<u32> = uids
                    .into_iter()
                    .map(|u| u.0)
                    .filter(|&u| known(u))
                    .collect();
                if !uids.is_empty() {
                    self.core.send(&Response::Vanished {
                        earlier: true,
                        uids: SequenceSet::from_numbers(uids),
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "QRESYNC: expunge log unavailable"),
        }
        let mode = self.update_mode();
        for (index, meta) in selected.messages.iter().enumerate() {
            if meta.modseq > since && known(meta.uid.0) {
                let seq = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
                let mut update = flags_update(seq, meta, mode);
                if let Response::Fetch { items, .. } = &mut update {
                    // RFC 7162 §3.2.5.2: UID and MODSEQ are always included here.
                    items.retain(|i| matches!(i, crate::core::FetchItem::Flags(_)));
                    items.push(crate::core::FetchItem::Uid(meta.uid.0));
                    items.push(crate::core::FetchItem::ModSeq(meta.modseq.0));
                }
                self.core.send(&update);
            }
        }
    }

    /// RFC 9051 §6.4.1: CLOSE silently expunges `\Deleted` messages (unless read-only)
    /// and returns to the authenticated state without EXPUNGE responses.
    pub(super) async fn close(&mut self) -> Completion {
        let Some(selected) = self.selected.take() else {
            return Completion::bad("No mailbox selected");
        };
        if !selected.read_only {
            let deleted: Vec<_> = selected
                .messages
                .iter()
                .filter(|m| m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")))
                .map(|m| m.uid)
                .collect();
            if !deleted.is_empty()
                && let Err(error) = self
                    .service
                    .store
                    .expunge(selected.mailbox.id, &deleted)
                    .await
            {
                return store_failure(&error).with_transition(Transition::Unselected);
            }
        }
        Completion::ok("CLOSE completed").with_transition(Transition::Unselected)
    }

    /// RFC 9051 §6.4.2: UNSELECT leaves without expunging.
    pub(super) fn unselect(&mut self) -> Completion {
        if self.selected.take().is_none() {
            return Completion::bad("No mailbox selected");
        }
        Completion::ok("UNSELECT completed").with_transition(Transition::Unselected)
    }
}
