//! The store: the traits every backend implements, their types, and the SQLite backend.
//!
//! Services see only [`Directory`] and [`MailStore`] (joined as [`Store`]); which backend
//! serves them is decided in exactly one place, [`open`].
#![forbid(unsafe_code)]

pub mod authenticate;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
pub mod sqlite;
pub mod submissions;
mod types;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use sealpost_types::{
    AccountId, Address, AliasSource, BlobId, Domain, MailboxId, MailboxName, ModSeq, SpecialUse,
    Uid,
};
use tokio::sync::broadcast;

pub use error::StoreError;
pub use submissions::{RecentSubmissions, SentCopy};
pub use types::{
    AcceptedMessage, Account, Alias, AttemptOutcome, ChangeEvent, DkimAlgorithm, DkimKey,
    DmarcReportRow, DomainRecord, DroppedMessage, DueMessage, EntryRecipient, FinishedMessage,
    FlagOp, Mailbox, MailboxChanges, MessageMeta, NewMessage, OutboundEnvelope, OutboundRecipient,
    QueueEntry, QueueId, QueuedRecipient, RecipientResult, RecipientStatus, TlsSessions, Usage,
};

pub type StoreResult<T> = Result<T, StoreError>;

/// Which backend to open, and where. Built by the binary from `[store]` and `data_dir`.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// Embedded SQLite database (and nothing else) inside this folder.
    Sqlite { data_dir: PathBuf },
}

/// Opens the configured backend. The only place where a backend is chosen.
pub async fn open(config: &BackendConfig) -> StoreResult<Arc<dyn Store>> {
    match config {
        BackendConfig::Sqlite { data_dir } => {
            let store = sqlite::SqliteStore::open(data_dir).await?;
            Ok(Arc::new(store))
        }
    }
}

/// Domains, accounts and aliases: who exists and who receives what.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Adds a served domain with its DKIM keys. `AlreadyExists` if it is served already.
    async fn add_domain(&self, domain: &Domain, dkim_keys: Vec<DkimKey>) -> StoreResult<()>;
    /// Removes a domain. `NotFound` if not served; `InUse` while accounts or aliases use it.
    async fn delete_domain(&self, domain: &Domain) -> StoreResult<()>;
    async fn domain(&self, domain: &Domain) -> StoreResult<Option<DomainRecord>>;
    /// All served domains, sorted.
    async fn list_domains(&self) -> StoreResult<Vec<Domain>>;

    /// Creates an account and its default mailboxes (INBOX, Sent, Drafts, Trash, Junk,
    /// Archive) in one transaction. `UnknownDomain` if the domain is not served,
    /// `AlreadyExists` if the address is taken by an account or an alias.
    async fn add_account(&self, address: &Address, password_hash: &str) -> StoreResult<AccountId>;
    /// Deletes an account with all its mailboxes and messages. `NotFound` if absent.
    async fn delete_account(&self, address: &Address) -> StoreResult<()>;
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>>;
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// Accounts, sorted by address, optionally of one domain only.
    async fn list_accounts(&self, domain: Option<&Domain>) -> StoreResult<Vec<Account>>;
    /// Replaces the password hash. `NotFound` if absent.
    async fn set_password(&self, address: &Address, password_hash: &str) -> StoreResult<()>;
    /// Sets the account's storage quota in octets (`None`: unlimited). `NotFound` for an
    /// unknown address.
    async fn set_quota(&self, address: &Address, quota_bytes: Option<u64>) -> StoreResult<()>;

    /// Adds (or replaces) an alias. `UnknownDomain` if the alias's domain is not served;
    /// `AlreadyExists` if the source address is an account.
    async fn add_alias(&self, source: &AliasSource, targets: &[Address]) -> StoreResult<()>;
    /// `NotFound` if absent.
    async fn delete_alias(&self, source: &AliasSource) -> StoreResult<()>;
    /// Aliases, sorted by source.
    async fn list_aliases(&self) -> StoreResult<Vec<Alias>>;

    /// The accounts that receive mail sent to `address`, in this order of precedence:
    /// an account with that address; an alias with that address (targets that are local
    /// accounts, followed one level); the same two for the address without its `+tag`;
    /// the catch-all alias of the domain. Empty when nobody receives it.
    async fn resolve_recipient(&self, address: &Address) -> StoreResult<Vec<AccountId>>;

    /// Whether `account` may use `address` as its envelope sender or From address: its own
    /// address, that address with any +tag, or an alias (not a catch-all) whose targets include
    /// the account. Anything else — other users' addresses, addresses a catch-all would deliver
    /// to the account, remote addresses — is refused.
    ///
    /// Precisely: the account is among the accounts [`Directory::resolve_recipient`] gives
    /// for `address` by a rule other than the catch-all. So `alice+x` is alice's unless
    /// `alice+x` is itself an account or an alias that does not include her, and an alias
    /// `team` that includes her also gives her `team+x`. An unknown account may send as
    /// nothing.
    async fn may_send_as(&self, account: AccountId, address: &Address) -> StoreResult<bool>;
}

/// Mailboxes and messages of accounts.
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Mailboxes of an account, sorted by name.
    async fn mailboxes(&self, account: AccountId) -> StoreResult<Vec<Mailbox>>;
    async fn mailbox(&self, account: AccountId, name: &MailboxName)
    -> StoreResult<Option<Mailbox>>;
    async fn mailbox_by_special_use(
        &self,
        account: AccountId,
        special_use: SpecialUse,
    ) -> StoreResult<Option<Mailbox>>;
    /// `AlreadyExists` if the name is taken. A new mailbox gets a fresh UIDVALIDITY.
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> StoreResult<Mailbox>;
    /// Renames a mailbox and its children (`a` -> `b` also renames `a/x` -> `b/x`).
    /// Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty
    /// (RFC 9051 §6.3.6). `NotFound`, `AlreadyExists` as expected.
    async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &MailboxName,
        to: &MailboxName,
    ) -> StoreResult<()>;
    /// Deletes a mailbox and its messages; INBOX cannot be deleted (`Refused`).
    async fn delete_mailbox(&self, account: AccountId, name: &MailboxName) -> StoreResult<()>;
    /// Subscribing needs an existing mailbox (`NotFound`); unsubscribing works for any
    /// subscribed name. A subscription outlives its mailbox (RFC 3501 §6.3.9) and follows
    /// it through a rename.
    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &MailboxName,
        subscribed: bool,
    ) -> StoreResult<()>;
    /// The subscribed names of an account, sorted; some may name no mailbox (any more).
    async fn subscriptions(&self, account: AccountId) -> StoreResult<Vec<MailboxName>>;

    /// Stores one message for several mailboxes (one blob, one commit, fsync'd before this
    /// returns). Returns the UID and MODSEQ given in each mailbox, in the order of `targets`.
    /// This is [`MailStore::accept_message`] without an outbound part, except that no
    /// targets is no error: nothing is stored and nothing returned.
    async fn deliver(
        &self,
        raw: Arc<[u8]>,
        internal_date: i64,
        targets: &[(MailboxId, Vec<String>)],
    ) -> StoreResult<Vec<(MailboxId, Uid, ModSeq)>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let accepted = self
            .accept_message(raw, internal_date, targets, None)
            .await?;
        Ok(accepted.delivered)
    }
    /// Stores one accepted message: a copy in each local mailbox of `targets` and, when
    /// `outbound` is given, one queue entry for its remote recipients — all in ONE write job, so
    /// the single commit (fsync) makes all of it durable at once or none of it. The 250 after
    /// DATA is sent after this returns.
    ///
    /// The bytes are stored once (one blob) for the copies and the queue entry alike; the
    /// blob stays while either refers to it. The queue entry is due at once (`next_attempt`
    /// is the time of queueing). `Refused` when there is nothing to store (no targets and no
    /// outbound part) or the outbound part has no recipient (or an empty address); an unknown
    /// mailbox is `NotFound`. Any error stores nothing at all.
    async fn accept_message(
        &self,
        raw: Arc<[u8]>,
        internal_date: i64,
        targets: &[(MailboxId, Vec<String>)],
        outbound: Option<OutboundEnvelope>,
    ) -> StoreResult<AcceptedMessage>;
    /// The outbound queue, oldest first.
    ///
    /// One entry per recipient still waiting for delivery (recipients delivered or failed
    /// for good are not listed), ordered by the time of queueing, then queue id, then the
    /// order in which the recipients were given.
    async fn queued(&self) -> StoreResult<Vec<QueuedRecipient>>;
    /// What the scheduler should try now: at most `limit` queue entries that have a
    /// `Queued` recipient whose next attempt is due (`next_attempt <= now`, Unix seconds),
    /// oldest first (time of queueing, then queue id). Each comes with its envelope and only
    /// those of its recipients that are `Queued` and due (recipients deferred to later stay
    /// out until their own time), in the order they were given.
    async fn due(&self, now: i64, limit: usize) -> StoreResult<Vec<DueMessage>> {
        self.due_after(now, None, limit).await
    }
    /// [`MailStore::due`] from a point on: only entries after `after` (time of queueing,
    /// queue id) in that order, so that a scheduler holding some entries in flight reads
    /// the next ones instead of the same ones again.
    async fn due_after(
        &self,
        now: i64,
        after: Option<(i64, QueueId)>,
        limit: usize,
    ) -> StoreResult<Vec<DueMessage>>;
    /// Records the outcome of one delivery attempt, in ONE write job: each recipient named
    /// in `results` gets one more attempt counted and its new state (`Delivered`,
    /// `Deferred` to a later time with its error, `Failed` with its error). Results for
    /// addresses that are not `Queued` in this entry (unknown, or settled before) are
    /// ignored, so recording the same attempt twice changes nothing more.
    ///
    /// Delivered and failed recipients stay in the store (no longer listed) while others of
    /// the same entry are still queued. Once none is left `Queued` the entry is removed in
    /// the same job (its blob goes too unless a mailbox copy keeps it) and returned as
    /// [`AttemptOutcome::finished`]: every recipient with its final state, and the message
    /// bytes when a report may be due (a failure, or a delivery with NOTIFY=SUCCESS) — all
    /// a DSN needs, so no row is kept for it. The recipient address must be given as queued
    /// (as [`MailStore::due`] returns it).
    /// `NotFound` for an unknown entry.
    async fn record_attempt(
        &self,
        queue_id: QueueId,
        results: &[(String, RecipientResult)],
    ) -> StoreResult<AttemptOutcome>;
    /// Makes every `Queued` recipient due at `now` (`sealpost queue flush`), in one write
    /// job; attempt counts and errors are kept. Returns how many recipients are queued
    /// (all now due).
    async fn flush(&self, now: i64) -> StoreResult<usize>;
    /// Notes that the sender of entry `queue_id` has been sent its delay report (RFC 3464
    /// `Action: delayed`), in one write job. True when it had not been noted before (the
    /// caller sends the report), false when it had or the entry is gone: a message gets
    /// one delay report, however many attempts and schedulers see it late.
    async fn claim_delay_report(&self, queue_id: QueueId) -> StoreResult<bool>;
    /// Adds delivery sessions to the TLS-RPT counts (RFC 8460), in one write job that does
    /// not wait for its own fsync (statistics: a power cut may lose the last seconds).
    async fn record_tls_sessions(&self, sessions: Vec<TlsSessions>) -> StoreResult<()>;
    /// The TLS-RPT counts of one UTC day (`YYYY-MM-DD`), by policy domain, policy type,
    /// MX host, result and address.
    async fn tls_sessions(&self, day: &str) -> StoreResult<Vec<TlsSessions>>;
    /// Adds messages to the DMARC aggregate report data (RFC 7489 §7.2), in one write job
    /// that does not wait for its own fsync (statistics, as TLS-RPT counts).
    async fn record_dmarc(&self, rows: Vec<DmarcReportRow>) -> StoreResult<()>;
    /// The DMARC report data of one UTC day (`YYYY-MM-DD`), by policy domain, then source.
    async fn dmarc_rows(&self, day: &str) -> StoreResult<Vec<DmarcReportRow>>;
    /// The days before `day` that have DMARC report data, oldest first.
    async fn dmarc_days_before(&self, day: &str) -> StoreResult<Vec<String>>;
    /// Forgets the DMARC report data of one day and policy domain (its report was sent).
    async fn delete_dmarc_rows(&self, day: &str, policy_domain: &str) -> StoreResult<()>;
    /// Removes a queue entry with all its recipients in one write job (`sealpost queue
    /// drop`), returning its envelope, the recipients that were still `Queued` and the
    /// message bytes (read before the blob may go), so that the caller can bounce it.
    /// `None` when there is no such entry.
    async fn drop_entry(&self, queue_id: QueueId) -> StoreResult<Option<DroppedMessage>>;
    /// Messages of a mailbox in UID order.
    async fn messages(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>>;
    /// The bytes of a stored message. `NotFound` if no message and no queue entry refers
    /// to it.
    async fn read_blob(&self, blob: &BlobId) -> StoreResult<Vec<u8>>;
    /// At most `len` bytes of a stored message from octet `offset` on: fewer at its end, none
    /// from its end on. For sending large messages in pieces (POP3 RETR, IMAP partial FETCH)
    /// without holding them whole in memory. A blob never changes (it is named by its hash),
    /// so pieces read at different times fit together; it can disappear between two reads
    /// when its last message is expunged: `NotFound`, as for [`MailStore::read_blob`].
    async fn read_blob_range(&self, blob: &BlobId, offset: u64, len: usize)
    -> StoreResult<Vec<u8>>;
    /// Appends messages to one mailbox in ONE commit: all of them or none (RFC 3502 §6.3.11
    /// MULTIAPPEND). Returns each one's UID and MODSEQ in the order given; UIDs ascend in
    /// that order. `Refused` for an empty list.
    async fn append_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<(Uid, ModSeq)>>;
    /// What an account stores now, every mailbox together; kept as a counter, so this
    /// costs the same for ten messages as for a million.
    async fn usage(&self, account: AccountId) -> StoreResult<Usage>;
    /// Messages of `mailbox` added or changed after MODSEQ `since`, and UIDs expunged after
    /// it: what a session that saw the mailbox at `since` must learn (RFC 7162 §3.2.5.2),
    /// without reading the whole mailbox.
    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq)
    -> StoreResult<MailboxChanges>;
    /// A derived summary of a blob kept beside it (the IMAP MIME structure), if one was
    /// saved. Opaque to the store; removed with the blob.
    async fn blob_summary(&self, blob: &BlobId) -> StoreResult<Option<Vec<u8>>>;
    /// Saves the summary of a blob; nothing happens if the blob is gone meanwhile. Not
    /// necessarily fsync'd: a lost summary is computed again.
    async fn save_blob_summary(&self, blob: &BlobId, summary: Vec<u8>) -> StoreResult<()>;
    /// Changes flags of the given UIDs (missing UIDs are ignored). With `unchanged_since`,
    /// messages whose MODSEQ is higher are left alone (RFC 7162 §3.1.3). Returns the
    /// messages that changed, with their new MODSEQ. Committed, but a backend may skip the
    /// fsync: a crash of the process loses nothing, a power cut may lose the last flag
    /// changes (as in Dovecot's default `fsync_mode`).
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> StoreResult<Vec<MessageMeta>>;
    /// Removes messages; each removal is recorded with a new MODSEQ in the expunge log.
    /// Returns the UIDs actually removed.
    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> StoreResult<Vec<Uid>>;
    /// UIDs expunged with a MODSEQ above `since` (RFC 7162 VANISHED).
    async fn expunged_since(&self, mailbox: MailboxId, since: ModSeq) -> StoreResult<Vec<Uid>>;
    /// Copies messages into another mailbox (same blob). Returns (source UID, new UID) pairs.
    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>>;
    /// Moves messages into another mailbox in ONE commit (RFC 6851 §3.3: atomic): new UIDs
    /// there, an expunge (with its MODSEQ) here. Returns (source UID, new UID) pairs in
    /// ascending source order; missing UIDs are ignored.
    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>>;
    /// Changes to an account made through this process (delivery, flags, expunge, mailbox
    /// changes), for IDLE and for sessions that share a mailbox.
    fn subscribe(&self, account: AccountId) -> broadcast::Receiver<ChangeEvent>;
}

/// Everything a backend provides.
pub trait Store: Directory + MailStore {}
impl<T: Directory + MailStore> Store for T {}
