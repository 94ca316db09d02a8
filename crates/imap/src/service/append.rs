//! APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315 §3).

use std::sync::Arc;

use sealpost_store::submissions::{self, SentCopy};
use sealpost_store::{FlagOp, Mailbox, NewMessage, StoreError};
use sealpost_types::{AccountId, MailboxName, ModSeq};

use super::session::{Session, store_failure};
use crate::core::{AppendMessage, Code, Completion, Flag, SequenceSet};

/// SECURITY-TESTS IM-18: a bare LF becomes CRLF, so the stored message (and what POP3,
/// IMAP and relaying send later) has one line ending (RFC 5322 §2.1).
fn normalize_line_endings(data: Vec<u8>) -> Vec<u8> {
    let bare_lf = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data.get(i - 1) != Some(&b'\r')));
    if !bare_lf {
        return data;
    }
    let mut out = Vec::with_capacity(data.len().saturating_add(data.len() / 32));
    let mut previous = 0u8;
    for byte in data {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Session<'_> {
    pub(super) async fn append(
        &mut self,
        name: &MailboxName,
        messages: Vec<AppendMessage>,
    ) -> Completion {
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        let mailbox = match self.service.store.mailbox(account, name).await {
            Ok(Some(mailbox)) => mailbox,
            // RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
            Ok(None) => return Completion::no("No such mailbox").with_code(Code::TryCreate),
            Err(error) => return store_failure(&error),
        };
        for message in &messages {
            if message.data.is_empty() {
                return Completion::no("Empty message").with_code(Code::Cannot);
            }
            // RFC 3516 §4.4 / SECURITY-TESTS IM-18: NUL only in a literal8.
            if !message.binary && message.data.contains(&0) {
                return Completion::no("NUL in message; use a literal8").with_code(Code::Cannot);
            }
        }
        // SECURITY-TESTS IM-18: keywords per mailbox are bounded.
        let flags: Vec<String> = messages
            .iter()
            .flat_map(|m| m.flags.iter().map(|f| f.as_str().to_string()))
            .collect();
        if flags.iter().any(|f| super::limits::is_keyword(f)) {
            match self.keywords_of(mailbox.id).await {
                Ok(existing) => {
                    if let Some(refusal) = super::limits::keyword_refusal(&existing, &flags) {
                        return refusal;
                    }
                }
                Err(error) => return store_failure(&error),
            }
        }
        // Only a single APPEND is matched against submissions: a MULTIAPPEND's APPENDUID
        // lists its UIDs in ascending order (RFC 4315 §3), which cannot mix copies filed
        // earlier with new ones and still say which is which.
        if let [message] = messages.as_slice() {
            match self
                .filed_at_submission(account, &mailbox, &message.data)
                .await
            {
                Ok(Some(copy)) => return self.report_filed(&mailbox, copy, &message.flags).await,
                Ok(None) => {}
                Err(error) => return store_failure(&error),
            }
        }
        let octets = messages.iter().map(|m| m.data.len() as u64).sum();
        if let Some(refusal) = self.over_quota(octets).await {
            return refusal;
        }
        let messages: Vec<NewMessage> = messages
            .into_iter()
            .map(|message| NewMessage {
                // RFC 9051 §2.3.2: \Recent is never set by a client.
                flags: message
                    .flags
                    .iter()
                    .filter(|f| **f != Flag::Recent)
                    .map(|f| f.as_str().to_string())
                    .collect(),
                internal_date: message.date.map_or_else(now, |d| d.unix()),
                raw: Arc::from(normalize_line_endings(message.data)),
            })
            .collect();
        // RFC 3502 §6.3.11: MULTIAPPEND is atomic; the store commits every message of
        // the command at once or none.
        let uids = match self
            .service
            .store
            .append_messages(mailbox.id, messages)
            .await
        {
            Ok(added) => added.into_iter().map(|(uid, _)| uid.0),
            Err(error) => return store_failure(&error),
        };
        // RFC 4315 §3: APPENDUID with the new UIDs.
        Completion::ok("APPEND completed").with_code(Code::AppendUid {
            uid_validity: mailbox.uid_validity,
            uids: SequenceSet::from_numbers(uids),
        })
    }
}

impl Session<'_> {
    /// The Sent copy the SMTP service filed of this very message, when `raw` goes to the
    /// mailbox that copy is in, its Message-ID is that of a recent submission of the same
    /// account, and the copy is still there (not expunged, same UIDVALIDITY).
    async fn filed_at_submission(
        &mut self,
        account: AccountId,
        mailbox: &Mailbox,
        raw: &[u8],
    ) -> Result<Option<SentCopy>, StoreError> {
        let Some(record) = &self.service.recent_submissions else {
            return Ok(None);
        };
        let Some(message_id) = submissions::message_id(raw) else {
            return Ok(None);
        };
        let Some(copy) = record.lookup(account, mailbox.id, &message_id) else {
            return Ok(None);
        };
        // RFC 9051 §2.3.1.1: under another UIDVALIDITY the UID names another message.
        if copy.uid_validity != mailbox.uid_validity {
            return Ok(None);
        }
        // RFC 7162 §3.1.1: the copy's MODSEQ only grew since it was filed, so it is among
        // the messages changed after the one before — unless it was expunged. This reads the
        // few messages changed since, not the whole mailbox.
        let since = ModSeq(copy.modseq.0.saturating_sub(1));
        let changes = self.service.store.changes_since(mailbox.id, since).await?;
        Ok(changes
            .changed
            .iter()
            .any(|message| message.uid == copy.uid)
            .then_some(copy))
    }

    /// Answers an APPEND of a message already filed at submission: the APPEND's flags are
    /// added to that copy, and its UID is reported as the appended message's.
    async fn report_filed(
        &mut self,
        mailbox: &Mailbox,
        copy: SentCopy,
        flags: &[Flag],
    ) -> Completion {
        // RFC 9051 §2.3.2: \Recent is never set by a client.
        let flags: Vec<String> = flags
            .iter()
            .filter(|f| **f != Flag::Recent)
            .map(|f| f.as_str().to_string())
            .collect();
        if !flags.is_empty()
            && let Err(error) = self
                .service
                .store
                .store_flags(mailbox.id, &[copy.uid], FlagOp::Add, &flags, None)
                .await
        {
            return store_failure(&error);
        }
        // RFC 4315 §3: APPENDUID gives the UID the appended message has in the mailbox:
        // the copy filed when the message was submitted, which is the same message.
        Completion::ok("APPEND completed (already filed when sent)").with_code(Code::AppendUid {
            uid_validity: mailbox.uid_validity,
            uids: SequenceSet::from_numbers([copy.uid.0]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_line_endings;

    #[test]
    fn bare_lf_becomes_crlf() {
        assert_eq!(
            normalize_line_endings(b"a\nb\r\nc\n".to_vec()),
            b"a\r\nb\r\nc\r\n"
        );
        assert_eq!(normalize_line_endings(b"\nx".to_vec()), b"\r\nx");
        assert_eq!(normalize_line_endings(b"a\r\n".to_vec()), b"a\r\n");
    }
}
