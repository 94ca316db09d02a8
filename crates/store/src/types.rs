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
