//! What IMAP needs beyond plain delivery: atomic multi-append and move, the usage counter
//! behind QUOTA, changes after a MODSEQ, the structure summary kept beside a blob.

use super::*;
use crate::{NewMessage, Usage};

fn new_message(n: usize, flags_given: &[&str]) -> NewMessage {
    NewMessage {
        raw: message(n),
        internal_date: 1_700_000_000 + n as i64,
        flags: flags(flags_given),
    }
}

pub async fn append_messages_is_atomic(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let mut events = store.subscribe(alice);
    let added = store
        .append_messages(
            inbox.id,
            vec![new_message(1, &["\\Seen"]), new_message(2, &[])],
        )
        .await
        .unwrap();
    assert_eq!(
        added.iter().map(|a| a.0).collect::<Vec<_>>(),
        [Uid(1), Uid(2)]
    );
    assert!(strictly_ascending(
        &added.iter().map(|a| a.1).collect::<Vec<_>>()
    ));
    assert_eq!(
        next_event(&mut events).await,
        ChangeEvent::MessagesAdded { mailbox: inbox.id }
    );
    let stored = store.messages(inbox.id).await.unwrap();
    assert_eq!(stored[0].flags, ["\\Seen"]);
    assert_eq!(stored[1].internal_date, 1_700_000_002);
    assert_eq!(
        &store.read_blob(&stored[1].blob).await.unwrap()[..],
        &message(2)[..]
    );

    // A bad flag in the last message stores none of them.
    let failed = store
        .append_messages(
            inbox.id,
            vec![new_message(3, &[]), new_message(4, &["bad flag"])],
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(uids(store, inbox.id).await, [1, 2]);
    let empty = store.append_messages(inbox.id, Vec::new()).await;
    assert!(matches!(empty, Err(StoreError::Refused(_))), "{empty:?}");
    let unknown = store
        .append_messages(MailboxId(i64::MAX), vec![new_message(5, &[])])
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

pub async fn usage_follows_every_change(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    assert_eq!(store.usage(alice).await.unwrap(), Usage::default());
    let size = message(1).len() as u64;
    deliver_one(store, inbox.id, 1).await;
    deliver_one(store, inbox.id, 1).await;
    assert_eq!(
        store.usage(alice).await.unwrap(),
        Usage {
            bytes: 2 * size,
            messages: 2
        }
    );
    let work = store
        .create_mailbox(alice, &mailbox_name("Work"), None)
        .await
        .unwrap();
    store
        .copy_messages(inbox.id, &[Uid(1)], work.id)
        .await
        .unwrap();
    assert_eq!(store.usage(alice).await.unwrap().messages, 3);
    store
        .move_messages(inbox.id, &[Uid(2)], work.id)
        .await
        .unwrap();
    assert_eq!(
        store.usage(alice).await.unwrap().messages,
        3,
        "a move keeps usage"
    );
    store.expunge(inbox.id, &[Uid(1)]).await.unwrap();
    assert_eq!(
        store.usage(alice).await.unwrap(),
        Usage {
            bytes: 2 * size,
            messages: 2
        }
    );
    // Deleting a mailbox releases what it held.
    store
        .delete_mailbox(alice, &mailbox_name("Work"))
        .await
        .unwrap();
    assert_eq!(store.usage(alice).await.unwrap(), Usage::default());
    assert_eq!(store.usage(bob).await.unwrap(), Usage::default());
    let gone = store.usage(AccountId(i64::MAX)).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

pub async fn set_quota_and_clear(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let address = address("alice@example.org");
    store
        .set_quota(&address, Some(10 * 1024 * 1024))
        .await
        .unwrap();
    let account = store.account_by_id(alice).await.unwrap().unwrap();
    assert_eq!(account.quota_bytes, Some(10 * 1024 * 1024));
    store.set_quota(&address, None).await.unwrap();
    assert_eq!(
        store.account(&address).await.unwrap().unwrap().quota_bytes,
        None
    );
    let missing = store
        .set_quota(&self::address("nobody@example.org"), Some(1))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn changes_since_reports_only_what_changed(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    for n in 1..=4 {
        deliver_one(store, inbox.id, n).await;
    }
    let seen = store
        .mailbox(alice, &mailbox_name("INBOX"))
        .await
        .unwrap()
        .unwrap();
    let mark = seen.highest_modseq;
    assert_eq!(
        store.changes_since(inbox.id, mark).await.unwrap(),
        crate::MailboxChanges {
            changed: Vec::new(),
            expunged: Vec::new(),
            highest_modseq: mark,
        }
    );
    store
        .store_flags(
            inbox.id,
            &[Uid(3)],
            FlagOp::Add,
            &flags(&["\\Flagged"]),
            None,
        )
        .await
        .unwrap();
    store.expunge(inbox.id, &[Uid(2)]).await.unwrap();
    deliver_one(store, inbox.id, 5).await;
    let changes = store.changes_since(inbox.id, mark).await.unwrap();
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [Uid(3), Uid(5)]
    );
    assert_eq!(changes.changed[0].flags, ["\\Flagged"]);
    assert_eq!(changes.expunged, [Uid(2)]);
    let now = store
        .mailbox(alice, &mailbox_name("INBOX"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changes.highest_modseq, now.highest_modseq);
    // From the start: everything there, every expunge.
    let all = store.changes_since(inbox.id, ModSeq(0)).await.unwrap();
    assert_eq!(all.changed.len(), 4);
    let gone = store.changes_since(MailboxId(i64::MAX), ModSeq(0)).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

pub async fn move_messages_is_one_change(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let archive = mailbox(store, alice, "Archive").await;
    for n in 1..=3 {
        deliver_one(store, inbox.id, n).await;
    }
    let before = store
        .mailbox(alice, &mailbox_name("INBOX"))
        .await
        .unwrap()
        .unwrap();
    let blob = store.messages(inbox.id).await.unwrap()[0].blob;
    let mut events = store.subscribe(alice);
    let pairs = store
        .move_messages(inbox.id, &[Uid(3), Uid(1), Uid(9)], archive.id)
        .await
        .unwrap();
    assert_eq!(pairs, [(Uid(1), Uid(1)), (Uid(3), Uid(2))]);
    let seen = [next_event(&mut events).await, next_event(&mut events).await];
    assert!(seen.contains(&ChangeEvent::MessagesExpunged { mailbox: inbox.id }));
    assert!(seen.contains(&ChangeEvent::MessagesAdded {
        mailbox: archive.id
    }));
    assert_eq!(uids(store, inbox.id).await, [2]);
    assert_eq!(uids(store, archive.id).await, [1, 2]);
    let moved = store.messages(archive.id).await.unwrap();
    assert_eq!(moved[0].blob, blob, "the same blob, not a copy");
    // RFC 7162: the source logs both expunges above its old HIGHESTMODSEQ.
    assert_eq!(
        store
            .expunged_since(inbox.id, before.highest_modseq)
            .await
            .unwrap(),
        [Uid(1), Uid(3)]
    );
    // Into the same mailbox: new UIDs at the end, the old ones expunged.
    let again = store
        .move_messages(archive.id, &[Uid(1)], archive.id)
        .await
        .unwrap();
    assert_eq!(again, [(Uid(1), Uid(3))]);
    assert_eq!(uids(store, archive.id).await, [2, 3]);
}

pub async fn blob_summary_lives_with_its_blob(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    deliver_one(store, inbox.id, 1).await;
    let blob = store.messages(inbox.id).await.unwrap()[0].blob;
    assert_eq!(store.blob_summary(&blob).await.unwrap(), None);
    store
        .save_blob_summary(&blob, b"v1".to_vec())
        .await
        .unwrap();
    store
        .save_blob_summary(&blob, b"v2".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.blob_summary(&blob).await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    store.expunge(inbox.id, &[Uid(1)]).await.unwrap();
    assert_eq!(store.blob_summary(&blob).await.unwrap(), None);
    // A summary for a blob that is gone is not kept.
    store
        .save_blob_summary(&blob, b"late".to_vec())
        .await
        .unwrap();
    deliver_one(store, inbox.id, 1).await;
    assert_eq!(store.blob_summary(&blob).await.unwrap(), None);
}
