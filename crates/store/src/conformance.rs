//! The store conformance suite: what every backend must do, written once against the
//! traits so that each backend (SQLite now, PostgreSQL later) runs it unchanged.
//!
//! Each case is a public async function taking a fresh, empty store (grouped by topic in
//! submodules, all re-exported here). A backend runs all of
//! them with one macro call that makes one `#[tokio::test]` per case:
//!
//! ```ignore
//! async fn fresh() -> (TempDir, Arc<dyn Store>) { /* open an empty store */ }
//! sealpost_store::store_conformance_tests!(fresh());
//! ```
//!
//! The first element of the pair is kept alive for the duration of the test (a temporary
//! folder, a database handle, ...). Cases panic on failure, as tests do.
// Test-support code: a failed expectation is a failed test, so unwrap/expect are the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use sealpost_types::{
    AccountId, Address, AliasSource, BlobId, Domain, MailboxId, MailboxName, ModSeq, Secret,
    SpecialUse, Uid,
};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::{ChangeEvent, DkimAlgorithm, DkimKey, FlagOp, Mailbox, Store, StoreError};

mod concurrency;
mod directory;
mod imap_support;
mod mailboxes;
mod messages;
mod outbound;
mod queue;

pub use concurrency::*;
pub use directory::*;
pub use imap_support::*;
pub use mailboxes::*;
pub use messages::*;
pub use outbound::*;
pub use queue::*;

/// Generates one `#[tokio::test]` per conformance case. `$make` is an expression giving a
/// future of `(guard, Arc<dyn Store>)` for a fresh, empty store; it is evaluated per test.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            domains_add_list_delete,
            domain_duplicates_and_dkim_keys,
            domain_in_use_cannot_be_deleted,
            account_add_checks_domain_and_duplicates,
            account_gets_default_mailboxes,
            account_delete_cascades,
            set_password_replaces_hash,
            list_accounts_sorted_and_filtered,
            aliases_add_replace_delete_list,
            resolve_recipient_precedence,
            may_send_as_own_tagged_and_aliases,
            mailbox_create_and_lookup,
            mailbox_rename_with_children,
            mailbox_rename_inbox,
            mailbox_delete,
            mailbox_subscribe,
            uid_validity_differs_after_recreate,
            deliver_shares_one_blob,
            read_blob_range_pieces,
            uid_and_modseq_strictly_increase,
            uids_not_reused_after_expunge,
            expunge_log,
            store_flags_ops_and_unchanged_since,
            copy_messages,
            change_events,
            accept_message_local_only,
            accept_message_remote_only,
            accept_message_mixed_shares_one_blob,
            accept_message_is_atomic,
            queued_lists_oldest_first,
            queue_due_oldest_first_with_envelopes,
            queue_record_attempt_counts_and_settles,
            queue_flush_makes_everything_due,
            queue_drop_entry_returns_what_a_bounce_needs,
            queue_delay_report_claimed_once,
            tls_sessions_are_counted_per_day_and_outcome,
            dmarc_rows_are_counted_per_day_until_reported,
            concurrent_reads_during_writes,
            group_commit_concurrent_delivers,
            append_messages_is_atomic,
            usage_follows_every_change,
            set_quota_and_clear,
            changes_since_reports_only_what_changed,
            move_messages_is_one_change,
            blob_summary_lives_with_its_blob,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_guard, store) = $make.await;
                $crate::conformance::$case(&*store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------
// Helpers

pub fn domain(name: &str) -> Domain {
    Domain::parse(name).expect("test domain")
}

pub fn address(text: &str) -> Address {
    Address::parse(text).expect("test address")
}

pub fn mailbox_name(text: &str) -> MailboxName {
    MailboxName::parse(text).expect("test mailbox name")
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|f| f.to_string()).collect()
}

fn message(n: usize) -> Arc<[u8]> {
    let text = format!(
        "From: sender@example.net\r\nTo: alice@example.org\r\nSubject: test {n}\r\n\r\n\
         Body of message {n}.\r\n"
    );
    Arc::from(text.into_bytes())
}

/// Creates an account, serving its domain first if needed.
pub async fn new_account(store: &dyn Store, text: &str) -> AccountId {
    let address = address(text);
    if store.domain(address.domain()).await.unwrap().is_none() {
        store
            .add_domain(address.domain(), Vec::new())
            .await
            .unwrap();
    }
    store
        .add_account(&address, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
        .await
        .unwrap()
}

async fn mailbox(store: &dyn Store, account: AccountId, name: &str) -> Mailbox {
    store
        .mailbox(account, &mailbox_name(name))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("mailbox {name} missing"))
}

async fn deliver_one(store: &dyn Store, mailbox: MailboxId, n: usize) -> (Uid, ModSeq) {
    let placed = store
        .deliver(message(n), 1_700_000_000, &[(mailbox, Vec::new())])
        .await
        .unwrap();
    assert_eq!(placed.len(), 1);
    (placed[0].1, placed[0].2)
}

async fn uids(store: &dyn Store, mailbox: MailboxId) -> Vec<u32> {
    store
        .messages(mailbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid.0)
        .collect()
}

async fn next_event(events: &mut broadcast::Receiver<ChangeEvent>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("an event")
}

fn strictly_ascending<T: Ord>(items: &[T]) -> bool {
    items.windows(2).all(|pair| pair[0] < pair[1])
}

pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Polls all futures concurrently on the current task (no spawning, so they may borrow the
/// store), returning their outputs in order. Their I/O still runs in parallel inside the
/// backend (blocking threads, writer queue).
pub async fn join_all<'a, T>(futures: Vec<LocalFuture<'a, T>>) -> Vec<T> {
    let mut slots: Vec<Option<LocalFuture<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = slots.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in slots.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future completed"))
        .collect()
}

/// The blob id of `raw` (SHA-256, as the store names blobs).
fn blob_of(raw: &[u8]) -> BlobId {
    BlobId(Sha256::digest(raw).into())
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An outbound envelope from `from` to `recipients`, without DSN parameters.
fn envelope(from: Option<&str>, recipients: &[&str]) -> crate::OutboundEnvelope {
    crate::OutboundEnvelope {
        from: from.map(str::to_string),
        recipients: recipients
            .iter()
            .map(|r| crate::OutboundRecipient::new(*r))
            .collect(),
        ..crate::OutboundEnvelope::default()
    }
}
