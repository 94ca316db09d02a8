//! The end of DATA/BDAT: checks on the content, trace headers, durable storage, the reply.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sealpost_store::{OutboundEnvelope, OutboundRecipient, StoreError};
use sealpost_types::date::{UtcDateTime, unix_now};
use sealpost_types::{AccountId, Address, MailboxId, ModSeq, SpecialUse, Uid};

use super::PortRole;
use super::authentication::Verdict;
use super::headers::{self, HeaderBlock};
use super::recipients::{Transaction, temporary_problem};
use super::reports::{self, notify_text, ret_text};
use super::sent::SentTarget;
use super::session::Session;
use crate::core::{Answer, BodyType, RcptParams, Reply};
use sealpost_sender_auth::results;

/// The final 250 of a stored message (sent only after the commit).
fn accepted(queue_id: &str) -> Answer {
    Answer::Accept(Reply::new(
        250,
        "2.0.0",
        format!("Ok: queued as {queue_id}"),
    ))
}

/// What one accepted message is written as: one blob for every target, in one commit.
struct Batch {
    raw: Arc<[u8]>,
    received_at: i64,
    /// The local recipients' INBOXes.
    inboxes: Vec<(MailboxId, Vec<String>)>,
    /// The remote recipients, for the queue.
    outbound: Option<OutboundEnvelope>,
    /// The submitter's Sent copy.
    sent: Option<(MailboxId, Vec<String>)>,
}

impl Batch {
    fn all_targets(&self) -> Vec<(MailboxId, Vec<String>)> {
        let mut targets = self.inboxes.clone();
        targets.extend(self.sent.clone());
        targets
    }
}

/// RFC 5321 §6.3: a message that has passed this many hops is in a loop.
const MAX_HOPS: usize = 50;

fn outbound_recipient(address: &str, params: &RcptParams) -> OutboundRecipient {
    OutboundRecipient {
        address: address.to_string(),
        notify: params.notify.as_ref().map(notify_text),
        orcpt: params
            .orcpt
            .as_ref()
            .map(|(kind, address)| format!("{kind};{address}")),
    }
}

impl Session<'_> {
    pub(super) async fn message(&mut self, body: Vec<u8>) -> Answer {
        let Some(mut transaction) = self.transaction.take() else {
            return Answer::Reject(Reply::new(503, "5.5.1", "No transaction in progress"));
        };
        let header = HeaderBlock::parse(&body);
        if header.count("received") > MAX_HOPS {
            return Answer::Reject(Reply::new(
                554,
                "5.4.6",
                "Too many hops: mail loop detected",
            ));
        }
        let mut added = String::new();
        let mut junk = BTreeSet::new();
        let mut cleaned = None;
        let mut report = None;
        if self.role == PortRole::Inbound {
            match self.authenticate(&mut transaction, &body).await {
                Some(Verdict::Refuse(reply)) => return Answer::Reject(reply),
                Some(Verdict::Accept {
                    header,
                    body,
                    junk: to_junk,
                    report: row,
                }) => {
                    added.push_str(&header);
                    cleaned = body;
                    junk = to_junk;
                    report = row;
                }
                // RFC 8601 §5: even unchecked, no field may claim our authserv-id.
                None => cleaned = results::without_forged(&body, &self.service.hostname),
            }
        }
        if self.role == PortRole::Submission {
            if let Err(reply) = self.check_from_header(&header).await {
                return Answer::Reject(reply);
            }
            // RFC 6409 §8.2 / §8.3: the submission server may add a missing Date and Message-ID.
            if !header.has("date") {
                added.push_str(&format!("Date: {}\r\n", UtcDateTime::now().to_rfc5322()));
            }
            if !header.has("message-id") {
                added.push_str(&format!(
                    "Message-ID: <{}@{}>\r\n",
                    headers::random_id(20),
                    self.service.hostname
                ));
            }
        }
        let body = cleaned.as_deref().unwrap_or(&body);
        let answer = self.store_message(transaction, &added, body, &junk).await;
        if let Answer::Accept(_) = answer {
            // Counted once stored: a message refused for a local problem comes back.
            self.record_dmarc(report).await;
        }
        answer
    }

    /// RFC 6409 §6.1 / SECURITY-TESTS RS-10: every address in From must be the user's own.
    async fn check_from_header(&mut self, header: &HeaderBlock) -> Result<(), Reply> {
        let Some(account) = &self.account else {
            return Err(Reply::new(530, "5.7.0", "Authentication required"));
        };
        let forbidden = || {
            Reply::new(
                550,
                "5.7.1",
                "From header address not owned by the authenticated user",
            )
        };
        let from_fields = header.all("from");
        // RFC 5322 §3.6: exactly one From field.
        if from_fields.len() != 1 {
            return Err(Reply::new(
                550,
                "5.6.0",
                "Message must have exactly one From header",
            ));
        }
        let addresses = from_fields
            .first()
            .map(|value| headers::addresses_in(value))
            .unwrap_or_default();
        if addresses.is_empty() {
            return Err(forbidden());
        }
        for text in addresses {
            let Ok(address) = Address::parse(&text) else {
                return Err(forbidden());
            };
            match self.service.store.may_send_as(account.id, &address).await {
                Ok(true) => {}
                Ok(false) => return Err(forbidden()),
                Err(error) => {
                    tracing::error!(%error, "store error while checking From");
                    return Err(temporary_problem());
                }
            }
        }
        Ok(())
    }

    /// The Received header of RFC 5321 §4.4 with the protocol keyword of RFC 3848.
    fn received_header(&self, transaction: &Transaction, queue_id: &str) -> String {
        let session = self.core.session();
        let protocol = match (session.esmtp, session.tls, session.authenticated.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let helo = session.helo.as_deref().unwrap_or("unknown");
        let peer = self.conn.peer();
        let mut header = format!(
            "Received: from {helo} ([{}])\r\n\tby {} (sealpost) with {protocol} id {queue_id}",
            peer.ip(),
            self.service.hostname
        );
        if let Some(tls) = self.conn.tls_info() {
            header.push_str(&format!(
                "\r\n\t(version={} cipher={})",
                tls.version, tls.cipher
            ));
        }
        // RFC 5321 §4.4: the FOR clause only when there is exactly one recipient.
        if let [recipient] = transaction.local.as_slice()
            && transaction.remote.is_empty()
        {
            header.push_str(&format!("\r\n\tfor <{}>", recipient.address));
        }
        header.push_str(&format!("; {}\r\n", UtcDateTime::now().to_rfc5322()));
        header
    }

    /// Where `account` gets the message: its INBOX, or its Junk mailbox when the sender
    /// authentication policy says so (the INBOX if it has none).
    async fn mailbox_for(
        &mut self,
        account: AccountId,
        junk: bool,
    ) -> Result<Option<MailboxId>, StoreError> {
        if junk
            && let Some(mailbox) = self
                .service
                .store
                .mailbox_by_special_use(account, SpecialUse::Junk)
                .await?
        {
            return Ok(Some(mailbox.id));
        }
        Ok(self
            .service
            .store
            .mailbox_by_special_use(account, SpecialUse::Inbox)
            .await?
            .map(|mailbox| mailbox.id))
    }

    async fn store_message(
        &mut self,
        transaction: Transaction,
        added: &str,
        body: &[u8],
        junk: &BTreeSet<AccountId>,
    ) -> Answer {
        let queue_id = headers::random_id(12);
        let mut prefix = String::new();
        let accounts = transaction.local_accounts();
        if !accounts.is_empty() {
            // RFC 5321 §4.4: the final delivery adds Return-Path with the reverse-path.
            prefix.push_str(&format!(
                "Return-Path: <{}>\r\n",
                transaction.from.as_deref().unwrap_or("")
            ));
            // One blob serves every local recipient, so Delivered-To is added only when
            // the message goes to exactly one account (as Dovecot LMTP does).
            if let ([recipient], 1, true) = (
                transaction.local.as_slice(),
                accounts.len(),
                transaction.remote.is_empty(),
            ) {
                prefix.push_str(&format!("Delivered-To: {}\r\n", recipient.address));
            }
        }
        prefix.push_str(&self.received_header(&transaction, &queue_id));
        prefix.push_str(added);
        let mut raw = Vec::with_capacity(prefix.len() + body.len());
        raw.extend_from_slice(prefix.as_bytes());
        raw.extend_from_slice(body);
        let raw: Arc<[u8]> = raw.into();

        let mut targets: HashMap<AccountId, MailboxId> = HashMap::new();
        for account in &accounts {
            match self.mailbox_for(*account, junk.contains(account)).await {
                Ok(Some(inbox)) => {
                    targets.insert(*account, inbox);
                }
                // The account vanished between RCPT and now (user del): skip it (reported
                // below as failed when the recipient wants to know).
                Ok(None) => tracing::warn!(?account, "recipient has no INBOX any more; skipped"),
                Err(error) => {
                    tracing::error!(%error, "store error before delivery");
                    return Answer::Reject(temporary_problem());
                }
            }
        }
        let outbound = (!transaction.remote.is_empty()).then(|| OutboundEnvelope {
            from: transaction.from.clone(),
            recipients: transaction
                .remote
                .iter()
                .map(|(address, params)| outbound_recipient(address, params))
                .collect(),
            ret: transaction.params.ret.map(ret_text),
            envid: transaction.params.envid.clone(),
            submitted_by: self.account.as_ref().map(|account| account.id),
            // RFC 8689 §4.2: the requirement travels with the message.
            require_tls: transaction.params.require_tls,
        });
        if targets.is_empty() && outbound.is_none() {
            return Answer::Reject(Reply::new(554, "5.5.1", "No valid recipients"));
        }
        let inbox_targets: Vec<(MailboxId, Vec<String>)> = targets
            .values()
            .map(|mailbox| (*mailbox, Vec::new()))
            .collect();
        // The Sent copy goes in the same commit as the delivery: the 250 means both are kept.
        let sent = match self.sent_target(&raw).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::error!(%error, "store error before delivery");
                return Answer::Reject(temporary_problem());
            }
        };
        let batch = Batch {
            raw: Arc::clone(&raw),
            received_at: unix_now(),
            inboxes: inbox_targets,
            outbound,
            sent: sent.as_ref().map(SentTarget::target),
        };
        let received_at = batch.received_at;
        let eight_bit = transaction.params.body == Some(BodyType::EightBitMime);
        let delivered = match self
            .service
            .store
            .accept_message(
                Arc::clone(&raw),
                received_at,
                &batch.all_targets(),
                batch.outbound.clone(),
            )
            .await
        {
            Ok(stored) => {
                if stored.queued.is_some() {
                    self.service.queued();
                }
                tracing::info!(
                    id = %queue_id,
                    size = raw.len(),
                    local = targets.len(),
                    remote = transaction.remote.len(),
                    sent_copy = sent.is_some(),
                    eight_bit,
                    "message accepted"
                );
                stored.delivered
            }
            Err(error) => match self.store_each(batch, &queue_id, error).await {
                Some(delivered) => delivered,
                None => return Answer::Reject(temporary_problem()),
            },
        };
        if let Some(sent) = &sent {
            sent.committed(self, &delivered);
        }
        self.report_local(&transaction, &targets, &delivered, received_at, &raw)
            .await;
        // DESIGN §1.4: this 250 is sent only after the commit (fsync) above.
        accepted(&queue_id)
    }

    /// Hands the local recipients' outcomes to the report sender when one may be due
    /// (RFC 3461 §4.1 NOTIFY; a failure after the 250 is reported by default).
    async fn report_local(
        &mut self,
        transaction: &Transaction,
        inboxes: &HashMap<AccountId, MailboxId>,
        delivered: &[(MailboxId, Uid, ModSeq)],
        received_at: i64,
        raw: &Arc<[u8]>,
    ) {
        let Some(reporter) = &self.service.reports else {
            return;
        };
        let outcomes = reports::outcomes(&transaction.local, |account| {
            let inbox = inboxes.get(&account)?;
            Some(delivered.iter().any(|(mailbox, ..)| mailbox == inbox))
        });
        if let Some(request) = reports::due(transaction, outcomes, received_at, raw) {
            reporter.local_deliveries(request).await;
        }
    }

    /// The batch failed as a whole (for example one mailbox was deleted meanwhile): store
    /// for each target on its own so that one recipient's failure does not lose the others.
    /// The Sent copy comes last, only if some recipient got the message: a message nobody
    /// got is refused (the client tries again) and must not be in Sent already.
    /// Returns what was stored locally, or `None` when nothing at all was.
    async fn store_each(
        &mut self,
        batch: Batch,
        queue_id: &str,
        first_error: StoreError,
    ) -> Option<Vec<(MailboxId, Uid, ModSeq)>> {
        tracing::warn!(error = %first_error, id = %queue_id, "delivery failed as a batch; retrying per recipient");
        let Batch {
            raw,
            received_at,
            inboxes,
            outbound,
            sent,
        } = batch;
        let mut delivered = Vec::new();
        let mut queued = false;
        for target in &inboxes {
            match self
                .service
                .store
                .accept_message(
                    Arc::clone(&raw),
                    received_at,
                    std::slice::from_ref(target),
                    None,
                )
                .await
            {
                Ok(stored) => delivered.extend(stored.delivered),
                Err(error) => {
                    tracing::error!(%error, id = %queue_id, mailbox = ?target.0, "delivery to one recipient failed")
                }
            }
        }
        if let Some(outbound) = outbound {
            match self
                .service
                .store
                .accept_message(Arc::clone(&raw), received_at, &[], Some(outbound))
                .await
            {
                Ok(_) => {
                    self.service.queued();
                    queued = true;
                }
                Err(error) => {
                    tracing::error!(%error, id = %queue_id, "queueing for remote recipients failed")
                }
            }
        }
        if !queued && delivered.is_empty() {
            return None;
        }
        if let Some(sent) = sent {
            match self
                .service
                .store
                .accept_message(Arc::clone(&raw), received_at, &[sent], None)
                .await
            {
                Ok(stored) => delivered.extend(stored.delivered),
                Err(error) => {
                    tracing::error!(%error, id = %queue_id, "filing the Sent copy failed")
                }
            }
        }
        Some(delivered)
    }
}
