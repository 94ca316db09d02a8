//! Domains, accounts, aliases and recipient resolution.

use super::*;

pub async fn domains_add_list_delete(store: &dyn Store) {
    assert!(store.list_domains().await.unwrap().is_empty());
    store
        .add_domain(&domain("b.example"), Vec::new())
        .await
        .unwrap();
    store
        .add_domain(&domain("a.example"), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        store.list_domains().await.unwrap(),
        [domain("a.example"), domain("b.example")]
    );
    let record = store.domain(&domain("a.example")).await.unwrap().unwrap();
    assert_eq!(record.name, domain("a.example"));
    assert!(record.dkim_keys.is_empty());
    assert!(store.domain(&domain("c.example")).await.unwrap().is_none());

    store.delete_domain(&domain("a.example")).await.unwrap();
    assert_eq!(store.list_domains().await.unwrap(), [domain("b.example")]);
    let again = store.delete_domain(&domain("a.example")).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}

pub async fn domain_duplicates_and_dkim_keys(store: &dyn Store) {
    let keys = vec![
        DkimKey {
            selector: "ed2026".into(),
            algorithm: DkimAlgorithm::Ed25519,
            private_key_pem: Secret::new("-----BEGIN PRIVATE KEY-----\nAA\n".into()),
            public_key_base64: "MCowBQYDK2VwAyEA".into(),
        },
        DkimKey {
            selector: "rsa2026".into(),
            algorithm: DkimAlgorithm::Rsa,
            private_key_pem: Secret::new("-----BEGIN PRIVATE KEY-----\nBB\n".into()),
            public_key_base64: "MIIBIjANBgkq".into(),
        },
    ];
    store
        .add_domain(&domain("example.org"), keys.clone())
        .await
        .unwrap();
    let record = store.domain(&domain("example.org")).await.unwrap().unwrap();
    assert_eq!(record.dkim_keys, keys);

    let duplicate = store.add_domain(&domain("EXAMPLE.org"), Vec::new()).await;
    assert!(
        matches!(duplicate, Err(StoreError::AlreadyExists(_))),
        "{duplicate:?}"
    );

    // A duplicate selector fails the whole call: the domain is not half-added.
    let twice = vec![keys[0].clone(), keys[0].clone()];
    let failed = store.add_domain(&domain("other.example"), twice).await;
    assert!(
        matches!(failed, Err(StoreError::AlreadyExists(_))),
        "{failed:?}"
    );
    assert!(
        store
            .domain(&domain("other.example"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn domain_in_use_cannot_be_deleted(store: &dyn Store) {
    new_account(store, "alice@example.org").await;
    let refused = store.delete_domain(&domain("example.org")).await;
    assert!(matches!(refused, Err(StoreError::InUse(..))), "{refused:?}");
    store
        .delete_account(&address("alice@example.org"))
        .await
        .unwrap();

    let catch_all = AliasSource::CatchAll(domain("example.org"));
    store
        .add_alias(&catch_all, &[address("bob@example.net")])
        .await
        .unwrap();
    let refused = store.delete_domain(&domain("example.org")).await;
    assert!(matches!(refused, Err(StoreError::InUse(..))), "{refused:?}");
    store.delete_alias(&catch_all).await.unwrap();

    store.delete_domain(&domain("example.org")).await.unwrap();
    assert!(store.list_domains().await.unwrap().is_empty());
}

pub async fn account_add_checks_domain_and_duplicates(store: &dyn Store) {
    let alice = address("alice@example.org");
    let unknown = store.add_account(&alice, "hash").await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownDomain(_))),
        "{unknown:?}"
    );

    store
        .add_domain(&domain("example.org"), Vec::new())
        .await
        .unwrap();
    let id = store.add_account(&alice, "hash-1").await.unwrap();
    let duplicate = store
        .add_account(&address("Alice@Example.org"), "hash-2")
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::AlreadyExists(_))),
        "{duplicate:?}"
    );

    let account = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(account.id, id);
    assert_eq!(account.address, alice);
    assert_eq!(account.password_hash.expose(), "hash-1");
    assert_eq!(account.quota_bytes, None);
    assert_eq!(store.account_by_id(id).await.unwrap(), Some(account));
    assert!(
        store
            .account(&address("bob@example.org"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .account_by_id(AccountId(i64::MAX))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn account_gets_default_mailboxes(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let mailboxes = store.mailboxes(alice).await.unwrap();
    let names: Vec<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    for (special_use, name) in SpecialUse::DEFAULT_SET {
        let mailbox = mailboxes.iter().find(|m| m.name.as_str() == name).unwrap();
        assert_eq!(mailbox.special_use, Some(special_use), "{name}");
        assert_eq!(mailbox.account, alice);
        assert_eq!(mailbox.uid_next, Uid(1));
        assert!(
            mailbox.highest_modseq.0 >= 1,
            "RFC 7162: HIGHESTMODSEQ is positive"
        );
        assert!(mailbox.uid_validity > 0);
        assert!(mailbox.subscribed, "default mailboxes start subscribed");
        let found = store
            .mailbox_by_special_use(alice, special_use)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(mailbox));
    }
    let mut validities: Vec<u32> = mailboxes.iter().map(|m| m.uid_validity).collect();
    validities.sort_unstable();
    validities.dedup();
    assert_eq!(validities.len(), 6, "every mailbox has its own UIDVALIDITY");
}

pub async fn account_delete_cascades(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let alice_inbox = mailbox(store, alice, "INBOX").await;
    let bob_inbox = mailbox(store, bob, "INBOX").await;
    let only_alice = message(1);
    store
        .deliver(only_alice, 1, &[(alice_inbox.id, Vec::new())])
        .await
        .unwrap();
    let shared = message(2);
    let targets = [(alice_inbox.id, Vec::new()), (bob_inbox.id, Vec::new())];
    store.deliver(shared, 1, &targets).await.unwrap();
    let alice_messages = store.messages(alice_inbox.id).await.unwrap();
    let (own_blob, shared_blob) = (alice_messages[0].blob, alice_messages[1].blob);

    store
        .delete_account(&address("alice@example.org"))
        .await
        .unwrap();
    assert!(
        store
            .account(&address("alice@example.org"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.account_by_id(alice).await.unwrap().is_none());
    assert!(store.mailboxes(alice).await.unwrap().is_empty());
    assert!(matches!(
        store.messages(alice_inbox.id).await,
        Err(StoreError::NotFound(_))
    ));
    // The blob only alice referred to is gone; the one bob shares stays.
    assert!(matches!(
        store.read_blob(&own_blob).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        &store.read_blob(&shared_blob).await.unwrap()[..],
        &message(2)[..]
    );
    let again = store.delete_account(&address("alice@example.org")).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");

    // The address can be used again: a new account, never the old id or mailboxes.
    let again = new_account(store, "alice@example.org").await;
    assert_ne!(again, alice);
    let inbox = mailbox(store, again, "INBOX").await;
    assert_ne!(inbox.id, alice_inbox.id);
    assert!(store.messages(inbox.id).await.unwrap().is_empty());
}

pub async fn set_password_replaces_hash(store: &dyn Store) {
    new_account(store, "alice@example.org").await;
    let alice = address("alice@example.org");
    store.set_password(&alice, "new-hash").await.unwrap();
    let account = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(account.password_hash.expose(), "new-hash");
    let missing = store
        .set_password(&address("nobody@example.org"), "x")
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn list_accounts_sorted_and_filtered(store: &dyn Store) {
    for text in [
        "zed@a.example",
        "al@z.example",
        "al.b@a.example",
        "bob@z.example",
    ] {
        new_account(store, text).await;
    }
    let all = store.list_accounts(None).await.unwrap();
    let addresses: Vec<Address> = all.iter().map(|a| a.address.clone()).collect();
    let mut sorted = addresses.clone();
    sorted.sort();
    assert_eq!(addresses, sorted, "sorted by Address");
    assert_eq!(addresses.len(), 4);
    let in_z = store
        .list_accounts(Some(&domain("z.example")))
        .await
        .unwrap();
    let in_z: Vec<String> = in_z.iter().map(|a| a.address.to_string()).collect();
    assert_eq!(in_z, ["al@z.example", "bob@z.example"]);
    assert!(
        store
            .list_accounts(Some(&domain("none.example")))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn aliases_add_replace_delete_list(store: &dyn Store) {
    let info = AliasSource::Address(address("info@example.org"));
    let unknown = store.add_alias(&info, &[address("x@example.net")]).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownDomain(_))),
        "{unknown:?}"
    );

    new_account(store, "alice@example.org").await;
    new_account(store, "bob@example.org").await;
    let onto_account = AliasSource::Address(address("alice@example.org"));
    let refused = store
        .add_alias(&onto_account, &[address("bob@example.org")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists(_))),
        "{refused:?}"
    );

    store
        .add_alias(&info, &[address("alice@example.org")])
        .await
        .unwrap();
    let targets = [address("bob@example.org"), address("alice@example.org")];
    store.add_alias(&info, &targets).await.unwrap(); // replaces
    let catch_all = AliasSource::CatchAll(domain("example.org"));
    store
        .add_alias(&catch_all, &[address("alice@example.org")])
        .await
        .unwrap();

    let aliases = store.list_aliases().await.unwrap();
    assert_eq!(aliases.len(), 2);
    assert_eq!(
        aliases[0].source, info,
        "sorted by AliasSource: addresses first"
    );
    assert_eq!(aliases[0].targets, targets);
    assert_eq!(aliases[1].source, catch_all);

    let taken = store
        .add_account(&address("info@example.org"), "hash")
        .await;
    assert!(
        matches!(taken, Err(StoreError::AlreadyExists(_))),
        "{taken:?}"
    );

    store.delete_alias(&info).await.unwrap();
    let again = store.delete_alias(&info).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    store.delete_alias(&catch_all).await.unwrap();
    assert!(store.list_aliases().await.unwrap().is_empty());
}

pub async fn resolve_recipient_precedence(store: &dyn Store) {
    let resolve =
        |text: &'static str| async move { store.resolve_recipient(&address(text)).await.unwrap() };
    assert!(
        resolve("nobody@example.org").await.is_empty(),
        "empty store"
    );

    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let carol = new_account(store, "carol@example.org").await;
    let alias = |text: &str| AliasSource::Address(address(text));
    // Remote targets are not local accounts and are left out; duplicates count once.
    let team = [
        address("alice@example.org"),
        address("bob@example.org"),
        address("someone@remote.example"),
        address("alice@example.org"),
    ];
    store
        .add_alias(&alias("team@example.org"), &team)
        .await
        .unwrap();
    store
        .add_alias(
            &alias("alice+list@example.org"),
            &[address("bob@example.org")],
        )
        .await
        .unwrap();
    store
        .add_alias(&alias("ext@example.org"), &[address("x@remote.example")])
        .await
        .unwrap();

    assert_eq!(resolve("alice@example.org").await, [alice], "an account");
    assert_eq!(resolve("team@example.org").await, [alice, bob], "an alias");
    assert_eq!(
        resolve("alice+list@example.org").await,
        [bob],
        "alias before +tag base"
    );
    assert_eq!(
        resolve("alice+news@example.org").await,
        [alice],
        "+tag base account"
    );
    assert_eq!(
        resolve("team+x@example.org").await,
        [alice, bob],
        "+tag base alias"
    );
    assert!(
        resolve("nobody@example.org").await.is_empty(),
        "no catch-all yet"
    );

    let catch_all = AliasSource::CatchAll(domain("example.org"));
    store
        .add_alias(&catch_all, &[address("carol@example.org")])
        .await
        .unwrap();
    assert_eq!(resolve("nobody@example.org").await, [carol], "catch-all");
    assert_eq!(
        resolve("nobody+tag@example.org").await,
        [carol],
        "catch-all for +tag"
    );
    assert_eq!(
        resolve("alice@example.org").await,
        [alice],
        "account before catch-all"
    );
    assert_eq!(
        resolve("team@example.org").await,
        [alice, bob],
        "alias before catch-all"
    );
    // An alias owns its address even when none of its targets is local.
    assert!(resolve("ext@example.org").await.is_empty());
    assert!(
        resolve("alice@other.example").await.is_empty(),
        "domain not served"
    );
}

pub async fn may_send_as_own_tagged_and_aliases(store: &dyn Store) {
    let alice = new_account(store, "alice@example.org").await;
    let bob = new_account(store, "bob@example.org").await;
    let carol = new_account(store, "carol@other.example").await;
    let alias = |text: &str| AliasSource::Address(address(text));
    store
        .add_alias(
            &alias("team@example.org"),
            &[address("alice@example.org"), address("x@remote.example")],
        )
        .await
        .unwrap();
    store
        .add_alias(&alias("sales@example.org"), &[address("bob@example.org")])
        .await
        .unwrap();
    // A +tag address that is an alias of its own belongs to that alias, not to alice.
    store
        .add_alias(
            &alias("alice+list@example.org"),
            &[address("bob@example.org")],
        )
        .await
        .unwrap();
    store
        .add_alias(
            &AliasSource::CatchAll(domain("example.org")),
            &[address("alice@example.org")],
        )
        .await
        .unwrap();
    let may = |account: AccountId, text: &'static str| async move {
        store.may_send_as(account, &address(text)).await.unwrap()
    };

    assert!(may(alice, "alice@example.org").await, "own address");
    assert!(
        may(alice, "Alice@EXAMPLE.org").await,
        "case does not matter"
    );
    assert!(may(alice, "alice+news@example.org").await, "own +tag");
    assert!(may(alice, "team@example.org").await, "alias including her");
    assert!(
        may(alice, "team+x@example.org").await,
        "that alias with a +tag"
    );
    assert!(
        !may(alice, "sales@example.org").await,
        "alias not including her"
    );
    assert!(
        !may(alice, "alice+list@example.org").await,
        "a +tag address that is another's alias"
    );
    assert!(
        !may(alice, "nobody@example.org").await,
        "catch-all delivery gives no right to send"
    );
    assert!(
        !may(alice, "postmaster@example.org").await,
        "catch-all delivery gives no right to send"
    );
    assert!(!may(alice, "bob@example.org").await, "another user");
    assert!(
        !may(alice, "bob+x@example.org").await,
        "another user's +tag"
    );
    assert!(!may(alice, "carol@other.example").await, "another domain");
    assert!(!may(alice, "alice@other.example").await, "another domain");
    assert!(
        !may(alice, "alice@remote.example").await,
        "a remote address"
    );
    assert!(
        !may(alice, "x@remote.example").await,
        "a remote alias target"
    );

    assert!(may(bob, "bob@example.org").await);
    assert!(may(bob, "sales@example.org").await);
    assert!(
        may(bob, "alice+list@example.org").await,
        "an alias of bob's"
    );
    assert!(!may(bob, "alice@example.org").await);
    assert!(!may(bob, "team@example.org").await);
    assert!(may(carol, "carol@other.example").await);
    assert!(!may(carol, "carol@example.org").await);
    assert!(
        !may(AccountId(i64::MAX), "alice@example.org").await,
        "an unknown account may send as nobody"
    );

    // Rights follow the directory: removed from the alias, alice loses it.
    store
        .add_alias(&alias("team@example.org"), &[address("bob@example.org")])
        .await
        .unwrap();
    assert!(!may(alice, "team@example.org").await);
    assert!(may(bob, "team@example.org").await);
}
