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
