//! The `MailStore` trait: each method runs its SQL on the writer or a reader, then
//! publishes change events once the write is committed.

use std::sync::Arc;

use async_trait::async_trait;
use sealpost_types::{AccountId, BlobId, MailboxId, MailboxName, ModSeq, SpecialUse, Uid};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::mailboxes::{self, Renamed};
use super::{SqliteStore, dmarc, messages, queue};
use crate::{
    AcceptedMessage, AttemptOutcome, ChangeEvent, DmarcReportRow, DroppedMessage, DueMessage,
    FlagOp, MailStore, Mailbox, MailboxChanges, MessageMeta, NewMessage, OutboundEnvelope, QueueId,
    QueuedRecipient, RecipientResult, StoreError, StoreResult, TlsSessions, Usage,
};

/// Messages up to this size are hashed on the calling task; larger ones on a blocking
/// thread, so that a 50 MB message does not stall an async worker for tens of ms.
const INLINE_HASH_LIMIT: usize = 256 * 1024;

async fn blob_id(raw: &Arc<[u8]>) -> StoreResult<BlobId> {
    fn sha256(bytes: &[u8]) -> BlobId {
        BlobId(Sha256::digest(bytes).into())
    }
    if raw.len() <= INLINE_HASH_LIMIT {
        return Ok(sha256(raw));
    }
    let raw = Arc::clone(raw);
    tokio::task::spawn_blocking(move || sha256(&raw))
        .await
        .map_err(|e| StoreError::Database(format!("hashing the message failed: {e}")))
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn mailboxes(&self, account: AccountId) -> StoreResult<Vec<Mailbox>> {
        self.readers
            .read(move |txn| mailboxes::list(txn, account))
            .await
    }

    async fn mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
    ) -> StoreResult<Option<Mailbox>> {
        let name = name.clone();
        self.readers
            .read(move |txn| mailboxes::by_name(txn, account, &name))
            .await
    }

    async fn mailbox_by_special_use(
        &self,
        account: AccountId,
        special_use: SpecialUse,
    ) -> StoreResult<Option<Mailbox>> {
        self.readers
            .read(move |txn| mailboxes::by_special_use(txn, account, special_use))
            .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> StoreResult<Mailbox> {
        let name = name.clone();
        let mailbox = self
            .writer
            .write(move |txn| mailboxes::create(txn, account, &name, special_use))
            .await?;
        self.events.publish(account, ChangeEvent::MailboxesChanged);
        Ok(mailbox)
    }

    async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &MailboxName,
        to: &MailboxName,
    ) -> StoreResult<()> {
        let (from, to) = (from.clone(), to.clone());
        let renamed = self
            .writer
            .write(move |txn| mailboxes::rename(txn, account, &from, &to))
            .await?;
        if let Renamed::InboxMoved { inbox } = renamed {
            self.events
                .publish(account, ChangeEvent::MessagesExpunged { mailbox: inbox });
        }
        self.events.publish(account, ChangeEvent::MailboxesChanged);
        Ok(())
    }

    async fn delete_mailbox(&self, account: AccountId, name: &MailboxName) -> StoreResult<()> {
        let name = name.clone();
        self.writer
            .write(move |txn| mailboxes::delete(txn, account, &name))
            .await?;
        self.events.publish(account, ChangeEvent::MailboxesChanged);
        Ok(())
    }

    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &MailboxName,
        subscribed: bool,
    ) -> StoreResult<()> {
        let name = name.clone();
        self.writer
            .write(move |txn| mailboxes::set_subscribed(txn, account, &name, subscribed))
            .await?;
        self.events.publish(account, ChangeEvent::MailboxesChanged);
        Ok(())
    }

    async fn subscriptions(&self, account: AccountId) -> StoreResult<Vec<MailboxName>> {
        self.readers
            .read(move |txn| mailboxes::subscriptions(txn, account))
            .await
    }

    async fn accept_message(
        &self,
        raw: Arc<[u8]>,
        internal_date: i64,
        targets: &[(MailboxId, Vec<String>)],
        outbound: Option<OutboundEnvelope>,
    ) -> StoreResult<AcceptedMessage> {
        let blob = blob_id(&raw).await?;
        let targets = targets.to_vec();
        // One job: the blob, every copy and the queue entry commit together or not at all.
        let (accepted, touched) = self
            .writer
            .write(move |txn| {
                messages::accept(txn, &blob, &raw, internal_date, &targets, outbound.as_ref())
            })
            .await?;
        self.events.publish_all(
            touched
                .into_iter()
                .map(|(account, mailbox)| (account, ChangeEvent::MessagesAdded { mailbox })),
        );
        Ok(accepted)
    }

    async fn append_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<(Uid, ModSeq)>> {
        let mut named = Vec::with_capacity(messages.len());
        for message in messages {
            named.push((blob_id(&message.raw).await?, message));
        }
        let (added, account) = self
            .writer
            .write(move |txn| messages::append(txn, mailbox, &named))
            .await?;
        self.events
            .publish(account, ChangeEvent::MessagesAdded { mailbox });
        Ok(added)
    }

    async fn usage(&self, account: AccountId) -> StoreResult<Usage> {
        self.readers
            .read(move |txn| messages::usage(txn, account))
            .await
    }

    async fn changes_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> StoreResult<MailboxChanges> {
        self.readers
            .read(move |txn| messages::changes_since(txn, mailbox, since))
            .await
    }

    async fn blob_summary(&self, blob: &BlobId) -> StoreResult<Option<Vec<u8>>> {
        let blob = *blob;
        self.readers
            .read(move |txn| messages::blob_summary(txn, &blob))
            .await
    }

    async fn save_blob_summary(&self, blob: &BlobId, summary: Vec<u8>) -> StoreResult<()> {
        let blob = *blob;
        // Derived data, recomputed when lost: no fsync.
        self.writer
            .write_relaxed(move |txn| messages::save_blob_summary(txn, &blob, &summary))
            .await
    }

    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>> {
        let uids = uids.to_vec();
        let (pairs, account) = self
            .writer
            .write(move |txn| messages::move_some(txn, from, &uids, to))
            .await?;
        if !pairs.is_empty() {
            self.events.publish_all([
                (account, ChangeEvent::MessagesExpunged { mailbox: from }),
                (account, ChangeEvent::MessagesAdded { mailbox: to }),
            ]);
        }
        Ok(pairs)
    }

    async fn queued(&self) -> StoreResult<Vec<QueuedRecipient>> {
        self.readers.read(|txn| queue::list(txn)).await
    }

    async fn due_after(
        &self,
        now: i64,
        after: Option<(i64, QueueId)>,
        limit: usize,
    ) -> StoreResult<Vec<DueMessage>> {
        self.readers
            .read(move |txn| queue::due(txn, now, after, limit))
            .await
    }

    async fn record_attempt(
        &self,
        queue_id: QueueId,
        results: &[(String, RecipientResult)],
    ) -> StoreResult<AttemptOutcome> {
        let results = results.to_vec();
        self.writer
            .write(move |txn| queue::record_attempt(txn, queue_id, &results))
            .await
    }

    async fn flush(&self, now: i64) -> StoreResult<usize> {
        self.writer.write(move |txn| queue::flush(txn, now)).await
    }

    async fn claim_delay_report(&self, queue_id: QueueId) -> StoreResult<bool> {
        self.writer
            .write(move |txn| queue::claim_delay_report(txn, queue_id))
            .await
    }

    async fn record_tls_sessions(&self, sessions: Vec<TlsSessions>) -> StoreResult<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        self.writer
            .write_relaxed(move |txn| queue::record_tls_sessions(txn, &sessions))
            .await
    }

    async fn tls_sessions(&self, day: &str) -> StoreResult<Vec<TlsSessions>> {
        let day = day.to_string();
        self.readers
            .read(move |txn| queue::tls_sessions(txn, &day))
            .await
    }

    async fn record_dmarc(&self, report_rows: Vec<DmarcReportRow>) -> StoreResult<()> {
        if report_rows.is_empty() {
            return Ok(());
        }
        self.writer
            .write_relaxed(move |txn| dmarc::record(txn, &report_rows))
            .await
    }

    async fn dmarc_rows(&self, day: &str) -> StoreResult<Vec<DmarcReportRow>> {
        let day = day.to_string();
        self.readers
            .read(move |txn| dmarc::day_rows(txn, &day))
            .await
    }

    async fn dmarc_days_before(&self, day: &str) -> StoreResult<Vec<String>> {
        let day = day.to_string();
        self.readers
            .read(move |txn| dmarc::days_before(txn, &day))
            .await
    }

    async fn delete_dmarc_rows(&self, day: &str, policy_domain: &str) -> StoreResult<()> {
        let (day, policy_domain) = (day.to_string(), policy_domain.to_string());
        self.writer
            .write(move |txn| dmarc::delete(txn, &day, &policy_domain))
            .await
    }

    async fn drop_entry(&self, queue_id: QueueId) -> StoreResult<Option<DroppedMessage>> {
        self.writer
            .write(move |txn| queue::drop_entry(txn, queue_id))
            .await
    }

    async fn messages(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>> {
        self.readers
            .read(move |txn| messages::list(txn, mailbox))
            .await
    }

    async fn read_blob(&self, blob: &BlobId) -> StoreResult<Vec<u8>> {
        let blob = *blob;
        self.readers
            .read(move |txn| messages::read_blob(txn, &blob))
            .await
    }

    async fn read_blob_range(
        &self,
        blob: &BlobId,
        offset: u64,
        len: usize,
    ) -> StoreResult<Vec<u8>> {
        let blob = *blob;
        self.readers
            .read(move |txn| messages::read_blob_range(txn, &blob, offset, len))
            .await
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> StoreResult<Vec<MessageMeta>> {
        let (uids, flags) = (uids.to_vec(), flags.to_vec());
        // Flags are written relaxed (see writer.rs): a power cut may lose the last flag
        // changes, never a message.
        let (changed, account) = self
            .writer
            .write_relaxed(move |txn| {
                messages::store_flags(txn, mailbox, &uids, op, &flags, unchanged_since)
            })
            .await?;
        if !changed.is_empty() {
            self.events
                .publish(account, ChangeEvent::FlagsChanged { mailbox });
        }
        Ok(changed)
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> StoreResult<Vec<Uid>> {
        let uids = uids.to_vec();
        let (removed, account) = self
            .writer
            .write(move |txn| messages::expunge(txn, mailbox, &uids))
            .await?;
        if !removed.is_empty() {
            self.events
                .publish(account, ChangeEvent::MessagesExpunged { mailbox });
        }
        Ok(removed)
    }

    async fn expunged_since(&self, mailbox: MailboxId, since: ModSeq) -> StoreResult<Vec<Uid>> {
        self.readers
            .read(move |txn| messages::expunged_since(txn, mailbox, since))
            .await
    }

    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>> {
        let uids = uids.to_vec();
        let (pairs, account) = self
            .writer
            .write(move |txn| messages::copy(txn, from, &uids, to))
            .await?;
        if !pairs.is_empty() {
            self.events
                .publish(account, ChangeEvent::MessagesAdded { mailbox: to });
        }
        Ok(pairs)
    }

    fn subscribe(&self, account: AccountId) -> broadcast::Receiver<ChangeEvent> {
        self.events.subscribe(account)
    }
}
