//! Mailboxes: create, rename (children, INBOX), delete, subscribe, UIDVALIDITY.

use super::*;

pub async fn mailbox_create_and_lookup(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let created = store
        .create_mailbox(alice, &mailbox_name("Projects"), None)
        .await
        .unwrap();
    assert_eq!(created.name.as_str(), "Projects");
    assert_eq!(created.account, alice);
    assert_eq!(created.special_use, None);
    assert_eq!(created.uid_next, Uid(1));
    assert!(created.highest_modseq.0 >= 1);
    assert!(!created.subscribed);
    assert_eq!(mailbox(store, alice, "Projects").await, created);

    let duplicate = store
        .create_mailbox(alice, &mailbox_name("Projects"), None)
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::AlreadyExists(_))),
        "{duplicate:?}"
    );
    let inbox = store
        .create_mailbox(alice, &mailbox_name("inbox"), None)
        .await;
    assert!(
        matches!(inbox, Err(StoreError::AlreadyExists(_))),
        "{inbox:?}"
    );
    let orphan = store
        .create_mailbox(AccountId(i64::MAX), &mailbox_name("X"), None)
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");

    let old = store
        .create_mailbox(alice, &mailbox_name("Old mail"), Some(SpecialUse::Archive))
        .await
        .unwrap();
    assert_eq!(old.special_use, Some(SpecialUse::Archive));
    assert!(
        store
            .mailbox(alice, &mailbox_name("Nope"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn mailbox_rename_with_children(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    for name in ["a", "a/b", "a/b/c", "ab"] {
        store
            .create_mailbox(alice, &mailbox_name(name), None)
            .await
            .unwrap();
    }
    let child = mailbox(store, alice, "a/b").await;
    deliver_one(store, child.id, 1).await;

    store
        .rename_mailbox(alice, &mailbox_name("a"), &mailbox_name("z"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .mailboxes(alice)
        .await
        .unwrap()
        .iter()
        .map(|m| m.name.to_string())
        .collect();
    for expected in ["z", "z/b", "z/b/c", "ab"] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "a" || n.starts_with("a/")),
        "{names:?}"
    );
    let renamed = mailbox(store, alice, "z/b").await;
    assert_eq!(renamed.id, child.id, "the same mailbox, with its messages");
    assert_eq!(renamed.uid_validity, child.uid_validity);
    assert_eq!(uids(store, renamed.id).await, [1]);

    let onto = store
        .rename_mailbox(alice, &mailbox_name("z"), &mailbox_name("ab"))
        .await;
    assert!(
        matches!(onto, Err(StoreError::AlreadyExists(_))),
        "{onto:?}"
    );
    let missing = store
        .rename_mailbox(alice, &mailbox_name("q"), &mailbox_name("r"))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    // A child that would land on an existing name fails the whole rename.
    store
        .create_mailbox(alice, &mailbox_name("w/b"), None)
        .await
        .unwrap();
    let clash = store
        .rename_mailbox(alice, &mailbox_name("z"), &mailbox_name("w"))
        .await;
    assert!(
        matches!(clash, Err(StoreError::AlreadyExists(_))),
        "{clash:?}"
    );
    assert_eq!(
        mailbox(store, alice, "z/b").await.id,
        child.id,
        "nothing was renamed"
    );
    assert!(
        store
            .mailbox(alice, &mailbox_name("w"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn mailbox_rename_inbox(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = mailbox(store, alice, "INBOX").await;
    deliver_one(store, inbox.id, 1).await;
    deliver_one(store, inbox.id, 2).await;
    store
        .create_mailbox(alice, &mailbox_name("INBOX/sub"), None)
        .await
        .unwrap();
    let before = mailbox(store, alice, "INBOX").await;

    // RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays, empty, and its
    // children are not renamed.
    store
        .rename_mailbox(alice, &mailbox_name("INBOX"), &mailbox_name("Old"))
        .await
        .unwrap();
    let after = mailbox(store, alice, "INBOX").await;
    assert_eq!(after.id, inbox.id);
    assert_eq!(after.uid_validity, inbox.uid_validity);
    assert_eq!(after.special_use, Some(SpecialUse::Inbox));
    assert!(store.messages(inbox.id).await.unwrap().is_empty());
    assert_eq!(after.uid_next, Uid(3), "UIDs of INBOX are not reused");
    assert!(after.highest_modseq > before.highest_modseq);
    assert_eq!(
        store
            .expunged_since(inbox.id, before.highest_modseq)
            .await
            .unwrap(),
        [Uid(1), Uid(2)]
    );

    let old = mailbox(store, alice, "Old").await;
    assert_ne!(old.id, inbox.id);
    assert_ne!(old.uid_validity, inbox.uid_validity);
    assert_eq!(uids(store, old.id).await, [1, 2]);
    let bodies = store.messages(old.id).await.unwrap();
    assert_eq!(
        &store.read_blob(&bodies[0].blob).await.unwrap()[..],
        &message(1)[..]
    );
    mailbox(store, alice, "INBOX/sub").await;
    assert!(
        store
            .mailbox(alice, &mailbox_name("Old/sub"))
            .await
            .unwrap()
            .is_none()
    );

    let (uid, _) = deliver_one(store, inbox.id, 3).await;
    assert_eq!(uid, Uid(3));
    let onto = store
        .rename_mailbox(alice, &mailbox_name("INBOX"), &mailbox_name("Old"))
        .await;
    assert!(
        matches!(onto, Err(StoreError::AlreadyExists(_))),
        "{onto:?}"
    );
}

pub async fn mailbox_delete(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let inbox = store.delete_mailbox(alice, &mailbox_name("INBOX")).await;
    assert!(matches!(inbox, Err(StoreError::Refused(_))), "{inbox:?}");
    let missing = store.delete_mailbox(alice, &mailbox_name("Nope")).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let parent = store
        .create_mailbox(alice, &mailbox_name("p"), None)
        .await
        .unwrap();
    store
        .create_mailbox(alice, &mailbox_name("p/c"), None)
        .await
        .unwrap();
    let (uid, _) = deliver_one(store, parent.id, 1).await;
    let blob = store.messages(parent.id).await.unwrap()[0].blob;
    assert_eq!(uid, Uid(1));

    store
        .delete_mailbox(alice, &mailbox_name("p"))
        .await
        .unwrap();
    assert!(
        store
            .mailbox(alice, &mailbox_name("p"))
            .await
            .unwrap()
            .is_none()
    );
    mailbox(store, alice, "p/c").await; // children stay
    assert!(matches!(
        store.messages(parent.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.read_blob(&blob).await,
        Err(StoreError::NotFound(_))
    ));
    let gone = store
        .deliver(message(2), 1, &[(parent.id, Vec::new())])
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

pub async fn mailbox_subscribe(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    store
        .create_mailbox(alice, &mailbox_name("News"), None)
        .await
        .unwrap();
    store
        .set_subscribed(alice, &mailbox_name("News"), true)
        .await
        .unwrap();
    assert!(mailbox(store, alice, "News").await.subscribed);
    store
        .set_subscribed(alice, &mailbox_name("News"), false)
        .await
        .unwrap();
    assert!(!mailbox(store, alice, "News").await.subscribed);
    let missing = store
        .set_subscribed(alice, &mailbox_name("Nope"), true)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    // RFC 3501 §6.3.9: a subscription outlives its mailbox; it follows a rename.
    for name in ["News", "News/Comp", "Old"] {
        if name != "News" {
            store
                .create_mailbox(alice, &mailbox_name(name), None)
                .await
                .unwrap();
        }
        store
            .set_subscribed(alice, &mailbox_name(name), true)
            .await
            .unwrap();
    }
    store
        .delete_mailbox(alice, &mailbox_name("Old"))
        .await
        .unwrap();
    store
        .rename_mailbox(alice, &mailbox_name("News"), &mailbox_name("Press"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .subscriptions(alice)
        .await
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    for expected in ["Old", "Press", "Press/Comp", "INBOX"] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected}: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.starts_with("News")), "{names:?}");
    assert!(mailbox(store, alice, "Press/Comp").await.subscribed);
    // A gone mailbox's name can be unsubscribed; then it is unknown.
    store
        .set_subscribed(alice, &mailbox_name("Old"), false)
        .await
        .unwrap();
    let again = store
        .set_subscribed(alice, &mailbox_name("Old"), false)
        .await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    // Re-creating a name whose subscription was kept shows it subscribed.
    store
        .set_subscribed(alice, &mailbox_name("Press"), true)
        .await
        .unwrap();
    store
        .delete_mailbox(alice, &mailbox_name("Press"))
        .await
        .unwrap();
    let back = store
        .create_mailbox(alice, &mailbox_name("Press"), None)
        .await
        .unwrap();
    assert!(back.subscribed);
}

pub async fn uid_validity_differs_after_recreate(store: &dyn Store) {
    // RFC 9051 §2.3.1.1: a name must not come back with a UIDVALIDITY it had before.
    let alice = new_account(store, "alice@example.org").await;
    let name = mailbox_name("Lists");
    let first = store.create_mailbox(alice, &name, None).await.unwrap();
    deliver_one(store, first.id, 1).await;
    store.delete_mailbox(alice, &name).await.unwrap();
    let second = store.create_mailbox(alice, &name, None).await.unwrap();
    assert_ne!(second.uid_validity, first.uid_validity);
    assert_ne!(second.id, first.id, "mailbox ids are never reused");

    store
        .rename_mailbox(alice, &name, &mailbox_name("Moved"))
        .await
        .unwrap();
    let third = store.create_mailbox(alice, &name, None).await.unwrap();
    assert_ne!(third.uid_validity, second.uid_validity);
    assert_ne!(third.uid_validity, first.uid_validity);
}
