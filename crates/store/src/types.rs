use sealpost_types::{
    AccountId, Address, AliasSource, BlobId, Domain, MailboxId, MailboxName, ModSeq, Secret,
    SpecialUse, Uid,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// RFC 8463: Ed25519-SHA256.
    Ed25519,
    /// RFC 6376 / RFC 8301: RSA-SHA256, 2048-bit keys.
    Rsa,
}

impl DkimAlgorithm {
    /// The `k=` tag value of the DKIM key record (RFC 6376 §3.6.1, RFC 8463 §4).
    pub fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }
}

/// One DKIM signing key of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// PKCS#8 PEM.
    pub private_key_pem: Secret<String>,
    /// The `p=` value of the DNS record: base64 of the SubjectPublicKeyInfo for RSA, of the
    /// raw 32-byte key for Ed25519 (RFC 8463 §4).
    pub public_key_base64: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    pub name: Domain,
    pub dkim_keys: Vec<DkimKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub address: Address,
    /// PHC string (`$argon2id$v=19$m=...`).
    pub password_hash: Secret<String>,
    /// Storage quota in octets; `None` means unlimited.
    pub quota_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub source: AliasSource,
    pub targets: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: MailboxName,
    pub special_use: Option<SpecialUse>,
    /// RFC 9051 §2.3.1.1: changes whenever UIDs of this name may have been reused.
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
    pub subscribed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub modseq: ModSeq,
    /// System flags (`\Seen`, ...) and keywords, sorted, without duplicates.
    pub flags: Vec<String>,
    /// Seconds since the Unix epoch.
    pub internal_date: i64,
    pub size: u64,
    pub blob: BlobId,
}

/// What an account stores, every mailbox together (RFC 9208 STORAGE and MESSAGE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Octets of all its messages (a message in two mailboxes counts twice, as the
    /// client sees two messages).
    pub bytes: u64,
    pub messages: u64,
}

/// One message to append to a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub raw: std::sync::Arc<[u8]>,
    /// Seconds since the Unix epoch.
    pub internal_date: i64,
    pub flags: Vec<String>,
}

/// What changed in a mailbox after a MODSEQ (RFC 7162 §3.1.1: every change raises it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxChanges {
    /// Messages added or whose flags changed since, in UID order.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged since, ascending.
    pub expunged: Vec<Uid>,
    /// The mailbox's HIGHESTMODSEQ when these were read: the `since` of the next call.
    pub highest_modseq: ModSeq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// What changed in an account, broadcast to the sessions of that account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeEvent {
    MessagesAdded { mailbox: MailboxId },
    FlagsChanged { mailbox: MailboxId },
    MessagesExpunged { mailbox: MailboxId },
    MailboxesChanged,
}

/// Row id of a message in the outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub i64);

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One remote recipient of an outbound message, with its RFC 3461 parameters as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecipient {
    /// The forward-path as given in RCPT TO (without the angle brackets).
    pub address: String,
    /// RFC 3461 NOTIFY as sent ("SUCCESS,FAILURE", "NEVER") or None
    pub notify: Option<String>,
    /// RFC 3461 ORCPT as "rfc822;addr" or None
    pub orcpt: Option<String>,
}

impl OutboundRecipient {
    /// A recipient without DSN parameters.
    pub fn new(address: impl Into<String>) -> OutboundRecipient {
        OutboundRecipient {
            address: address.into(),
            notify: None,
            orcpt: None,
        }
    }
}

/// The envelope of a message to relay: what the queue needs besides the message bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundEnvelope {
    /// reverse-path; None for <>
    pub from: Option<String>,
    /// At least one; the same address given twice is queued once (the first one's
    /// parameters count).
    pub recipients: Vec<OutboundRecipient>,
    /// RFC 3461 RET ("FULL"/"HDRS")
    pub ret: Option<String>,
    /// RFC 3461 ENVID
    pub envid: Option<String>,
    /// the account that submitted it
    pub submitted_by: Option<AccountId>,
    /// REQUIRETLS (RFC 8689): deliver only over verified TLS to servers that offer it.
    pub require_tls: bool,
}

/// What [`crate::MailStore::accept_message`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedMessage {
    /// The UID and MODSEQ given in each local mailbox, in the order of the targets.
    pub delivered: Vec<(MailboxId, Uid, ModSeq)>,
    /// The queue entry of the remote recipients, if there were any.
    pub queued: Option<QueueId>,
}

/// One recipient waiting in the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub queue_id: QueueId,
    pub recipient: String,
    /// The reverse-path; None for <>.
    pub from: Option<String>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due, in seconds since the Unix epoch.
    pub next_attempt: i64,
    /// Why the last attempt failed, if one did.
    pub last_error: Option<String>,
    /// When the message was queued, in seconds since the Unix epoch.
    pub created: i64,
    /// Size of the message in octets.
    pub size: u64,
}

/// Where one recipient of a queue entry stands (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientStatus {
    /// Waiting for (another) delivery attempt.
    Queued,
    /// Accepted by the remote MTA (RFC 5321 §4.2.5: a 250 after the data).
    Delivered,
    /// Given up for good (a 5xx reply, or the queue lifetime ran out).
    Failed,
}

impl RecipientStatus {
    /// The value kept in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Failed => "failed",
        }
    }
}

/// The message part of a queue entry: its envelope and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub queue_id: QueueId,
    /// The message bytes (read them with [`crate::MailStore::read_blob`] while the entry
    /// exists: the blob may go with it).
    pub blob: BlobId,
    /// The reverse-path; None for <>.
    pub from: Option<String>,
    /// RFC 3461 RET ("FULL"/"HDRS") as received.
    pub ret: Option<String>,
    /// RFC 3461 ENVID as received.
    pub envid: Option<String>,
    /// The account that submitted it, while that account exists.
    pub submitted_by: Option<AccountId>,
    /// When the message was queued, in seconds since the Unix epoch.
    pub created: i64,
    /// Size of the message in octets.
    pub size: u64,
    /// The sender was told that delivery is delayed (RFC 3464 `Action: delayed`), once.
    pub delay_reported: bool,
    /// REQUIRETLS (RFC 8689).
    pub require_tls: bool,
}

/// One recipient of a queue entry with everything the delivery engine and a DSN need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecipient {
    /// The forward-path as given in RCPT TO.
    pub address: String,
    /// RFC 3461 NOTIFY as received ("SUCCESS,FAILURE", "NEVER") or None.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT as received ("rfc822;addr") or None.
    pub orcpt: Option<String>,
    pub status: RecipientStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is (or was) due, in seconds since the Unix epoch.
    pub next_attempt: i64,
    /// The last error (the remote reply or why no attempt could be made), if any.
    pub last_error: Option<String>,
}

/// A queued message that is due: what [`crate::MailStore::due`] gives the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMessage {
    pub entry: QueueEntry,
    /// Its recipients that are `Queued` and due, in the order they were given.
    pub recipients: Vec<EntryRecipient>,
}

/// The outcome of one delivery attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    /// The remote MTA accepted it.
    Delivered,
    /// A temporary failure (4xx, no connection, DNS trouble): try again at `next_attempt`
    /// (seconds since the Unix epoch).
    Deferred { next_attempt: i64, error: String },
    /// A permanent failure (5xx) or the end of the queue lifetime: the sender gets a bounce.
    Failed { error: String },
}

/// What [`crate::MailStore::record_attempt`] left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// Recipients of the entry still `Queued` after this attempt.
    pub still_queued: usize,
    /// Set when no recipient is left `Queued`: the entry is gone from the store, and this is
    /// all that remains of it.
    pub finished: Option<FinishedMessage>,
}

/// A queue entry whose last recipient was just settled, as it was removed from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedMessage {
    pub entry: QueueEntry,
    /// Every recipient with its final status (`Delivered` or `Failed`) and last error, in
    /// the order they were given: including those settled by earlier attempts.
    pub recipients: Vec<EntryRecipient>,
    /// The message bytes, read in the same write job before the entry (and perhaps its
    /// blob) went — only when a report may be due: some recipient `Failed`, or was
    /// `Delivered` with NOTIFY including SUCCESS (RFC 3461 §4.1).
    pub raw: Option<Vec<u8>>,
}

/// A queue entry removed by [`crate::MailStore::drop_entry`]: what the caller needs to
/// bounce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedMessage {
    pub entry: QueueEntry,
    /// The recipients that were still `Queued`, in the order they were given.
    pub recipients: Vec<EntryRecipient>,
    /// The message bytes, read in the same write job before the entry went.
    pub raw: Vec<u8>,
}

/// Delivery sessions with one outcome under one TLS policy on one day (RFC 8460 §4.4): the
/// data a TLS-RPT report is made of. Recording adds `count` to what is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSessions {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The recipient domain whose policy applied (`policy-domain`).
    pub policy_domain: String,
    /// `sts`, `tlsa` or `no-policy-found` (RFC 8460 §4.4 `policy-type`).
    pub policy_type: String,
    /// The policy as published (`policy-string`: the MTA-STS policy lines or the TLSA
    /// records); the latest seen is kept.
    pub policy_string: Vec<String>,
    /// The MX host the session was with (`mx-host`, `receiving-mx-hostname`).
    pub mx_host: String,
    /// `success`, or an RFC 8460 §4.3 result type (`starttls-not-supported`,
    /// `certificate-host-mismatch`, `validation-failure`, ...).
    pub result: String,
    /// The address connected to (`receiving-ip`); empty for successes.
    pub receiving_ip: String,
    /// Free text about a failure (`failure-reason-code`); the latest is kept.
    pub reason: String,
    pub count: u64,
}

/// Messages with one DMARC outcome on one day, from one address, for one policy domain: a
/// `record` of an aggregate report (RFC 7489 §7.2, Appendix C). Recording adds `count` to
/// what is kept for the same outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcReportRow {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The domain whose DMARC record applied (the report is about it, `policy_published`).
    pub policy_domain: String,
    /// The record as published: `adkim`, `aspf`, `p`, `sp`, `pct` and the `rua` URIs, as
    /// `tag=value` pairs separated by `;` (the latest seen is kept).
    pub policy_published: String,
    /// The connecting client's address (`source_ip`).
    pub source_ip: String,
    /// `identifiers`: the RFC5322.From domain, the RFC5321.MailFrom domain (empty for `<>`),
    /// the domain of our recipient.
    pub header_from: String,
    pub envelope_from: String,
    pub envelope_to: String,
    /// `policy_evaluated`: what we did (`none`, `quarantine`, `reject`), whether DKIM and
    /// SPF passed aligned (`pass`/`fail`), and why the policy was not applied as asked (an
    /// RFC 7489 `PolicyOverrideType` such as `sampled_out`, `trusted_forwarder`,
    /// `local_policy`; empty when it was).
    pub disposition: String,
    pub dkim_aligned: String,
    pub spf_aligned: String,
    pub override_reason: String,
    /// `auth_results`: each DKIM signature as `domain selector result`, several separated by
    /// `;`; SPF as `domain scope result` (scope `mfrom` or `helo`).
    pub dkim_results: String,
    pub spf_result: String,
    pub count: u64,
}
