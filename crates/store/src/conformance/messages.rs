//! Messages: delivery, UIDs and MODSEQs, flags, expunge log, copy, change events.

use super::*;

pub async fn deliver_shares_one_blob(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let alice_inbox = mailbox(store, alice, "INBOX").await;
    let bob_inbox = mailbox(store, bob, "INBOX").await;
    let raw = message(1);
    let targets = [
        (alice_inbox.id, flags(&["\\seen", "$x", "\\Seen", "$X"])),
        (bob_inbox.id, Vec::new()),
    ];
    let placed = store
        .deliver(raw.clone(), 1_700_000_123, &targets)
        .await
        .unwrap();
    assert_eq!(placed.len(), 2);
    assert_eq!((placed[0].0, placed[0].1), (alice_inbox.id, Uid(1)));
    assert_eq!((placed[1].0, placed[1].1), (bob_inbox.id, Uid(1)));

    let at_alice = store.messages(alice_inbox.id).await.unwrap();
    let at_bob = store.messages(bob_inbox.id).await.unwrap();
    assert_eq!(at_alice.len(), 1);
    assert_eq!(at_alice[0].blob, at_bob[0].blob, "one blob for both");
    assert_eq!(
        at_alice[0].blob,
        BlobId(Sha256::digest(&raw[..]).into()),
        "SHA-256 address"
    );
    assert_eq!(at_alice[0].size, raw.len() as u64);
    assert_eq!(at_alice[0].internal_date, 1_700_000_123);
    assert_eq!(at_alice[0].modseq, placed[0].2);
    // Sorted, deduplicated; flag names are case-insensitive (RFC 9051 §9).
    assert_eq!(at_alice[0].flags, ["$x", "\\Seen"]);
    assert!(at_bob[0].flags.is_empty());
    assert_eq!(
        &store.read_blob(&at_alice[0].blob).await.unwrap()[..],
        &raw[..]
    );

    // The same bytes again: the same blob, a new message.
    store
        .deliver(raw.clone(), 1, &[(alice_inbox.id, Vec::new())])
        .await
        .unwrap();
    assert_eq!(
        store.messages(alice_inbox.id).await.unwrap()[1].blob,
        at_alice[0].blob
    );

    // All or nothing: one unknown target fails the whole delivery.
    let bad = [
        (bob_inbox.id, Vec::new()),
        (MailboxId(i64::MAX), Vec::new()),
    ];
    let failed = store.deliver(message(2), 1, &bad).await;
    assert!(matches!(failed, Err(StoreError::NotFound(_))), "{failed:?}");
    assert_eq!(uids(store, bob_inbox.id).await, [1]);
    assert!(store.deliver(message(3), 1, &[]).await.unwrap().is_empty());

    // The blob lives while any message refers to it.
    store
        .expunge(alice_inbox.id, &[Uid(1), Uid(2)])
        .await
        .unwrap();
    assert!(store.read_blob(&at_bob[0].blob).await.is_ok());
    store.expunge(bob_inbox.id, &[Uid(1)]).await.unwrap();
    let gone = store.read_blob(&at_bob[0].blob).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

pub async fn read_blob_range_pieces(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    // Large enough to span many database pages.
    let raw: Arc<[u8]> = (0..300_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    store
        .deliver(raw.clone(), 1, &[(inbox.id, Vec::new())])
        .await
        .unwrap();
    let blob = store.messages(inbox.id).await.unwrap()[0].blob;
    let whole = store.read_blob(&blob).await.unwrap();
    assert_eq!(&whole[..], &raw[..]);

    // Pieces of any size put back together give the whole blob.
    for piece in [1usize, 4096, 65_537, 300_000, 1 << 20] {
        let mut joined = Vec::new();
        loop {
            let got = store
                .read_blob_range(&blob, joined.len() as u64, piece)
                .await
                .unwrap();
            assert!(got.len() <= piece);
            if got.is_empty() {
                break;
            }
            joined.extend_from_slice(&got);
            if piece == 1 && joined.len() >= 3 {
                break; // one byte at a time: three are enough
            }
        }
        let expected = if piece == 1 { &raw[..3] } else { &raw[..] };
        assert_eq!(&joined[..], expected, "pieces of {piece}");
    }
    let middle = store.read_blob_range(&blob, 1000, 10).await.unwrap();
    assert_eq!(&middle[..], &raw[1000..1010]);
    let tail = store.read_blob_range(&blob, 299_990, 100).await.unwrap();
    assert_eq!(&tail[..], &raw[299_990..]);
    assert!(
        store
            .read_blob_range(&blob, 300_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_blob_range(&blob, u64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_blob_range(&blob, 0, 0).await.unwrap().is_empty());

    // Gone with its last message, like `read_blob`.
    store.expunge(inbox.id, &[Uid(1)]).await.unwrap();
    let gone = store.read_blob_range(&blob, 0, 10).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

pub async fn uid_and_modseq_strictly_increase(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let archive = mailbox(store, alice, "Archive").await;
    let mut highest = vec![inbox.highest_modseq];
    let mut given_uids = Vec::new();
    for n in 0..3 {
        let (uid, modseq) = deliver_one(store, inbox.id, n).await;
        given_uids.push(uid);
        let now = mailbox(store, alice, "INBOX").await;
        assert_eq!(
            now.highest_modseq, modseq,
            "a new message carries the new HIGHESTMODSEQ"
        );
        highest.push(now.highest_modseq);
    }
    let seen = flags(&["\\Seen"]);
    let changed = store
        .store_flags(inbox.id, &[Uid(1), Uid(2)], FlagOp::Add, &seen, None)
        .await
        .unwrap();
    assert!(strictly_ascending(
        &changed.iter().map(|m| m.modseq).collect::<Vec<_>>()
    ));
    highest.push(mailbox(store, alice, "INBOX").await.highest_modseq);
    store.expunge(inbox.id, &[Uid(2)]).await.unwrap();
    highest.push(mailbox(store, alice, "INBOX").await.highest_modseq);
    deliver_one(store, archive.id, 9).await;
    let pairs = store
        .copy_messages(archive.id, &[Uid(1)], inbox.id)
        .await
        .unwrap();
    given_uids.push(pairs[0].1);
    highest.push(mailbox(store, alice, "INBOX").await.highest_modseq);
    given_uids.push(deliver_one(store, inbox.id, 4).await.0);
    highest.push(mailbox(store, alice, "INBOX").await.highest_modseq);

    assert!(strictly_ascending(&highest), "HIGHESTMODSEQ: {highest:?}");
    assert!(strictly_ascending(&given_uids), "UIDs: {given_uids:?}");
    let last = mailbox(store, alice, "INBOX").await;
    assert!(last.uid_next > *given_uids.last().unwrap());
    for meta in store.messages(inbox.id).await.unwrap() {
        assert!(meta.modseq <= last.highest_modseq);
    }
}

pub async fn uids_not_reused_after_expunge(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    for n in 1..=3 {
        deliver_one(store, inbox.id, n).await;
    }
    // RFC 9051 §2.3.1.1: the highest UID is expunged; the next message still gets a new one.
    assert_eq!(store.expunge(inbox.id, &[Uid(3)]).await.unwrap(), [Uid(3)]);
    assert_eq!(deliver_one(store, inbox.id, 4).await.0, Uid(4));
    assert_eq!(mailbox(store, alice, "INBOX").await.uid_next, Uid(5));
    assert_eq!(uids(store, inbox.id).await, [1, 2, 4]);
}

pub async fn expunge_log(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    for n in 1..=4 {
        deliver_one(store, inbox.id, n).await;
    }
    let m0 = mailbox(store, alice, "INBOX").await.highest_modseq;
    assert_eq!(
        store.expunge(inbox.id, &[Uid(2), Uid(9)]).await.unwrap(),
        [Uid(2)]
    );
    let m1 = mailbox(store, alice, "INBOX").await.highest_modseq;
    assert!(m1 > m0);
    assert_eq!(
        store.expunge(inbox.id, &[Uid(4), Uid(1)]).await.unwrap(),
        [Uid(1), Uid(4)]
    );
    let m2 = mailbox(store, alice, "INBOX").await.highest_modseq;
    assert!(m2 > m1);

    // RFC 7162 §3.2: each expunge has its MODSEQ; VANISHED reports those after the client's.
    assert_eq!(
        store.expunged_since(inbox.id, m0).await.unwrap(),
        [Uid(1), Uid(2), Uid(4)]
    );
    assert_eq!(
        store.expunged_since(inbox.id, m1).await.unwrap(),
        [Uid(1), Uid(4)]
    );
    assert!(store.expunged_since(inbox.id, m2).await.unwrap().is_empty());
    assert!(store.expunge(inbox.id, &[Uid(2)]).await.unwrap().is_empty());
    assert_eq!(
        mailbox(store, alice, "INBOX").await.highest_modseq,
        m2,
        "no-op keeps MODSEQ"
    );
    assert_eq!(uids(store, inbox.id).await, [3]);
    let missing = store.expunged_since(MailboxId(i64::MAX), ModSeq(0)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let missing = store.expunge(MailboxId(i64::MAX), &[Uid(1)]).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn store_flags_ops_and_unchanged_since(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    for n in 1..=3 {
        deliver_one(store, inbox.id, n).await;
    }
    let start = mailbox(store, alice, "INBOX").await.highest_modseq;
    let seen = flags(&["\\Seen"]);
    let changed = store
        .store_flags(
            inbox.id,
            &[Uid(2), Uid(1), Uid(99)],
            FlagOp::Add,
            &seen,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [Uid(1), Uid(2)]
    );
    assert!(changed.iter().all(|m| m.flags == seen && m.modseq > start));
    let after_add = mailbox(store, alice, "INBOX").await.highest_modseq;
    assert_eq!(after_add, changed[1].modseq);

    // Nothing changes, so nothing is returned and no MODSEQ is spent.
    let same = store
        .store_flags(inbox.id, &[Uid(1)], FlagOp::Add, &seen, None)
        .await
        .unwrap();
    assert!(same.is_empty());
    assert_eq!(
        mailbox(store, alice, "INBOX").await.highest_modseq,
        after_add
    );

    let removed = store
        .store_flags(
            inbox.id,
            &[Uid(1)],
            FlagOp::Remove,
            &flags(&["\\SEEN"]),
            None,
        )
        .await
        .unwrap();
    assert!(removed[0].flags.is_empty());
    let replaced = store
        .store_flags(
            inbox.id,
            &[Uid(2)],
            FlagOp::Replace,
            &flags(&["\\Flagged", "$a"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(replaced[0].flags, ["$a", "\\Flagged"]);
    let listed = store.messages(inbox.id).await.unwrap();
    assert_eq!(listed[1].flags, ["$a", "\\Flagged"]);
    assert_eq!(listed[1].modseq, replaced[0].modseq);

    // RFC 7162 §3.1.3: UNCHANGEDSINCE skips messages changed after the given MODSEQ.
    let third = listed[2].modseq;
    let conditional = store
        .store_flags(
            inbox.id,
            &[Uid(2), Uid(3)],
            FlagOp::Add,
            &flags(&["$b"]),
            Some(third),
        )
        .await
        .unwrap();
    assert_eq!(
        conditional.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [Uid(3)]
    );
    let zero = store
        .store_flags(
            inbox.id,
            &[Uid(1), Uid(2), Uid(3)],
            FlagOp::Add,
            &seen,
            Some(ModSeq(0)),
        )
        .await
        .unwrap();
    assert!(zero.is_empty(), "UNCHANGEDSINCE 0 always fails");
    let missing = store
        .store_flags(MailboxId(i64::MAX), &[Uid(1)], FlagOp::Add, &seen, None)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn copy_messages(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let archive = mailbox(store, alice, "Archive").await;
    store
        .deliver(message(1), 111, &[(inbox.id, flags(&["\\Seen"]))])
        .await
        .unwrap();
    store
        .deliver(message(2), 222, &[(inbox.id, flags(&["$x"]))])
        .await
        .unwrap();
    let archive_before = mailbox(store, alice, "Archive").await.highest_modseq;

    let pairs = store
        .copy_messages(inbox.id, &[Uid(2), Uid(1), Uid(7)], archive.id)
        .await;
    assert_eq!(pairs.unwrap(), [(Uid(1), Uid(1)), (Uid(2), Uid(2))]);
    let sources = store.messages(inbox.id).await.unwrap();
    let copies = store.messages(archive.id).await.unwrap();
    assert_eq!(copies.len(), 2);
    for (source, copy) in sources.iter().zip(&copies) {
        // RFC 9051 §6.4.7: flags and internal date are preserved.
        assert_eq!(copy.flags, source.flags);
        assert_eq!(copy.internal_date, source.internal_date);
        assert_eq!(copy.blob, source.blob);
        assert_eq!(copy.size, source.size);
        assert_eq!(copy.mailbox, archive.id);
        assert!(copy.modseq > archive_before);
    }
    assert_eq!(
        uids(store, inbox.id).await,
        [1, 2],
        "the source is untouched"
    );

    let into_itself = store
        .copy_messages(inbox.id, &[Uid(1)], inbox.id)
        .await
        .unwrap();
    assert_eq!(into_itself, [(Uid(1), Uid(3))]);
    let missing = store
        .copy_messages(inbox.id, &[Uid(1)], MailboxId(i64::MAX))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let missing = store
        .copy_messages(MailboxId(i64::MAX), &[Uid(1)], inbox.id)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn change_events(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    let mut events = store.subscribe(alice);
    let mut bob_events = store.subscribe(bob);

    deliver_one(store, inbox.id, 1).await;
    assert_eq!(
        next_event(&mut events).await,
        ChangeEvent::MessagesAdded { mailbox: inbox.id }
    );
    let seen = flags(&["\\Seen"]);
    store
        .store_flags(inbox.id, &[Uid(1)], FlagOp::Add, &seen, None)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events).await,
        ChangeEvent::FlagsChanged { mailbox: inbox.id }
    );
    store.expunge(inbox.id, &[Uid(1)]).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        ChangeEvent::MessagesExpunged { mailbox: inbox.id }
    );
    store
        .create_mailbox(alice, &mailbox_name("New"), None)
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await, ChangeEvent::MailboxesChanged);
    assert!(
        bob_events.try_recv().is_err(),
        "bob's sessions hear nothing of alice's"
    );
}
