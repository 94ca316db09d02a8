//! The Sent copy of a submission: one more target of the same commit (same blob), and a note
//! in the record the IMAP service reads to recognise the client's own copy.

use sealpost_store::submissions::{self, SentCopy};
use sealpost_store::{Mailbox, StoreError};
use sealpost_types::{AccountId, MailboxId, ModSeq, SpecialUse, Uid};

use super::PortRole;
use super::session::Session;

/// RFC 9051 §2.3.2: the submitter has seen what they sent.
const SEEN: &str = "\\Seen";

/// Where a submission's Sent copy goes.
pub(super) struct SentTarget {
    account: AccountId,
    mailbox: Mailbox,
    /// As [`submissions::message_id`] reads it (the service adds one when missing).
    message_id: Option<String>,
}

impl SentTarget {
    /// The target for `accept_message`: the Sent mailbox with \Seen.
    pub(super) fn target(&self) -> (MailboxId, Vec<String>) {
        (self.mailbox.id, vec![SEEN.to_string()])
    }

    /// Notes the copy once it is committed, given the UIDs the commit gave.
    pub(super) fn committed(&self, session: &Session<'_>, delivered: &[(MailboxId, Uid, ModSeq)]) {
        let (Some(record), Some(message_id)) = (&session.service.sent_copies, &self.message_id)
        else {
            return;
        };
        if let Some((_, uid, modseq)) = delivered.iter().find(|(id, ..)| *id == self.mailbox.id) {
            record.record(
                self.account,
                message_id,
                SentCopy {
                    mailbox: self.mailbox.id,
                    uid_validity: self.mailbox.uid_validity,
                    uid: *uid,
                    modseq: *modseq,
                },
            );
        }
    }
}

impl Session<'_> {
    /// The Sent copy this message gets: on submission, when the service files copies and the
    /// user has a Sent mailbox (RFC 6154 \Sent; one deleted or renamed away gets nothing).
    pub(super) async fn sent_target(
        &mut self,
        raw: &[u8],
    ) -> Result<Option<SentTarget>, StoreError> {
        if self.role != PortRole::Submission || self.service.sent_copies.is_none() {
            return Ok(None);
        }
        let Some(account) = self.account.as_ref().map(|account| account.id) else {
            return Ok(None);
        };
        let Some(mailbox) = self
            .service
            .store
            .mailbox_by_special_use(account, SpecialUse::Sent)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(SentTarget {
            account,
            mailbox,
            message_id: submissions::message_id(raw),
        }))
    }
}
